"""Result columns and dtypes of a job, declared from the model and pipeline configs (no model runs).

Dask needs every partition's columns up front. They come from the stored model config: the
inference config (after the call's update) names the result fields, the definition gives the
class labels; the pandas path's own renderer (:meth:`TreeBatchResult.to_columns`) is run on zero
rows to get the dtypes. Columns that only some rows produce (``warning``, ``error``) are always
declared; a partition without them gets them as nulls (:func:`conform`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

STRING = pd.ArrowDtype(pa.string())
DEFAULT_TARGET = "ml.inference"


def _importance_type(classification: bool, label: pa.DataType) -> pa.DataType:
    if not classification:
        return pa.list_(pa.struct([("feature_name", pa.string()), ("importance", pa.float64())]))
    classes = pa.list_(pa.struct([("class_name", label), ("importance", pa.float64())]))
    return pa.list_(pa.struct([("feature_name", pa.string()), ("classes", classes)]))


def model_columns(engine: "Engine", model_id: str, inference_config: Any = None,
                  target_field: str | None = None) -> dict[str, Any]:
    """``{column: dtype}`` of ``df.infer.run(model_id, ...)``'s result columns, in the pandas path's order."""
    from ..errors import ApiError
    from ..models.deployments import deployments
    from ..models.inference_config import ClassificationConfig, apply_update, parse_config
    from ..models.results import TreeBatchResult
    from ..models.config import decompress_definition
    from ..models.tree.definition import parse_definition

    dep = deployments(engine).get(model_id)
    concrete = dep.model_id if dep is not None else engine.models.require(model_id)
    stored = engine.models.config(concrete)
    if stored.get("model_type", "tree_ensemble") != "tree_ensemble":
        raise ApiError("illegal_argument_exception",
                       f"the result columns of [{stored.get('model_type')}] model [{model_id}] are not known before it "
                       "runs; pass meta={column: dtype} to ddf.infer.run", 400)
    config = apply_update(concrete, parse_config(stored["inference_config"]), inference_config)
    raw = stored.get("definition")
    definition = parse_definition(raw if raw is not None else decompress_definition(stored["compressed_definition"]))
    labels = definition.classification_labels
    classification = isinstance(config, ClassificationConfig)
    n_classes = len(labels) if labels else 2
    result = TreeBatchResult(
        model_id=concrete, config=config, values=np.zeros(0),
        probabilities=np.zeros((0, n_classes)) if classification else None,
        warning=np.zeros(0, dtype=bool), errors=[], labels=labels,
        importance=np.zeros((0, 1, 1)) if config.num_top_feature_importance_values else None,
        importance_names=[] if config.num_top_feature_importance_values else None,
    )
    prefix = DEFAULT_TARGET if target_field is None else target_field
    cols = result.to_columns(prefix, pd.RangeIndex(0))
    dot = f"{prefix}." if prefix else ""
    out: dict[str, Any] = {}
    for name, series in cols.items():
        if name == dot + "model_id":
            out[dot + "warning"] = STRING
            out[dot + "error"] = STRING
        out[name] = series.dtype
    if dot + "feature_importance" in out:
        label = cols[dot + config.results_field].dtype.pyarrow_dtype if classification else pa.string()
        out[dot + "feature_importance"] = pd.ArrowDtype(_importance_type(classification, label))
    return out


def run_meta(engine: "Engine", meta: pd.DataFrame, model_id: str, args: dict[str, Any],
             given: Any = None) -> pd.DataFrame:
    """The empty frame ``ddf.infer.run`` declares: the input columns then the result columns."""
    columns: dict[str, Any] = {str(c): meta[c].dtype for c in meta.columns}
    if given is None:
        results = model_columns(engine, model_id, args.get("inference_config"), args.get("target_field"))
    else:
        results = _given(given)
    columns.update(results)
    return empty(columns, meta.index)


def pipeline_meta(engine: "Engine", meta: pd.DataFrame, pipeline: Any, given: Any = None) -> pd.DataFrame:
    """The empty frame ``ddf.infer.pipeline`` declares: input columns, every inference processor's result
    columns, the fields other processors name (Python objects), ``_ingest.dropped`` and ``_ingest.error.*``."""
    from ..notebook.frame_pipeline import DROPPED, ERROR_COLUMNS

    body = engine.pipelines.get(pipeline) if isinstance(pipeline, str) else pipeline
    columns: dict[str, Any] = {str(c): meta[c].dtype for c in meta.columns}
    for kind, options in _processors((body or {}).get("processors") or []):
        if kind == "inference" and "input_output" not in options:
            tag = options.get("tag")
            target = options.get("target_field", DEFAULT_TARGET if tag is None else f"{DEFAULT_TARGET}.{tag}")
            try:
                columns.update(model_columns(engine, options["model_id"], options.get("inference_config"), target))
            except Exception:  # noqa: BLE001 - the pipeline itself reports a bad processor when it runs
                pass
            continue
        for key in ("target_field", "field"):
            name = options.get(key)
            if isinstance(name, str) and "{{" not in name and name not in columns:
                columns[name] = object
    columns[DROPPED] = np.dtype(bool)
    for name in ERROR_COLUMNS:
        columns[name] = STRING
    if given is not None:
        columns.update(_given(given))
    return empty(columns, meta.index)


def _processors(processors: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for entry in processors:
        if isinstance(entry, dict) and len(entry) == 1:
            kind, options = next(iter(entry.items()))
            if isinstance(options, dict):
                out.append((kind, options))
                out.extend(_processors(options.get("on_failure") or []))
    return out


def _given(given: Any) -> dict[str, Any]:
    if isinstance(given, pd.DataFrame):
        return {str(c): given[c].dtype for c in given.columns}
    if isinstance(given, dict):
        return {str(k): v for k, v in given.items()}
    raise TypeError(f"meta must be a dict {{column: dtype}} or an empty DataFrame, found {type(given).__name__}")


def empty(columns: dict[str, Any], index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=dtype, index=index[:0]) for name, dtype in columns.items()},
                        index=index[:0])


def conform(frame: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly ``meta``'s columns, order and dtypes (missing columns as nulls).

    A column the partition has that ``meta`` does not declare is an error naming it (never dropped)."""
    extra = [str(c) for c in frame.columns if c not in meta.columns]
    if extra:
        raise ValueError(f"the partition has columns the Dask frame does not declare: {extra}; pass "
                         "meta={column: dtype} to ddf.infer.run / ddf.infer.pipeline to declare them")
    if list(frame.columns) == list(meta.columns) and (frame.dtypes == meta.dtypes).all():
        return frame
    out: dict[str, Any] = {}
    for name in meta.columns:
        dtype = meta[name].dtype
        if name not in frame.columns:
            out[name] = _nulls(len(frame), dtype, frame.index)
            continue
        col = frame[name]
        if col.dtype != dtype:
            try:
                col = col.astype(dtype)
            except (TypeError, ValueError, pa.ArrowException):
                pass  # kept as the pandas path made it
        out[name] = col
    return pd.DataFrame(out, index=frame.index, copy=False)


def _nulls(n: int, dtype: Any, index: pd.Index) -> pd.Series:
    if isinstance(dtype, pd.ArrowDtype):
        return pd.Series(pa.nulls(n, dtype.pyarrow_dtype), index=index, dtype=dtype)
    if dtype == bool or dtype == object:
        return pd.Series(np.full(n, None, dtype=object), index=index)
    return pd.Series(pd.array([None] * n, dtype=dtype), index=index)
