"""Adapters for ``inference_api.json`` (tests/conformance/runners/inference_api.py), on the real code paths:
the custom service's settings parsing, request rendering, response / error parsers and the JSON path
extractor; ``custom_end_to_end`` PUTs and POSTs an endpoint through ``Engine.request`` against a
loopback HTTP server answering the case's response."""

from __future__ import annotations

from typing import Any

from es_infer_nb.errors import ApiError
from es_infer_nb.services.base import InferenceContext
from es_infer_nb.services.custom import parse_custom_settings, parse_parameters, render_request
from es_infer_nb.services.json_path import extract
from es_infer_nb.services.loopback import LoopbackServer
from es_infer_nb.services.parsers import ErrorParser, parse_json_parser
from es_infer_nb.services.secrets import Secret

_MOCK_URL = "<mock server url>"


def _secrets(secret_settings: dict[str, Any] | None) -> dict[str, Secret]:
    raw = (secret_settings or {}).get("secret_parameters") or {}
    return {k: Secret(v) for k, v in raw.items()}


def custom_render_request(task_type: str, service_settings: dict[str, Any], task_settings: dict[str, Any],
                          secret_settings: dict[str, Any], input: dict[str, Any]) -> dict[str, Any]:
    settings = parse_custom_settings(task_type, service_settings)
    ctx = InferenceContext(task_type, dict(task_settings or {}), input.get("input_type"), input.get("query"),
                           input.get("top_n"), input.get("return_documents"))
    req = render_request(task_type, settings, parse_parameters(task_settings or {}), _secrets(secret_settings),
                         list(input.get("input") or []), ctx)
    return {"url": req.url, "headers": req.headers, "body": req.body.decode("utf-8"), "method": req.method}


def custom_parse_response(task_type: str, json_parser: dict[str, Any], response_body: Any) -> dict[str, Any]:
    return parse_json_parser(task_type, json_parser).parse(response_body)


def custom_parse_error(error_parser: dict[str, Any], response_body_raw: str) -> dict[str, Any]:
    return ErrorParser.from_settings(error_parser).message(response_body_raw)


def custom_parser_settings(task_type: str | None = None, json_parser: dict[str, Any] | None = None,
                           error_parser: dict[str, Any] | None = None, scope: str | None = None) -> dict[str, Any]:
    if error_parser is not None:
        return {"error_parser": ErrorParser.from_settings(error_parser, scope).to_settings()}
    return {"json_parser": parse_json_parser(task_type or "", json_parser, scope).to_settings()}


def custom_service_settings_parse(task_type: str, parse_context: str, service_settings: dict[str, Any]) -> dict[str, Any]:
    return parse_custom_settings(task_type, service_settings, strict=parse_context == "request").to_parsed()


def custom_service_settings_xcontent(task_type: str, service_settings: dict[str, Any]) -> dict[str, Any]:
    return {"settings_json": parse_custom_settings(task_type, service_settings).to_public()}


def json_path_extract(input: Any, path: str) -> dict[str, Any]:
    found = extract(input, path)
    return {"value": found.value, "traversed_fields": found.traversed_fields}


def custom_end_to_end(task_type: str, service_settings: dict[str, Any], task_settings: dict[str, Any],
                      secret_settings: dict[str, Any], input: dict[str, Any], http_response: dict[str, Any]) -> Any:
    from es_infer_nb.engine import Engine

    answer = (http_response.get("status", 200), http_response.get("body"))
    with LoopbackServer(lambda _req: answer) as server:
        settings = {k: (server.url if v == _MOCK_URL else v) for k, v in service_settings.items()}
        settings["secret_parameters"] = dict((secret_settings or {}).get("secret_parameters") or {})
        engine = Engine()
        put = engine.request("PUT", f"_inference/{task_type}/conformance-endpoint",
                             {"service": "custom", "service_settings": settings, "task_settings": task_settings})
        if put.status != 200:
            err = put.body["error"]
            raise ApiError(err["type"], err["reason"], put.status)
        # the upstream tests call the service itself (CustomService.infer, internal input types included):
        # the service layer here too, its answer in the REST shape
        from es_infer_nb.services.runner import resolve, rest_answer, run

        inputs = input.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        endpoint = resolve(engine, "conformance-endpoint", task_type)
        output = run(engine, endpoint, inputs, query=input.get("query"), input_type=input.get("input_type"))
        return rest_answer(output, inputs=inputs)


def custom_chunked_infer(task_type: str, service_settings: dict[str, Any], input: list[str],
                         http_response: dict[str, Any], chunking_settings: dict[str, Any] | None = None,
                         secret_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Chunked inference (the semantic_text path) on a custom endpoint answered by ``http_response``:
    per input its chunks (``start``, ``end`` and the result), and the JSON bodies the service received."""
    from es_infer_nb.engine import Engine
    from es_infer_nb.services.runner import infer_chunked

    answer = (http_response.get("status", 200), http_response.get("body"))
    with LoopbackServer(lambda _req: answer) as server:
        settings = {k: (server.url if v == _MOCK_URL else v) for k, v in service_settings.items()}
        settings["secret_parameters"] = dict((secret_settings or {}).get("secret_parameters") or {})
        body: dict[str, Any] = {"service": "custom", "service_settings": settings}
        if chunking_settings is not None:
            body["chunking_settings"] = chunking_settings
        engine = Engine()
        put = engine.request("PUT", f"_inference/{task_type}/conformance-endpoint", body)
        if put.status != 200:
            err = put.body["error"]
            raise ApiError(err["type"], err["reason"], put.status)
        out = infer_chunked(engine, "conformance-endpoint", list(input))
        results = []
        for entry in out:
            if isinstance(entry, ApiError):
                raise entry
            results.append(entry)
        return {"results": results, "requests": [r.json() for r in server.received]}


def custom_update_settings(task_type: str, service_settings: dict[str, Any],
                           update_service_settings: dict[str, Any]) -> dict[str, Any]:
    """PUT an endpoint with ``service_settings``, then ``_update`` it with ``update_service_settings``:
    ``{"settings_json"}`` = the service settings the update answers."""
    from es_infer_nb.engine import Engine

    engine = Engine()
    settings = {**service_settings, "secret_parameters": {}}
    put = engine.request("PUT", f"_inference/{task_type}/conformance-endpoint", {"service": "custom",
                                                                                  "service_settings": settings})
    if put.status != 200:
        err = put.body["error"]
        raise ApiError(err["type"], err["reason"], put.status)
    upd = engine.request("PUT", f"_inference/{task_type}/conformance-endpoint/_update",
                         {"service_settings": update_service_settings})
    if upd.status != 200:
        err = upd.body["error"]
        raise ApiError(err["type"], err["reason"], upd.status)
    return {"settings_json": upd.body["service_settings"]}
