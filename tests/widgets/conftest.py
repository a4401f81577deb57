"""Fixtures of the widget tests: an engine with a regression and a 3-class xgboost model (importance
metadata filled on import) and their ``df.infer.run`` results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from es_infer_nb import Engine

FEATURES = ["a", "b", "c"]
CLASSES = ["hi", "lo", "mid"]


def training_frame(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)


def fitted_engine() -> Engine:
    import xgboost as xgb

    x = training_frame()
    engine = Engine()
    reg = xgb.XGBRegressor(n_estimators=4, max_depth=2).fit(x, 2 * x.a + x.b)
    engine.import_model("reg", reg, FEATURES, data=x)
    labels = np.where(x.a > 0.3, 0, np.where(x.b > 0, 2, 1))  # hi / lo / mid
    cls = xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(x, labels)
    engine.import_model("cls", cls, FEATURES, classification_labels=CLASSES, data=x)
    return engine


@pytest.fixture(scope="module")
def eng() -> Engine:
    return fitted_engine()


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return training_frame().head(5).set_axis(["r0", "r1", "r2", "r3", "r4"])


@pytest.fixture(scope="module")
def reg_result(eng, rows) -> pd.DataFrame:
    return rows.infer.run("reg", engine=eng, progress=False,
                          inference_config={"regression": {"num_top_feature_importance_values": 3}})


@pytest.fixture(scope="module")
def cls_result(eng, rows) -> pd.DataFrame:
    return rows.infer.run("cls", engine=eng, progress=False, inference_config={
        "classification": {"num_top_classes": -1, "num_top_feature_importance_values": 3}})
