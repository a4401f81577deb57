"""The ``ingest`` section of ``GET _ml/trained_models/<id>/_stats`` (spec §6).

Counted for documents going through a *stored* pipeline (``df.infer.pipeline("<id>")``, ``POST
_ingest/pipeline/<id>/_simulate``, a ``pipeline`` processor calling it); an inline ``_simulate``
body runs as ``_simulate_pipeline``, which no model's stats can reference.
"""

from __future__ import annotations

import pandas as pd
import pytest

import es_infer_nb  # noqa: F401
from helpers import stump_regression

COUNTERS = ["count", "time_in_millis", "current", "failed"]


@pytest.fixture
def eng(engine):
    assert engine.request("PUT", "_ml/trained_models/reg", stump_regression()).status == 200
    return engine


def stats(engine, model="reg"):
    r = engine.request("GET", f"_ml/trained_models/{model}/_stats")
    assert r.status == 200, r.body
    return r.body["trained_model_stats"][0]


def test_no_ingest_section_without_pipelines(eng):
    s = stats(eng)
    assert list(s) == ["model_id", "model_size_stats", "pipeline_count", "inference_stats"]


def test_section_shape_when_referenced(eng):
    eng.request("PUT", "_ingest/pipeline/reg-pipe", {"processors": [{"inference": {"model_id": "reg"}}]})
    s = stats(eng)
    assert list(s) == ["model_id", "model_size_stats", "pipeline_count", "ingest", "inference_stats"]
    assert s["pipeline_count"] == 1
    ing = s["ingest"]
    assert list(ing) == ["total", "pipelines"]
    assert ing["total"] == {"count": 0, "time_in_millis": 0, "current": 0, "failed": 0}
    p = ing["pipelines"]["reg-pipe"]
    assert list(p) == [*COUNTERS, "processors"]
    assert p["processors"] == [{"inference": {"type": "inference",
                                              "stats": {"count": 0, "time_in_millis": 0, "current": 0, "failed": 0}}}]


def test_frame_pipeline_and_stored_simulate_count(eng):
    eng.request("PUT", "_ingest/pipeline/reg-pipe", {"processors": [{"inference": {"model_id": "reg", "tag": "t"}}]})
    pd.DataFrame({"x": [0.1, 0.9, 0.5]}).infer.pipeline("reg-pipe", engine=eng)
    r = eng.request("POST", "_ingest/pipeline/reg-pipe/_simulate", {"docs": [{"_source": {"x": 1}}]})
    assert r.status == 200
    ing = stats(eng)["ingest"]
    assert ing["total"]["count"] == 4 and ing["total"]["failed"] == 0 and ing["total"]["current"] == 0
    p = ing["pipelines"]["reg-pipe"]
    assert p["count"] == 4
    ((name, proc),) = p["processors"][0].items()
    assert name == "inference:t" and proc["type"] == "inference"
    assert proc["stats"]["count"] == 4
    assert isinstance(proc["stats"]["time_in_millis"], int)


def test_inline_simulate_not_counted(eng):
    eng.request("PUT", "_ingest/pipeline/reg-pipe", {"processors": [{"inference": {"model_id": "reg"}}]})
    eng.request("POST", "_ingest/pipeline/_simulate", {"pipeline": {"processors": [{"inference": {"model_id": "reg"}}]},
                                                       "docs": [{"_source": {"x": 1}}]})
    assert stats(eng)["ingest"]["total"]["count"] == 0
    assert stats(eng)["inference_stats"]["inference_count"] == 1


def test_failures_conditions_and_nested_pipelines(eng):
    eng.request("PUT", "_ingest/pipeline/inner", {"processors": [
        {"inference": {"model_id": "reg", "if": "ctx.run == true"}},
        {"fail": {"message": "boom", "if": "ctx.boom == true"}}]})
    eng.request("PUT", "_ingest/pipeline/outer", {"processors": [{"pipeline": {"name": "inner"}}]})
    df = pd.DataFrame({"x": [0.1, 0.2, 0.3], "run": [True, False, True], "boom": [False, False, True]})
    out = df.infer.pipeline("outer", engine=eng)
    assert out["_ingest.error.reason"].tolist()[2] == "boom"
    s = stats(eng)
    assert s["pipeline_count"] == 1
    assert list(s["ingest"]["pipelines"]) == ["inner"]
    p = s["ingest"]["pipelines"]["inner"]
    assert p["count"] == 3 and p["failed"] == 1
    assert p["processors"][0]["inference"]["stats"]["count"] == 2  # the `if` let two documents through
    assert p["processors"][0]["inference"]["stats"]["failed"] == 0
    assert s["ingest"]["total"] == {k: p[k] for k in COUNTERS}


def test_model_failure_counted_as_failed(eng):
    eng.request("PUT", "_ingest/pipeline/bad", {"processors": [
        {"inference": {"model_id": "reg", "inference_config": {"classification": {}}}}]})
    out = pd.DataFrame({"x": [0.1]}).infer.pipeline("bad", engine=eng)
    assert "_ingest.error.type" in out.columns
    p = stats(eng)["ingest"]["pipelines"]["bad"]
    assert p["failed"] == 1 and p["processors"][0]["inference"]["stats"]["failed"] == 1


def test_only_top_level_processors_listed(eng):
    # IngestService.getProcessorMetrics surfaces a pipeline's own processors: neither on_failure handlers
    # nor what foreach runs (TransportGetTrainedModelsStatsActionTests#testInferenceIngestStatsByModelId
    # lists every processor of the pipeline, inference or not)
    eng.request("PUT", "_ingest/pipeline/many", {
        "processors": [{"foreach": {"field": "l", "processor": {"inference": {"model_id": "reg", "tag": "each",
                                                                              "field_map": {"_ingest._value": "x"}}}}}],
        "on_failure": [{"inference": {"model_id": "reg", "tag": "fallback"}}]})
    procs = stats(eng)["ingest"]["pipelines"]["many"]["processors"]
    assert procs == [{"foreach": {"type": "foreach",
                                  "stats": {"count": 0, "time_in_millis": 0, "current": 0, "failed": 0}}}]


def test_other_model_without_pipeline_unchanged(eng):
    eng.request("PUT", "_ml/trained_models/reg2", stump_regression())
    eng.request("PUT", "_ingest/pipeline/reg-pipe", {"processors": [{"inference": {"model_id": "reg"}}]})
    assert "ingest" not in stats(eng, "reg2")
