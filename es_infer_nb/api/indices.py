"""Indices: ``PUT`` / ``GET`` / ``DELETE /<index>``, single documents (``/<index>/_doc``) and
``_refresh``, over the engine's in-memory :class:`es_infer_nb.indices.IndexStore`."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..indices import Index, index_not_found
from .bulk import write_documents
from .request import Request
from .routing import route

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

SHARDS = {"total": 1, "successful": 1, "failed": 0}


@route("PUT", "{index}", "wait_for_active_shards")
def create_index(engine: "Engine", req: Request) -> Any:
    name = req.path_params["index"]
    engine.indices.create(name, req.body)
    return {"acknowledged": True, "shards_acknowledged": True, "index": name}


@route("DELETE", "{index}", "ignore_unavailable", "allow_no_indices", "expand_wildcards")
def delete_index(engine: "Engine", req: Request) -> Any:
    for name in _names(req.path_params["index"]):
        engine.indices.delete(name)
    return {"acknowledged": True}


@route("GET", "{index}", "ignore_unavailable", "allow_no_indices", "expand_wildcards", "include_defaults")
def get_index(engine: "Engine", req: Request) -> Any:
    out: dict[str, Any] = {}
    for name in _names(req.path_params["index"]):
        index = engine.indices.get(name)
        out[name] = {"aliases": {}, "mappings": index.mapping_body(),
                     "settings": {"index": {"number_of_shards": "1", "number_of_replicas": "1", "uuid": index.uuid,
                                            "provided_name": name}}}
    return out


def _names(raw: str) -> list[str]:
    return [n for n in raw.split(",") if n]


@route("POST", "{index}/_refresh")
@route("GET", "{index}/_refresh")
def refresh(engine: "Engine", req: Request) -> Any:
    for name in _names(req.path_params["index"]):
        engine.indices.get(name)
    return {"_shards": {"total": 2, "successful": 1, "failed": 0}}


@route("POST", "{index}/_doc", "refresh", "pipeline", exclusive=False)
@route("PUT", "{index}/_doc/{id}", "refresh", "pipeline", "op_type", exclusive=False)
@route("POST", "{index}/_doc/{id}", "refresh", "pipeline", "op_type", exclusive=False)
@route("PUT", "{index}/_create/{id}", "refresh", "pipeline", exclusive=False)
@route("POST", "{index}/_create/{id}", "refresh", "pipeline", exclusive=False)
def index_document(engine: "Engine", req: Request) -> Any:
    source = req.object_body("index request")
    create = "/_create/" in req.path or req.str_param("op_type") == "create"
    action = {"create" if create else "index": {"_index": req.path_params["index"],
                                                 **({"_id": req.path_params["id"]} if "id" in req.path_params else {})}}
    (item,) = write_documents(engine, [(action, source)], None, req.str_param("pipeline"),
                              req.has("refresh") and req.str_param("refresh") != "false", device=req.device)
    answer = next(iter(item.values()))
    if "error" in answer:
        err = answer["error"]
        raise ApiError(err["type"], err["reason"], answer["status"],
                       metadata={k: v for k, v in err.items() if k not in ("type", "reason", "root_cause")})
    status = answer.pop("status")
    return status, answer


@route("GET", "{index}/_doc/{id}")
def get_document(engine: "Engine", req: Request) -> Any:
    index: Index = engine.indices.get(req.path_params["index"]) if req.path_params["index"] in engine.indices \
        else _missing(req.path_params["index"])
    doc_id = req.path_params["id"]
    if doc_id not in index.docs:
        return 404, {"_index": index.name, "_id": doc_id, "found": False}
    return {"_index": index.name, "_id": doc_id, "_version": index.versions[doc_id], "_seq_no": 0,
            "_primary_term": 1, "found": True, "_source": index.docs[doc_id]}


def _missing(name: str) -> Index:
    raise index_not_found(name)


_HEALTH_PARAMS = ("wait_for_status", "wait_for_nodes", "wait_for_events", "wait_for_no_relocating_shards",
                  "wait_for_no_initializing_shards", "wait_for_active_shards", "level", "local", "expand_wildcards")


@route("GET", "_cluster/health", *_HEALTH_PARAMS)
@route("GET", "_cluster/health/{index}", *_HEALTH_PARAMS)
def cluster_health(engine: "Engine", req: Request) -> Any:
    """One node holding every in-memory index's one shard: always ``green``, so a ``wait_for_status``
    is met at once (``wait_for_status`` must still be one of ES's three colours)."""
    wanted = req.str_param("wait_for_status")
    if wanted is not None and wanted not in ("green", "yellow", "red"):
        raise ApiError("illegal_argument_exception", f"unknown cluster health status [{wanted}]", 400)
    names = engine.indices.names()
    if "index" in req.path_params:
        patterns = _names(req.path_params["index"])
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    shards = len(names)
    return {"cluster_name": "es_infer_nb", "status": "green", "timed_out": False, "number_of_nodes": 1,
            "number_of_data_nodes": 1, "active_primary_shards": shards, "active_shards": shards,
            "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0,
            "unassigned_primary_shards": 0, "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0}
