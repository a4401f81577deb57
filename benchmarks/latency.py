"""Single-text latency: one sentence per call, calls one after another (a notebook's ``_infer``).

Each contender embeds the first ``--limit`` texts of ``benchmarks/data/corpus.jsonl`` (default 200)
with one call per text, in interleaved rounds; the JSON line gives every contender's median calls/s
and ``median_ms_per_call`` (median round seconds / texts), the ratio of medians, and the min cosine
of each against sentence-transformers (fatal below 0.9999 for float32 and bfloat16 runs alike,
issue 22's bound for bf16).

* ours: ``POST _ml/trained_models/<deployment>/_infer`` with one document, through the engine (the
  REST layer, the deployment's queue and worker, tokenization, the encoder, pooling, the ES answer),
  on deployments started with ``precision`` fp32 and, where the CPU runs bf16 natively, bf16
  (``cache_size=0b``: no answers from ES's inference cache);
* sentence-transformers: ``encode([text])`` (float32);
* where installed (the ``bench`` extra): the same model exported to ONNX, run one text per call by
  ONNX Runtime (all graph optimizations, intra-op threads = the cores) and by OpenVINO
  (``PERFORMANCE_HINT=LATENCY``, ``INFERENCE_PRECISION_HINT`` f32, and bf16 beside our bf16), each
  with the sentence-transformers recipe around it (tokenizer, mean pooling, L2 norm) inside the timer.

Usage: python benchmarks/latency.py [--limit N] [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any, Callable

import harness

DEFAULT_LIMIT = 200
MIN_COSINE = 0.9999


def sequential(texts: list[str], one: Callable[[str], Any]) -> Callable[[], Any]:
    """A contender's call: ``one(text)`` for every text in turn; the vectors stacked."""
    import numpy as np

    def run() -> Any:
        return np.stack([np.asarray(one(text), dtype=np.float32).reshape(-1) for text in texts])

    return run


def onnx_contenders(bench: harness.Bench, texts: list[str], folder: Path, max_length: int,
                    bf16: bool) -> dict[str, harness.Contender]:
    """ONNX Runtime and OpenVINO, one text per call (see the module's notes); {} when neither is installed."""
    import embeddings

    ort = bench.peer("onnxruntime", "onnxruntime")
    ov = bench.peer("openvino", "openvino")
    if ort is None and ov is None:
        return {}
    onnx_file = embeddings.export_onnx(folder, texts)
    recipe = embeddings.PeerRecipe(texts, 1, max_length)

    def feed(text: str) -> dict[str, Any]:
        import numpy as np

        ids = np.asarray([recipe.tokenizer(text, truncation=True, max_length=max_length)["input_ids"]], dtype=np.int64)
        return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}

    contenders: dict[str, harness.Contender] = {}
    if ort is not None:
        session = embeddings.ort_session(ort, onnx_file)

        def ort_one(text: str) -> Any:
            inputs = feed(text)
            return recipe.pooled(session.run(None, inputs)[0], inputs["attention_mask"])

        ort_one(texts[0])
        contenders["onnxruntime"] = harness.Contender(sequential(texts, ort_one), len(texts), "calls")
        bench.notes["onnxruntime"] = f"onnxruntime {ort.__version__}, ORT_ENABLE_ALL, one text per session.run"
    if ov is not None:
        core = ov.Core()
        for precision in ("f32", "bf16") if bf16 else ("f32",):
            compiled = core.compile_model(str(onnx_file), "CPU", {
                "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision})
            request = compiled.create_infer_request()

            def ov_one(text: str, request: Any = request) -> Any:
                inputs = feed(text)
                return recipe.pooled(request.infer(inputs)[0], inputs["attention_mask"])

            ov_one(texts[0])
            name = f"openvino_{precision}"
            contenders[name] = harness.Contender(sequential(texts, ov_one), len(texts), "calls")
            bench.notes[name] = (f"openvino {ov.__version__}, PERFORMANCE_HINT=LATENCY, INFERENCE_PRECISION_HINT="
                                 f"{precision} (compiled: {compiled.get_property('INFERENCE_PRECISION_HINT')}), "
                                 "one synchronous request per text")
    return contenders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="texts (one call each) per round")
    harness.add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.limit = min(args.limit, 20)
    bench = harness.Bench("latency", args, {"texts": args.limit})

    from sentence_transformers import SentenceTransformer

    from embeddings import DEFAULT_CORPUS, read_texts, row_cosines
    from es_infer_nb.engine import Engine
    from es_infer_nb.models.nlp.embedded import model_path
    from es_infer_nb.models.nlp.precision import bf16_supported

    texts = read_texts(DEFAULT_CORPUS, None, args.limit)
    engine = Engine()
    model_id = "sentence-transformers__all-minilm-l6-v2"
    ours = ["fp32", "bf16"] if bf16_supported() else ["fp32"]
    contenders: dict[str, harness.Contender] = {}
    for precision in ours:
        deployment = f"latency-{precision}"
        engine.request("POST", f"_ml/trained_models/{model_id}/deployment/_start", params={
            "deployment_id": deployment, "cache_size": "0b", "precision": precision}).raise_for_status()

        def infer(text: str, deployment: str = deployment) -> Any:
            answer = engine.request("POST", f"_ml/trained_models/{deployment}/_infer",
                                    body={"docs": [{"text_field": text}]})
            answer.raise_for_status()
            return answer.body["inference_results"][0]["predicted_value"]

        infer(texts[0])  # loads the model, starts the worker
        contenders[f"ours_{precision}"] = harness.Contender(sequential(texts, infer), len(texts), "calls")
    reference = SentenceTransformer(str(model_path()), device="cpu", local_files_only=True)
    reference.encode(texts[:1])
    contenders["sentence_transformers"] = harness.Contender(
        sequential(texts, lambda text: reference.encode([text], show_progress_bar=False)), len(texts), "calls")
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        contenders.update(onnx_contenders(bench, texts, Path(tmp), reference.max_seq_length, "bf16" in ours))
        t = bench.rounds(contenders)

    for name in contenders:
        if name != "sentence_transformers":
            cosine = row_cosines(t.last[name], t.last["sentence_transformers"])
            bench.check(f"min cosine {name} vs sentence_transformers", round(float(cosine.min()), 7), MIN_COSINE,
                        at_least=True)
    bench.compare("ours_fp32", "sentence_transformers")
    for peer in ("onnxruntime", "openvino_f32"):
        if peer in t.last:
            bench.compare("ours_fp32", peer)
    if "ours_bf16" in t.last:
        bench.compare("ours_bf16", "sentence_transformers")
        if "openvino_bf16" in t.last:
            bench.compare("ours_bf16", "openvino_bf16")
    bench.report({"median_ms_per_call": {name: round(1000 * t.median(name) / len(texts), 3) for name in contenders}})


if __name__ == "__main__":
    harness.clean_environment()  # before numpy loads: re-executes without the OPENBLAS overrides
    main()
