"""Feature importance: es_infer_nb's TreeSHAP vs ``shap.TreeExplainer(...).shap_values``, same run.

20,000 rows of the model of benchmarks/trees.py (XGBoost regressor, 100 trees, depth 6,
20 features), path-dependent TreeSHAP on both sides. Prints one JSON line with rows/s,
the ratio, and the largest difference between the two sets of values.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from _common import best_of, float32_rows, model_arguments, prepare_environment, report, xgboost_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    model_arguments(parser)
    parser.add_argument("--shap-rows", type=int, default=5_000, help="rows timed for shap (its rate is per row)")
    args = parser.parse_args()
    removed = prepare_environment()

    import shap
    import torch

    import es_infer_nb
    from es_infer_nb.models.runner import load_model

    model, names, rng = xgboost_model(args)
    x = float32_rows(rng, args.rows, args.features)

    engine = es_infer_nb.Engine()
    engine.import_model("bench-xgb", model, names)
    tree_model = load_model(engine, "bench-xgb", args.device)
    tree_model.importance(x[:10])  # builds the path tables once

    ours_values = tree_model.importance(x)[:, :, 0]
    t_ours = best_of(lambda: tree_model.importance(x), repeat=2)

    explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
    sample = x[: args.shap_rows].astype(np.float32)
    theirs = explainer.shap_values(sample)
    t_shap = best_of(lambda: explainer.shap_values(sample), repeat=1) * (args.rows / len(sample))

    frame = pd.DataFrame(x[:1000], columns=names)
    api = frame.infer.run("bench-xgb", engine=engine, inference_config={
        "regression": {"num_top_feature_importance_values": args.features}}, progress=False)
    report("feature_importance", {
        "rows": args.rows, "trees": args.trees, "depth": args.depth, "device": args.device,
        "es_infer_nb_rows_per_s": round(args.rows / t_ours), "shap_tree_explainer_rows_per_s": round(args.rows / t_shap),
        "ratio": round(t_shap / t_ours, 3),
        "max_abs_diff_vs_shap": float(np.max(np.abs(ours_values[: len(sample)] - theirs))),
        "api_rows_checked": len(api), "openblas_vars_unset": removed, "cuda_available": torch.cuda.is_available(),
    })


if __name__ == "__main__":
    main()
