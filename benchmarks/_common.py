"""Shared model and data for the tree benchmarks (timing, checks and the JSON line live in harness.py)."""

from __future__ import annotations

from typing import Any


def model_arguments(parser: Any) -> None:
    """The arguments shared by the tree benchmarks (one XGBoost regressor)."""
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--train-rows", type=int, default=50_000)
    parser.add_argument("--device", default="cpu")


def quick_sizes(args: Any, **sizes: int) -> None:
    """With ``--quick``: the given sizes (e.g. rows=2000) and a small model, for a smoke run."""
    if not getattr(args, "quick", False):
        return
    for name, value in sizes.items():
        setattr(args, name, value)
    for name, value in {"trees": 20, "depth": 4, "train_rows": 3_000}.items():
        if hasattr(args, name):
            setattr(args, name, value)


def training_data(args: Any) -> tuple[Any, Any, list[str], Any]:
    """(x_train, y_train, feature names, rng): ``--train-rows`` rows, fixed seed."""
    import numpy as np

    rng = np.random.default_rng(42)
    names = [f"f{i}" for i in range(args.features)]
    x_train = rng.normal(size=(args.train_rows, args.features))
    y_train = (x_train[:, 0] * 2 + np.sin(x_train[:, 1]) * x_train[:, 2]
               + rng.normal(scale=0.1, size=args.train_rows))
    return x_train, y_train, names, rng


def xgboost_model(args: Any) -> tuple[Any, list[str], Any]:
    """(fitted XGBRegressor, feature names, rng)."""
    import xgboost as xgb

    x_train, y_train, names, rng = training_data(args)
    model = xgb.XGBRegressor(n_estimators=args.trees, max_depth=args.depth, learning_rate=0.1, tree_method="hist")
    model.fit(x_train, y_train)
    return model, names, rng


def lightgbm_twin(args: Any) -> Any:
    """A LightGBM regressor of the same size trained on the same data as :func:`xgboost_model`."""
    import lightgbm as lgb
    import pandas as pd

    x_train, y_train, names, _ = training_data(args)
    model = lgb.LGBMRegressor(n_estimators=args.trees, max_depth=args.depth, num_leaves=2 ** args.depth,
                              learning_rate=0.1, verbose=-1)
    model.fit(pd.DataFrame(x_train, columns=names), y_train)
    return model


def float32_rows(rng: Any, rows: int, features: int) -> Any:
    """float32-representable data: XGBoost compares in float32, Elasticsearch (and we) in float64."""
    import numpy as np

    return rng.normal(size=(rows, features)).astype(np.float32).astype(np.float64)
