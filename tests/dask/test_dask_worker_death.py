"""A worker process dies mid-job: Dask runs its partition again elsewhere, every row comes out once."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from es_infer_nb import Engine

dd = pytest.importorskip("dask.dataframe")
cloudpickle = pytest.importorskip("cloudpickle")

from helpers import stump_regression  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers need not import this file


def _die_once(partition: pd.DataFrame, marker: str, victim: int) -> pd.DataFrame:
    """Kill this worker process the first time the partition holding row ``victim`` comes by."""
    if victim in partition.index and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return partition


def test_killed_worker_partition_is_retried_and_every_row_comes_out_once(client, tmp_path):
    engine = Engine()
    engine.request("PUT", "_ml/trained_models/reg", stump_regression()).raise_for_status()
    n = 600
    frame = pd.DataFrame({"x": np.linspace(0, 1, n)}, index=np.arange(n))
    ddf = dd.from_pandas(frame, npartitions=6)
    marker = tmp_path / "killed"
    pids_before = set(client.run(os.getpid).values())
    scored = ddf.infer.run("reg", engine=engine)
    # the partition's inference has run when the worker dies (same fused task, before its result leaves)
    out = scored.map_partitions(_die_once, str(marker), 350, meta=scored._meta).compute()
    assert marker.exists()  # a worker really died
    assert int(marker.read_text()) in pids_before
    assert list(out.index) == list(frame.index)  # every row, once, in order
    assert not out.index.duplicated().any()
    pd.testing.assert_frame_equal(out[["x", "ml.inference.predicted_value"]], _expected(frame))
    client.wait_for_workers(2, timeout=120)  # the nanny brought the worker back
    assert int(marker.read_text()) not in set(client.run(os.getpid).values())


def _expected(frame: pd.DataFrame) -> pd.DataFrame:
    engine = Engine()
    engine.request("PUT", "_ml/trained_models/reg", stump_regression()).raise_for_status()
    return frame.infer.run("reg", engine=engine)[["x", "ml.inference.predicted_value"]]
