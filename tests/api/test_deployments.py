"""Deployment APIs (spec §7): start / stop / update / cache clear, their ES errors, and deployment_stats.

The state machine is exercised on a pytorch model PUT through the REST API with its definition parts;
its loader is replaced by a small counting text model (the deployment layer is what is under test;
the NLP tasks have their own tests). The inference cache and the stats are also checked on the bundled
all-MiniLM-L6-v2, with real vectors.
"""

from __future__ import annotations

import base64

import pytest

from es_infer_nb import Engine
from es_infer_nb.models import deployments as deployments_module
from es_infer_nb.models.doc_columns import DocsResult
from es_infer_nb.models.nlp_backend import text_input
from es_infer_nb.models.nlp_backend import EmbeddedBackend

EMBEDDED = "sentence-transformers__all-minilm-l6-v2"
DEFINITION = base64.b64encode(b"0123456789").decode()


class CountingModel:
    """A text model: ``predicted_value`` = [length, number of words]; counts the texts it sees."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.seen: list[str] = []

    def infer(self, docs, update=None, *, field=None):
        out = []
        for doc in docs:
            text = text_input(doc, field)
            if not isinstance(text, str):
                out.append({"error": text.reason})
                continue
            self.seen.append(text)
            out.append({"predicted_value": [float(len(text)), float(len(text.split()))]})
        return DocsResult(self.model_id, out)


@pytest.fixture
def models(monkeypatch):
    """Loaded models by (model id, device), created by the deployments' loader."""
    loaded: dict[tuple[str, str], CountingModel] = {}

    def load(model_id, stored, device, definitions=None, **options):
        if not stored.get("model_size_bytes"):
            raise FileNotFoundError(f"no definition for [{model_id}]")
        loaded[(model_id, device)] = CountingModel(model_id)
        return loaded[(model_id, device)]

    monkeypatch.setattr(deployments_module, "load_backend", load)
    return loaded


def put_pytorch(engine: Engine, model_id: str = "tiny", parts: int = 1) -> None:
    r = engine.request("PUT", f"_ml/trained_models/{model_id}", {
        "model_type": "pytorch", "model_size_bytes": 10, "input": {"field_names": ["text_field"]},
        "inference_config": {"pass_through": {"tokenization": {"bert": {"with_special_tokens": False}}}}})
    assert r.status == 200, r.body
    assert r.body["location"] == {"index": {"name": ".ml-inference-native-000002"}}
    assert r.body["inference_config"]["pass_through"]["vocabulary"] == {"index": ".ml-inference-native-000002"}
    assert engine.request("PUT", f"_ml/trained_models/{model_id}/vocabulary",
                          {"vocabulary": ["[PAD]", "[UNK]", "these", "are"]}).status == 200
    chunk = base64.b64encode(b"01234").decode()
    for part in range(parts):
        body = {"definition": chunk if parts == 2 else DEFINITION, "total_definition_length": 10,
                "total_parts": parts}
        r = engine.request("PUT", f"_ml/trained_models/{model_id}/definition/{part}", body)
        assert r.status == 200 and r.body == {"acknowledged": True}, r.body


def error(resp):
    return resp.status, resp.body["error"]["type"], resp.body["error"]["reason"]


def start(engine, model_id="tiny", **params):
    return engine.request("POST", f"_ml/trained_models/{model_id}/deployment/_start", params=params or None)


# -- _start validation (no model needed) ----------------------------------------------------------------


@pytest.mark.parametrize("params, message", [
    ({"priority": "low", "threads_per_allocation": 4}, "[threads_per_allocation] must be 1 when [priority] is low"),
    ({"priority": "low", "number_of_allocations": 2}, "[number_of_allocations] must be 1 when [priority] is low"),
    ({"threads_per_allocation": 3}, "[threads_per_allocation] must be a power of 2 less than or equal to 32"),
    ({"threads_per_allocation": 64}, "[threads_per_allocation] must be a power of 2 less than or equal to 32"),
    ({"threads_per_allocation": 0}, "[threads_per_allocation] must be a positive integer"),
    ({"number_of_allocations": 0}, "[number_of_allocations] must be a positive integer"),
    ({"queue_capacity": 0}, "[queue_capacity] must be a positive integer"),
    ({"queue_capacity": 100001}, "[queue_capacity] must be less than 100000"),
    ({"timeout": "0s"}, "[timeout] must be positive"),
])
def test_start_validation(engine, params, message):
    put_pytorch(engine)
    status, kind, reason = error(start(engine, **params))
    assert (status, kind) == (400, "action_request_validation_exception")
    assert message in reason and reason.startswith("Validation Failed: 1: ")


def test_start_validation_lists_every_problem_in_order(engine):
    put_pytorch(engine)
    _, _, reason = error(start(engine, priority="low", threads_per_allocation=3, queue_capacity=0))
    assert reason == ("Validation Failed: 1: [threads_per_allocation] must be a power of 2 less than or equal to 32;"
                      "2: [queue_capacity] must be a positive integer;"
                      "3: [threads_per_allocation] must be 1 when [priority] is low;")


def test_start_parameter_parsing_errors(engine):
    put_pytorch(engine)
    assert error(start(engine, cache_size="100")) == (
        400, "parse_exception",
        "failed to parse setting [cache_size] with value [100] as a size in bytes: unit is missing or unrecognized")
    assert error(start(engine, threads_per_allocation="two")) == (  # RestRequest.paramAsInt
        400, "illegal_argument_exception", "Failed to parse int parameter [threads_per_allocation] with value [two]")
    assert error(start(engine, priority="urgent"))[0] == 400
    assert error(start(engine, bogus="1")) == (
        400, "illegal_argument_exception",
        "request [/_ml/trained_models/tiny/deployment/_start] contains unrecognized parameter: [bogus]")


def test_start_errors_for_models(engine, models):
    assert error(start(engine, "nope")) == (404, "resource_not_found_exception", "Could not find trained model [nope]")
    engine.request("PUT", "_ml/trained_models/tree", {
        "input": {"field_names": ["x"]}, "inference_config": {"regression": {}},
        "definition": {"trained_model": {"tree": {"feature_names": ["x"], "tree_structure": [
            {"node_index": 0, "leaf_value": 1.0}]}}}})
    assert error(start(engine, "tree")) == (
        400, "status_exception", "model [tree] of type [tree_ensemble] cannot be deployed. Only PyTorch models can be deployed")
    engine.request("PUT", "_ml/trained_models/bare", {"model_type": "pytorch", "inference_config": {"pass_through": {}}})
    assert error(start(engine, "bare")) == (
        404, "resource_not_found_exception", "Could not find trained model definition [bare]")
    put_pytorch(engine, "half", parts=2)
    engine.request("DELETE", "_ml/trained_models/half")  # parts go with the model
    put_pytorch(engine, "half", parts=1)
    assert start(engine, "half").status == 200


def test_truncated_definition_cannot_start_and_definition_status(engine, models):
    engine.request("PUT", "_ml/trained_models/parts", {"model_type": "pytorch", "model_size_bytes": 10,
                                                       "inference_config": {"pass_through": {}}})
    half = base64.b64encode(b"01234").decode()
    assert engine.request("PUT", "_ml/trained_models/parts/definition/0",
                          {"definition": half, "total_definition_length": 10, "total_parts": 2}).status == 200

    def fully_defined():
        r = engine.request("GET", "_ml/trained_models/parts", params={"include": "definition_status"})
        return r.body["trained_model_configs"][0]["fully_defined"]

    assert fully_defined() is False
    assert error(start(engine, "parts")) == (
        400, "status_exception", "Model definition truncated. Unable to deserialize trained model definition [parts]")
    engine.request("PUT", "_ml/trained_models/parts/definition/1",
                   {"definition": half, "total_definition_length": 10, "total_parts": 2})
    assert fully_defined() is True
    r = start(engine, "parts")
    assert r.status == 200 and r.body["assignment"]["task_parameters"]["model_bytes"] == 10


def test_definition_part_validation(engine):
    put_pytorch(engine)
    r = engine.request("PUT", "_ml/trained_models/tiny/definition/5",
                       {"definition": DEFINITION, "total_definition_length": -1, "total_parts": 2})
    assert error(r) == (400, "action_request_validation_exception",
                        "Validation Failed: 1: [total_definition_length] must be greater than 0;"
                        "2: [part] must be less than total_parts;")
    r = engine.request("PUT", "_ml/trained_models/nope/definition/0",
                       {"definition": DEFINITION, "total_definition_length": 10, "total_parts": 1})
    assert error(r)[:2] == (404, "resource_not_found_exception")
    r = engine.request("PUT", "_ml/trained_models/tiny/vocabulary", {"words": []})
    assert error(r)[:2] == (400, "x_content_parse_exception")


def test_vocabulary_is_illegal_at_creation(engine):
    r = engine.request("PUT", "_ml/trained_models/v", {
        "model_type": "pytorch", "inference_config": {"pass_through": {"vocabulary": {"index": "x"}}}})
    assert error(r) == (400, "action_request_validation_exception",
                        "Validation Failed: 1: illegal setting [vocabulary] on inference model creation;")


# -- the state machine ---------------------------------------------------------------------------------


def test_start_answers_the_assignment(engine, models):
    put_pytorch(engine)
    r = start(engine, cache_size="1kb", queue_capacity=50, number_of_allocations=2, threads_per_allocation=2)
    assert r.status == 200, r.body
    a = r.body["assignment"]
    assert a["task_parameters"] == {
        "model_id": "tiny", "deployment_id": "tiny", "model_bytes": 10, "threads_per_allocation": 2,
        "number_of_allocations": 2, "queue_capacity": 50, "cache_size": "1kb", "priority": "normal",
        "per_deployment_memory_bytes": 0, "per_allocation_memory_bytes": 0}
    ((node_id, routing),) = a["routing_table"].items()
    assert routing == {"current_allocations": 2, "target_allocations": 2, "routing_state": "started", "reason": ""}
    assert a["assignment_state"] == "started" and a["max_assigned_allocations"] == 2
    assert a["start_time"].endswith("Z") and "T" in a["start_time"]
    assert list(models) == [("tiny", "cpu")]  # loaded when the deployment starts


def test_default_cache_size_is_the_model_size(engine, models):
    put_pytorch(engine)
    assert start(engine).body["assignment"]["task_parameters"]["cache_size"] == "10b"


def test_already_started_and_deployment_id_rules(engine, models):
    put_pytorch(engine)
    put_pytorch(engine, "other")
    assert start(engine).status == 200
    assert error(start(engine)) == (
        400, "status_exception",
        "Could not start model deployment because an existing deployment with the same id [tiny] exist")
    assert error(start(engine, deployment_id="other"))[2].startswith(
        "Deployment id [other] is the same as an another model which is not the model being deployed.")
    r = start(engine, deployment_id="tiny-2")
    assert r.status == 200 and r.body["assignment"]["task_parameters"]["deployment_id"] == "tiny-2"
    r = engine.request("PUT", "_ml/trained_models/tiny-2", {"model_type": "pytorch", "inference_config": {"ner": {}}})
    assert error(r) == (400, "status_exception",
                        "Cannot create model [tiny-2] the id is the same as an current model deployment")


def test_infer_requires_a_deployment(engine, models):
    put_pytorch(engine)
    r = engine.request("POST", "_ml/trained_models/tiny/_infer", {"docs": [{"text_field": "a b"}]})
    assert error(r) == (409, "status_exception", "Model [tiny] must be deployed to use. Please deploy with the start "
                        "trained model deployment API.")
    start(engine, deployment_id="dep")
    for path in ("tiny/_infer", "dep/_infer", "dep/deployment/_infer"):
        r = engine.request("POST", f"_ml/trained_models/{path}", {"docs": [{"text_field": "a b c"}]})
        assert r.status == 200 and r.body == {"inference_results": [{"predicted_value": [5.0, 3.0]}]}, (path, r.body)
    r = engine.request("POST", "_ml/trained_models/dep/_infer", {"docs": [{"text_field": "x"}, {"other": 1},
                                                                         {"text_field": 3}]})
    assert r.body["inference_results"] == [
        {"predicted_value": [1.0, 1.0]},
        {"error": "Input field [text_field] does not exist in the source document"},
        {"error": "Input value [3] for field [text_field] must be a string"},
    ]


def test_stop_update_and_errors(engine, models):
    put_pytorch(engine)
    start(engine)
    r = engine.request("POST", "_ml/trained_models/tiny/deployment/_update", {"number_of_allocations": 4})
    assert r.status == 200 and r.body["assignment"]["task_parameters"]["number_of_allocations"] == 4
    r = engine.request("POST", "_ml/trained_models/tiny/deployment/_update", {"number_of_allocations": 0})
    assert error(r) == (400, "action_request_validation_exception",
                        "Validation Failed: 1: [number_of_allocations] must be a positive integer;")
    r = engine.request("POST", "_ml/trained_models/nope/deployment/_update", {"number_of_allocations": 2})
    assert error(r) == (404, "resource_not_found_exception", "No known model deployment with id [nope]")
    r = engine.request("DELETE", "_ml/trained_models/tiny")
    assert error(r) == (409, "status_exception",
                        "Cannot delete model [tiny] as it is currently deployed; use force to delete the model")
    engine.request("PUT", "_ingest/pipeline/p", {"processors": [{"inference": {"model_id": "tiny"}}]})
    r = engine.request("POST", "_ml/trained_models/tiny/deployment/_stop")
    assert error(r) == (409, "status_exception", "Cannot stop deployment [tiny] as it is referenced by ingest "
                        "processors; use force to stop the deployment")
    r = engine.request("POST", "_ml/trained_models/tiny/deployment/_stop", params={"force": "true"})
    assert r.body == {"stopped": True}
    assert engine.request("POST", "_ml/trained_models/tiny/_infer", {"docs": [{"text_field": "a"}]}).status == 409
    assert error(engine.request("POST", "_ml/trained_models/tiny/deployment/_stop",
                                params={"allow_no_match": "false"}))[0] == 404


def test_low_priority_rule_is_the_start_requests_only(engine, models):
    """``[number_of_allocations] must be 1 when [priority] is low`` is StartTrainedModelDeploymentAction's;
    the update request has no such rule (UpdateTrainedModelDeploymentAction.Request.validate)."""
    put_pytorch(engine)
    assert error(start(engine, priority="low", number_of_allocations=2))[2] == (
        "Validation Failed: 1: [number_of_allocations] must be 1 when [priority] is low;")
    assert start(engine, priority="low").status == 200
    r = engine.request("POST", "_ml/trained_models/tiny/deployment/_update", {"number_of_allocations": 2})
    assert r.status == 200 and r.body["assignment"]["task_parameters"]["number_of_allocations"] == 2


def test_queue_capacity_rejects_like_es(engine, models):
    put_pytorch(engine)
    start(engine, queue_capacity=2)
    r = engine.request("POST", "_ml/trained_models/tiny/_infer", {"docs": [{"text_field": t} for t in "abc"]})
    assert error(r) == (429, "es_rejected_execution_exception",
                        "inference process queue is full. Unable to execute command")
    assert models[("tiny", "cpu")].seen == []  # nothing of a refused call runs
    dep = stats(engine, "tiny")["deployment_stats"]
    assert dep["rejected_execution_count"] == 3 and dep["nodes"][0]["rejected_execution_count"] == 3
    assert stats(engine, "tiny")["inference_stats"]["failure_count"] == 3
    assert engine.request("POST", "_ml/trained_models/tiny/_infer",
                          {"docs": [{"text_field": t} for t in "ab"]}).status == 200  # what fits is served
    # a pipeline batch is fed in queue-sized chunks, never rejected
    r = engine.request("POST", "_ingest/pipeline/_simulate", {
        "pipeline": {"processors": [{"inference": {"model_id": "tiny"}}]},
        "docs": [{"_source": {"text_field": t}} for t in "abcde"]})
    assert [d["doc"]["_source"]["ml"]["inference"]["predicted_value"][0] for d in r.body["docs"]] == [1.0] * 5


@pytest.mark.parametrize("wait_for", ["starting", "started", "fully_allocated", "STARTED"])
def test_start_honours_wait_for(engine, models, wait_for):
    """Loading is synchronous, so every state ``wait_for`` names has been reached when ``_start`` answers."""
    put_pytorch(engine)
    r = start(engine, wait_for=wait_for, timeout="5s")
    assert r.status == 200, r.body
    assert r.body["assignment"]["assignment_state"] == "started"
    assert ("tiny", "cpu") in models  # loaded before the answer
    dep = stats(engine, "tiny")["deployment_stats"]
    assert dep["state"] == "started" and dep["allocation_status"]["state"] == "fully_allocated"


def test_start_rejects_an_unknown_wait_for_state(engine, models):
    put_pytorch(engine)
    assert error(start(engine, wait_for="stopped")) == (
        400, "illegal_argument_exception",
        "No enum constant org.elasticsearch.xpack.core.ml.inference.assignment.AllocationStatus.State.STOPPED")


def stats(engine, id_):
    r = engine.request("GET", f"_ml/trained_models/{id_}/_stats")
    assert r.status == 200, r.body
    return r.body["trained_model_stats"][0]


def test_cache_hits_skip_the_model_and_are_counted(engine, models):
    put_pytorch(engine)
    start(engine, cache_size="10kb")
    model = models[("tiny", "cpu")]
    docs = {"docs": [{"text_field": "one"}, {"text_field": "two words"}, {"text_field": "one"}]}
    first = engine.request("POST", "_ml/trained_models/tiny/_infer", docs).body
    assert model.seen == ["one", "two words"]  # the repeat in the batch is computed once
    second = engine.request("POST", "_ml/trained_models/tiny/_infer", docs).body
    assert second == first and model.seen == ["one", "two words"]  # every document served from the cache
    node = stats(engine, "tiny")["deployment_stats"]["nodes"][0]
    assert node["inference_count"] == 6 and node["inference_cache_hit_count"] == 4
    assert node["inference_cache_hit_count_last_minute"] == 4 and node["throughput_last_minute"] == 6
    # another inference_config is another cache key
    engine.request("POST", "_ml/trained_models/tiny/_infer",
                   {**docs, "inference_config": {"pass_through": {"results_field": "x"}}})
    assert model.seen == ["one", "two words", "one", "two words"]
    assert engine.request("POST", "_ml/trained_models/tiny/deployment/cache/_clear").body == {"cleared": True}
    engine.request("POST", "_ml/trained_models/tiny/_infer", docs)
    assert len(model.seen) == 6


def test_cache_size_zero_disables_the_cache(engine, models):
    put_pytorch(engine)
    start(engine, cache_size="0b")
    for _ in range(2):
        engine.request("POST", "_ml/trained_models/tiny/_infer", {"docs": [{"text_field": "same"}]})
    assert models[("tiny", "cpu")].seen == ["same", "same"]
    assert stats(engine, "tiny")["deployment_stats"]["nodes"][0]["inference_cache_hit_count"] == 0


def test_cache_is_bounded_in_bytes_lru():
    from es_infer_nb.models.inference_cache import InferenceCache, estimate_bytes

    value = {"predicted_value": [1.0, 2.0]}
    size = estimate_bytes("k0") + estimate_bytes(value)
    cache = InferenceCache(2 * size)
    for key in ("k0", "k1"):
        cache.put(key, value, estimate_bytes(key))
    assert cache.get("k0") == value  # k0 is now the most recent
    cache.put("k2", value, estimate_bytes("k2"))
    assert cache.get("k1") is None and cache.get("k0") == value and cache.get("k2") == value
    assert cache.bytes_used <= 2 * size


def test_deployment_stats_shape(engine, models):
    put_pytorch(engine)
    start(engine, deployment_id="d1", cache_size="2kb")
    start(engine, deployment_id="d2", priority="low")
    engine.request("POST", "_ml/trained_models/d1/_infer", {"docs": [{"text_field": "a"}, {"nope": 1}]})
    body = engine.request("GET", "_ml/trained_models/tiny/_stats", params={"human": "true"}).body
    assert body["count"] == 1
    e1, e2 = body["trained_model_stats"]
    assert [e1["deployment_stats"]["deployment_id"], e2["deployment_stats"]["deployment_id"]] == ["d1", "d2"]
    assert list(e1) == ["model_id", "model_size_stats", "pipeline_count", "inference_stats", "deployment_stats"]
    assert e1["model_size_stats"] == {"model_size": "10b", "model_size_bytes": 10,  # human: readable first
                                      "required_native_memory": "240mb",
                                      "required_native_memory_bytes": 240 * 1024 * 1024 + 20}
    d = e1["deployment_stats"]
    assert list(d) == ["deployment_id", "model_id", "threads_per_allocation", "number_of_allocations",
                       "queue_capacity", "state", "allocation_status", "cache_size", "priority", "start_time_string",
                       "start_time", "error_count", "inference_count", "peak_throughput_per_minute", "nodes",
                       "precision"]  # es_infer_nb's own, after ES's fields
    assert d["state"] == "started" and d["cache_size"] == "2kb" and d["priority"] == "normal"
    assert d["allocation_status"] == {"allocation_count": 1, "target_allocation_count": 1, "state": "fully_allocated"}
    assert d["error_count"] == 1 and d["inference_count"] == 2 and d["queue_capacity"] == 10000
    (node,) = d["nodes"]
    assert list(node) == ["node", "routing_state", "inference_count", "average_inference_time_ms",
                          "average_inference_time_ms_excluding_cache_hits", "inference_cache_hit_count",
                          "last_access_string", "last_access", "number_of_pending_requests", "error_count",
                          "start_time_string", "start_time", "threads_per_allocation", "number_of_allocations",
                          "peak_throughput_per_minute", "throughput_last_minute",
                          "average_inference_time_ms_last_minute", "inference_cache_hit_count_last_minute"]
    assert node["routing_state"] == {"routing_state": "started"}
    ((_, info),) = node["node"].items()
    assert info["roles"] == ["ml"]
    assert e1["inference_stats"]["inference_count"] == 2 and e1["inference_stats"]["failure_count"] == 1
    d2 = e2["deployment_stats"]
    assert d2["priority"] == "low" and "inference_count" not in d2 and d2["nodes"][0]["inference_count"] == 0
    assert "average_inference_time_ms" not in d2["nodes"][0]
    # a deployment id selects its own entry
    only = engine.request("GET", "_ml/trained_models/d2/_stats").body
    assert [e["deployment_stats"]["deployment_id"] for e in only["trained_model_stats"]] == ["d2"]


def test_deployments_survive_a_new_engine_on_the_same_home(tmp_path, models):
    eng = Engine(tmp_path)
    put_pytorch(eng)
    start(eng, deployment_id="kept", queue_capacity=7)
    again = Engine(tmp_path)
    r = again.request("POST", "_ml/trained_models/kept/_infer", {"docs": [{"text_field": "a b"}]})
    assert r.status == 200 and r.body["inference_results"] == [{"predicted_value": [3.0, 2.0]}]
    assert stats(again, "kept")["deployment_stats"]["queue_capacity"] == 7
    again.request("POST", "_ml/trained_models/kept/deployment/_stop")
    assert Engine(tmp_path).request("POST", "_ml/trained_models/kept/_infer",
                                    {"docs": [{"text_field": "a"}]}).status == 404


# -- the bundled all-MiniLM-L6-v2 --------------------------------------------------------------------------


def test_embedded_model_needs_no_setup_and_caches(engine, monkeypatch):
    calls: list[int] = []
    real = EmbeddedBackend.infer

    def counting(self, docs, update=None, *, field=None):
        calls.append(len(docs))
        return real(self, docs, update, field=field)

    monkeypatch.setattr(EmbeddedBackend, "infer", counting)
    got = engine.request("GET", f"_ml/trained_models/{EMBEDDED}").body["trained_model_configs"][0]
    assert got["model_type"] == "pytorch" and "text_embedding" in got["inference_config"]
    assert EMBEDDED not in [c["model_id"] for c in engine.request("GET", "_ml/trained_models").body[
        "trained_model_configs"]]  # listings keep a cluster's counts
    docs = {"docs": [{"text_field": "The quick brown fox"}, {"text_field": "jumps over the lazy dog"}]}
    first = engine.request("POST", f"_ml/trained_models/{EMBEDDED}/_infer", docs)
    assert first.status == 200 and len(first.body["inference_results"][0]["predicted_value"]) == 384
    assert calls == [2]
    second = engine.request("POST", f"_ml/trained_models/{EMBEDDED}/_infer", docs)
    assert second.body == first.body and calls == [2]
    node = stats(engine, EMBEDDED)["deployment_stats"]["nodes"][0]
    assert node["inference_count"] == 4 and node["inference_cache_hit_count"] == 2
    r = engine.request("DELETE", f"_ml/trained_models/{EMBEDDED}", params={"force": "true"})
    assert r.status == 400


def test_embedded_model_bad_update_and_lone_surrogates(engine):
    # found by the request fuzzer: a text_embedding update that is not an object, and a text holding a lone
    # surrogate, answered 500s (type_error_exception); ES's tokenizer drops surrogate characters
    infer = f"_ml/trained_models/{EMBEDDED}/_infer"
    for update, token in ((1.5, "VALUE_NUMBER"), (True, "VALUE_BOOLEAN"), ([], "START_ARRAY")):
        r = engine.request("POST", infer, {"docs": [{"text_field": "a"}], "inference_config": {"text_embedding": update}})
        assert (r.status, r.body["error"]["type"], r.body["error"]["reason"]) == (
            400, "x_content_parse_exception", f"[text_embedding] expected an object but found [{token}]")
    odd = engine.request("POST", infer, {"docs": [{"text_field": "a\ud800b"}, {"text_field": "\udfff"}]})
    plain = engine.request("POST", infer, {"docs": [{"text_field": "ab"}, {"text_field": ""}]})
    assert odd.status == 200 and odd.body == plain.body


def test_pipelines_prefix_ingest_strings_and_report_the_id_used(engine, models):
    r = engine.request("PUT", "_ml/trained_models/prefixed", {
        "model_type": "pytorch", "inference_config": {"text_embedding": {}}, "model_size_bytes": 10,
        "input": {"field_names": ["text_field"]}, "prefix_strings": {"ingest": "passage: ", "search": "query: "}})
    assert r.status == 200, r.body
    engine.request("PUT", "_ml/trained_models/prefixed/definition/0",
                   {"definition": DEFINITION, "total_definition_length": 10, "total_parts": 1})
    start(engine, "prefixed", deployment_id="pdep", cache_size="1kb")
    engine.request("PUT", "_ml/trained_models/prefixed/model_aliases/emb-alias")
    for model_id, reported in (("pdep", "pdep"), ("prefixed", "prefixed"), ("emb-alias", "prefixed")):
        r = engine.request("POST", "_ingest/pipeline/_simulate", {
            "pipeline": {"processors": [{"inference": {"model_id": model_id}}]},
            "docs": [{"_source": {"text_field": "abc"}}]})
        written = r.body["docs"][0]["doc"]["_source"]["ml"]["inference"]
        assert written == {"predicted_value": [12.0, 2.0], "model_id": reported}, (model_id, r.body)
    model = models[("prefixed", "cpu")]
    assert model.seen == ["passage: abc"]  # the same text twice more: cache hits
    engine.request("POST", "_ml/trained_models/pdep/_infer", {"docs": [{"text_field": "abc"}]})
    assert model.seen == ["passage: abc", "abc"]  # _infer sends the text as given


def test_adaptive_allocations(engine, models):
    put_pytorch(engine)
    body = {"adaptive_allocations": {"enabled": True, "min_number_of_allocations": 2, "max_number_of_allocations": 1}}
    r = engine.request("POST", "_ml/trained_models/tiny/deployment/_start", body, params={"number_of_allocations": 3})
    assert error(r)[2] == ("Validation Failed: 1: [number_of_allocations] cannot be set if adaptive allocations is "
                           "enabled;2: [min_number_of_allocations] must not be larger than [max_number_of_allocations];")
    body["adaptive_allocations"]["max_number_of_allocations"] = 4
    r = engine.request("POST", "_ml/trained_models/tiny/deployment/_start", body)
    assert r.status == 200, r.body
    a = r.body["assignment"]
    assert a["task_parameters"]["number_of_allocations"] == 2  # the minimum, as computeNumberOfAllocations
    assert a["adaptive_allocations"] == {"enabled": True, "min_number_of_allocations": 2, "max_number_of_allocations": 4}
    d = stats(engine, "tiny")["deployment_stats"]
    assert list(d)[:5] == ["deployment_id", "model_id", "threads_per_allocation", "number_of_allocations",
                           "adaptive_allocations"]
    r = engine.request("POST", "_ml/trained_models/tiny/deployment/_start", {"bogus": 1},
                       params={"deployment_id": "x"})
    assert error(r)[:2] == (400, "x_content_parse_exception")


def test_device_choice(engine, models):
    import torch

    put_pytorch(engine)
    assert start(engine, device="cpu").status == 200
    assert list(models) == [("tiny", "cpu")]
    if not torch.cuda.is_available():
        r = start(engine, deployment_id="gpu", device="cuda")
        assert error(r) == (400, "status_exception", "device [cuda] was requested but CUDA is not available")
    else:  # pragma: no cover - on a GPU machine
        assert start(engine, deployment_id="gpu", device="cuda").status == 200
        assert ("tiny", "cuda") in models
    assert error(start(engine, deployment_id="odd", device="tpu"))[:2] == (400, "illegal_argument_exception")


def test_pipeline_references_by_deployment_id(engine, models):
    put_pytorch(engine)
    start(engine)
    start(engine, deployment_id="side")
    engine.request("PUT", "_ingest/pipeline/p", {"processors": [{"inference": {"model_id": "side"}}]})
    assert stats(engine, "tiny")["pipeline_count"] == 1  # a deployment id counts for its model
    r = engine.request("POST", "_ml/trained_models/tiny/deployment/_stop")  # only [side] is referenced
    assert r.body == {"stopped": True}
    r = engine.request("POST", "_ml/trained_models/side/deployment/_stop")
    assert error(r)[0] == 409


def test_bundled_model_is_listed_once_deployed(engine):
    def listed(path):
        body = engine.request("GET", path).body
        return [c["model_id"] for c in body.get("trained_model_configs", body.get("trained_model_stats", []))]

    assert EMBEDDED not in listed("_ml/trained_models") and EMBEDDED not in listed("_ml/trained_models/_stats")
    assert listed(f"_ml/trained_models/{EMBEDDED}") == [EMBEDDED]
    assert engine.request("POST", f"_ml/trained_models/{EMBEDDED}/deployment/_start").status == 200
    assert EMBEDDED in listed("_ml/trained_models") and EMBEDDED in listed("_ml/trained_models/sentence*/_stats")
    assert EMBEDDED not in listed("_ml/trained_models/lang*")


def test_definition_parts_persist_one_file_each(tmp_path, models):
    eng = Engine(tmp_path)
    put_pytorch(eng, "parted", parts=2)
    files = sorted(p.name for p in (tmp_path / "native_definition_parts" / "parted").iterdir())
    assert files == ["0.b64", "1.b64"]
    again = Engine(tmp_path)
    from es_infer_nb.models.native_definitions import native_definitions

    assert native_definitions(again).definition_bytes("parted") == b"0123401234"
    r = again.request("GET", "_ml/trained_models/parted", params={"include": "definition_status"})
    assert r.body["trained_model_configs"][0]["fully_defined"] is True
    assert again.request("DELETE", "_ml/trained_models/parted").status == 200
    assert not (tmp_path / "native_definition_parts" / "parted").exists()


def test_3rd_party_deployment_yaml_rules(engine, models):
    put_pytorch(engine)
    put_pytorch(engine, "other")
    r = start(engine, cache_size="0", deployment_id="b-dep")
    assert r.body["assignment"]["task_parameters"]["cache_size"] == "0"  # ByteSizeValue.getStringRep
    assert start(engine, deployment_id="a-dep").status == 200
    entries = engine.request("GET", "_ml/trained_models/tiny/_stats").body["trained_model_stats"]
    assert [e["deployment_stats"]["deployment_id"] for e in entries] == ["a-dep", "b-dep"]
    assert engine.request("PUT", "_ml/trained_models/tiny/model_aliases/al").status == 200
    r = engine.request("PUT", "_ml/trained_models/other/model_aliases/al", params={"reassign": "true"})
    assert error(r)[2] == "cannot reassign model_alias [al] to model [other] from model [tiny] as it is not yet deployed"
    for dep in ("a-dep", "b-dep"):
        assert engine.request("POST", f"_ml/trained_models/{dep}/deployment/_stop").body == {"stopped": True}
    assert error(engine.request("POST", "_ml/trained_models/a-dep/deployment/_stop",
                                params={"allow_no_match": "false"}))[0] == 404
    assert engine.request("POST", "_ml/trained_models/a-dep/deployment/_stop",
                          params={"allow_no_match": "true"}).body == {"stopped": True}


def test_update_merges_adaptive_allocations_and_reads_as_es_does(engine, models):
    """RestUpdateTrainedModelDeploymentAction / TrainedModelAssignmentClusterService: a partial
    ``adaptive_allocations`` merges into the deployment's, ``null`` removes them, a count is refused while
    the merged settings are enabled, ``{}`` changes nothing, ``?number_of_allocations=`` does not read the body."""
    put_pytorch(engine)
    adaptive = {"enabled": True, "min_number_of_allocations": 1, "max_number_of_allocations": 4}
    r = engine.request("POST", "_ml/trained_models/tiny/deployment/_start", {"adaptive_allocations": adaptive})
    assert r.status == 200, r.body
    update = "_ml/trained_models/tiny/deployment/_update"
    r = engine.request("POST", update, {"adaptive_allocations": {"max_number_of_allocations": 8}})
    assert r.body["assignment"]["adaptive_allocations"] == {**adaptive, "max_number_of_allocations": 8}
    assert error(engine.request("POST", update, {"number_of_allocations": 2})) == (
        400, "validation_exception",
        "Validation Failed: 1: [number_of_allocations] cannot be set if adaptive allocations is enabled;")
    assert engine.request("POST", update, {}).status == 200
    assert error(engine.request("POST", update)) == (400, "parse_exception", "request body is required")
    r = engine.request("POST", update, {"adaptive_allocations": None, "model_id": "tiny", "timeout": "5s"})
    assert r.status == 200 and "adaptive_allocations" not in r.body["assignment"]
    r = engine.request("POST", update, {"adaptive_allocations": {"nope": 1}}, {"number_of_allocations": "3"})
    assert r.status == 200 and r.body["assignment"]["task_parameters"]["number_of_allocations"] == 3
    assert error(engine.request("POST", update, {"model_id": "zz"})) == (
        400, "status_exception", "Inconsistent model_id; 'zz' specified in the body differs from 'tiny' specified as "
                                 "a URL argument")


def test_start_body_reads_as_object_parser_does(engine, models):
    """The body's ``deployment_id`` is overwritten by the query's or the model id; ints coerce (``2.7`` is 2);
    a boolean for an int, and enums / times / sizes that fail, are wrapped as ObjectParser wraps them."""
    put_pytorch(engine)
    path = "_ml/trained_models/tiny/deployment/_start"
    r = engine.request("POST", path, {"deployment_id": "from_body", "number_of_allocations": 2.7})
    assert r.status == 200, r.body
    assert r.body["assignment"]["task_parameters"]["deployment_id"] == "tiny"
    assert r.body["assignment"]["task_parameters"]["number_of_allocations"] == 2
    engine.request("POST", "_ml/trained_models/tiny/deployment/_stop")
    assert error(engine.request("POST", path, {"threads_per_allocation": True})) == (
        400, "x_content_parse_exception", "[cluster:admin/xpack/ml/trained_models/deployment/start] "
                                          "threads_per_allocation doesn't support values of type: VALUE_BOOLEAN")
    r = engine.request("POST", path, {"priority": "high"})
    assert error(r) == (400, "x_content_parse_exception",
                        "[cluster:admin/xpack/ml/trained_models/deployment/start] failed to parse field [priority]")
    assert r.body["error"]["caused_by"]["reason"] == \
        "No enum constant org.elasticsearch.xpack.core.ml.inference.assignment.Priority.HIGH"
    assert error(engine.request("POST", path, {"timeout": "abc"}))[2].endswith("failed to parse field [timeout]")


def test_stop_body_reads_as_es_does(engine, models):
    put_pytorch(engine)
    start(engine)
    stop = "_ml/trained_models/tiny/deployment/_stop"
    assert error(engine.request("POST", stop, {"force": "yes"})) == (
        400, "x_content_parse_exception",
        "[cluster:admin/xpack/ml/trained_models/deployment/stop] failed to parse field [force]")
    assert error(engine.request("POST", stop, {"model_id": "other"})) == (
        400, "illegal_argument_exception",
        "Inconsistent model_id; 'other' specified in the body differs from 'tiny' specified as a URL argument")
    assert engine.request("POST", stop, {"model_id": "tiny", "force": "false"}).body == {"stopped": True}
    assert engine.request("POST", "_ml/trained_models/gone/deployment/_stop",
                          {"allow_no_match": "false"}).status == 404


def test_infer_body_and_its_timeout(engine, models):
    """RestInferTrainedModelAction: no body is ``requires body``; ``timeout`` is a body field too (the query
    parameter wins)."""
    put_pytorch(engine)
    start(engine)
    path = "_ml/trained_models/tiny/_infer"
    assert error(engine.request("POST", path)) == (400, "status_exception", "requires body")
    r = engine.request("POST", path, {"docs": [{"text_field": "these are"}], "timeout": "30s"})
    assert r.status == 200 and len(r.body["inference_results"]) == 1
    r = engine.request("POST", path, {"docs": [{"text_field": "these"}], "timeout": "bogus"}, {"timeout": "30s"})
    assert r.status == 200
