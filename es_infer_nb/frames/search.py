"""Search over a result frame: the ``k`` nearest rows of an embedding column to a text or a vector
(``df.infer.knn``), scored with torch on the engine's device, and reranking rows with an
``_inference`` ``rerank`` endpoint (``df.infer.rerank``).

A text query is embedded by the model that wrote the column (its ``model_id`` column beside the
embeddings, or ``model_id=``), through the same path as ``series.infer.run``. Rows without an
embedding (missing text, an error) are never neighbours; rows without a text go last in a rerank.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..models.results import DEFAULT_TARGET_FIELD
from . import run
from .arrays import to_vectors

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["METRICS", "column_model_id", "embed_query", "nearest", "rerank_order", "text_column"]

METRICS = ("cosine", "dot")


def column_model_id(frame: pd.DataFrame, column: str) -> str | None:
    """The model that wrote ``column``: the single value of the ``model_id`` column beside it (or the
    top-level ``model_id`` an ``input_output`` run writes)."""
    parent = column.rsplit(".", 1)[0] if "." in column else ""
    candidates = [f"{parent}.model_id", "model_id"] if parent else ["model_id"]  # input_output: top-level
    name = next((c for c in candidates if c in frame.columns), None)
    if name is None:
        return None
    ids = [str(v) for v in pd.unique(frame[name].dropna())]
    if len(ids) > 1:
        raise ValueError(f"column [{name}] names several models ({', '.join(ids)}): pass model_id= to pick the "
                         "one that embeds the query")
    return ids[0] if ids else None


def embed_query(engine: "Engine", model_id: str, text: str, device: str | None) -> np.ndarray:
    """``text`` embedded by ``model_id`` (a trained model, deployment or ``_inference`` endpoint)."""
    field = run.endpoint_field(None) if run.is_endpoint(engine, model_id) else run.series_field(engine, model_id)
    fn, _ = run.compute(engine, model_id, inference_config=None, field_map=None, target_field=None,
                        batch_size=None, device=device, progress=False, input_output=None)
    result = fn(pd.DataFrame({field: [text]}))
    column = f"{DEFAULT_TARGET_FIELD}.predicted_value"
    vectors = to_vectors(result[column]) if column in result else np.full((1, 0), np.nan, dtype=np.float32)
    if vectors.shape[1] == 0 or np.isnan(vectors[0]).any():
        reasons = [str(result[c].iloc[0]) for c in result.columns
                   if str(c).endswith((".error", ".warning")) and pd.notna(result[c].iloc[0])]
        raise ValueError(f"model [{model_id}] gave no embedding for the query"
                         + (f": {reasons[0]}" if reasons else ""))
    return vectors[0]


def _torch_device(engine: "Engine", device: str | None) -> Any:
    import torch

    name = device if device is not None else getattr(engine, "device", None)
    if name in (None, "", "auto"):
        name = "cuda" if name == "auto" and torch.cuda.is_available() else "cpu"
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device [{name}] was requested but CUDA is not available")
    return torch.device(str(name))


def nearest(matrix: np.ndarray, query: np.ndarray, k: int, *, metric: str = "cosine",
            engine: "Engine | None" = None, device: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions and scores of the ``k`` rows of ``matrix`` closest to ``query``, best first.
    Rows holding NaN (no embedding) are left out; fewer than ``k`` come back when fewer exist."""
    import torch

    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, found {metric!r}")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, found {k!r}")
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    if matrix.shape[1] != q.shape[0]:
        raise ValueError(f"the query vector has {q.shape[0]} dimensions, the column's vectors {matrix.shape[1]}")
    if np.isnan(q).any():
        raise ValueError("the query vector holds NaN")
    dev = _torch_device(engine, device)
    with torch.inference_mode():
        m = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32)).to(dev)
        qt = torch.from_numpy(q).to(dev)
        valid = ~torch.isnan(m).any(dim=1)
        m = torch.nan_to_num(m, nan=0.0)
        if metric == "cosine":
            m = torch.nn.functional.normalize(m, dim=1)
            qt = torch.nn.functional.normalize(qt, dim=0)
        scores = m @ qt
        scores = torch.where(valid, scores, torch.full_like(scores, float("-inf")))
        top = min(int(k), int(valid.sum()))
        if top == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        best, where = torch.topk(scores, top)
    return where.cpu().numpy().astype(np.int64), best.double().cpu().numpy()


def text_column(frame: pd.DataFrame, given: str | None) -> str:
    """The column of texts a rerank reads: ``given``, else the frame's one column of strings."""
    if given is not None:
        if given not in frame.columns:
            raise KeyError(f"column [{given}] is not in the frame")
        return given
    texts = [str(c) for c in frame.columns
             if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c].dtype)]
    texts = [c for c in texts if len(frame[c].dropna()) and all(isinstance(v, str) for v in frame[c].dropna()[:100])]
    if len(texts) == 1:
        return texts[0]
    raise ValueError(f"pass text_column= (the frame has {len(texts)} text columns"
                     + (f": {', '.join(texts)})" if texts else ")"))


def rerank_order(engine: "Engine", texts: pd.Series, query: str, endpoint_id: str,
                 device: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``texts`` best first by the endpoint's relevance, and each position's score (NaN
    for a missing text, which goes last). ``device``: where the endpoint's local model runs in this
    call (``None``: the engine's device)."""
    if not isinstance(query, str) or not query:
        raise ValueError("query must be a non-empty str")
    values = texts.tolist()
    present = [i for i, v in enumerate(values) if isinstance(v, str)]
    scores = np.full(len(values), np.nan)
    if present:
        resp = engine.request("POST", f"_inference/rerank/{endpoint_id}",
                              {"query": query, "input": [values[i] for i in present]}, device=device)
        resp.raise_for_status()
        for entry in resp.body.get("rerank") or []:
            scores[present[int(entry["index"])]] = float(entry["relevance_score"])
    order = np.argsort(np.where(np.isnan(scores), np.inf, -scores), kind="stable")
    return order, scores[order]
