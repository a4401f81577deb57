"""The services by name, and each engine's inference endpoints (configs + secrets + transports)."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..storage import writing
from .base import TASK_TYPES, Endpoint, Service
from .chunking import parse_chunking_settings
from .secrets import LOCAL, EnvPolicy, Secret, SecretStore, redact
from .settings import reject_unknown
from .per_engine import PerEngine
from .transport import Transport

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine


def _services() -> dict[str, Service]:
    from .alibaba_custom import AlibabaCloudCustomModelService
    from .custom import CustomService
    from .elasticsearch import ElasticsearchService
    from .hugging_face import HuggingFaceService
    from .openai import OpenAiService

    return {s.name: s for s in (CustomService(), AlibabaCloudCustomModelService(), OpenAiService(),
                                HuggingFaceService(), ElasticsearchService())}


_SERVICES: dict[str, Service] | None = None


def services() -> dict[str, Service]:
    global _SERVICES
    if _SERVICES is None:
        _SERVICES = _services()
    return _SERVICES


def get_service(name: Any) -> Service:
    service = services().get(name) if isinstance(name, str) else None
    if service is None:
        raise ApiError("status_exception", f"Unknown service [{name}]", 400)
    return service


def check_task_type(task_type: Any) -> str:
    """``TaskType.fromStringOrStatusException`` for a task type an endpoint has: any case (``TEXT_EMBEDDING``)."""
    name = task_type.strip().lower() if isinstance(task_type, str) else task_type
    if name not in TASK_TYPES:
        raise ApiError("status_exception", f"Unknown task_type [{task_type}]", 400)
    return name


def path_task_type(task_type: Any) -> str | None:
    """A task type in a request's path: ``any`` stands for none (``TaskType.ANY``)."""
    if isinstance(task_type, str) and task_type.strip().lower() == "any":
        return None
    return check_task_type(task_type)


def split_secrets(service: Service, service_settings: dict[str, Any],
                  policy: EnvPolicy = LOCAL) -> tuple[dict[str, Any], dict[str, Secret]]:
    """``service_settings`` without its secret fields, and the secrets (``secret_parameters`` is a map of
    secrets; other secret fields such as ``api_key`` are one secret each). ``policy`` says whether
    ``{"env": ...}`` references are accepted (not from remote requests unless allowlisted)."""
    public = dict(service_settings)
    secrets: dict[str, Secret] = {}
    for name in service.secret_fields:
        raw = public.pop(name, None)
        if raw is None:
            continue
        if name == "secret_parameters":
            if not isinstance(raw, dict):
                raise ApiError("validation_exception",
                               "Validation Failed: 1: [service_settings] [secret_parameters] must be a map;", 400)
            secrets.update(_secret_parameters(raw, policy))
        else:
            secrets[name] = Secret.from_setting(raw, name, policy)
    return public, secrets


def _secret_parameters(raw: dict[str, Any], policy: EnvPolicy) -> dict[str, Secret]:
    """``CustomSecretSettings.fromMap``: null values dropped, string values (or environment references); any
    other value refused with ES's censored message (``validateMapStringValues(..., censorValue=true)``)."""
    out: dict[str, Secret] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if not isinstance(value, (str, Secret)) and not Secret.is_reference(value):
            raise ApiError("validation_exception", "Validation Failed: 1: Map field [secret_parameters] has an entry "
                           "that is not valid. Value type is not one of [String].;", 400)
        out[key] = Secret.from_setting(value, f"secret_parameters.{key}", policy)
    return out


def build_endpoint(inference_id: str, task_type: str, body: dict[str, Any],
                   secrets: dict[str, Secret] | None = None, policy: EnvPolicy = LOCAL) -> Endpoint:
    """Parse a PUT body (or a stored config with its secrets) into an :class:`Endpoint`."""
    service = get_service(body.get("service"))
    if task_type not in service.task_types:
        raise ApiError("status_exception",
                       f"The [{service.name}] service does not support task type [{task_type}]", 400)
    raw_settings = body.get("service_settings")
    if not isinstance(raw_settings, dict):
        raise ApiError("validation_exception",
                       "Validation Failed: 1: [service_settings] does not contain the required setting "
                       "[service_settings];", 400)
    public_raw, given = split_secrets(service, raw_settings, policy)
    all_secrets = {**(secrets or {}), **given}
    task_settings = body.get("task_settings") or {}
    if not isinstance(task_settings, dict):
        raise ApiError("validation_exception", "Validation Failed: 1: [task_settings] must be an object;", 400)
    chunking = None
    if task_type in service.chunked_task_types:
        if body.get("chunking_settings") is not None or service.chunking_by_default:
            chunking = parse_chunking_settings(body.get("chunking_settings"))
    try:
        public, tasks, model = service.parse(task_type, public_raw, dict(task_settings), all_secrets)
    except ApiError as err:
        raise ApiError(err.type, redact(err.reason, all_secrets.values()), err.status) from None
    if task_type not in service.chunked_task_types and body.get("chunking_settings") is not None:
        # ES reads chunking_settings for the embedding task types only: for others the key is left in the
        # config, an unknown setting (``throwIfNotEmptyMap(config, NAME)``, after the model was built)
        reject_unknown({"chunking_settings": body["chunking_settings"]}, service.name, "config")
    return Endpoint(inference_id, task_type, service, public, tasks, chunking, all_secrets, model)


def update_endpoint(endpoint: Endpoint, body: dict[str, Any], policy: EnvPolicy = LOCAL) -> Endpoint:
    """``PUT _inference/<id>/_update``: ``body``'s settings over the stored ones. An update that sends
    the requests somewhere else (a new ``url``, or parameters rendering a new one) must give the
    secrets again: the stored ones are never sent to a new destination."""
    merged = endpoint.stored()
    for key in ("service_settings", "task_settings"):
        if isinstance(body.get(key), dict):
            merged[key] = {**merged.get(key, {}), **body[key]}
    if "chunking_settings" in body:
        merged["chunking_settings"] = body["chunking_settings"]
    updated = build_endpoint(endpoint.inference_id, endpoint.task_type, merged, dict(endpoint.secrets), policy)
    service = endpoint.service
    moved = service.destination(updated) != service.destination(endpoint)
    if not moved or not endpoint.secrets:
        return updated
    fields = service.secret_fields
    given = any(name in (body.get("service_settings") or {}) for name in fields)
    if not given:
        names = " / ".join(fields)
        raise ApiError("validation_exception",
                       f"Validation Failed: 1: [service_settings] [{names}] must be given again when an update "
                       f"changes the service url: the stored secrets are never sent to a new url;", 400)
    # only the secrets given with the update go to the new destination
    return build_endpoint(endpoint.inference_id, endpoint.task_type, merged, None, policy)


class Endpoints:
    """An engine's inference endpoints: configs in ``engine.inference_endpoints`` (no secret), secrets in
    the 0600 :class:`SecretStore`, one pooled :class:`Transport` per endpoint."""

    def __init__(self, engine: "Engine") -> None:
        self._engine = weakref.ref(engine)
        self.configs = engine.inference_endpoints
        self.secrets = SecretStore(engine.home)
        self._transports: dict[str, Transport] = {}
        self._parsed: dict[str, Endpoint] = {}
        self._lock = threading.RLock()
        self._home = engine.home
        self.configs.on_change(self._changed_elsewhere)

    def _changed_elsewhere(self, inference_ids: set[str]) -> None:
        """Endpoints another engine on the home replaced or deleted: parse them again (or not at all)."""
        with self._lock:
            for inference_id in inference_ids:
                self._forget(inference_id)

    def __repr__(self) -> str:
        return f"<Endpoints {list(self.configs)}>"

    def ids(self) -> list[str]:
        return list(self.configs)

    def get(self, inference_id: str) -> Endpoint:
        self.configs.refresh()  # read through: deleted or replaced by another engine on the home
        with self._lock:
            cached = self._parsed.get(inference_id)
            if cached is not None:
                return cached
            stored = self.configs.get(inference_id)
            if stored is None:
                raise ApiError("resource_not_found_exception", f"Inference endpoint not found [{inference_id}]",
                               404)
            endpoint = build_endpoint(inference_id, stored["task_type"], stored, self.secrets.get(inference_id))
            self._parsed[inference_id] = endpoint
            return endpoint

    def put(self, endpoint: Endpoint) -> None:
        with writing(self._home), self._lock:  # secrets and config together (start-up pruning sees both)
            self.secrets.put(endpoint.inference_id, endpoint.secrets)
            self.configs.put(endpoint.inference_id, endpoint.stored())
            self._forget(endpoint.inference_id)

    def delete(self, inference_id: str) -> None:
        with self._lock:
            self.configs.delete(inference_id)
            self.secrets.delete(inference_id)
            self._forget(inference_id)

    def _forget(self, inference_id: str) -> None:
        self._parsed.pop(inference_id, None)
        transport = self._transports.pop(inference_id, None)
        if transport is not None:
            transport.close()

    def transport(self, endpoint: Endpoint) -> Transport | None:
        settings = endpoint.service.transport_settings(endpoint)
        if settings is None:
            return None
        with self._lock:
            transport = self._transports.get(endpoint.inference_id)
            if transport is None or transport.settings != settings:
                transport = Transport(settings, endpoint.inference_id, tuple(endpoint.secrets.values()))
                self._transports[endpoint.inference_id] = transport
            return transport


_BY_ENGINE: PerEngine[Endpoints] = PerEngine(Endpoints)


def endpoints(engine: "Engine") -> Endpoints:
    return _BY_ENGINE.get(engine)
