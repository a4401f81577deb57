"""The engine state a DataFrame job ships to the processes that run its partitions (Dask workers),
and the state a worker's engine is filled with.

:func:`engine_state` turns an engine's models, aliases, pipelines, ``_inference`` endpoints (with their
secrets as stored references) and deployments into plain JSON; :func:`load_state` puts it into a fresh
in-memory engine. pytorch models uploaded in definition parts travel beside the
state as :class:`Definition` objects (:func:`definitions`, named by :func:`referenced_models`), read
on the worker through :class:`ShippedDefinitions`. The counters a worker moved come home as
:mod:`.counters` differences.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..models.deployments import DeploymentParams, deployments
from ..models.native_definitions import NativeDefinitions, native_definitions, use_definitions
from ..services.registry import build_endpoint, endpoints
from ..services.secrets import Secret

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["Definition", "ShippedDefinitions", "checked_definitions", "definitions", "engine_state", "load_state", "referenced_models"]


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


def load_state(engine: "Engine", state: dict[str, Any], shipped: dict[str, Definition] | None = None) -> "Engine":
    """Put ``state`` (:func:`engine_state`) into ``engine``, a fresh in-memory one (models load on first
    use); the definitions the state names come from ``shipped`` (their checksums must match)."""
    # the part store native_definitions(engine) answers with: the shipped definitions the state names
    use_definitions(engine, ShippedDefinitions(checked_definitions(state.get("definitions") or {}, shipped or {})))
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


def checked_definitions(wanted: dict[str, str], shipped: dict[str, Definition]) -> dict[str, Definition]:
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
