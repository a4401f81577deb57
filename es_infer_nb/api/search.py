"""``_search`` over the in-memory indices: ``query`` ``match_all``, ``term``, ``exists`` or a ``bool`` of
them, ``size`` / ``from``, the aggregations of :mod:`.aggregations` (the ``inference`` pipeline
aggregation among them), and a ``rescore`` whose models are checked (a ``learning_to_rank`` rescorer
names a stored model)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ApiError
from ..indices import Index
from .aggregations import Context, compute, field_values, parse_aggs
from .request import Request
from .routing import route

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

#: a parsed query: does this document of this index match?
Query = Callable[[Index, dict[str, Any]], bool]
_BOOL_CLAUSES = ("must", "filter", "should", "must_not")
_BODY_KEYS = frozenset({"query", "size", "from", "aggs", "aggregations", "track_total_hits", "_source", "rescore"})
#: ``index.max_result_window``'s default
MAX_RESULT_WINDOW = 10_000
_PARAMS = (
    "size",
    "from",
    "ignore_unavailable",
    "allow_no_indices",
    "expand_wildcards",
    "track_total_hits",
    "rest_total_hits_as_int",
    "typed_keys",
)


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
        raise ApiError(
            "parsing_exception",
            f"Unknown key for a START_OBJECT in [{unknown[0]}] (es_infer_nb's _search "
            f"takes {', '.join(sorted(_BODY_KEYS))})",
            400,
        )
    query = _check_query(body.get("query"))
    size = req.int_param("size", body.get("size", 10)) if req.has("size") else body.get("size", 10)
    start = req.int_param("from", 0) if req.has("from") else body.get("from", 0)
    for name, value in (("size", size), ("from", start)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ApiError("illegal_argument_exception", f"[{name}] parameter cannot be negative, found [{value}]", 400)
    if start + size > MAX_RESULT_WINDOW:
        raise ApiError(
            "illegal_argument_exception",
            "Result window is too large, from + size must be less than or "
            f"equal to: [{MAX_RESULT_WINDOW}] but was [{start + size}]. See the scroll api for a more "
            "efficient way to request large data sets. This limit can be set by changing the "
            "[index.max_result_window] index level setting.",
            400,
        )
    raw_aggs = body.get("aggs", body.get("aggregations"))
    specs = parse_aggs(raw_aggs) if raw_aggs is not None else []
    with engine.lock:
        indices = _indices(engine, req.path_params.get("index"))
        docs = [
            (index, doc_id, source)
            for index in indices
            for doc_id, source in index.docs.items()
            if query(index, source)
        ]
        _check_rescore(engine, body.get("rescore"), hits_in_window=len(docs[start : start + size]))
    hits = [
        {"_index": index.name, "_id": doc_id, "_score": 1.0, "_source": source}
        for index, doc_id, source in docs[start : start + size]
    ]
    out: dict[str, Any] = {
        "took": 0,
        "timed_out": False,
        "_shards": {"total": len(indices), "successful": len(indices), "skipped": 0, "failed": 0},
        "hits": {"total": {"value": len(docs), "relation": "eq"}, "max_score": 1.0 if hits else None, "hits": hits},
    }
    if specs:
        if len(indices) != 1:
            raise ApiError("illegal_argument_exception", "es_infer_nb aggregates over one index at a time", 400)
        sources = [source for _, _, source in docs]
        out["aggregations"] = compute(Context(engine, indices[0], req.device), specs, sources)
    out["took"] = int((time.perf_counter() - started) * 1000)
    return out


def _check_query(query: Any) -> Query:
    """The search's query as a predicate (every document without one)."""
    if query is None:
        return _match_all({})
    if not isinstance(query, dict) or len(query) != 1:
        raise ApiError("parsing_exception", "[query] malformed query, expected one query object", 400)
    ((kind, args),) = query.items()
    parser = _QUERIES.get(kind)
    if parser is None:
        raise ApiError(
            "parsing_exception",
            f"unknown query [{kind}]: es_infer_nb's _search runs only [{'], ['.join(_QUERIES)}]",
            400,
        )
    return parser(args)


def _match_all(args: Any) -> Query:
    if not isinstance(args, dict) or set(args) - {"boost"}:
        raise ApiError("parsing_exception", "[match_all] query malformed, only [boost] is allowed", 400)
    return lambda index, source: True


def _term(args: Any) -> Query:
    """``{"term": {<field>: <value>}}`` or ``{<field>: {"value": <value>, "boost": ...}}``."""
    if not isinstance(args, dict) or not args:
        raise ApiError("parsing_exception", "[term] query malformed, no start_object after query name", 400)
    if len(args) != 1:
        raise ApiError(
            "parsing_exception", f"[term] query doesn't support multiple fields, found [{', '.join(args)}]", 400
        )
    ((name, value),) = args.items()
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"value", "boost", "case_insensitive", "_name"})
        if unknown:
            raise ApiError("parsing_exception", f"[term] query does not support [{unknown[0]}]", 400)
        value = value.get("value")
    return lambda index, source: _term_matches(_values(index, source, name), value)


def _exists(args: Any) -> Query:
    """``{"exists": {"field": <field>}}``: the document has a non-null value there."""
    if not isinstance(args, dict):
        raise ApiError("parsing_exception", "[exists] query malformed, no start_object after query name", 400)
    unknown = sorted(set(args) - {"field", "boost", "_name"})
    if unknown:
        raise ApiError("parsing_exception", f"[exists] query does not support [{unknown[0]}]", 400)
    name = args.get("field")
    if not isinstance(name, str) or not name:
        raise ApiError("parsing_exception", "[exists] must be provided with a [field]", 400)
    return lambda index, source: bool(_values(index, source, name))


def _bool(args: Any) -> Query:
    """``must`` and ``filter`` all match, no ``must_not`` does, and ``minimum_should_match`` of ``should``
    (1 when the query has only ``should`` clauses, else 0)."""
    if not isinstance(args, dict):
        raise ApiError("parsing_exception", "[bool] query malformed, no start_object after query name", 400)
    unknown = sorted(set(args) - {*_BOOL_CLAUSES, "minimum_should_match", "boost", "_name"})
    if unknown:
        raise ApiError("parsing_exception", f"[bool] query does not support [{unknown[0]}]", 400)
    clauses = {
        name: [_check_query(q) for q in (raw if isinstance(raw, list) else [raw])]
        for name in _BOOL_CLAUSES
        if (raw := args.get(name)) is not None
    }
    required = clauses.get("must", []) + clauses.get("filter", [])
    should, must_not = clauses.get("should", []), clauses.get("must_not", [])
    minimum = args.get("minimum_should_match", 0 if required else min(len(should), 1))
    if isinstance(minimum, bool) or not isinstance(minimum, int):
        raise ApiError("parsing_exception", "es_infer_nb's [bool] query takes an integer [minimum_should_match]", 400)

    def matches(index: Index, source: dict[str, Any]) -> bool:
        return (
            all(q(index, source) for q in required)
            and not any(q(index, source) for q in must_not)
            and sum(q(index, source) for q in should) >= minimum
        )

    return matches


_QUERIES: dict[str, Callable[[Any], Query]] = {"match_all": _match_all, "term": _term, "exists": _exists, "bool": _bool}


def _values(index: Index, source: dict[str, Any], name: str) -> list[Any]:
    """The document's values of a field; ``<field>.keyword`` of an unmapped field is the ``keyword``
    sub-field dynamic mapping gives a string (its values up to ``ignore_above`` 256 characters)."""
    values = field_values(source, name)
    base = name.removesuffix(".keyword")
    if values or base == name or base in index.mappings or name in index.mappings:
        return values
    return [v for v in field_values(source, base) if isinstance(v, str) and len(v) <= 256]


def _term_matches(values: list[Any], value: Any) -> bool:
    """One of the document's values of the field equals ``value``."""
    return any(
        v == value or (isinstance(v, (int, float)) and not isinstance(v, bool) and str(v) == str(value)) for v in values
    )


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
            raise ApiError(
                "illegal_argument_exception", f"es_infer_nb's _search does not run the [{kind}] rescorer", 400
            )


def _indices(engine: "Engine", raw: str | None) -> list[Index]:
    if raw is None or raw in ("_all", "*"):
        return [engine.indices.get(name) for name in engine.indices.names()]
    return [engine.indices.get(name) for name in raw.split(",") if name]
