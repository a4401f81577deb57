"""``alibaba-cloud-custom-model``: Alibaba Cloud Elasticsearch's custom model service (seed 004).

Its layout names the path and the HTTP method of the model service::

    "service_settings": {
      "secret_parameters": {"api_key": "..."},
      "url": "http://host",
      "path": {"/v3/openapi/.../text-embedding/ops-text-embedding-001": {
        "POST": {                                  # POST, PUT or GET
          "query_string": "a=1&b=${b}",            # optional
          "headers": {"Authorization": "Bearer ${api_key}"},
          "request": {"format": "string", "content": "{\\"input\\":${input},\\"input_type\\":\\"${input_type}\\"}"},
          "response": {"json_parser": {"text_embeddings": "$.result.embeddings[*].embedding"}}}}},
      "rate_limit": {"requests_per_minute": 10000}},
    "task_settings": {"parameters": {"input_type": "document"}}

``json_parser`` per task type: ``text_embeddings``; ``sparse_result {path, value {sparse_token,
sparse_weight}}``; ``relevance_score`` (``reranked_index``, ``document_text``); ``completion_result``;
task type ``custom`` needs no ``response`` and answers the whole remote response.

``${name}`` values: ``secret_parameters``, ``task_settings.parameters`` (a call's over the stored ones)
and the call's ``input`` (a JSON array; for completion the one input), ``query``, ``top_n``,
``return_documents`` (rerank) and ``input_type`` (a parameter of that name, else the call's
``input_type``, else empty). In ``request.content`` a placeholder inside a JSON string literal gets the
value's text JSON-escaped, elsewhere the value as JSON (:class:`~.templates.JsonTemplate`); url, path,
query string and headers get text, with the rules of the flat layout: values given with the call go
into the url percent-encoded and may not change its scheme, host, port or path segments, every value
goes into ``query_string`` percent-encoded (one query value), and inputs never reach the url. GET answers show the settings as given (``rate_limit`` defaulted), never a secret.

The flat layout of ES's ``custom`` service (``url``, ``headers``, ``request``, ``response`` at the top
of ``service_settings``) is accepted under this name too and works as the ``custom`` service does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError
from .base import Endpoint, InferenceContext, ServiceSetting, translate_input_type
from .custom import DEFAULT_BATCH_SIZE, DEFAULT_RPM, CustomService, parse_parameters
from .json_path import illegal_state, java_type
from .parsers import CustomParser, ResponseParser, SparseResultParser, parse_json_parser
from .secrets import Secret, mask_headers
from .settings import Validation, rate_limit, reject_unknown
from .templates import PLACEHOLDER, JsonTemplate, render_url, substitute, text_values, url_component
from .transport import HttpRequest, java_utf8
from .uri import uri_syntax_error

SERVICE = "alibaba-cloud-custom-model"
SCOPE = "service_settings"
METHODS = ("POST", "PUT", "GET")
REQUEST_FORMATS = ("string",)
#: the ``json_parser`` settings each task type reads
JSON_PARSER_KEYS: dict[str, tuple[str, ...]] = {
    "text_embedding": ("text_embeddings", "embedding_type"),
    "sparse_embedding": ("sparse_result",),
    "rerank": ("relevance_score", "reranked_index", "document_text"),
    "completion": ("completion_result",),
    "custom": (),
}
#: the call's own values, filled in ``request.content`` only
CALL_VALUES = ("input", "query", "top_n", "return_documents", "input_type")


@dataclass
class AlibabaSettings:
    """Parsed ``service_settings`` of the ``path.<path>.<METHOD>`` layout (secrets excluded)."""

    url: str
    path: str
    method: str
    query_string: str | None
    headers: dict[str, str]
    content: JsonTemplate | None
    parser: ResponseParser
    batch_size: int = DEFAULT_BATCH_SIZE
    public: dict[str, Any] = field(default_factory=dict)  # the settings as given, rate_limit defaulted

    @property
    def where(self) -> str:
        return f"{SCOPE}.path.{self.path}.{self.method}"

    def url_template(self) -> str:
        """``url`` and ``path`` joined (one ``/`` between them), without the query string."""
        if not self.path:
            return self.url
        if self.path.startswith("?"):
            return self.url + self.path
        return f"{self.url.rstrip('/')}/{self.path.lstrip('/')}"


def is_path_layout(service_settings: dict[str, Any]) -> bool:
    """Whether ``service_settings`` use Alibaba's ``path`` layout (not ES's flat ``custom`` one)."""
    return "path" in service_settings


def parse_alibaba_settings(task_type: str, raw: dict[str, Any]) -> AlibabaSettings:
    source = copy.deepcopy(raw)
    public = copy.deepcopy(raw)
    v = Validation()
    url = v.required_string(source, "url", SCOPE)
    paths = v.required_map(source, "path", SCOPE)
    limits = rate_limit(source, DEFAULT_RPM, v)
    public["rate_limit"] = limits
    batch = v.optional_positive_int(source, "batch_size", SCOPE) or DEFAULT_BATCH_SIZE
    v.optional_positive_int(source, "max_concurrent_requests", SCOPE)
    v.raise_if_any()
    reject_unknown(source, SERVICE, SCOPE)
    if len(paths) != 1:
        raise _invalid(f"[{SCOPE}.path] must hold exactly one path (the service's path, joined to [url]), "
                       f"found [{len(paths)}]")
    (path, methods), = paths.items()
    if not isinstance(methods, dict) or len(methods) != 1:
        raise _invalid(f"[{SCOPE}.path.{path}] must hold exactly one HTTP method ({', '.join(METHODS)}) with its "
                       "settings")
    (given_method, settings), = methods.items()
    method = str(given_method).upper()
    if method not in METHODS:
        raise _invalid(f"[{SCOPE}.path.{path}] HTTP method [{given_method}] is not supported, use one of "
                       f"[{', '.join(METHODS)}]")
    where = f"{SCOPE}.path.{path}.{given_method}"
    if not isinstance(settings, dict):
        raise _invalid(f"[{where}] Invalid value type [{java_type(settings)}], expected [Map]")
    rest = dict(settings)
    query_string = v.optional_string(rest, "query_string", where)
    headers = _headers(rest.pop("headers", None), where, v)
    content = _request(rest.pop("request", None), where, method, v)
    response = rest.pop("response", None)
    v.raise_if_any()
    if rest:
        raise _invalid(f"[{where}] contains settings [{', '.join(rest)}] unknown to the [{SERVICE}] service; "
                       "it reads [query_string, headers, request, response]")
    parser = _json_parser(task_type, response, where)
    return AlibabaSettings(url, path, method, query_string or None, headers,  # type: ignore[arg-type]
                           JsonTemplate(content, "request.content") if content is not None else None,
                           parser, batch, public)


def _invalid(message: str) -> ApiError:
    return ApiError("validation_exception", f"Validation Failed: 1: {message};", 400)


def _headers(raw: Any, where: str, v: Validation) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        v.add(f"[{where}] Invalid value type [{java_type(raw)}] for setting [headers], expected [Map]")
        return {}
    out = {}
    for name, value in raw.items():
        if not isinstance(value, str):
            v.add(f"[{where}.headers] the value of header [{name}] must be a string, found [{java_type(value)}]")
            continue
        out[str(name)] = value
    return out


def _request(raw: Any, where: str, method: str, v: Validation) -> str | None:
    if raw is None:
        if method != "GET":
            v.add(f"[{where}] does not contain the required setting [request]")
        return None
    if not isinstance(raw, dict):
        v.add(f"[{where}] Invalid value type [{java_type(raw)}] for setting [request], expected [Map]")
        return None
    rest = dict(raw)
    fmt = rest.pop("format", "string")
    content = rest.pop("content", None)
    if fmt not in REQUEST_FORMATS:
        v.add(f"[{where}.request] Invalid value [{fmt}] received. [format] must be one of "
              f"[{', '.join(REQUEST_FORMATS)}]")
    if content is None:
        v.add(f"[{where}.request] does not contain the required setting [content]")
    elif not isinstance(content, str):
        v.add(f"[{where}.request] Invalid value type [{java_type(content)}] for setting [content], expected "
              "[String] (the JSON body as a string)")
        content = None
    if rest:
        v.add(f"[{where}.request] contains settings [{', '.join(rest)}] unknown to the [{SERVICE}] service; "
              "it reads [format, content]")
    return content


def _json_parser(task_type: str, response: Any, where: str) -> ResponseParser:
    if task_type == "custom":  # the whole response is the result: no parser (a given one is kept as written)
        return CustomParser(task_type)
    v = Validation()
    scope = f"{where}.response"
    if response is None:
        v.add(f"[{where}] does not contain the required setting [response] (task type [{task_type}] reads the "
              "result through [response.json_parser])")
        v.raise_if_any()
    if not isinstance(response, dict):
        raise _invalid(f"[{where}] Invalid value type [{java_type(response)}] for setting [response], expected [Map]")
    rest = dict(response)
    parser = v.required_map(rest, "json_parser", scope)
    v.raise_if_any()
    if rest:
        raise _invalid(f"[{scope}] contains settings [{', '.join(rest)}] unknown to the [{SERVICE}] service; "
                       "it reads [json_parser]")
    allowed = JSON_PARSER_KEYS[task_type]
    unknown = [k for k in parser if k not in allowed]
    if unknown:
        raise _invalid(f"[{scope}.json_parser] settings [{', '.join(unknown)}] are not read for task type "
                       f"[{task_type}]; it reads [{', '.join(allowed)}]")
    if task_type != "sparse_embedding":
        return parse_json_parser(task_type, parser, scope)
    return _sparse_result(parser, f"{scope}.json_parser", v)


def _sparse_result(parser: dict[str, Any], scope: str, v: Validation) -> SparseResultParser:
    result = v.required_map(parser, "sparse_result", scope)
    v.raise_if_any()
    path = v.required_string(result, "path", f"{scope}.sparse_result")
    value = v.required_map(result, "value", f"{scope}.sparse_result")
    token = v.required_string(value, "sparse_token", f"{scope}.sparse_result.value")
    weight = v.required_string(value, "sparse_weight", f"{scope}.sparse_result.value")
    v.raise_if_any()
    for rest, name in ((result, "sparse_result"), (value, "sparse_result.value")):
        if rest:
            raise _invalid(f"[{scope}.{name}] contains settings [{', '.join(rest)}] unknown to the [{SERVICE}] "
                           "service")
    return SparseResultParser("sparse_embedding", path, token, weight)  # type: ignore[arg-type]


def input_type_value(parameters: dict[str, Any], input_type: str | None) -> Any:
    """``${input_type}``: a parameter of that name (the call's over the stored one), else the call's
    ``input_type`` (``search``, ``ingest``...), else empty."""
    if "input_type" in parameters:
        return parameters["input_type"]
    return translate_input_type(input_type) or ""


def render_alibaba_request(task_type: str, settings: AlibabaSettings, own: dict[str, Any], call: dict[str, Any],
                           secrets: dict[str, Secret], texts: list[str], ctx: InferenceContext) -> HttpRequest:
    """The HTTP request for ``texts``. ``own`` are the endpoint's parameters, ``call`` those the call gives
    (over them for this call only); ``call`` values never steer the url."""
    revealed = {k: s.reveal() for k, s in secrets.items()}
    call = {k: val for k, val in call.items() if k not in revealed}
    fixed = text_values({**own, **revealed})
    steered = {k: val for k, val in text_values(call).items() if fixed.get(k) != val}
    url = render_url(settings.url_template(), fixed, steered)
    problem = uri_syntax_error(url)
    if problem is not None:
        raise illegal_state(f"Failed to build URI, error: {problem}")
    if settings.query_string:
        query = settings.query_string.lstrip("?")
        # every value is one query value, percent-encoded: a value can never add a parameter
        values = {k: url_component(val) for k, val in {**fixed, **steered}.items()}
        url = f"{url}{'&' if '?' in url else '?'}{substitute(query, values, 'query_string')}"
    parameters = {**own, **call}
    raw = text_values({**parameters, **revealed})
    headers = {"Content-Type": "application/json"}
    for name, template in settings.headers.items():
        if name.lower() == "content-type":
            headers.pop("Content-Type", None)
        headers[name] = substitute(template, raw, f"headers.{name}")
    body = b""
    if settings.content is not None:
        values: dict[str, Any] = {**parameters, **revealed,
                                  "input": texts[0] if task_type == "completion" and texts else list(texts),
                                  "input_type": input_type_value(parameters, ctx.input_type)}
        for name in ("query", "top_n", "return_documents"):
            if getattr(ctx, name) is not None:
                values[name] = getattr(ctx, name)
        body = java_utf8(settings.content.render(values))
    return HttpRequest(url, headers, body, settings.method)


class AlibabaCloudCustomModelService(CustomService):
    """``alibaba-cloud-custom-model``: the ``path.<path>.<METHOD>`` layout, and ES's flat ``custom`` one."""

    name = SERVICE
    display_name = "Alibaba Cloud Custom Model"
    chunking_by_default = False  # Alibaba's GET shows no chunking_settings unless given

    def parse(self, task_type: str, service_settings: dict[str, Any], task_settings: dict[str, Any],
              secrets: dict[str, Secret]) -> tuple[dict[str, Any], dict[str, Any], Any]:
        if not is_path_layout(service_settings):
            return super().parse(task_type, service_settings, task_settings, secrets)
        settings = parse_alibaba_settings(task_type, service_settings)
        parameters = parse_parameters(task_settings)
        clash = sorted(set(parameters) & set(secrets))
        if clash:
            raise _invalid(f"[task_settings.parameters] keys {clash} are also secret_parameters; a name may be "
                           "defined only once")
        # every template must be fillable: render once with stand-in values, as ES does at PUT time
        probe = InferenceContext(task_type, input_type="ingest")
        if task_type == "rerank":
            probe.query, probe.top_n, probe.return_documents = "q", 1, True
        try:
            render_alibaba_request(task_type, settings, parameters, {}, {k: Secret("x") for k in secrets},
                                   ["input"], probe)
        except ApiError as err:
            if err.reason.startswith("Found placeholder"):
                raise _invalid(f"Failed to validate model configuration: {err.reason}, please check that all "
                               "templates have a corresponding field definition.") from None
            raise
        return settings.public, ({"parameters": parameters} if task_settings else {}), settings

    def shown_settings(self, service_settings: dict[str, Any]) -> dict[str, Any]:
        out = super().shown_settings(service_settings)
        paths = out.get("path")
        if not isinstance(paths, dict):
            return out
        out["path"] = copy.deepcopy(paths)
        for methods in out["path"].values():
            for settings in (methods.values() if isinstance(methods, dict) else ()):
                if isinstance(settings, dict) and isinstance(settings.get("headers"), dict):
                    settings["headers"] = mask_headers(settings["headers"])
        return out

    def destination(self, endpoint: Endpoint) -> str | None:
        settings = endpoint.model
        if not isinstance(settings, AlibabaSettings):
            return super().destination(endpoint)
        values = text_values({**parse_parameters(endpoint.task_settings),
                              **{k: f"${{{k}}}" for k in endpoint.secrets}})
        fill = lambda text: PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)  # noqa: E731
        return f"{fill(settings.url_template())}?{fill(settings.query_string or '')}"

    def batch_size(self, endpoint: Endpoint, ctx: InferenceContext) -> int:
        if not isinstance(endpoint.model, AlibabaSettings):
            return super().batch_size(endpoint, ctx)
        if ctx.task_type == "completion":
            return 1
        if ctx.task_type in ("rerank", "custom"):
            return 0  # one request: the documents ranked together / the one whole response
        return endpoint.model.batch_size

    def build_request(self, endpoint: Endpoint, texts: list[str], ctx: InferenceContext) -> HttpRequest:
        if not isinstance(endpoint.model, AlibabaSettings):
            return super().build_request(endpoint, texts, ctx)
        own = parse_parameters(endpoint.task_settings)
        merged = parse_parameters(ctx.task_settings)  # the call's parameters over the stored ones
        call = {k: v for k, v in merged.items() if k not in own or own[k] != v}
        return render_alibaba_request(ctx.task_type, endpoint.model, own, call, endpoint.secrets, texts, ctx)

    def error_message_path(self, endpoint: Endpoint) -> str | None:
        if not isinstance(endpoint.model, AlibabaSettings):
            return super().error_message_path(endpoint)
        return None

    def settings_table(self) -> list[ServiceSetting]:
        return [
            ServiceSetting("url", "The URL of the service; [path] is joined to it.", required=True),
            ServiceSetting("path", "{<path>: {<POST|PUT|GET>: {query_string, headers, request: {format, content}, "
                           "response: {json_parser}}}} (Alibaba's layout; ES's flat custom layout is accepted "
                           "too).", type="map"),
            ServiceSetting("secret_parameters", "Secret values usable as ${name}.", required=True, sensitive=True,
                           type="map"),
            ServiceSetting("rate_limit.requests_per_minute", "Requests per minute.", type="int",
                           default_value=DEFAULT_RPM),
            ServiceSetting("batch_size", "Inputs per upstream request (text_embedding, sparse_embedding).",
                           type="int", default_value=DEFAULT_BATCH_SIZE),
        ] + [s for s in super().settings_table() if s.name not in ("url", "secret_parameters", "batch_size",
                                                                      "rate_limit.requests_per_minute")]


__all__ = ["AlibabaCloudCustomModelService", "AlibabaSettings", "is_path_layout", "parse_alibaba_settings",
           "render_alibaba_request"]
