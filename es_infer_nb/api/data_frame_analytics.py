"""``_ml/data_frame/analytics``: data frame analytics job configs, stored only.

es_infer_nb runs no analytics jobs (it has no indices); it keeps the configs so that what ES
derives from them is there: ``_cat/ml/trained_models`` names the job a model was trained by
(``data_frame.id``, ``create_time``, ``source_index``, ``analysis``) when one of the model's tags
is a stored job id, as ES's cat action looks them up.
"""

from __future__ import annotations

import fnmatch
import re
import time
from typing import TYPE_CHECKING, Any

from ..errors import ApiError, not_found
from .request import Request
from .routing import route

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

ANALYSES = ("outlier_detection", "regression", "classification")
_ID = re.compile(r"^[a-z0-9](?:[a-z0-9_\-]*[a-z0-9])?$")
VERSION = "12.0.0"


def _validate(job_id: str, body: dict[str, Any]) -> None:
    if len(job_id) > 64 or not _ID.match(job_id):
        raise ApiError("status_exception", f"Invalid id: {job_id}; must contain lowercase alphanumeric (a-z and 0-9), "
                       "hyphens or underscores; must start and end with alphanumeric", 400)
    missing = [k for k in ("source", "dest", "analysis") if not isinstance(body.get(k), dict)]
    if missing:
        raise ApiError("x_content_parse_exception", f"Required [{', '.join(missing)}]", 400)
    index = body["source"].get("index")
    if not index:
        raise ApiError("x_content_parse_exception", "Required [index]", 400)
    if not body["dest"].get("index"):
        raise ApiError("x_content_parse_exception", "Required [index]", 400)
    analysis = body["analysis"]
    if len(analysis) != 1 or next(iter(analysis)) not in ANALYSES:
        raise ApiError("x_content_parse_exception",
                       f"[data_frame_analytics_config] unknown field [{next(iter(analysis), '')}]", 400)


@route("PUT", "_ml/data_frame/analytics/{id}")
def put_job(engine: "Engine", req: Request) -> Any:
    job_id = req.path_params["id"]
    body = req.object_body("data_frame_analytics_config")
    _validate(job_id, body)
    if job_id in engine.dfa_jobs:
        raise ApiError("resource_already_exists_exception",
                       f"A data frame analytics with id [{job_id}] already exists", 400)
    source = dict(body["source"])
    if isinstance(source.get("index"), str):
        source["index"] = [source["index"]]
    config = {**body, "id": job_id, "source": source, "create_time": int(time.time() * 1000),
              "version": VERSION, "allow_lazy_start": bool(body.get("allow_lazy_start", False))}
    engine.dfa_jobs.put(job_id, config)
    return config


def expand_jobs(engine: "Engine", expression: str) -> list[str]:
    ids: list[str] = []
    for part in expression.split(","):
        part = part.strip()
        if part in ("_all", "*", ""):
            ids.extend(engine.dfa_jobs)
        else:
            ids.extend(j for j in engine.dfa_jobs if fnmatch.fnmatchcase(j, part))
    return sorted(dict.fromkeys(ids))


@route("GET", "_ml/data_frame/analytics", "allow_no_match", "from", "size", "exclude_generated")
@route("GET", "_ml/data_frame/analytics/{id}", "allow_no_match", "from", "size", "exclude_generated")
def get_jobs(engine: "Engine", req: Request) -> Any:
    expression = req.path_params.get("id", "_all")
    ids = expand_jobs(engine, expression)
    concrete = "*" not in expression and expression != "_all"
    if not ids and (concrete or not req.bool_param("allow_no_match", True)):
        raise not_found(f"No known data frame analytics with id [{expression}]")
    return {"count": len(ids), "data_frame_analytics": [engine.dfa_jobs.get(j) for j in ids]}


@route("DELETE", "_ml/data_frame/analytics/{id}", "force", "timeout")
def delete_job(engine: "Engine", req: Request) -> Any:
    job_id = req.path_params["id"]
    if job_id not in engine.dfa_jobs:
        raise not_found(f"No known data frame analytics with id [{job_id}]")
    engine.dfa_jobs.delete(job_id)
    return {"acknowledged": True}


def job_for_model(engine: "Engine", config: dict[str, Any]) -> dict[str, Any] | None:
    """The stored job whose id is one of the model's tags (ES's cat action), else None."""
    for tag in config.get("tags") or []:
        if isinstance(tag, str) and tag in engine.dfa_jobs:
            return engine.dfa_jobs.get(tag)
    return None
