"""Processors Elasticsearch has but es_infer_nb does not run: ES's parse_exception, with a reason that
says they are valid in Elasticsearch (not a typo)."""

from __future__ import annotations

import pytest

from es_infer_nb import Engine
from es_infer_nb.errors import ApiError
from es_infer_nb.ingest.registry import ELASTICSEARCH_ONLY, PROCESSORS

LISTED = ["script", "date", "grok", "dissect", "kv", "csv", "date_index_name", "dot_expander", "enrich", "geoip",
          "user_agent", "uri_parts", "fingerprint", "network_direction", "registered_domain", "community_id",
          "html_strip", "sort", "bytes", "urldecode", "attachment", "circle", "set_security_user", "reroute",
          "redact", "terminate"]


def test_every_listed_processor_is_registered_or_known_as_es_only():
    for name in LISTED:
        assert (name in PROCESSORS) != (name in ELASTICSEARCH_ONLY), name
    assert not ELASTICSEARCH_ONLY & set(PROCESSORS)


@pytest.mark.parametrize("ptype", sorted(ELASTICSEARCH_ONLY))
def test_es_only_processor_error(ptype):
    engine = Engine()
    body = {"processors": [{ptype: {"field": "x", "tag": "t1"}}]}
    resp = engine.request("PUT", "_ingest/pipeline/p", body)
    assert resp.status == 400
    error = resp.body["error"]
    assert error["type"] == "parse_exception"
    assert error["reason"].startswith(f"No processor type exists with name [{ptype}]")
    assert f"[{ptype}] is valid in Elasticsearch, not supported by es_infer_nb" in error["reason"]
    assert error["processor_type"] == ptype and error["processor_tag"] == "t1"


def test_simulate_says_so_too():
    engine = Engine()
    resp = engine.request("POST", "_ingest/pipeline/_simulate", {
        "pipeline": {"processors": [{"date": {"field": "a", "formats": ["ISO8601"]}}]}, "docs": [{"_source": {}}]})
    assert resp.status == 400 and "valid in Elasticsearch, not supported by es_infer_nb" in resp.body["error"]["reason"]


def test_script_is_supported_now_and_the_others_remain():
    assert "script" in PROCESSORS and "script" not in ELASTICSEARCH_ONLY
    assert {"date", "grok", "dissect", "kv", "csv"} <= ELASTICSEARCH_ONLY


def test_a_typo_keeps_es_reason_exactly():
    resp = Engine().request("PUT", "_ingest/pipeline/p", {"processors": [{"scirpt": {}}]})
    assert resp.body["error"]["reason"] == "No processor type exists with name [scirpt]"
    with pytest.raises(ApiError, match="valid in Elasticsearch"):
        Engine().request("PUT", "_ingest/pipeline/p", {"processors": [{"grok": {}}]}).raise_for_status()
