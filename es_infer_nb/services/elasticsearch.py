"""ES's ``elasticsearch`` service: an endpoint backed by a model of this engine.

``model_id`` is the bundled MiniLM (``sentence-transformers__all-minilm-l6-v2``, embedded, no
deployment needed) or any trained model / deployment of the engine (``text_embedding`` ->
``predicted_value``, ``text_expansion`` -> sparse weights, ``text_similarity`` -> rerank scores).
A pipeline switches between local and remote inference by changing only the endpoint.
"""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from ..models.nlp import EMBEDDED_MODEL_ID
from .base import Endpoint, InferenceContext, Service, ServiceSetting, TaskOutput
from .secrets import Secret
from .settings import Validation, reject_unknown
from .transport import TransportSettings

SCOPE = "service_settings"


class ElasticsearchService(Service):
    name = "elasticsearch"
    display_name = "Elasticsearch"
    task_types = ("text_embedding", "sparse_embedding", "rerank")

    def parse(self, task_type: str, service_settings: dict[str, Any], task_settings: dict[str, Any],
              secrets: dict[str, Secret]) -> tuple[dict[str, Any], dict[str, Any], Any]:
        source = dict(service_settings)
        v = Validation()
        public: dict[str, Any] = {"model_id": v.required_string(source, "model_id", SCOPE)}
        for key in ("num_allocations", "num_threads"):
            value = v.optional_positive_int(source, key, SCOPE)
            public[key] = value if value is not None else 1
        adaptive = source.pop("adaptive_allocations", None)
        if adaptive is not None:
            public["adaptive_allocations"] = adaptive
        tasks = dict(task_settings)
        out_tasks = {}
        if task_type == "rerank" and "return_documents" in tasks:
            out_tasks["return_documents"] = tasks.pop("return_documents")
        v.raise_if_any()
        reject_unknown(source, self.name, SCOPE)
        reject_unknown(tasks, self.name, "task_settings")
        return public, out_tasks, None

    def transport_settings(self, endpoint: Endpoint) -> TransportSettings | None:
        return None

    def infer(self, endpoint: Endpoint, inputs: list[str], ctx: InferenceContext, transport: Any) -> TaskOutput:
        model_id = endpoint.service_settings["model_id"]
        engine = ctx.engine
        if model_id == EMBEDDED_MODEL_ID and (engine is None or engine.models.resolve(model_id) is None):
            if ctx.task_type != "text_embedding":
                raise ApiError("status_exception", f"[{model_id}] is a text_embedding model, the endpoint is "
                               f"[{ctx.task_type}]", 400)
            from ..models.nlp.embedded import get_model

            vectors = get_model(ctx.device or getattr(engine, "device", None)).embed(inputs)
            return TaskOutput("text_embedding", [{"embedding": [float(x) for x in v]} for v in vectors])
        if engine is None:
            raise ApiError("status_exception", "the elasticsearch service needs an engine", 500)
        return self._engine_model(engine, model_id, inputs, ctx)

    def _engine_model(self, engine: Any, model_id: str, inputs: list[str], ctx: InferenceContext) -> TaskOutput:
        from ..models.deployments import deployments  # the NLP models (torch): loaded when one runs
        from ..models.runner import infer_docs

        field = deployments(engine).input_field_of(model_id)
        if ctx.task_type == "rerank":
            docs = [{field: t} for t in inputs]
            config = {"text_similarity": {"text": ctx.query}}
            results = infer_docs(engine, model_id, docs, config, engine_device=ctx.device).to_docs()
        else:
            results = infer_docs(engine, model_id, [{field: t} for t in inputs], engine_device=ctx.device).to_docs()
        per_input: list[Any] = []
        for i, r in enumerate(results):
            if "error" in r:
                err = r["error"]
                reason = err.get("reason") if isinstance(err, dict) else str(err)
                per_input.append(ApiError("status_exception", str(reason), 400))
            elif ctx.task_type == "text_embedding":
                per_input.append({"embedding": [float(x) for x in r["predicted_value"]]})
            elif ctx.task_type == "sparse_embedding":
                per_input.append({"is_truncated": bool(r.get("is_truncated", False)),
                                  "embedding": {k: float(x) for k, x in r["predicted_value"].items()}})
            else:
                per_input.append({"index": i, "relevance_score": float(r["predicted_value"])})
        ranked = None
        if ctx.task_type == "rerank":
            ok = [e for e in per_input if isinstance(e, dict)]
            ranked = sorted(ok, key=lambda e: -e["relevance_score"])
        return TaskOutput(ctx.task_type, per_input, ranked)

    def settings_table(self) -> list[ServiceSetting]:
        return [
            ServiceSetting("model_id", "A trained model / deployment id of this engine, or the bundled MiniLM.",
                           required=True),
            ServiceSetting("num_allocations", "Accepted for compatibility.", type="int", default_value=1),
            ServiceSetting("num_threads", "Accepted for compatibility.", type="int", default_value=1),
        ]
