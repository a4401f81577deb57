"""``_infer``: ``POST _ml/trained_models/<id>/_infer`` and the 7.x ``_ml/inference/<id>/_infer`` (spec §5)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..models.inference_config import ALL_TYPES
from ..models.parsing import reject_unknown
from ..models.deployments import deployments
from ..models.nlp_backend import input_field
from ..models.runner import infer_docs
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
    body = req.object_body("infer_trained_model_request")
    reject_unknown(body, "infer_trained_model_request", {"docs", "inference_config", "input"})
    docs = body.get("docs")
    if docs is None and "input" in body:
        raw = body["input"]
        field = _input_field(engine, model_id)
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
    dep = deployments(engine).for_inference(model_id)
    if dep is not None:  # pytorch: queued on the deployment, answered outside the engine lock
        return queued_infer(engine, dep, docs, body.get("inference_config"), req)
    result = infer_docs(engine, model_id, docs, body.get("inference_config"))
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


def _input_field(engine: "Engine", id_or_deployment: str) -> str:
    """The field ``input`` texts stand for: the model's first input field (``text_field`` by default)."""
    model_id = deployments(engine).model_id_of(id_or_deployment)
    return input_field(engine.models.config(model_id)) if model_id is not None else "text_field"
