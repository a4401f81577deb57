"""Embedding throughput: the embedded all-MiniLM-L6-v2 vs sentence-transformers, same run, same corpus.

Embeds every text of ``benchmarks/data/corpus.jsonl`` (5,515 sentences) with
``EmbeddedMiniLM.embed`` and with ``SentenceTransformer(<the same bundled folder>).encode(
batch_size=32)`` (float32, the anchor), the two taking turns in interleaved rounds (``--rounds``),
and prints one JSON line: the median and best docs/s of both, the ratio of medians, the min / mean
cosine between the two sets of vectors (fatal below the printed bound: 0.9999 for float32, 0.99
for int8), and our share of this machine's limit: achieved FLOP/s (median tokens/s x the model's
FLOPs per token) over a torch GEMM's FLOP/s measured in the same run.
Peers (CPU, where installed: ``pip install -e '.[bench]'``): the same bundled model exported once to
ONNX (opset 17, into a temporary folder) and run by ONNX Runtime (float32) and OpenVINO (inference
precision f32, or bf16 when ours runs bf16), each with the sentence-transformers recipe around it:
the model's tokenizer, batches of ``--st-batch-size`` padded to their longest text, mean pooling,
L2 normalisation; each checked against sentence-transformers by min cosine like ours.

Usage: python benchmarks/embeddings.py [--precision auto|fp32|bf16|int8] [--quantize int8] [--dtype bf16]
       [--device cuda] [--rounds N]
       [--limit N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "corpus.jsonl"
MIN_COSINE = {"float32": 0.9999, "int8": 0.99, "bfloat16": 0.995, "float16": 0.999}
#: bounds of the public ``precision`` (issue goals: bf16 within 0.9999 of fp32, int8 within 0.995)
PRECISION_MIN_COSINE = {"fp32": 0.9999, "bf16": 0.9999, "fp16": 0.999, "int8": 0.995}
PRECISION_PEER_DTYPE = {"bf16": "bfloat16", "fp16": "float16"}
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


def onnx_peers(bench: harness.Bench, texts: list[str], folder: Path, batch_size: int, max_length: int,
               dtype: str) -> dict[str, harness.Contender]:
    """ONNX Runtime and OpenVINO running the bundled model exported to ONNX; {} when neither is installed."""
    ort = bench.peer("onnxruntime", "onnxruntime")
    ov = bench.peer("openvino", "openvino")
    if ort is None and ov is None:
        return {}
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from es_infer_nb.models.nlp.embedded import model_path

    tokenizer = AutoTokenizer.from_pretrained(str(model_path()))
    batches = [dict(tokenizer(texts[i : i + batch_size], padding=True, truncation=True, max_length=max_length,
                              return_tensors="np")) for i in range(0, len(texts), batch_size)]
    names = ["input_ids", "attention_mask", "token_type_ids"]
    onnx_file = folder / "minilm.onnx"
    try:
        class Encoder(torch.nn.Module):  # positional inputs for the exporter, the last hidden state out
            def __init__(self) -> None:
                super().__init__()
                self.bert = AutoModel.from_pretrained(str(model_path())).eval().requires_grad_(False)

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                                 token_type_ids=token_type_ids).last_hidden_state

        example = tuple(torch.from_numpy(batches[0][n]) for n in names)
        axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
        with torch.no_grad():
            torch.onnx.export(Encoder(), example, str(onnx_file), input_names=names, output_names=["last_hidden_state"],
                              dynamic_axes=axes, opset_version=17, dynamo=False)
    except Exception as exc:  # noqa: BLE001 - no ONNX file: both peers are skipped, noted
        for name, module in (("onnxruntime", ort), ("openvino", ov)):
            if module is not None:
                bench.skip(name, f"ONNX export failed: {type(exc).__name__}: {exc}")
        return {}

    def pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        weights = mask[..., None].astype(np.float32)
        mean = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return mean / np.clip(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12, None)

    threads = torch.get_num_threads()
    contenders: dict[str, harness.Contender] = {}
    if ort is not None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])

        def run_ort(part: list[dict[str, Any]] = batches) -> np.ndarray:
            return np.concatenate([pooled(session.run(None, {n: b[n] for n in names})[0], b["attention_mask"])
                                   for b in part])

        run_ort(batches[:2])  # warm-up: first-call allocations
        contenders["onnxruntime"] = harness.Contender(run_ort, len(texts), "docs")
    if ov is not None:
        precision = "bf16" if dtype == "bfloat16" else "f32"
        compiled = ov.Core().compile_model(str(onnx_file), "CPU", {
            "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads})
        request = compiled.create_infer_request()

        def run_ov(part: list[dict[str, Any]] = batches) -> np.ndarray:
            return np.concatenate([pooled(request.infer({n: b[n] for n in names})[0], b["attention_mask"])
                                   for b in part])

        run_ov(batches[:2])  # warm-up: first-call allocations, graph compilation
        contenders["openvino"] = harness.Contender(run_ov, len(texts), "docs")
        bench.notes["openvino"] = f"inference precision {precision}"
    return contenders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--field", default=None, help="the JSON field holding the text (default: text)")
    parser.add_argument("--limit", type=int, default=None, help="embed only the first N texts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default=None, choices=[None, "auto", "fp32", "bf16", "fp16", "int8"],
                        help="ours: the public precision (auto picks bf16 on AMX / avx512_bf16 CPUs); "
                             "OpenVINO runs bf16 beside a bf16 run")
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
    if args.precision is not None:
        ours = EmbeddedMiniLM(args.device, precision=args.precision).load()
    else:
        ours = EmbeddedMiniLM(args.device, quantize=args.quantize, dtype=args.dtype).load()
    reference = SentenceTransformer(str(model_path()), device=args.device, local_files_only=True)

    def run_ours() -> np.ndarray:
        return ours.embed(texts, progress=False, token_budget=args.token_budget)

    def run_reference() -> np.ndarray:
        return reference.encode(texts, batch_size=args.st_batch_size, convert_to_numpy=True, show_progress_bar=False)

    ours.embed(texts[:64], progress=False)  # first-call allocations, lazy initialisation
    reference.encode(texts[:64], batch_size=args.st_batch_size, show_progress_bar=False)
    dtype = (PRECISION_PEER_DTYPE.get(ours.precision, "float32") if args.precision is not None
             else str(ours.dtype).replace("torch.", ""))
    contenders = {"ours": harness.Contender(run_ours, len(texts), "docs"),
                  "sentence_transformers": harness.Contender(run_reference, len(texts), "docs")}
    with tempfile.TemporaryDirectory(prefix="bench-embeddings-") as tmp:
        if ours.device == "cpu":
            contenders.update(onnx_peers(bench, texts, Path(tmp), args.st_batch_size, reference.max_seq_length,
                                         dtype))
        else:
            for peer in ("onnxruntime", "openvino"):
                bench.skip(peer, "CPU peers; this run is on " + ours.device)
        t = bench.rounds(contenders)

    def cosines(name: str) -> np.ndarray:
        a, b = t.last[name].astype(np.float64), t.last["sentence_transformers"].astype(np.float64)
        return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    cosine = cosines("ours")
    label = ours.precision if args.precision is not None else (args.quantize or dtype)
    bound = (PRECISION_MIN_COSINE[ours.precision] if args.precision is not None
             else MIN_COSINE["int8" if args.quantize else dtype])
    bench.check(f"min cosine ours ({label}) vs sentence_transformers (float32)",
                round(float(cosine.min()), 7), bound, at_least=True)
    bench.compare("ours", "sentence_transformers")
    for peer in ("onnxruntime", "openvino"):
        if peer in t.last:
            peer_bound = MIN_COSINE["bfloat16" if peer == "openvino" and dtype == "bfloat16" else "float32"]
            bench.check(f"min cosine {peer} vs sentence_transformers", round(float(cosines(peer).min()), 7),
                        peer_bound, at_least=True)
            bench.compare("ours", peer)

    lengths = [len(ids) for ids in ours.tokenize(texts)]
    tokens = sum(lengths)
    per_token = flops_per_token(ours._encoder, lengths)
    tokens_per_s = tokens / t.median("ours")
    gemm_dtype = ours.dtype if not ours.quantize else torch.float32
    gemm = gemm_gflops(ours.device, gemm_dtype)
    achieved = tokens_per_s * per_token / 1e9
    onednn = onednn_gemm_gflops() if ours.device == "cpu" else None
    bench.report({
        "model": ours.model_id,
        "device": ours.device,
        "dtype": dtype,
        "quantize": ours.quantize,
        "precision": ours.precision,
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
