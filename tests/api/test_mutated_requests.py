"""Mutated requests (issue 19, point 4): valid requests, mutated deterministically — keys dropped,
types swapped, huge and odd strings, NaN, deep nesting, odd ids — never escape as exceptions,
never answer a 5xx (but the upstream's own) or a body that is not JSON or names a Python exception, and never
change what was stored before. ``valid_requests`` and then ``more_requests`` cover every route of the routing
table (a test below checks it)."""

from __future__ import annotations

import builtins
import copy
import json
import math
import os
import random
import re
import time
from typing import Any

import pytest

from es_infer_nb import Engine
from es_infer_nb.server.render import to_json_bytes
from helpers import churn_model, many_processors, stump_regression

ENDPOINT = {"service": "hugging_face", "service_settings": {"url": "http://127.0.0.1:9/embed", "api_key": "k-123456"}}
PIPELINE = {"description": "keep", "processors": [
    {"set": {"field": "s", "value": "{{x}}", "if": "ctx.x != null"}},
    {"inference": {"model_id": "keep", "target_field": "out", "field_map": {"v": "x"}}},
]}
CONNECTOR = {"name": "c", "description": "d", "version": 1, "protocol": "http",
             "parameters": {"endpoint": "http://127.0.0.1:9"}, "credential": {"api_key": "k-123456"},
             "actions": [{"action_type": "predict", "method": "POST", "url": "${parameters.endpoint}/embed",
                          "headers": {"Authorization": "Bearer ${credential.api_key}"},
                          "request_body": '{ "input": "${parameters.input}" }'}]}
ODD_STRINGS = ["", "\x00", "a\x00b", "\ud800", "\udfff lone", "\u202eRTL\u202c", "\u200f\u05e9\u05dc\u05d5\u05dd",
               "emoji 🧪", "line\nbreak", "../../etc/passwd", "C:\\\\windows", "%00%2F", "{{x}}", "' OR 1=1 --",
               "\t", " " * 10, "ü" * 300]
ODD_IDS = ["../x", "..", "a%00b", "a%5Cb", "A", "x" * 300, "%20", "_all", "*", "a%2Fb", "%F0%9F%A7%AA",
           "a.b", "-a", "a-", "%ED%A0%80", "a%0A"]
BIG = "b" * (1024 * 1024)


def valid_requests() -> list[tuple[str, str, Any]]:
    """(method, path, body) of valid requests; ``{id}`` is replaced per request (new objects only)."""
    return [
        ("PUT", "_ml/trained_models/{id}", stump_regression()),
        ("POST", "_ml/trained_models/keep/_infer", {"docs": [{"x": 0.2}, {"x": 0.9}],
                                                    "inference_config": {"regression": {"results_field": "r"}}}),
        ("PUT", "_ingest/pipeline/{id}", PIPELINE),
        ("POST", "_ingest/pipeline/keep/_simulate", {"docs": [{"_source": {"v": 0.1}}, {"_source": {"v": 0.7}}]}),
        ("POST", "_ingest/pipeline/_simulate", {"pipeline": PIPELINE, "docs": [{"_source": {"v": 0.1}}]}),
        ("PUT", "_inference/text_embedding/{id}", ENDPOINT),
        ("GET", "_ml/trained_models/{id}/_stats", None),
        ("POST", "_ml/trained_models/{id}/deployment/_start", {"number_of_allocations": 1}),
        ("PUT", "_ml/trained_models/keep/model_aliases/{id}", None),
        ("PUT", "_ml/trained_models/{id}", churn_model()),
        ("POST", "_ml/trained_models/churner/_infer", {"docs": [{"tenure": 3, "plan": "pro"}], "inference_config": {
            "classification": {"num_top_classes": 2, "top_classes_results_field": "top", "num_top_feature_importance_values": 1}}}),
        ("POST", "_ingest/pipeline/_simulate", {"pipeline": {"processors": [
            {"convert": {"field": "n", "type": "integer", "ignore_missing": True}},
            {"gsub": {"field": "t", "pattern": "a+", "replacement": "b"}},
            {"inference": {"model_id": "churn", "inference_config": {"classification": {"num_top_classes": 1}}}},
            {"script": {"source": "ctx.z = 1"}}], "on_failure": [{"set": {"field": "f", "value": "{{_ingest.on_failure_message}}"}}]},
            "docs": [{"_source": {"n": "5", "t": "aaa", "tenure": 1, "plan": "basic"}}]}),
        ("GET", "_ml/trained_models/_stats", None),
        ("GET", "_ml/trained_models", None),
        ("GET", "_inference/_all", None),
        ("DELETE", "_ml/trained_models/{id}", None),
        ("DELETE", "_ingest/pipeline/{id}", None),
        ("DELETE", "_inference/{id}", None),
        ("POST", "_plugins/_ml/connectors/_create", CONNECTOR),
        ("POST", "_plugins/_ml/model_groups/_register", {"name": "group", "description": "d"}),
        ("POST", "_plugins/_ml/models/_register", {"name": "remote", "function_name": "remote", "connector": CONNECTOR}),
        ("POST", "_plugins/_ml/connectors/_search", {"query": {"match_all": {}}, "size": 5}),
        ("GET", "_plugins/_ml/models/{id}", None),
        ("POST", "_plugins/_ml/models/{id}/_predict", {"parameters": {"input": "x"}}),
        ("PUT", "{id}", {"mappings": {"properties": {"a": {"type": "keyword"}, "n": {"type": "integer"}}}}),
        ("POST", "kept/_bulk", [{"index": {"_id": "{id}"}}, {"a": "x", "n": 1}, {"create": {}}, {"a": "y", "n": "2"}]),
        ("POST", "kept/_search", {"size": 1, "query": {"match_all": {}}, "aggs": {"g": {"terms": {"field": "a"}, "aggs": {
            "m": {"avg": {"field": "n"}}, "i": {"inference": {"model_id": "keep", "buckets_path": {"x": "m"}}}}}}}),
        ("DELETE", "{id}", None),
    ]


#: a pipeline with many processor types (the ``pipeline`` processor runs ``keep``; ``fail`` and ``drop`` only
#: where a document asks for them)
BIG_PIPELINE = {"description": "many processors", "processors": [
    *many_processors("ctx.js != null"),
    {"pipeline": {"name": "keep"}},
    {"fail": {"message": "asked to fail: {{t}}", "if": "ctx.fail_me == true"}},
    {"drop": {"if": "ctx.drop_me == true"}},
    {"script": {"lang": "painless", "source": "ctx.z = ctx.containsKey('n') ? params.one : 0", "params": {"one": 1}}},
    {"inference": {"model_id": "churner", "target_field": "churn",
                   "inference_config": {"classification": {"num_top_classes": 2}}}},
    {"ml_inference": {"model_id": "keep", "input_map": [{"x": "x"}], "output_map": [{"pred": "predicted_value"}]}},
], "on_failure": [{"set": {"field": "error", "value": "{{_ingest.on_failure_message}}"}}]}
BIG_DOC = {"x": 0.3, "v": 0.4, "t": "AAA Bee", "n": "5", "csv": "a,b,c", "js": '{"k": [1, 2]}', "list": ["p", "q"],
           "old": 1, "junk": 2, "tenure": 3, "plan": "pro"}
#: a custom endpoint in Alibaba Cloud's text-embedding layout; its url (the discard port on the loopback) is
#: never reached: a call answers the upstream's 5xx for a connection failure
CUSTOM_ENDPOINT = {"service": "custom", "service_settings": {
    "url": "http://127.0.0.1:9/ali-embeddings", "headers": {"Authorization": "Bearer ${api_key}"},
    "secret_parameters": {"api_key": "ali-secret-XYZ"},
    "request": '{"input": ${input}, "input_type": ${input_type}}',
    "input_type": {"translation": {"ingest": "document", "search": "query"}, "default": "document"},
    "response": {"json_parser": {"text_embeddings": "$.result.embeddings[*].embedding"},
                 "error_parser": {"path": "$.error.message"}}}}
SPARSE_ENDPOINT = {"service": "alibaba-cloud-custom-model", "service_settings": {
    "url": "http://127.0.0.1:9/ali-sparse", "secret_parameters": {"api_key": "k1"}, "request": '{"input": ${input}}',
    "response": {"json_parser": {"token_path": "$.result.sparse_embeddings[*].embedding[*].tokenId",
                                 "weight_path": "$.result.sparse_embeddings[*].embedding[*].weight"}}}}
RERANK_ENDPOINT = {"service": "custom", "service_settings": {
    "url": "http://127.0.0.1:9/ali-rerank", "secret_parameters": {"api_key": "k2"},
    "request": '{"query": ${query}, "docs": ${input}, "top_n": ${top_n}}',
    "response": {"json_parser": {"relevance_score": "$.result.scores[*].score",
                                 "reranked_index": "$.result.scores[*].index"}}}}
PYTORCH = {"model_type": "pytorch", "model_size_bytes": 10, "input": {"field_names": ["text_field"]},
           "inference_config": {"pass_through": {"tokenization": {"bert": {"with_special_tokens": False}}}}}
ENCODED = {"input": {"field_names": ["colour", "size"]},
           "inference_config": {"classification": {"num_top_classes": 2}},
           "definition": {"preprocessors": [
               {"frequency_encoding": {"field": "colour", "feature_name": "colour_freq",
                                       "frequency_map": {"red": 0.6, "blue": 0.4}}},
               {"target_mean_encoding": {"field": "colour", "feature_name": "colour_mean",
                                         "target_map": {"red": 0.9}, "default_value": 0.1}}],
               "trained_model": {"ensemble": {
                   "feature_names": ["colour_freq", "colour_mean", "size"], "target_type": "classification",
                   "classification_labels": ["small", "big"], "aggregate_output": {"weighted_mode": {"num_classes": 2}},
                   "trained_models": [{"tree": {"feature_names": ["colour_freq", "colour_mean", "size"],
                                                "target_type": "classification", "classification_labels": ["small", "big"],
                                                "tree_structure": [
                                                    {"node_index": 0, "split_feature": 2, "threshold": 3.0,
                                                     "decision_type": "lte", "left_child": 1, "right_child": 2},
                                                    {"node_index": 1, "leaf_value": [1.0, 0.0]},
                                                    {"node_index": 2, "leaf_value": [0.0, 1.0]}]}}]}}}}
MINILM = "sentence-transformers__all-minilm-l6-v2"
ML = "_plugins/_ml"


def more_requests() -> list[tuple[str, str, Any, dict[str, str] | None]]:
    """(method, path, body, params) of valid requests on the routes ``valid_requests`` lacks, used after them by
    the seeded test (so earlier seeds keep their first requests); ``{id}`` is a new object's id, ``{conn}``,
    ``{sconn}``, ``{grp}``, ``{sgrp}``, ``{remote}``, ``{smodel}`` and ``{task}`` the ml-commons objects
    :func:`seed_more` made (in paths and bodies)."""
    return [
        ("GET", "_ml/trained_models/keep", None, {"include": "definition"}),
        ("GET", "_ml/trained_models/{id}", None, None),
        ("PUT", "_ml/trained_models/{id}", ENCODED, None),
        ("PUT", "_ml/trained_models/{id}", PYTORCH, None),
        ("PUT", "_ml/trained_models/pt/definition/0", {"definition": "MDEyMzQ1Njc4OQ==", "total_definition_length": 10,
                                                       "total_parts": 1}, None),
        ("PUT", "_ml/trained_models/pt/vocabulary", {"vocabulary": ["[PAD]", "[UNK]", "these", "are"]}, None),
        ("DELETE", "_ml/trained_models/keep/model_aliases/kalias", None, None),
        ("POST", "_ml/trained_models/lang_ident_model_1/_infer", {"docs": [{"text": "hello world, how are you"}],
         "inference_config": {"classification": {"num_top_classes": 3}}}, None),
        ("POST", "_ml/inference/churner/_infer", {"docs": [{"tenure": 20, "plan": "basic"}]}, None),
        ("POST", "_ml/trained_models/encoded/_infer", {"docs": [{"colour": "red", "size": 4}, {"colour": "green"}]},
         None),
        ("POST", f"_ml/trained_models/{MINILM}/deployment/_start", {"number_of_allocations": 1, "priority": "normal"},
         None),
        ("POST", "_ml/trained_models/dep/deployment/_update", {"number_of_allocations": 2}, None),
        ("POST", "_ml/trained_models/dep/deployment/_infer", {"docs": [{"text_field": "hello there"}]}, None),
        ("POST", "_ml/trained_models/dep/_infer", {"docs": [{"text_field": "a b"}],
                                                   "inference_config": {"text_embedding": {}}}, {"timeout": "5s"}),
        ("POST", "_ml/trained_models/dep/deployment/cache/_clear", None, None),
        ("POST", f"_ml/trained_models/{MINILM}/deployment/_stop", {"force": True}, None),
        ("POST", "_ml/trained_models/{id}/deployment/_stop", {"allow_no_match": True}, None),
        ("GET", "_cat/ml/trained_models", None, {"h": "id,type", "v": "true", "s": "id"}),
        ("GET", "_cat/ml/trained_models/keep", None, {"format": "json"}),
        ("PUT", "_ml/data_frame/analytics/{id}", {"source": {"index": "kept"}, "dest": {"index": "out"},
                                                  "analysis": {"regression": {"dependent_variable": "n"}}}, None),
        ("GET", "_ml/data_frame/analytics", None, {"allow_no_match": "true"}),
        ("GET", "_ml/data_frame/analytics/job1", None, None),
        ("DELETE", "_ml/data_frame/analytics/{id}", None, None),
        ("PUT", "_cluster/settings", {"transient": {"xpack.ml.max_inference_processors": 60}}, None),
        ("GET", "_cluster/settings", None, {"flat_settings": "true"}),
        ("GET", "_ingest/pipeline", None, None),
        ("GET", "_ingest/pipeline/keep", None, {"summary": "true"}),
        ("PUT", "_ingest/pipeline/{id}", BIG_PIPELINE, None),
        ("POST", "_ingest/pipeline/_simulate", {"pipeline": BIG_PIPELINE, "docs": [
            {"_source": BIG_DOC}, {"_source": {**BIG_DOC, "fail_me": True}}, {"_source": {"drop_me": True}}]},
         {"verbose": "true"}),
        ("GET", "_ingest/pipeline/_simulate", {"pipeline": BIG_PIPELINE, "docs": [{"_source": BIG_DOC}]}, None),
        ("POST", "_ingest/pipeline/big/_simulate", {"docs": [{"_index": "i", "_id": "1", "_source": BIG_DOC}]}, None),
        ("GET", "_ingest/pipeline/big/_simulate", {"docs": [{"_source": {"x": 0.9, "t": "x"}}]}, {"verbose": "true"}),
        ("PUT", "_inference/{id}", {"task_type": "text_embedding", **ENDPOINT}, None),
        ("PUT", "_inference/text_embedding/{id}", CUSTOM_ENDPOINT, None),
        ("PUT", "_inference/sparse_embedding/{id}", SPARSE_ENDPOINT, None),
        ("PUT", "_inference/rerank/{id}", RERANK_ENDPOINT, None),
        ("PUT", "_inference/text_embedding/scratch/_update", {"service_settings": {"api_key": "k-654321"}}, None),
        ("PUT", "_inference/scratch/_update", {"task_settings": {}}, None),
        ("GET", "_inference", None, None),
        ("GET", "_inference/emb", None, None),
        ("GET", "_inference/text_embedding/emb", None, None),
        ("GET", "_inference/_services", None, None),
        ("GET", "_inference/_services/rerank", None, None),
        ("POST", "_inference/emb", {"input": ["a", "b"]}, None),
        ("POST", "_inference/text_embedding/emb", {"input": "a", "input_type": "ingest"}, None),
        ("DELETE", "_inference/text_embedding/{id}", None, {"dry_run": "true"}),
        ("GET", f"{ML}/connectors/{{conn}}", None, None),
        ("PUT", f"{ML}/connectors/{{sconn}}", {"description": "changed", "parameters": {"endpoint": "http://127.0.0.1:9"}},
         None),
        ("DELETE", f"{ML}/connectors/{{id}}", None, None),
        ("GET", f"{ML}/model_groups/{{grp}}", None, None),
        ("PUT", f"{ML}/model_groups/{{sgrp}}", {"name": "renamed", "description": "d2"}, None),
        ("DELETE", f"{ML}/model_groups/{{id}}", None, None),
        ("POST", f"{ML}/models/_register", {"name": "by-id", "function_name": "remote", "connector_id": "{conn}",
                                           "model_group_id": "{sgrp}"}, {"deploy": "true"}),
        ("POST", f"{ML}/models/{{id}}/1/_register", {"name": "v", "function_name": "remote", "connector_id": "{conn}"},
         None),
        ("PUT", f"{ML}/models/{{smodel}}", {"description": "d3"}, None),
        ("DELETE", f"{ML}/models/{{id}}", None, None),
        ("POST", f"{ML}/models/{{remote}}/_deploy", None, None),
        ("POST", f"{ML}/models/{{remote}}/_undeploy", None, None),
        ("GET", f"{ML}/tasks/{{task}}", None, None),
        ("DELETE", f"{ML}/tasks/{{id}}", None, None),
        ("POST", f"{ML}/models/{{remote}}/_predict", {"parameters": {"input": "x"}}, None),
        ("POST", f"{ML}/_predict/text_embedding/{{remote}}", {"text_docs": ["a", "b"]}, None),
        ("GET", f"{ML}/connectors/_search", None, {"size": "2"}),
        ("POST", f"{ML}/models/_search", {"query": {"term": {"name": "remote"}}}, None),
        ("GET", f"{ML}/models/_search", None, None),
        ("POST", f"{ML}/model_groups/_search", {"query": {"bool": {"must": [{"match": {"name": "group"}}]}}}, None),
        ("GET", f"{ML}/model_groups/_search", None, None),
        ("POST", f"{ML}/tasks/_search", {"size": 2, "from": 0, "query": {"ids": {"values": ["{task}"]}}}, None),
        ("GET", f"{ML}/tasks/_search", None, None),
        ("GET", "kept", None, None),
        ("GET", "kept/_refresh", None, None),
        ("POST", "kept/_refresh", None, None),
        ("POST", "kept/_doc", {"a": "z", "n": 3}, {"refresh": "true"}),
        ("PUT", "kept/_doc/{id}", BIG_DOC, {"pipeline": "big"}),
        ("POST", "kept/_doc/{id}", {"a": "w", "n": 4}, {"op_type": "create"}),
        ("PUT", "kept/_create/{id}", {"a": "v"}, None),
        ("POST", "kept/_create/{id}", {"a": "u", "n": 5}, None),
        ("GET", "kept/_doc/d1", None, None),
        ("GET", "_cluster/health", None, None),
        ("GET", "_cluster/health/kept", None, {"wait_for_status": "yellow"}),
        ("GET", "_search", None, None),
        ("POST", "_search", {"query": {"term": {"a": "x"}}, "aggs": {"s": {"max": {"field": "n"}}}}, None),
        ("GET", "kept/_search", {"size": 2, "query": {"match_all": {}}, "aggs": {"t": {"terms": {"field": "a"}}}}, None),
        ("PUT", "_bulk", [{"index": {"_index": "kept", "_id": "b1"}}, {"a": "x", "n": 1},
                          {"delete": {"_index": "kept", "_id": "b2"}}], None),
        ("POST", "_bulk", [{"create": {"_index": "kept"}}, {"a": "y"}, {"index": {"_index": "kept", "_id": "b1"}},
                           {"n": 2}], None),
        ("PUT", "kept/_bulk", [{"index": {"_id": "b3", "pipeline": "big"}}, BIG_DOC], {"refresh": "true"}),
        ("GET", "", None, None),
    ]


def seed_more(engine: Engine) -> dict[str, str]:
    """The objects :func:`more_requests` names; answers the ids of the ml-commons ones."""
    for method, path, body, params in [
        ("PUT", "_ingest/pipeline/big", BIG_PIPELINE, None),
        ("PUT", "_ml/trained_models/encoded", ENCODED, None),
        ("PUT", "_ml/trained_models/pt", PYTORCH, None),
        ("PUT", "_ml/trained_models/keep/model_aliases/kalias", None, None),
        ("POST", f"_ml/trained_models/{MINILM}/deployment/_start", None, {"deployment_id": "dep"}),
        ("PUT", "_inference/text_embedding/scratch", ENDPOINT, None),
        ("PUT", "_ml/data_frame/analytics/job1", {"source": {"index": "kept"}, "dest": {"index": "out"},
                                                 "analysis": {"outlier_detection": {}}}, None),
        ("PUT", "kept/_doc/d1", {"a": "x", "n": 1}, {"refresh": "true"}),
    ]:
        resp = engine.request(method, path, body, params=params)
        assert resp.status in (200, 201), (path, resp.body)
    ids = {"conn": engine.request("POST", f"{ML}/connectors/_create", CONNECTOR).body["connector_id"],
           "sconn": engine.request("POST", f"{ML}/connectors/_create", CONNECTOR).body["connector_id"],
           "grp": engine.request("POST", f"{ML}/model_groups/_register", {"name": "kept-group"}).body["model_group_id"],
           "sgrp": engine.request("POST", f"{ML}/model_groups/_register", {"name": "scratch-group"}).body["model_group_id"]}
    for name in ("remote", "smodel"):
        registered = engine.request("POST", f"{ML}/models/_register",
                                    {"name": name, "function_name": "remote", "connector": CONNECTOR}).body
        ids[name], ids["task"] = registered["model_id"], registered["task_id"]
    return ids


def fill(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with the ``{name}`` placeholders of ``ids`` replaced in its strings."""
    if isinstance(value, str):
        for name, real in ids.items():
            value = value.replace("{" + name + "}", real)
        return value
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


def _stored_more(engine: Engine, ids: dict[str, str], reopened: bool = False) -> dict[str, Any]:
    """What the requests of :func:`more_requests` must leave as it was (in a ``reopened`` engine: what is kept
    in its home; indices live in memory)."""
    paths = ["_ingest/pipeline/big", "_ml/data_frame/analytics/job1", f"{ML}/connectors/{ids['conn']}",
             f"{ML}/model_groups/{ids['grp']}", "_ml/trained_models/encoded", "_inference/text_embedding/emb"]
    paths += [] if reopened else ["kept/_doc/d1"]
    out: dict[str, Any] = {}
    for path in paths:
        resp = engine.request("GET", path)
        assert resp.status == 200, (path, resp.body)
        out[path] = resp.body
    for config in out["_ml/trained_models/encoded"]["trained_model_configs"]:
        config.pop("create_time", None)
    out["_ml/data_frame/analytics/job1"]["data_frame_analytics"][0].pop("create_time", None)
    return out


PARAMS = [None, None, {"size": "ten"}, {"from": "-1", "size": "5"}, {"size": "100000"}, {"timeout": "abc"},
          {"include": "definition,bogus"}, {"allow_no_match": "maybe"}, {"verbose": "true"}, {"pretty": ""},
          {"filter_path": "**.x,-a"}, {"bogus\x00": "1"}, {"size": "9" * 50}, {"include": "definition"}]


# -- mutations ------------------------------------------------------------------------------------

def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into ``node`` (dict keys and list indexes), the root included."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, prefix + (i,)))
    return out


def _set(body: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return body


def _get(body: Any, path: tuple) -> Any:
    for step in path:
        body = body[step]
    return body


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"d": value}
    return value


def _swap(value: Any, rng: random.Random) -> Any:
    choices: list[Any] = ["text", 7, -1, 0, 2**63, 1.5, True, None, [], {}, [1, "a", None], {"k": "v"}, "7", "true"]
    if isinstance(value, str):
        choices += [len(value), [value], {"value": value}]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        choices += [str(value), [value], {"value": value}, -value]
    elif isinstance(value, list):
        choices += [value[0] if value else None, {"items": value}, json.dumps(value)]
    elif isinstance(value, dict):
        choices += [list(value.values()), list(value), json.dumps(value)]
    return copy.deepcopy(rng.choice(choices))


def mutate(body: Any, rng: random.Random) -> tuple[str, Any]:
    """One deterministic mutation of ``body``: (what was done, the new body)."""
    body = copy.deepcopy(body)
    paths = _paths(body) if body is not None else [()]
    path = rng.choice(paths)
    kind = rng.choice(["drop", "swap", "swap", "huge", "odd", "odd_key", "nan", "deep", "shallow_deep", "number",
                       "duplicate_list", "empty"])
    if kind == "drop" and path and isinstance(_get(body, path[:-1]), (dict, list)):
        parent = _get(body, path[:-1])
        del parent[path[-1]]
        return f"drop {path}", body
    if kind == "huge":
        return f"1 MB string at {path}", _set(body, path, BIG)
    if kind == "odd":
        s = rng.choice(ODD_STRINGS)
        return f"odd string {s!r} at {path}", _set(body, path, s)
    if kind == "odd_key" and isinstance(_get(body, path), dict):
        _get(body, path)[rng.choice(ODD_STRINGS)] = rng.choice(["x", 1, None, {}])
        return f"odd key at {path}", body
    if kind == "nan":
        value = rng.choice([math.nan, math.inf, -math.inf])
        return f"{value} at {path}", _set(body, path, value)
    if kind == "deep":
        return f"1200-deep at {path}", _set(body, path, _deep(1200))
    if kind == "shallow_deep":
        return f"40-deep at {path}", _set(body, path, _deep(40))
    if kind == "number":
        value = rng.choice([10**1200, -(10**40), 2**64, 1e308, 5e-324, -0.0, 10**999])
        return f"number {str(value)[:20]} at {path}", _set(body, path, value)
    if kind == "duplicate_list" and isinstance(_get(body, path), list):
        items = _get(body, path)
        items.extend(copy.deepcopy(items) * 3)
        return f"list x4 at {path}", body
    if kind == "empty":
        return f"empty at {path}", _set(body, path, rng.choice(["", [], {}, None]))
    return f"swap at {path}", _set(body, path, _swap(_get(body, path) if path or body is not None else None, rng))


# -- checks ---------------------------------------------------------------------------------------

def _strict_json(payload: bytes) -> Any:
    def refuse(token: str) -> Any:
        raise ValueError(f"non-JSON token {token}")

    return json.loads(payload, parse_constant=refuse)


def _stored(engine: Engine) -> dict[str, Any]:
    model = engine.request("GET", "_ml/trained_models/keep", params={"include": "definition"})
    churn = engine.request("GET", "_ml/trained_models/churner", params={"include": "definition"})
    pipeline = engine.request("GET", "_ingest/pipeline/keep")
    endpoint = engine.request("GET", "_inference/text_embedding/emb")
    infer = engine.request("POST", "_ml/trained_models/keep/_infer", {"docs": [{"x": 0.2}, {"x": 0.9}]})
    for resp in (model, churn, pipeline, endpoint, infer):
        assert resp.status == 200, resp.body
    models = model.body["trained_model_configs"] + churn.body["trained_model_configs"]
    for config in models:
        config.pop("create_time", None)
        config.get("metadata", {}).pop("model_aliases", None)  # a valid new alias is a legitimate change
        if config.get("metadata") == {}:
            del config["metadata"]
    return {"model": models, "pipeline": pipeline.body, "endpoint": endpoint.body, "infer": infer.body}


@pytest.fixture
def seeded(tmp_path):
    engine = Engine(tmp_path / "home")
    assert engine.request("PUT", "_ml/trained_models/keep", stump_regression()).status == 200
    assert engine.request("PUT", "_ingest/pipeline/keep", PIPELINE).status == 200
    assert engine.request("PUT", "_inference/text_embedding/emb", ENDPOINT).status == 200
    assert engine.request("PUT", "_ml/trained_models/churner", churn_model()).status == 200
    assert engine.request("PUT", "kept", {"mappings": {"properties": {"a": {"type": "keyword"}}}}).status == 200
    return engine


def _text_mutation(text: str, rng: random.Random) -> str | bytes:
    """A broken spelling of a JSON text: truncated, a character changed, a key repeated, bad bytes."""
    kind = rng.choice(["truncate", "flip", "dup_key", "bytes", "nan", "long_number", "deep_text", "comment"])
    at = rng.randrange(len(text) + 1)
    if kind == "truncate":
        return text[:at]
    if kind == "flip":
        return text[:at] + rng.choice('{}[]:,"\\ x0-') + text[at + 1:]
    if kind == "dup_key" and text.startswith("{") and len(text) > 2:
        first = text[1:].split(",", 1)[0].rstrip("}")
        return "{" + first + "," + text[1:]
    if kind == "bytes":
        raw = text.encode("utf-8", "surrogatepass")
        return raw[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\x80", b"\xed\xa0\x80"]) + raw[at:]
    if kind == "nan":
        return text.replace("0.2", rng.choice(["NaN", "Infinity", "-Infinity", "1e999"]), 1)
    if kind == "long_number":
        return text.replace("1", "1" * 1500, 1)
    if kind == "deep_text":
        return "[" * 1100 + text + "]" * 1100
    return "// comment\n" + text


def _send(engine: Engine, method: str, path: str, body: Any, as_text: bool, rng: random.Random,
          params: dict[str, str] | None = None):
    if as_text and body is not None:
        try:
            body = json.dumps(body, allow_nan=True)
        except (ValueError, RecursionError):
            pass  # not writable as JSON text: sent as objects
        if isinstance(body, str) and rng.random() < 0.4:
            body = _text_mutation(body, rng)
    return engine.request(method, path, body, params=params)


#: the 5xx answers ml-commons itself gives to a request without a body: its REST handlers throw an
#: IOException ("Create Connector request has empty body", "Model group request has empty body"), which
#: OpenSearch answers with 500
UPSTREAM_5XX = {("i_o_exception", "Create Connector request has empty body"),
                ("i_o_exception", "Model group request has empty body")}


#: the 5xx answers for a remote service that cannot be reached (the corpus's urls name the loopback's discard
#: port): ES's 502 for an inference endpoint, ml-commons' 500 for a remote model
UNREACHABLE_5XX = {(502, "Failed to send the request for inference endpoint ["),
                   (500, "Error communicating with remote model: ")}


def _upstream_5xx(status: int, body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return False
    if (status, error.get("type")) in {(502, "status_exception"), (500, "status_exception")}:
        reason = str(error.get("reason"))
        return "ConnectError" in reason and any(status == code and reason.startswith(start)
                                                for code, start in UNREACHABLE_5XX)
    return status == 500 and (error.get("type"), error.get("reason")) in UPSTREAM_5XX


#: more seeds for a longer hunt: ES_INFER_NB_FUZZ_SEEDS=1-200
_SEEDS = os.environ.get("ES_INFER_NB_FUZZ_SEEDS", "1-8").split("-")


_PY_ERRORS = [n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)
              and n not in ("Exception", "BaseException")]
#: a Python exception named anywhere in an answer (a document's error inside a 200 included): its name in a
#: reason ("AttributeError: ...") or its snake-cased type ("type_error_exception")
PYTHON_NAMED = re.compile(r"(?<![\w.])(?:%s)\b|\"(?:%s)_exception\"" % (
    "|".join(_PY_ERRORS), "|".join(re.sub(r"(?<!^)(?=[A-Z])", "_", n).lower() for n in _PY_ERRORS)))


def _check(resp: Any, label: str, failures: list[str]) -> None:
    if not (200 <= resp.status < 300 or 400 <= resp.status < 500 or _upstream_5xx(resp.status, resp.body)):
        failures.append(f"{label}: {resp.status} {json.dumps(resp.body, default=str)[:300]}")
        return
    if (named := PYTHON_NAMED.search(json.dumps(resp.body, default=str))) is not None:
        failures.append(f"{label}: {resp.status} names a Python exception [{named.group()}]")
        return
    try:
        _strict_json(to_json_bytes(resp.body))
        _strict_json(to_json_bytes(resp.body, pretty=True))
    except Exception as exc:  # noqa: BLE001
        failures.append(f"{label}: body is not JSON: {exc}"[:400])


def _fuzz_one(engine: Engine, request: tuple[str, str, Any], params: Any, label: str, seed: int, n: int,
              rng: random.Random, failures: list[str], ids: dict[str, str] | None = None) -> None:
    """One mutation of ``request`` sent to ``engine`` and its answer checked."""
    method, path, body = request
    what, mutated = mutate(body, rng) if body is not None else ("no body", None)
    new_id = rng.choice(ODD_IDS) if rng.random() < 0.3 else f"{label}-{seed}-{n}"
    if method == "DELETE" and new_id in ("*", "_all"):
        new_id = f"gone-{n}"  # a wildcard delete would rightly remove what the test keeps
    target = path.replace("{id}", new_id)
    if ids is not None:
        target, mutated = fill(target, ids), fill(mutated, ids)
    if rng.random() < 0.1 and mutated is None:
        mutated = {"unexpected": [1, 2, {"x": None}]}
    params = params if params is not None else rng.choice(PARAMS)
    try:
        resp = _send(engine, method, target, mutated, rng.random() < 0.5, rng, params)
    except BaseException as exc:  # noqa: BLE001 - what the test looks for
        failures.append(f"{method} {target} ({what}): raised {type(exc).__name__}: {exc}"[:400])
        return
    _check(resp, f"{method} {target} ({what}) {params}", failures)


@pytest.mark.parametrize("seed", range(int(_SEEDS[0]), int(_SEEDS[-1]) + 1))
def test_mutated_requests_answer_json_2xx_or_4xx_and_keep_state(seeded, seed):
    rng = random.Random(seed)
    before = _stored(seeded)
    failures: list[str] = []
    started = time.monotonic()
    requests = valid_requests()
    for n in range(110):
        _fuzz_one(seeded, requests[n % len(requests)], None, "new", seed, n, rng, failures)
    # then the other routes, about as often each (the requests above keep their seeds' mutations)
    ids = seed_more(seeded)
    kept = _stored_more(seeded, ids)
    more = more_requests()
    for n in range(3 * len(more)):
        method, path, body, params = more[n % len(more)]
        _fuzz_one(seeded, (method, path, body), params if rng.random() < 0.5 else None, "more", seed, n, rng,
                  failures, ids)
    assert not failures, "\n".join(failures)
    assert _stored(seeded) == before
    assert _stored_more(seeded, ids) == kept
    reopened = Engine(seeded.home)
    assert _stored(reopened) == before
    assert _stored_more(reopened, ids, reopened=True) == {k: v for k, v in kept.items() if k != "kept/_doc/d1"}
    assert time.monotonic() - started < 20


def test_odd_ids_on_every_kind_answer_4xx(seeded):
    requests = valid_requests()
    ids = seed_more(seeded)
    requests += [(method, fill(path, ids), fill(body, ids)) for method, path, body, _ in more_requests()
                 if "{id}" in path]
    for odd in ODD_IDS:
        for method, path, body in requests:
            resp = seeded.request(method, path.replace("{id}", odd), body)
            assert 200 <= resp.status < 300 or 400 <= resp.status < 500, (method, path, odd, resp.body)
            assert seeded.home is not None and str(seeded.home) not in json.dumps(resp.body)


def _http_one(client: Any, request: tuple[str, str, Any], label: str, n: int, rng: random.Random,
              failures: list[str], ids: dict[str, str] | None = None) -> None:
    method, path, body = request
    what, mutated = mutate(body, rng) if body is not None else ("no body", None)
    new_id = rng.choice(ODD_IDS) if rng.random() < 0.3 else f"{label}-{n}"
    if method == "DELETE" and new_id in ("*", "_all"):
        new_id = f"gone-{n}"
    target = path.replace("{id}", new_id)
    if ids is not None:
        target, mutated = fill(target, ids), fill(mutated, ids)
    content: str | bytes | None = None
    if mutated is not None:
        try:
            content = json.dumps(mutated, allow_nan=True)
        except RecursionError:  # the 1200-deep mutation: the same depth, written out
            content = "[" * 1200 + "]" * 1200
        if rng.random() < 0.4:
            content = _text_mutation(content, rng)
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogatepass")
    resp = client.request(method, "/" + target, content=content,
                          headers={"Content-Type": "application/json"} if content else {})
    if not (200 <= resp.status_code < 300 or 400 <= resp.status_code < 500
            or _upstream_5xx(resp.status_code, resp.json() if resp.content else None)):
        failures.append(f"{method} {path} ({what}): {resp.status_code} {resp.text[:300]}")
    elif method != "HEAD" and not resp.headers.get("content-type", "").startswith("text/plain"):  # _cat's tables
        try:
            _strict_json(resp.content)
        except ValueError as exc:
            failures.append(f"{method} {path} ({what}): body is not JSON: {exc}"[:400])


def test_mutated_requests_over_http(seeded):
    """The same mutations through ``es-infer serve``: each answer a 2xx / 4xx with a JSON body."""
    import httpx

    from es_infer_nb.server import serve

    rng = random.Random(99)
    before = _stored(seeded)
    failures: list[str] = []
    requests = valid_requests()
    with serve(seeded, port=0, quiet=True) as handle, httpx.Client(base_url=handle.url, timeout=30) as client:
        for n in range(40):
            _http_one(client, requests[n % len(requests)], "web", n, rng, failures)
        ids = seed_more(seeded)
        kept = _stored_more(seeded, ids)
        for n, (method, path, body, _) in enumerate(more_requests()):
            _http_one(client, (method, path, body), "web-more", n, rng, failures, ids)
    assert not failures, "\n".join(failures)
    assert _stored(seeded) == before
    assert _stored_more(seeded, ids) == kept


def test_the_corpus_covers_every_route():
    import es_infer_nb.server  # noqa: F401  (registers GET /)
    from es_infer_nb.api.routing import ROUTES, resolve

    ids = {name: f"x{name}" for name in ("conn", "sconn", "grp", "sgrp", "remote", "smodel", "task")}
    requests = [(m, p) for m, p, _ in valid_requests()] + [(m, p) for m, p, _, _ in more_requests()]
    covered = {resolve(m, fill(p.replace("{id}", "abc"), ids))[0].pattern + " " + m for m, p in requests}
    assert {r.pattern + " " + r.method for r in ROUTES} <= covered
