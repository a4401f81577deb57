"""``ddf.infer``: the pandas accessor's surface on Dask DataFrames (``ddf.infer.run``, ``ddf.infer.pipeline``).

Importing this module registers the accessor (``es_infer_nb`` does it when ``dask.dataframe`` is
imported). Both methods are lazy: they return a Dask DataFrame whose partitions run
:func:`es_infer_nb.dask.config.make_predict_fn`'s function on the workers. The job config (JSON) is
one task of the graph (``dask.delayed``), so it travels to each worker once; each worker process
builds the engine and loads the model once (cached by the config's hash) and runs one partition at
a time through it. The result columns are declared from the configs (:mod:`.meta`): no model runs
while the graph is built.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dask
import pandas as pd
from dask.dataframe.extensions import register_dataframe_accessor

from . import stats as _stats
from .config import cached_engine, job_config, make_predict_fn, state_key
from .meta import conform, pipeline_meta, run_meta

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["DaskInferAccessor"]

_Job = tuple[Callable[[pd.DataFrame], pd.DataFrame], "Engine", threading.Lock]
_fns: "OrderedDict[str, _Job]" = OrderedDict()
_fns_lock = threading.Lock()


def _predict_fn(config_text: str, key: str, job: str) -> _Job:
    """The job's predict function and worker engine in this process (the config parsed once per job)."""
    with _fns_lock:
        found = _fns.get(job)
    if found is None:
        config = json.loads(config_text)
        engine, lock = cached_engine(config, key)
        found = (make_predict_fn(config, key), engine, lock)
        with _fns_lock:
            _fns[job] = found
            while len(_fns) > 16:
                _fns.popitem(last=False)
    return found


def run_partition(partition: pd.DataFrame, config_text: str, key: str, job: str, meta: pd.DataFrame) -> pd.DataFrame:
    """One partition on a worker: the job's predict function, counters sent home, columns as declared."""
    if len(partition) == 0:
        return meta.iloc[:0].set_axis(partition.index[:0], axis=0)
    fn, engine, lock = _predict_fn(config_text, key, job)
    with lock:  # one partition at a time per worker engine: exact counter differences
        before = _stats.snapshot(engine)
        out = fn(partition)
        delta = _stats.difference(_stats.snapshot(engine), before)
    _stats.report(job, delta)
    return conform(out, meta)


def _engine(engine: "Engine | None") -> "Engine":
    if engine is not None:
        return engine
    from ..engine import default_engine

    return default_engine()


@register_dataframe_accessor("infer")
class DaskInferAccessor:
    """Elasticsearch inference over a Dask DataFrame; same arguments as the pandas ``df.infer``."""

    def __init__(self, frame: Any) -> None:
        self._frame = frame

    def _submit(self, engine: "Engine", method: str, args: dict[str, Any], device: str | None,
                meta: pd.DataFrame) -> Any:
        config = job_config(engine, method, args, device)
        text = json.dumps(config, separators=(",", ":"))
        key = state_key(config)
        job = uuid.uuid4().hex
        _stats.register_job(job, engine)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
        shipped = dask.delayed(text, pure=True, name=f"es-infer-config-{digest}")  # one task: shipped once
        return self._frame.map_partitions(run_partition, shipped, key, job, meta, meta=meta,
                                          token=f"es-infer-{method}-{job}")

    def run(
        self,
        model_id: str,
        *,
        engine: "Engine | None" = None,
        inference_config: dict[str, Any] | None = None,
        field_map: dict[str, str] | None = None,
        target_field: str | None = None,
        batch_size: int | None = None,
        device: str | None = None,
        input_output: dict[str, str] | list[dict[str, str]] | None = None,
        meta: Any = None,
    ) -> Any:
        """``df.infer.run`` on every partition; returns a lazy Dask DataFrame (input columns then
        result columns, every row, same index and order). ``meta`` (``{column: dtype}``) declares the
        result columns of a model whose columns are not known from its config (pytorch models,
        ``_inference`` endpoints, ``input_output``)."""
        if not isinstance(model_id, str) or not model_id:
            raise TypeError(f"model_id must be a non-empty str, found {type(model_id).__name__}")
        eng = _engine(engine)
        args: dict[str, Any] = {"model_id": model_id, "inference_config": inference_config, "field_map": field_map,
                                "target_field": target_field, "batch_size": batch_size, "input_output": input_output}
        declared = run_meta(eng, self._frame._meta, model_id, args, meta)
        return self._submit(eng, "run", args, device, declared)

    def pipeline(
        self,
        pipeline: str | dict[str, Any],
        *,
        engine: "Engine | None" = None,
        chunk_size: int | None = None,
        device: str | None = None,
        meta: Any = None,
    ) -> Any:
        """``df.infer.pipeline`` on every partition; returns a lazy Dask DataFrame. Ingest stats of a
        stored pipeline move in the engine as the partitions finish. ``meta`` declares columns that
        processors other than ``inference`` write (e.g. a ``script``)."""
        eng = _engine(engine)
        if isinstance(pipeline, str):
            if pipeline not in eng.pipelines:
                from ..errors import ApiError

                raise ApiError("illegal_argument_exception", f"pipeline with id [{pipeline}] does not exist", 400)
        elif not isinstance(pipeline, dict):
            raise TypeError(f"pipeline must be a pipeline id (str) or body (dict), found {type(pipeline).__name__}")
        declared = pipeline_meta(eng, self._frame._meta, pipeline, meta)
        return self._submit(eng, "pipeline", {"pipeline": pipeline, "chunk_size": chunk_size}, device, declared)

    def __repr__(self) -> str:
        return f"<es_infer_nb .infer accessor on a Dask DataFrame of {self._frame.npartitions} partitions>"
