"""A registered model's ``interface``: JSON schemas its Predict input and output must meet.

ml-commons keeps ``interface.input`` / ``interface.output`` as JSON schema text (other keys dropped) and
checks a Predict call against them (``TransportPredictionTaskAction.validateInputSchema``,
``MLPredictTaskRunner.validateOutputSchema``, JSON Schema draft 2020-12): the input as ``MLInput`` writes
it (``{"algorithm": "REMOTE", "parameters": {...}, "action_type": "PREDICT"}``, a parameter's text read
back as JSON where the schema does not call it a string), the output as ``ModelTensorOutput``. A failure
is a 400 naming the schema to update.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from ..errors import ApiError
from .ml_process import iae

__all__ = ["check_input", "check_output", "interface_of"]

KEYS = ("input", "output")
_TYPES = (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float), ("string", str),
          ("array", list), ("object", dict))


def interface_of(raw: Any) -> dict[str, str] | None:
    """``MLRegisterModelInput``'s ``interface``: its ``input`` / ``output`` as JSON text (a schema given as
    an object is written as JSON), other keys dropped; each must be a JSON schema."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise iae("[interface] must be an object with [input] and / or [output] JSON schemas")
    out: dict[str, str] = {}
    for key in KEYS:
        value = raw.get(key)
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        try:
            jsonschema.Draft202012Validator.check_schema(json.loads(text))
        except (ValueError, jsonschema.SchemaError) as err:
            raise iae(f"[interface.{key}] is not a JSON schema: {str(err).splitlines()[0]}") from None
        out[key] = text
    return out


def _kind(value: Any) -> str:
    return next(name for name, cls in _TYPES if isinstance(value, cls) and not (cls is int and isinstance(value, bool)))


def _messages(schema_text: str, instance: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(json.loads(schema_text))
    out = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        where = "".join(f"/{p}" for p in err.absolute_path) or "/"
        if err.validator == "type":
            expected = err.validator_value if isinstance(err.validator_value, str) else ", ".join(err.validator_value)
            out.append(f"{where}: {_kind(err.instance)} found, {expected} expected")
        else:
            out.append(f"{where}: {err.message}")
    return out


def _check(kind: str, schema_text: str, instance: Any) -> None:
    errors = _messages(schema_text, instance)
    if errors:
        written = json.dumps(instance, separators=(",", ":"), ensure_ascii=False)
        raise ApiError("status_exception", f"Error validating {kind} schema, if you think this is expected, please "
                       f"update your '{kind}' field in the 'interface' field for this model: Validation failed: "
                       f"[{', '.join(errors)}] for instance: {written} with schema: {schema_text}", 400)


def check_input(interface: dict[str, str] | None, algorithm: str, body: dict[str, Any]) -> None:
    """A Predict call's input against ``interface.input``."""
    schema_text = (interface or {}).get("input")
    if not schema_text:
        return
    instance: dict[str, Any] = {"algorithm": algorithm}
    if algorithm == "REMOTE":
        wanted = json.loads(schema_text).get("properties", {}).get("parameters", {}).get("properties", {})
        params: dict[str, Any] = {}
        for key, value in (body.get("parameters") or {}).items():
            if isinstance(value, str) and (wanted.get(key) or {}).get("type") != "string":
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            params[key] = value
        instance.update({"parameters": params, "action_type": "PREDICT"})
    else:
        instance.update({k: v for k, v in body.items() if k != "algorithm"})
    _check("input", schema_text, instance)


def check_output(interface: dict[str, str] | None, output: dict[str, Any]) -> None:
    """A Predict answer against ``interface.output``."""
    schema_text = (interface or {}).get("output")
    if schema_text:
        _check("output", schema_text, output)
