"""Embedding throughput: the embedded all-MiniLM-L6-v2 vs sentence-transformers, same run, same corpus.

Embeds every text of ``benchmarks/data/corpus.jsonl`` (5,515 sentences) with
``EmbeddedMiniLM.embed`` and with ``SentenceTransformer(<the same bundled folder>).encode(
batch_size=32)`` (float32, the anchor), the two taking turns in interleaved rounds (``--rounds``),
and prints one JSON line: the median and best docs/s of both, the ratio of medians, the min / mean
cosine between the two sets of vectors (fatal below the printed bound: 0.9999 for float32, 0.99
for int8), and our share of this machine's limit: achieved FLOP/s (median tokens/s x the model's
FLOPs per token) over a torch GEMM's FLOP/s measured in the same run; ``shares_of_gemm_limit`` gives
every contender's share (the same useful FLOPs per real token), ``goal_needs_share_of_gemm_limit``
the share each of issue 22's goals (:data:`GOALS`) asks of ours in this run (goal ratio x the peer's
share: near or above 1, no engine doing these FLOPs at this GEMM rate could meet it), and the same
against ``concurrent_gemm_gflops`` (:func:`concurrent_gemm_gflops`: one single-thread GEMM per stream,
all at once: the rate that GEMM-bound streams, ours or OpenVINO's, can reach on this machine), and
against the CPU's own vector FMA peak on those cores (``fma_peak``, ``shares_of_fma_peak``,
``goal_needs_share_of_fma_peak``: :mod:`fma_peak`), which no GEMM passes whichever library the anchor is.
Peers (CPU, where installed: ``pip install -e '.[bench]'``): the same bundled model exported once to
ONNX (opset 17, into a temporary folder) and run by ONNX Runtime (float32) and OpenVINO (see
:func:`onnx_peers`: both throughput-tuned, OpenVINO's inference precision set explicitly to f32,
or bf16 beside a bf16 run), each with the sentence-transformers recipe around it, timed: the
model's tokenizer, texts sorted by length, batches of ``--st-batch-size`` padded to their longest
text, mean pooling, L2 normalisation; each checked against sentence-transformers by min cosine.
With ``--precision``, ours is the public path: ``pd.Series(texts).infer.run(<deployment>)`` on a
deployment of the MiniLM started with that ``precision`` and ``cache_size=0b`` (no answers from
ES's inference cache across rounds); tokenization, batching, pooling and the Arrow result column timed.

Usage: python benchmarks/embeddings.py [--precision auto|fp32|bf16|int8] [--quantize int8] [--dtype bf16]
       [--device cuda] [--rounds N]
       [--limit N] [--quick]
An AVX2-class CPU on a newer one: ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2
python benchmarks/embeddings.py --precision auto (auto then resolves to fp32). The peers only partly
honour such caps: ONNX Runtime's MLAS has no switch and keeps its AVX-512 kernels; OpenVINO's own
oneDNN honours ONEDNN_MAX_CPU_ISA but it also runs fully connected layers on MLAS and some of its own
JIT kernels on AVX-512 regardless: the JSON line's ``notes.openvino_kernels`` counts its compiled graph's
kernels by implementation (:func:`openvino_kernels`), so a capped run shows how much of OpenVINO
still ran AVX-512.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import harness

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "corpus.jsonl"
MIN_COSINE = {"float32": 0.9999, "int8": 0.99, "bfloat16": 0.995, "float16": 0.999}
#: bounds of the public ``precision`` (issue goals: bf16 within 0.9999 of fp32, int8 within 0.995)
PRECISION_MIN_COSINE = {"fp32": 0.9999, "bf16": 0.9999, "fp16": 0.999, "int8": 0.995}
PRECISION_PEER_DTYPE = {"bf16": "bfloat16", "fp16": "float16"}
#: the environment variables that cap the ISA of oneDNN, ATen's kernels and MKL (ONNX Runtime's MLAS has none)
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")
ONNX_INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
EMBEDDING_DIM = 384
#: issue 22's throughput goals per precision: ours over each peer, medians of the same run
GOALS: dict[str, dict[str, float]] = {"fp32": {"sentence_transformers": 2.0, "openvino": 1.2},
                                      "bf16": {"openvino": 1.2}, "int8": {"onnxruntime_int8": 1.0}}
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


#: FLOPs of one pair of the anchor GEMMs (:func:`gemm_operands`)
GEMM_PAIR_FLOPS = 2 * 2 * 2048 * 384 * 1536


def row_cosines(a: Any, b: Any) -> Any:
    """The cosine of each row of ``a`` with the same row of ``b`` (float64)."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def gemm_operands(dtype: Any, device: str = "cpu") -> tuple[Any, Any, Any, Any]:
    """``a, b, c, d`` of the anchor pair ``a @ b`` ((2048 x 384) @ (384 x 1536)) and ``c @ d``
    ((2048 x 1536) @ (1536 x 384)): the FFN's shapes at a 2,048-token batch."""
    import torch

    return (torch.randn(2048, 384, device=device, dtype=dtype), torch.randn(384, 1536, device=device, dtype=dtype),
            torch.randn(2048, 1536, device=device, dtype=dtype), torch.randn(1536, 384, device=device, dtype=dtype))


def gemm_gflops(device: str, dtype: Any, seconds: float = 1.0) -> float:
    """Best GFLOP/s of the anchor GEMM pair (:func:`gemm_operands`) on all torch threads."""
    import torch

    a, b, c, d = gemm_operands(dtype, device)

    def pair() -> None:
        a @ b
        c @ d

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return _best_gflops(pair, sync, GEMM_PAIR_FLOPS, seconds)


def concurrent_gemm_gflops(streams: int, dtype: Any, seconds: float = 2.0) -> float:
    """Best total GFLOP/s of ``streams`` CPU threads each running the same two GEMMs as
    :func:`gemm_gflops` on one torch thread at once (blocks of 5 pairs per thread, started together,
    timed to the last one's end; best block as :func:`gemm_gflops` takes its best): how both our
    streams and OpenVINO's THROUGHPUT streams use the cores. Lower than one GEMM on all threads
    where the cores share a clock budget, caches or a host."""
    import threading

    import torch

    original = torch.get_num_threads()
    block = 5
    begin, end = threading.Barrier(streams + 1), threading.Barrier(streams + 1)
    stop = threading.Event()

    def work() -> None:
        torch.set_num_threads(1)
        a, b, c, d = gemm_operands(dtype)
        for _ in range(2):
            a @ b, c @ d
        while True:
            begin.wait()
            if stop.is_set():
                return
            for _ in range(block):
                a @ b, c @ d
            end.wait()

    threads = [threading.Thread(target=work) for _ in range(streams)]
    for thread in threads:
        thread.start()
    best = 0.0
    try:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            begin.wait()
            started = time.perf_counter()
            end.wait()
            best = max(best, streams * block * GEMM_PAIR_FLOPS / (time.perf_counter() - started) / 1e9)
    finally:
        stop.set()
        begin.wait()
        for thread in threads:
            thread.join()
        torch.set_num_threads(original)
    return best


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
    a, b, c, d = gemm_operands(torch.float32)
    b_packed = torch.ops.mkldnn._reorder_linear_weight(b.t().contiguous())  # nn.Linear's (out, in) layout
    d_packed = torch.ops.mkldnn._reorder_linear_weight(d.t().contiguous())

    def pair() -> None:
        torch.ops.mkldnn._linear_pointwise(a, b_packed, None, "none", [], "")
        torch.ops.mkldnn._linear_pointwise(c, d_packed, None, "none", [], "")

    return _best_gflops(pair, lambda: None, GEMM_PAIR_FLOPS, seconds)


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


def peer_cores() -> int:
    """The cores this process may run on (every peer gets all of them)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def export_onnx(folder: Path, example_texts: list[str]) -> Path:
    """The bundled model as a plain ONNX BERT graph (eager attention: the graph ONNX Runtime's
    optimizer fuses), the last hidden state out; dynamic batch and sequence axes."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from es_infer_nb.models.nlp.embedded import model_path

    class Encoder(torch.nn.Module):  # positional inputs for the exporter, the last hidden state out
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_path()), attn_implementation="eager").eval()
            self.bert.requires_grad_(False)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    tokenizer = AutoTokenizer.from_pretrained(str(model_path()))
    example = tokenizer(example_texts[:4], padding=True, return_tensors="pt")
    onnx_file = folder / "minilm.onnx"
    axes = {n: {0: "batch", 1: "sequence"} for n in [*ONNX_INPUTS, "last_hidden_state"]}
    with torch.no_grad():
        torch.onnx.export(Encoder(), tuple(example[n] for n in ONNX_INPUTS), str(onnx_file), input_names=ONNX_INPUTS,
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
    return onnx_file


class PeerRecipe:
    """sentence-transformers' recipe around an ONNX runtime, all of it inside the timer: tokenize
    every text (truncated at ``max_length``), sort by length, batches of ``batch_size`` padded to
    their longest text, mean pooling over the mask, L2 normalisation; vectors in input order."""

    def __init__(self, texts: list[str], batch_size: int, max_length: int) -> None:
        from transformers import AutoTokenizer

        from es_infer_nb.models.nlp.embedded import model_path

        self.texts, self.batch_size, self.max_length = texts, batch_size, max_length
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path()))

    def batches(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """``(row indices, {input_ids, attention_mask, token_type_ids})`` per batch, longest texts first."""
        import numpy as np

        ids = self.tokenizer(self.texts, truncation=True, max_length=self.max_length, return_attention_mask=False,
                             return_token_type_ids=False)["input_ids"]
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(ids), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = int(lengths[rows].max())
            input_ids = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                input_ids[r, : lengths[i]] = ids[i]
            mask = (np.arange(width)[None, :] < lengths[rows][:, None]).astype(np.int64)
            yield rows, {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}

    @staticmethod
    def pooled(hidden: Any, mask: Any) -> Any:
        import numpy as np

        weights = mask[..., None].astype(np.float32)
        mean = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return mean / np.clip(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12, None)


def ort_session(ort: Any, model_file: Path) -> Any:
    """An ONNX Runtime CPU session over ``model_file``: every graph optimization (``ORT_ENABLE_ALL``),
    intra-op threads = :func:`peer_cores`."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = peer_cores()
    return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])


def onnx_peers(bench: harness.Bench, texts: list[str], folder: Path, batch_size: int, max_length: int,
               dtype: str, int8: bool = False) -> dict[str, harness.Contender]:
    """ONNX Runtime and OpenVINO running the bundled model exported to ONNX, each throughput-tuned;
    {} when neither is installed.

    * ONNX Runtime: every graph optimization (``ORT_ENABLE_ALL``: attention, skip-layer-norm and
      bias-GELU fusions of the plain BERT graph), intra-op threads = the cores; beside an int8 run
      also ``onnxruntime_int8``: the graph quantized by ``onnxruntime.quantization.quantize_dynamic``
      (int8 weights per channel, activations quantized per call), same session options;
    * OpenVINO: ``PERFORMANCE_HINT=THROUGHPUT`` (its CPU streams) and an ``AsyncInferQueue`` of the
      compiled model's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``, pooling in the completion callback;
      ``INFERENCE_PRECISION_HINT`` set explicitly (``f32`` for a float32 run: on AMX CPUs OpenVINO
      runs bf16 unless told, which would make its "fp32" figure a bf16 one; ``bf16`` beside ours in bf16).
    """
    ort = bench.peer("onnxruntime", "onnxruntime")
    ov = bench.peer("openvino", "openvino")
    if ort is None and ov is None:
        return {}
    import numpy as np

    try:
        onnx_file = export_onnx(folder, texts)
    except Exception as exc:  # noqa: BLE001 - no ONNX file: both peers are skipped, noted
        for name, module in (("onnxruntime", ort), ("openvino", ov)):
            if module is not None:
                bench.skip(name, f"ONNX export failed: {type(exc).__name__}: {exc}")
        return {}
    recipe = PeerRecipe(texts, batch_size, max_length)
    cores = peer_cores()
    contenders: dict[str, harness.Contender] = {}
    if ort is not None:
        def ort_contender(model_file: Path) -> harness.Contender:
            """A session over ``model_file`` (warmed up: first-call allocations) run over the recipe."""
            session = ort_session(ort, model_file)

            def run_ort() -> np.ndarray:
                out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
                for rows, feed in recipe.batches():
                    out[rows] = recipe.pooled(session.run(None, feed)[0], feed["attention_mask"])
                return out

            session.run(None, next(recipe.batches())[1])
            return harness.Contender(run_ort, len(texts), "docs")

        contenders["onnxruntime"] = ort_contender(onnx_file)
        bench.notes["onnxruntime"] = (f"onnxruntime {ort.__version__}, ORT_ENABLE_ALL, intra_op_num_threads={cores}, "
                                      f"batches of {batch_size} sorted by length; tokenization and pooling timed")
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            int8_file = folder / "minilm_int8.onnx"
            quantize_dynamic(str(onnx_file), str(int8_file), per_channel=True, weight_type=QuantType.QInt8)
            contenders["onnxruntime_int8"] = ort_contender(int8_file)
            bench.notes["onnxruntime_int8"] = ("quantize_dynamic(per_channel=True, weight_type=QInt8), ORT_ENABLE_ALL, "
                                               f"intra_op_num_threads={cores}; same batches, tokenization and pooling")
    if ov is not None:
        precision = "bf16" if dtype == "bfloat16" else "f32"
        compiled = ov.Core().compile_model(str(onnx_file), "CPU", {
            "PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": precision})
        requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        queue = ov.AsyncInferQueue(compiled, requests)
        ran = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        state: dict[str, np.ndarray] = {}

        def done(request: Any, rows_and_mask: tuple[Any, Any]) -> None:
            rows, mask = rows_and_mask
            state["out"][rows] = recipe.pooled(request.get_output_tensor(0).data, mask)

        queue.set_callback(done)

        def run_ov() -> np.ndarray:
            state["out"] = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
            for rows, feed in recipe.batches():
                queue.start_async(feed, (rows, feed["attention_mask"]))
            queue.wait_all()
            return state["out"]

        run_ov()  # warm-up: first-call allocations, shapes compiled
        bench.notes["openvino_kernels"] = ", ".join(f"{kind} x{n}" for kind, n in openvino_kernels(compiled).items())
        contenders["openvino"] = harness.Contender(run_ov, len(texts), "docs")
        bench.notes["openvino"] = (f"openvino {ov.__version__}, PERFORMANCE_HINT=THROUGHPUT "
                                   f"({compiled.get_property('NUM_STREAMS')} streams), AsyncInferQueue of {requests} "
                                   f"requests, INFERENCE_PRECISION_HINT={precision} (compiled: {ran}); batches of "
                                   f"{batch_size} sorted by length; tokenization and pooling timed")
    return contenders


def openvino_kernels(compiled: Any) -> dict[str, int]:
    """How many of OpenVINO's compiled compute nodes run each kind of kernel (its runtime graph's
    ``primitiveType``, e.g. ``brgemm_avx512_f32``, ``gemm_mlas_f32``, ``jit_avx2_f32``), shape and
    constant nodes left out."""
    counts: dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        kind = info["primitiveType"].astype(str) if "primitiveType" in info else ""
        if kind and not kind.startswith(("unknown", "undef", "ref")):
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


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
    import pandas as pd
    import pyarrow as pa
    import torch
    from sentence_transformers import SentenceTransformer

    import es_infer_nb  # noqa: F401 - registers the .infer accessor
    from es_infer_nb.engine import default_engine
    from es_infer_nb.models.nlp.batching import cpu_streams
    from es_infer_nb.models.nlp.embedded import EmbeddedMiniLM, get_model, model_path
    from es_infer_nb.models.nlp.precision import cpu_capability
    from fma_peak import fma_peak_gflops

    texts = read_texts(args.corpus.resolve(), args.field, args.limit)
    if args.precision is not None:  # the instance Series.infer.run uses
        ours = get_model(args.device, args.precision).load()
    else:
        ours = EmbeddedMiniLM(args.device, quantize=args.quantize, dtype=args.dtype).load()
    reference = SentenceTransformer(str(model_path()), device=args.device, local_files_only=True)

    series = pd.Series(texts, name="text_field")
    deployment = f"bench-embeddings-{ours.precision}"
    if args.precision is not None and args.token_budget is None:
        # a deployment with its inference cache off (ES defaults it to the model's size: repeated
        # rounds of the same texts would be answered from it) in the precision asked for
        started = default_engine().request(
            "POST", f"_ml/trained_models/{ours.model_id}/deployment/_start",
            params={"deployment_id": deployment, "cache_size": "0b", "precision": args.precision,
                    "device": args.device})
        started.raise_for_status()

    def run_ours(part: pd.Series = series) -> np.ndarray:
        if args.precision is None or args.token_budget is not None:  # the older knobs: the model's own embed
            return ours.embed(list(part), progress=False, token_budget=args.token_budget)
        # the public path: Series.infer.run(model, precision=...), vectors read back from its Arrow column
        frame = part.infer.run(deployment, progress=False)
        column = pa.array(frame["ml.inference.predicted_value"].array)
        return column.flatten().to_numpy(zero_copy_only=False).reshape(len(part), -1)

    def run_reference() -> np.ndarray:
        return reference.encode(texts, batch_size=args.st_batch_size, convert_to_numpy=True, show_progress_bar=False)

    run_ours(series[:64])  # first-call allocations, lazy initialisation, the engine's deployment
    reference.encode(texts[:64], batch_size=args.st_batch_size, show_progress_bar=False)
    dtype = (PRECISION_PEER_DTYPE.get(ours.precision, "float32") if args.precision is not None
             else str(ours.dtype).replace("torch.", ""))
    contenders = {"ours": harness.Contender(run_ours, len(texts), "docs"),
                  "sentence_transformers": harness.Contender(run_reference, len(texts), "docs")}
    with tempfile.TemporaryDirectory(prefix="bench-embeddings-") as tmp:
        if ours.device == "cpu":
            contenders.update(onnx_peers(bench, texts, Path(tmp), args.st_batch_size, reference.max_seq_length,
                                         dtype, int8=ours.precision == "int8" or args.quantize == "int8"))
        else:
            for peer in ("onnxruntime", "openvino"):
                bench.skip(peer, "CPU peers; this run is on " + ours.device)
        t = bench.rounds(contenders)

    def cosines(name: str) -> np.ndarray:
        return row_cosines(t.last[name], t.last["sentence_transformers"])

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
    if "onnxruntime_int8" in t.last:  # its own precision, reported beside ours (a peer's, so not fatal)
        bench.notes["onnxruntime_int8"] += f"; min cosine vs sentence-transformers {float(cosines('onnxruntime_int8').min()):.4f}"
        bench.compare("ours", "onnxruntime_int8")

    lengths = [len(ids) for ids in ours.tokenize(texts)]
    tokens = sum(lengths)
    per_token = flops_per_token(ours._encoder, lengths)
    tokens_per_s = tokens / t.median("ours")
    # the anchor GEMM in the dtype the projections run in (a bf16 CPU model keeps float32 weights elsewhere)
    gemm_dtype = torch.bfloat16 if ours.mixed_bf16 else ours.dtype if not ours.quantize else torch.float32
    gemm = gemm_gflops(ours.device, gemm_dtype)
    achieved = tokens_per_s * per_token / 1e9
    onednn = onednn_gemm_gflops() if ours.device == "cpu" else None
    streams = cpu_streams() if ours.device == "cpu" else 1
    concurrent = concurrent_gemm_gflops(streams, gemm_dtype) if streams > 1 else gemm
    # the hardware's own ceiling on the streams' cores (fma_peak.py): no engine's GEMMs pass it
    peak_kind = "bf16_dot" if ours.mixed_bf16 else "fp32"
    peak = fma_peak_gflops(streams, bf16=ours.mixed_bf16) if ours.device == "cpu" else None
    # every contender's useful work (the same FLOPs per real token, padding not counted) as a share of
    # the GEMM anchor, and the share a goal asks of ours: goal ratio x the peer's share. A goal whose
    # share is near or above 1 cannot be met at this GEMM rate by any engine doing the same FLOPs.
    rates = {name: tokens / t.median(name) * per_token / 1e9 for name in t.last}  # useful GFLOP/s
    goals = {peer: ratio for peer, ratio in GOALS.get(ours.precision, {}).items() if peer in rates}
    shares = {name: round(rate / gemm, 3) for name, rate in rates.items()}
    needs = {peer: round(ratio * rates[peer] / gemm, 3) for peer, ratio in goals.items()}
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
        "shares_of_gemm_limit": shares,
        "goals": GOALS.get(ours.precision, {}),
        "goal_needs_share_of_gemm_limit": needs,
        # the same two GEMMs on each of our streams' cores at once, one thread each: the rate GEMM-bound
        # streams can reach (ours and OpenVINO's); a goal needing more than 1.0 of it is out of reach
        "concurrent_gemm_gflops": round(concurrent, 1),
        "goal_needs_share_of_concurrent_gemm": {peer: round(ratio * rates[peer] / concurrent, 3)
                                                for peer, ratio in goals.items()},
        "share_of_concurrent_gemm": round(achieved / concurrent, 3),
        # diagnostic only (the anchor above is torch's matmul, i.e. MKL's sgemm on CPU): the same
        # GEMMs through oneDNN, which the float32 CPU projections use
        "onednn_gemm_gflops": None if onednn is None else round(onednn, 1),
        "share_of_onednn_gemm": None if onednn is None else round(achieved / onednn, 3),
        # every contender's useful FLOP/s over this CPU's vector FMA peak on the streams' cores (float32
        # FMAs, or AVX512-BF16's dot products for bf16: AMX tiles go past that one), and what each goal
        # asks of ours: near or above 1, out of reach of any engine doing these FLOPs on this CPU
        "fma_peak": None if peak is None else {"kind": peak_kind, "threads": streams, "gflops": round(peak, 1)},
        "shares_of_fma_peak": None if peak is None else {name: round(rate / peak, 3) for name, rate in rates.items()},
        "goal_needs_share_of_fma_peak": None if peak is None else {
            peer: round(ratio * rates[peer] / peak, 3) for peer, ratio in goals.items()},
        "token_budget": args.token_budget or ours.token_budget,
        # ISA caps (an AVX2-class CPU simulated on a newer one) and what precision "auto" saw
        "isa_caps": {name: os.environ.get(name) for name in ISA_CAPS},
        "precision_probe": cpu_capability().describe(),
    })
    sys.stdout.flush()


if __name__ == "__main__":
    harness.clean_environment()  # before numpy loads: re-executes without the OPENBLAS overrides
    main()
