"""The ``inference`` pipeline aggregation's bucket paths and results, and ``InferenceIngestIT``'s
flow (documents indexed through inference pipelines, then counted with ``_search``), as upstream
asserts them (elastic/elasticsearch x-pack/plugin/ml)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from es_infer_nb import Engine
from helpers import product_cost_regression

#: InferenceIngestIT.REGRESSION_CONFIG
REGRESSION_CONFIG: dict[str, Any] = {
    "input": {"field_names": ["col1", "col2", "col3", "col4"]},
    "description": "test model for regression",
    "inference_config": {"regression": {}},
    "definition": {
        "preprocessors": [
            {"one_hot_encoding": {"field": "col1", "hot_map": {"male": "col1_male", "female": "col1_female"}}},
            {
                "target_mean_encoding": {
                    "field": "col2",
                    "feature_name": "col2_encoded",
                    "target_map": {"S": 5.0, "M": 10.0, "L": 20},
                    "default_value": 5.0,
                }
            },
            {
                "frequency_encoding": {
                    "field": "col3",
                    "feature_name": "col3_encoded",
                    "frequency_map": {"none": 0.75, "true": 0.10, "false": 0.15},
                }
            },
        ],
        "trained_model": {
            "ensemble": {
                "feature_names": ["col1_male", "col1_female", "col2_encoded", "col3_encoded", "col4"],
                "aggregate_output": {"weighted_sum": {"weights": [0.5, 0.5]}},
                "target_type": "regression",
                "trained_models": [
                    {
                        "tree": {
                            "feature_names": ["col1_male", "col1_female", "col4"],
                            "target_type": "regression",
                            "tree_structure": [
                                {
                                    "node_index": 0,
                                    "split_feature": 0,
                                    "split_gain": 12.0,
                                    "threshold": 10.0,
                                    "decision_type": "lte",
                                    "number_samples": 300,
                                    "default_left": True,
                                    "left_child": 1,
                                    "right_child": 2,
                                },
                                {"node_index": 1, "number_samples": 100, "leaf_value": 1},
                                {"node_index": 2, "number_samples": 200, "leaf_value": 2},
                            ],
                        }
                    },
                    {
                        "tree": {
                            "feature_names": ["col2_encoded", "col3_encoded", "col4"],
                            "target_type": "regression",
                            "tree_structure": [
                                {
                                    "node_index": 0,
                                    "split_feature": 0,
                                    "split_gain": 12.0,
                                    "threshold": 10.0,
                                    "decision_type": "lte",
                                    "default_left": True,
                                    "number_samples": 150,
                                    "left_child": 1,
                                    "right_child": 2,
                                },
                                {"node_index": 1, "number_samples": 50, "leaf_value": 1},
                                {"node_index": 2, "number_samples": 100, "leaf_value": 2},
                            ],
                        }
                    },
                ],
            }
        },
    },
}

#: a two-class model over col4 (labels as InferenceIngestIT's classification model has them)
CLASSIFICATION_CONFIG: dict[str, Any] = {
    "input": {"field_names": ["col4"]},
    "inference_config": {"classification": {}},
    "definition": {
        "trained_model": {
            "tree": {
                "feature_names": ["col4"],
                "target_type": "classification",
                "classification_labels": ["first", "second"],
                "tree_structure": [
                    {
                        "node_index": 0,
                        "split_feature": 0,
                        "threshold": 5,
                        "decision_type": "lte",
                        "default_left": True,
                        "number_samples": 10,
                        "left_child": 1,
                        "right_child": 2,
                    },
                    {"node_index": 1, "number_samples": 5, "leaf_value": [2.0, -2.0]},
                    {"node_index": 2, "number_samples": 5, "leaf_value": [-2.0, 2.0]},
                ],
            }
        }
    },
}

FIELD_MAP = {"col1": "col1", "col2": "col2", "col3": "col3", "col4": "col4"}

#: generateSourceDoc's value sets, fixed
SOURCE_DOCS = [
    {"col1": "female", "col2": "M", "col3": "none", "col4": 10},
    {"col1": "male", "col2": "S", "col3": "true", "col4": 3},
    {"col1": "female", "col2": "L", "col3": "false", "col4": 7},
    {"col1": "male", "col2": "XL", "col3": "other", "col4": 0},
]

STORE_DOCS = [
    {"product": "TV", "cost": 300, "time": 1587501233000},
    {"product": "TV", "cost": 400, "time": 1587501233000},
    {"product": "VCR", "cost": 150, "time": 1587501233000},
    {"product": "VCR", "cost": 180, "time": 1587501233000},
    {"product": "Laptop", "cost": 15000, "time": 1587501233000},
]

#: pipeline_inference.yml's a-complex-regression-model, as a single tree with sample counts
STORE_REGRESSION = product_cost_regression(number_samples=True)


def pipeline_definition(model_id: str, kind: str) -> dict[str, Any]:
    """InferenceIngestIT.pipelineDefinition: the tag names the default target ``ml.inference.<tag>``."""
    return {
        "processors": [
            {"inference": {"model_id": model_id, "tag": kind, "inference_config": {kind: {}}, "field_map": FIELD_MAP}}
        ]
    }


def exists_search(e: Engine, field: str) -> Any:
    """InferenceIngestIT.searchRequest with ``boolQuery().filter(existsQuery(field))``."""
    resp = e.request(
        "GET",
        "index_for_inference_test/_search",
        {"query": {"bool": {"filter": [{"exists": {"field": field, "boost": 1.0}}], "boost": 1.0}}},
        params={"track_total_hits": "true"},
    )
    assert resp.status == 200, resp.body
    return resp.body


def total_hits(body: Any) -> int:
    return int(body["hits"]["total"]["value"])


def inference_stats(e: Engine, model_id: str) -> dict[str, Any]:
    resp = e.request("GET", f"_ml/trained_models/{model_id}/_stats")
    assert resp.status == 200 and len(resp.body["trained_model_stats"]) == 1
    return dict(resp.body["trained_model_stats"][0]["inference_stats"])


@pytest.fixture()
def ingest() -> Engine:
    e = Engine()
    for model_id, config in (("test_classification", CLASSIFICATION_CONFIG), ("test_regression", REGRESSION_CONFIG)):
        assert e.request("PUT", f"_ml/trained_models/{model_id}", config).status == 200
    return e


def index_doc(e: Engine, pipeline: str, doc: dict[str, Any]) -> None:
    resp = e.request("POST", "index_for_inference_test/_doc", doc, params={"pipeline": pipeline})
    assert resp.status == 201, resp.body


# -- InferenceIngestIT ---------------------------------------------------------------------------------
def test_pipeline_ingest_counts_documents_and_inferences(ingest: Engine) -> None:
    # InferenceIngestIT#testPipelineIngest: 10 classified and 15 regressed documents, found by an exists
    # filter ("value":10 / "value":15), and _stats inference_count 10 / 15 with cache misses
    e = ingest
    for kind in ("classification", "regression"):
        assert (
            e.request(
                "PUT", f"_ingest/pipeline/simple_{kind}_pipeline", pipeline_definition(f"test_{kind}", kind)
            ).status
            == 200
        )
    for i in range(10):
        index_doc(e, "simple_classification_pipeline", SOURCE_DOCS[i % 4])
        index_doc(e, "simple_regression_pipeline", SOURCE_DOCS[i % 4])
    for i in range(5):
        index_doc(e, "simple_regression_pipeline", SOURCE_DOCS[i % 4])
    for kind in ("regression", "classification"):
        assert e.request("DELETE", f"_ingest/pipeline/simple_{kind}_pipeline").status == 200
    assert e.request("POST", "index_for_inference_test/_refresh").status == 200
    regressed = exists_search(e, "ml.inference.regression.predicted_value")
    assert '"value": 15' in json.dumps(regressed["hits"]["total"]) and total_hits(regressed) == 15
    assert total_hits(exists_search(e, "ml.inference.classification.predicted_value")) == 10
    classification, regression = inference_stats(e, "test_classification"), inference_stats(e, "test_regression")
    assert (classification["inference_count"], regression["inference_count"]) == (10, 15)
    assert classification["cache_miss_count"] > 0 and regression["cache_miss_count"] > 0


def test_pipeline_ingest_with_model_aliases(ingest: Engine) -> None:
    # InferenceIngestIT#testPipelineIngestWithModelAliases: 20 regressed documents, some by each model,
    # found by a term query on ml.inference.regression.model_id.keyword
    e = ingest
    for model_id in ("test_regression_1", "test_regression_2"):
        assert e.request("PUT", f"_ml/trained_models/{model_id}", REGRESSION_CONFIG).status == 200
    alias = "_ml/trained_models/{}/model_aliases/test_regression_alias"
    assert e.request("PUT", alias.format("test_regression_1"), params={"reassign": "true"}).status == 200
    assert (
        e.request(
            "PUT",
            "_ingest/pipeline/simple_regression_pipeline",
            pipeline_definition("test_regression_alias", "regression"),
        ).status
        == 200
    )
    for i in range(10):
        index_doc(e, "simple_regression_pipeline", SOURCE_DOCS[i % 4])
    assert e.request("PUT", alias.format("test_regression_2"), params={"reassign": "true"}).status == 200
    simulated = e.request(
        "POST", "_ingest/pipeline/simple_regression_pipeline/_simulate", {"docs": [{"_source": SOURCE_DOCS[0]}]}
    )
    assert (
        simulated.body["docs"][0]["doc"]["_source"]["ml"]["inference"]["regression"]["model_id"] == "test_regression_2"
    )
    for i in range(10):
        index_doc(e, "simple_regression_pipeline", SOURCE_DOCS[i % 4])
    assert total_hits(exists_search(e, "ml.inference.regression.predicted_value")) == 20
    for model_id in ("test_regression_1", "test_regression_2"):
        resp = e.request(
            "GET",
            "index_for_inference_test/_search",
            {
                "query": {
                    "bool": {"filter": [{"term": {"ml.inference.regression.model_id.keyword": {"value": model_id}}}]}
                }
            },
            params={"track_total_hits": "true"},
        )
        assert resp.status == 200 and total_hits(resp.body) == 10
    stats = e.request("GET", "_ml/trained_models/test_regression_alias/_stats").body["trained_model_stats"]
    assert len(stats) == 1 and stats[0]["model_id"] == "test_regression_2" and stats[0]["inference_stats"]


def test_search_queries_of_the_ingest_it() -> None:
    # the queries InferenceIngestIT's searchRequest sends: bool (filter / must / must_not / should),
    # exists, and term on the dynamic .keyword sub-field of a string (only strings have one)
    e = Engine()
    docs = [{"a": "x", "n": 1}, {"a": "y"}, {"n": None}, {"a": ["x", "z"], "o": {"p": 1}}]
    for doc in docs:
        assert e.request("POST", "q/_doc", doc).status == 201

    def count(query: dict[str, Any]) -> int:
        resp = e.request("GET", "q/_search", {"query": query})
        assert resp.status == 200, resp.body
        return total_hits(resp.body)

    assert count({"exists": {"field": "n"}}) == 1  # a null value does not exist
    assert count({"exists": {"field": "o"}}) == 1 and count({"exists": {"field": "o.p"}}) == 1
    assert count({"term": {"a.keyword": "x"}}) == 2 and count({"term": {"n.keyword": 1}}) == 0
    assert count({"bool": {"must": {"exists": {"field": "a"}}, "must_not": [{"term": {"a": "y"}}]}}) == 2
    assert count({"bool": {"should": [{"term": {"a": "y"}}, {"exists": {"field": "o"}}]}}) == 2
    assert count({"bool": {"filter": {"exists": {"field": "a"}}, "should": [{"term": {"a": "nope"}}]}}) == 3
    assert count({"bool": {}}) == 4
    missing = e.request("GET", "q/_search", {"query": {"exists": {}}})
    assert missing.status == 400 and missing.body["error"]["reason"] == "[exists] must be provided with a [field]"
    unknown = e.request("GET", "q/_search", {"query": {"bool": {"mustnt": []}}})
    assert unknown.status == 400 and unknown.body["error"]["reason"] == "[bool] query does not support [mustnt]"


# -- InferenceResults.writeResult ------------------------------------------------------------------------
def _simulate(e: Engine, processors: list[dict[str, Any]], source: dict[str, Any]) -> dict[str, Any]:
    resp = e.request(
        "POST", "_ingest/pipeline/_simulate", {"pipeline": {"processors": processors}, "docs": [{"_source": source}]}
    )
    assert resp.status == 200, resp.body
    return dict(resp.body["docs"][0]["doc"]["_source"])


def test_a_second_result_is_appended_to_the_target(ingest: Engine) -> None:
    # WarningInferenceResultsTests#testWriteResults: "result_field.0.warning" foo, "result_field.1.warning" bar;
    # InferenceResultsTestCase#testWriteToIngestDoc: an existing target makes the result its entry 1
    warn = {
        "inference": {
            "model_id": "test_regression",
            "target_field": "result_field",
            "inference_config": {"regression": {}},
            "field_map": {},
        }
    }
    out = _simulate(ingest, [warn, warn], {"other": 1})
    message = "Model [test_regression] could not be inferred as all fields were missing"
    assert out["result_field"] == [{"warning": message, "model_id": "test_regression"}] * 2
    regress = {**warn, "inference": {**warn["inference"], "field_map": FIELD_MAP}}
    out = _simulate(ingest, [regress], {**SOURCE_DOCS[0], "result_field": {}})
    assert out["result_field"] == [{}, {"predicted_value": 1.0, "model_id": "test_regression"}]


def test_classification_results_and_top_classes_fields(ingest: Engine) -> None:
    # ClassificationInferenceResultsTests#testWriteResultsWithTopClasses: results_field my_results, the top
    # classes under "bar" as {class_name, class_probability, class_score}; model_id next to them
    config = {
        "num_top_classes": 3,
        "results_field": "my_results",
        "top_classes_results_field": "bar",
        "prediction_field_type": "string",
    }
    out = _simulate(
        ingest,
        [
            {
                "inference": {
                    "model_id": "test_classification",
                    "target_field": "result_field",
                    "inference_config": {"classification": config},
                    "field_map": FIELD_MAP,
                }
            }
        ],
        SOURCE_DOCS[0],
    )
    result = out["result_field"]
    assert list(result) == ["my_results", "bar", "prediction_probability", "prediction_score", "model_id"]
    assert result["my_results"] == "second" and result["model_id"] == "test_classification"
    assert [c["class_name"] for c in result["bar"]] == ["second", "first"]
    assert all(set(c) == {"class_name", "class_probability", "class_score"} for c in result["bar"])


# -- the inference pipeline aggregation ------------------------------------------------------------------
@pytest.fixture()
def store() -> Engine:
    e = Engine()
    assert e.request("PUT", "_ml/trained_models/reg", STORE_REGRESSION).status == 200
    assert (
        e.request(
            "PUT",
            "_ml/trained_models/cls",
            {
                **CLASSIFICATION_CONFIG,
                "input": {"field_names": ["avg_cost"]},
                "definition": {
                    "trained_model": {
                        "tree": {
                            **CLASSIFICATION_CONFIG["definition"]["trained_model"]["tree"],
                            "feature_names": ["avg_cost"],
                        }
                    }
                },
            },
        ).status
        == 200
    )
    assert (
        e.request(
            "PUT",
            "/store",
            {
                "mappings": {
                    "properties": {
                        "product": {"type": "keyword"},
                        "cost": {"type": "integer"},
                        "time": {"type": "date"},
                    }
                }
            },
        ).status
        == 200
    )
    bulk = "".join('{"index": {}}\n' + json.dumps(d) + "\n" for d in STORE_DOCS)
    assert e.request("POST", "/store/_bulk", bulk, params={"refresh": "true"}).body["errors"] is False
    return e


def _aggs(inference: dict[str, Any]) -> dict[str, Any]:
    return {
        "size": 0,
        "aggs": {
            "good": {
                "terms": {"field": "product", "size": 10},
                "aggs": {"avg_cost_agg": {"avg": {"field": "cost"}}, "inf": {"inference": inference}},
            }
        },
    }


def _error(e: Engine, inference: dict[str, Any]) -> tuple[int, str, str]:
    resp = e.request("POST", "/store/_search", _aggs(inference))
    return resp.status, resp.body["error"]["type"], resp.body["error"]["reason"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("_count.x", "_count must be the last element in the path"),
        ("_key>x", "_key must be the last element in the path"),
    ],
)
def test_count_and_key_end_a_bucket_path(store: Engine, path: str, message: str) -> None:
    # InternalMultiBucketAggregation.InternalBucket.getProperty (InvalidAggregationPathException)
    got = _error(store, {"model_id": "reg", "buckets_path": {"avg_cost": path}})
    assert got == (400, "invalid_aggregation_path_exception", message)


def test_a_metric_has_only_its_value_as_a_property(store: Engine) -> None:
    # InternalNumericMetricsAggregation.SingleValue.getProperty: "value", else IllegalArgumentException
    got = _error(store, {"model_id": "reg", "buckets_path": {"avg_cost": "avg_cost_agg.foo"}})
    assert got == (400, "illegal_argument_exception", "path not supported for [avg_cost_agg]: [foo]")
    resp = store.request(
        "POST", "/store/_search", _aggs({"model_id": "reg", "buckets_path": {"avg_cost": "avg_cost_agg.value"}})
    )
    assert resp.status == 200 and resp.body["aggregations"]["good"]["buckets"][0]["inf"]["value"] == 2.0


def test_bucket_count_of_a_multi_bucket_aggregation(store: Engine) -> None:
    # InternalMultiBucketAggregation.getProperty: "_bucket_count" is the number of buckets (3 products -> 5.0)
    body = {
        "size": 0,
        "aggs": {
            "d": {
                "date_histogram": {"field": "time", "fixed_interval": "1d"},
                "aggs": {
                    "good": {"terms": {"field": "product"}},
                    "inf": {"inference": {"model_id": "reg", "buckets_path": {"avg_cost": "good._bucket_count"}}},
                },
            }
        },
    }
    resp = store.request("POST", "/store/_search", body)
    assert resp.status == 200 and resp.body["aggregations"]["d"]["buckets"][0]["inf"]["value"] == 5.0


@pytest.mark.parametrize(
    ("path", "rest"),
    [("inf.top_classes", "top_classes"), ("inf.feature_importance", "feature_importance"), ("inf>one>two", "one, two")],
)
def test_an_inference_result_has_only_its_value_as_a_property(store: Engine, path: str, rest: str) -> None:
    # InternalInferenceAggregationTests#testGetProperty_topClasses / _featureImportance / _givenTooLongPath
    body = _aggs(
        {
            "model_id": "cls",
            "inference_config": {"classification": {"num_top_classes": 2}},
            "buckets_path": {"avg_cost": "avg_cost_agg"},
        }
    )
    body["aggs"]["good"]["aggs"]["next"] = {"inference": {"model_id": "reg", "buckets_path": {"avg_cost": path}}}
    resp = store.request("POST", "/store/_search", body)
    assert resp.status == 400
    assert resp.body["error"]["reason"] == f"unknown property [{rest}] for inference aggregation [inf]"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        # AggregationPath.parse: the metric follows the last dot of the last element
        ("inf.one.two", "Cannot find an aggregation named [inf.one] in [d]"),
        # only a key in single quotes names a bucket (AggregationPath.pathElementContainsBucketKey)
        ('good["TV"]>avg_cost_agg', 'Cannot find an aggregation named ["TV"] in [good]'),
        (".avg", "Invalid path element [.avg] in path [.avg]"),
    ],
)
def test_bucket_path_parsing(path: str, message: str) -> None:
    e = Engine()
    assert e.request("PUT", "_ml/trained_models/reg", STORE_REGRESSION).status == 200
    bulk = "".join('{"index": {}}\n' + json.dumps(d) + "\n" for d in STORE_DOCS)
    assert e.request("POST", "/store/_bulk", bulk, params={"refresh": "true"}).status == 200
    body = {
        "size": 0,
        "aggs": {
            "d": {
                "date_histogram": {"field": "time", "fixed_interval": "1d"},
                "aggs": {
                    "good": {"terms": {"field": "product"}, "aggs": {"avg_cost_agg": {"avg": {"field": "cost"}}}},
                    "inf": {"inference": {"model_id": "reg", "buckets_path": {"avg_cost": path}}},
                },
            }
        },
    }
    resp = e.request("POST", "/store/_search", body)
    assert resp.status == 400 and resp.body["error"]["reason"] == message
    body["aggs"]["d"]["aggs"]["inf"]["inference"]["buckets_path"] = {" avg_cost": " good['TV'] > avg_cost_agg "}
    assert e.request("POST", "/store/_search", body).status == 200  # elements are trimmed


def test_adapted_updates_write_to_value(store: Engine) -> None:
    # InferencePipelineAggregationBuilderTests#testAdaptForAggregation: RegressionConfigUpdate(null, 20) and
    # ClassificationConfigUpdate(1, ...) both get results_field "value"
    resp = store.request(
        "POST",
        "/store/_search",
        _aggs(
            {
                "model_id": "reg",
                "inference_config": {"regression": {"num_top_feature_importance_values": 20}},
                "buckets_path": {"avg_cost": "avg_cost_agg", "product_type": "_key"},
            }
        ),
    )
    tv = resp.body["aggregations"]["good"]["buckets"][0]["inf"]
    assert list(tv) == ["value", "feature_importance"] and tv["value"] == 2.0
    assert {f["feature_name"] for f in tv["feature_importance"]} <= {"avg_cost", "product_type"}
    resp = store.request(
        "POST",
        "/store/_search",
        _aggs(
            {
                "model_id": "cls",
                "inference_config": {"classification": {"num_top_classes": 1}},
                "buckets_path": {"avg_cost": "avg_cost_agg"},
            }
        ),
    )
    tv = resp.body["aggregations"]["good"]["buckets"][0]["inf"]
    assert list(tv) == ["value", "top_classes", "prediction_probability", "prediction_score"]
    assert tv["value"] == "second" and len(tv["top_classes"]) == 1


def test_validation_errors_are_listed_in_order(store: Engine) -> None:
    # InferencePipelineAggregationBuilderTests#testValidate / #testValidate_invalidResultsField: the errors
    # of validate() in its order (model_id, results_field, top_classes)
    got = _error(
        store,
        {
            "inference_config": {"classification": {"results_field": "foo", "top_classes_results_field": "bar"}},
            "buckets_path": {"avg_cost": "avg_cost_agg"},
        },
    )
    assert got == (
        400,
        "action_request_validation_exception",
        "Validation Failed: 1: [model_id] must be set;2: setting option [results_field] to [foo] is not "
        "valid for inference aggregations;3: setting option [top_classes] to [bar] is not valid for "
        "inference aggregations;",
    )


def test_an_nlp_update_parses_and_the_tree_model_refuses_it(store: Engine) -> None:
    # MlInferenceNamedXContentProvider names the NLP updates too (ner, fill_mask ...): the aggregation parses,
    # and LocalModel.infer's refusal becomes each bucket's warning (InferencePipelineAggregator.reduce)
    resp = store.request(
        "POST",
        "/store/_search",
        _aggs({"model_id": "reg", "inference_config": {"ner": {}}, "buckets_path": {"avg_cost": "avg_cost_agg"}}),
    )
    assert resp.status == 200
    assert resp.body["aggregations"]["good"]["buckets"][0]["inf"] == {
        "warning": "Model [reg] has inference config of type [regression] which is not supported by inference "
        "request of type [ner]"
    }


def test_a_bad_tree_update_option_fails_the_parse(store: Engine) -> None:
    # RegressionConfigUpdate.fromXContentStrict: an unknown option is a parse error of inference_config
    resp = store.request(
        "POST",
        "/store/_search",
        _aggs(
            {
                "model_id": "reg",
                "inference_config": {"regression": {"num_top_classes": 1}},
                "buckets_path": {"avg_cost": "avg_cost_agg"},
            }
        ),
    )
    assert resp.status == 400
    error = resp.body["error"]
    assert (error["type"], error["reason"]) == (
        "x_content_parse_exception",
        "[inference] failed to parse field [inference_config]",
    )
    assert error["caused_by"]["reason"] == "[regression] unknown field [num_top_classes]"


@pytest.mark.parametrize(
    ("inference", "kind", "message"),
    [
        # ConstructingObjectParser: buckets_path is the constructor argument
        ({"model_id": "reg"}, "illegal_argument_exception", "Required [buckets_path]"),
        # ObjectParser: declareObject / declareString take an object / a string
        (
            {"model_id": "reg", "buckets_path": "avg_cost_agg"},
            "x_content_parse_exception",
            "[inference] buckets_path doesn't support values of type: VALUE_STRING",
        ),
        (
            {"model_id": 5, "buckets_path": {"avg_cost": "avg_cost_agg"}},
            "x_content_parse_exception",
            "[inference] model_id doesn't support values of type: VALUE_NUMBER",
        ),
    ],
)
def test_parser_errors(store: Engine, inference: dict[str, Any], kind: str, message: str) -> None:
    assert _error(store, inference) == (400, kind, message)


def test_a_model_that_must_be_deployed_is_not_usable_in_search(store: Engine) -> None:
    # ModelLoadingService.getModelForSearch: an allocate-only (NLP) model fails the search
    assert (
        store.request(
            "PUT",
            "_ml/trained_models/nlp",
            {
                "model_type": "pytorch",
                "inference_config": {"text_embedding": {}},
                "input": {"field_names": ["text_field"]},
            },
        ).status
        == 200
    )
    got = _error(store, {"model_id": "nlp", "buckets_path": {"text_field": "_key"}})
    assert got == (
        400,
        "status_exception",
        "Trained model [nlp] with type [pytorch] is currently not usable in search.",
    )
