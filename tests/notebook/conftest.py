"""Fixtures shared by the notebook tests."""

from __future__ import annotations

import pytest
from helpers import churn_model, stump_regression

from es_infer_nb import Engine


@pytest.fixture
def eng():
    """An in-memory engine with the ``stump`` regression and ``churner`` classification models."""
    engine = Engine()
    assert engine.request("PUT", "_ml/trained_models/stump", stump_regression()).ok
    assert engine.request("PUT", "_ml/trained_models/churner", churn_model()).ok
    return engine
