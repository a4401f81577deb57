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
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

#: engines kept per worker process (one per distinct state + device)
MAX_CACHED_ENGINES = 4

_cache: "OrderedDict[str, tuple[Engine, threading.Lock]]" = OrderedDict()
_cache_lock = threading.Lock()


def engine_state(engine: "Engine") -> dict[str, Any]:
    """The engine's models, aliases, pipelines, endpoints (with their secrets) and deployments as JSON.

    Secrets given as ``{"env": "NAME"}`` stay references: the worker reads its own environment."""
    from ..models.deployments import deployments
    from ..services.registry import endpoints

    eps = endpoints(engine)
    return {
        "models": dict(engine.models.configs.items()),
        "aliases": dict(engine.models.aliases.items()),
        "pipelines": dict(engine.pipelines.items()),
        "endpoints": {i: {"config": c, "secrets": {k: s.stored() for k, s in eps.secrets.get(i).items()}}
                      for i, c in engine.inference_endpoints.items()},
        "deployments": {d.deployment_id: asdict(d.params) for d in deployments(engine).all()},
    }


def job_config(engine: "Engine", method: str, args: dict[str, Any], device: str | None = None) -> dict[str, Any]:
    """``{"state", "device", "method", "args"}``: everything a worker needs to run the call."""
    if method not in ("run", "pipeline"):
        raise ValueError(f"method must be 'run' or 'pipeline', found {method!r}")
    return {"state": engine_state(engine), "device": device if device is not None else engine.device,
            "method": method, "args": args}


def state_key(config: dict[str, Any]) -> str:
    """The hash the worker-side engine is cached under (state and device)."""
    text = json.dumps([config["state"], config.get("device")], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_engine(state: dict[str, Any], device: str | None = None) -> "Engine":
    """A fresh in-memory engine holding ``state`` (models load on first use)."""
    from ..engine import Engine
    from ..models.deployments import DeploymentParams, deployments
    from ..services.registry import build_endpoint, endpoints
    from ..services.secrets import Secret

    engine = Engine(device=device)
    for model_id, stored in state.get("models", {}).items():
        engine.models.put(model_id, stored)
    for alias, target in state.get("aliases", {}).items():
        engine.models.aliases.put(alias, target)
    for pipeline_id, body in state.get("pipelines", {}).items():
        engine.pipelines.put(pipeline_id, body)
    eps = endpoints(engine)
    for inference_id, entry in state.get("endpoints", {}).items():
        config = entry["config"]
        secrets = {k: Secret.from_setting(v, k) for k, v in entry.get("secrets", {}).items()}
        eps.put(build_endpoint(inference_id, config["task_type"], config, secrets))
    deps = deployments(engine)
    for dep_id, params in state.get("deployments", {}).items():
        # started lazily, as a new Engine on a home with deployments has them (model loads on first use)
        deps._by_id[dep_id] = deps._make(DeploymentParams(**params))  # noqa: SLF001
    return engine


def cached_engine(config: dict[str, Any], key: str | None = None) -> "tuple[Engine, threading.Lock]":
    """This process's engine for the config's state (built once), and the lock partitions run under."""
    key = key or state_key(config)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    built = (build_engine(config["state"], config.get("device")), threading.Lock())
    with _cache_lock:
        found = _cache.setdefault(key, built)
        _cache.move_to_end(key)
        while len(_cache) > MAX_CACHED_ENGINES:
            _cache.popitem(last=False)
    return found


def make_predict_fn(config: dict[str, Any] | str, key: str | None = None) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """partition -> result partition for a job config (a dict, or its JSON text).

    ``run``: the input columns followed by the model's result columns (``df.infer.run``);
    ``pipeline``: the documents after the pipeline (``df.infer.pipeline``). Progress bars are off
    (a worker has no notebook); errors are the pandas path's."""
    if isinstance(config, str):
        config = json.loads(config)
    engine, _ = cached_engine(config, key)
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
