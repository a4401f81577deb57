"""Running a model over documents or a DataFrame, with stats, batching and progress.

Every entry point (``_infer``, ``df.infer.run``, pipelines) comes through here, so
the counters behind ``_stats`` move the same way whatever called the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ApiError, InferenceInterrupted
from .config import LANG_IDENT_ID
from .deployments import deployments, model_field
from .inference_config import apply_update, parse_config
from .lang_ident import LangIdentModel
from .nlp_backend import resolve_model_precision
from .results import TreeBatchResult, target_prefix
from .run_control import progress_for
from .tree.features import Columns, columns_from_docs, columns_from_frame
from .tree.model import TreeModel

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

PROGRESS_MIN_ROWS = 200_000


def load_model(engine: "Engine", model_id: str, device: str | None = None) -> TreeModel | LangIdentModel:
    """The loaded model for ``model_id`` on ``device`` (cached; a load counts as a cache miss)."""
    dev = device or engine.device or "cpu"
    cached = engine.models.loaded(model_id, dev)
    if cached is not None:
        return cached
    with engine.models.load_lock(model_id, dev):  # one load per model and device; the state lock is not held
        cached = engine.models.loaded(model_id, dev)
        if cached is not None:
            return cached
        if model_id == LANG_IDENT_ID:
            lang_ident = LangIdentModel(model_id)  # CLD3's network, the same on every device
            engine.models.remember(model_id, dev, lang_ident)
            engine.stats.record(model_id, cache_misses=1)
            return lang_ident
        stored = engine.models.config(model_id)
        if stored.get("model_type", "tree_ensemble") != "tree_ensemble":
            raise ApiError(
                "status_exception",
                f"Model [{model_id}] must be deployed to use. Please deploy with the start trained model deployment "
                "API.",
                409,
            )
        if stored.get("definition") is None and stored.get("compressed_definition") is None:
            raise ApiError("status_exception", f"Model [{model_id}] has no definition to run", 400)
        model = TreeModel(model_id, stored, dev)
        engine.models.remember(model_id, dev, model, stored)  # not cached when the model changed meanwhile
        engine.stats.record(model_id, cache_misses=1)
    return model


def apply_field_map(cols: Columns, n: int, field_map: dict[str, str] | None) -> None:
    """For each ``src -> dest``: where ``src`` has a value and ``dest`` is missing, copy it (originals kept)."""
    for src, dest in (field_map or {}).items():
        if src not in cols:
            continue
        source = cols[src]
        if dest not in cols:
            cols[dest] = source.copy()
            continue
        target = cols[dest]
        missing = _missing_mask(target)
        if missing.any():
            merged = target.astype(object) if target.dtype != source.dtype else target.copy()
            merged[missing] = source[missing]
            cols[dest] = merged


def _missing_mask(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == object:
        return np.array([v is None or (isinstance(v, float) and v != v) for v in arr], dtype=bool)
    if arr.dtype.kind == "f":
        return np.isnan(arr)
    return np.zeros(arr.shape[0], dtype=bool)


def run_tree(
    engine: "Engine",
    id_or_alias: str,
    cols: Columns,
    n: int,
    *,
    update: Any = None,
    field_map: dict[str, str] | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    progress: bool | None = None,
) -> TreeBatchResult:
    model_id = engine.models.require(id_or_alias)
    stored = engine.models.config(model_id)
    config = apply_update(model_id, parse_config(stored["inference_config"]), update)
    model = load_model(engine, model_id, device)
    apply_field_map(cols, n, field_map)
    apply_field_map(cols, n, model.default_field_map)
    with progress_for(n, f"infer {model_id}", progress, min_rows=PROGRESS_MIN_ROWS) as bar:
        try:
            result = model.infer_columns(cols, n, config, batch_size=batch_size, on_batch=bar.advance)
        except ApiError:
            engine.stats.record(model_id, inferences=n, failures=n)
            raise
    done = result.extra.get("interrupted_at", n)
    engine.stats.record(
        model_id,
        inferences=done,
        missing_all_fields=int(result.warning[:done].sum()),
        failures=int(result.error_mask[:done].sum()),
    )
    return result


def infer_docs(engine: "Engine", id_or_alias: str, docs: list[dict[str, Any]], update: Any = None,
               device: str | None = None, *, engine_device: str | None = None) -> TreeBatchResult:
    """Run a model over ES documents (``_infer``); pytorch models through their deployment.

    ``device``: where the model runs (a deployment's own device otherwise); ``engine_device``: the
    device standing for the engine's in this call (a tree model's load, a deployment started here)."""
    deployment = deployments(engine).for_inference(id_or_alias, device=engine_device)
    if deployment is not None:
        field = model_field(engine, deployment.model_id)
        return deployment.infer(docs, update, field, device=device)
    return infer_tree_docs(engine, id_or_alias, docs, update, device=device or engine_device)


def infer_tree_docs(engine: "Engine", id_or_alias: str, docs: list[dict[str, Any]], update: Any = None,
                    device: str | None = None) -> TreeBatchResult:
    """A tree model over ES documents (:class:`es_infer_nb.backends.TreeBackend`)."""
    model_id = engine.models.require(id_or_alias)
    stored = engine.models.config(model_id)
    cols = columns_from_docs(docs, needed_fields(stored))
    result = run_tree(engine, model_id, cols, len(docs), update=update, device=device)
    if "interrupted_at" in result.extra:
        raise InferenceInterrupted(result.extra["interrupted_at"], len(docs), None)
    return result


def needed_fields(stored: dict[str, Any]) -> list[str]:
    fields = list(stored.get("input", {}).get("field_names", []))
    fields += [src for src in (stored.get("default_field_map") or {})]
    return fields


def infer_frame(
    engine: "Engine",
    model_id: str,
    df: pd.DataFrame,
    *,
    inference_config: Any = None,
    field_map: dict[str, str] | None = None,
    target_field: str | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    progress: bool | None = None,
    precision: str | None = None,
) -> pd.DataFrame:
    """Run a tree model over a DataFrame; return only the result columns, indexed like ``df`` (pytorch
    models run through :class:`es_infer_nb.backends.NlpBackend`)."""
    if precision is not None:  # NLP only; a typo is an error whatever the model
        resolve_model_precision(precision, "cpu")
    concrete = engine.models.require(model_id)
    stored = engine.models.config(concrete)
    fields = needed_fields(stored) + list((field_map or {}).keys())
    cols = columns_from_frame(df, fields)
    result = run_tree(
        engine, concrete, cols, len(df), update=inference_config, field_map=field_map,
        batch_size=batch_size, device=device, progress=progress,
    )
    target = target_prefix(target_field)
    frame = pd.DataFrame(result.to_columns(target, df.index), index=df.index)
    if "interrupted_at" in result.extra:
        raise InferenceInterrupted(result.extra["interrupted_at"], len(df), frame)
    return frame
