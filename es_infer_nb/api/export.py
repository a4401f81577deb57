"""Take a model, pipeline or inference endpoint to a cluster: the body its ``PUT`` accepts
(``Engine.export(id)``, ``%infer export ID``), or a Kibana Dev Tools console snippet.

* trained models: ``GET _ml/trained_models/<id>?exclude_generated=true&include=definition,...``
  (``compressed_definition``, as eland uploads it), without what a ``PUT`` rejects (``model_id``
  stays in the path; ``location``, an NLP config's ``vocabulary``, ``metadata.model_aliases`` and
  ``metadata.total_feature_importance`` are not settable at creation). The console form adds ``PUT _ml/trained_models/<id>/model_aliases/<alias>``
  lines. A pytorch model's weights are not part of the config: they go up with eland
  (``eland_import_hub_model``) or ``PUT _ml/trained_models/<id>/definition/<part>``;
* ingest pipelines: the stored body (without the ``created_date`` / ``modified_date`` fields newer
  clusters generate);
* ``_inference`` endpoints: ``service``, ``service_settings``, ``task_settings``,
  ``chunking_settings`` for ``PUT _inference/<task_type>/<id>``, each secret (``api_key``, every
  ``secret_parameters`` entry, a masked credential header) written as a placeholder such as
  ``"<api_key>"``, never its value.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..services.registry import endpoints
from ..services.secrets import MASK

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["KINDS", "ConsoleSnippet", "Export", "export"]

KINDS = ("model", "pipeline", "endpoint")
_PIPELINE_GENERATED = ("created_date", "created_date_millis", "modified_date", "modified_date_millis")
_NOT_SETTABLE_METADATA = ("model_aliases", "total_feature_importance")


class ConsoleSnippet(str):
    """Kibana Dev Tools console text (a ``str``) that a notebook shows as it is, ready to copy."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


class Export(dict):
    """The ``PUT`` body (a dict), with the request it goes with (``method``, ``path``) and the
    console lines for it (:meth:`console`)."""

    def __init__(self, kind: str, path: str, body: dict[str, Any], extra: list[str] | None = None,
                 note: str | None = None) -> None:
        super().__init__(body)
        self.kind = kind
        self.method = "PUT"
        self.path = path
        self.extra = extra or []
        self.note = note

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # a notebook shows JSON, ready to paste
        p.text(json.dumps(dict(self), indent=2, ensure_ascii=False))

    def console(self) -> ConsoleSnippet:
        """``PUT <path>`` and the indented JSON body, as Kibana Dev Tools takes them."""
        lines = [f"# {self.note}"] if self.note else []
        lines.append(f"{self.method} {self.path}\n{json.dumps(dict(self), indent=2, ensure_ascii=False)}")
        lines.extend(self.extra)
        return ConsoleSnippet("\n\n".join(lines) + "\n")


def _kinds_of(engine: "Engine", resource_id: str) -> list[str]:
    found = []
    if engine.models.resolve(resource_id) is not None:
        found.append("model")
    if resource_id in engine.pipelines:
        found.append("pipeline")
    if resource_id in endpoints(engine).ids():
        found.append("endpoint")
    return found


def export(engine: "Engine", resource_id: str, kind: str | None = None) -> Export:
    """The cluster-ready ``PUT`` of ``resource_id`` (a trained model id or alias, a pipeline id, an
    ``_inference`` endpoint id); ``kind`` (``model`` / ``pipeline`` / ``endpoint``) picks one when
    several share the id. Raises a 404 :class:`ApiError` for an unknown id."""
    if not isinstance(resource_id, str) or not resource_id:
        raise TypeError(f"export needs a model, pipeline or endpoint id (a non-empty str), found {resource_id!r}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, found {kind!r}")
    found = _kinds_of(engine, resource_id)
    if kind is not None:
        found = [k for k in found if k == kind]
    if not found:
        what = kind or "model, pipeline or inference endpoint"
        raise ApiError("resource_not_found_exception", f"Could not find {what} [{resource_id}]", 404)
    if len(found) > 1:
        raise ValueError(f"[{resource_id}] is a {' and a '.join(found)}: pass kind= ({' or '.join(found)})")
    return {"model": _model, "pipeline": _pipeline, "endpoint": _endpoint}[found[0]](engine, resource_id)


def _model(engine: "Engine", model_id: str) -> Export:
    model_id = engine.models.resolve(model_id) or model_id
    resp = engine.request("GET", f"_ml/trained_models/{model_id}", params={
        "exclude_generated": "true", "decompress_definition": "false",
        "include": "definition,feature_importance_baseline,hyperparameters"}).raise_for_status()
    config = dict(resp.body["trained_model_configs"][0])
    for key in ("model_id", "fully_defined", "location"):  # the path's id; set by the cluster
        config.pop(key, None)
    config["inference_config"] = {task: ({k: v for k, v in settings.items() if k != "vocabulary"}
                                         if isinstance(settings, dict) else settings)
                                  for task, settings in (config.get("inference_config") or {}).items()}
    metadata = dict(config.get("metadata") or {})
    aliases = list(metadata.get("model_aliases") or [])
    for key in _NOT_SETTABLE_METADATA:
        metadata.pop(key, None)
    if metadata:
        config["metadata"] = metadata
    else:
        config.pop("metadata", None)
    extra = [f"PUT _ml/trained_models/{model_id}/model_aliases/{alias}" for alias in aliases]
    note = None
    if config.get("model_type") == "pytorch":
        note = (f"the weights are not part of the config: upload them with eland (eland_import_hub_model) or "
                f"PUT _ml/trained_models/{model_id}/definition/<part> and the vocabulary")
    return Export("model", f"_ml/trained_models/{model_id}", config, extra, note)


def _pipeline(engine: "Engine", pipeline_id: str) -> Export:
    resp = engine.request("GET", f"_ingest/pipeline/{pipeline_id}").raise_for_status()
    body = {k: v for k, v in resp.body[pipeline_id].items() if k not in _PIPELINE_GENERATED}
    return Export("pipeline", f"_ingest/pipeline/{pipeline_id}", body)


def _endpoint(engine: "Engine", inference_id: str) -> Export:
    resp = engine.request("GET", f"_inference/{inference_id}").raise_for_status()
    shown = dict(resp.body["endpoints"][0])
    endpoint = endpoints(engine).get(inference_id)
    settings = dict(shown.get("service_settings") or {})
    headers = settings.get("headers")
    secrets: list[str] = []
    if isinstance(headers, dict):
        settings["headers"] = {k: (f"<{k.lower()}>" if v == MASK else v) for k, v in headers.items()}
        secrets.extend(f"<{k.lower()}>" for k, v in headers.items() if v == MASK)
    for name in endpoint.service.secret_fields:
        if name == "secret_parameters":
            names = sorted(endpoint.secrets)
            if names:
                settings[name] = {key: f"<{key}>" for key in names}
                secrets.extend(f"<{key}>" for key in names)
        elif name in endpoint.secrets:
            settings[name] = f"<{name}>"
            secrets.append(f"<{name}>")
    body: dict[str, Any] = {"service": shown["service"], "service_settings": settings}
    for key in ("task_settings", "chunking_settings"):
        if shown.get(key):
            body[key] = shown[key]
    note = f"replace the placeholders {', '.join(secrets)} with the secrets" if secrets else None
    return Export("endpoint", f"_inference/{shown['task_type']}/{inference_id}", body, note=note)

