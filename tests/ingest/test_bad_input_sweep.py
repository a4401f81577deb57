"""Bad input through pipelines (issue 5, item 9): ES-shaped errors per document, never a crash or a
traceback, every input row accounted for — through ``_simulate`` (verbose and not), ``df.infer.pipeline``
and the ``ml_inference`` processor's ``model_input`` templates."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import es_infer_nb  # noqa: F401
from helpers import stump_regression

BOOLEAN_ERROR = "Cannot transform numbers other than 0.0 or 1.0 to boolean. Provided number [2.0]"


@pytest.fixture
def eng(engine):
    assert engine.request("PUT", "_ml/trained_models/reg", stump_regression()).status == 200
    return engine


def simulate(engine, processors, docs, verbose=False):
    r = engine.request("POST", "_ingest/pipeline/_simulate",
                       {"pipeline": {"processors": processors}, "docs": [{"_source": d} for d in docs]},
                       params={"verbose": "true"} if verbose else None)
    assert r.status == 200, r.body
    assert len(r.body["docs"]) == len(docs)  # every input document accounted for
    return r.body["docs"]


def es_error(entry):
    """The ES error object of a failed document (simulate plain or verbose), checked for its shape."""
    if "processor_results" in entry:
        failed = [p for p in entry["processor_results"] if p["status"] == "error"]
        assert failed, entry
        err = failed[-1]["error"]
    else:
        err = entry["error"]
    assert set(err) >= {"root_cause", "type", "reason"}, err
    assert err["root_cause"][0]["type"] == err["type"]
    assert isinstance(err["reason"], str) and "Traceback" not in err["reason"]
    return err


# -- a label that cannot become a boolean fails its own document only -------------------------------

def three_class_boolean_model():
    """x <= 0.2 -> class 0 (false), 0.2 < x <= 0.5 -> class 1 (true), x > 0.5 -> class 2 (no boolean)."""
    return {"input": {"field_names": ["x"]},
            "inference_config": {"classification": {"prediction_field_type": "boolean", "num_top_classes": 2}},
            "definition": {"trained_model": {"tree": {
                "feature_names": ["x"], "target_type": "classification",
                "tree_structure": [
                    {"node_index": 0, "split_feature": 0, "threshold": 0.5, "decision_type": "lte",
                     "left_child": 1, "right_child": 2},
                    {"node_index": 1, "split_feature": 0, "threshold": 0.2, "decision_type": "lte",
                     "left_child": 3, "right_child": 4},
                    {"node_index": 2, "leaf_value": [0.0, 0.0, 1.0]},
                    {"node_index": 3, "leaf_value": [1.0, 0.0, 0.0]},
                    {"node_index": 4, "leaf_value": [0.0, 1.0, 0.0]}]}}}}


@pytest.fixture
def tri(eng):
    assert eng.request("PUT", "_ml/trained_models/tri", three_class_boolean_model()).status == 200
    return eng


def test_boolean_label_error_fails_only_its_document_in_simulate(tri):
    pipe = [{"inference": {"model_id": "tri"}}]
    docs = simulate(tri, pipe, [{"x": 0.1}, {"x": 0.9}, {"x": 0.3}])
    assert docs[0]["doc"]["_source"]["ml"]["inference"]["predicted_value"] is False
    assert docs[2]["doc"]["_source"]["ml"]["inference"]["predicted_value"] is True
    assert [c["class_name"] for c in docs[2]["doc"]["_source"]["ml"]["inference"]["top_classes"]] == [True, False]
    err = es_error(docs[1])
    assert (err["type"], err["reason"]) == ("illegal_argument_exception", BOOLEAN_ERROR)
    verbose = simulate(tri, pipe, [{"x": 0.1}, {"x": 0.9}], verbose=True)
    assert verbose[0]["processor_results"][0]["status"] == "success"
    assert es_error(verbose[1])["reason"] == BOOLEAN_ERROR
    # _infer still fails the whole request, as ES's TypedChainTaskExecutor does
    r = tri.request("POST", "_ml/trained_models/tri/_infer", {"docs": [{"x": 0.1}, {"x": 0.9}]})
    assert r.status == 400 and r.body["error"]["reason"] == BOOLEAN_ERROR


def test_boolean_label_error_on_failure_and_frame(tri):
    pipe = {"processors": [{"inference": {"model_id": "tri", "on_failure": [
        {"set": {"field": "why", "value": "{{_ingest.on_failure_message}}"}}]}}]}
    docs = simulate(tri, pipe["processors"], [{"x": 0.9}, {"x": 0.1}])
    assert docs[0]["doc"]["_source"] == {"x": 0.9, "why": BOOLEAN_ERROR}
    assert docs[1]["doc"]["_source"]["ml"]["inference"]["predicted_value"] is False
    frame = pd.DataFrame({"x": [0.1, 0.9, 0.3, 0.95]})
    out = frame.infer.pipeline({"processors": [{"inference": {"model_id": "tri"}}]}, engine=tri)
    assert list(out.index) == list(frame.index)
    reasons = [None if pd.isna(r) else r for r in out["_ingest.error.reason"]]
    assert reasons == [None, BOOLEAN_ERROR, None, BOOLEAN_ERROR]
    assert out["_ingest.error.type"][1] == "illegal_argument_exception"
    assert [out["ml.inference.predicted_value"][i] for i in (0, 2)] == [False, True]
    assert pd.isna(out["ml.inference.predicted_value"][1])
