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


def _inference_count(engine: Engine) -> int:
    body = engine.request("GET", "_ml/trained_models/reg/_stats").raise_for_status().body
    return body["trained_model_stats"][0]["inference_stats"]["inference_count"]


def test_finished_partitions_run_again_after_their_worker_died_count_once(client, monkeypatch):
    import time

    from distributed import wait

    from es_infer_nb.dask import stats

    delivered: list[tuple] = []
    original = stats.deliver
    monkeypatch.setattr(stats, "deliver", lambda job, delta, part=None: delivered.append(part) or original(
        job, delta, part))
    engine = Engine()
    engine.request("PUT", "_ml/trained_models/reg", stump_regression()).raise_for_status()
    n = 600
    frame = pd.DataFrame({"x": np.linspace(0, 1, n)}, index=np.arange(n))
    scored = dd.from_pandas(frame, npartitions=6).infer.run("reg", engine=engine).persist()
    wait(scored)
    assert _inference_count(engine) == n  # every partition finished and reported
    assert len(delivered) == 6 and len(set(delivered)) == 6 and all(run is not None for _, run in delivered)
    holders = client.who_has(scored)
    victim = next(iter(next(w for w in holders.values() if w)))
    lost = sum(1 for w in holders.values() if w == (victim,))
    assert lost >= 1  # partitions only the victim holds must run again
    os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
    out = scored.compute()  # Dask runs the lost partitions again
    assert list(out.index) == list(frame.index)
    pd.testing.assert_frame_equal(out[["x", "ml.inference.predicted_value"]], _expected(frame))
    deadline = time.monotonic() + 60
    while len(delivered) < 6 + lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(delivered) == 6 + lost  # the re-run partitions reported again, in the same run
    assert set(delivered[6:]) <= set(delivered[:6])
    assert _inference_count(engine) == n  # their counts replaced the earlier ones instead of adding
    client.wait_for_workers(2, timeout=120)


def test_computing_a_lazy_frame_again_counts_again(client):
    engine = Engine()
    engine.request("PUT", "_ml/trained_models/reg", stump_regression()).raise_for_status()
    frame = pd.DataFrame({"x": np.linspace(0, 1, 100)})
    scored = dd.from_pandas(frame, npartitions=4).infer.run("reg", engine=engine)
    scored.compute()
    _wait_forgotten(client, scored)  # else the second compute may take the first one's results from memory
    scored.compute()  # the models really ran twice: a node would count both
    assert _inference_count(engine) == 200


def _holds(dask_scheduler, name: str) -> bool:
    return any(name in str(key) for key in dask_scheduler.tasks)


def _wait_forgotten(client, frame) -> None:
    """Until the scheduler holds no task of ``frame`` (the client released the first compute's keys)."""
    import time

    deadline = time.monotonic() + 60
    while client.run_on_scheduler(_holds, name=frame._name) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_partition_delivered_twice_in_one_run_counts_once():
    from es_infer_nb.dask import stats

    engine = Engine()
    engine.request("PUT", "_ml/trained_models/reg", stump_regression()).raise_for_status()
    stats.register_job("job-1", engine)
    delta = {"models": {"reg": {"inference_count": 10, "cache_miss_count": 1}}}
    assert stats.deliver("job-1", delta, (0, "run-a"))
    assert stats.deliver("job-1", delta, (0, "run-a"))  # the same partition run again (a retry)
    assert _inference_count(engine) == 10
    stats.deliver("job-1", {"models": {"reg": {"inference_count": 12}}}, (0, "run-a"))
    assert _inference_count(engine) == 12  # the larger count replaces the smaller
    stats.deliver("job-1", delta, (1, "run-a"))  # another partition
    stats.deliver("job-1", delta, (0, "run-b"))  # the same partition in another compute
    stats.deliver("job-1", delta)  # a local scheduler: no partition key, always adds
    assert _inference_count(engine) == 42
    body = engine.request("GET", "_ml/trained_models/reg/_stats").raise_for_status().body
    assert body["trained_model_stats"][0]["inference_stats"]["cache_miss_count"] == 4
