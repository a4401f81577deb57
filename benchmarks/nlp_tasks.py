"""NLP tasks through our path vs transformers' ``pipeline(task, batch_size=32)``: text_classification and ner.

A local random-weight BERT (6 layers (2 with ``--quick``), hidden 384, 12 heads, FFN 1536: MiniLM's shape; the
vocabulary and tokenizer of the bundled all-MiniLM-L6-v2; seeded, saved into a temporary folder,
nothing downloaded) with a sequence-classification head (3 labels) and a token-classification
head (IOB tags ``O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC``), its classifier weights scaled up so
that random logits are far apart (no near-ties for float rounding to flip). Each is imported with
``Engine.import_hf_model`` and run by a deployment (``cache_size=0b``: no answers from ES's
inference cache across rounds, ``precision`` from ``--precision``, default fp32) through
``pd.Series(texts).infer.run(<deployment>)``: the results are read back from the frame's columns
as Elasticsearch renders them (``predicted_value`` / ``prediction_probability``; ``entities``).
The peer is ``transformers.pipeline(task, model=<the same folder>, batch_size=32)`` on the same
texts (``text-classification``; ``token-classification`` with ``aggregation_strategy="average"``:
word pieces averaged as ES's NER does, entities grouped as ES groups them). Both sides are timed
end to end (tokenization, batching, the network, post-processing, results). Checks (fatal): every
text's label equal and its probability within 1e-4; every text's entities equal (class, start,
end) and their probabilities within 1e-4.

Usage: python benchmarks/nlp_tasks.py [--limit N] [--rounds N] [--precision fp32] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import harness
from embeddings import DEFAULT_CORPUS, read_texts

TASKS = ("text_classification", "ner")
CLASS_LABELS = ["negative", "neutral", "positive"]
NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
PIPELINE_TASK = {"text_classification": "text-classification", "ner": "token-classification"}
SCORE_TOLERANCE = 1e-4
#: the classifier's random weights times this: logits spread far beyond float rounding
LOGIT_SCALE = 8.0


def build_model(folder: Path, task: str, seed: int = 0, layers: int = 6) -> Path:
    """A random-weight MiniLM-shaped BERT with ``task``'s head and the bundled MiniLM tokenizer."""
    import torch
    import transformers

    from es_infer_nb.models.nlp.embedded import model_path

    torch.manual_seed(seed)
    labels = CLASS_LABELS if task == "text_classification" else NER_LABELS
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_path()))
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=384, num_hidden_layers=layers, num_attention_heads=12,
        intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2,
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    cls = transformers.BertForSequenceClassification if task == "text_classification" \
        else transformers.BertForTokenClassification
    model = cls(config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(LOGIT_SCALE)
    out = folder / task
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def ours_runner(engine: Any, folder: Path, task: str, precision: str) -> tuple[str, Any]:
    """Import ``folder`` for ``task``, start a cache-less deployment; returns its id and a runner of
    ``Series.infer.run`` on it giving the frame Elasticsearch's results make."""
    import pandas as pd

    model_id = f"bench-{task.replace('_', '-')}"
    engine.import_hf_model(str(folder), task, model_id)
    deployment = f"{model_id}-{precision}"
    engine.request("POST", f"_ml/trained_models/{model_id}/deployment/_start",
                   params={"deployment_id": deployment, "cache_size": "0b", "precision": precision}
                   ).raise_for_status()

    def run(texts: list[str]) -> pd.DataFrame:
        return pd.Series(texts, name="text_field").infer.run(deployment, engine=engine, progress=False)

    return deployment, run


def ours_answers(task: str, frame: Any) -> list[Any]:
    """Per text: ``(label, probability)`` or the list of ``(class, start, end, probability)``."""
    if task == "text_classification":
        labels = frame["ml.inference.predicted_value"].tolist()
        scores = frame["ml.inference.prediction_probability"].tolist()
        return list(zip(labels, scores))
    return [[(e["class_name"], e["start_pos"], e["end_pos"], e["class_probability"]) for e in (row or [])]
            for row in frame["ml.inference.entities"].tolist()]


def peer_answers(task: str, out: list[Any]) -> list[Any]:
    if task == "text_classification":
        return [(row["label"], row["score"]) for row in out]
    return [[(e["entity_group"], e["start"], e["end"], e["score"]) for e in row] for row in out]


def compare(task: str, ours: list[Any], peer: list[Any]) -> tuple[int, float]:
    """Texts whose labels / entity spans differ, and the largest probability difference elsewhere."""
    mismatched, worst = 0, 0.0
    for a, b in zip(ours, peer):
        if task == "text_classification":
            a, b = [a], [b]
        if len(a) != len(b) or any(x[:-1] != y[:-1] for x, y in zip(a, b)):
            mismatched += 1
            continue
        worst = max([worst, *(abs(float(x[-1]) - float(y[-1])) for x, y in zip(a, b))])
    return mismatched + abs(len(ours) - len(peer)), worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--limit", type=int, default=None, help="only the first N texts of the corpus")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"],
                        help="ours (the answers are checked against the float32 pipeline within 1e-4: fp32)")
    parser.add_argument("--tasks", default=",".join(TASKS))
    harness.add_arguments(parser)
    args = parser.parse_args()
    layers = 6
    if args.quick:  # a smoke run: 32 texts (one pipeline batch), a 2-layer model
        args.limit = min(args.limit or 32, 32)
        layers = 2
    tasks = [t for t in args.tasks.split(",") if t]
    bench = harness.Bench("nlp_tasks", args, {"tasks": tasks, "precision": args.precision})

    import transformers

    import es_infer_nb  # noqa: F401 - registers the .infer accessor
    from es_infer_nb.engine import Engine

    transformers.logging.set_verbosity_error()
    texts = read_texts(args.corpus.resolve(), None, args.limit)
    engine = Engine()
    contenders: dict[str, harness.Contender] = {}
    with tempfile.TemporaryDirectory(prefix="bench-nlp-tasks-") as tmp:
        for task in tasks:
            folder = build_model(Path(tmp), task, layers=layers)
            _, run = ours_runner(engine, folder, task, args.precision)
            options = {"aggregation_strategy": "average"} if task == "ner" else {}
            pipe = transformers.pipeline(PIPELINE_TASK[task], model=str(folder), tokenizer=str(folder), device="cpu",
                                         batch_size=32, **options)
            run(texts[:32])  # warm-up: the deployment loads the model
            pipe(texts[:32])
            contenders[f"ours_{task}"] = harness.Contender(lambda run=run: run(texts), len(texts), "docs")
            contenders[f"pipeline_{task}"] = harness.Contender(lambda pipe=pipe: pipe(texts), len(texts), "docs")
        t = bench.rounds(contenders)
    for task in tasks:
        ours, peer = ours_answers(task, t.last[f"ours_{task}"]), peer_answers(task, t.last[f"pipeline_{task}"])
        mismatched, worst = compare(task, ours, peer)
        what = "labels" if task == "text_classification" else "entities (class, start, end)"
        bench.check(f"{task}: texts whose {what} differ from the pipeline's", mismatched, 0)
        bench.check(f"{task}: max abs probability diff vs the pipeline", round(worst, 8), SCORE_TOLERANCE)
        bench.compare(f"ours_{task}", f"pipeline_{task}")
    entities = sum(len(row) for row in ours_answers("ner", t.last["ours_ner"])) if "ner" in tasks else None
    bench.report({"docs": len(texts), "model": f"random-weight BERT, {layers} layers, hidden 384, 12 heads, MiniLM vocabulary",
                  "pipeline_batch_size": 32, "entities_found": entities,
                  "transformers": transformers.__version__})
    sys.stdout.flush()


if __name__ == "__main__":
    harness.clean_environment()  # before numpy loads: re-executes without the OPENBLAS overrides
    main()
