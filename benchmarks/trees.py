"""Tree ensemble inference: es_infer_nb vs xgboost ``Booster.inplace_predict``, same run, same data.

1,000,000 rows x 20 features; an XGBoost regressor of 100 trees of depth 6, imported into
es_infer_nb the way eland does it. Prints one JSON line with both rows/s figures and the ratio.
Usage: python benchmarks/trees.py [--rows N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from _common import best_of_interleaved, float32_rows, model_arguments, prepare_environment, report, xgboost_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    model_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    removed = prepare_environment()

    import torch

    import es_infer_nb

    model, names, rng = xgboost_model(args)
    booster = model.get_booster()

    x = float32_rows(rng, args.rows, args.features)
    frame = pd.DataFrame(x, columns=names)
    engine = es_infer_nb.Engine()
    engine.import_model("bench-xgb", model, names)

    def ours() -> pd.DataFrame:
        return frame.infer.run("bench-xgb", engine=engine, device=args.device, batch_size=args.batch_size,
                               progress=False)

    result = ours()  # warm-up: loads the model and compiles the tree walk once
    x32 = x.astype(np.float32)
    theirs = booster.inplace_predict(x32)
    agree = float(np.max(np.abs(result["ml.inference.predicted_value"].to_numpy() - theirs)))
    best = best_of_interleaved({"ours": ours, "xgboost": lambda: booster.inplace_predict(x32)})
    t_ours, t_xgb = best["ours"], best["xgboost"]
    report("trees", {
        "rows": args.rows, "features": args.features, "trees": args.trees, "depth": args.depth,
        "device": args.device, "es_infer_nb_rows_per_s": round(args.rows / t_ours),
        "xgboost_inplace_predict_rows_per_s": round(args.rows / t_xgb), "ratio": round(t_xgb / t_ours, 3),
        "max_abs_diff_vs_xgboost": agree, "openblas_vars_unset": removed,
        "cuda_available": torch.cuda.is_available(),
    })


if __name__ == "__main__":
    main()
