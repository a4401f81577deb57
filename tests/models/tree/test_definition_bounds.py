"""Model bounds (``getMinPredictedValue`` / ``getMaxPredictedValue``) as ES computes them."""

from __future__ import annotations

import math

import pytest

from es_infer_nb.models.tree.definition import parse_definition


def _leaf_tree(*leaves: float) -> dict:
    nodes = [{"node_index": 0, "split_feature": 0, "threshold": 0.5, "left_child": 1, "right_child": 2}]
    nodes += [{"node_index": i + 1, "leaf_value": v} for i, v in enumerate(leaves)]
    return {"tree": {"feature_names": ["f"], "tree_structure": nodes}}


@pytest.mark.parametrize("aggregate, low, high", [
    ({"weighted_sum": {"weights": [0.5, 0.5]}}, 1.0, 1.8),  # EnsembleInferenceModelTests: weights not applied
    ({"weighted_sum": {}}, 1.0, 1.8),
    ({"exponent": {"weights": [2.0, 3.0]}}, math.exp(1.0), math.exp(1.8)),
])
def test_ensemble_bounds_aggregate_the_sub_model_bounds(aggregate, low, high):
    definition = parse_definition({"trained_model": {"ensemble": {
        "feature_names": ["f"], "target_type": "regression", "aggregate_output": aggregate,
        "trained_models": [_leaf_tree(0.1, 0.3), _leaf_tree(0.9, 1.5)]}}})
    got_low, got_high = definition.bounds()
    assert got_low == pytest.approx(low) and got_high == pytest.approx(high)


def test_tree_bounds_are_its_leaf_extremes():
    assert parse_definition({"trained_model": _leaf_tree(0.2, -4.0)}).bounds() == (-4.0, 0.2)
