"""ES's ``hugging_face`` service: a text-embeddings-inference (TEI) style URL.

text_embedding: ``POST url {"inputs": [...]}`` -> ``[[floats], ...]`` (or ``{"embeddings": [...]}``);
rerank: ``POST url {"query", "texts", "return_text"}`` -> ``[{"index", "score", "text"?}, ...]``.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ApiError
from .base import Endpoint, HttpService, InferenceContext, ServiceSetting
from .secrets import Secret
from .settings import Validation, rate_limit, reject_unknown
from .transport import HttpRequest

DEFAULT_RPM = 3000
BATCH = 32
SCOPE = "service_settings"


class HuggingFaceService(HttpService):
    name = "hugging_face"
    display_name = "Hugging Face"
    task_types = ("text_embedding", "rerank")
    secret_fields = ("api_key",)
    chunked_task_types = ("text_embedding",)
    error_path = "$.error"

    def parse(self, task_type: str, service_settings: dict[str, Any], task_settings: dict[str, Any],
              secrets: dict[str, Secret]) -> tuple[dict[str, Any], dict[str, Any], Any]:
        source = dict(service_settings)
        v = Validation()
        public: dict[str, Any] = {"url": v.required_string(source, "url", SCOPE)}
        for key in ("similarity", "model_id"):
            value = v.optional_string(source, key, SCOPE)
            if value is not None:
                public[key] = value
        for key in ("dimensions", "max_input_tokens", "max_concurrent_requests", "batch_size"):
            value = v.optional_positive_int(source, key, SCOPE)
            if value is not None:
                public[key] = value
        public["rate_limit"] = rate_limit(source, DEFAULT_RPM, v)
        tasks = dict(task_settings)
        out_tasks: dict[str, Any] = {}
        if task_type == "rerank":
            for key in ("return_documents", "top_n"):
                if key in tasks:
                    out_tasks[key] = tasks.pop(key)
        v.raise_if_any()
        reject_unknown(source, self.name, SCOPE)
        reject_unknown(tasks, self.name, "task_settings")
        return public, out_tasks, None

    def batch_size(self, endpoint: Endpoint, ctx: InferenceContext) -> int:
        return 0 if ctx.task_type == "rerank" else int(endpoint.service_settings.get("batch_size", BATCH))

    def build_request(self, endpoint: Endpoint, texts: list[str], ctx: InferenceContext) -> HttpRequest:
        headers = {"Content-Type": "application/json"}
        if "api_key" in endpoint.secrets:
            headers["Authorization"] = f"Bearer {endpoint.secrets['api_key'].reveal()}"
        if ctx.task_type == "rerank":
            ret = ctx.return_documents if ctx.return_documents is not None else ctx.task_settings.get(
                "return_documents", False)
            body: dict[str, Any] = {"query": ctx.query, "texts": texts, "return_text": bool(ret)}
        else:
            body = {"inputs": texts}
        return HttpRequest(endpoint.service_settings["url"], headers, json.dumps(body).encode())

    def parse_response(self, endpoint: Endpoint, body: Any, ctx: InferenceContext) -> dict[str, Any]:
        if ctx.task_type == "rerank":
            if not isinstance(body, list) or not all(isinstance(e, dict) and "index" in e and "score" in e
                                                     for e in body):
                raise ApiError("illegal_state_exception", "Failed to parse the rerank response: expected a list of "
                               "{index, score} objects", 500)
            ranked = []
            for e in body:
                entry = {"index": int(e["index"]), "relevance_score": float(e["score"])}
                if "text" in e:
                    entry["text"] = e["text"]
                ranked.append(entry)
            return {"rerank": ranked}
        vectors = body.get("embeddings") if isinstance(body, dict) else body
        if not isinstance(vectors, list) or not all(
                isinstance(vec, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vec)
                for vec in vectors):
            raise ApiError("illegal_state_exception", "Failed to parse the text embedding response: expected a list "
                           "of lists of numbers", 500)
        return {"text_embedding": [{"embedding": [float(x) for x in vec]} for vec in vectors]}

    def settings_table(self) -> list[ServiceSetting]:
        return [
            ServiceSetting("url", "The text-embeddings-inference URL.", required=True),
            ServiceSetting("api_key", "A bearer token, if the server needs one.", sensitive=True),
            ServiceSetting("rate_limit.requests_per_minute", "Requests per minute.", type="int",
                           default_value=DEFAULT_RPM),
        ]
