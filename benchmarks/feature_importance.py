"""Feature importance: es_infer_nb's TreeSHAP vs ``shap.TreeExplainer`` and fasttreeshap (v2), same run.

The model of benchmarks/trees.py (XGBoost regressor, 100 trees of depth 6, 20 features);
path-dependent TreeSHAP everywhere. Ours runs over ``--rows`` (20,000) rows; shap and fasttreeshap
(``algorithm="v2"``, all cores) over the first ``--shap-rows`` (5,000) of them, their rates taken per
row. All take turns in interleaved rounds (``--rounds``); the JSON line has each one's median and
best rows/s, the ratios of medians, and the checks (fatal past the printed bound): ours vs shap and
fasttreeshap vs shap (max abs difference of the SHAP values), and the ``_infer`` answer's
``feature_importance`` for the first 1,000 rows vs the same values.
Usage: python benchmarks/feature_importance.py [--rows N] [--shap-rows N] [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import os

import harness
from _common import float32_rows, model_arguments, quick_sizes, xgboost_model

BOUND_VS_SHAP = 1e-4  # shap and fasttreeshap add in float32 (XGBoost's leaf values), we in float64
API_ROWS = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    model_arguments(parser)
    parser.add_argument("--shap-rows", type=int, default=5_000, help="rows timed for shap (its rate is per row)")
    harness.add_arguments(parser)
    args = parser.parse_args()
    quick_sizes(args, rows=2_000, shap_rows=500)
    bench = harness.Bench("feature_importance", args, {
        "rows": args.rows, "shap_rows": args.shap_rows, "features": args.features, "trees": args.trees,
        "depth": args.depth, "train_rows": args.train_rows, "device": args.device})

    import numpy as np
    import pandas as pd
    import shap

    import es_infer_nb
    from es_infer_nb.models.runner import load_model

    model, names, rng = xgboost_model(args)
    x = float32_rows(rng, args.rows, args.features)
    sample = x[: args.shap_rows].astype(np.float32)

    engine = es_infer_nb.Engine()
    engine.import_model("bench-xgb", model, names)
    tree_model = load_model(engine, "bench-xgb", args.device)

    explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
    explainer.shap_values(sample[:10])
    contenders = {
        "ours": harness.Contender(lambda: tree_model.importance(x)[:, :, 0], args.rows),
        "shap": harness.Contender(lambda: explainer.shap_values(sample), len(sample)),
    }
    fasttreeshap = bench.peer("fasttreeshap", "fasttreeshap_fixed") or bench.peer("fasttreeshap", "fasttreeshap")
    if fasttreeshap is not None:
        bench.peers_skipped.pop("fasttreeshap", None)
        try:
            fast = fasttreeshap.TreeExplainer(model, feature_perturbation="tree_path_dependent", algorithm="v2",
                                              n_jobs=os.cpu_count() or 1)
            fast.shap_values(sample[:10])
            contenders["fasttreeshap"] = harness.Contender(lambda: fast.shap_values(sample), len(sample))
        except Exception as exc:  # noqa: BLE001 - a peer that cannot read the model is skipped, noted
            bench.skip("fasttreeshap", f"failed on this model: {type(exc).__name__}: {exc}")
    tree_model.importance(x[:10])  # warm-up: builds the path tables once
    t = bench.rounds(contenders)

    ours, theirs = t.last["ours"], t.last["shap"]
    bench.check("max_abs_diff ours vs shap", float(np.max(np.abs(ours[: len(sample)] - theirs))), BOUND_VS_SHAP)
    bench.compare("ours", "shap", note="shap timed on shap_rows, rate per row")
    if "fasttreeshap" in t.last:
        bench.check("max_abs_diff fasttreeshap vs shap", float(np.max(np.abs(t.last["fasttreeshap"] - theirs))),
                    BOUND_VS_SHAP)
        bench.compare("ours", "fasttreeshap", note="fasttreeshap v2 timed on shap_rows, rate per row")

    api_rows = min(API_ROWS, args.rows)
    api = pd.DataFrame(x[:api_rows], columns=names).infer.run("bench-xgb", engine=engine, inference_config={
        "regression": {"num_top_feature_importance_values": args.features}}, progress=False)
    got = np.zeros((api_rows, args.features))
    column = {name: j for j, name in enumerate(names)}
    for i, entries in enumerate(api["ml.inference.feature_importance"]):
        for entry in entries:
            got[i, column[entry["feature_name"]]] = entry["importance"]
    bench.check("max_abs_diff _infer feature_importance vs ours", float(np.max(np.abs(got - ours[:api_rows]))), 1e-9)
    import torch

    bench.report({"api_rows_checked": api_rows, "cuda_available": torch.cuda.is_available(),
                  "shap_version": shap.__version__})


if __name__ == "__main__":
    harness.clean_environment()  # before numpy loads: re-executes without the OPENBLAS overrides
    main()
