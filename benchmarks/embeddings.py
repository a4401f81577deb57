"""Embedding throughput: the embedded all-MiniLM-L6-v2 vs sentence-transformers, same run, same corpus.

Embeds every text of ``benchmarks/data/corpus.jsonl`` (5,515 sentences) with
``EmbeddedMiniLM.embed`` and with ``SentenceTransformer(<the same bundled folder>).encode(
batch_size=32)``, the two taking turns ``--repeat`` times (best time each), and prints one JSON
line: docs/s of both and their ratio, the min / mean cosine between the two sets of vectors, and
our share of this machine's limit: achieved FLOP/s (tokens/s x the model's FLOPs per token) over
a torch GEMM's FLOP/s measured in the same run.

Usage: python benchmarks/embeddings.py [--quantize int8] [--device cuda] [--repeat N] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from _common import best_of_interleaved, prepare_environment, report

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "corpus.jsonl"
FLOPS_FORMULA = ("flops_per_token = 2 * non_embedding_parameters + attention, attention = "
                 "layers * 4 * hidden * (sum over texts of tokens^2) / total tokens (QK^T and PV)")


def read_texts(path: Path, field: str | None, limit: int | None) -> list[str]:
    texts: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            name = field or ("text" if "text" in row else next(k for k, v in row.items() if isinstance(v, str)))
            texts.append(str(row[name]))
            if limit is not None and len(texts) >= limit:
                break
    return texts


def gemm_gflops(device: str, dtype: Any, seconds: float = 1.0) -> float:
    """Best GFLOP/s of ``(2048 x 384) @ (384 x 1536)`` and ``(2048 x 1536) @ (1536 x 384)`` matmuls."""
    import torch

    a = torch.randn(2048, 384, device=device, dtype=dtype)
    b = torch.randn(384, 1536, device=device, dtype=dtype)
    c = torch.randn(2048, 1536, device=device, dtype=dtype)
    d = torch.randn(1536, 384, device=device, dtype=dtype)
    flops = 2 * 2 * 2048 * 384 * 1536

    def pair() -> None:
        a @ b
        c @ d

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return _best_gflops(pair, sync, flops, seconds)


def _best_gflops(pair: Any, sync: Any, flops: float, seconds: float) -> float:
    """Best GFLOP/s of ``pair()`` (``flops`` each) over blocks of 10 calls for ``seconds``, after 3 warm-ups."""
    for _ in range(3):
        pair()
    sync()
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(10):
            pair()
        sync()
        best = max(best, 10 * flops / (time.perf_counter() - start) / 1e9)
    return best


def onednn_gemm_gflops(seconds: float = 1.0) -> float | None:
    """Diagnostic beside the anchor: the same two float32 GEMMs as :func:`gemm_gflops` through oneDNN
    with prepacked weights (what the embedded model's float32 CPU projections run on); ``None``
    where oneDNN is unavailable."""
    import torch

    from es_infer_nb.models.nlp.bert_encoder import onednn_available

    if not onednn_available():
        return None
    a, c = torch.randn(2048, 384), torch.randn(2048, 1536)
    b_packed = torch.ops.mkldnn._reorder_linear_weight(torch.randn(1536, 384))
    d_packed = torch.ops.mkldnn._reorder_linear_weight(torch.randn(384, 1536))
    flops = 2 * 2 * 2048 * 384 * 1536

    def pair() -> None:
        torch.ops.mkldnn._linear_pointwise(a, b_packed, None, "none", [], "")
        torch.ops.mkldnn._linear_pointwise(c, d_packed, None, "none", [], "")

    return _best_gflops(pair, lambda: None, flops, seconds)


def flops_per_token(encoder: Any, lengths: list[int]) -> float:
    """2 x the non-embedding parameters (int8 layers counted as their float shape) + attention."""
    import torch

    params = 0
    for name, module in encoder.named_modules():
        if "embeddings" in name:
            continue
        weight = getattr(module, "weight", None)
        if callable(weight):  # a dynamically quantized Linear: weight() is the int8 tensor
            weight = weight()
        if isinstance(weight, torch.Tensor) and not list(module.children()):
            params += weight.numel()
            bias = getattr(module, "bias", None)
            bias = bias() if callable(bias) else bias
            if isinstance(bias, torch.Tensor):
                params += bias.numel()
    layers = len(encoder.layers)
    hidden = encoder.hidden
    attention = layers * 4 * hidden * sum(n * n for n in lengths) / max(sum(lengths), 1)
    return 2 * params + attention


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--field", default=None, help="the JSON field holding the text (default: text)")
    parser.add_argument("--limit", type=int, default=None, help="embed only the first N texts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quantize", default=None, choices=[None, "int8"])
    parser.add_argument("--token-budget", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each, taking turns (best counts)")
    parser.add_argument("--st-batch-size", type=int, default=32)
    args = parser.parse_args()
    removed = prepare_environment()

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from es_infer_nb.models.nlp.embedded import EmbeddedMiniLM, model_path

    texts = read_texts(args.corpus.resolve(), args.field, args.limit)
    ours = EmbeddedMiniLM(args.device, quantize=args.quantize).load()
    reference = SentenceTransformer(str(model_path()), device=args.device, local_files_only=True)

    def run_ours() -> np.ndarray:
        return ours.embed(texts, progress=False, token_budget=args.token_budget)

    def run_reference() -> np.ndarray:
        return reference.encode(texts, batch_size=args.st_batch_size, convert_to_numpy=True, show_progress_bar=False)

    ours.embed(texts[:64], progress=False)  # first-call allocations, lazy initialisation
    reference.encode(texts[:64], batch_size=args.st_batch_size, show_progress_bar=False)

    outputs: dict[str, np.ndarray] = {}
    times = best_of_interleaved(
        {"ours": lambda: outputs.__setitem__("ours", run_ours()),
         "sentence_transformers": lambda: outputs.__setitem__("st", run_reference())},
        repeat=args.repeat,
    )
    a, b = outputs["ours"].astype(np.float64), outputs["st"].astype(np.float64)
    cosine = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    lengths = [len(ids) for ids in ours.tokenize(texts)]
    tokens = sum(lengths)
    per_token = flops_per_token(ours._encoder, lengths)
    tokens_per_s = tokens / times["ours"]
    gemm_dtype = ours.dtype if not args.quantize else torch.float32
    gemm = gemm_gflops(ours.device, gemm_dtype)
    achieved = tokens_per_s * per_token / 1e9
    onednn = onednn_gemm_gflops() if ours.device == "cpu" else None
    report("embeddings", {
        "model": ours.model_id,
        "device": ours.device,
        "dtype": str(ours.dtype).replace("torch.", ""),
        "quantize": args.quantize,
        "docs": len(texts),
        "tokens": tokens,
        "ours_docs_per_s": round(len(texts) / times["ours"], 1),
        "sentence_transformers_docs_per_s": round(len(texts) / times["sentence_transformers"], 1),
        "ratio": round(times["sentence_transformers"] / times["ours"], 3),
        "ours_s": round(times["ours"], 3),
        "sentence_transformers_s": round(times["sentence_transformers"], 3),
        "st_batch_size": args.st_batch_size,
        "cosine_min": round(float(cosine.min()), 7),
        "cosine_mean": round(float(cosine.mean()), 7),
        "tokens_per_s": round(tokens_per_s, 1),
        "flops_per_token_m": round(per_token / 1e6, 3),
        "flops_formula": FLOPS_FORMULA,
        "achieved_gflops": round(achieved, 1),
        "gemm_gflops": round(gemm, 1),
        "gemm": f"torch {str(gemm_dtype).replace('torch.', '')} (2048x384)@(384x1536) and (2048x1536)@(1536x384), best",
        "share_of_gemm_limit": round(achieved / gemm, 3),
        # diagnostic only (the anchor above is torch's matmul, i.e. MKL's sgemm on CPU): the same
        # GEMMs through oneDNN, which the float32 CPU projections use
        "onednn_gemm_gflops": None if onednn is None else round(onednn, 1),
        "share_of_onednn_gemm": None if onednn is None else round(achieved / onednn, 3),
        "token_budget": args.token_budget or ours.token_budget,
        "repeat": args.repeat,
        "unset_env": removed,
        "env_note": "OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset for this process only",
    })
    sys.stdout.flush()


if __name__ == "__main__":
    main()
