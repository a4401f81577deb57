"""inference_api.json: the Elasticsearch ``_inference`` ``custom`` service .

Adapter functions named like the case kinds in ``hooks_services`` (next to this module) (contract in
``adapters.py``), called with the case's inputs as keyword arguments:

* ``custom_render_request(task_type, service_settings, task_settings, secret_settings, input)``
  -> ``{"url", "headers", "body"}`` (``expected_request``: url, listed headers, ``body_json``,
  ``body_whitespace_stripped``);
* ``custom_parse_response(task_type, json_parser, response_body)`` -> the ``_inference`` result;
* ``custom_parse_error(error_parser, response_body_raw)`` -> ``{"error_message"}``;
* ``custom_parser_settings(...)`` -> the settings as serialised (or raises);
* ``custom_service_settings_parse(task_type, parse_context, service_settings)`` -> parsed settings;
* ``custom_service_settings_xcontent(task_type, service_settings)`` -> ``{"settings_json"}``: the settings as
  the endpoint writes them back (GET), compared whole (``expected.settings_json``);
* ``json_path_extract(input, path)`` -> ``{"value", "traversed_fields"}``;
* ``custom_end_to_end(task_type, service_settings, task_settings, secret_settings, input,
  http_response)`` -> the ``_inference`` answer with the remote call answered by ``http_response``;
* ``custom_chunked_infer(task_type, service_settings, input, http_response, chunking_settings=None)`` ->
  ``{"results": per input [{start, end, ...result}], "requests": [JSON bodies received]}`` (chunked inference);
* ``custom_update_settings(task_type, service_settings, update_service_settings)`` -> ``{"settings_json"}``:
  the service settings after ``PUT _inference/<task>/<id>/_update``, compared whole.
"""

from __future__ import annotations

from typing import Any

from .adapters import run_adapter

HOOKS = f"{__package__}.hooks_services"


def run(case: dict[str, Any], meta: dict[str, Any]) -> None:
    run_adapter(case, meta, module=HOOKS)


KINDS = {kind: run for kind in (
    "custom_render_request", "custom_parse_response", "custom_parse_error", "custom_parser_settings",
    "custom_service_settings_parse", "custom_service_settings_xcontent", "json_path_extract", "custom_end_to_end",
    "custom_chunked_infer", "custom_update_settings",
)}


def default_kind(case: dict[str, Any]) -> str | None:
    return None
