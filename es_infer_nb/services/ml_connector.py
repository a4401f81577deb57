"""OpenSearch ml-commons HTTP connectors (``protocol: http``): parse, render, call, read the answer.

A connector holds ``parameters`` (strings), a write-only ``credential`` map and ``actions``; the
``predict`` action's ``url``, ``headers`` and ``request_body`` are templates over
``${parameters.*}`` and ``${credential.*}`` (ml-commons ``HttpConnector``). A call's parameters go
over the connector's own ones. Where a placeholder stands inside a JSON string literal of
``request_body`` the value is inserted JSON-escaped; elsewhere it must be one JSON value (a list or
object given with the call, a number...), so a document's text never changes the request's
structure. The built-in ``pre_process_function`` names turn ``text_docs`` into parameters, the
``post_process_function`` names read embeddings with ml-commons' JSON paths into
``sentence_embedding`` tensors; without one, the whole JSON answer is one ``response`` tensor's
``dataAsMap`` (a JSON array as ``{"response": [...]}``). Credentials are :class:`Secret` values:
never in :meth:`Connector.public`, reprs, logs or error messages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from jsonpath_ng import parse

from ..errors import ApiError
from .secrets import LOCAL, EnvPolicy, Secret, redact
from .templates import json_placeholders, json_string_step, render_url
from .transport import HttpRequest, Transport, TransportSettings

PROTOCOLS = ("http", "aws_sigv4")
ACTION_TYPES = ("predict", "execute", "batch_predict", "cancel_batch_predict", "batch_predict_status")
DEFAULT_PRE = "connector.pre_process.default.embedding"
#: pre-process function -> the parameter the text docs go into and whether only the first doc is sent
PRE_PROCESS = {
    "connector.pre_process.default.embedding": ("input", False),
    "connector.pre_process.openai.embedding": ("input", False),
    "connector.pre_process.cohere.embedding": ("texts", False),
    "connector.pre_process.bedrock.embedding": ("inputText", True),
}
#: post-process function -> (JSON path over the answer, one vector (bedrock) or a list of vectors)
POST_PROCESS = {
    "connector.post_process.default.embedding": ("$[*]", False),
    "connector.post_process.openai.embedding": ("$.data[*].embedding", False),
    "connector.post_process.cohere.embedding": ("$.embeddings", False),
    "connector.post_process.bedrock.embedding": ("$.embedding", True),
}
BLOCKED_DYNAMIC_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token",
                                     "x-auth-header", "host", "forwarded", "x-forwarded-for", "x-forwarded-host"})
_PLACEHOLDER = re.compile(r"\$\{(parameters|credential)\.([^}]+)\}")
DEFAULT_TIMEOUT_S = 30.0
MAX_CONNECTION_DEFAULT = 30  # ml-commons' ConnectorClientConfig.MAX_CONNECTION_DEFAULT_VALUE
MAX_REASON = 2000


def iae(reason: str) -> ApiError:
    return ApiError("illegal_argument_exception", reason, 400)


def parameter_text(value: Any) -> str:
    """ml-commons keeps parameters as strings: strings as they are, anything else as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _string_map(raw: Any, what: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise iae(f"[{what}] must be an object")
    return {str(k): parameter_text(v) for k, v in raw.items()}


@dataclass
class ConnectorAction:
    action_type: str
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    request_body: str | None = None
    pre_process_function: str | None = None
    post_process_function: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> "ConnectorAction":
        if not isinstance(raw, dict):
            raise iae("[actions] must be a list of objects")
        action_type = raw.get("action_type")
        if action_type is None:
            raise iae("action type can't be null")
        if str(action_type).lower() not in ACTION_TYPES:
            raise iae(f"Wrong Action Type of {action_type}")
        if raw.get("url") is None:
            raise iae("url can't be null")
        if raw.get("method") is None:
            raise iae("method can't be null")
        body = raw.get("request_body")
        if body is not None and not isinstance(body, str):
            body = json.dumps(body, ensure_ascii=False)  # an object given for the template: its JSON text
        pre, post = raw.get("pre_process_function"), raw.get("post_process_function")
        for name, known, kind in ((pre, PRE_PROCESS, "pre"), (post, POST_PROCESS, "post")):
            if name is not None and name not in known:
                raise iae(f"[{kind}_process_function] [{name}] is not supported: es_infer_nb runs the built-in "
                          f"functions {sorted(known)} (painless scripts are not run)")
        return cls(str(action_type).lower(), str(raw["method"]).upper(), str(raw["url"]),
                   _string_map(raw.get("headers"), "headers"), body, pre, post)

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
        return out


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
        if protocol not in PROTOCOLS:
            raise iae(f"Unsupported connector protocol. Please use one of {list(PROTOCOLS)}")
        if protocol != "http":
            raise iae(f"Connector protocol [{protocol}] needs AWS request signing, which es_infer_nb does not do: "
                      "use protocol [http]")
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
                      "be numbers") from None
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
        for a in self.actions:
            if a.action_type == action_type:
                return a
        raise iae(f"no {action_type} action found")

    def transport_settings(self) -> TransportSettings:
        cfg = self.client_config
        retries = int(cfg.get("max_retry_times", 0) or 0)
        timeout = cfg.get("read_timeout")
        connections = int(cfg.get("max_connection", MAX_CONNECTION_DEFAULT) or MAX_CONNECTION_DEFAULT)
        return TransportSettings(requests_per_minute=1e9, max_concurrent_requests=connections,
                                 timeout_s=float(timeout) if timeout else DEFAULT_TIMEOUT_S,
                                 max_retries=10 if retries < 0 else min(retries, 10),
                                 backoff_s=float(cfg.get("retry_backoff_millis", 50) or 50) / 1000.0)

    # -- the request -------------------------------------------------------------------------
    def text_docs_parameters(self, docs: list[str]) -> dict[str, str]:
        """``text_docs`` through the action's pre-process function (the default embedding one if none)."""
        name = self.action().pre_process_function or DEFAULT_PRE
        key, first_only = PRE_PROCESS[name]
        if not docs:
            raise iae("no input text docs")
        return {key: docs[0] if first_only else parameter_text(docs)}

    def render(self, call: Mapping[str, str]) -> HttpRequest:
        """The predict action's HTTP request for the call's ``parameters`` (strings)."""
        action = self.action()
        secrets = {k: s.reveal() for k, s in self.credential.items()}
        fixed = {f"parameters.{k}": v for k, v in self.parameters.items()}
        fixed.update({f"credential.{k}": v for k, v in secrets.items()})
        steered = {f"parameters.{k}": v for k, v in call.items()}
        url = render_url(action.url, fixed, steered)
        merged = {**self.parameters, **call}
        headers = {}
        for name, template in action.headers.items():
            values = dict(fixed)
            if name.lower() not in BLOCKED_DYNAMIC_HEADERS:
                values.update(steered)
            value = _fill(template, values)
            if "${parameters." in value:
                raise iae(f"Header '{name}' contains unresolved placeholder. Required parameter is missing.")
            if "\r" in value or "\n" in value:
                raise iae(f"Header '{name}' may not contain a line break")
            headers[name] = value
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        body = ""
        if action.request_body is not None:
            body = self._render_body(action.request_body, merged, secrets)
        elif "http_body" in merged:
            body = merged["http_body"]
        if action.method == "POST" and not body:
            raise iae("Content length is 0. Aborting request to remote model")
        return HttpRequest(url=url, headers=headers, body=body.encode("utf-8"), method=action.method)

    def _render_body(self, template: str, params: Mapping[str, str], secrets: Mapping[str, str]) -> str:
        pieces: list[str] = []
        missing: list[str] = []
        bad = False
        for literal, m, in_string in json_placeholders(template, _PLACEHOLDER):
            pieces.append(literal)
            if m is None:
                continue
            kind, key = m.group(1), m.group(2)
            value = (params if kind == "parameters" else secrets).get(key)
            if value is None:
                if kind == "parameters":
                    missing.append(key)
                pieces.append(m.group(0))
                continue
            if in_string:
                pieces.append(json.dumps(value, ensure_ascii=False)[1:-1])
            else:
                bad = bad or not _one_json_value(value)
                pieces.append(value)
        text = "".join(pieces)
        if missing:
            raise iae(f"Some parameter placeholder not filled in payload: {', '.join(missing)}")
        try:
            if bad:
                raise ValueError("a value is not one JSON value")
            json.loads(text)
        except ValueError:
            shown = redact(text, self.credential.values())
            raise iae(f"Invalid payload: {shown[:MAX_REASON]}") from None
        return text

    # -- the call and its answer -------------------------------------------------------------
    def predict(self, transport: Transport, call: Mapping[str, str], timeout_s: float | None = None) -> dict[str, Any]:
        """Send the predict action; the answer as ml-commons' ``ModelTensorOutput``."""
        request = self.render(call)
        resp = transport.send(request, timeout_s)
        text = resp.text
        if not 200 <= resp.status_code < 300:
            raise ApiError("status_exception", redact(f"Error from remote service: {text}"[:MAX_REASON],
                                                      self.credential.values()), resp.status_code)
        return {"inference_results": [{"output": self.tensors(text), "status_code": resp.status_code}]}

    def tensors(self, text: str) -> list[dict[str, Any]]:
        post = self.action().post_process_function
        try:
            answer = json.loads(text, parse_constant=None if post is not None else _non_numeric)
        except NonNumericToken as bare:  # ml-commons reads the answer with Jackson's defaults
            raise iae(f"Invalid JSON format: {bare.jackson_message(text)}") from None
        except ValueError:
            if post is not None:
                raise iae("The remote model's answer is not JSON") from None
            return [{"name": "response", "dataAsMap": {"response": text}}]
        if post is None:
            if not isinstance(answer, (dict, list)):  # only an object or an array is JSON to ml-commons' isJson
                return [{"name": "response", "dataAsMap": {"response": text}}]
            data = answer if isinstance(answer, dict) else {"response": answer}
            return [{"name": "response", "dataAsMap": data}]
        path, single = POST_PROCESS[post]
        found = _read_path(answer, path)
        vectors = [found] if single else found
        if not isinstance(vectors, list) or not all(_is_vector(v) for v in vectors):
            raise iae("The embedding should be a non-empty List containing Float values.")
        return [{"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [len(v)], "data": v} for v in vectors]


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


def _fill(template: str, values: Mapping[str, str]) -> str:
    """``${parameters.x}`` / ``${credential.x}`` filled from ``values`` (keys ``parameters.x``), one pass."""

    def one(m: re.Match[str]) -> str:
        value = values.get(f"{m.group(1)}.{m.group(2)}")
        return m.group(0) if value is None else value

    return _PLACEHOLDER.sub(one, template)


def _one_json_value(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)


def _read_path(answer: Any, path: str) -> Any:
    """Jayway's read: a definite path gives its value, one with ``[*]`` the list of its matches."""
    matches = [m.value for m in parse(path).find(answer)]
    if "[*]" in path:
        return matches
    if not matches:
        raise iae(f"No results for path: {path}")
    return matches[0]
