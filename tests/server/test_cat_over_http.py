"""A cat table over HTTP is text/plain (and JSON with ``format=json``), as ES answers it."""

from __future__ import annotations

import httpx


def test_cat_trained_models_is_plain_text_over_http(server):
    resp = httpx.get(f"{server.url}/_cat/ml/trained_models", params={"v": "true", "h": "id,type"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.text.splitlines()[0].split() == ["id", "type"]
    assert resp.text.splitlines()[1].split() == ["lang_ident_model_1", "lang_ident"]
    as_json = httpx.get(f"{server.url}/_cat/ml/trained_models", params={"format": "json", "h": "id"})
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json() == [{"id": "lang_ident_model_1"}]
