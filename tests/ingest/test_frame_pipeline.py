"""``df.infer.pipeline`` and ``df.infer.simulate``: pipelines over DataFrames."""

from __future__ import annotations

import pandas as pd
import pytest

import es_infer_nb  # noqa: F401 - registers the accessor
from es_infer_nb.errors import ApiError
from helpers import churn_model, stump_regression


@pytest.fixture
def models(engine):
    assert engine.request("PUT", "_ml/trained_models/reg", stump_regression()).status == 200
    assert engine.request("PUT", "_ml/trained_models/churn-gbt", churn_model()).status == 200
    return engine


def test_one_row_per_input_row_same_index_and_order(models):
    df = pd.DataFrame({"x": [0.9, 0.1, 0.4]}, index=["c", "a", "b"])
    out = df.infer.pipeline({"processors": [{"inference": {"model_id": "reg"}}]}, engine=models)
    assert list(out.index) == ["c", "a", "b"]
    assert list(out.columns) == ["x", "ml.inference.predicted_value", "ml.inference.model_id", "_ingest.dropped"]
    assert out["ml.inference.predicted_value"].tolist() == [2.0, 1.0, 1.0]
    assert out["ml.inference.model_id"].tolist() == ["reg"] * 3
    assert out["_ingest.dropped"].dtype == bool and not out["_ingest.dropped"].any()
    assert out["x"].tolist() == [0.9, 0.1, 0.4]
    assert list(df.columns) == ["x"]  # the input is not modified


def test_dotted_columns_are_nested_fields_and_back(models):
    df = pd.DataFrame({"user.name": [" Ann ", "bob"], "user.age": [31, 42]})
    pipe = {"processors": [{"trim": {"field": "user.name"}}, {"uppercase": {"field": "user.name"}},
                           {"set": {"field": "user.tag", "value": "{{user.name}}-{{user.age}}"}}]}
    out = df.infer.pipeline(pipe, engine=models)
    assert out["user.name"].tolist() == ["ANN", "BOB"]
    assert out["user.age"].tolist() == [31, 42] and out["user.age"].dtype == "int64"
    assert out["user.tag"].tolist() == ["ANN-31", "BOB-42"]


def test_missing_values_are_absent_fields(models):
    df = pd.DataFrame({"a": ["x", None], "b": [1.0, float("nan")]})
    pipe = {"processors": [{"set": {"if": "ctx.a == null", "field": "no_a", "value": True}},
                           {"set": {"if": "ctx.b == null", "field": "no_b", "value": True}}]}
    out = df.infer.pipeline(pipe, engine=models)
    assert out["no_a"].tolist()[1] is True and pd.isna(out["no_a"].tolist()[0])
    assert out["no_b"].tolist()[1] is True


def test_nested_results_are_arrow_columns(models):
    df = pd.DataFrame({"tenure": [3, 30], "plan": ["pro", "basic"]})
    pipe = {"processors": [{"inference": {"model_id": "churn-gbt",
                                          "inference_config": {"classification": {"num_top_classes": 2}}}}]}
    out = df.infer.pipeline(pipe, engine=models)
    col = out["ml.inference.top_classes"]
    assert isinstance(col.dtype, pd.ArrowDtype)
    first = col.tolist()[0]
    assert [c["class_name"] for c in first] == ["churn", "stay"]
    assert out["ml.inference.prediction_probability"].tolist()[0] == pytest.approx(0.598687660112452)


def test_dropped_rows_are_kept_and_marked(models):
    df = pd.DataFrame({"kind": ["keep", "spam", "keep"], "x": [0.1, 0.9, 0.9]})
    pipe = {"processors": [{"drop": {"if": "ctx.kind == 'spam'"}}, {"inference": {"model_id": "reg"}}]}
    out = df.infer.pipeline(pipe, engine=models)
    assert out["_ingest.dropped"].tolist() == [False, True, False]
    assert len(out) == 3
    assert pd.isna(out["ml.inference.predicted_value"].iloc[1])
    assert out["ml.inference.predicted_value"].tolist()[2] == 2.0


def test_failed_rows_carry_error_columns_and_keep_input(models):
    df = pd.DataFrame({"n": ["1", "oops", "3"]})
    pipe = {"processors": [{"convert": {"field": "n", "type": "integer", "tag": "conv"}},
                           {"set": {"field": "ok", "value": True}}]}
    out = df.infer.pipeline(pipe, engine=models)
    assert out["n"].tolist() == [1, "oops", 3]
    assert out["_ingest.error.type"].tolist()[1] == "illegal_argument_exception"
    assert out["_ingest.error.reason"].tolist()[1] == "unable to convert [oops] to integer"
    assert out["_ingest.error.processor_type"].tolist()[1] == "convert"
    assert out["_ingest.error.processor_tag"].tolist()[1] == "conv"
    assert pd.isna(out["_ingest.error.type"].tolist()[0])
    assert out["ok"].tolist()[0] is True and pd.isna(out["ok"].tolist()[1])


def test_no_error_columns_without_failures(models):
    out = pd.DataFrame({"a": [1]}).infer.pipeline({"processors": [{"set": {"field": "b", "value": 2}}]}, engine=models)
    assert not [c for c in out.columns if c.startswith("_ingest.error")]


def test_on_failure_metadata_handled_by_pipeline(models):
    df = pd.DataFrame({"n": ["1", "x"]})
    pipe = {"processors": [{"convert": {"field": "n", "type": "long"}}],
            "on_failure": [{"set": {"field": "failure", "value": "{{_ingest.on_failure_message}}"}},
                           {"set": {"field": "failed_in", "value": "{{_ingest.on_failure_processor_type}}"}}]}
    out = df.infer.pipeline(pipe, engine=models)
    assert out["failure"].tolist()[1] == "unable to convert [x] to long"
    assert out["failed_in"].tolist()[1] == "convert"
    assert "_ingest.error.type" not in out.columns


def test_stored_pipeline_by_id_and_chunks(models):
    assert models.request("PUT", "_ingest/pipeline/reg-pipe",
                          {"processors": [{"inference": {"model_id": "reg", "target_field": "pred"}}]}).status == 200
    df = pd.DataFrame({"x": [0.1, 0.9] * 5})
    out = df.infer.pipeline("reg-pipe", engine=models, chunk_size=3)
    assert out["pred.predicted_value"].tolist() == [1.0, 2.0] * 5


def test_errors(models):
    df = pd.DataFrame({"a": [1]})
    with pytest.raises(ApiError) as info:
        df.infer.pipeline("nope", engine=models)
    assert info.value.status == 400 and "pipeline with id [nope] does not exist" in info.value.reason
    with pytest.raises(ApiError) as info:
        df.infer.pipeline({"processors": [{"split": {"field": "a"}}]}, engine=models)
    assert info.value.type == "parse_exception" and info.value.reason == "[separator] required property is missing"


def test_simulate_runs_and_request_only(models):
    df = pd.DataFrame({"x": [0.1, 0.9], "meta.k": ["a", "b"]}, index=[7, 8])
    pipe = {"processors": [{"inference": {"model_id": "reg"}}]}
    req = df.infer.simulate(pipe, request_only=True)
    assert req == {"pipeline": pipe, "docs": [
        {"_id": "7", "_source": {"x": 0.1, "meta": {"k": "a"}}},
        {"_id": "8", "_source": {"x": 0.9, "meta": {"k": "b"}}}]}
    body = df.infer.simulate(pipe, engine=models)
    docs = [d["doc"] for d in body["docs"]]
    assert [d["_id"] for d in docs] == ["7", "8"]
    assert all("_index" not in d for d in req["docs"]) and docs[0]["_index"] == "_index"  # ES's default
    assert docs[1]["_source"]["ml"]["inference"] == {"predicted_value": 2.0, "model_id": "reg"}
    verbose = df.infer.simulate(pipe, engine=models, verbose=True)
    assert verbose["docs"][0]["processor_results"][0]["processor_type"] == "inference"


def test_simulate_stored_pipeline_and_error(models):
    models.request("PUT", "_ingest/pipeline/p2", {"processors": [{"set": {"field": "y", "value": 1}}]})
    df = pd.DataFrame({"x": [1]})
    assert "pipeline" not in df.infer.simulate("p2", request_only=True)
    assert df.infer.simulate("p2", engine=models)["docs"][0]["doc"]["_source"] == {"x": 1, "y": 1}
    with pytest.raises(ApiError):
        df.infer.simulate({"processors": [{"bogus": {}}]}, engine=models)


def test_removed_fields_leave_and_object_columns_stay_whole(models):
    df = pd.DataFrame({"gone": [1, 2], "obj": [{"k": 1}, {"k": 2}], "keep": ["a", "b"]})
    pipe = {"processors": [{"remove": {"field": "gone"}}, {"set": {"field": "obj.extra", "value": "{{keep}}"}}]}
    out = df.infer.pipeline(pipe, engine=models)
    assert list(out.columns) == ["obj", "keep", "_ingest.dropped"]
    assert out["obj"].tolist() == [{"k": 1, "extra": "a"}, {"k": 2, "extra": "b"}]
    assert df["obj"].tolist() == [{"k": 1}, {"k": 2}]  # the input's objects are not touched


def test_round_trip_of_arrow_result_columns(models):
    df = pd.DataFrame({"tenure": [3], "plan": ["pro"]})
    pipe = {"processors": [{"inference": {"model_id": "churn-gbt",
                                          "inference_config": {"classification": {"num_top_classes": 2}}}}]}
    first = df.infer.pipeline(pipe, engine=models).drop(columns=["_ingest.dropped"])
    again = first.infer.pipeline({"processors": [{"set": {"field": "z", "value": 1}}]}, engine=models)
    assert again["ml.inference.top_classes"].tolist() == first["ml.inference.top_classes"].tolist()
    assert again["ml.inference.top_classes"].dtype == first["ml.inference.top_classes"].dtype
