"""The official ``elasticsearch`` client's own methods against the server, as against a cluster."""

from __future__ import annotations

import pytest
from elasticsearch import BadRequestError, ConflictError, NotFoundError

from helpers import churn_model, stump_regression


def test_info_and_ping(es):
    info = es.info()
    assert info["version"]["number"].startswith("9.")
    assert info["version"]["build_flavor"] == "default"
    assert info["tagline"] == "You Know, for Search"
    assert es.ping() is True


def test_put_get_infer_stats_delete(es):
    put = es.ml.put_trained_model(model_id="churn-model", **churn_model())
    assert put["model_id"] == "churn-model" and put["model_type"] == "tree_ensemble"

    got = es.ml.get_trained_models(model_id="churn-model", include="definition")
    assert got["count"] == 1
    assert "definition" in got["trained_model_configs"][0]
    listed = es.ml.get_trained_models(model_id="churn-m*", size=10, from_=0)
    assert [m["model_id"] for m in listed["trained_model_configs"]] == ["churn-model"]

    res = es.ml.infer_trained_model(model_id="churn-model", docs=[{"tenure": 3, "plan": "pro"}, {"tenure": 30, "plan": "basic"}])
    results = res["inference_results"]
    assert [r["predicted_value"] for r in results] == ["churn", "stay"]

    stats = es.ml.get_trained_models_stats(model_id="churn-model")
    assert stats["count"] == 1
    assert stats["trained_model_stats"][0]["inference_stats"]["inference_count"] == 2

    assert es.ml.delete_trained_model(model_id="churn-model")["acknowledged"] is True
    with pytest.raises(NotFoundError) as err:
        es.ml.get_trained_models(model_id="churn-model")
    assert err.value.meta.status == 404
    assert err.value.error == "resource_not_found_exception"


def test_infer_with_inference_config_in_body(es):
    es.ml.put_trained_model(model_id="churn-model", **churn_model())
    res = es.ml.infer_trained_model(
        model_id="churn-model",
        docs=[{"tenure": 3, "plan": "pro"}],
        inference_config={"classification": {"num_top_classes": 2}},
    )
    top = res["inference_results"][0]["top_classes"]
    assert {c["class_name"] for c in top} == {"stay", "churn"}


def test_aliases_through_the_client(es):
    es.ml.put_trained_model(model_id="m-a", **stump_regression(left=10.0))
    es.ml.put_trained_model(model_id="m-b", **stump_regression(left=20.0))
    assert es.ml.put_trained_model_alias(model_id="m-a", model_alias="current")["acknowledged"] is True
    first = es.ml.infer_trained_model(model_id="current", docs=[{"x": 0.0}])
    assert first["inference_results"][0]["predicted_value"] == 10.0

    with pytest.raises(BadRequestError):  # moving an alias needs reassign=true
        es.ml.put_trained_model_alias(model_id="m-b", model_alias="current")
    es.ml.put_trained_model_alias(model_id="m-b", model_alias="current", reassign=True)
    second = es.ml.infer_trained_model(model_id="current", docs=[{"x": 0.0}])
    assert second["inference_results"][0]["predicted_value"] == 20.0

    with pytest.raises(ConflictError):  # the alias points at m-b now
        es.ml.delete_trained_model_alias(model_id="m-a", model_alias="current")
    assert es.ml.delete_trained_model_alias(model_id="m-b", model_alias="current")["acknowledged"] is True


def test_client_exceptions(es):
    with pytest.raises(NotFoundError):
        es.ml.infer_trained_model(model_id="missing", docs=[{"x": 1}])
    es.ml.put_trained_model(model_id="m", **stump_regression())
    with pytest.raises(BadRequestError) as dup:
        es.ml.put_trained_model(model_id="m", **stump_regression())
    assert dup.value.error == "resource_already_exists_exception"
    es.ingest.put_pipeline(id="uses-m", processors=[{"inference": {"model_id": "m"}}])
    with pytest.raises(ConflictError) as busy:
        es.ml.delete_trained_model(model_id="m")
    assert "still referenced by ingest processors" in str(busy.value)
    assert es.ml.delete_trained_model(model_id="m", force=True)["acknowledged"] is True
    with pytest.raises(BadRequestError) as bad:
        es.ml.get_trained_models(model_id="m", allow_no_match="maybe")  # type: ignore[arg-type]
    assert bad.value.meta.status == 400


def test_ingest_pipelines(es):
    es.ml.put_trained_model(model_id="churn-model", **churn_model())
    processors = [
        {"set": {"field": "seen", "value": True}},
        {"inference": {"model_id": "churn-model", "target_field": "ml"}},
    ]
    assert es.ingest.put_pipeline(id="score", description="score churn", processors=processors)["acknowledged"] is True
    got = es.ingest.get_pipeline(id="score")
    assert got["score"]["description"] == "score churn"
    assert got["score"]["processors"] == processors
    summary = es.ingest.get_pipeline(summary=True)
    assert "score" in summary

    sim = es.ingest.simulate(id="score", docs=[{"_source": {"tenure": 3, "plan": "pro"}}])
    doc = sim["docs"][0]["doc"]["_source"]
    assert doc["seen"] is True and doc["ml"]["predicted_value"] == "churn"

    inline = es.ingest.simulate(
        pipeline={"processors": [{"uppercase": {"field": "name"}}]},
        docs=[{"_source": {"name": "ada"}}, {"_source": {"other": 1}}],
        verbose=True,
    )
    assert inline["docs"][0]["processor_results"][0]["doc"]["_source"]["name"] == "ADA"
    assert inline["docs"][1]["processor_results"][0]["status"] == "error"

    assert es.ingest.delete_pipeline(id="score")["acknowledged"] is True
    with pytest.raises(NotFoundError):
        es.ingest.get_pipeline(id="score")
    with pytest.raises(NotFoundError):
        es.ingest.delete_pipeline(id="score")


def test_filter_path_and_human_params_from_client(es):
    es.ml.put_trained_model(model_id="m", **stump_regression())
    got = es.ml.get_trained_models(model_id="m", filter_path=["trained_model_configs.model_id"])
    assert dict(got) == {"trained_model_configs": [{"model_id": "m"}]}
    got = es.options(headers={"accept-encoding": "gzip"}).ml.get_trained_models(model_id="m", human=True, pretty=True)
    assert got["count"] == 1

