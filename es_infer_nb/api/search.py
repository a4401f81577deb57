"""``_search`` over the in-memory indices: ``query`` ``match_all`` or ``term``, ``size`` / ``from``, the
aggregations of :mod:`.aggregations` (the ``inference`` pipeline aggregation among them), and a
``rescore`` whose models are checked (a ``learning_to_rank`` rescorer names a stored model)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..indices import Index
from .aggregations import Context, compute, parse_aggs
from .request import Request
from .routing import route

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

_BODY_KEYS = frozenset({"query", "size", "from", "aggs", "aggregations", "track_total_hits", "_source", "rescore"})
#: ``index.max_result_window``'s default
MAX_RESULT_WINDOW = 10_000
_PARAMS = ("size", "from", "ignore_unavailable", "allow_no_indices", "expand_wildcards", "track_total_hits",
           "rest_total_hits_as_int", "typed_keys")


@route("POST", "{index}/_search", *_PARAMS, exclusive=False)
@route("GET", "{index}/_search", *_PARAMS, exclusive=False)
@route("POST", "_search", *_PARAMS, exclusive=False)
@route("GET", "_search", *_PARAMS, exclusive=False)
def search(engine: "Engine", req: Request) -> Any:
    started = time.perf_counter()
    body = req.body if req.body is not None else {}
    if not isinstance(body, dict):
        raise ApiError("parsing_exception", "Expected [START_OBJECT] but found [VALUE]", 400)
    unknown = sorted(set(body) - _BODY_KEYS)
    if unknown:
        raise ApiError("parsing_exception", f"Unknown key for a START_OBJECT in [{unknown[0]}] (es_infer_nb's _search "
                       f"takes {', '.join(sorted(_BODY_KEYS))})", 400)
    term = _check_query(body.get("query"))
    size = req.int_param("size", body.get("size", 10)) if req.has("size") else body.get("size", 10)
    start = req.int_param("from", 0) if req.has("from") else body.get("from", 0)
    for name, value in (("size", size), ("from", start)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ApiError("illegal_argument_exception", f"[{name}] parameter cannot be negative, found [{value}]", 400)
    if start + size > MAX_RESULT_WINDOW:
        raise ApiError("illegal_argument_exception", "Result window is too large, from + size must be less than or "
                       f"equal to: [{MAX_RESULT_WINDOW}] but was [{start + size}]. See the scroll api for a more "
                       "efficient way to request large data sets. This limit can be set by changing the "
                       "[index.max_result_window] index level setting.", 400)
    raw_aggs = body.get("aggs", body.get("aggregations"))
    specs = parse_aggs(raw_aggs) if raw_aggs is not None else []
    with engine.lock:
        indices = _indices(engine, req.path_params.get("index"))
        docs = [(index, doc_id, source) for index in indices for doc_id, source in index.docs.items()
                if term is None or _term_matches(source, *term)]
        _check_rescore(engine, body.get("rescore"), hits_in_window=len(docs[start:start + size]))
    hits = [{"_index": index.name, "_id": doc_id, "_score": 1.0, "_source": source}
            for index, doc_id, source in docs[start:start + size]]
    out: dict[str, Any] = {"took": 0, "timed_out": False,
                           "_shards": {"total": len(indices), "successful": len(indices), "skipped": 0, "failed": 0},
                           "hits": {"total": {"value": len(docs), "relation": "eq"},
                                    "max_score": 1.0 if hits else None, "hits": hits}}
    if specs:
        if len(indices) != 1:
            raise ApiError("illegal_argument_exception", "es_infer_nb aggregates over one index at a time", 400)
        sources = [source for _, _, source in docs]
        out["aggregations"] = compute(Context(engine, indices[0], req.device), specs, sources)
    out["took"] = int((time.perf_counter() - started) * 1000)
    return out


def _check_query(query: Any) -> tuple[str, Any] | None:
    """The query's ``term`` (field, value), or None for ``match_all`` / no query."""
    if query is None:
        return None
    if not isinstance(query, dict) or len(query) != 1:
        raise ApiError("parsing_exception", "[query] malformed query, expected one query object", 400)
    ((kind, args),) = query.items()
    if kind == "term":
        return _term(args)
    if kind != "match_all":
        raise ApiError("parsing_exception", f"unknown query [{kind}]: es_infer_nb's _search runs only [match_all] "
                       "and [term]", 400)
    if not isinstance(args, dict) or set(args) - {"boost"}:
        raise ApiError("parsing_exception", "[match_all] query malformed, only [boost] is allowed", 400)
    return None


def _term(args: Any) -> tuple[str, Any]:
    """``{"term": {<field>: <value>}}`` or ``{<field>: {"value": <value>, "boost": ...}}``."""
    if not isinstance(args, dict) or not args:
        raise ApiError("parsing_exception", "[term] query malformed, no start_object after query name", 400)
    if len(args) != 1:
        raise ApiError("parsing_exception", f"[term] query doesn't support multiple fields, found [{', '.join(args)}]",
                       400)
    ((name, value),) = args.items()
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"value", "boost", "case_insensitive", "_name"})
        if unknown:
            raise ApiError("parsing_exception", f"[term] query does not support [{unknown[0]}]", 400)
        value = value.get("value")
    return name, value


def _term_matches(source: dict[str, Any], name: str, value: Any) -> bool:
    """The document's value at the dotted path ``name`` (or one of its values) equals ``value``."""
    node: Any = source
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    values = node if isinstance(node, list) else [node]
    return any(v == value or (isinstance(v, (int, float)) and not isinstance(v, bool) and str(v) == str(value))
               for v in values)


def _check_rescore(engine: "Engine", rescore: Any, hits_in_window: int) -> None:
    """ES loads a ``learning_to_rank`` rescorer's model when it rewrites the request (a missing model is a
    404 whatever the hits); es_infer_nb runs no rescorer, so hits to rescore are refused."""
    if rescore is None:
        return
    for rescorer in rescore if isinstance(rescore, list) else [rescore]:
        if not isinstance(rescorer, dict):
            raise ApiError("parsing_exception", "Unexpected token in [rescore]: expected an object", 400)
        ltr = rescorer.get("learning_to_rank")
        if isinstance(ltr, dict):  # the caller holds the state lock
            engine.models.require(str(ltr.get("model_id")))
        if hits_in_window:
            kind = next((k for k in rescorer if k != "window_size"), "rescore")
            raise ApiError("illegal_argument_exception", f"es_infer_nb's _search does not run the [{kind}] rescorer",
                           400)


def _indices(engine: "Engine", raw: str | None) -> list[Index]:
    if raw is None or raw in ("_all", "*"):
        return [engine.indices.get(name) for name in engine.indices.names()]
    return [engine.indices.get(name) for name in raw.split(",") if name]
