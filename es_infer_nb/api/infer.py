"""``_infer``: ``POST _ml/trained_models/<id>/_infer`` and the 7.x ``_ml/inference/<id>/_infer`` (spec §5)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..backends import NlpBackend, resolve
from ..errors import ApiError
from ..models.deployments import deployments
from ..models.inference_config import ALL_TYPES
from ..models.parsing import reject_unknown
from .deployments import queued_infer
from .request import Request
from .routing import route

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine


@route("POST", "_ml/trained_models/{model_id}/_infer", "timeout", exclusive=False)
@route("POST", "_ml/trained_models/{model_id}/deployment/_infer", "timeout", exclusive=False)
@route("POST", "_ml/inference/{model_id}/_infer", "timeout", exclusive=False)
def infer(engine: "Engine", req: Request) -> Any:
    model_id = req.path_params["model_id"]
    if req.body is None:  # RestInferTrainedModelAction
        raise ApiError("status_exception", "requires body", 400)
    body = req.object_body("infer_trained_model_request")
    reject_unknown(body, "infer_trained_model_request", {"docs", "inference_config", "input", "timeout"})
    docs = body.get("docs")
    if docs is None and "input" in body:
        raw = body["input"]
        field = deployments(engine).input_field_of(model_id)
        docs = [{field: t} for t in (raw if isinstance(raw, list) else [raw])]
    if docs is None:
        raise ApiError("action_request_validation_exception", "Validation Failed: 1: [docs] must not be null;", 400)
    if not isinstance(docs, list):
        docs = [docs]
    if not docs:
        raise ApiError("action_request_validation_exception", "Validation Failed: 1: at least one document is required;", 400)
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise ApiError(
                "x_content_parse_exception",
                f"[infer_trained_model_request] failed to parse field [docs]: docs[{i}] must be an object",
                400,
            )
    _check_config_names(body.get("inference_config"))
    backend = resolve(engine, model_id, endpoints=False)  # _infer names trained models only
    if isinstance(backend, NlpBackend):  # pytorch: queued on the deployment, answered outside the engine lock
        return queued_infer(engine, backend.deployment(req.device), docs, body.get("inference_config"), req,
                            body.get("timeout"))
    result = backend.infer_docs(docs, body.get("inference_config"), device=req.device)
    out = result.to_docs()
    for doc in out:
        if "error" in doc:
            raise ApiError("status_exception", str(doc["error"]), 400)
    return {"inference_results": out}


def _check_config_names(update: Any) -> None:
    """``inference_config`` is a named object of the request parser: an unknown name is ES's
    ``x_content_parse_exception`` caused by ``named_object_not_found_exception`` (the ingest
    processor's "unrecognized inference configuration type" is its own parser's message)."""
    if not isinstance(update, dict):
        return
    for name in update:
        if name not in ALL_TYPES:
            raise ApiError(
                "x_content_parse_exception",
                "[infer_trained_model_request] failed to parse field [inference_config]",
                400,
                caused_by=ApiError("named_object_not_found_exception", f"unknown field [{name}]", 400),
            )
