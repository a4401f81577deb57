"""ES's ``openai`` service: text_embedding (``/v1/embeddings``) and completion (``/v1/chat/completions``),
also for any OpenAI-compatible server given by ``url``."""

from __future__ import annotations

import json
from typing import Any

from ..errors import ApiError
from .base import Endpoint, HttpService, InferenceContext, ServiceSetting
from .secrets import Secret
from .settings import Validation, rate_limit, reject_unknown
from .transport import HttpRequest

URLS = {"text_embedding": "https://api.openai.com/v1/embeddings",
        "completion": "https://api.openai.com/v1/chat/completions"}
DEFAULT_RPM = {"text_embedding": 3000, "completion": 500}
EMBEDDING_BATCH = 2048
SCOPE = "service_settings"


def _float_list(values: Any, i: int) -> list[float]:
    if not isinstance(values, list) or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in values):
        raise ApiError("illegal_state_exception", f"Failed to parse text embedding entry [{i}]: expected a list of "
                       "numbers", 500)
    return [float(x) for x in values]


class OpenAiService(HttpService):
    name = "openai"
    display_name = "OpenAI"
    task_types = ("text_embedding", "completion")
    secret_fields = ("api_key",)
    chunked_task_types = ("text_embedding",)

    def parse(self, task_type: str, service_settings: dict[str, Any], task_settings: dict[str, Any],
              secrets: dict[str, Secret]) -> tuple[dict[str, Any], dict[str, Any], Any]:
        source = dict(service_settings)
        v = Validation()
        if "api_key" not in secrets:
            v.add(f"[{SCOPE}] does not contain the required setting [api_key]")
        public: dict[str, Any] = {"model_id": v.required_string(source, "model_id", SCOPE)}
        for key in ("url", "organization_id", "similarity"):
            value = v.optional_string(source, key, SCOPE)
            if value is not None:
                public[key] = value
        for key in ("dimensions", "max_input_tokens", "max_concurrent_requests"):
            value = v.optional_positive_int(source, key, SCOPE)
            if value is not None:
                public[key] = value
        public["rate_limit"] = rate_limit(source, DEFAULT_RPM[task_type], v)
        tasks = dict(task_settings)
        user = v.optional_string(tasks, "user", "task_settings")
        v.raise_if_any()
        reject_unknown(source, self.name, SCOPE)
        reject_unknown(tasks, self.name, "task_settings")
        return public, ({"user": user} if user is not None else {}), None

    def batch_size(self, endpoint: Endpoint, ctx: InferenceContext) -> int:
        return EMBEDDING_BATCH if ctx.task_type == "text_embedding" else 1

    def build_request(self, endpoint: Endpoint, texts: list[str], ctx: InferenceContext) -> HttpRequest:
        s = endpoint.service_settings
        body: dict[str, Any] = {"model": s["model_id"]}
        if ctx.task_type == "text_embedding":
            body["input"] = texts
            if "dimensions" in s:
                body["dimensions"] = s["dimensions"]
        else:
            body["messages"] = [{"role": "user", "content": texts[0]}]
            body["n"] = 1
        user = ctx.task_settings.get("user")
        if user is not None:
            body["user"] = user
        headers = {"Content-Type": "application/json",
                   "Authorization": f"Bearer {endpoint.secrets['api_key'].reveal()}"}
        if "organization_id" in s:
            headers["OpenAI-Organization"] = s["organization_id"]
        return HttpRequest(s.get("url") or URLS[ctx.task_type], headers, json.dumps(body).encode())

    def parse_response(self, endpoint: Endpoint, body: Any, ctx: InferenceContext) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError("illegal_state_exception", "Failed to parse the OpenAI response: expected an object", 500)
        if ctx.task_type == "text_embedding":
            data = body.get("data")
            if not isinstance(data, list):
                raise ApiError("illegal_state_exception", "Failed to find required field [data] in OpenAI embeddings "
                               "response", 500)
            ordered = sorted(data, key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0)
            return {"text_embedding": [{"embedding": _float_list(d.get("embedding") if isinstance(d, dict) else None,
                                                                 i)} for i, d in enumerate(ordered)]}
        choices = body.get("choices")
        if not isinstance(choices, list):
            raise ApiError("illegal_state_exception", "Failed to find required field [choices] in OpenAI chat "
                           "completions response", 500)
        return {"completion": [{"result": str((c.get("message") or {}).get("content", ""))} for c in choices
                               if isinstance(c, dict)]}

    def settings_table(self) -> list[ServiceSetting]:
        return [
            ServiceSetting("api_key", "The OpenAI API key.", required=True, sensitive=True),
            ServiceSetting("model_id", "The model to use.", required=True),
            ServiceSetting("url", "An OpenAI-compatible URL (default api.openai.com)."),
            ServiceSetting("organization_id", "The organization."),
            ServiceSetting("dimensions", "Embedding dimensions.", type="int"),
            ServiceSetting("rate_limit.requests_per_minute", "Requests per minute.", type="int",
                           default_value=3000),
        ]
