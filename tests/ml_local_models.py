"""Tiny OpenSearch local models built by the tests (nothing downloaded): TorchScript traces and an ONNX
export of tiny random BERTs (tests/models/nlp/tiny_models.py), each in a folder with ``tokenizer.json``,
and the references the tests compare with (the same modules run by torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.nlp.tiny_models import bert_config, write_tokenizer

KINDS = ("embedding", "sparse", "similarity", "qa")


def _module(kind: str) -> Any:
    import torch
    import transformers

    torch.manual_seed(KINDS.index(kind))
    config = bert_config(attn_implementation="eager")
    if kind == "similarity":
        config.num_labels = 1
    cls = {"embedding": transformers.BertModel, "sparse": transformers.BertForMaskedLM,
           "similarity": transformers.BertForSequenceClassification, "qa": transformers.BertForQuestionAnswering}[kind]
    inner = cls(config).eval()

    class Traceable(torch.nn.Module):
        """Tuples out (what a trace keeps); the sparse head of opensearch-neural-sparse-encoding."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            out = self.inner(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                             return_dict=False)
            if kind == "sparse":
                weights = torch.log1p(torch.relu(out[0])) * attention_mask.unsqueeze(-1)
                return torch.max(weights, dim=1).values
            if kind == "qa":
                return out[0], out[1]
            return out[0]

    return Traceable().eval()


def build(root: Path, kind: str, fmt: str = "TORCH_SCRIPT") -> tuple[Path, Any]:
    """``root/<kind>-<fmt>/`` holding ``model.pt`` or ``model.onnx`` and ``tokenizer.json``; and the module."""
    import torch

    folder = root / f"{kind}-{fmt.lower()}"
    write_tokenizer(folder)
    for extra in folder.iterdir():  # the model folder holds what OpenSearch's zip holds
        if extra.name != "tokenizer.json":
            extra.unlink()
    module = _module(kind)
    ids = torch.tensor([[2, 5, 6, 7, 8, 3, 10, 3]])
    mask = torch.ones_like(ids)
    types = torch.tensor([[0, 0, 0, 0, 0, 0, 1, 1]])
    args = (ids, mask) if kind in ("embedding", "sparse") else (ids, mask, types)
    if fmt == "ONNX":
        names = ["input_ids", "attention_mask", "token_type_ids"][: len(args)]
        torch.onnx.export(module, args, str(folder / "model.onnx"), input_names=names, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names}, opset_version=17)
    else:
        with torch.no_grad():
            torch.jit.trace(module, args).save(str(folder / "model.pt"))
    return folder, module


def tokenizer(folder: Path) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json"))


def mean_embedding(module: Any, folder: Path, text: str) -> np.ndarray:
    import torch

    ids = torch.tensor([tokenizer(folder).encode(text).ids])
    with torch.no_grad():
        hidden = module(ids, torch.ones_like(ids))[0]
    return hidden.mean(dim=0).numpy()


def outputs(module: Any, folder: Path, first: str, second: str | None = None) -> list[np.ndarray]:
    import torch

    enc = tokenizer(folder).encode(first, second) if second is not None else tokenizer(folder).encode(first)
    ids = torch.tensor([enc.ids])
    args = (ids, torch.ones_like(ids)) if second is None else (ids, torch.ones_like(ids), torch.tensor([enc.type_ids]))
    with torch.no_grad():
        out = module(*args)
    out = out if isinstance(out, (tuple, list)) else [out]
    return [o[0].numpy() for o in out]
