"""``_stats``: counters move with every inference from any entry point."""

from __future__ import annotations

import pandas as pd

import es_infer_nb  # noqa: F401  (registers df.infer)
from helpers import error_of, stump_regression


def stats_of(engine, model_id):
    r = engine.request("GET", f"_ml/trained_models/{model_id}/_stats")
    assert r.status == 200, r.body
    return r.body["trained_model_stats"][0]


def test_stats_shape_and_counters(engine):
    engine.request("PUT", "_ml/trained_models/m", stump_regression())
    s = stats_of(engine, "m")
    assert list(s) == ["model_id", "model_size_stats", "pipeline_count", "inference_stats"]
    assert s["inference_stats"]["inference_count"] == 0
    assert s["model_size_stats"]["required_native_memory_bytes"] == 0
    engine.infer("m", [{"x": 1}, {"y": 1}])
    df = pd.DataFrame({"x": [0.1, 0.2, None]})
    df.infer.run("m", engine=engine)
    st = stats_of(engine, "m")["inference_stats"]
    assert st["inference_count"] == 5
    assert st["missing_all_fields_count"] == 2
    assert st["cache_miss_count"] == 1
    assert st["failure_count"] == 0
    assert list(st) == ["failure_count", "inference_count", "cache_miss_count", "missing_all_fields_count", "timestamp"]


def test_failures_are_counted(engine):
    body = {
        "input": {"field_names": ["x"]},
        "inference_config": {"classification": {"prediction_field_type": "boolean"}},
        "definition": {"trained_model": {"tree": {"feature_names": ["x"], "target_type": "classification",
                                                  "classification_labels": ["no", "yes", "maybe"],
                                                  "tree_structure": [{"node_index": 0, "leaf_value": 2.0}]}}},
    }
    engine.request("PUT", "_ml/trained_models/b", body)
    assert engine.request("POST", "_ml/trained_models/b/_infer", {"docs": [{"x": 1}]}).status == 400
    assert stats_of(engine, "b")["inference_stats"]["inference_count"] == 1


def test_ids_wildcards_paging_and_404(engine):
    for name in ["a1", "a2", "b1"]:
        engine.request("PUT", f"_ml/trained_models/{name}", stump_regression())
    body = engine.request("GET", "_ml/trained_models/_stats").body
    assert body["count"] == 4
    assert [s["model_id"] for s in body["trained_model_stats"]] == ["a1", "a2", "b1", "lang_ident_model_1"]
    page = engine.request("GET", "_ml/trained_models/a*/_stats", params={"from": 1, "size": 1}).body
    assert page["count"] == 2 and [s["model_id"] for s in page["trained_model_stats"]] == ["a2"]
    r = engine.request("GET", "_ml/trained_models/missing/_stats")
    assert r.status == 404
    assert error_of(r)["reason"] == "No known trained model with model_id [missing]"
    assert engine.request("GET", "_ml/trained_models/zz*/_stats").body == {"count": 0, "trained_model_stats": []}
    assert engine.request("GET", "_ml/trained_models/zz*/_stats", params={"allow_no_match": "false"}).status == 404


def test_pipeline_count(engine):
    engine.request("PUT", "_ml/trained_models/m", stump_regression())
    engine.request("PUT", "_ml/trained_models/m/model_aliases/current")
    engine.request("PUT", "_ingest/pipeline/p1", {"processors": [{"inference": {"model_id": "m"}}]})
    engine.request("PUT", "_ingest/pipeline/p2", {"processors": [{"inference": {"model_id": "current"}}]})
    assert stats_of(engine, "m")["pipeline_count"] == 2
    r = engine.request("DELETE", "_ml/trained_models/m")
    assert r.status == 409
    assert engine.request("DELETE", "_ml/trained_models/m", params={"force": True}).status == 200


def test_inference_stats_persist_with_the_engine_home(tmp_path):
    from es_infer_nb import Engine

    first = Engine(tmp_path)
    first.request("PUT", "_ml/trained_models/m", stump_regression())
    first.infer("m", [{"x": 1}, {"y": 2}])
    first.stats.flush()
    again = Engine(tmp_path)
    st = stats_of(again, "m")["inference_stats"]
    assert st["inference_count"] == 2 and st["missing_all_fields_count"] == 1
    again.request("DELETE", "_ml/trained_models/m")
    assert "m" not in Engine(tmp_path).stats._models
