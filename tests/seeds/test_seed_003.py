"""Seed 003 (the ES get trained model stats API reference, in Chinese): every request form, the query
parameters, the documented response fields and the example, as written (placeholders filled).

The example's cluster is rebuilt: the two tree models with the ids the response shows, four
inferences on the first, a pipeline ``flight-delay`` whose ``inference`` processor uses the second
and 178 documents through it; the answer is compared with the documented one key by key and type by
type, and on every value that follows from what was run. Two things differ from the documented
answer by design: ``count`` is 3, as on any cluster since 7.6, because the built-in
``lang_ident_model_1`` is listed too; ``cache_miss_count`` counts model loads (1 here, 3 on the
documented cluster). The deployment fields (``deployment_stats`` and its ``nodes``) are checked
against a started deployment of the bundled MiniLM; as in Elasticsearch, ``error_count``,
``rejected_execution_count`` and ``timeout_count`` are written only when not zero, and ``cache_size``
sits in ``deployment_stats`` (the seed's flattened list shows it under ``allocation_status``).
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from es_infer_nb import Engine
from es_infer_nb.server import serve
from seed_examples import assert_in_seed, console, error, ok, same_shape, seed_text

SEED = seed_text("003_7a3de1b4777dd9d5.txt")

# -- the seed's requests and example, as written -----------------------------------------------------

REQUESTS = """GET _ml/trained_models/_stats

GET _ml/trained_models/_all/_stats

GET _ml/trained_models/<model_id_or_deployment_id>/_stats

GET _ml/trained_models/<model_id_or_deployment_id>,<model_id_2_or_deployment_id_2>/_stats

GET _ml/trained_models/<model_id_pattern*_or_deployment_id_pattern*>,<model_id_2_or_deployment_id_2>/_stats"""

PYTHON_CLIENT = """resp = client.ml.get_trained_models_stats()
print(resp)"""

EXAMPLE_REQUEST = "GET _ml/trained_models/_stats"

RESPONSE = """{
  "count": 2,
  "trained_model_stats": [
    {
      "model_id": "flight-delay-prediction-1574775339910",
      "pipeline_count": 0,
      "inference_stats": {
        "failure_count": 0,
        "inference_count": 4,
        "cache_miss_count": 3,
        "missing_all_fields_count": 0,
        "timestamp": 1592399986979
      }
    },
    {
      "model_id": "regression-job-one-1574775307356",
      "pipeline_count": 1,
      "inference_stats": {
        "failure_count": 0,
        "inference_count": 178,
        "cache_miss_count": 3,
        "missing_all_fields_count": 0,
        "timestamp": 1592399986979
      },
      "ingest": {
        "total": {
          "count": 178,
          "time_in_millis": 8,
          "current": 0,
          "failed": 0
        },
        "pipelines": {
          "flight-delay": {
            "count": 178,
            "time_in_millis": 8,
            "current": 0,
            "failed": 0,
            "processors": [
              {
                "inference": {
                  "type": "inference",
                  "stats": {
                    "count": 178,
                    "time_in_millis": 7,
                    "current": 0,
                    "failed": 0
                  }
                }
              }
            ]
          }
        }
      }
    }
  ]
}"""

FIRST, SECOND = "flight-delay-prediction-1574775339910", "regression-job-one-1574775307356"


def test_examples_are_the_seeds_own():
    assert_in_seed(SEED, REQUESTS, PYTHON_CLIENT, EXAMPLE_REQUEST + "\n\nAPI", RESPONSE)


# -- the example's cluster ---------------------------------------------------------------------------

def regression(field: str) -> dict[str, Any]:
    return {"input": {"field_names": [field]}, "inference_config": {"regression": {}},
            "definition": {"trained_model": {"tree": {"feature_names": [field], "tree_structure": [
                {"node_index": 0, "split_feature": 0, "threshold": 30.0, "decision_type": "lte",
                 "left_child": 1, "right_child": 2},
                {"node_index": 1, "leaf_value": 5.0}, {"node_index": 2, "leaf_value": 45.0}]}}}}


def example_cluster(engine: Engine) -> Engine:
    ok(engine, "PUT", f"_ml/trained_models/{FIRST}", regression("DistanceMiles"))
    ok(engine, "PUT", f"_ml/trained_models/{SECOND}", regression("DistanceMiles"))
    ok(engine, "POST", f"_ml/trained_models/{FIRST}/_infer",
       {"docs": [{"DistanceMiles": d} for d in (10, 20, 40, 80)]})
    ok(engine, "PUT", "_ingest/pipeline/flight-delay", {"processors": [{"inference": {"model_id": SECOND}}]})
    docs = [{"_source": {"DistanceMiles": i}} for i in range(178)]
    answer = ok(engine, "POST", "_ingest/pipeline/flight-delay/_simulate", {"docs": docs})
    assert all("error" not in d for d in answer["docs"])
    return engine


@pytest.fixture
def cluster(engine: Engine) -> Engine:
    return example_cluster(engine)


def test_example(cluster):
    (req,) = console(EXAMPLE_REQUEST)
    answer = ok(cluster, req.method, req.path)
    documented = json.loads(RESPONSE)
    assert list(answer) == list(documented) and isinstance(answer["count"], int)
    ids = [s["model_id"] for s in answer["trained_model_stats"]]
    assert ids == sorted(ids) == [FIRST, "lang_ident_model_1", SECOND]
    assert answer["count"] == 3
    first, _, second = answer["trained_model_stats"]
    for got, want in zip((first, second), documented["trained_model_stats"]):
        same_shape(got, want)
        assert set(got) - {"model_size_stats"} == set(want)  # no ingest where no pipeline uses the model
        assert got["model_id"] == want["model_id"] and got["pipeline_count"] == want["pipeline_count"]
        inference = got["inference_stats"]
        assert {k: inference[k] for k in ("failure_count", "inference_count", "missing_all_fields_count")} == {
            k: want["inference_stats"][k] for k in ("failure_count", "inference_count", "missing_all_fields_count")}
        assert inference["cache_miss_count"] == 1
    ingest = second["ingest"]
    for counters in (ingest["total"], ingest["pipelines"]["flight-delay"],
                     ingest["pipelines"]["flight-delay"]["processors"][0]["inference"]["stats"]):
        assert (counters["count"], counters["current"], counters["failed"]) == (178, 0, 0)
        assert counters["time_in_millis"] >= 0
    assert list(ingest["pipelines"]) == ["flight-delay"]
    (processor,) = ingest["pipelines"]["flight-delay"]["processors"]
    assert list(processor) == ["inference"] and processor["inference"]["type"] == "inference"


def test_python_client_example(cluster):
    """The seed's Python example, run by the real elasticsearch client against ``es-infer serve``."""
    elasticsearch = pytest.importorskip("elasticsearch")
    handle = serve(cluster, port=0, quiet=True)
    try:
        client = elasticsearch.Elasticsearch(handle.url, request_timeout=30)
        namespace: dict[str, Any] = {"client": client, "print": lambda value: printed.append(value)}
        printed: list[Any] = []
        exec(PYTHON_CLIENT, namespace)  # noqa: S102 - the seed's two lines, as written
        client.close()
    finally:
        handle.stop()
    (resp,) = printed
    assert resp["count"] == 3
    first, _, second = resp["trained_model_stats"]
    for got, want in zip((first, second), json.loads(RESPONSE)["trained_model_stats"]):
        same_shape(got, want)
        assert (got["model_id"], got["inference_stats"]["inference_count"]) == (
            want["model_id"], want["inference_stats"]["inference_count"])


# -- the request forms and query parameters ------------------------------------------------------------

@pytest.fixture(scope="module")
def deployed() -> Iterator[Engine]:
    """The example's cluster plus the bundled MiniLM deployed as ``my-deployment``, used once."""
    engine = example_cluster(Engine())
    ok(engine, "POST", "_ml/trained_models/sentence-transformers__all-minilm-l6-v2/deployment/_start"
                       "?deployment_id=my-deployment&wait_for=started")
    ok(engine, "POST", "_ml/trained_models/my-deployment/_infer", {"docs": [{"text_field": "flight delayed"}]})
    yield engine
    ok(engine, "POST", "_ml/trained_models/my-deployment/deployment/_stop")


MINILM = "sentence-transformers__all-minilm-l6-v2"
ALL = [FIRST, "lang_ident_model_1", SECOND, MINILM]  # sorted by model_id
ONE, TWO, PATTERN = ("<model_id_or_deployment_id>", "<model_id_2_or_deployment_id_2>",
                     "<model_id_pattern*_or_deployment_id_pattern*>")
FILLS = [  # (request line, placeholders, model ids answered)
    (0, {}, ALL),
    (1, {}, ALL),
    (2, {ONE: SECOND}, [SECOND]),
    (2, {ONE: "my-deployment"}, [MINILM]),
    (3, {ONE: "my-deployment", TWO: FIRST}, [FIRST, MINILM]),
    (3, {ONE: FIRST, TWO: SECOND}, [FIRST, SECOND]),
    (4, {PATTERN: "flight-delay*", TWO: "my-deployment"}, [FIRST, MINILM]),
    (4, {PATTERN: "*-job-*", TWO: FIRST}, [FIRST, SECOND]),
    (4, {PATTERN: "my-dep*", TWO: SECOND}, [SECOND, MINILM]),
]


@pytest.mark.parametrize(("line", "values", "expected"), FILLS)
def test_request_forms(deployed, line, values, expected):
    requests = console(REQUESTS, **values)
    assert len(requests) == 5
    req = requests[line]
    assert "<" not in req.path and req.method == "GET"
    answer = ok(deployed, req.method, req.path)
    assert [s["model_id"] for s in answer["trained_model_stats"]] == expected
    assert answer["count"] == len(expected)
    for entry in answer["trained_model_stats"]:
        assert ("deployment_stats" in entry) == (entry["model_id"] == MINILM)


def test_deployment_pattern_without_a_model_match(deployed):
    answer = ok(deployed, "GET", "_ml/trained_models/my-dep*/_stats?allow_no_match=false")
    ((entry),) = answer["trained_model_stats"]
    assert entry["deployment_stats"]["deployment_id"] == "my-deployment"


def test_allow_no_match(deployed):
    empty = ok(deployed, "GET", "_ml/trained_models/nothing*/_stats")
    assert empty == {"count": 0, "trained_model_stats": []}
    partial = ok(deployed, "GET", "_ml/trained_models/nothing*,flight-delay*/_stats")
    assert [s["model_id"] for s in partial["trained_model_stats"]] == [FIRST]
    error(deployed.request("GET", "_ml/trained_models/nothing*/_stats?allow_no_match=false"), 404,
          "resource_not_found_exception", "No known trained model with model_id [nothing*]")
    error(deployed.request("GET", "_ml/trained_models/nothing*,flight-delay*/_stats?allow_no_match=false"), 404,
          "resource_not_found_exception", "No known trained model with model_id [nothing*]")
    error(deployed.request("GET", "_ml/trained_models/nothing/_stats"), 404,
          "resource_not_found_exception", "No known trained model with model_id [nothing]")


def test_from_and_size(deployed):
    answer = ok(deployed, "GET", "_ml/trained_models/_stats?from=1&size=2")
    assert answer["count"] == 4  # every match, more than the array holds
    assert [s["model_id"] for s in answer["trained_model_stats"]] == ALL[1:3]


# -- the documented response fields --------------------------------------------------------------------

DEPLOYMENT_FIELDS = {"allocation_status", "cache_size", "deployment_id", "inference_count", "model_id", "nodes",
                     "number_of_allocations", "peak_throughput_per_minute", "priority", "start_time", "state",
                     "threads_per_allocation", "queue_capacity"}
NODE_FIELDS = {"average_inference_time_ms", "average_inference_time_ms_excluding_cache_hits",
               "average_inference_time_ms_last_minute", "inference_cache_hit_count",
               "inference_cache_hit_count_last_minute", "inference_count", "last_access", "node",
               "number_of_allocations", "number_of_pending_requests", "peak_throughput_per_minute", "routing_state",
               "start_time", "threads_per_allocation", "throughput_last_minute"}
ZERO_OMITTED = {"error_count", "rejected_execution_count", "timeout_count"}


def test_documented_fields(deployed):
    for name in DEPLOYMENT_FIELDS | NODE_FIELDS | ZERO_OMITTED | {"allocation_count", "target_allocation_count",
                                                                  "ephemeral_id", "transport_address",
                                                                  "model_size_bytes", "required_native_memory_bytes"}:
        assert f"\n{name}\n" in SEED, name  # each is a documented property
    (stats,) = ok(deployed, "GET", "_ml/trained_models/my-deployment/_stats")["trained_model_stats"]
    assert set(stats) == {"model_id", "model_size_stats", "pipeline_count", "inference_stats", "deployment_stats"}
    assert stats["model_size_stats"]["model_size_bytes"] > 0
    assert stats["model_size_stats"]["required_native_memory_bytes"] > 0
    deployment = stats["deployment_stats"]
    # ES's documented fields, plus es_infer_nb's one extension: the precision the deployment runs at
    assert set(deployment) == DEPLOYMENT_FIELDS | {"precision"}
    assert deployment["precision"] in ("fp32", "bf16", "fp16", "int8")
    assert (deployment["deployment_id"], deployment["model_id"]) == ("my-deployment", MINILM)
    assert (deployment["state"], deployment["priority"], deployment["inference_count"]) == ("started", "normal", 1)
    assert deployment["allocation_status"] == {"allocation_count": 1, "target_allocation_count": 1,
                                               "state": "fully_allocated"}
    (node,) = deployment["nodes"]
    assert set(node) == NODE_FIELDS
    ((node_id, info),) = node["node"].items()
    assert {"name", "ephemeral_id", "transport_address", "attributes"} <= set(info) and node_id
    assert node["routing_state"] == {"routing_state": "started"}
    assert (node["inference_count"], node["number_of_pending_requests"], node["inference_cache_hit_count"]) == (1, 0, 0)
    assert all(isinstance(node[k], float) for k in ("average_inference_time_ms",
                                                    "average_inference_time_ms_excluding_cache_hits"))
    assert isinstance(node["last_access"], int) and isinstance(node["start_time"], int)
