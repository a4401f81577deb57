"""Indices, ``_bulk`` and ``_search`` with aggregations, the inference pipeline aggregation included."""

from __future__ import annotations

import json
from typing import Any

import pytest

from es_infer_nb import Engine
from helpers import product_cost_regression

REGRESSION = product_cost_regression()

CLASSIFICATION = {
    "input": {"field_names": ["avg_cost"]},
    "inference_config": {"classification": {}},
    "definition": {
        "trained_model": {
            "tree": {
                "feature_names": ["avg_cost"],
                "target_type": "classification",
                "classification_labels": ["cheap", "dear"],
                "tree_structure": [
                    {
                        "node_index": 0,
                        "split_feature": 0,
                        "threshold": 1000,
                        "decision_type": "lte",
                        "default_left": True,
                        "left_child": 1,
                        "right_child": 2,
                    },
                    {"node_index": 1, "leaf_value": [2.0, -2.0]},
                    {"node_index": 2, "leaf_value": [-2.0, 2.0]},
                ],
            }
        }
    },
}

DOCS = [
    {"product": "TV", "cost": 300, "time": 1587501233000, "in_stock": True},
    {"product": "TV", "cost": 400, "time": 1587501233000, "in_stock": False},
    {"product": "VCR", "cost": 150, "time": 1587501233000, "in_stock": True},
    {"product": "VCR", "cost": 180, "time": 1587587633000, "in_stock": True},
    {"product": "Laptop", "cost": 15000, "time": 1587587633000, "in_stock": False},
]


def ndjson(docs: list[dict[str, Any]], action: str = "index") -> str:
    return "".join(json.dumps({action: {}}) + "\n" + json.dumps(d) + "\n" for d in docs)


@pytest.fixture()
def eng() -> Engine:
    e = Engine()
    assert e.request("PUT", "_ml/trained_models/reg", REGRESSION).status == 200
    assert e.request("PUT", "_ml/trained_models/cls", CLASSIFICATION).status == 200
    resp = e.request(
        "PUT",
        "/store",
        {
            "mappings": {
                "properties": {
                    "product": {"type": "keyword"},
                    "cost": {"type": "integer"},
                    "time": {"type": "date"},
                    "in_stock": {"type": "boolean"},
                    "note": {"type": "text"},
                }
            }
        },
    )
    assert resp.status == 200 and resp.body == {"acknowledged": True, "shards_acknowledged": True, "index": "store"}
    resp = e.request("POST", "/store/_bulk", ndjson(DOCS), params={"refresh": "true"})
    assert resp.status == 200 and resp.body["errors"] is False
    return e


def search(e: Engine, body: dict[str, Any], path: str = "/store/_search") -> Any:
    resp = e.request("POST", path, body)
    assert resp.status == 200, resp.body
    return resp.body


def by_key(agg: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    return {b["key"]: b for b in agg["buckets"]}


# -- indices -------------------------------------------------------------------------------------
def test_create_twice_invalid_names_get_and_delete(eng: Engine) -> None:
    again = eng.request("PUT", "/store", {})
    assert again.status == 400 and again.body["error"]["type"] == "resource_already_exists_exception"
    for bad, why in (
        ("Store", "must be lowercase"),
        ("_x", "must not start with '_', '-', or '+'"),
        ("-x", "must not start"),
        ("a*b", "must not contain the following characters"),
    ):
        resp = eng.request("PUT", f"/{bad}", {})
        assert resp.status == 400 and resp.body["error"]["type"] == "invalid_index_name_exception", bad
        assert why in resp.body["error"]["reason"]
    got = eng.request("GET", "/store").body["store"]
    assert got["mappings"]["properties"]["cost"] == {"type": "integer"}
    bad_type = eng.request("PUT", "/other", {"mappings": {"properties": {"v": {"type": "dense_vector"}}}})
    assert bad_type.status == 400 and bad_type.body["error"]["type"] == "mapper_parsing_exception"
    assert eng.request("DELETE", "/store").body == {"acknowledged": True}
    missing = eng.request("DELETE", "/store")
    assert missing.status == 404 and missing.body["error"]["type"] == "index_not_found_exception"
    assert eng.request("POST", "/store/_search", {}).status == 404


# -- _bulk ----------------------------------------------------------------------------------------
def test_bulk_items_and_a_failing_item_fails_alone(eng: Engine) -> None:
    body = (
        json.dumps({"index": {"_id": "a"}})
        + "\n"
        + json.dumps({"product": "Radio", "cost": "not a number"})
        + "\n"
        + json.dumps({"create": {"_index": "store", "_id": "b"}})
        + "\n"
        + json.dumps({"product": "Radio", "cost": 7})
        + "\n"
        + json.dumps({"create": {"_id": "b"}})
        + "\n"
        + json.dumps({"product": "Radio"})
        + "\n"
        + json.dumps({"delete": {"_id": "b"}})
        + "\n"
    )
    resp = eng.request("POST", "/store/_bulk", body)
    assert resp.status == 200 and resp.body["errors"] is True
    items = resp.body["items"]
    assert [next(iter(i)) for i in items] == ["index", "create", "create", "delete"]
    assert items[0]["index"]["status"] == 400
    assert items[0]["index"]["error"]["type"] == "document_parsing_exception"
    assert items[1]["create"]["status"] == 201 and items[1]["create"]["result"] == "created"
    assert items[2]["create"]["status"] == 409
    assert items[3]["delete"]["result"] == "deleted"
    total = search(eng, {"size": 0})["hits"]["total"]["value"]
    assert total == len(DOCS)  # 'a' refused, 'b' created then deleted


def test_bulk_without_index_and_malformed_action() -> None:
    e = Engine()
    resp = e.request("POST", "/_bulk", [{"index": {}}, {"x": 1}, {"index": {"_index": "auto"}}, {"x": 2}])
    assert resp.body["errors"] is True
    assert "index is missing" in resp.body["items"][0]["index"]["error"]["reason"]
    assert resp.body["items"][1]["index"]["status"] == 201  # an unknown index is created, as ES does
    bad = e.request("POST", "/_bulk", [{"upsert": {}}, {"x": 1}])
    assert bad.status == 400 and "expected one of [create, delete, index, update]" in bad.body["error"]["reason"]


def test_bulk_action_metadata_values_must_be_simple() -> None:
    # found by the request fuzzer: an object as an action's "pipeline" answered a 500 (type_error_exception)
    e = Engine()
    bad = e.request("POST", "/_bulk", [{"index": {"_index": "i", "pipeline": {"k": "v"}}}, {"x": 1}])
    assert (bad.status, bad.body["error"]["type"], bad.body["error"]["reason"]) == (
        400,
        "illegal_argument_exception",
        "Malformed action/metadata line [1], expected a simple value for field [pipeline] but found [START_OBJECT]",
    )
    listed = e.request("POST", "/_bulk", [{"delete": {"_index": "i", "_id": "1"}}, {"index": {"_index": ["i"]}}, {}])
    assert listed.status == 400 and listed.body["error"]["reason"] == (
        "Malformed action/metadata line [2], expected a simple value for field [_index] but found [START_ARRAY]"
    )
    number = e.request("POST", "/_bulk", [{"index": {"_index": 7, "pipeline": 8}}, {"x": 1}])
    assert number.body["items"][0]["index"]["error"]["reason"] == "pipeline with id [8] does not exist"


def test_bulk_with_pipeline_runs_the_inference_processor(eng: Engine) -> None:
    pipeline = {
        "processors": [{"inference": {"model_id": "cls", "field_map": {"cost": "avg_cost"}, "target_field": "ml"}}]
    }
    assert eng.request("PUT", "_ingest/pipeline/p", pipeline).status == 200
    docs = [{"product": "Phone", "cost": 5}, {"product": "Car", "cost": 50000}]
    resp = eng.request("POST", "/priced/_bulk", ndjson(docs), params={"pipeline": "p", "refresh": "true"})
    assert resp.status == 200 and resp.body["errors"] is False
    hits = {h["_source"]["product"]: h["_source"] for h in search(eng, {}, "/priced/_search")["hits"]["hits"]}
    assert hits["Phone"]["ml"]["predicted_value"] == "cheap"
    assert hits["Car"]["ml"]["predicted_value"] == "dear"
    missing = eng.request("POST", "/priced/_bulk", ndjson(docs[:1]), params={"pipeline": "nope"})
    assert missing.body["items"][0]["index"]["error"]["reason"] == "pipeline with id [nope] does not exist"


def test_bulk_pipeline_failure_fails_only_its_document(eng: Engine) -> None:
    pipeline = {"processors": [{"fail": {"message": "no {{product}}", "if": "ctx.product == 'Bad'"}}]}
    assert eng.request("PUT", "_ingest/pipeline/f", pipeline).status == 200
    resp = eng.request("POST", "/f/_bulk", ndjson([{"product": "Bad"}, {"product": "Good"}]), params={"pipeline": "f"})
    items = resp.body["items"]
    assert resp.body["errors"] is True and items[0]["index"]["status"] >= 400
    assert "no Bad" in json.dumps(items[0]["index"]["error"])
    assert items[1]["index"]["status"] == 201
    assert [h["_source"] for h in search(eng, {}, "/f/_search")["hits"]["hits"]] == [{"product": "Good"}]


# -- _search ---------------------------------------------------------------------------------------
def test_hits_size_from_and_match_all_only(eng: Engine) -> None:
    body = search(eng, {"query": {"match_all": {}}, "size": 2, "from": 1})
    assert body["hits"]["total"] == {"value": 5, "relation": "eq"}
    assert [h["_source"]["cost"] for h in body["hits"]["hits"]] == [400, 150]
    window = eng.request("POST", "/store/_search", {"from": 9999, "size": 2})
    assert window.status == 400 and "Result window is too large" in window.body["error"]["reason"]
    resp = eng.request("POST", "/store/_search", {"query": {"match": {"product": "TV"}}})
    assert resp.status == 400 and "match_all" in resp.body["error"]["reason"]
    resp = eng.request("POST", "/store/_search", {"aggs": {"x": {"percentiles": {"field": "cost"}}}})
    assert resp.status == 400 and "percentiles" in resp.body["error"]["reason"]


def test_terms_order_and_metrics(eng: Engine) -> None:
    aggs = {
        "p": {
            "terms": {"field": "product"},
            "aggs": {
                "avg": {"avg": {"field": "cost"}},
                "sum": {"sum": {"field": "cost"}},
                "min": {"min": {"field": "cost"}},
                "max": {"max": {"field": "cost"}},
                "n": {"value_count": {"field": "cost"}},
            },
        }
    }
    out = search(eng, {"size": 0, "aggs": aggs})["aggregations"]["p"]
    assert [(b["key"], b["doc_count"]) for b in out["buckets"]] == [("TV", 2), ("VCR", 2), ("Laptop", 1)]
    tv = out["buckets"][0]
    assert (tv["avg"]["value"], tv["sum"]["value"], tv["min"]["value"], tv["max"]["value"], tv["n"]["value"]) == (
        350.0,
        700.0,
        300.0,
        400.0,
        2,
    )
    top1 = search(eng, {"size": 0, "aggs": {"p": {"terms": {"field": "product", "size": 1}}}})["aggregations"]["p"]
    assert top1["sum_other_doc_count"] == 3 and len(top1["buckets"]) == 1
    flags = search(eng, {"size": 0, "aggs": {"s": {"terms": {"field": "in_stock"}}}})["aggregations"]["s"]["buckets"]
    assert [(b["key"], b["key_as_string"], b["doc_count"]) for b in flags] == [(1, "true", 3), (0, "false", 2)]
    empty = search(eng, {"size": 0, "aggs": {"m": {"min": {"field": "absent"}}, "s": {"sum": {"field": "absent"}}}})
    assert empty["aggregations"] == {"m": {"value": None}, "s": {"value": 0.0}}
    text = eng.request("POST", "/store/_search", {"aggs": {"t": {"terms": {"field": "note"}}}})
    assert text.status == 400 and "Text fields are not optimised" in text.body["error"]["reason"]


def test_date_histogram(eng: Engine) -> None:
    out = search(eng, {"size": 0, "aggs": {"d": {"date_histogram": {"field": "time", "fixed_interval": "1d"}}}})
    buckets = out["aggregations"]["d"]["buckets"]
    assert [(b["key"], b["doc_count"]) for b in buckets] == [(1587427200000, 3), (1587513600000, 2)]
    assert buckets[0]["key_as_string"] == "2020-04-21T00:00:00.000Z"


# -- the inference pipeline aggregation ----------------------------------------------------------------
def _inference_aggs(inference: dict[str, Any]) -> dict[str, Any]:
    return {
        "size": 0,
        "aggs": {
            "good": {
                "terms": {"field": "product"},
                "aggs": {"avg_cost_agg": {"avg": {"field": "cost"}}, "inf": {"inference": inference}},
            }
        },
    }


def test_inference_regression_per_bucket(eng: Engine) -> None:
    body = _inference_aggs(
        {
            "model_id": "reg",
            "inference_config": {"regression": {"results_field": "value"}},
            "buckets_path": {"avg_cost": "avg_cost_agg"},
        }
    )
    buckets = by_key(search(eng, body)["aggregations"]["good"])
    assert {k: b["inf"]["value"] for k, b in buckets.items()} == {"TV": 2.0, "VCR": 2.0, "Laptop": 2.0}
    # no inference_config: the result is still written to `value`, not the model's results_field
    plain = by_key(
        search(eng, _inference_aggs({"model_id": "reg", "buckets_path": {"avg_cost": "avg_cost_agg"}}))["aggregations"][
            "good"
        ]
    )
    assert plain["TV"]["inf"]["value"] == 2.0 and "regression-value" not in plain["TV"]["inf"]


def test_inference_classification_top_classes(eng: Engine) -> None:
    body = _inference_aggs(
        {
            "model_id": "cls",
            "inference_config": {"classification": {"num_top_classes": 2}},
            "buckets_path": {"avg_cost": "avg_cost_agg"},
        }
    )
    buckets = by_key(search(eng, body)["aggregations"]["good"])
    assert buckets["TV"]["inf"]["value"] == "cheap" and buckets["Laptop"]["inf"]["value"] == "dear"
    top = buckets["Laptop"]["inf"]["top_classes"]
    assert [c["class_name"] for c in top] == ["dear", "cheap"]
    assert top[0]["class_probability"] > 0.9


def test_inference_key_of_a_single_bucket(eng: Engine) -> None:
    body = {
        "size": 0,
        "aggs": {
            "d": {
                "date_histogram": {"field": "time", "fixed_interval": "1d"},
                "aggs": {
                    "good": {"terms": {"field": "product"}, "aggs": {"avg_cost_agg": {"avg": {"field": "cost"}}}},
                    "inf": {
                        "inference": {
                            "model_id": "reg",
                            "buckets_path": {"avg_cost": "good['TV']>avg_cost_agg", "product_type": "good['TV']"},
                        }
                    },
                },
            }
        },
    }
    buckets = eng.request("POST", "/store/_search", body)
    assert buckets.status == 400 and "Cannot find an key ['TV'] in [good]" in buckets.body["error"]["reason"]
    body["aggs"]["d"]["date_histogram"]["fixed_interval"] = "7d"  # one bucket holding both TVs
    out = search(eng, body)["aggregations"]["d"]["buckets"]
    assert out[0]["inf"]["value"] == 2.0


def test_inference_all_fields_missing_warning(eng: Engine) -> None:
    body = _inference_aggs({"model_id": "reg", "buckets_path": {"cost": "avg_cost_agg"}})
    bucket = search(eng, body)["aggregations"]["good"]["buckets"][0]
    assert bucket["inf"] == {"warning": "Model [reg] could not be inferred as all fields were missing"}


@pytest.mark.parametrize(
    ("inference", "message"),
    [
        (
            {
                "model_id": "reg",
                "inference_config": {"regression": {"results_field": "banana"}},
                "buckets_path": {"avg_cost": "avg_cost_agg"},
            },
            "Validation Failed: 1: setting option [results_field] to [banana] is not valid for inference aggregations;",
        ),
        (
            {
                "model_id": "cls",
                "inference_config": {"classification": {"top_classes_results_field": "tc"}},
                "buckets_path": {"avg_cost": "avg_cost_agg"},
            },
            "Validation Failed: 1: setting option [top_classes] to [tc] is not valid for inference aggregations;",
        ),
        ({"buckets_path": {"avg_cost": "avg_cost_agg"}}, "Validation Failed: 1: [model_id] must be set;"),
    ],
)
def test_inference_validation(eng: Engine, inference: dict[str, Any], message: str) -> None:
    resp = eng.request("POST", "/store/_search", _inference_aggs(inference))
    assert resp.status == 400
    assert resp.body["error"]["root_cause"][0] == {"type": "action_request_validation_exception", "reason": message}


def test_inference_errors(eng: Engine) -> None:
    top = eng.request(
        "POST", "/store/_search", {"aggs": {"inf": {"inference": {"model_id": "reg", "buckets_path": {"a": "b"}}}}}
    )
    assert top.status == 400 and "must be declared inside of another aggregation" in top.body["error"]["reason"]
    unknown = eng.request(
        "POST", "/store/_search", _inference_aggs({"model_id": "nope", "buckets_path": {"avg_cost": "avg_cost_agg"}})
    )
    assert unknown.status == 404
    wrong = eng.request(
        "POST",
        "/store/_search",
        _inference_aggs(
            {"model_id": "reg", "inference_config": {"bogus": {}}, "buckets_path": {"avg_cost": "avg_cost_agg"}}
        ),
    )
    assert wrong.status == 400 and wrong.body["error"]["type"] == "x_content_parse_exception"
    bad_path = eng.request(
        "POST", "/store/_search", _inference_aggs({"model_id": "reg", "buckets_path": {"avg_cost": "nothing"}})
    )
    assert bad_path.status == 400 and "Cannot find an aggregation named [nothing]" in bad_path.body["error"]["reason"]


def test_cluster_health_and_indices_stay_in_memory(tmp_path) -> None:
    e = Engine(tmp_path / "home")
    assert e.request("PUT", "/kept", {}).status == 200
    assert e.request("POST", "/kept/_bulk", ndjson([{"a": 1}])).body["errors"] is False
    health = e.request("GET", "/_cluster/health/.ml-inference-*,kept", params={"wait_for_status": "green"})
    assert health.status == 200 and health.body["status"] == "green" and health.body["active_primary_shards"] == 1
    assert e.request("GET", "/_cluster/health", params={"wait_for_status": "blue"}).status == 400
    assert not any("kept" in p.name for p in (tmp_path / "home").rglob("*"))
    assert "kept" not in Engine(tmp_path / "home").indices  # documents are never persisted


def test_an_inference_result_is_readable_by_path_value_only(eng: Engine) -> None:
    first = {"model_id": "reg", "buckets_path": {"avg_cost": "avg_cost_agg"}}
    body = _inference_aggs(first)
    inner = body["aggs"]["good"]["aggs"]
    inner["chained"] = {"inference": {"model_id": "cls", "buckets_path": {"avg_cost": "inf.value"}}}
    buckets = search(eng, body)["aggregations"]["good"]["buckets"]
    assert all(b["chained"]["value"] == "cheap" for b in buckets)  # the regression's 2.0 read as avg_cost
    inner["chained"]["inference"]["buckets_path"] = {"avg_cost": "inf.feature_importance"}
    resp = eng.request("POST", "/store/_search", body)
    assert resp.status == 400
    assert resp.body["error"]["reason"] == "unknown property [feature_importance] for inference aggregation [inf]"


def test_single_documents(eng: Engine) -> None:
    created = eng.request("PUT", "/store/_doc/d1", {"product": "Radio", "cost": 20}, params={"refresh": "true"})
    assert created.status == 201 and created.body["result"] == "created" and created.body["forced_refresh"] is True
    updated = eng.request("PUT", "/store/_doc/d1", {"product": "Radio", "cost": 25})
    assert updated.status == 200 and (updated.body["result"], updated.body["_version"]) == ("updated", 2)
    again = eng.request("PUT", "/store/_create/d1", {"product": "Radio"})
    assert again.status == 409 and again.body["error"]["type"] == "version_conflict_engine_exception"
    auto = eng.request("POST", "/store/_doc", {"product": "Radio", "cost": 30})
    assert auto.status == 201 and len(auto.body["_id"]) == 20
    got = eng.request("GET", "/store/_doc/d1")
    assert got.body["found"] is True and got.body["_source"] == {"product": "Radio", "cost": 25}
    assert eng.request("GET", "/store/_doc/nope").body == {"_index": "store", "_id": "nope", "found": False}
    refused = eng.request("POST", "/store/_doc", {"cost": {"a": 1}})
    assert refused.status == 400 and refused.body["error"]["type"] == "document_parsing_exception"
