"""The transformers network behind an NLP task: the Hugging Face model of a local folder with the
head the task needs (:mod:`.tasks.base` ``HEAD_*``), run on padded batches of windows.

Heads: ``embedding`` pools the last hidden state as the folder's sentence-transformers config says
(mean / CLS / max, then ``Normalize`` when listed; mean without a config); ``hidden`` is the raw
last hidden state (pass_through); ``sequence`` / ``token`` / ``masked_lm`` are the classification,
token-classification and masked-LM logits; ``expansion`` is the SPLADE pooling eland traces for
``text_expansion`` (max over tokens of ``log(1 + relu(logits))``); ``span`` stacks the start and end
logits of a question-answering model.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .tasks.base import (HEAD_EMBEDDING, HEAD_EXPANSION, HEAD_HIDDEN, HEAD_MASKED_LM, HEAD_SEQUENCE, HEAD_SPAN,
                         HEAD_TOKEN)
from .tokenization import Window

AUTO_CLASSES = {
    HEAD_EMBEDDING: "AutoModel", HEAD_HIDDEN: "AutoModel", HEAD_SEQUENCE: "AutoModelForSequenceClassification",
    HEAD_TOKEN: "AutoModelForTokenClassification", HEAD_MASKED_LM: "AutoModelForMaskedLM",
    HEAD_EXPANSION: "AutoModelForMaskedLM", HEAD_SPAN: "AutoModelForQuestionAnswering",
}
_LOAD_LOCK = threading.Lock()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def pooling_of(path: Path) -> tuple[str, bool]:
    """``(mode, normalize)`` from a sentence-transformers folder (``modules.json``); mean otherwise."""
    modules = _read_json(path / "modules.json") or []
    normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
    pooling_dir = next((m.get("path") for m in modules if str(m.get("type", "")).endswith("Pooling")), None)
    config = _read_json(path / (pooling_dir or "1_Pooling") / "config.json") or {}
    if config.get("pooling_mode_cls_token"):
        return "cls", normalize
    if config.get("pooling_mode_max_tokens"):
        return "max", normalize
    return "mean", normalize


def pad_batch(windows: Sequence[Window], pad_id: int) -> dict[str, np.ndarray]:
    """The padded model inputs of a batch, as ES builds its request (``tokens`` = ids, ``arg_1`` =
    attention mask, ``arg_2`` = token types, ``arg_3`` = positions). Every token type is 0, a pair's
    second sequence too: ES's ``TokenizationResult.writeTokenTypeIds`` writes zeros, so a cross-encoder,
    QA or NLI model scores as it does on ES (not as it would with transformers' own tokenizer)."""
    width = max((len(w.token_ids) for w in windows), default=0)
    n = len(windows)
    ids = np.full((n, width), pad_id, dtype=np.int64)
    mask = np.zeros((n, width), dtype=np.int64)
    types = np.zeros((n, width), dtype=np.int64)
    positions = np.tile(np.arange(width, dtype=np.int64), (n, 1))
    for i, w in enumerate(windows):
        k = len(w.token_ids)
        ids[i, :k] = w.token_ids
        mask[i, :k] = 1
    return {"tokens": ids, "arg_1": mask, "arg_2": types, "arg_3": positions}


#: the inputs ES's request document holds after ``request_id``, per tokenizer kind: ``BertTokenizationResult``
#: (bert, bert_ja) all four, ``DebertaTokenizationResult`` three, ``MPNetTokenizationResult`` and
#: ``RobertaTokenizationResult`` (roberta, xlm_roberta, byte_level_bpe) the ids and the attention mask
REQUEST_ARGS: dict[str, tuple[str, ...]] = {
    "bert": ("tokens", "arg_1", "arg_2", "arg_3"), "bert_ja": ("tokens", "arg_1", "arg_2", "arg_3"),
    "deberta_v2": ("tokens", "arg_1", "arg_2"), "mpnet": ("tokens", "arg_1"), "roberta": ("tokens", "arg_1"),
    "xlm_roberta": ("tokens", "arg_1"), "byte_level_bpe": ("tokens", "arg_1"),
}


def build_request(windows: Sequence[Window], kind: str, pad_id: int, request_id: str) -> dict[str, Any]:
    """The JSON document ES sends to ``pytorch_inference`` for a batch of windows
    (``TokenizationResult.buildRequest``): ``request_id``, then :data:`REQUEST_ARGS` of ``kind``, one row
    per window, each padded to the longest. ES pads the attention mask with the pad token id as it pads
    the ids (``writeAttentionMask``; the models here get 0 there, so a batch's padding never changes a
    text's answer) and writes every token type id as 0, pairs included (``writeTokenTypeIds``)."""
    batch = pad_batch(windows, pad_id)
    batch["arg_1"] = np.where(batch["arg_1"] == 1, 1, pad_id)
    out: dict[str, Any] = {"request_id": request_id}
    for name in REQUEST_ARGS[kind]:
        out[name] = batch[name].tolist()
    return out


def bf16_linears(model: Any) -> Any:
    """Every ``nn.Linear`` of ``model`` swapped (in place) for :class:`.bert_encoder.BF16Linear`:
    bfloat16 GEMMs (oneDNN / AMX on CPUs that have them), everything else (embeddings, layer norms,
    softmax, residuals) left in float32; outputs cast back to the input's dtype."""
    import torch
    from torch import nn

    from .bert_encoder import BF16Linear  # imports torch

    class _Float32Out(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x).to(x.dtype)

    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is nn.Linear:
                setattr(module, child_name, _Float32Out(BF16Linear(child)))
    return model


def cast_model(model: Any, precision: str, device: str) -> Any:
    """``model`` (float32, eval) in a concrete precision (:mod:`.precision`) for ``device``."""
    import torch

    if precision == "int8":  # eland's --quantize: dynamic int8 Linear layers (CPU)
        return quantize_int8(model)
    if precision == "bf16" and device == "cpu":
        return bf16_linears(model)
    if precision in ("bf16", "fp16"):
        return model.to(torch.bfloat16 if precision == "bf16" else torch.float16)
    return model


def quantize_int8(model: Any) -> Any:
    """torch's dynamic int8 quantization of every Linear layer (what eland's ``--quantize`` does)."""
    import torch

    with warnings.catch_warnings():  # torch.ao's deprecation notices are not the user's concern
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class _Hidden:
    """What :meth:`Network._head` reads of a transformers output, from the fast encoder."""

    __slots__ = ("last_hidden_state",)

    def __init__(self, hidden: Any) -> None:
        self.last_hidden_state = hidden.float()


class _Logits:
    """What :meth:`Network._head` reads of a transformers classification output."""

    __slots__ = ("logits",)

    def __init__(self, logits: Any) -> None:
        self.logits = logits


#: the heads that run on the fast encoder, with the transformers class whose head modules are reused
FAST_HEADS = {HEAD_SEQUENCE: "BertForSequenceClassification", HEAD_TOKEN: "BertForTokenClassification"}


class Network:
    """A loaded Hugging Face model with one task head on one device."""

    def __init__(self, path: str | os.PathLike[str], head: str, device: str = "cpu", quantize: str | None = None,
                 *, precision: str | None = None, tokenizer: Any = None) -> None:
        """``precision``: a concrete precision (:func:`.precision.resolve_precision`); left out,
        ``quantize="int8"`` gives int8 and float32 otherwise. A plain BERT with the ``embedding`` or
        ``hidden`` head, or a ``BertForSequenceClassification`` / ``BertForTokenClassification``
        (its pooler and classifier then run after it, float32), runs through the embedded model's
        fast encoder (:mod:`.fast_encoder`; the ``tokenizer`` calibrates its int8 scheme), any other model through transformers with its
        Linear layers in that precision (:func:`cast_model`)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import transformers
        from transformers.utils import logging as hf_logging

        self.path = Path(path)
        self.head = head
        self.device = device
        cls = getattr(transformers, AUTO_CLASSES[head])
        with _LOAD_LOCK:
            enabled = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                model = cls.from_pretrained(str(self.path), local_files_only=True)
            finally:
                if enabled:
                    hf_logging.enable_progress_bar()
        model.eval()
        if precision is None:
            precision = "int8" if quantize == "int8" and device == "cpu" else "fp32"
        self.precision = precision
        #: the fast encoder (plain BERT, embedding / hidden heads), else ``None``
        self.encoder: Any = None
        from .fast_encoder import build_encoder, supports  # imports torch

        #: a BERT classification head after the fast encoder (float32): the classifier, and for a
        #: sequence head the pooler before it (dropout is the identity in eval)
        self.classifier: Any = None
        self.pooler: Any = None
        if head in (HEAD_EMBEDDING, HEAD_HIDDEN) and supports(model.config) and hasattr(model, "embeddings"):
            self.encoder = build_encoder(model, precision, device, tokenizer)
            self.model = None  # the encoder holds its own copy of the weights
        elif head in FAST_HEADS and type(model).__name__ == FAST_HEADS[head] and supports(model.config):
            # BertForSequenceClassification / BertForTokenClassification: the fast encoder, then the
            # head's own modules
            self.encoder = build_encoder(model.bert, precision, device, tokenizer)
            self.pooler = model.bert.pooler.to(device) if head == HEAD_SEQUENCE else None
            self.classifier = model.classifier.to(device)
            self.model = None
        else:
            self.model = cast_model(model, precision, device).to(device)
        #: whether a batch runs on its real tokens only (the fast encoder on CPU packs them: the batches
        #: are then budgeted by those, :func:`.batching.plan_batches`), not on its padded ``len * longest``
        self.packs_tokens = self.encoder is not None and device == "cpu"
        #: transformers' own model gets ES's ``arg_2`` (zeros) where it has token types, as a traced model does
        self.passes_token_types = int(getattr(model.config, "type_vocab_size", 0) or 0) > 1
        self.pooling, self.normalize = pooling_of(self.path) if head == HEAD_EMBEDDING else ("mean", False)

    def __call__(self, windows: Sequence[Window], pad_id: int) -> list[np.ndarray]:
        """One output per window (padding removed), as float32 numpy on the CPU."""
        import torch

        batch = pad_batch(windows, pad_id)
        ids = torch.from_numpy(batch["tokens"]).to(self.device)
        mask = torch.from_numpy(batch["arg_1"]).to(self.device)
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if self.passes_token_types:
            kwargs["token_type_ids"] = torch.from_numpy(batch["arg_2"]).to(self.device)
        with torch.inference_mode():
            if self.encoder is not None:  # no token types: type 0 everywhere, what ES's arg_2 holds
                hidden = self.encoder(ids, mask.bool())
                out = _Hidden(hidden) if self.classifier is None else _Logits(self._classify(hidden.float()))
            else:
                out = self.model(**kwargs)
            values = self._head(out, mask)
        lengths = [len(w.token_ids) for w in windows]
        arr = values.float().cpu().numpy()
        if self.head in (HEAD_HIDDEN, HEAD_TOKEN, HEAD_MASKED_LM):
            return [arr[i, : lengths[i]] for i in range(len(windows))]
        if self.head == HEAD_SPAN:
            return [arr[i, :, : lengths[i]] for i in range(len(windows))]
        return [arr[i] for i in range(len(windows))]

    def _classify(self, hidden: Any) -> Any:
        return self.classifier(hidden if self.pooler is None else self.pooler(hidden))

    def _head(self, out: Any, mask: Any) -> Any:
        import torch

        if self.head == HEAD_SPAN:
            return torch.stack([out.start_logits, out.end_logits], dim=1)
        if self.head in (HEAD_SEQUENCE, HEAD_TOKEN, HEAD_MASKED_LM):
            return out.logits
        if self.head == HEAD_EXPANSION:
            weights = torch.log1p(torch.relu(out.logits)) * mask.unsqueeze(-1).to(out.logits.dtype)
            return weights.max(dim=1).values
        hidden = out.last_hidden_state
        if self.head == HEAD_HIDDEN:
            return hidden
        m = mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "max":
            pooled = hidden.masked_fill(m == 0, float("-inf")).max(dim=1).values
        else:
            pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled
