"""Rich HTML reprs of models, pipelines, inference endpoints and engine responses.

``response_html(response)`` renders what ``Engine.request`` returned by the shape of its body:
``trained_model_configs`` as model cards, ``trained_model_stats`` as a stats table, a
``GET _ingest/pipeline`` answer as pipeline cards, ``endpoints`` as endpoint cards, an
``error`` as the ES error, anything else as indented JSON. ``Response._repr_html_`` calls it.
Secrets (``api_key``, ``secret_parameters``, passwords, tokens, authorization headers) are
masked whatever the body holds; GET answers already leave them out.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._html import attrs, box, esc, json_default, table
from .json_view import status_class, status_color

__all__ = ["endpoint_html", "model_html", "pipeline_html", "redact", "response_html"]

MASK = "••••••"
_SECRET_KEY = re.compile(
    r"^(api[_-]?key|secret[_-]?parameters|secrets?|password|passwd|access[_-]?token|token|bearer|authorization|"
    r"client[_-]?secret|aws[_-]?secret[_-]?access[_-]?key|x-api-key)$|(_secret|_password|_api_key)$",
    re.IGNORECASE)


def redact(value: Any) -> Any:
    """A copy of ``value`` with the values of secret-named keys masked (nested dicts and lists too)."""
    if isinstance(value, dict):
        return {k: (MASK if _SECRET_KEY.search(str(k)) and v not in (None, "", {}, []) else redact(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str) and re.match(r"(?i)^\s*(bearer|basic)\s+\S+", value):
        return MASK
    return value


def _json(value: Any) -> str:
    text = json.dumps(redact(value), indent=2, ensure_ascii=False, default=json_default)
    return f'<pre class="esinb-json">{esc(text)}</pre>'


def _details(summary: str, inner: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{inner}</details>"


def model_html(conf: dict[str, Any]) -> str:
    """One trained model config as a card: id, type, task, inputs, description, tags, details."""
    inference = conf.get("inference_config") or {}
    task = next(iter(inference), None)
    mid = conf.get("model_id")
    rows = [("", [k, v]) for k, v in (
        ("model_type", conf.get("model_type") or "tree_ensemble"),
        ("task", task),
        ("input fields", ", ".join(map(str, (conf.get("input") or {}).get("field_names", [])))),
        ("description", conf.get("description")),
        ("tags", ", ".join(map(str, conf.get("tags") or []))),
        ("model_size_bytes", conf.get("model_size_bytes")),
    ) if v not in (None, "")]
    extra = {k: v for k, v in conf.items() if k not in ("model_id", "definition")}
    inner = (f'<div class="esinb-title">model {esc(mid)}</div>' + table(["", ""], rows, "esinb-kv")
             + _details("config", _json(extra)))
    return f'<div{attrs(class_="esinb-model", data_model_id=mid, data_task=task)}>{inner}</div>'


def pipeline_html(pipeline_id: str, body: dict[str, Any]) -> str:
    """One ingest pipeline: description and the processors in order (type, tag, model)."""
    rows = []
    for i, proc in enumerate(body.get("processors") or []):
        for kind, conf in (proc or {}).items():
            conf = conf if isinstance(conf, dict) else {}
            rows.append((attrs(class_="esinb-processor", data_processor=kind, data_position=i),
                         [i, kind, conf.get("tag"), conf.get("model_id") or conf.get("field") or conf.get("target_field")]))
    inner = (f'<div class="esinb-title">pipeline {esc(pipeline_id)}</div>'
             + (f"<div>{esc(body.get('description'))}</div>" if body.get("description") else "")
             + table(["#", "processor", "tag", "model / field"], rows)
             + _details("body", _json(body)))
    return f'<div{attrs(class_="esinb-pipeline", data_pipeline=pipeline_id)}>{inner}</div>'


def endpoint_html(endpoint: dict[str, Any]) -> str:
    """One ``_inference`` endpoint: id, task type, service and its settings (secrets masked)."""
    eid = endpoint.get("inference_id")
    settings = redact(endpoint.get("service_settings") or {})
    rows = [("", [k, v]) for k, v in (("task_type", endpoint.get("task_type")), ("service", endpoint.get("service")))
            if v is not None]
    rows += [("", [f"service_settings.{k}", json.dumps(v, default=json_default) if isinstance(v, (dict, list)) else v])
             for k, v in settings.items()]
    inner = (f'<div class="esinb-title">endpoint {esc(eid)}</div>' + table(["", ""], rows, "esinb-kv")
             + _details("config", _json(endpoint)))
    return f'<div{attrs(class_="esinb-endpoint", data_inference_id=eid, data_task_type=endpoint.get("task_type"))}>{inner}</div>'


def _stats_html(stats: list[dict[str, Any]]) -> str:
    rows = []
    for s in stats:
        inf = s.get("inference_stats") or {}
        dep = s.get("deployment_stats") or {}
        rows.append((attrs(class_="esinb-stats-row", data_model_id=s.get("model_id")),
                     [s.get("model_id"), inf.get("inference_count"), inf.get("failure_count"),
                      inf.get("cache_miss_count"), s.get("pipeline_count"), dep.get("state")]))
    return table(["model_id", "inference_count", "failure_count", "cache_miss_count", "pipeline_count", "deployment"],
                 rows, "esinb-stats")


def _is_pipelines(body: Any) -> bool:
    return isinstance(body, dict) and bool(body) and all(
        isinstance(v, dict) and isinstance(v.get("processors"), list) for v in body.values())


def body_html(body: Any) -> str:
    """The rich HTML of an ES answer body (see the module doc)."""
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            err = body["error"]
            return (f'<div{attrs(class_="esinb-error", data_type=err.get("type"))}><b>{esc(err.get("type"))}</b>: '
                    f'{esc(err.get("reason"))}</div>' + _details("error body", _json(body)))
        if isinstance(body.get("trained_model_configs"), list):
            return "".join(model_html(c) for c in body["trained_model_configs"]) or \
                '<div class="esinb-note">no models</div>'
        if isinstance(body.get("trained_model_stats"), list):
            return _stats_html(body["trained_model_stats"])
        if isinstance(body.get("endpoints"), list):
            return "".join(endpoint_html(e) for e in body["endpoints"]) or \
                '<div class="esinb-note">no endpoints</div>'
        if _is_pipelines(body):
            return "".join(pipeline_html(k, v) for k, v in body.items())
    if isinstance(body, str):  # a cat table: ES's text, as it prints it
        return f'<pre class="esinb-cat">{esc(body)}</pre>'
    return _json(body)


def response_html(response: Any) -> str:
    """``Response`` (status + body) as HTML; the status shows as a badge."""
    status = int(getattr(response, "status", 0))
    color = status_color(status)  # 2xx green, 4xx amber, 5xx red
    badge = f'<span class="esinb-status" style="color:{color};font-weight:bold">{status}</span>'
    return box(badge + body_html(getattr(response, "body", None)), "esinb-response", data_status=status,
               data_status_class=status_class(status))


def response_text(response: Any) -> str:
    """The plain-text counterpart (status line + redacted JSON)."""
    body = json.dumps(redact(getattr(response, "body", None)), indent=2, ensure_ascii=False, default=json_default)
    return f"Response(status={getattr(response, 'status', '?')})\n{body}"

