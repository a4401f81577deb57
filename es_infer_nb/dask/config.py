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
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..models.native_definitions import NativeDefinitions, native_definitions

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

#: engines kept per worker process (one per distinct state + device)
MAX_CACHED_ENGINES = 4

_cache: "OrderedDict[str, tuple[Engine, threading.Lock]]" = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Definition:
    """A pytorch model's uploaded definition (TorchScript bytes) and vocabulary, and their checksum."""

    model_id: str
    sha256: str
    definition: bytes
    vocabulary: dict[str, Any] | None


def referenced_models(engine: "Engine", value: Any) -> set[str]:
    """The model ids a call may run: every string in ``value`` (the call's arguments) that names a model,
    alias or deployment, following the pipelines and ``_inference`` endpoints it names (every stored
    pipeline when a string is a template, as a ``pipeline`` processor's ``name`` may be)."""
    from ..models.deployments import deployments

    deps = deployments(engine)
    found: set[str] = set()
    seen: set[str] = set()
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, str) and item not in seen:
            seen.add(item)
            model_id = deps.model_id_of(item)
            if model_id is not None:
                found.add(model_id)
            todo.append(engine.pipelines.get(item))
            todo.append(engine.inference_endpoints.get(item))
            if "{{" in item:
                todo.extend(engine.pipelines.get(p) for p in engine.pipelines if p not in seen)
    return found


def definitions(engine: "Engine", models: set[str] | None = None) -> dict[str, Definition]:
    """The models of the engine uploaded in definition parts (all parts present), of ``models`` if given,
    read and hashed now."""
    parts = native_definitions(engine)
    out = {}
    for model_id in engine.models.configs:
        if (models is not None and model_id not in models) or not parts.fully_defined(model_id):
            continue
        data, vocabulary = parts.definition_bytes(model_id), parts.vocabulary(model_id)
        digest = hashlib.sha256(data)
        digest.update(json.dumps(vocabulary, sort_keys=True).encode("utf-8"))
        out[model_id] = Definition(model_id, digest.hexdigest(), data, vocabulary)
    return out


class ShippedDefinitions(NativeDefinitions):
    """A worker engine's part store: the definitions shipped with the job (read-only, in memory)."""

    def __init__(self, shipped: dict[str, Definition]) -> None:
        super().__init__(None)
        self._shipped = dict(shipped)

    def has_parts(self, model_id: str) -> bool:
        return model_id in self._shipped

    def fully_defined(self, model_id: str) -> bool:
        return model_id in self._shipped

    def total_length(self, model_id: str) -> int:
        found = self._shipped.get(model_id)
        return len(found.definition) if found is not None else 0

    def definition_bytes(self, model_id: str) -> bytes:
        return self._shipped[model_id].definition

    def vocabulary(self, model_id: str) -> dict[str, Any] | None:
        found = self._shipped.get(model_id)
        return found.vocabulary if found is not None else None


def engine_state(engine: "Engine", shipped: dict[str, Definition] | None = None) -> dict[str, Any]:
    """The engine's models, aliases, pipelines, endpoints (with their secrets) and deployments as JSON,
    and the checksum of each definition in ``shipped`` (default: :func:`definitions`).

    Secrets given as ``{"env": "NAME"}`` stay references: the worker reads its own environment."""
    from ..models.deployments import deployments
    from ..services.registry import endpoints

    eps = endpoints(engine)
    shipped = definitions(engine) if shipped is None else shipped
    return {
        "models": dict(engine.models.configs.items()),
        "aliases": dict(engine.models.aliases.items()),
        "pipelines": dict(engine.pipelines.items()),
        "endpoints": {i: {"config": c, "secrets": {k: s.stored() for k, s in eps.secrets.get(i).items()}}
                      for i, c in engine.inference_endpoints.items()},
        "deployments": {d.deployment_id: asdict(d.params) for d in deployments(engine).all()},
        "definitions": {model_id: d.sha256 for model_id, d in shipped.items()},
    }


def job_config(engine: "Engine", method: str, args: dict[str, Any], device: str | None = None,
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
                 shipped: dict[str, Definition] | None = None) -> "Engine":
    """A fresh in-memory engine holding ``state`` (models load on first use); the definitions the state
    names come from ``shipped`` (their checksums must match)."""
    from ..engine import Engine
    from ..models.deployments import DeploymentParams, deployments
    from ..services.registry import build_endpoint, endpoints
    from ..services.secrets import Secret

    engine = Engine(device=device)
    # the part store native_definitions(engine) answers with: the shipped definitions the state names
    engine._native_definitions = ShippedDefinitions(_checked(state.get("definitions") or {}, shipped or {}))
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


def _checked(wanted: dict[str, str], shipped: dict[str, Definition]) -> dict[str, Definition]:
    """The shipped definitions the state names, each with the checksum the state gives."""
    out = {}
    for model_id, digest in wanted.items():
        found = shipped.get(model_id)
        if found is None or found.sha256 != digest:
            raise ValueError(f"the job names the definition of model [{model_id}] (sha256 {digest[:12]}...) but "
                             f"{'another one' if found is not None else 'none'} was shipped with it; build the job "
                             "with ddf.infer.run / ddf.infer.pipeline, or pass make_predict_fn(config, "
                             "definitions=es_infer_nb.dask.config.definitions(engine))")
        out[model_id] = found
    return out


def cached_engine(config: dict[str, Any], key: str | None = None,
                  shipped: dict[str, Definition] | None = None) -> "tuple[Engine, threading.Lock]":
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
