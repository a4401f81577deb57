"""OpenSearch ml-commons HTTP connectors (``protocol: http``): parse, render, call, read the answer.

A connector holds ``parameters`` (strings), a write-only ``credential`` map and ``actions``; the
``predict`` action's ``url``, ``headers`` and ``request_body`` are templates over ``${parameters.*}``
and ``${credential.*}`` (ml-commons ``HttpConnector``). A call's input goes through the action's
pre-process function (:mod:`.ml_process`: built-in ones by name, or a painless script) into the
request's parameters, over the connector's own ones; ``text_docs`` go one request per doc where
ml-commons sends them so (Bedrock embedding, a painless script, ``input_docs_processed_step_size``),
each request an ``inference_results`` entry. The body is filled as commons-text's StringSubstitutor
fills it (``${parameters.x:-default}``, ``$${...}`` for a literal, a connector parameter's own
placeholders filled in turn, ``"${parameters.x:-null}"`` as ``null``, ``${parameters.x.toString()}``),
with one difference on purpose: a value given with the call (a document's text) is data, never a
template: inside a JSON string literal it goes in JSON-escaped, elsewhere it must be one JSON value, so
it never changes the request's structure. The answer goes through the post-process function (or a
``response_filter``) into ml-commons' ``ModelTensorOutput``. Credentials are :class:`Secret` values:
never in :meth:`Connector.public`, reprs, logs or error messages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import ApiError
from . import ml_process
from .ml_process import MLInput, RemoteParams, TextDocs, gson_json, iae
from .secrets import LOCAL, EnvPolicy, Secret, redact
from .templates import json_string_step, render_url
from .transport import HttpRequest, Transport, TransportSettings, java_utf8

__all__ = ["ACTION_TYPES", "UPDATABLE_CONNECTOR_FIELDS", "Connector", "ConnectorAction", "iae", "parameter_text",
           "validate_create"]

PROTOCOLS = ("http", "aws_sigv4")
#: ml-commons' ConnectorProtocols.VALID_PROTOCOLS (the ones es_infer_nb does not run are refused by name)
KNOWN_PROTOCOLS = ("aws_sigv4", "http", "mcp_sse", "mcp_streamable_http")
ACTION_TYPES = ("predict", "execute", "batch_predict", "cancel_batch_predict", "batch_predict_status")
HTTP_METHODS = ("POST", "GET", "PUT", "DELETE")
#: what a connector update (PUT connectors/<id>, or a model's inline connector) may change
UPDATABLE_CONNECTOR_FIELDS = ("name", "description", "version", "protocol", "parameters", "credential", "actions",
                              "client_config")
#: headers a ``${parameters.*}`` may never fill (ml-commons' AbstractConnector.BLOCKED_DYNAMIC_HEADERS)
BLOCKED_DYNAMIC_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token", "x-auth-header", "x-forwarded-for",
    "x-real-ip", "x-client-ip", "cf-connecting-ip", "true-client-ip", "x-originating-ip", "host", "x-forwarded-host",
    "x-forwarded-server", "forwarded"})
_NAME_OK = re.compile(r"^[a-zA-Z0-9_-]+$")
_VARIABLE = re.compile(r"\$\{(parameters|credential)\.([^}]*)\}")
_NULL_DEFAULT = re.compile(r'"\$\{parameters\.(\w+):-null}"')
_TO_STRING = ".toString()"
DEFAULT_TIMEOUT_S = 30.0
MAX_CONNECTION_DEFAULT = 30  # ml-commons' ConnectorClientConfig.MAX_CONNECTION_DEFAULT_VALUE
#: ConnectorClientConfig's retry_backoff_policy values (constant by default, retry_backoff_millis 200)
RETRY_POLICIES = ("constant", "exponential_equal_jitter", "exponential_full_jitter")
MAX_REASON = 2000
#: how deep a connector parameter's placeholders may fill one another
MAX_NESTING = 32
_SOURCE = "REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled)"


def parameter_text(value: Any) -> str:
    """ml-commons keeps parameters as strings (``StringUtils.getParameterMap``): strings as they are,
    anything else (null included) as its Gson JSON."""
    return value if isinstance(value, str) else gson_json(value)


def _string_map(raw: Any, what: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise iae(f"[{what}] must be an object")
    return {str(k): parameter_text(v) for k, v in raw.items()}


def _action_type(raw: Any) -> str:
    text = str(raw)
    if text.lower() not in ACTION_TYPES:  # ActionType.valueOf(text.toUpperCase())
        raise iae(f"No enum constant org.opensearch.ml.common.connector.ConnectorAction.ActionType.{text.upper()}")
    return text.lower()


def _action_name(name: Any) -> str | None:
    """ConnectorAction.validateName: an optional identifier of the action."""
    if name is None:
        return None
    text = str(name)
    if any(ord(c) < 32 for c in text):
        raise iae("Action name must not contain control characters")
    if len(text) > 64:
        raise iae("Action name exceeds maximum length of 64 characters")
    if not _NAME_OK.match(text):
        raise iae("Action name contains invalid characters. Only alphanumeric characters, hyphens, and underscores "
                  "are allowed")
    if text.lower() in ACTION_TYPES:
        raise iae("name can't be one of action type [PREDICT, EXECUTE, BATCH_PREDICT, CANCEL_BATCH_PREDICT, "
                  "BATCH_PREDICT_STATUS]")
    return text


@dataclass
class ConnectorAction:
    action_type: str
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    request_body: str | None = None
    pre_process_function: str | None = None
    post_process_function: str | None = None
    name: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> "ConnectorAction":
        if not isinstance(raw, dict):
            raise iae("[actions] must be a list of objects")
        action_type = raw.get("action_type")
        if action_type is None:
            raise iae("action type can't be null")
        action_type = _action_type(action_type)
        if raw.get("url") is None:
            raise iae("url can't be null")
        if raw.get("method") is None:
            raise iae("method can't be null")
        body = raw.get("request_body")
        if body is not None and not isinstance(body, str):
            body = json.dumps(body, ensure_ascii=False)  # an object given for the template: its JSON text
        functions = []
        for key in ("pre_process_function", "post_process_function"):
            value = raw.get(key)
            if value is not None and not isinstance(value, str):
                raise iae(f"[{key}] must be a string: a built-in function's name or a painless script")
            functions.append(value)
        return cls(action_type, str(raw["method"]), str(raw["url"]), _string_map(raw.get("headers"), "headers"), body,
                   functions[0], functions[1], _action_name(raw.get("name")))

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action_type": self.action_type.upper(), "method": self.method, "url": self.url}
        if self.headers:
            out["headers"] = dict(self.headers)
        if self.request_body is not None:
            out["request_body"] = self.request_body
        if self.pre_process_function is not None:
            out["pre_process_function"] = self.pre_process_function
        if self.post_process_function is not None:
            out["post_process_function"] = self.post_process_function
        if self.name is not None:
            out["name"] = self.name
        return out


def validate_create(body: Mapping[str, Any]) -> None:
    """``MLCreateConnectorInput``'s checks of a connector created on its own (an inline one of a model
    registration skips them, as in ml-commons)."""
    if body.get("name") is None:
        raise iae("Connector name is null")
    if body.get("version") is None:
        raise iae("Connector version is null")
    protocol = body.get("protocol")
    if protocol is None:
        raise iae("Connector protocol is null")
    credential = body.get("credential")
    if protocol not in ("mcp_sse", "mcp_streamable_http") and (credential is None or credential == {}):
        raise iae("Connector credential is null or empty list")


@dataclass
class Connector:
    name: str | None
    protocol: str
    parameters: dict[str, str]
    actions: list[ConnectorAction]
    credential: dict[str, Secret] = field(default_factory=dict)
    description: str | None = None
    version: str | None = None
    client_config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: Mapping[str, Any], credential: Mapping[str, Secret] | None = None,
              policy: EnvPolicy = LOCAL) -> "Connector":
        protocol = body.get("protocol")
        if protocol is None:
            raise iae("Connector protocol is null")
        if protocol not in KNOWN_PROTOCOLS:
            raise iae(f"Unsupported connector protocol. Please use one of [{', '.join(KNOWN_PROTOCOLS)}]")
        if protocol != "http":
            raise iae(f"Connector protocol [{protocol}] is not run by es_infer_nb (AWS request signing and MCP "
                      "servers need a cluster's plugins): use protocol [http]")
        raw_actions = body.get("actions")
        if raw_actions is not None and not isinstance(raw_actions, list):
            raise iae("[actions] must be a list of objects")
        secrets = dict(credential or {})
        raw_cred = body.get("credential")
        if raw_cred is not None:
            if not isinstance(raw_cred, dict):
                raise iae("[credential] must be an object")
            secrets = {str(k): Secret.from_setting(v, f"credential.{k}", policy) for k, v in raw_cred.items()}
        client_config = body.get("client_config") or {}
        if not isinstance(client_config, dict):
            raise iae("[client_config] must be an object")
        connector = cls(None if body.get("name") is None else str(body["name"]), protocol,
                        _string_map(body.get("parameters"), "parameters"),
                        [ConnectorAction.parse(a) for a in raw_actions or []], secrets,
                        None if body.get("description") is None else str(body["description"]),
                        None if body.get("version") is None else str(body["version"]), dict(client_config))
        try:
            connector.transport_settings()
        except (TypeError, ValueError):
            raise iae("[client_config] max_connection, read_timeout, max_retry_times and retry_backoff_millis must "
                      f"be numbers, retry_backoff_policy one of [{', '.join(RETRY_POLICIES)}]") from None
        return connector

    def __repr__(self) -> str:
        return f"<Connector {self.name!r} {self.protocol}: {len(self.actions)} actions, credential hidden>"

    def public(self) -> dict[str, Any]:
        """The connector as GET shows it and as it is stored: never its credential."""
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        if self.version is not None:
            out["version"] = self.version
        if self.description is not None:
            out["description"] = self.description
        out["protocol"] = self.protocol
        out["parameters"] = dict(self.parameters)
        out["actions"] = [a.public() for a in self.actions]
        if self.client_config:
            out["client_config"] = dict(self.client_config)
        return out

    def action(self, action_type: str = "predict") -> ConnectorAction:
        """``findAction``: by type (any case), or by the action's name."""
        by_type = action_type.lower() in ACTION_TYPES
        for a in self.actions:
            if (a.action_type == action_type.lower()) if by_type else (a.name == action_type):
                return a
        raise iae(f"no {action_type.upper() if by_type else action_type} action found")

    def transport_settings(self) -> TransportSettings:
        cfg = self.client_config
        retries = int(cfg.get("max_retry_times", 0) or 0)
        timeout = cfg.get("read_timeout")
        connections = int(cfg.get("max_connection", MAX_CONNECTION_DEFAULT) or MAX_CONNECTION_DEFAULT)
        policy = str(cfg.get("retry_backoff_policy") or "constant").lower()
        if policy not in RETRY_POLICIES:
            raise ValueError(policy)
        return TransportSettings(requests_per_minute=1e9, max_concurrent_requests=connections,
                                 timeout_s=float(timeout) if timeout else DEFAULT_TIMEOUT_S,
                                 max_retries=10 if retries < 0 else min(retries, 10),
                                 backoff_s=float(cfg.get("retry_backoff_millis", 200) or 200) / 1000.0,
                                 backoff_policy=policy)

    # -- the call ----------------------------------------------------------------------------
    def predict(self, transport: Transport, data: MLInput, timeout_s: float | None = None) -> dict[str, Any]:
        """The predict action for one input (``RemoteInferenceInputDataSet`` parameters, text docs or a
        query with docs): ml-commons' ``ModelTensorOutput``, one ``inference_results`` entry a request."""
        action = self.action("predict")
        results = []
        for chunk in self._chunks(action, data):
            request, params = self.request(action, chunk)
            results.append(self._answer(action, transport.send(request, timeout_s), params))
        return {"inference_results": results}

    def _chunks(self, action: ConnectorAction, data: MLInput) -> list[MLInput]:
        """``RemoteConnectorExecutor.calculateChunkSize``: how many docs each request of a text docs call takes."""
        if not isinstance(data, TextDocs):
            return [data]
        step_text = self.parameters.get("input_docs_processed_step_size")
        if step_text is not None:
            try:
                step = int(step_text)
            except ValueError:
                raise iae(f'For input string: "{step_text}"') from None
            if step <= 0:
                raise iae("Invalid parameter: input_docs_processed_step_size. It must be positive integer.")
        else:
            function = action.pre_process_function
            one = function is not None and (function in ml_process.ONE_DOC_A_REQUEST
                                            or function not in ml_process.PRE_PROCESS)
            step = 1 if one else max(1, len(data.docs))
        docs = data.docs
        return [TextDocs(tuple(docs[i:i + step]), data.algorithm) for i in range(0, max(1, len(docs)), step)]

    def request(self, action: ConnectorAction, data: MLInput) -> tuple[HttpRequest, dict[str, str]]:
        """One request's parameters and HTTP request (``RemoteConnectorExecutor.preparePayloadAndInvoke``):
        the connector's parameters, under the call's, under what the pre-process made, under the call's
        again."""
        given = dict(data.parameters) if isinstance(data, RemoteParams) else {}
        merged = {**self.parameters, **given}
        processed = ml_process.pre_process(action.pre_process_function, data, merged, self.parameters)
        call = {**processed.parameters, **given}
        params = {**self.parameters, **call}
        if action.method.upper() not in HTTP_METHODS:
            raise iae("unsupported http method")
        secrets = {k: s.reveal() for k, s in self.credential.items()}
        body = ""
        if action.request_body is not None:
            body = _Body(self.parameters, call, secrets, params).render(action.request_body, self.credential.values())
        elif "http_body" in params:
            body = params["http_body"]
        if action.method.upper() == "POST" and not body:
            raise iae("Content length is 0. Aborting request to remote model")
        fixed = {f"parameters.{k}": v for k, v in self.parameters.items()}
        fixed.update({f"credential.{k}": v for k, v in secrets.items()})
        url = render_url(action.url, fixed, {f"parameters.{k}": v for k, v in call.items()})
        headers = _headers(action, params, secrets)
        return HttpRequest(url=url, headers=headers, body=java_utf8(body), method=action.method.upper()), params

    def _answer(self, action: ConnectorAction, resp: Any, params: Mapping[str, str]) -> dict[str, Any]:
        """``MLSdkAsyncHttpResponseHandler.response``: the status, then the body's tensors."""
        text = resp.text
        status = resp.status_code
        if not 200 <= status <= 300:
            reason = (f"Remote service returned error status {status} with empty body" if not text.strip()
                      else f"Error from remote service: {text}")
            raise ApiError("status_exception", redact(reason[:MAX_REASON], self.credential.values()), status)
        if not text.strip():
            raise ApiError("status_exception", "Remote service returned empty response body", 502)
        tensors = ml_process.post_process(action.action_type, action.post_process_function, text, params,
                                          strict_json)
        out: dict[str, Any] = {}
        if tensors:
            out["output"] = tensors
        out["status_code"] = status
        return out


def _headers(action: ConnectorAction, params: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, str]:
    """The action's headers: credentials, then parameters (never in a blocked header), then ml-commons'
    checks of what was substituted."""
    headers: dict[str, str] = {}
    total = 0
    for name, template in action.headers.items():
        value = _fill_text(template, "credential", secrets)
        if "${parameters." in value:
            if name.lower() in BLOCKED_DYNAMIC_HEADERS:
                raise iae(f"Header '{name}' cannot use ${{parameters.*}} placeholders for security reasons. Use "
                          "${credential.*} instead.")
            value = _fill_text(value, "parameters", params)
            if "${parameters." in value:
                raise iae(f"Header '{name}' contains unresolved placeholder. Required parameter is missing.")
        if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
            raise iae("Header value contains invalid control character")
        size = len(name) + len(value)
        if size > 8192:
            raise iae("Header size (key + value) exceeds 8KB limit")
        total += size
        headers[name] = value
    if total > 65536:
        raise iae("Total headers size (key + value) exceeds 64KB limit")
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    return headers


def _fill_text(template: str, kind: str, values: Mapping[str, str], depth: int = 0) -> str:
    """StringSubstitutor over plain text (headers): ``${kind.x}`` / ``${kind.x:-default}``, values filled
    in turn; a placeholder without a value stays as it is."""

    def one(m: re.Match[str]) -> str:
        if m.group(1) != kind:
            return m.group(0)
        name, _, default = m.group(2).partition(":-")
        value = values.get(name)
        if value is None:
            value = default if ":-" in m.group(2) else None
        if value is None:
            return m.group(0)
        if depth < MAX_NESTING and "${" in value:
            return _fill_text(value, kind, values, depth + 1)
        return value

    return _VARIABLE.sub(one, template)


class _Body:
    """A request body template filled as ml-commons fills it, with values given with the call kept as data.

    ``fixed``: the connector's parameters (templates themselves: their placeholders are filled in turn,
    inside whatever JSON context the placeholder stands in); ``call``: the call's values, from the input
    and the pre-process (data: JSON-escaped inside a string literal, else one JSON value, never filled);
    ``secrets``: the credential values; ``merged``: every parameter, for ``:-null`` and ``no_escape_params``."""

    def __init__(self, fixed: Mapping[str, str], call: Mapping[str, str], secrets: Mapping[str, str],
                 merged: Mapping[str, str]) -> None:
        self.fixed, self.call, self.secrets, self.merged = fixed, call, secrets, merged
        self.no_escape = {k.strip() for k in str(merged.get("no_escape_params") or "").split(",") if k.strip()}
        self.missing: list[str] = []
        self.bad = False

    def render(self, template: str, credential: Any) -> str:
        template = _NULL_DEFAULT.sub(lambda m: "null" if m.group(1) not in self.merged else m.group(0), template)
        text = self._fill(template, False, ())
        shown = redact(text, credential)
        if self.bad or not _json_or_ndjson(text):
            raise iae(f"Invalid payload: {shown[:MAX_REASON]}")
        if self.missing and str(self.merged.get("skip_validating_missing_parameters", "")).lower() != "true":
            raise iae(f"Some parameter placeholder not filled in payload: {', '.join(self.missing)}")
        return text

    def _fill(self, text: str, in_string: bool, stack: tuple[str, ...]) -> str:
        out: list[str] = []
        escaped = False
        i = 0
        while i < len(text):
            if text.startswith("$${", i):  # StringSubstitutor's escape: a literal ${
                out.append("${")
                i += 3
                continue
            m = _VARIABLE.match(text, i) if text.startswith("${", i) else None
            if m is not None:
                out.append(self._value(m, in_string, stack))
                i = m.end()
                continue
            in_string, escaped = json_string_step(text[i], in_string, escaped)
            out.append(text[i])
            i += 1
        return "".join(out)

    def _value(self, m: re.Match[str], in_string: bool, stack: tuple[str, ...]) -> str:
        kind, spec = m.group(1), m.group(2)
        if kind == "credential":
            secret = self.secrets.get(spec)
            return m.group(0) if secret is None else self._leaf(secret, in_string, raw=False)
        name, has_default, default = spec.partition(":-")
        if name.endswith(_TO_STRING) and name[:-len(_TO_STRING)] in self.merged:  # StringUtils.parseParameters
            return self._leaf(gson_json(self.merged[name[:-len(_TO_STRING)]])[1:-1], in_string, raw=True)
        if name in self.call:
            return self._leaf(self.call[name], in_string, raw=name in self.no_escape)
        fragment = self.fixed.get(name)
        if fragment is None and has_default:
            fragment = default
        if fragment is None:
            self.missing.append(spec)
            return m.group(0)
        if name in stack or len(stack) >= MAX_NESTING:
            raise ApiError("illegal_state_exception", "Infinite loop in property interpolation of "
                           f"${{parameters.{stack[0] if stack else name}}}: {'->'.join((*stack, name))}", 400)
        return self._fill(fragment, in_string, (*stack, name))

    def _leaf(self, value: str, in_string: bool, raw: bool) -> str:
        if in_string:
            return value if raw else json.dumps(value, ensure_ascii=False)[1:-1]
        if not raw and not _one_json_value(value):
            self.bad = True
        return value


def _one_json_value(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def _json_or_ndjson(text: str) -> bool:
    """``StringUtils.isJsonOrNdjson``: JSON, or lines of JSON."""
    if not text.strip():
        return False
    if _one_json_value(text):
        return True
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) > 1 and all(_one_json_value(line) for line in lines)


def strict_json(text: str) -> Any:
    """The answer as ml-commons' Jackson reads it (``StringUtils.fromJson``): NaN and the infinities and
    anything that is not JSON refused with Jackson's message."""
    try:
        return json.loads(text, parse_constant=_non_numeric)
    except NonNumericToken as bare:
        raise iae(f"Invalid JSON format: {bare.jackson_message(text)}") from None
    except json.JSONDecodeError as err:
        token = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", text)
        if token is not None and err.pos == token.start(1):
            end = token.end(1)
            line = text.count("\n", 0, end) + 1
            column = end - (text.rfind("\n", 0, end) + 1) + 1
            raise iae(f"Invalid JSON format: Unrecognized token '{token.group(1)}': was expecting (JSON String, "
                      f"Number, Array, Object or token 'null', 'true' or 'false')\n at [Source: {_SOURCE}; line: "
                      f"{line}, column: {column}]") from None
        raise iae(f"Invalid JSON format: {err.msg}\n at [Source: {_SOURCE}; line: {err.lineno}, column: "
                  f"{err.colno}]") from None


class NonNumericToken(ValueError):
    """A bare ``NaN``, ``Infinity`` or ``-Infinity`` in a remote model's JSON answer. ml-commons
    (``StringUtils.fromJson``, Jackson with its defaults) rejects the answer; the message is Jackson's."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token

    def jackson_message(self, text: str) -> str:
        line, column = _bare_token_end(text, self.token)
        return (f"Non-standard token '{self.token}': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow\n"
                f" at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: {line}, "
                f"column: {column}]")


def _non_numeric(token: str) -> Any:
    raise NonNumericToken(token)


def _bare_token_end(text: str, token: str) -> tuple[int, int]:
    """Line and column (1-based, Jackson's: the character after the token) where the first ``token``
    outside a JSON string ends."""
    line, row_start, in_string, escaped = 1, 0, False, False
    i = 0
    while i < len(text):
        ch = text[i]
        if in_string or ch == '"':
            in_string, escaped = json_string_step(ch, in_string, escaped)
        elif ch == "\n":
            line, row_start = line + 1, i + 1
        elif text.startswith(token, i):
            end = i + len(token)
            return line, end - row_start + 1
        i += 1
    return line, len(text) - row_start + 1
