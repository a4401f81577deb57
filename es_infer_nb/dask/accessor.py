"""``ddf.infer``: the pandas accessor's surface on Dask DataFrames (``ddf.infer.run``, ``ddf.infer.pipeline``).

Importing this module registers the accessor (``es_infer_nb`` does it when ``dask.dataframe`` is
imported). Both methods are lazy: they return a Dask DataFrame whose partitions run
:func:`es_infer_nb.dask.config.make_predict_fn`'s function on the workers. The job config (JSON) is
one task of the graph (``dask.delayed``), so it travels to each worker once; each worker process
builds the engine and loads the model once (cached by the config's hash) and runs one partition at
a time through it. The result columns are declared from the configs (:mod:`.meta`): no model runs
while the graph is built.

The definitions of pytorch models uploaded in parts travel beside the config: on a ``distributed``
client each is scattered to every worker once (kept per client and checksum, so later jobs send
nothing); a frame built while a client is current is computed on that client.
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

from ..engine import default_engine
from ..errors import ApiError
from ..frames.meta import conform, pipeline_meta, run_meta
from . import stats as _stats
from .config import (Definition, cached_engine, definitions, job_config, make_predict_fn, referenced_models,
                     state_key)

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["DaskInferAccessor"]

_Job = tuple[Callable[[pd.DataFrame], pd.DataFrame], "Engine", threading.Lock]
_fns: "OrderedDict[str, _Job]" = OrderedDict()
_fns_lock = threading.Lock()


def _predict_fn(config_text: str, key: str, job: str, shipped: tuple[Definition, ...]) -> _Job:
    """The job's predict function and worker engine in this process (the config parsed once per job)."""
    with _fns_lock:
        found = _fns.get(job)
    if found is None:
        config = json.loads(config_text)
        by_id = {d.model_id: d for d in shipped}
        engine, lock = cached_engine(config, key, by_id)
        found = (make_predict_fn(config, key, by_id), engine, lock)
        with _fns_lock:
            _fns[job] = found
            while len(_fns) > 16:
                _fns.popitem(last=False)
    return found


def run_partition(partition: pd.DataFrame, config_text: str, key: str, job: str, meta: pd.DataFrame,
                  shipped: tuple[Definition, ...] = (), partition_info: dict[str, Any] | None = None
                  ) -> pd.DataFrame:
    """One partition on a worker: the job's predict function, counters sent home (with the partition's
    number, so that a partition Dask runs again counts once), columns as declared."""
    if len(partition) == 0:
        return meta.iloc[:0].set_axis(partition.index[:0], axis=0)
    fn, engine, lock = _predict_fn(config_text, key, job, shipped)
    with lock:  # one partition at a time per worker engine: exact counter differences
        before = _stats.snapshot(engine)
        out = fn(partition)
        delta = _stats.difference(_stats.snapshot(engine), before)
    _stats.report(job, delta, (partition_info or {}).get("number"))
    return conform(out, meta)


_scattered: "OrderedDict[tuple[str, str], Any]" = OrderedDict()
_scattered_lock = threading.Lock()


def _ship(parts: dict[str, Definition]) -> Any:
    """The definitions of models uploaded in parts, as one graph dependency. On a distributed client
    each definition is scattered to every worker once and its future kept (keyed by the client and
    the checksum), so later jobs over the same model send nothing; without one (local schedulers),
    the definitions are a task of the graph."""
    if not parts:
        return ()
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):  # the local schedulers: in this process (or pickled to a pool)
        client = None
    items: list[Any] = []
    for d in parts.values():
        if client is None:
            items.append(d)
            continue
        cache_key = (client.id, d.sha256)
        with _scattered_lock:
            future = _scattered.get(cache_key)
        if future is None or future.status != "finished":
            future = client.scatter([d], broadcast=True, hash=False)[0]
            with _scattered_lock:
                _scattered[cache_key] = future
                while len(_scattered) > 8:
                    _scattered.popitem(last=False)
        items.append(future)
    name = "es-infer-definitions-" + hashlib.sha256("".join(d.sha256 for d in parts.values()).encode()).hexdigest()[:24]
    return dask.delayed(tuple, pure=True)(items, dask_key_name=name)


def _engine(engine: "Engine | None") -> "Engine":
    if engine is not None:
        return engine

    return default_engine()


@register_dataframe_accessor("infer")
class DaskInferAccessor:
    """Elasticsearch inference over a Dask DataFrame; same arguments as the pandas ``df.infer``."""

    def __init__(self, frame: Any) -> None:
        self._frame = frame

    def _submit(self, engine: "Engine", method: str, args: dict[str, Any], device: str | None,
                meta: pd.DataFrame) -> Any:
        parts = definitions(engine, referenced_models(engine, args))
        config = job_config(engine, method, args, device, parts)
        text = json.dumps(config, separators=(",", ":"))
        key = state_key(config)
        job = uuid.uuid4().hex
        _stats.register_job(job, engine)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
        shipped = dask.delayed(text, pure=True, name=f"es-infer-config-{digest}")  # one task: shipped once
        return self._frame.map_partitions(run_partition, shipped, key, job, meta, _ship(parts), meta=meta,
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
        precision: str | None = None,
    ) -> Any:
        """``df.infer.run`` on every partition; returns a lazy Dask DataFrame (input columns then
        result columns, every row, same index and order). The result columns and dtypes are declared
        from the model's or endpoint's config (:mod:`es_infer_nb.frames.meta`), as the pandas path
        types them; ``meta`` (``{column: dtype}``) declares them instead. A text model whose text field
        is not a column reads the frame's one string column (several: a ValueError naming them), as
        ``df.infer.run`` does, chosen once here from the frame's dtypes."""
        if not isinstance(model_id, str) or not model_id:
            raise TypeError(f"model_id must be a non-empty str, found {type(model_id).__name__}")
        eng = _engine(engine)
        if input_output is None:  # a text model on a frame with one text column reads it: one choice for all partitions
            from ..frames.run import text_field_map

            field_map = text_field_map(eng, model_id, self._frame._meta, field_map, from_dtypes=True)
        args: dict[str, Any] = {"model_id": model_id, "inference_config": inference_config, "field_map": field_map,
                                "target_field": target_field, "batch_size": batch_size, "input_output": input_output,
                                "precision": precision}
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
        stored pipeline move in the engine as the partitions finish. The columns and dtypes are declared
        from the pipeline definition and the model configs (:mod:`es_infer_nb.frames.pipeline_meta`), as the
        pandas path types them; ``meta`` (``{column: dtype}``) declares the columns whose names depend on
        the data (a mustache ``field``, ``text_expansion`` tokens, ...) or another dtype."""
        eng = _engine(engine)
        if isinstance(pipeline, str):
            if pipeline not in eng.pipelines:
                raise ApiError("illegal_argument_exception", f"pipeline with id [{pipeline}] does not exist", 400)
        elif not isinstance(pipeline, dict):
            raise TypeError(f"pipeline must be a pipeline id (str) or body (dict), found {type(pipeline).__name__}")
        declared = pipeline_meta(eng, self._frame._meta, pipeline, meta)
        return self._submit(eng, "pipeline", {"pipeline": pipeline, "chunk_size": chunk_size}, device, declared)

    def __repr__(self) -> str:
        return f"<es_infer_nb .infer accessor on a Dask DataFrame of {self._frame.npartitions} partitions>"
