"""``_bulk`` (NDJSON) and ``_search`` with an inference aggregation through the Python Elasticsearch client."""

from __future__ import annotations

import json

import httpx

from helpers import stump_regression


def test_bulk_and_search_through_the_client(es, server):
    es.ml.put_trained_model(model_id="stump", **stump_regression())
    es.indices.create(index="items", mappings={"properties": {"kind": {"type": "keyword"}, "x": {"type": "double"}}})
    ops = [{"index": {}}, {"kind": "a", "x": 0.1}, {"index": {}}, {"kind": "a", "x": 0.3}, {"index": {}},
           {"kind": "b", "x": 0.9}]
    resp = es.bulk(index="items", operations=ops, refresh=True)  # application/vnd.elasticsearch+x-ndjson
    assert resp["errors"] is False and [i["index"]["status"] for i in resp["items"]] == [201, 201, 201]
    found = es.search(index="items", size=0, aggs={"k": {"terms": {"field": "kind"}, "aggs": {
        "avg_x": {"avg": {"field": "x"}},
        "inf": {"inference": {"model_id": "stump", "buckets_path": {"x": "avg_x"}}}}}})
    buckets = found["aggregations"]["k"]["buckets"]
    assert [(b["key"], b["doc_count"], b["avg_x"]["value"]) for b in buckets] == [("a", 2, 0.2), ("b", 1, 0.9)]
    direct = es.ml.infer_trained_model(model_id="stump", docs=[{"x": 0.2}, {"x": 0.9}])["inference_results"]
    assert [b["inf"]["value"] for b in buckets] == [next(iter(d.values())) for d in direct]


def test_plain_ndjson_body(server):
    body = "".join(json.dumps(line) + "\n" for line in ({"index": {"_index": "raw"}}, {"v": 1}))
    with httpx.Client(base_url=server.url) as client:
        resp = client.post("/_bulk", content=body, headers={"content-type": "application/x-ndjson"})
        assert resp.status_code == 200 and resp.json()["items"][0]["index"]["result"] == "created"
        bad = client.post("/_bulk", content="{\"index\": {}\n", headers={"content-type": "application/x-ndjson"})
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "x_content_parse_exception"
