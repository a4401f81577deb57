"""``_cluster/settings``: the dynamic cluster settings this engine reads.

Only ``xpack.ml.max_inference_processors`` (ES ``InferenceProcessor.MAX_INFERENCE_PROCESSORS``:
an integer, default 50, at least 1) is known; another key answers ES's "not recognized" error.
``persistent`` settings are kept in the engine's home, ``transient`` ones in memory; a transient
value wins over a persistent one, and ``null`` resets a setting to its default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from .request import Request
from .routing import route

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

MAX_INFERENCE_PROCESSORS = "xpack.ml.max_inference_processors"
DEFAULTS: dict[str, int] = {MAX_INFERENCE_PROCESSORS: 50}
MINIMUM: dict[str, int] = {MAX_INFERENCE_PROCESSORS: 1}
SCOPES = ("persistent", "transient")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"xpack": {"ml": {"x": 1}}}`` and ``{"xpack.ml.x": 1}`` alike -> ``{"xpack.ml.x": 1}``."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, inner in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        out.update(_flatten(inner, name) if isinstance(inner, dict) else {name: inner})
    return out


def _render(values: dict[str, Any], flat: bool) -> dict[str, Any]:
    """Settings as ES writes them: dotted keys with ``flat_settings``, nested objects otherwise."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if flat:
            out[name] = str(value)
            continue
        node = out
        *parents, last = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = str(value)
    return out


def _int_setting(name: str, value: Any) -> int:
    text = value if isinstance(value, str) else None
    if isinstance(value, bool) or not (isinstance(value, int) or text is not None):
        raise ApiError("illegal_argument_exception", f"Failed to parse value [{value}] for setting [{name}]", 400)
    try:
        number = int(text) if text is not None else int(value)
    except ValueError:
        raise ApiError("illegal_argument_exception", f"Failed to parse value [{value}] for setting [{name}]",
                       400) from None
    if number < MINIMUM[name]:
        raise ApiError("illegal_argument_exception",
                       f"Failed to parse value [{value}] for setting [{name}] must be >= {MINIMUM[name]}", 400)
    return number


def _scope_store(engine: "Engine", scope: str) -> dict[str, Any]:
    if scope == "transient":
        if not hasattr(engine, "transient_settings"):
            engine.transient_settings = {}  # type: ignore[attr-defined]
        return engine.transient_settings  # type: ignore[attr-defined]
    return dict(engine.cluster_settings.get("persistent") or {})


def setting(engine: "Engine", name: str) -> Any:
    """The effective value of a known setting (transient, else persistent, else the default)."""
    for scope in ("transient", "persistent"):
        values = _scope_store(engine, scope)
        if name in values:
            return values[name]
    return DEFAULTS[name]


@route("PUT", "_cluster/settings", "flat_settings", "master_timeout", "timeout")
def put_settings(engine: "Engine", req: Request) -> Any:
    body = req.object_body("cluster settings")
    unknown_top = [k for k in body if k not in SCOPES]
    if unknown_top:
        raise ApiError("illegal_argument_exception", f"request body contains unknown fields {unknown_top}", 400)
    changes: dict[str, dict[str, Any]] = {}
    for scope in SCOPES:
        flat = _flatten(body.get(scope) or {})
        for name, value in flat.items():
            if name not in DEFAULTS:
                raise ApiError("illegal_argument_exception", f"{scope} setting [{name}], not recognized", 400)
            changes.setdefault(scope, {})[name] = None if value is None else _int_setting(name, value)
    flat = req.params.get("flat_settings") in ("", "true", True)
    applied: dict[str, dict[str, Any]] = {"persistent": {}, "transient": {}}
    for scope, values in changes.items():
        current = _scope_store(engine, scope)
        for name, value in values.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
                applied[scope][name] = value
        if scope == "persistent":
            engine.cluster_settings.put("persistent", current)
    return {"acknowledged": True, **{scope: _render(values, flat) for scope, values in applied.items()}}


@route("GET", "_cluster/settings", "flat_settings", "include_defaults", "master_timeout", "timeout")
def get_settings(engine: "Engine", req: Request) -> Any:
    flat = req.params.get("flat_settings") in ("", "true", True)
    out: dict[str, Any] = {scope: _render(_scope_store(engine, scope), flat) for scope in SCOPES}
    if req.params.get("include_defaults") in ("", "true", True):
        out["defaults"] = _render(DEFAULTS, flat)
    return out
