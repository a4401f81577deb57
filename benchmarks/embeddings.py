"""Embedding throughput: the embedded all-MiniLM-L6-v2 vs sentence-transformers, same run, same corpus.

Embeds every text of ``benchmarks/data/corpus.jsonl`` (5,515 sentences) with
``EmbeddedMiniLM.embed`` and with ``SentenceTransformer(<the same bundled folder>).encode(
batch_size=32)`` (float32, the anchor), the two taking turns in interleaved rounds (``--rounds``),
and prints one JSON line: the median and best docs/s of both, the ratio of medians, the min / mean
cosine between the two sets of vectors (fatal below the printed bound: 0.9999 for float32, 0.99
for int8), and our share of this machine's limit: achieved FLOP/s (median tokens/s x the model's
FLOPs per token) over a torch GEMM's FLOP/s measured in the same run.
Peers: ONNX Runtime and OpenVINO are not run yet (noted in ``peers_skipped``).

Usage: python benchmarks/embeddings.py [--quantize int8] [--dtype bf16] [--device cuda] [--rounds N]
       [--limit N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import harness

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "corpus.jsonl"
MIN_COSINE = {"float32": 0.9999, "int8": 0.99, "bfloat16": 0.995, "float16": 0.999}
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--field", default=None, help="the JSON field holding the text (default: text)")
    parser.add_argument("--limit", type=int, default=None, help="embed only the first N texts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quantize", default=None, choices=[None, "int8"])
    parser.add_argument("--dtype", default=None, help="ours: float32 (CPU default), bf16, fp16 (CUDA default)")
    parser.add_argument("--token-budget", type=int, default=None)
    parser.add_argument("--st-batch-size", type=int, default=32)
    harness.add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.limit = min(args.limit or 64, 64)
    bench = harness.Bench("embeddings", args)

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from es_infer_nb.models.nlp.embedded import EmbeddedMiniLM, model_path

    texts = read_texts(args.corpus.resolve(), args.field, args.limit)
    ours = EmbeddedMiniLM(args.device, quantize=args.quantize, dtype=args.dtype).load()
    reference = SentenceTransformer(str(model_path()), device=args.device, local_files_only=True)

    def run_ours() -> np.ndarray:
        return ours.embed(texts, progress=False, token_budget=args.token_budget)

    def run_reference() -> np.ndarray:
        return reference.encode(texts, batch_size=args.st_batch_size, convert_to_numpy=True, show_progress_bar=False)

    ours.embed(texts[:64], progress=False)  # first-call allocations, lazy initialisation
    reference.encode(texts[:64], batch_size=args.st_batch_size, show_progress_bar=False)
    for peer in ("onnxruntime", "openvino"):
        bench.skip(peer, "not run by this script yet")
    t = bench.rounds({"ours": harness.Contender(run_ours, len(texts), "docs"),
                      "sentence_transformers": harness.Contender(run_reference, len(texts), "docs")})
    a, b = t.last["ours"].astype(np.float64), t.last["sentence_transformers"].astype(np.float64)
    cosine = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    dtype = str(ours.dtype).replace("torch.", "")
    bound = MIN_COSINE["int8" if args.quantize else dtype]
    bench.check(f"min cosine ours ({args.quantize or dtype}) vs sentence_transformers (float32)",
                round(float(cosine.min()), 7), bound, at_least=True)
    bench.compare("ours", "sentence_transformers")

    lengths = [len(ids) for ids in ours.tokenize(texts)]
    tokens = sum(lengths)
    per_token = flops_per_token(ours._encoder, lengths)
    tokens_per_s = tokens / t.median("ours")
    gemm_dtype = ours.dtype if not args.quantize else torch.float32
    gemm = gemm_gflops(ours.device, gemm_dtype)
    achieved = tokens_per_s * per_token / 1e9
    onednn = onednn_gemm_gflops() if ours.device == "cpu" else None
    bench.report({
        "model": ours.model_id,
        "device": ours.device,
        "dtype": dtype,
        "quantize": args.quantize,
        "docs": len(texts),
        "tokens": tokens,
        "st_batch_size": args.st_batch_size,
        "cosine_min": round(float(cosine.min()), 7),
        "cosine_mean": round(float(cosine.mean()), 7),
        "median_tokens_per_s": round(tokens_per_s, 1),
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
    })
    sys.stdout.flush()


if __name__ == "__main__":
    harness.clean_environment()  # before numpy loads: re-executes without the OPENBLAS overrides
    main()
