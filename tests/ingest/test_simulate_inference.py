"""``_simulate`` with the ``inference`` processor over tree models (batched, per-document semantics)."""

from __future__ import annotations

import pytest

from helpers import churn_model, error_of, stump_regression


def simulate(engine, pipeline, docs, verbose=False):
    params = {"verbose": "true"} if verbose else None
    return engine.request("POST", "_ingest/pipeline/_simulate",
                          {"pipeline": pipeline, "docs": [{"_source": d} for d in docs]}, params=params)


@pytest.fixture
def models(engine):
    assert engine.request("PUT", "_ml/trained_models/reg", stump_regression()).status == 200
    assert engine.request("PUT", "_ml/trained_models/churn-gbt", churn_model()).status == 200
    return engine


def test_regression_result_written_at_default_target(models):
    r = simulate(models, {"processors": [{"inference": {"model_id": "reg"}}]}, [{"x": 0.1}, {"x": 0.9}])
    assert r.status == 200, r.body
    d0, d1 = (d["doc"] for d in r.body["docs"])
    assert d0["_source"] == {"x": 0.1, "ml": {"inference": {"predicted_value": 1.0, "model_id": "reg"}}}
    assert d1["_source"]["ml"]["inference"]["predicted_value"] == 2.0
    assert d0["_index"] == "_index" and d0["_id"] == "_id" and d0["_version"] == "-3"
    assert list(d0["_ingest"]) == ["timestamp"] and d0["_ingest"]["timestamp"].endswith("Z")


def test_classification_tagged_target_and_key_order(models):
    pipe = {"processors": [{"inference": {"model_id": "churn-gbt", "tag": "churn",
                                          "inference_config": {"classification": {"num_top_classes": 2}}}}]}
    r = simulate(models, pipe, [{"tenure": 3, "plan": "pro"}])
    res = r.body["docs"][0]["doc"]["_source"]["ml"]["inference"]["churn"]
    assert list(res) == ["predicted_value", "top_classes", "prediction_probability", "prediction_score", "model_id"]
    assert res["predicted_value"] == "churn"
    assert res["prediction_probability"] == pytest.approx(0.598687660112452)
    assert [c["class_name"] for c in res["top_classes"]] == ["churn", "stay"]
    assert res["model_id"] == "churn-gbt"


def test_same_target_twice_appends(models):
    pipe = {"processors": [{"inference": {"model_id": "reg"}}, {"inference": {"model_id": "reg"}}]}
    r = simulate(models, pipe, [{"x": 0.1}])
    value = r.body["docs"][0]["doc"]["_source"]["ml"]["inference"]
    assert value == [{"predicted_value": 1.0, "model_id": "reg"}, {"predicted_value": 1.0, "model_id": "reg"}]


def test_alias_writes_concrete_model_id(models):
    assert models.request("PUT", "_ml/trained_models/reg/model_aliases/current").status == 200
    r = simulate(models, {"processors": [{"inference": {"model_id": "current", "target_field": "out"}}]}, [{"x": 1}])
    assert r.body["docs"][0]["doc"]["_source"]["out"] == {"predicted_value": 2.0, "model_id": "reg"}


def test_all_fields_missing_is_a_warning_not_a_failure(models):
    r = simulate(models, {"processors": [{"inference": {"model_id": "reg", "target_field": "t"}}]}, [{"other": 1}])
    assert r.body["docs"][0]["doc"]["_source"]["t"] == {
        "warning": "Model [reg] could not be inferred as all fields were missing", "model_id": "reg"}


def test_field_map_and_inference_config_update(models):
    pipe = {"processors": [{"inference": {"model_id": "reg", "field_map": {"a.b": "x"},
                                          "inference_config": {"regression": {"results_field": "score"}}}}]}
    r = simulate(models, pipe, [{"a": {"b": 0.9}}])
    assert r.body["docs"][0]["doc"]["_source"]["ml"]["inference"] == {"score": 2.0, "model_id": "reg"}


def test_one_batched_model_call_and_stats(models, monkeypatch):
    from es_infer_nb.models import runner

    calls = []
    real = runner.run_tree

    def counting(engine, model_id, cols, n, **kw):
        calls.append(n)
        return real(engine, model_id, cols, n, **kw)

    monkeypatch.setattr(runner, "run_tree", counting)
    pipe = {"processors": [{"inference": {"model_id": "reg", "if": "ctx.skip != true"}}]}
    docs = [{"x": i / 10} for i in range(10)] + [{"x": 1, "skip": True}]
    r = simulate(models, pipe, docs)
    assert calls == [10]  # one call for the 10 eligible documents
    assert "ml" not in r.body["docs"][10]["doc"]["_source"]
    stats = models.request("GET", "_ml/trained_models/reg/_stats").body["trained_model_stats"][0]["inference_stats"]
    assert stats["inference_count"] == 10


def test_failing_document_does_not_affect_others(models):
    pipe = {"processors": [{"inference": {"model_id": "reg", "target_field": "ml.out"}}]}
    r = simulate(models, pipe, [{"x": 0.1}, {"x": 0.9, "ml": "a string"}, {"x": 0.9}])
    docs = r.body["docs"]
    assert docs[0]["doc"]["_source"]["ml"]["out"]["predicted_value"] == 1.0
    assert docs[1]["error"]["type"] == "illegal_argument_exception"
    assert docs[2]["doc"]["_source"]["ml"]["out"]["predicted_value"] == 2.0


def test_unknown_model_fails_each_document(models):
    r = simulate(models, {"processors": [{"inference": {"model_id": "nope"}}]}, [{"x": 1}, {"x": 2}])
    assert r.status == 200
    for d in r.body["docs"]:
        assert d["error"]["type"] == "resource_not_found_exception"
        assert d["error"]["reason"] == "Could not find trained model [nope]"


def test_update_type_mismatch_is_a_document_error(models):
    pipe = {"processors": [{"inference": {"model_id": "reg", "inference_config": {"classification": {}}}}]}
    r = simulate(models, pipe, [{"x": 1}])
    err = r.body["docs"][0]["error"]
    assert err["type"] == "status_exception"
    assert "which is not supported by inference request of type [classification]" in err["reason"]


def test_processor_on_failure_metadata_and_continue(models):
    pipe = {"processors": [
        {"inference": {"model_id": "nope", "tag": "t1", "on_failure": [
            {"set": {"field": "err.msg", "value": "{{ _ingest.on_failure_message }}"}},
            {"set": {"field": "err.type", "value": "{{_ingest.on_failure_processor_type}}"}},
            {"set": {"field": "err.tag", "value": "{{{_ingest.on_failure_processor_tag}}}"}},
            {"set": {"field": "err.pipeline", "value": "{{ _ingest.on_failure_pipeline }}"}}]}},
        {"set": {"field": "after", "value": 1}}]}
    r = simulate(models, pipe, [{"x": 1}])
    doc = r.body["docs"][0]["doc"]
    assert doc["_source"]["err"] == {"msg": "Could not find trained model [nope]", "type": "inference", "tag": "t1",
                                     "pipeline": "_simulate_pipeline"}
    assert doc["_source"]["after"] == 1
    assert list(doc["_ingest"]) == ["timestamp"]  # failure metadata removed afterwards


def test_pipeline_on_failure_stops_remaining_processors(models):
    pipe = {"processors": [{"inference": {"model_id": "nope"}}, {"set": {"field": "after", "value": 1}}],
            "on_failure": [{"set": {"field": "_index", "value": "failed-{{ _index }}"}}]}
    r = simulate(models, pipe, [{"x": 1}])
    doc = r.body["docs"][0]["doc"]
    assert doc["_index"] == "failed-_index"
    assert "after" not in doc["_source"]


def test_ignore_failure_continues_without_metadata(models):
    pipe = {"processors": [{"inference": {"model_id": "nope", "ignore_failure": True}},
                           {"inference": {"model_id": "reg"}}]}
    r = simulate(models, pipe, [{"x": 1}])
    assert r.body["docs"][0]["doc"]["_source"]["ml"]["inference"]["predicted_value"] == 2.0


def test_verbose_statuses(models):
    pipe = {"processors": [
        {"inference": {"model_id": "reg", "tag": "inf", "description": "score", "if": "ctx.x != null"}},
        {"set": {"field": "a", "value": 1, "if": "ctx.x == null"}},
        {"rename": {"field": "missing", "target_field": "y", "ignore_failure": True}},
        {"inference": {"model_id": "nope", "on_failure": [{"set": {"field": "handled", "value": True}}]}},
        {"drop": {"if": "ctx.x > 5"}}]}
    r = simulate(models, pipe, [{"x": 1}, {"x": 10}], verbose=True)
    assert r.status == 200, r.body
    res = r.body["docs"][0]["processor_results"]
    assert [(e["processor_type"], e["status"]) for e in res] == [
        ("inference", "success"), ("set", "skipped"), ("rename", "error_ignored"), ("inference", "error"),
        ("set", "success"), ("drop", "skipped")]
    assert list(res[0]) == ["processor_type", "status", "description", "tag", "if", "doc"]
    assert res[0]["if"] == {"condition": "ctx.x != null", "result": True}
    assert res[0]["doc"]["_ingest"]["pipeline"] == "_simulate_pipeline"
    assert res[0]["doc"]["_source"]["ml"]["inference"]["inf"]["predicted_value"] == 2.0
    assert res[1] == {"processor_type": "set", "status": "skipped", "if": {"condition": "ctx.x == null", "result": False}}
    assert res[2]["ignored_error"]["error"]["reason"] == "field [missing] doesn't exist"
    assert "doc" not in res[3] and res[3]["error"]["type"] == "resource_not_found_exception"
    assert r.body["docs"][1]["processor_results"][-1] == {
        "processor_type": "drop", "status": "dropped", "if": {"condition": "ctx.x > 5", "result": True}}


def test_dropped_document_is_null(models):
    r = simulate(models, {"processors": [{"drop": {"if": "ctx.x > 5"}}]}, [{"x": 10}, {"x": 1}])
    assert r.body["docs"][0] is None
    assert r.body["docs"][1]["doc"]["_source"] == {"x": 1}


def test_input_output_with_tree_model_is_a_clear_error(models):
    pipe = {"processors": [{"inference": {"model_id": "reg", "input_output": {"input_field": "x", "output_field": "y"}}}]}
    r = simulate(models, pipe, [{"x": 1}])
    err = r.body["docs"][0]["error"]
    assert err["type"] == "status_exception"
    assert "[input_output] is only supported for NLP models" in err["reason"]


def test_stored_pipeline_simulate_and_nested_pipeline(models):
    assert models.request("PUT", "_ingest/pipeline/score", {"processors": [{"inference": {"model_id": "reg"}}]}).status == 200
    assert models.request("PUT", "_ingest/pipeline/outer", {
        "processors": [{"pipeline": {"name": "score"}}, {"set": {"field": "done", "value": True}}]}).status == 200
    r = models.request("POST", "_ingest/pipeline/outer/_simulate", {"docs": [{"_id": "1", "_source": {"x": 1}}]})
    doc = r.body["docs"][0]["doc"]
    assert doc["_id"] == "1"
    assert doc["_source"]["ml"]["inference"]["model_id"] == "reg" and doc["_source"]["done"] is True
    r = models.request("GET", "_ingest/pipeline/missing/_simulate", {"docs": [{"_source": {}}]})
    assert r.status == 400 and error_of(r)["reason"] == "pipeline [missing] does not exist"


def test_pipeline_cycle_is_a_document_error(engine):
    engine.request("PUT", "_ingest/pipeline/a", {"processors": [{"pipeline": {"name": "b"}}]})
    engine.request("PUT", "_ingest/pipeline/b", {"processors": [{"pipeline": {"name": "a"}}]})
    r = engine.request("POST", "_ingest/pipeline/a/_simulate", {"docs": [{"_source": {}}]})
    # PipelineProcessorTests#testThrowsOnRecursivePipelineInvocations: the id of the pipeline entered again
    assert "Cycle detected for pipeline: a" in r.body["docs"][0]["error"]["reason"]


def test_handler_failure_fails_the_document(models):
    pipe = {"processors": [{"inference": {"model_id": "nope", "on_failure": [{"fail": {"message": "bad {{x}}"}}]}}]}
    r = simulate(models, pipe, [{"x": 1}])
    err = r.body["docs"][0]["error"]
    assert err["type"] == "fail_processor_exception" and err["reason"] == "bad 1"


def test_foreach_inference_one_call_for_all_elements(models, monkeypatch):
    from es_infer_nb.models import runner

    calls = []
    real = runner.run_tree

    def counting(engine, model_id, cols, n, **kw):
        calls.append(n)
        return real(engine, model_id, cols, n, **kw)

    monkeypatch.setattr(runner, "run_tree", counting)
    pipe = {"processors": [{"foreach": {"field": "items", "ignore_missing": True, "processor": {
        "inference": {"model_id": "reg", "field_map": {"_ingest._value.v": "x"}}}}}]}
    r = simulate(models, pipe, [{"items": [{"v": 0.1}, {"v": 0.9}]}, {"items": [{"v": 0.2}]}, {"other": 1},
                                {"items": "not a list"}])
    assert calls == [3]
    d0 = r.body["docs"][0]["doc"]["_source"]
    assert [x["predicted_value"] for x in d0["ml"]["inference"]] == [1.0, 2.0]
    assert r.body["docs"][1]["doc"]["_source"]["ml"]["inference"] == {"predicted_value": 1.0, "model_id": "reg"}
    assert r.body["docs"][2]["doc"]["_source"] == {"other": 1}
    assert r.body["docs"][3]["error"]["type"] == "illegal_argument_exception"


def test_foreach_rewrites_values(engine):
    pipe = {"processors": [{"foreach": {"field": "tags", "processor": {"uppercase": {"field": "_ingest._value"}}}}]}
    r = simulate(engine, pipe, [{"tags": ["a", "b"]}])
    assert r.body["docs"][0]["doc"]["_source"]["tags"] == ["A", "B"]


def test_field_map_never_overwrites_an_existing_field(models):
    from es_infer_nb.ingest.document import map_fields

    assert map_fields({"a": 1, "x": 2}, {"a": "x"}) == {"a": 1, "x": 2}
    assert map_fields({"a": 1, "x": None}, {"a": "x"}) == {"a": 1, "x": 1}
    pipe = {"processors": [{"inference": {"model_id": "reg", "field_map": {"a": "x"}}}]}
    r = simulate(models, pipe, [{"a": 0.9, "x": 0.1}, {"a": 0.9}])
    assert [d["doc"]["_source"]["ml"]["inference"]["predicted_value"] for d in r.body["docs"]] == [1.0, 2.0]


def test_caller_documents_untouched_and_verbose_snapshots_independent(models):
    source = {"x": 0.1, "nested": {"a": 1}}
    body = {"pipeline": {"processors": [{"set": {"field": "nested.b", "value": 2}},
                                        {"inference": {"model_id": "reg"}}]},
            "docs": [{"_source": source}]}
    r = models.request("POST", "_ingest/pipeline/_simulate", body, params={"verbose": "true"})
    assert source == {"x": 0.1, "nested": {"a": 1}}
    first, second = r.body["docs"][0]["processor_results"]
    assert "ml" not in first["doc"]["_source"] and first["doc"]["_source"]["nested"] == {"a": 1, "b": 2}
    assert second["doc"]["_source"]["ml"]["inference"]["predicted_value"] == 1.0
