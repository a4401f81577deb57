"""ES's ``custom`` service (its flat layout is also read by ``alibaba-cloud-custom-model``, see
:mod:`.alibaba_custom`).

Any HTTP model service described by a url, headers, query parameters, a JSON request template and
JSON paths into the answer (spec §10.3). Always POST.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError
from .base import Endpoint, HttpService, InferenceContext, ServiceSetting, translate_input_type
from .json_path import illegal_state, java_map_string, java_type
from .parsers import PARSER_KEYS, ErrorParser, ResponseParser, parse_json_parser
from .secrets import Secret
from .settings import Validation, invalid_type, rate_limit, reject_unknown
from .templates import PLACEHOLDER, json_values, raw_string_values, render_url, substitute, with_query
from .transport import HttpRequest, java_utf8
from .uri import uri_syntax_error

DEFAULT_RPM = 10000
DEFAULT_BATCH_SIZE = 10
SCOPE = "service_settings"
SETTINGS_NAME = "custom_service_settings"
#: ES's ``TextEmbeddingSettings.DEFAULT_FLOAT``: what a text_embedding endpoint has when not given
TEXT_EMBEDDING_DEFAULTS = {"similarity": None, "dimensions": None, "max_input_tokens": None, "element_type": "float"}
#: ES's ``SimilarityMeasure`` values, in its order
SIMILARITIES = ("cosine", "dot_product", "l2_norm")
#: the dense vector element type of each ``json_parser.embedding_type``
ELEMENT_TYPES = {"float": "float", "byte": "byte", "bit": "bit", "binary": "bit"}
#: task types whose request parameters have no ``input_type`` (ES's ``CompletionParameters``, ``RerankParameters``)
NO_INPUT_TYPE_TASKS = ("completion", "rerank")
#: ES's ``InputTypeTranslator.EMPTY_TRANSLATOR``, written when no ``input_type`` is configured
EMPTY_INPUT_TYPE: dict[str, Any] = {"translation": {}, "default": ""}


@dataclass
class CustomSettings:
    """Parsed ``service_settings`` of a custom endpoint (secrets excluded)."""

    url: str
    request: str
    parser: ResponseParser
    error_parser: ErrorParser | None = None
    headers: dict[str, str] = field(default_factory=dict)
    query_parameters: list[tuple[str, str]] | None = None
    input_type: dict[str, Any] | None = None
    rate_limit: dict[str, int] = field(default_factory=lambda: {"requests_per_minute": DEFAULT_RPM})
    batch_size: int = DEFAULT_BATCH_SIZE
    extra: dict[str, Any] = field(default_factory=dict)  # similarity, dimensions, ... (kept as given)
    defaults: dict[str, Any] = field(default_factory=dict)  # the task type's defaults of ``extra``'s keys

    def to_parsed(self) -> dict[str, Any]:
        return {
            **self.defaults,
            "url": self.url,
            "headers": dict(self.headers),
            "query_parameters": [list(p) for p in self.query_parameters] if self.query_parameters else None,
            "request": self.request,
            "response": self.response_settings(),
            "input_type": self.input_type or {"translation": {}, "default": EMPTY_INPUT_TYPE["default"]},
            "rate_limit": dict(self.rate_limit),
            "batch_size": self.batch_size,
            **self.extra,
        }

    def response_settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"json_parser": self.parser.to_settings()}
        if self.error_parser is not None:
            out["error_parser"] = self.error_parser.to_settings()
        return out

    def to_public(self) -> dict[str, Any]:
        parsed = {k: v for k, v in self.to_parsed().items() if k not in self.defaults or k in self.extra}
        return {k: v for k, v in parsed.items() if v is not None and v != {}}


def parse_custom_settings(task_type: str, raw: dict[str, Any], *, strict: bool = True) -> CustomSettings:
    """``service_settings`` as ES's ``CustomServiceSettings.fromMap`` validates them."""
    source = dict(raw)
    v = Validation()
    extra = _text_embedding_settings(task_type, source, v)  # ES reads these first
    url = v.required_string(source, "url", SCOPE)
    query = _query_parameters(source.pop("query_parameters", None), v)  # ES reads these before the headers
    headers = _headers(source.pop("headers", None), v)
    request = _request(source.pop("request", None), v, strict)
    response = v.required_map(source, "response", SCOPE)
    json_parser = response.pop("json_parser", None)
    if json_parser is None:
        v.add(f"[{SCOPE}.response] does not contain the required setting [json_parser]")
    error_raw = response.pop("error_parser", None)
    if strict and isinstance(json_parser, dict) and task_type in PARSER_KEYS:
        _reject_leftovers({k: x for k, x in json_parser.items() if k not in PARSER_KEYS[task_type]}, "json_parser")
    if strict:
        _reject_leftovers(response, "response")
    input_type = _input_type(source.pop("input_type", None), v, strict)
    limits = rate_limit(source, DEFAULT_RPM, v)
    batch = v.optional_positive_int(source, "batch_size", SCOPE) or DEFAULT_BATCH_SIZE
    extra.update({k: source.pop(k) for k in ("element_type", "max_concurrent_requests") if k in source})
    v.raise_if_any()
    parser = parse_json_parser(task_type, json_parser)
    error_parser = ErrorParser.from_settings(error_raw, f"{SCOPE}.response") if error_raw is not None else None
    if strict:
        reject_unknown(source, "custom", SCOPE)
    defaults: dict[str, Any] = {"element_type": None}  # ES: no dense vector element type but for text_embedding
    if task_type == "text_embedding":
        defaults = dict(TEXT_EMBEDDING_DEFAULTS)
        defaults["element_type"] = ELEMENT_TYPES.get(getattr(parser, "embedding_type", "float"), "float")
    assert url is not None and request is not None  # raise_if_any above: both were read
    return CustomSettings(
        url, request, parser, error_parser, headers, query, input_type, limits, batch, extra, defaults
    )


def _text_embedding_settings(task_type: str, source: dict[str, Any], v: Validation) -> dict[str, Any]:
    """ES's ``TextEmbeddingSettings.fromMap``: ``similarity`` (an enum, written in lower case),
    ``dimensions`` and ``max_input_tokens`` (integers: any other value fails at once); read for
    text_embedding only (for other task types they are unknown settings)."""
    if task_type != "text_embedding":
        return {}
    out: dict[str, Any] = {}
    similarity = v.optional_string(source, "similarity", SCOPE)
    if similarity == "":  # ES's extractOptionalString
        v.add(f"[{SCOPE}] Invalid value empty string. [similarity] must be a non-empty string")
    elif similarity is not None:
        name = similarity.strip().lower()
        if name in SIMILARITIES:
            out["similarity"] = name
        else:
            v.add(
                f"[{SCOPE}] Invalid value [{similarity}] received. [similarity] must be one of "
                f"[{', '.join(SIMILARITIES)}]"
            )
    for key in ("dimensions", "max_input_tokens"):
        value = source.pop(key, None)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or java_type(value) != "Integer"
        ):
            raise ApiError("status_exception", invalid_type(key, value, "Integer"), 400)
        if value is not None:
            out[key] = value
    return out


def _reject_leftovers(rest: dict[str, Any], field_name: str, settings_name: str = SETTINGS_NAME) -> None:
    """ES's ``throwIfNotEmptyMap``: settings left over after a nested map was read."""
    if rest:
        raise ApiError(
            "status_exception",
            f"Configuration contains unknown settings [{java_map_string(rest)}] while "
            f"parsing field [{field_name}] for settings [{settings_name}]",
            400,
        )


def _headers(raw: Any, v: Validation) -> dict[str, str]:
    """ES's ``extractOptionalMap`` + ``validateMapStringValues``: null values dropped, the first value that
    is not a string ends the parsing."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        v.add(invalid_type("headers", raw, "Map"))
        return {}
    out = {}
    for k, val in raw.items():
        if val is None:
            continue
        if not isinstance(val, str):
            shown = java_map_string({"": val})[2:-1]  # the value as Java prints it
            v.add(
                f"Map field [headers] has an entry that is not valid, [{k} => {shown}]. Value type of "
                f"[{shown}] is not one of [String]."
            )
            v.raise_if_any()
        out[k] = val
    return out


def _query_parameters(raw: Any, v: Validation) -> list[tuple[str, str]] | None:
    """ES's ``QueryParameters.fromMap`` (``extractOptionalListOfStringTuples``): the first bad entry ends
    the parsing, and any error found so far is thrown there."""
    if raw is not None and not isinstance(raw, list):
        v.add(invalid_type("query_parameters", raw, "List"))
    out = []
    for i, entry in enumerate(raw if isinstance(raw, list) else []):
        problem = _tuple_problem(entry)
        if problem is not None:
            v.add(f"[{SCOPE}] failed to parse tuple list entry [{i}] for setting [query_parameters], {problem}")
            break
        out.append((entry[0], entry[1]))
    v.raise_if_any()
    return out or None


def _tuple_problem(entry: Any) -> str | None:
    """What is wrong with one ``[key, value]`` entry, in ES's words (``None``: nothing)."""
    if not isinstance(entry, list):
        return f"expected a list but the entry is [{java_type(entry)}]"
    if len(entry) != 2:
        return f"the tuple list size must be two, but was [{len(entry)}]"
    for element, word in ((entry[0], "first"), (entry[1], "second")):
        if not isinstance(element, str):
            return f"the {word} element must be a string but was [{java_type(element)}]"
    return None


def _request(raw: Any, v: Validation, strict: bool = True) -> str | None:
    if isinstance(raw, dict):  # 8.19's {"content": "<template>"}
        rest = dict(raw)
        raw = rest.pop("content", None)
        if strict:
            _reject_leftovers(rest, "request")
    if raw is None:
        v.add(f"[{SCOPE}] does not contain the required setting [request]")
        return None
    if not isinstance(raw, str):
        v.add(invalid_type("request", raw, "String"))
        return None
    return raw


#: the input types a translation may name (``InputType.fromRestString``: any case, internal ones refused)
#: input types a translation may name, in ES's ``InputType`` order (how ES writes a translation back)
TRANSLATABLE_INPUT_TYPES = ("ingest", "search", "unspecified", "classification", "clustering")
#: what ES's error lists as valid keys (``InputTypeTranslatorTests.testFromMap_Throws_IfKeyIsInvalid``)
TRANSLATION_ORDER = tuple(name for name in TRANSLATABLE_INPUT_TYPES if name != "unspecified")


def _input_type(raw: Any, v: Validation, strict: bool = True) -> dict[str, Any] | None:
    """``input_type`` as ES's ``InputTypeTranslator.fromMap``: ``translation`` keys are input types in any
    case (written back in lower case), values non-empty strings; ``default`` a string."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        v.add(invalid_type("input_type", raw, "Map"))
        return None
    rest = dict(raw)
    translation = rest.pop("translation", None) or {}
    if not isinstance(translation, dict):
        v.add(invalid_type("translation", translation, "Map"))
        return None
    out: dict[str, str] = {}
    for key, value in translation.items():
        if not isinstance(value, str) or not value:
            v.add(
                f"Input type translation value for key [{key}] must be a String that is not null and not empty, "
                f"received: [{java_type(value) if value is not None else 'null'}]."
            )
            v.raise_if_any()
        name = str(key).strip().lower()
        if name not in TRANSLATABLE_INPUT_TYPES:
            v.add(
                f"Invalid input type translation for key: [{key}], is not a valid value. Must be one of "
                f"[{', '.join(TRANSLATION_ORDER)}]"
            )
            v.raise_if_any()
        out[name] = value
    default = rest.pop("default", None)
    if default is not None and not isinstance(default, str):
        v.add(invalid_type("default", default, "String"))
    if strict:
        _reject_leftovers(rest, "input_type", "input_type_translator")
    ordered = {name: out[name] for name in TRANSLATABLE_INPUT_TYPES if name in out}  # as ES writes them
    return {"translation": ordered, "default": default if isinstance(default, str) else ""}


#: the value types ``CustomTaskSettings.fromMap`` takes for ``parameters`` (``validateMapValues``, in its order)
PARAMETER_TYPES = ("Boolean", "Double", "Float", "Integer", "String")


def parse_parameters(task_settings: dict[str, Any]) -> dict[str, Any]:
    """``task_settings.parameters`` as ``CustomTaskSettings.fromMap`` reads them: a map
    (``extractOptionalMapRemoveNulls``: null values dropped) of string / boolean / double / integer values,
    the first other value ending the parsing with the entry as Java prints it."""
    params = task_settings.get("parameters")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ApiError(
            "validation_exception", f"Validation Failed: 1: {invalid_type('parameters', params, 'Map')};", 400
        )
    params = {k: val for k, val in params.items() if val is not None}
    for k, val in params.items():
        if java_type(val) not in PARAMETER_TYPES:
            shown = java_map_string({"": val})[2:-1]  # the value as Java prints it
            raise ApiError(
                "validation_exception",
                f"Validation Failed: 1: Map field [parameters] has an entry that is not valid, [{k} => {shown}]. "
                f"Value type of [{shown}] is not one of [{', '.join(PARAMETER_TYPES)}].;",
                400,
            )
    return dict(params)


def input_type_value(settings: CustomSettings, input_type: str | None) -> str:
    conf = settings.input_type or {}
    name = translate_input_type(input_type)
    translated = (conf.get("translation") or {}).get(name) if name else None
    if translated is not None:
        return translated
    return conf.get("default") or ""


def render_request(
    task_type: str,
    settings: CustomSettings,
    parameters: dict[str, Any],
    secrets: dict[str, Secret],
    texts: list[str],
    ctx: InferenceContext,
    call_parameters: dict[str, Any] | None = None,
) -> HttpRequest:
    """The HTTP request for ``texts`` (ES's ``CustomRequest``). ``parameters`` are the endpoint's own (over
    its secrets of the same name, as ``CustomRequest`` adds the secrets first), ``call_parameters`` those
    given with the call (over both, but never over a secret): these never steer the url."""
    revealed = {k: s.reveal() for k, s in secrets.items()}
    own = {**revealed, **parameters}
    call = {k: v for k, v in (call_parameters or {}).items() if k not in revealed}
    url = render_url(settings.url, raw_string_values(own), raw_string_values(call))
    problem = uri_syntax_error(url)
    if problem is not None:
        raise illegal_state(f"Failed to build URI, error: {problem}")
    parameters = {**own, **call}
    raw = raw_string_values(parameters)
    pairs = [(k, substitute(val, raw, f"query parameters: [{k}]")) for k, val in settings.query_parameters or []]
    headers = {"Content-Type": "application/json"}
    for name, val in settings.headers.items():
        if name.lower() == "content-type":
            headers.pop("Content-Type", None)
        headers[name] = substitute(val, raw, f"header.{name}")
    body_params: dict[str, Any] = {**parameters, "input": _input_value(task_type, texts)}
    if task_type not in NO_INPUT_TYPE_TASKS:  # ES: only ``EmbeddingParameters`` write ``${input_type}``
        body_params["input_type"] = input_type_value(settings, ctx.input_type)
    if ctx.query is not None:
        body_params["query"] = ctx.query
    if ctx.top_n is not None:
        body_params["top_n"] = ctx.top_n
    if ctx.return_documents is not None:
        body_params["return_documents"] = ctx.return_documents
    body = substitute(settings.request, json_values(body_params), "request")
    return HttpRequest(with_query(url, pairs), headers, java_utf8(body))


def _input_value(task_type: str, texts: list[str]) -> str | list[str]:
    """``${input}``: the texts, but for completion the first text alone (``""`` when there is none,
    ES's ``CompletionParameters``)."""
    if task_type == "completion":
        return texts[0] if texts else ""
    return list(texts)


class CustomService(HttpService):
    name = "custom"
    display_name = "Custom"
    task_types = ("text_embedding", "sparse_embedding", "rerank", "completion", "custom")
    secret_fields = ("secret_parameters",)
    default_rpm = DEFAULT_RPM

    def parse(
        self,
        task_type: str,
        service_settings: dict[str, Any],
        task_settings: dict[str, Any],
        secrets: dict[str, Secret],
    ) -> tuple[dict[str, Any], dict[str, Any], Any]:
        settings = parse_custom_settings(task_type, service_settings)
        parameters = parse_parameters(task_settings)
        reject_unknown({k: v for k, v in task_settings.items() if k != "parameters"}, self.name, "task_settings")
        # validate every template now, with placeholder inputs, as ES does at PUT time (``${query}`` is known
        # to rerank only; its ``${top_n}`` / ``${return_documents}`` are accepted here, which ES's probe is not)
        rerank = task_type == "rerank"
        probe = InferenceContext(
            task_type,
            query="q" if rerank else None,
            top_n=1 if rerank else None,
            return_documents=True if rerank else None,
            input_type="ingest",
        )
        try:
            render_request(task_type, settings, parameters, {k: Secret("x") for k in secrets}, ["input"], probe)
        except ApiError as err:
            if err.reason.startswith("Found placeholder"):
                raise ApiError(
                    "validation_exception",
                    f"Validation Failed: 1: Failed to validate model "
                    f"configuration: {err.reason}, please check that all templates have a "
                    f"corresponding field definition.;",
                    400,
                ) from None
            raise
        public = settings.to_public()
        # CustomTaskSettings writes no [parameters] when there are none
        return public, ({"parameters": parameters} if parameters else {}), settings

    def destination(self, endpoint: Endpoint) -> str | None:
        """The url with the endpoint's own parameters (secrets stand as their names: never revealed)."""
        values = raw_string_values(
            {**{k: f"${{{k}}}" for k in endpoint.secrets}, **parse_parameters(endpoint.task_settings)}
        )
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), endpoint.model.url)

    def batch_size(self, endpoint: Endpoint, ctx: InferenceContext) -> int:
        if ctx.task_type == "completion":
            return 1
        if ctx.task_type == "rerank":
            return 0
        return endpoint.model.batch_size

    def build_request(self, endpoint: Endpoint, texts: list[str], ctx: InferenceContext) -> HttpRequest:
        own = parse_parameters(endpoint.task_settings)
        params = parse_parameters(ctx.task_settings)
        call = {k: v for k, v in params.items() if k not in own or own[k] != v}
        try:
            return render_request(ctx.task_type, endpoint.model, own, endpoint.secrets, texts, ctx, call)
        except ApiError as err:  # ES's CustomRequestManager: the request could not be built
            if err.type != "illegal_state_exception":  # a refused call-time parameter, an unset env secret
                raise
            cause = ApiError(err.type, endpoint.redact(err.reason), err.status)
            raise ApiError(
                "status_exception", "Failed to construct the custom service request", 400, caused_by=cause
            ) from None

    def parse_response(self, endpoint: Endpoint, body: Any, ctx: InferenceContext) -> dict[str, Any]:
        return endpoint.model.parser.parse(body)

    def error_message_path(self, endpoint: Endpoint) -> str | None:
        return endpoint.model.error_parser.path if endpoint.model.error_parser else None

    def settings_table(self) -> list[ServiceSetting]:
        return [
            ServiceSetting("url", "The URL of the service (POST; ${name} placeholders).", required=True),
            ServiceSetting("headers", "Request headers ({name: template}).", type="map"),
            ServiceSetting("query_parameters", "[[key, template], ...] appended to the url.", type="list"),
            ServiceSetting("request", "The JSON body template (values JSON-encoded).", required=True),
            ServiceSetting("response", "json_parser paths (and error_parser.path).", required=True, type="map"),
            ServiceSetting(
                "secret_parameters", "Secret values usable as ${name}.", required=True, sensitive=True, type="map"
            ),
            ServiceSetting("input_type", "translation of input types for ${input_type}.", type="map"),
            ServiceSetting("batch_size", "Inputs per upstream request.", type="int", default_value=DEFAULT_BATCH_SIZE),
            ServiceSetting(
                "rate_limit.requests_per_minute", "Requests per minute.", type="int", default_value=DEFAULT_RPM
            ),
            ServiceSetting(
                "max_concurrent_requests",
                "Upstream requests in flight at once (es-infer-nb).",
                type="int",
                default_value=8,
            ),
        ]
