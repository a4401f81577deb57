"""``_cluster/settings``: xpack.ml.max_inference_processors drives the pipeline limit."""

from __future__ import annotations

from es_infer_nb import Engine

LIMIT = "xpack.ml.max_inference_processors"


def _pipeline(model_id: str) -> dict:
    return {"processors": [{"inference": {"model_id": model_id, "target_field": "t"}}]}


def test_put_get_and_limit_applies() -> None:
    eng = Engine()
    resp = eng.request("PUT", "_cluster/settings", {"persistent": {LIMIT: 1}})
    assert resp.status == 200
    assert resp.body["persistent"] == {"xpack": {"ml": {"max_inference_processors": "1"}}}
    got = eng.request("GET", "_cluster/settings", params={"flat_settings": "true"})
    assert got.body["persistent"] == {LIMIT: "1"}
    assert eng.request("PUT", "_ingest/pipeline/a", _pipeline("m1")).status == 200
    second = eng.request("PUT", "_ingest/pipeline/b", _pipeline("m2"))
    assert second.status == 409
    assert second.body["error"]["reason"].endswith(f"Adjust the setting [{LIMIT}]: [1] if a greater number is desired.")
    # transient wins; null resets
    assert eng.request("PUT", "_cluster/settings", {"transient": {"xpack": {"ml": {"max_inference_processors": 5}}}}).status == 200
    assert eng.request("PUT", "_ingest/pipeline/b", _pipeline("m2")).status == 200
    assert eng.request("PUT", "_cluster/settings", {"transient": {LIMIT: None}}).status == 200
    assert eng.request("PUT", "_ingest/pipeline/c", _pipeline("m3")).status == 409


def test_unknown_and_invalid_settings() -> None:
    eng = Engine()
    resp = eng.request("PUT", "_cluster/settings", {"persistent": {"foo.bar": 1}})
    assert resp.status == 400 and resp.body["error"]["reason"] == "persistent setting [foo.bar], not recognized"
    resp = eng.request("PUT", "_cluster/settings", {"persistent": {LIMIT: 0}})
    assert resp.status == 400 and "must be >= 1" in resp.body["error"]["reason"]
    resp = eng.request("PUT", "_cluster/settings", {"persistent": {LIMIT: "x"}})
    assert resp.status == 400


def test_persistent_setting_survives_restart(tmp_path) -> None:
    Engine(tmp_path).request("PUT", "_cluster/settings", {"persistent": {LIMIT: 2}})
    again = Engine(tmp_path)
    assert again.request("GET", "_cluster/settings", params={"flat_settings": "true"}).body["persistent"] == {LIMIT: "2"}
