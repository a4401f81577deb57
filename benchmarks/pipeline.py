"""Ingest pipeline over a DataFrame: ``df.infer.pipeline`` vs document-at-a-time, same run, same pipeline.

1,000,000 rows (20 float features, a numeric string, a note) through a stored 6-processor pipeline:
``set`` (constant), ``rename``, ``convert`` (string -> integer), ``inference`` (an XGBoost regressor of
100 trees of depth 6, imported as eland does it), ``remove``, and a ``set`` guarded by
``if: ctx.ml?.price?.predicted_value > 1.0``.

* ours: ``df.infer.pipeline("bench-pipe")`` over the whole frame (column-at-a-time);
* anchor: the way a cluster's ingest node walks documents: each document (the row's ``_source``, as
  a bulk request carries it) through each processor in turn, one model call per document
  (``run_pipeline`` with a batch of one). It is timed on the first ``--anchor-docs`` rows (default
  5,000) and its rate taken per document; the same rows' results of both are compared;
* reference: the model call alone over the same columns (the bound for any pipeline around it).

All three take turns in interleaved rounds (``--rounds``); the JSON line has each one's median and
best docs/s, the ratios of medians, and the checks (fatal): the anchor's predictions vs ours on the
same rows (max abs difference, bound printed), the ``if``-guarded flags equal, no failed documents.
Usage: python benchmarks/pipeline.py [--rows N] [--anchor-docs N] [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

import harness
from _common import float32_rows, model_arguments, quick_sizes, xgboost_model

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

BOUND_VS_DOC_AT_A_TIME = 1e-9  # the same model, one row at a time: the same float64 sums

PIPELINE = {
    "description": "benchmarks/pipeline.py",
    "processors": [
        {"set": {"field": "ingest_source", "value": "benchmark"}},
        {"rename": {"field": "raw_f19", "target_field": "f19"}},
        {"convert": {"field": "count", "type": "integer"}},
        {"inference": {"model_id": "bench-xgb", "target_field": "ml.price"}},
        {"remove": {"field": "note"}},
        {"set": {"if": "ctx.ml?.price?.predicted_value > 1.0", "field": "flag", "value": "high"}},
    ],
}


def frame(rng: np.random.Generator, rows: int, names: list[str]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    x = float32_rows(rng, rows, len(names))
    df = pd.DataFrame(x, columns=[*names[:-1], "raw_" + names[-1]])
    df["count"] = pd.array(rng.integers(0, 100_000, rows).astype(str), dtype="str")
    df["note"] = pd.array(np.where(rng.random(rows) < 0.5, "imported", "manual"), dtype="str")
    return df


def doc_at_a_time(engine: object, sources: list[dict], labels: list[str]) -> list:
    """Each document through the stored pipeline on its own: one model call per document."""
    from es_infer_nb.ingest.document import Doc, clone
    from es_infer_nb.ingest.pipeline import Run, parse_pipeline, run_pipeline
    from es_infer_nb.ingest.simulate import ingest_timestamp

    compiled = parse_pipeline(engine.pipelines.get("bench-pipe"), engine, "bench-pipe")  # type: ignore[attr-defined]
    out = []
    for src, label in zip(sources, labels):
        data = clone(src)
        data.update({"_index": "_index", "_id": label, "_version": "-3"})
        doc = Doc(data, {"timestamp": ingest_timestamp()})
        (failure,) = run_pipeline(compiled, [doc], Run(engine), "bench-pipe")  # type: ignore[arg-type]
        out.append((doc, failure))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--anchor-docs", type=int, default=5_000)
    model_arguments(parser)
    harness.add_arguments(parser)
    args = parser.parse_args()
    quick_sizes(args, rows=5_000, anchor_docs=300)
    os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars in the timed runs
    bench = harness.Bench("pipeline", args, {
        "rows": args.rows, "anchor_docs": args.anchor_docs, "processors": len(PIPELINE["processors"]),
        "trees": args.trees, "depth": args.depth, "train_rows": args.train_rows})

    import numpy as np
    import pandas as pd

    import es_infer_nb
    from es_infer_nb.models.runner import run_tree
    from es_infer_nb.frames.pipeline import frame_sources

    model, names, rng = xgboost_model(args)
    engine = es_infer_nb.Engine()
    engine.import_model("bench-xgb", model, names)
    assert engine.request("PUT", "_ingest/pipeline/bench-pipe", PIPELINE).status == 200
    df = frame(rng, args.rows, names)
    sample = df.iloc[: args.anchor_docs]
    sources = frame_sources(sample)
    labels = [str(label) for label in sample.index]
    features = {name: df[name].to_numpy() for name in names[:-1]}
    features[names[-1]] = df["raw_" + names[-1]].to_numpy()

    def ours() -> pd.DataFrame:
        return df.infer.pipeline("bench-pipe", engine=engine)

    def model_only() -> None:  # the bound: the model call alone over the same columns
        run_tree(engine, "bench-xgb", dict(features), args.rows, progress=False)

    ours()  # warm-up: loads the model, compiles the tree walk
    doc_at_a_time(engine, sources[:100], labels[:100])
    model_only()
    t = bench.rounds({
        "ours": harness.Contender(ours, args.rows, "docs"),
        "doc_at_a_time": harness.Contender(lambda: doc_at_a_time(engine, sources, labels), len(sources), "docs"),
        "model_call_alone": harness.Contender(model_only, args.rows, "docs"),
    })
    out, anchor = t.last["ours"], t.last["doc_at_a_time"]
    theirs = np.array([doc.data["ml"]["price"]["predicted_value"] for doc, _ in anchor])
    mine = out["ml.price.predicted_value"].to_numpy()[: len(sources)]
    bench.check("failed documents (doc at a time)", int(sum(f is not None for _, f in anchor)), 0)
    bench.check("max_abs_diff ours vs doc_at_a_time", float(np.max(np.abs(mine - theirs))), BOUND_VS_DOC_AT_A_TIME)
    bench.check("if-guarded flag equal to doc_at_a_time", [doc.data.get("flag") for doc, _ in anchor] == [
        None if pd.isna(v) else v for v in out["flag"].tolist()[: len(sources)]])
    bench.compare("ours", "doc_at_a_time", note="the anchor timed on anchor_docs, rate per document")
    bench.compare("ours", "model_call_alone", note="the reference: the model call alone, no pipeline around it")
    bench.report({"goal": {"ratio_vs_doc_at_a_time": 50, "docs_per_s": 300_000}})


if __name__ == "__main__":
    harness.clean_environment()  # before numpy loads: re-executes without the OPENBLAS overrides
    main()
