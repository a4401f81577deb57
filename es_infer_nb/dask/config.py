"""The job config shipped to Dask workers, and the one factory that turns it into a partition function.

A job config is plain JSON: the engine's state the job may need (trained model configs, aliases,
ingest pipelines, ``_inference`` endpoints, deployments) and the call (``run`` or ``pipeline`` with
its keyword arguments, the device). :func:`make_predict_fn` builds, in whatever process runs it, the
function that maps a pandas partition to its result partition, in the shape of Spark's
``make_predict_fn``::

    predict = make_predict_fn(config)      # once per worker process (cached by the config's hash)
    out = predict(partition)               # the same column-at-a-time code as df.infer.run / .pipeline

The engine it builds is cached per process, keyed by the hash of the state and the device, so each
worker loads a model once however many partitions (and jobs over the same state) it runs.

pytorch models uploaded in definition parts (``PUT _ml/trained_models/<id>/definition/<part>``) live
in the engine's part store, not in the JSON: the state names each one the call may run
(:func:`referenced_models`) by the SHA-256 of its definition and vocabulary, and the bytes travel
beside the config as :class:`Definition` objects (:func:`definitions`; the accessor scatters each
once per client, keyed by that checksum). A worker engine reads them through
:class:`ShippedDefinitions`, so the model loads as on the engine.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pandas as pd

from ..engine import Engine
from ..frames.workers import (Definition, ShippedDefinitions, definitions, engine_state, load_state,
                              referenced_models)

__all__ = ["MAX_CACHED_ENGINES", "Definition", "ShippedDefinitions", "build_engine", "cached_engine", "definitions",
           "engine_state", "job_config", "make_predict_fn", "referenced_models", "state_key"]

#: engines kept per worker process (one per distinct state + device)
MAX_CACHED_ENGINES = 4

_cache: "OrderedDict[str, tuple[Engine, threading.Lock]]" = OrderedDict()
_cache_lock = threading.Lock()


def job_config(engine: Engine, method: str, args: dict[str, Any], device: str | None = None,
               shipped: dict[str, Definition] | None = None) -> dict[str, Any]:
    """``{"state", "device", "method", "args"}``: everything a worker needs to run the call, besides
    the definitions of models uploaded in parts (``shipped``, default :func:`definitions`)."""
    if method not in ("run", "pipeline"):
        raise ValueError(f"method must be 'run' or 'pipeline', found {method!r}")
    return {"state": engine_state(engine, shipped), "device": device if device is not None else engine.device,
            "method": method, "args": args}


def state_key(config: dict[str, Any]) -> str:
    """The hash the worker-side engine is cached under (state and device)."""
    text = json.dumps([config["state"], config.get("device")], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_engine(state: dict[str, Any], device: str | None = None,
                 shipped: dict[str, Definition] | None = None) -> Engine:
    """A fresh in-memory engine holding ``state`` (models load on first use); the definitions the state
    names come from ``shipped`` (their checksums must match)."""
    return load_state(Engine(device=device), state, shipped)


def cached_engine(config: dict[str, Any], key: str | None = None,
                  shipped: dict[str, Definition] | None = None) -> tuple[Engine, threading.Lock]:
    """This process's engine for the config's state (built once), and the lock partitions run under;
    ``shipped``: the definitions of models uploaded in parts the state names."""
    key = key or state_key(config)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    built = (build_engine(config["state"], config.get("device"), shipped), threading.Lock())
    with _cache_lock:
        found = _cache.setdefault(key, built)
        _cache.move_to_end(key)
        while len(_cache) > MAX_CACHED_ENGINES:
            _cache.popitem(last=False)
    return found


def make_predict_fn(config: dict[str, Any] | str, key: str | None = None,
                    definitions: dict[str, Definition] | None = None) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """partition -> result partition for a job config (a dict, or its JSON text); ``definitions``: those
    of the models uploaded in parts the config names (:func:`definitions` on the engine).

    ``run``: the input columns followed by the model's result columns (``df.infer.run``);
    ``pipeline``: the documents after the pipeline (``df.infer.pipeline``). Progress bars are off
    (a worker has no notebook); errors are the pandas path's."""
    if isinstance(config, str):
        config = json.loads(config)
    engine, _ = cached_engine(config, key, definitions)
    method, args = config["method"], dict(config["args"])
    device = config.get("device")
    if method == "run":
        model_id = args.pop("model_id")

        def run(partition: pd.DataFrame) -> pd.DataFrame:
            out = partition.infer.run(model_id, engine=engine, device=device, progress=False, **args)
            assert out is not None
            return out

        return run
    if method == "pipeline":
        pipeline = args.pop("pipeline")

        def pipe(partition: pd.DataFrame) -> pd.DataFrame:
            return partition.infer.pipeline(pipeline, engine=engine, device=device, **args)

        return pipe
    raise ValueError(f"unknown method {method!r} in the job config")
