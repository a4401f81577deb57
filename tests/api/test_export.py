"""``Engine.export(id)``: models, pipelines and ``_inference`` endpoints as a cluster's PUT takes them
(no generated fields, secrets as placeholders), and as Kibana console snippets that replay."""

from __future__ import annotations

import json

import pytest
from helpers import churn_model, stump_regression

from es_infer_nb import ApiError, Engine
from es_infer_nb.notebook.console import parse_console

GENERATED = ("create_time", "model_size_bytes", "estimated_operations", "license_level", "version", "created_by")
EMBEDDED = "sentence-transformers__all-minilm-l6-v2"


def _replay(snippet: str, target: Engine) -> list[int]:
    return [target.request(r.method, r.path, r.body).status for r in parse_console(snippet, {})]


def test_model_export_is_the_put_body_and_replays():
    eng = Engine()
    assert eng.request("PUT", "_ml/trained_models/churner", churn_model()).ok
    assert eng.request("PUT", "_ml/trained_models/churner/model_aliases/churn-live").ok
    full = eng.request("GET", "_ml/trained_models/churner").body["trained_model_configs"][0]
    assert all(k in full for k in ("create_time", "version", "created_by"))  # GET has them, the export not
    body = eng.export("churn-live")  # an alias names its model
    assert body.path == "_ml/trained_models/churner"
    assert not set(GENERATED) & set(body) and "model_id" not in body
    assert "compressed_definition" in body and "model_aliases" not in body.get("metadata", {})
    fresh = Engine()
    assert fresh.request("PUT", "_ml/trained_models/churner", dict(body)).status == 200
    doc = {"tenure": 3, "plan": "basic"}
    assert fresh.infer("churner", [doc]) == eng.infer("churner", [doc])
    # the console snippet: the PUT, then the alias
    snippet = eng.export("churner", console=True)
    assert snippet.startswith("PUT _ml/trained_models/churner\n{\n")
    assert "PUT _ml/trained_models/churner/model_aliases/churn-live" in snippet
    other = Engine()
    assert _replay(snippet, other) == [200, 200]
    assert other.infer("churn-live", [doc]) == eng.infer("churner", [doc])


def test_imported_model_keeps_the_baseline_and_drops_total_importance():
    np = pytest.importorskip("numpy")
    tree = pytest.importorskip("sklearn.tree")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    clf = tree.DecisionTreeRegressor(max_depth=3, random_state=0).fit(x, x[:, 0] * 2 + x[:, 1])
    eng = Engine()
    eng.import_model("reg", clf, ["a", "b"], data=x)
    stored = eng.request("GET", "_ml/trained_models/reg", params={"include": "total_feature_importance"}).body
    assert "total_feature_importance" in stored["trained_model_configs"][0]["metadata"]
    body = eng.export("reg")
    assert "feature_importance_baseline" in body["metadata"] and "total_feature_importance" not in body["metadata"]
    fresh = Engine()
    assert fresh.request("PUT", "_ml/trained_models/reg", dict(body)).ok
    assert fresh.infer("reg", [{"a": 0.3, "b": -1}]) == eng.infer("reg", [{"a": 0.3, "b": -1}])


def test_pytorch_model_export_has_no_vocabulary_or_location_and_says_where_the_weights_go():
    eng = Engine()
    body = eng.export(EMBEDDED)
    assert body["model_type"] == "pytorch" and "location" not in body
    assert "vocabulary" not in body["inference_config"]["text_embedding"]
    assert Engine().request("PUT", "_ml/trained_models/my-minilm", dict(body)).status == 200
    snippet = eng.export(EMBEDDED, console=True)
    assert snippet.startswith("# ") and "eland" in snippet.splitlines()[0]


def test_pipeline_export():
    eng = Engine()
    eng.request("PUT", "_ml/trained_models/stump", stump_regression())
    pipe = {"description": "score", "processors": [{"inference": {"model_id": "stump"}}], "version": 3}
    assert eng.request("PUT", "_ingest/pipeline/score", pipe).ok
    assert eng.export("score") == pipe
    snippet = eng.export("score", console=True)
    assert snippet.startswith("PUT _ingest/pipeline/score\n")
    other = Engine()
    other.request("PUT", "_ml/trained_models/stump", stump_regression())
    assert _replay(snippet, other) == [200]
    assert other.request("GET", "_ingest/pipeline/score").body["score"] == pipe


def test_endpoint_export_writes_secret_placeholders_never_values():
    eng = Engine()
    assert eng.request("PUT", "_inference/text_embedding/oa", {"service": "openai", "service_settings": {
        "api_key": "sk-VERY-SECRET", "model_id": "text-embedding-3-small",
        "url": "http://127.0.0.1:9/v1/embeddings"}}).ok
    assert eng.request("PUT", "_inference/text_embedding/cu", {"service": "custom", "service_settings": {
        "url": "http://127.0.0.1:9/embed", "secret_parameters": {"api_key": "ali-SECRET", "token": "tok-SECRET"},
        "headers": {"Authorization": "Bearer ${api_key}", "x-api-key": "literal-SECRET"},
        "request": '{"input": ${input}, "t": "${token}"}',
        "response": {"json_parser": {"text_embeddings": "$.data[*].embedding"}}}}).ok
    oa = eng.export("oa")
    assert oa.path == "_inference/text_embedding/oa"
    assert oa["service"] == "openai" and oa["service_settings"]["api_key"] == "<api_key>"
    assert "inference_id" not in oa and "task_type" not in oa
    cu = eng.export("cu")
    assert cu["service_settings"]["secret_parameters"] == {"api_key": "<api_key>", "token": "<token>"}
    assert cu["service_settings"]["headers"] == {"Authorization": "Bearer ${api_key}", "x-api-key": "<x-api-key>"}
    snippets = eng.export("oa", console=True) + eng.export("cu", console=True)
    for text in (json.dumps(oa), json.dumps(cu), snippets):
        assert "SECRET" not in text
    assert "<api_key>" in snippets.splitlines()[0]  # the note names the placeholders to fill
    other = Engine()
    assert _replay(snippets, other) == [200, 200]  # a cluster takes the bodies as they are


def test_unknown_and_ambiguous_ids():
    eng = Engine()
    with pytest.raises(ApiError) as info:
        eng.export("nope")
    assert info.value.status == 404 and "nope" in info.value.reason
    eng.request("PUT", "_ml/trained_models/same", stump_regression())
    eng.request("PUT", "_ingest/pipeline/same", {"processors": [{"set": {"field": "a", "value": 1}}]})
    with pytest.raises(ValueError, match="kind="):
        eng.export("same")
    assert eng.export("same", kind="pipeline").path == "_ingest/pipeline/same"
    assert eng.export("same", kind="model").path == "_ml/trained_models/same"
    with pytest.raises(ValueError, match="kind must be"):
        eng.export("same", kind="index")
