"""Small model bodies shared by the tests."""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np


def stump_regression(field: str = "x", threshold: float = 0.5, left: float = 1.0, right: float = 2.0) -> dict[str, Any]:
    return {
        "input": {"field_names": [field]},
        "inference_config": {"regression": {}},
        "definition": {
            "trained_model": {
                "tree": {
                    "feature_names": [field],
                    "tree_structure": [
                        {"node_index": 0, "split_feature": 0, "threshold": threshold, "decision_type": "lte",
                         "left_child": 1, "right_child": 2, "number_samples": 10},
                        {"node_index": 1, "leaf_value": left, "number_samples": 6},
                        {"node_index": 2, "leaf_value": right, "number_samples": 4},
                    ],
                }
            }
        },
    }


def product_cost_regression(number_samples: bool = False) -> dict[str, Any]:
    """pipeline_inference.yml's regression model over ``avg_cost`` and a one-hot ``product_type``
    (a single tree; with ``number_samples``, feature importance can be computed)."""
    samples = [{"number_samples": n} if number_samples else {} for n in (10, 4, 6)]
    return {
        "input": {"field_names": ["avg_cost", "item"]},
        "inference_config": {"regression": {"results_field": "regression-value"}},
        "definition": {
            "preprocessors": [{"one_hot_encoding": {
                "field": "product_type", "hot_map": {"TV": "type_tv", "VCR": "type_vcr", "Laptop": "type_laptop"}}}],
            "trained_model": {"tree": {
                "feature_names": ["avg_cost", "type_tv", "type_vcr", "type_laptop"],
                "target_type": "regression",
                "tree_structure": [
                    {"node_index": 0, "split_feature": 0, "threshold": 38, "decision_type": "lte", "default_left": True,
                     **samples[0], "left_child": 1, "right_child": 2},
                    {"node_index": 1, **samples[1], "leaf_value": 5.0},
                    {"node_index": 2, **samples[2], "leaf_value": 2.0},
                ],
            }},
        },
    }


#: processors of many types over the fields ``t``, ``x``, ``n``, ``csv``, ``js``, ``list``, ``old``, ``junk``
#: (shared by the request and document fuzzers; each adds its own after them)
def many_processors(json_if: str) -> list[dict[str, Any]]:
    return [
        {"set": {"field": "s", "value": "{{t}}-{{x}}"}},
        {"append": {"field": "tags", "value": ["a", "{{s}}"]}},
        {"rename": {"field": "old", "target_field": "renamed", "ignore_missing": True}},
        {"remove": {"field": "junk", "ignore_missing": True}},
        {"convert": {"field": "n", "type": "integer", "ignore_missing": True}},
        {"lowercase": {"field": "t", "ignore_missing": True}},
        {"split": {"field": "csv", "separator": ",", "ignore_missing": True}},
        {"join": {"field": "csv", "separator": "|", "if": "ctx.csv instanceof List"}},
        {"gsub": {"field": "t", "pattern": "a+", "replacement": "b", "ignore_missing": True}},
        {"json": {"field": "js", "target_field": "parsed", "if": json_if}},
        {"foreach": {"field": "list", "ignore_missing": True, "processor": {"uppercase": {"field": "_ingest._value"}}}},
    ]


def churn_model() -> dict[str, Any]:
    """The spec's §1.4 example: one-hot preprocessor + logistic ensemble."""
    return {
        "description": "toy churn model",
        "tags": ["churn"],
        "input": {"field_names": ["tenure", "plan"]},
        "inference_config": {"classification": {"prediction_field_type": "string"}},
        "definition": {
            "preprocessors": [
                {"one_hot_encoding": {"field": "plan", "hot_map": {"basic": "plan_basic", "pro": "plan_pro"}}}
            ],
            "trained_model": {
                "ensemble": {
                    "feature_names": ["tenure", "plan_basic", "plan_pro"],
                    "target_type": "classification",
                    "classification_labels": ["stay", "churn"],
                    "aggregate_output": {"logistic_regression": {}},
                    "trained_models": [
                        {"tree": {"feature_names": ["tenure", "plan_basic", "plan_pro"], "target_type": "regression",
                                  "tree_structure": [
                                      {"node_index": 0, "split_feature": 0, "threshold": 12.0, "decision_type": "lte",
                                       "default_left": True, "left_child": 1, "right_child": 2, "number_samples": 100},
                                      {"node_index": 1, "leaf_value": 0.4, "number_samples": 30},
                                      {"node_index": 2, "leaf_value": -0.6, "number_samples": 70}]}}
                    ],
                }
            },
        },
    }


def error_of(resp) -> dict[str, Any]:
    assert resp.status >= 400, resp.body
    return resp.body["error"]


def obj(*values: Any) -> np.ndarray:
    """An object array holding exactly ``values`` (no numpy coercion)."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr


def same(a: np.ndarray, b: list) -> bool:
    """Equal as float64 arrays, NaN equal to NaN."""
    return np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), equal_nan=True)


def ipython_shell():
    """The test IPython shell (IPython's own ``globalipapp``) with ``%load_ext es_infer_nb`` done."""
    from IPython.testing import globalipapp

    globalipapp.start_ipython()
    ip = globalipapp.get_ipython()
    ip.run_line_magic("load_ext", "es_infer_nb")
    return ip


def infer_magic(ip):
    """The shell's ``InferMagic`` instance (its traitlets options)."""
    from es_infer_nb.notebook.magics import InferMagic

    (magic,) = [c for c in ip.configurables if isinstance(c, InferMagic)]
    return magic


#: Elasticsearch's tree decision types
TREE_OPS = {"lte": lambda x, t: x <= t, "lt": lambda x, t: x < t, "gte": lambda x, t: x >= t, "gt": lambda x, t: x > t}


def es_tree_walk(tree: dict[str, Any], x: np.ndarray) -> list[float]:
    """The leaf value(s) one row reaches in an ES tree, walked node by node as ES walks it (a value that is
    not finite is missing and follows default_left): the plain reference the compiled paths are checked on."""
    nodes = tree["tree_structure"]
    node = nodes[0]
    while "left_child" in node:
        v = x[node["split_feature"]]
        if not math.isfinite(v):
            left = node.get("default_left", False)
        else:
            left = TREE_OPS[node.get("decision_type", "lte")](v, node["threshold"])
        node = nodes[node["left_child"] if left else node["right_child"]]
    lv = node["leaf_value"]
    return lv if isinstance(lv, list) else [lv]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


def vectors(frame: Any, column: str = "ml.inference.predicted_value") -> np.ndarray:
    """The embedding column of a ``df.infer.run`` result as one float32 array (a row per document)."""
    return np.stack([np.asarray(v, dtype=np.float32) for v in frame[column]])
