"""``GET _cat/ml/trained_models``: ES's cat table (text and JSON; h, v, s, help, bytes, time)."""

from __future__ import annotations

import re

from helpers import stump_regression

from es_infer_nb.api.cat_table import byte_size_text, instant_text, time_value_text


def _put(engine, model_id, **extra):
    body = dict(stump_regression(), **extra)
    assert engine.request("PUT", f"_ml/trained_models/{model_id}", body).status == 200


def test_default_columns_as_the_upstream_yaml_reads_them(engine):
    _put(engine, "a-regression-model-0", description="empty model for tests", tags=["regression", "tag1"])
    body = engine.request("GET", "_cat/ml/trained_models/a-regression-model-0").body
    # trained_model_cat_apis.yml#Test cat trained models
    assert re.fullmatch(r"(a\-regression\-model\-0 \s+ \w+ \s+ \d+ \s+ .*? \s+ \d+ .*? \n)+", body, re.X), body
    body = engine.request("GET", "_cat/ml/trained_models/a-regression-model-0", params={"v": "true"}).body
    assert re.fullmatch(r"id\s+heap_size\s+operations\s+create_time\s+type\s+ingest\.pipelines\s+data_frame\.id\s*\n"
                        r"(a\-regression\-model\-0\s+\w+\s+\d+\s+\S+\s+tree_ensemble\s+\d+\s+\w+\n)+", body), body


def test_h_with_aliases_lists_every_model_with_its_license_and_pipelines(engine):
    _put(engine, "a-regression-model-0")
    _put(engine, "a-regression-model-1")
    body = engine.request("GET", "_cat/ml/trained_models", params={"h": "id,license,dfid,ip", "v": "true"}).body
    lines = body.splitlines()
    assert lines[0].split() == ["id", "license", "dfid", "ip"]
    assert [line.split()[0] for line in lines[1:]] == ["a-regression-model-0", "a-regression-model-1",
                                                       "lang_ident_model_1"]
    assert all(line.split()[2] == "__none__" and line.split()[3].isdigit() for line in lines[1:])
    # columns are padded to their widest cell, one space between them, no trailing space
    assert len({line.index(" ", len("a-regression-model-0")) for line in lines[1:]}) == 1
    assert not any(line.endswith(" ") for line in lines)


def test_json_format_renders_every_value_as_text_keyed_by_the_requested_names(engine):
    _put(engine, "m1", description="d1")
    rows = engine.request("GET", "_cat/ml/trained_models/m1",
                          params={"format": "json", "h": "id,hs,d,it,dft", "bytes": "b"}).body
    size = engine.request("GET", "_ml/trained_models/_stats").body["trained_model_stats"]
    model_size = next(s for s in size if s["model_id"] == "m1")["model_size_stats"]["model_size_bytes"]
    assert rows == [{"id": "m1", "hs": str(model_size), "d": "d1", "it": "0s", "dft": None}]


def test_ingest_counts_come_from_the_pipelines_using_the_model(engine):
    _put(engine, "m1")
    engine.request("PUT", "_ingest/pipeline/p1", {"processors": [{"inference": {"model_id": "m1"}}]})
    engine.request("POST", "_ingest/pipeline/p1/_simulate", {"docs": [{"_source": {"x": 0.1}}, {"_source": {"x": 1}}]})
    rows = engine.request("GET", "_cat/ml/trained_models/m1",
                          params={"format": "json", "h": "ip,ic,if,icurr"}).body
    assert rows[0]["ip"] == "1" and rows[0]["if"] == "0" and rows[0]["icurr"] == "0"
    stats = engine.request("GET", "_ml/trained_models/m1/_stats").body["trained_model_stats"][0]
    assert rows[0]["ic"] == str(stats.get("ingest", {}).get("total", {}).get("count", 0))


def test_sort_help_and_errors(engine):
    _put(engine, "b-model")
    _put(engine, "a-model")
    ids = engine.request("GET", "_cat/ml/trained_models", params={"h": "id", "s": "id:desc"}).body.split()
    assert ids == sorted(ids, reverse=True)
    helptext = engine.request("GET", "_cat/ml/trained_models", params={"help": "true"}).body
    assert re.search(r"^heap_size\s+\| hs,modelHeapSize\s+\| the estimated heap size", helptext, re.M)
    bad = engine.request("GET", "_cat/ml/trained_models", params={"s": "nope"})
    assert bad.status == 400 and "nope" in bad.body["error"]["reason"]
    missing = engine.request("GET", "_cat/ml/trained_models/nope", params={"allow_no_match": "false"})
    assert missing.status == 404


def test_value_renderings_follow_es():
    assert byte_size_text(1053992) == "1mb"
    assert byte_size_text(1536) == "1.5kb"
    assert byte_size_text(442) == "442b"
    assert time_value_text(0) == "0s"
    assert time_value_text(1500) == "1.5s"
    assert time_value_text(250) == "250ms"
    assert instant_text(1575548914594) == "2019-12-05T12:28:34.594Z"


def test_definition_status_is_for_pytorch_models_only(engine):
    _put(engine, "m1")
    resp = engine.request("GET", "_ml/trained_models/m1", params={"include": "definition_status"})
    assert resp.status == 400
    assert resp.body["error"]["reason"] == "Definition status is only relevant to PyTorch model types"


def test_dfid_names_the_stored_analytics_job_among_the_model_tags(engine):
    body = {"source": {"index": "src"}, "dest": {"index": "dst"}, "analysis": {"regression": {"dependent_variable": "y"}}}
    assert engine.request("PUT", "_ml/data_frame/analytics/prepackaged", body).status == 200
    assert engine.request("PUT", "_ml/data_frame/analytics/prepackaged", body).status == 400  # already exists
    _put(engine, "m1")
    text = engine.request("GET", "_cat/ml/trained_models", params={"h": "id,dfid,dfsi,dfa"}).body
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()}
    assert rows["m1"] == ["__none__"]
    assert rows["lang_ident_model_1"] == ["prepackaged", "src", "regression"]  # tagged "prepackaged"
    assert engine.request("DELETE", "_ml/data_frame/analytics/prepackaged").status == 200
    assert engine.request("GET", "_ml/data_frame/analytics/prepackaged").status == 404


def test_a_cat_answer_shows_as_text_in_reprs(engine):
    resp = engine.request("GET", "_cat/ml/trained_models", params={"v": "true"})
    assert repr(resp).splitlines()[1].split()[:2] == ["id", "heap_size"]
    html = resp._repr_html_()
    assert '<pre class="esinb-cat">id ' in html and "&quot;" not in html.split("esinb-cat")[1]
