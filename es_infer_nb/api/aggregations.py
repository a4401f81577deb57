"""Search aggregations over an index's documents in memory: ``terms``, ``date_histogram``, the metrics
``avg`` / ``sum`` / ``min`` / ``max`` / ``value_count``, and the ``inference`` pipeline aggregation
(ES's ``InferencePipelineAggregationBuilder`` / ``InferencePipelineAggregator``), whose model call goes
through :func:`es_infer_nb.backends.resolve` like every other one.

A computed aggregation is a plain dict in ES's response shape; buckets keep their key, their
documents' count and their sub-aggregations' answers, which ``buckets_path`` resolves against.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..backends import resolve
from ..errors import ApiError
from ..indices import NUMERIC_TYPES, Index
from ..models.inference_config import NLP_TYPES, TREE_TYPES, parse_config
from ..models.parsing import json_token

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

METRICS = ("avg", "sum", "min", "max", "value_count")
BUCKETS = ("terms", "date_histogram")
PIPELINES = ("inference",)
SUPPORTED = (*BUCKETS, *METRICS, *PIPELINES)
#: the only ``results_field`` an inference aggregation writes (``AGGREGATIONS_RESULTS_FIELD``)
RESULTS_FIELD = "value"
_TOP_CLASSES = "top_classes"
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_CALENDAR_MS = {
    "minute": 60_000,
    "1m": 60_000,
    "hour": 3_600_000,
    "1h": 3_600_000,
    "day": 86_400_000,
    "1d": 86_400_000,
    "week": 604_800_000,
    "1w": 604_800_000,
}


def bad_request(reason: str) -> ApiError:
    return ApiError("illegal_argument_exception", reason, 400)


@dataclass
class AggSpec:
    name: str
    kind: str
    args: dict[str, Any]
    subs: list["AggSpec"] = field(default_factory=list)


def parse_aggs(raw: Any, *, top: bool = True) -> list[AggSpec]:
    """The ``aggs`` object of a search body (or of an aggregation) -> specs, validated as ES does."""
    if not isinstance(raw, dict):
        raise ApiError("parsing_exception", "Expected [START_OBJECT] under [aggs], but got a different token", 400)
    specs: list[AggSpec] = []
    errors: list[str] = []
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise ApiError(
                "parsing_exception", f"Expected [START_OBJECT] under [{name}], but got a different token", 400
            )
        subs_raw = body.get("aggs", body.get("aggregations"))
        kinds = [k for k in body if k not in ("aggs", "aggregations", "meta")]
        if len(kinds) != 1:
            raise ApiError("parsing_exception", f"Expected one aggregation type under [{name}], found {kinds}", 400)
        kind = kinds[0]
        if kind not in SUPPORTED:
            raise ApiError(
                "parsing_exception",
                f"Unknown aggregation type [{kind}] did you mean one of "
                f"[{', '.join(SUPPORTED)}]? (es_infer_nb runs only these)",
                400,
            )
        args = body[kind]
        if not isinstance(args, dict):
            raise ApiError("parsing_exception", f"[{kind}] aggregation [{name}] expects an object", 400)
        spec = AggSpec(str(name), kind, args)
        if subs_raw is not None:
            if kind in METRICS or kind in PIPELINES:
                raise ApiError(
                    "aggregation_initialization_exception",
                    f"Aggregator [{name}] of type [{kind}] cannot accept sub-aggregations",
                    400,
                )
            spec.subs = parse_aggs(subs_raw, top=False)
        if kind == "inference":
            errors.extend(_validate_inference(spec, top))
        specs.append(spec)
    if errors:
        reason = "Validation Failed: " + "".join(f"{i}: {e};" for i, e in enumerate(errors, 1))
        raise ApiError("action_request_validation_exception", reason, 400)
    return specs


def _validate_inference(spec: AggSpec, top: bool) -> list[str]:
    """``InferencePipelineAggregationBuilder``'s parser and ``validate()``."""
    args = spec.args
    for key in args:
        if key not in ("model_id", "buckets_path", "inference_config"):
            raise ApiError("x_content_parse_exception", f"[inference] unknown field [{key}]", 400)
    for key, token_ok in (
        ("buckets_path", isinstance(args.get("buckets_path"), dict)),
        ("model_id", isinstance(args.get("model_id"), str)),
    ):
        if key in args and not token_ok:  # ``ObjectParser``: the field's value is of a type it does not take
            raise ApiError(
                "x_content_parse_exception",
                f"[inference] {key} doesn't support values of type: {json_token(args[key])}",
                400,
            )
    if "buckets_path" not in args:  # the ``ConstructingObjectParser``'s constructor argument
        raise bad_request("Required [buckets_path]")
    paths = args["buckets_path"]
    if not all(isinstance(v, str) for v in paths.values()):
        raise ApiError(
            "x_content_parse_exception",
            "[inference] failed to parse field [buckets_path]: buckets_path must be an object of strings",
            400,
        )
    errors: list[str] = []
    if top:
        errors.append(f"inference aggregation [{spec.name}] must be declared inside of another aggregation")
    if args.get("model_id") is None:
        errors.append("[model_id] must be set")
    config = args.get("inference_config")
    if config is not None:
        if not isinstance(config, dict) or len(config) != 1:
            raise ApiError("x_content_parse_exception", "[inference] failed to parse field [inference_config]", 400)
        ((type_name, options),) = config.items()
        if type_name not in (*TREE_TYPES, *NLP_TYPES):  # the named ``InferenceConfigUpdate`` parsers
            raise _config_error(ApiError("named_object_not_found_exception", f"unknown field [{type_name}]", 400))
        _parse_update(type_name, options)
        options = options if isinstance(options, dict) else {}
        results_field = options.get("results_field")
        if results_field and results_field != RESULTS_FIELD:
            errors.append(
                f"setting option [results_field] to [{results_field}] is not valid for inference aggregations"
            )
        top_classes = options.get("top_classes_results_field")
        if type_name == "classification" and top_classes and top_classes != _TOP_CLASSES:
            errors.append(f"setting option [{_TOP_CLASSES}] to [{top_classes}] is not valid for inference aggregations")
    return errors


def _config_error(cause: ApiError) -> ApiError:
    return ApiError(
        "x_content_parse_exception", "[inference] failed to parse field [inference_config]", 400, caused_by=cause
    )


def _parse_update(type_name: str, options: Any) -> None:
    """The named update's parser (``RegressionConfigUpdate.fromXContentStrict`` ...): a bad option fails
    the search when it is parsed (the results fields are left to ``validate()``). An NLP update parses
    too; a tree model then refuses it in every bucket (``LocalModel.infer``'s warning)."""
    if isinstance(options, dict):
        options = {k: v for k, v in options.items() if k not in ("results_field", "top_classes_results_field")}
    try:
        parse_config({type_name: options})
    except ApiError as exc:
        raise _config_error(exc) from exc


# -- reading documents ---------------------------------------------------------------------------
def field_values(source: dict[str, Any], path: str) -> list[Any]:
    """Every value at a dotted path (lists flattened), as doc values see them."""
    nodes: list[Any] = [source]
    for part in path.split("."):
        nxt: list[Any] = []
        for node in nodes:
            for item in node if isinstance(node, list) else [node]:
                if isinstance(item, dict) and part in item:
                    nxt.append(item[part])
        nodes = nxt
    out: list[Any] = []
    for node in nodes:
        out.extend(v for v in (node if isinstance(node, list) else [node]) if v is not None)
    return out


def _field(index: Index, name: Any, agg: str) -> tuple[str, str | None]:
    if not isinstance(name, str) or not name:
        raise bad_request(f"Required one of fields [field, script], but none were specified. (aggregation [{agg}])")
    kind = index.mappings.get(name)
    if kind is None and name.endswith(".keyword") and name[: -len(".keyword")] not in index.mappings:
        name = name[: -len(".keyword")]  # the dynamic ``.keyword`` sub-field of an unmapped string
    if kind == "text":
        raise bad_request(
            f"Text fields are not optimised for operations that require per-document field data like "
            f"aggregations and sorting, so these operations are disabled by default. Please use a "
            f"keyword field instead. Alternatively, set fielddata=true on [{name}] in order to load "
            "field data by uninverting the inverted index. Note that this can use significant memory."
        )
    return name, kind


def _number(value: Any, kind: str | None) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if kind == "date":
            return _date_ms(value)
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _date_ms(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(int(value))
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp() * 1000.0
    return None


def _date_string(ms: float) -> str:
    when = datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


# -- computing -----------------------------------------------------------------------------------
@dataclass
class Context:
    engine: "Engine"
    index: Index
    device: str | None = None
    #: ``id()`` of the inference results written into buckets (``InternalInferenceAggregation``s)
    inference_results: set[int] = field(default_factory=set)


def compute(ctx: Context, specs: list[AggSpec], docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``aggregations`` object for ``docs``: bucket and metric aggregations first, then the
    pipeline aggregations of each multi-bucket aggregation over its buckets."""
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.kind in METRICS:
            out[spec.name] = _metric(ctx, spec, docs)
        elif spec.kind == "terms":
            out[spec.name] = _terms(ctx, spec, docs)
        elif spec.kind == "date_histogram":
            out[spec.name] = _date_histogram(ctx, spec, docs)
    return out


def _sub_results(ctx: Context, spec: AggSpec, bucket_docs: list[dict[str, Any]]) -> dict[str, Any]:
    return compute(ctx, spec.subs, bucket_docs)


def _metric(ctx: Context, spec: AggSpec, docs: list[dict[str, Any]]) -> dict[str, Any]:
    name, kind = _field(ctx.index, spec.args.get("field"), spec.name)
    values = [v for d in docs for v in field_values(d, name)]
    if spec.kind == "value_count":
        return {"value": len(values)}
    numbers = [n for n in (_number(v, kind) for v in values) if n is not None]
    if kind is not None and kind not in NUMERIC_TYPES and kind != "boolean":
        raise bad_request(f"Field [{name}] of type [{kind}] is not supported for aggregation [{spec.kind}]")
    result: float | None
    if spec.kind == "sum":
        result = float(math.fsum(numbers))
    elif not numbers:
        result = None
    elif spec.kind == "avg":
        result = math.fsum(numbers) / len(numbers)
    else:
        result = min(numbers) if spec.kind == "min" else max(numbers)
    out: dict[str, Any] = {"value": result}
    if kind == "date" and result is not None and spec.kind in ("min", "max"):
        out["value_as_string"] = _date_string(result)
    return out


def _size(spec: AggSpec, default: int) -> int:
    size = spec.args.get("size", default)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise bad_request(f"[size] must be greater than 0. Found [{size}] in [{spec.name}]")
    return size


def _terms(ctx: Context, spec: AggSpec, docs: list[dict[str, Any]]) -> dict[str, Any]:
    unknown = sorted(set(spec.args) - {"field", "size", "min_doc_count"})
    if unknown:
        raise bad_request(f"[terms] unknown field [{unknown[0]}] (es_infer_nb supports field, size, min_doc_count)")
    name, kind = _field(ctx.index, spec.args.get("field"), spec.name)
    size = _size(spec, 10)
    groups: dict[Any, list[dict[str, Any]]] = {}
    for doc in docs:
        keys = dict.fromkeys(_term_key(v, kind) for v in field_values(doc, name))
        for key in keys:
            if key is not None:
                groups.setdefault(key, []).append(doc)
    min_count = spec.args.get("min_doc_count", 1)
    ordered = sorted(
        ((k, g) for k, g in groups.items() if len(g) >= min_count), key=lambda kg: (-len(kg[1]), _sort_key(kg[0]))
    )
    kept = ordered[:size]
    buckets = []
    for key, group in kept:
        bucket: dict[str, Any] = {"key": key}
        if kind == "date":
            bucket["key_as_string"] = _date_string(key)
        elif kind == "boolean" or isinstance(key, bool):
            bucket["key"] = 1 if key else 0
            bucket["key_as_string"] = "true" if key else "false"
        bucket["doc_count"] = len(group)
        bucket.update(_sub_results(ctx, spec, group))
        buckets.append(bucket)
    _run_pipelines(ctx, spec, buckets)
    return {
        "doc_count_error_upper_bound": 0,
        "sum_other_doc_count": sum(len(g) for _, g in ordered[size:]),
        "buckets": buckets,
    }


def _term_key(value: Any, kind: str | None) -> Any:
    if isinstance(value, (dict, list)):
        return None
    if kind in ("integer", "long", "short", "byte", "date"):
        number = _number(value, kind)
        return None if number is None else int(number)
    if kind in ("double", "float", "half_float"):
        return _number(value, kind)
    if kind == "boolean":
        return value in (True, "true")
    if kind == "keyword" or isinstance(value, str):
        return str(value)
    return value


def _sort_key(key: Any) -> tuple[int, Any]:
    return (0, float(key)) if isinstance(key, (int, float)) else (1, str(key))


def _interval_ms(spec: AggSpec) -> int:
    fixed = spec.args.get("fixed_interval")
    calendar = spec.args.get("calendar_interval")
    if fixed is not None and calendar is not None:
        raise bad_request("Cannot use [fixed_interval] with [calendar_interval] configuration option.")
    if isinstance(fixed, str):
        match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", fixed.strip())
        if match is None or int(match.group(1)) == 0:
            raise bad_request(
                f"failed to parse setting [date_histogram.fixedInterval] with value [{fixed}] as a time "
                "value: unit is missing or unrecognized"
            )
        return int(match.group(1)) * _UNITS_MS[match.group(2)]
    if isinstance(calendar, str) and calendar in _CALENDAR_MS:
        return _CALENDAR_MS[calendar]
    if calendar is not None:
        raise bad_request(
            f"The supplied interval [{calendar}] could not be parsed as a calendar interval "
            "(es_infer_nb supports minute, hour, day and week)"
        )
    raise bad_request("Required one of fields [fixed_interval, calendar_interval], but none were specified.")


def _date_histogram(ctx: Context, spec: AggSpec, docs: list[dict[str, Any]]) -> dict[str, Any]:
    unknown = sorted(set(spec.args) - {"field", "fixed_interval", "calendar_interval", "min_doc_count"})
    if unknown:
        raise bad_request(f"[date_histogram] unknown field [{unknown[0]}]")
    name, kind = _field(ctx.index, spec.args.get("field"), spec.name)
    interval = _interval_ms(spec)
    groups: dict[int, list[dict[str, Any]]] = {}
    for doc in docs:
        keys = {
            int(ms // interval) * interval for ms in (_date_ms(v) for v in field_values(doc, name)) if ms is not None
        }
        for key in keys:
            groups.setdefault(key, []).append(doc)
    min_count = spec.args.get("min_doc_count", 0)
    keys = list(range(min(groups), max(groups) + 1, interval)) if groups else []
    buckets = []
    for key in keys:
        group = groups.get(key, [])
        if len(group) < min_count:
            continue
        bucket = {"key_as_string": _date_string(key), "key": key, "doc_count": len(group)}
        bucket.update(_sub_results(ctx, spec, group))
        buckets.append(bucket)
    _run_pipelines(ctx, spec, buckets)
    return {"buckets": buckets}


# -- the inference pipeline aggregation -------------------------------------------------------------
def _run_pipelines(ctx: Context, spec: AggSpec, buckets: list[dict[str, Any]]) -> None:
    for sub in spec.subs:
        if sub.kind == "inference":
            _inference(ctx, spec.name, sub, buckets)


def _parse_path(path: str) -> list[str]:
    """``AggregationPath.parse(path).getPathElementsAsStringList()``: ``a>b['key']>c.value`` ->
    ``[a, b, 'key', c, value]``. Elements are trimmed and empty ones dropped; a key keeps its quotes as
    written (only a quoted key names a bucket); the last element's metric follows its last dot."""
    elements = [e.strip() for e in path.split(">") if e.strip()]
    if not elements:
        raise ApiError("illegal_argument_exception", f"Invalid path [{path}]", 400)
    out: list[str] = []
    for i, element in enumerate(elements):
        out.extend(_path_element(element, path, last=i == len(elements) - 1))
    return out


def _path_element(element: str, path: str, *, last: bool) -> list[str]:
    """One ``PathElement``'s name, then its key and its metric where it has them."""
    key_at, end = element.rfind("["), element.rfind("]")
    metric_at = element.rfind(".") if last else -1
    if key_at >= 0:
        closed = end == len(element) - 1 or (last and metric_at >= 0)
        if key_at == 0 or key_at > len(element) - 3 or end < key_at or not closed:
            raise _invalid_element(element, path)
        metric = [element[metric_at + 1 :]] if metric_at > end else []
        return [element[:key_at], element[key_at + 1 : end], *metric]
    if metric_at < 0:
        return [element]
    if metric_at == 0 or metric_at > len(element) - 2:
        raise _invalid_element(element, path)
    return [element[:metric_at], element[metric_at + 1 :]]


def _invalid_element(element: str, path: str) -> ApiError:
    return ApiError("aggregation_execution_exception", f"Invalid path element [{element}] in path [{path}]", 400)


def _bucket_key_string(bucket: dict[str, Any]) -> str:
    key = bucket.get("key_as_string", bucket.get("key"))
    return str(key)


class _TermsBucket:
    """A terms bucket a path names by key (``good['TV']``): the inference reads its key as a string."""

    def __init__(self, bucket: dict[str, Any]) -> None:
        self.key = _bucket_key_string(bucket)


def _property(ctx: Context, agg_name: str, bucket: dict[str, Any], path: list[str]) -> Any:
    """``InternalBucket.getProperty``: ``_count``, ``_key``, a sub-aggregation and then its own path."""
    if not path:
        return _TermsBucket(bucket)
    head, rest = path[0], path[1:]
    if head in ("_count", "_key"):
        if rest:
            raise ApiError("invalid_aggregation_path_exception", f"{head} must be the last element in the path", 400)
        return bucket["doc_count"] if head == "_count" else bucket.get("key")
    sub = bucket.get(head)
    if not isinstance(sub, dict) or head in ("key", "key_as_string", "doc_count"):
        raise ApiError(
            "invalid_aggregation_path_exception", f"Cannot find an aggregation named [{head}] in [{agg_name}]", 400
        )
    if "buckets" in sub:  # a multi-bucket aggregation: a key picks one bucket, else every bucket's property
        if not rest:
            return sub
        if rest[0] == "_bucket_count":
            return len(sub["buckets"])
        if rest[0].startswith("'") and rest[0].endswith("'"):
            wanted = rest[0][1:-1]
            for inner in sub["buckets"]:
                if _bucket_key_string(inner) == wanted:
                    return _property(ctx, head, inner, rest[1:])
            raise ApiError("invalid_aggregation_path_exception", f"Cannot find an key [{rest[0]}] in [{head}]", 400)
        return [_property(ctx, head, inner, rest) for inner in sub["buckets"]]
    if id(sub) in ctx.inference_results:  # ``InternalInferenceAggregation.getProperty``: only ``value``
        if not rest:
            return sub
        if rest == ["value"]:
            return sub.get("value")  # a warning has none
        raise ApiError(
            "invalid_aggregation_path_exception",
            f"unknown property [{', '.join(rest)}] for inference aggregation [{head}]",
            400,
        )
    if not rest:
        return _SingleValue(sub) if set(sub) <= {"value", "value_as_string"} else sub
    if rest != ["value"]:  # ``InternalNumericMetricsAggregation.SingleValue.getProperty``
        raise bad_request(f"path not supported for [{head}]: [{', '.join(rest)}]")
    return _SingleValue(sub).value


class _SingleValue:
    """A single-value numeric metric (``avg`` ...): its ``value``, NaN when it has none."""

    def __init__(self, agg: dict[str, Any]) -> None:
        value = agg.get("value")
        self.value = float(value) if isinstance(value, (int, float)) else math.nan


def _input_value(path: str, value: Any) -> Any:
    """``InferencePipelineAggregator.reduce``'s value rules: finite numbers, single-value metrics, terms
    bucket keys and strings; missing (None, NaN, infinite) is left out; anything else is an error."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, _SingleValue):
        return value.value if math.isfinite(value.value) else None
    if isinstance(value, _TermsBucket):
        return value.key
    if isinstance(value, str) or value is None:
        return value
    kind = "Object[]" if isinstance(value, list) else type(value).__name__
    raise ApiError(
        "aggregation_execution_exception",
        "buckets_path must reference either a number value, a single "
        f"value numeric metric aggregation or a string: got [{value}] of type [{kind}] ] at aggregation "
        f"[{path}]",
        400,
    )


def _inference(ctx: Context, parent: str, spec: AggSpec, buckets: list[dict[str, Any]]) -> None:
    paths: dict[str, str] = spec.args["buckets_path"]
    model_id: str = spec.args["model_id"]
    backend = resolve(ctx.engine, model_id, endpoints=False)
    _check_usable_in_search(ctx, model_id)
    update = _update_for(ctx, model_id, spec.args.get("inference_config"))
    parsed = {name: _parse_path(path) for name, path in paths.items()}
    todo: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for bucket in buckets:
        if bucket["doc_count"] == 0 and "_count" not in paths:
            continue  # an empty bucket is left as it is unless the doc count is an input
        fields: dict[str, Any] = {}
        for name, path in paths.items():
            value = _input_value(path, _property(ctx, parent, bucket, parsed[name]))
            if value is not None:
                fields[name] = value
        todo.append((bucket, fields))
    if not todo:
        return
    try:
        results = backend.infer_docs([fields for _, fields in todo], update, device=ctx.device).to_docs()
    except ApiError as exc:
        if exc.status == 404:
            raise
        results = [{"warning": exc.reason}] * len(todo)
    for (bucket, _), result in zip(todo, results):
        bucket[spec.name] = {"warning": str(result["error"])} if "error" in result else dict(result)
        ctx.inference_results.add(id(bucket[spec.name]))


def _check_usable_in_search(ctx: Context, model_id: str) -> None:
    """``ModelLoadingService.getModelForSearch``: a model that must be deployed (an NLP model, whose
    ``TrainedModelConfig.isAllocateOnly``) cannot serve a search."""
    models = ctx.engine.models
    stored = models.resolve(model_id)
    config = models.config(stored) if stored is not None else {}
    if next(iter(config.get("inference_config") or {}), None) in NLP_TYPES:
        raise ApiError(
            "status_exception",
            f"Trained model [{stored}] with type [{config.get('model_type')}] is currently not usable in search.",
            400,
        )


def _update_for(ctx: Context, model_id: str, config: dict[str, Any] | None) -> dict[str, Any]:
    """``adaptForAggregation``: the request's update with ``results_field`` set to ``value``; without one,
    a results-field-only update of the model's own type."""
    if config:
        ((type_name, options),) = config.items()
        return {type_name: {**(options or {}), "results_field": RESULTS_FIELD}}
    models = ctx.engine.models
    stored = models.resolve(model_id)
    own = (models.config(stored).get("inference_config") or {}) if stored is not None else {}
    type_name = next(iter(own), "regression")
    return {type_name: {"results_field": RESULTS_FIELD}}
