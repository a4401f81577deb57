"""Tree ensemble inference: es_infer_nb vs xgboost ``Booster.inplace_predict``, same run, same data.

1,000,000 rows x 20 features; an XGBoost regressor of 100 trees of depth 6, imported into
es_infer_nb the way eland does it. Prints one JSON line with both rows/s figures and the ratio.
Usage: python benchmarks/trees.py [--rows N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from _common import best_of, prepare_environment, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    removed = prepare_environment()

    import torch
    import xgboost as xgb

    import es_infer_nb

    rng = np.random.default_rng(42)
    names = [f"f{i}" for i in range(args.features)]
    x_train = rng.normal(size=(50_000, args.features))
    y_train = x_train[:, 0] * 2 + np.sin(x_train[:, 1]) * x_train[:, 2] + rng.normal(scale=0.1, size=50_000)
    model = xgb.XGBRegressor(n_estimators=args.trees, max_depth=args.depth, learning_rate=0.1, tree_method="hist")
    model.fit(x_train, y_train)
    booster = model.get_booster()

    # float32-representable data: xgboost compares in float32, Elasticsearch (and we) in float64
    x = rng.normal(size=(args.rows, args.features)).astype(np.float32).astype(np.float64)
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
    t_ours = best_of(ours)
    t_xgb = best_of(lambda: booster.inplace_predict(x32))
    report("trees", {
        "rows": args.rows, "features": args.features, "trees": args.trees, "depth": args.depth,
        "device": args.device, "es_infer_nb_rows_per_s": round(args.rows / t_ours),
        "xgboost_inplace_predict_rows_per_s": round(args.rows / t_xgb), "ratio": round(t_xgb / t_ours, 3),
        "max_abs_diff_vs_xgboost": agree, "openblas_vars_unset": removed,
        "cuda_available": torch.cuda.is_available(),
    })


if __name__ == "__main__":
    main()
