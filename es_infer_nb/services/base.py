"""What every inference service implements, and the shared HTTP request/response cycle."""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import ApiError
from .chunking import ChunkingSettings
from .secrets import Secret, mask_headers, redact
from .transport import HttpRequest, Transport, TransportSettings

TASK_TYPES = ("text_embedding", "sparse_embedding", "rerank", "completion", "chat_completion", "custom")
INPUT_TYPES = ("ingest", "search", "classification", "clustering")
DEFAULT_MAX_CONCURRENT_REQUESTS = 8


@dataclass
class InferenceContext:
    """One inference call's request-time options."""

    task_type: str
    task_settings: dict[str, Any] = field(default_factory=dict)
    input_type: str | None = None
    query: str | None = None
    top_n: int | None = None
    return_documents: bool | None = None
    timeout_s: float | None = None
    engine: Any = field(default=None, repr=False)  # for services backed by the engine's own models
    #: where those models run when the engine's device would apply (``None``: the engine's)
    device: str | None = None


@dataclass
class Endpoint:
    """A parsed inference endpoint. ``secrets`` are :class:`Secret` objects (hidden in ``repr``)."""

    inference_id: str
    task_type: str
    service: "Service"
    service_settings: dict[str, Any]
    task_settings: dict[str, Any]
    chunking_settings: ChunkingSettings | None
    secrets: dict[str, Secret] = field(default_factory=dict, repr=False)
    model: Any = field(default=None, repr=False)  # the service's parsed settings object

    def to_dict(self) -> dict[str, Any]:
        """The endpoint as GET / PUT answer it: never a secret, literal credential headers masked."""
        out = self.stored()
        out["service_settings"] = self.service.shown_settings(out["service_settings"])
        return out

    def stored(self) -> dict[str, Any]:
        """What the endpoint store keeps (secrets live elsewhere): the settings as given."""
        out: dict[str, Any] = {"inference_id": self.inference_id, "task_type": self.task_type,
                               "service": self.service.name, "service_settings": dict(self.service_settings)}
        if self.task_settings:
            out["task_settings"] = dict(self.task_settings)
        if self.chunking_settings is not None:
            out["chunking_settings"] = self.chunking_settings.to_dict()
        return out

    def __repr__(self) -> str:
        shown = self.to_dict()
        return (f"Endpoint(inference_id={self.inference_id!r}, task_type={self.task_type!r}, "
                f"service={self.service.name!r}, service_settings={shown['service_settings']!r}, "
                f"task_settings={self.task_settings!r}, secrets={sorted(self.secrets)!r})")

    def redact(self, text: str) -> str:
        return redact(text, self.secrets.values())


@dataclass
class TaskOutput:
    """One result entry (or an ``ApiError``) per input, and the ranked list for rerank."""

    key: str
    per_input: list[dict[str, Any] | ApiError]
    ranked: list[dict[str, Any]] | None = None
    whole: Any = None  # task type ``custom``: the remote response
    #: completion: every result of the first input's answer, which is what ES answers (its request carries
    #: the first input alone; a response may hold several results)
    completions: list[dict[str, Any]] | None = None


@dataclass
class ServiceSetting:
    """One row of ``GET _inference/_services``."""

    name: str
    description: str
    required: bool = False
    sensitive: bool = False
    type: str = "str"
    default_value: Any = None

    def to_dict(self, task_types: tuple[str, ...] = ()) -> dict[str, Any]:
        """``SettingsConfiguration.toXContent``: null default and description left out, then the task types."""
        out: dict[str, Any] = {}
        if self.default_value is not None:
            out["default_value"] = self.default_value
        if self.description is not None:
            out["description"] = self.description
        out.update({"label": self.name, "required": self.required, "sensitive": self.sensitive,
                    "updatable": not self.sensitive, "type": self.type, "supported_task_types": list(task_types)})
        return out


class Service(ABC):
    """An inference service: settings parsing and ``infer``."""

    name: str = ""
    #: the service's display name (its ``SERVICE_NAME`` in ES), ``_services``' ``name``
    display_name: str = ""
    task_types: tuple[str, ...] = ()
    secret_fields: tuple[str, ...] = ()
    default_rpm: int = 3000
    chunked_task_types: tuple[str, ...] = ("text_embedding", "sparse_embedding")
    #: whether an endpoint of a chunked task type given no ``chunking_settings`` gets (and shows) ES's
    #: default ones; when not, it shows none and is chunked with the defaults all the same
    chunking_by_default: bool = True

    @abstractmethod
    def parse(self, task_type: str, service_settings: dict[str, Any], task_settings: dict[str, Any],
              secrets: dict[str, Secret]) -> tuple[dict[str, Any], dict[str, Any], Any]:
        """-> (public service_settings, task_settings, parsed model object); raises ``ApiError``."""

    @abstractmethod
    def infer(self, endpoint: Endpoint, inputs: list[str], ctx: InferenceContext,
              transport: Transport | None) -> TaskOutput:
        """One result per input (errors per input)."""

    def settings_table(self) -> list[ServiceSetting]:
        return []

    def shown_settings(self, service_settings: dict[str, Any]) -> dict[str, Any]:
        """``service_settings`` as GET / PUT answers and reprs show them: literal credential headers
        masked (``${secret}`` templates kept)."""
        out = dict(service_settings)
        headers = out.get("headers")
        if isinstance(headers, dict):
            out["headers"] = mask_headers(headers)
        return out

    def destination(self, endpoint: Endpoint) -> str | None:
        """Where the endpoint's requests (and so its secrets) go; ``None`` for local services.
        An ``_update`` that changes it must give the secrets again."""
        url = endpoint.service_settings.get("url")
        return url if isinstance(url, str) else None

    def transport_settings(self, endpoint: Endpoint) -> TransportSettings | None:
        """``None`` for services that never call out (local models)."""
        s = endpoint.service_settings
        return TransportSettings(
            requests_per_minute=float((s.get("rate_limit") or {}).get("requests_per_minute", self.default_rpm)),
            max_concurrent_requests=int(s.get("max_concurrent_requests", DEFAULT_MAX_CONCURRENT_REQUESTS)),
        )

    def describe(self) -> dict[str, Any]:
        return {"service": self.name, "name": self.display_name or self.name, "task_types": list(self.task_types),
                "configurations": {s.name: s.to_dict(self.task_types) for s in self.settings_table()}}


def translate_input_type(input_type: str | None) -> str | None:
    """ES's internal input types (``internal_search``, ``internal_ingest``) as their public names."""
    if input_type is None:
        return None
    return input_type[len("internal_"):] if input_type.startswith("internal_") else input_type


class HttpService(Service):
    """A service reached over HTTP: batches inputs, sends with the endpoint's transport, parses."""

    error_path: str = "$.error.message"

    @abstractmethod
    def batch_size(self, endpoint: Endpoint, ctx: InferenceContext) -> int:
        """How many inputs go into one upstream request (0 = all of them, e.g. rerank)."""

    @abstractmethod
    def build_request(self, endpoint: Endpoint, texts: list[str], ctx: InferenceContext) -> HttpRequest:
        ...

    @abstractmethod
    def parse_response(self, endpoint: Endpoint, body: Any, ctx: InferenceContext) -> dict[str, Any]:
        """The ``_inference`` answer for one upstream response (``{"text_embedding": [...]}`` ...)."""

    def error_message_path(self, endpoint: Endpoint) -> str | None:
        return self.error_path

    def infer(self, endpoint: Endpoint, inputs: list[str], ctx: InferenceContext,
              transport: Transport | None) -> TaskOutput:
        assert transport is not None
        size = self.batch_size(endpoint, ctx) or max(1, len(inputs))
        batches = [list(range(i, min(i + size, len(inputs)))) for i in range(0, len(inputs), size)]
        timeout_s = ctx.timeout_s or transport.settings.timeout_s
        deadline = time.monotonic() + timeout_s  # one deadline for the whole call, all its batches

        def call(batch: list[int]) -> dict[str, Any]:
            texts = [inputs[i] for i in batch]
            request = self.build_request(endpoint, texts, ctx)
            response = transport.send(request, timeout_s, deadline=deadline)
            return self._read(endpoint, response, ctx)

        outcomes = transport.map(call, batches)
        return self._assemble(endpoint, ctx, inputs, batches, outcomes)

    def _read(self, endpoint: Endpoint, response: Any, ctx: InferenceContext) -> dict[str, Any]:
        status = response.status_code
        if status >= 300:
            raise self.unsuccessful(endpoint, status, response.content)
        try:
            body = json.loads(response.content)
        except ValueError:
            raise ApiError("status_exception", endpoint.redact(
                f"Failed to parse the response of inference endpoint [{endpoint.inference_id}]: the body is not "
                f"JSON: [{response.content[:200].decode('utf-8', 'replace')}]"), 500) from None
        try:
            return self.parse_response(endpoint, body, ctx)
        except ApiError as err:
            raise ApiError(err.type, endpoint.redact(err.reason), err.status) from None

    def unsuccessful(self, endpoint: Endpoint, status: int, raw: bytes) -> ApiError:
        from .parsers import error_message  # the response parsers (~5 ms of import): loaded when a call fails

        path = self.error_message_path(endpoint)
        text = raw.decode("utf-8", "replace")
        message = error_message(text, path) if path else text
        if status == 429:
            what = "Received a rate limit status code"
        elif status >= 500:
            what = "Received a server error status code"
        else:
            what = "Received an unsuccessful status code"
        reason = (f"{what} for request from inference entity id [{endpoint.inference_id}] status [{status}]. "
                  f"Error message: [{message}]")
        return ApiError("status_exception", endpoint.redact(reason), status if status >= 400 else 500)

    def _assemble(self, endpoint: Endpoint, ctx: InferenceContext, inputs: list[str], batches: list[list[int]],
                  outcomes: list[Any]) -> TaskOutput:
        per_input: list[dict[str, Any] | ApiError] = [None] * len(inputs)  # type: ignore[list-item]
        key = ctx.task_type
        ranked: list[dict[str, Any]] | None = None
        completions: list[dict[str, Any]] | None = None
        whole = None
        for batch, outcome in zip(batches, outcomes):
            if isinstance(outcome, ApiError):
                for i in batch:
                    per_input[i] = outcome
                continue
            (key, entries), = outcome.items()
            if key == "custom":
                whole = entries
                for i in batch:
                    per_input[i] = {"response": entries}
            elif key == "rerank":
                ranked = entries
                for i in batch:
                    per_input[i] = {"index": i, "relevance_score": None}
                for e in entries:
                    if 0 <= e["index"] < len(inputs):
                        per_input[e["index"]] = dict(e)
            elif key == "completion":
                per_input[batch[0]] = entries[0] if entries else {"result": ""}
                if batch[0] == 0:
                    completions = list(entries)
            elif len(entries) != len(batch):  # EmbeddingRequestChunker's words: the whole batch fails
                err = ApiError("status_exception", (
                    f"Error the number of embedding responses [{len(entries)}] does not equal the number of "
                    f"requests [{len(batch)}]"), 500)
                for i in batch:
                    per_input[i] = err
            else:
                for i, e in zip(batch, entries):
                    per_input[i] = e
        return TaskOutput(key, per_input, ranked, whole, completions)


def merged_task_settings(stored: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """Request-time task settings over the stored ones (one level deep, as ES merges ``parameters``)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in stored.items()}
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out
