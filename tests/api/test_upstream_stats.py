"""``GET _ml/trained_models/<id>/_stats`` against upstream Elasticsearch (TransportGetTrainedModelsStatsAction,
``GetTrainedModelsStatsAction.Response``, ``TrainedModelSizeStats``, ``InferenceStats``, ``AssignmentStats``)."""

from __future__ import annotations

import re
import time

import pandas as pd
import pytest

import es_infer_nb  # noqa: F401  (registers df.infer)
from helpers import stump_regression
from test_deployments import models, put_pytorch, start  # noqa: F401  (models: a fixture)

ZERO = {"count": 0, "time_in_millis": 0, "current": 0, "failed": 0}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def eng(engine):
    assert engine.request("PUT", "_ml/trained_models/reg", stump_regression()).status == 200
    return engine


def entry(engine, model="reg", **params):
    r = engine.request("GET", f"_ml/trained_models/{model}/_stats", params=params or None)
    assert r.status == 200, r.body
    return r.body["trained_model_stats"][0]


def processors(engine, pipeline, model="reg"):
    return entry(engine, model)["ingest"]["pipelines"][pipeline]["processors"]


# TransportGetTrainedModelsStatsActionTests#testInferenceIngestStatsByModelId: a pipeline's processor stats list
# every processor of the pipeline (``grok`` next to ``inference``), those of one name merged into one entry
# (two untagged ``inference`` processors: one ``inference`` entry with their counts summed)
PIPELINE = {
    "processors": [
        {"inference": {"model_id": "reg", "target_field": "a"}},
        {"set": {"field": "s", "value": 1}},
        {"inference": {"model_id": "reg", "target_field": "b"}},
    ]
}


def test_every_processor_listed_and_same_names_merged_before_use(eng):
    eng.request("PUT", "_ingest/pipeline/p", PIPELINE)
    assert processors(eng, "p") == [
        {"inference": {"type": "inference", "stats": ZERO}},
        {"set": {"type": "set", "stats": ZERO}},
    ]


def test_every_processor_counted_per_document(eng):
    eng.request("PUT", "_ingest/pipeline/p", PIPELINE)
    r = eng.request("POST", "_ingest/pipeline/p/_simulate", {"docs": [{"_source": {"x": 1}}, {"_source": {"x": 2}}]})
    assert r.status == 200
    (inference, set_) = processors(eng, "p")
    assert inference["inference"]["stats"]["count"] == 4 and set_["set"]["stats"]["count"] == 2


def test_every_processor_counted_on_the_column_path(eng):
    eng.request("PUT", "_ingest/pipeline/p", PIPELINE)
    pd.DataFrame({"x": [0.1, 0.2, 0.3]}).infer.pipeline("p", engine=eng)
    (inference, set_) = processors(eng, "p")
    assert inference["inference"]["stats"]["count"] == 6 and inference["inference"]["stats"]["failed"] == 0
    assert set_["set"]["stats"]["count"] == 3 and set_["set"]["stats"]["current"] == 0


def test_pipeline_processor_named_with_its_pipeline_and_tag(eng):
    # IngestService.getProcessorName: ``pipeline:<name>`` for a pipeline processor, then ``:<tag>``
    eng.request("PUT", "_ingest/pipeline/inner", {"processors": [{"set": {"field": "y", "value": 1}}]})
    eng.request(
        "PUT",
        "_ingest/pipeline/outer",
        {"processors": [{"pipeline": {"name": "inner", "tag": "t"}}, {"inference": {"model_id": "reg", "tag": ""}}]},
    )
    assert [next(iter(p)) for p in processors(eng, "outer")] == ["pipeline:inner:t", "inference"]


def test_handlers_not_counted_as_processors(eng):
    # on_failure processors are not surfaced in the stats (their time counts in the failing processor's)
    eng.request(
        "PUT",
        "_ingest/pipeline/p",
        {"processors": [{"fail": {"message": "x"}}], "on_failure": [{"set": {"field": "e", "value": 1}}]},
    )
    eng.request(
        "PUT", "_ingest/pipeline/q", {"processors": [{"pipeline": {"name": "p"}}, {"inference": {"model_id": "reg"}}]}
    )
    eng.request("POST", "_ingest/pipeline/q/_simulate", {"docs": [{"_source": {"x": 1}}]})
    assert eng.stats.processor_counters("p", "set").count == 0
    assert eng.stats.processor_counters("p", "fail").failed == 1


# TrainedModelSizeStats.toXContent (humanReadableField), InferenceStats.toXContent (timeField) and
# IngestStats.Stats.toXContent with ``human``: each readable value just before its raw one
def test_human_readable_fields(eng):
    eng.request("PUT", "_ingest/pipeline/p", {"processors": [{"inference": {"model_id": "reg"}}]})
    e = entry(eng, human="true")
    size = e["model_size_stats"]["model_size_bytes"]
    assert list(e["model_size_stats"]) == [
        "model_size",
        "model_size_bytes",
        "required_native_memory",
        "required_native_memory_bytes",
    ]
    assert e["model_size_stats"]["model_size"] == f"{size}b"
    assert e["model_size_stats"]["required_native_memory"] == "0b"
    st = e["inference_stats"]
    assert list(st) == [
        "failure_count",
        "inference_count",
        "cache_miss_count",
        "missing_all_fields_count",
        "timestamp_string",
        "timestamp",
    ]
    assert ISO.match(st["timestamp_string"]) and isinstance(st["timestamp"], int)
    assert e["ingest"]["total"] == {"count": 0, "time": "0s", "time_in_millis": 0, "current": 0, "failed": 0}
    assert e["ingest"]["pipelines"]["p"]["processors"][0]["inference"]["stats"]["time"] == "0s"
    plain = entry(eng)
    assert "model_size" not in plain["model_size_stats"] and "timestamp_string" not in plain["inference_stats"]


# AssignmentStats / NodeStats.toXContent: timestampFieldsFromUnixEpochMillis writes ``*_string`` first
def test_deployment_time_strings_before_millis(engine, models):  # noqa: F811
    put_pytorch(engine)
    assert start(engine).status == 200
    engine.request("POST", "_ml/trained_models/tiny/_infer", {"docs": [{"text_field": "a"}]})
    d = entry(engine, "tiny", human="true")["deployment_stats"]
    keys = list(d)
    assert keys.index("start_time_string") + 1 == keys.index("start_time")
    node = list(d["nodes"][0])
    assert node.index("last_access_string") + 1 == node.index("last_access")
    assert node.index("start_time_string") + 1 == node.index("start_time")


# GetTrainedModelsStatsAction.Response.Builder#build: a deployment's entry shows the ingest stats of the
# pipelines naming its deployment id, else those of the pipelines naming the model
def test_deployment_entry_ingest_by_deployment_id(engine, models):  # noqa: F811
    put_pytorch(engine)
    assert start(engine, deployment_id="for-ingest").status == 200
    assert start(engine, deployment_id="for-search").status == 200
    engine.request("PUT", "_ingest/pipeline/by-dep", {"processors": [{"inference": {"model_id": "for-ingest"}}]})
    engine.request("PUT", "_ingest/pipeline/by-model", {"processors": [{"inference": {"model_id": "tiny"}}]})
    body = engine.request("GET", "_ml/trained_models/tiny/_stats").body
    by_deployment = {e["deployment_stats"]["deployment_id"]: e for e in body["trained_model_stats"]}
    assert list(by_deployment["for-ingest"]["ingest"]["pipelines"]) == ["by-dep"]
    assert by_deployment["for-ingest"]["pipeline_count"] == 1
    assert list(by_deployment["for-search"]["ingest"]["pipelines"]) == ["by-model"]


# TrainedModelProvider#getInferenceStats: nothing stored for a model never used, so the stats carry the time
# of the request (``Instant.now()``), not a time frozen at the first request
def test_unused_model_timestamp_is_the_request_time(eng):
    entry(eng)
    time.sleep(0.01)
    before = int(time.time() * 1000)
    stamp = entry(eng)["inference_stats"]["timestamp"]
    assert before <= stamp <= int(time.time() * 1000)
