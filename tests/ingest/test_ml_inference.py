"""OpenSearch ``ml_inference`` processor: request building, output mapping, fan-out, factory errors,
and the engine-backed path over a tree model."""

from __future__ import annotations

import json

import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.ingest.document import Doc
from es_infer_nb.ingest.ml_inference import (
    DEFAULT_REMOTE_MODEL_INPUT, MLInferenceProcessor, create, get_model_output_value, json_path_read,
    parse_tensor_data, write_new_dot_path)
from helpers import stump_regression


def tensor_output(data_as_map=None, **tensor):
    t = dict(tensor)
    if data_as_map is not None:
        t["dataAsMap"] = data_as_map
    return {"inference_results": [{"output": [t]}]}


class Recorder:
    def __init__(self, output):
        self.output = output
        self.calls = []

    def __call__(self, params):
        self.calls.append(json.loads(json.dumps(params)))
        return self.output(params) if callable(self.output) else self.output


def run(config, source, predict):
    proc = create({"ml_inference": config})
    doc = Doc(data=json.loads(json.dumps(source)))
    proc.process(doc, predict)
    return doc.source()


BOOKS = {"book": [{"chunk": {"text": [{"context": "a"}, {"context": "b"}]}},
                  {"chunk": {"text": [{"context": "c"}]}}]}


def test_defaults_and_type():
    proc = create({"ml_inference": {"model_id": "m"}})
    assert isinstance(proc, MLInferenceProcessor) and proc.type == "ml_inference"
    assert proc.function_name == "remote" and proc.model_input == DEFAULT_REMOTE_MODEL_INPUT
    assert proc.full_response_path is False and proc.max_prediction_tasks == 10
    assert proc.override is False and proc.ignore_missing is False
    local = create({"ml_inference": {"model_id": "m", "function_name": "text_embedding", "model_input": "{}"}})
    assert local.full_response_path is True


@pytest.mark.parametrize("config, message", [
    ({"function_name": "text_embedding"}, "Please provide model input when using a local model in ML Inference Processor"),
    ({"input_map": [{"a": "x"}] * 11}, "The number of prediction task setting in this process is 11. It exceeds the "
     "max_prediction_tasks of 10. Please reduce the size of input_map or increase max_prediction_tasks."),
    ({"input_map": [{"a": "x"}], "output_map": [{"b": "y"}, {"c": "z"}]},
     "The length of output_map and the length of input_map do no match."),
])
def test_factory_errors(config, message):
    with pytest.raises(ApiError) as info:
        create({"ml_inference": {"model_id": "m", **config}})
    assert info.value.reason == message
    assert info.value.type == "illegal_argument_exception"


def test_model_id_required():
    with pytest.raises(ApiError) as info:
        create({"ml_inference": {}})
    assert "model_id" in str(info.value)


def test_remote_parameters_are_strings_and_model_config_merged():
    rec = Recorder(tensor_output({"response": [0.5]}))
    out = run({"model_id": "m", "model_config": {"dims": 3, "model": "ada"},
               "input_map": [{"input": "tags"}, {"input": "title"}],
               "output_map": [{"tags_emb": "response"}, {"title_emb": "response"}]},
              {"tags": ["x", "y"], "title": 'say "hi"'}, rec)
    assert rec.calls == [{"dims": "3", "model": "ada", "input": '["x","y"]'},
                         {"dims": "3", "model": "ada", "input": 'say "hi"'}]
    assert out["tags_emb"] == [0.5] and out["title_emb"] == [0.5]


def test_template_substitution_local_model():
    rec = Recorder(tensor_output(name="sentence_embedding", data_type="FLOAT32", shape=[2], data=[0.5, 0.25]))
    out = run({"model_id": "m", "function_name": "text_embedding", "model_config": {"k": 7},
               "model_input": '{"text_docs": ["${input_map.docs}"], "k": ${model_config.k}, "raw": "${ml_inference.docs}x"}',
               "input_map": [{"docs": "title"}],
               "output_map": [{"emb": "$.inference_results[0].output[0].data"}]},
              {"title": "hello"}, rec)
    assert rec.calls == [{"text_docs": ["hello"], "k": 7, "raw": "hellox"}]
    assert out["emb"] == [0.5, 0.25]


def test_invalid_payload():
    with pytest.raises(ApiError) as info:
        run({"model_id": "m", "model_input": '{"p": ${input_map.t}}', "input_map": [{"t": "t"}]},
            {"t": "not json"}, Recorder(tensor_output({"r": 1})))
    assert info.value.reason.startswith("Invalid payload")


def test_wildcard_fan_out_round_trip():
    rec = Recorder(tensor_output({"data": [{"embedding": [1]}, {"embedding": [2]}, {"embedding": [3]}]}))
    out = run({"model_id": "m", "input_map": [{"input": "book.*.chunk.text.*.context"}],
               "output_map": [{"book.*.chunk.text.*.context_embedding": "data.*.embedding"}]}, BOOKS, rec)
    assert rec.calls == [{"input": '["a","b","c"]'}]
    texts = [t for b in out["book"] for t in b["chunk"]["text"]]
    assert [t["context_embedding"] for t in texts] == [[1], [2], [3]]


def test_fan_out_size_mismatch_and_non_array():
    with pytest.raises(ApiError) as info:
        run({"model_id": "m", "input_map": [{"input": "book.*.chunk.text.*.context"}],
             "output_map": [{"book.*.chunk.text.*.emb": "r"}]}, BOOKS, Recorder(tensor_output({"r": [1, 2]})))
    # written outside ModelExecutor's output reading, so not wrapped in "An unexpected error occurred: "
    assert info.value.reason == ("the prediction field: r is an array in size of 2 but "
                                 "the document field array from field book.*.chunk.text.*.emb is in size of 3")
    with pytest.raises(ApiError) as info:
        run({"model_id": "m", "input_map": [{"input": "book.*.chunk.text.*.context"}],
             "output_map": [{"book.*.chunk.text.*.emb": "r"}]}, BOOKS, Recorder(tensor_output({"r": 5})))
    assert info.value.reason == "Model output is not an array, cannot assign to array in documents."


def test_override_false_skips_model_call_when_all_targets_exist():
    rec = Recorder(tensor_output({"r": 1}))
    out = run({"model_id": "m", "output_map": [{"x": "r"}]}, {"x": "keep"}, rec)
    assert out == {"x": "keep"} and rec.calls == []
    out = run({"model_id": "m", "output_map": [{"x": "r"}], "override": True}, {"x": "keep"}, rec)
    assert out == {"x": 1} and len(rec.calls) == 1


def test_missing_input_errors_and_ignore_missing():
    with pytest.raises(ApiError) as info:
        run({"model_id": "m", "input_map": [{"i": "nope"}]}, {"a": 1}, Recorder(tensor_output({"r": 1})))
    assert info.value.reason == "Cannot find field name defined from input map: nope"
    rec = Recorder(tensor_output({"r": 1}))
    assert run({"model_id": "m", "input_map": [{"i": "nope"}], "ignore_missing": True}, {"a": 1}, rec) == {"a": 1}
    assert rec.calls == []


def test_no_model_input_from_an_empty_document():
    for function_name in ("remote", "text_embedding"):
        for ignore_missing in (True, False):
            rec = Recorder(tensor_output({"r": 1}))
            with pytest.raises(ApiError) as info:
                run({"model_id": "m", "function_name": function_name, "ignore_missing": ignore_missing,
                     "model_input": '{ "parameters": ${ml_inference.parameters} }'}, {}, rec)
            assert info.value.reason == "wrong input. The model input cannot be empty."
            assert rec.calls == []


def test_default_output_field_and_full_response():
    out = run({"model_id": "m"}, {"a": 1}, Recorder(tensor_output({"r": [1]})))
    assert out == {"a": 1, "inference_results": {"r": [1]}}
    mo = tensor_output({"r": [1]})
    out = run({"model_id": "m", "full_response_path": True}, {"a": 1}, Recorder(mo))
    assert out["inference_results"] == mo


def test_own_ignore_failure_passes_document_through():
    def boom(params):
        raise RuntimeError("down")
    with pytest.raises(RuntimeError):
        run({"model_id": "m"}, {"a": 1}, boom)
    assert run({"model_id": "m", "ignore_failure": True}, {"a": 1}, boom) == {"a": 1}


def test_output_value_reading():
    mo = tensor_output({"response": {"v": [[1.0, 4.0], [3.0, 0.0]]}})
    assert get_model_output_value(mo, "response.v.meanPooling()", False, False) == [2.0, 2.0]
    assert get_model_output_value(mo, "response.v.maxPooling()", False, False) == [3.0, 4.0]
    assert get_model_output_value(mo, "$.inference_results[0].output[0].dataAsMap.response.v[1]", False, True) == [3.0, 0.0]
    with pytest.raises(ApiError) as info:
        get_model_output_value(mo, "nope", False, False)
    assert info.value.reason == "model inference output cannot find field name: nope"
    two = {"inference_results": [{"output": [{"data": [1], "data_type": "INT32"}, {"data": [2], "data_type": "INT32"}]}]}
    assert get_model_output_value(two, None, False, False) == [[1], [2]]


def test_path_helpers():
    assert json_path_read(BOOKS, "book.*.chunk.text.*.context") == ["a", "b", "c"]
    assert json_path_read(BOOKS, "$.book[1].chunk.text[0].context") == "c"
    assert json_path_read(BOOKS, "book[*].chunk.text[*].missing") == [None, None, None]
    assert write_new_dot_path(BOOKS, "book.*.chunk.text.*.e") == [
        "book.0.chunk.text.0.e", "book.0.chunk.text.1.e", "book.1.chunk.text.0.e"]
    assert write_new_dot_path(BOOKS, "plain.field") == ["plain.field"]
    rows = {"data": [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]}
    assert json_path_read(rows, "$.data[?(@.x > 1)].y") == ["b"]  # jsonpath-ng for filters / deep scan
    assert json_path_read(rows, "$..y") == ["a", "b"]
    assert json_path_read(rows, "data[-1].y") == "b"
    assert parse_tensor_data({"data_type": "FLOAT32", "data": [0.1]}) == [pytest.approx(0.1, abs=1e-7)]
    assert parse_tensor_data({"data_type": "FLOAT32", "data": [0.1]})[0] != 0.1
    assert parse_tensor_data({"data_type": "INT64", "data": [1.0]}) == [1]


# -- through pipelines and the engine --------------------------------------------------------------

def simulate(engine, pipeline, docs):
    return engine.request("POST", "_ingest/pipeline/_simulate",
                          {"pipeline": pipeline, "docs": [{"_source": d} for d in docs]})


@pytest.fixture
def reg(engine):
    assert engine.request("PUT", "_ml/trained_models/reg", stump_regression()).status == 200
    return engine


def test_pipeline_remote_style_over_tree_model(reg):
    pipe = {"processors": [{"ml_inference": {"model_id": "reg", "input_map": [{"x": "x"}],
                                             "output_map": [{"pred": "predicted_value"}]}}]}
    r = simulate(reg, pipe, [{"x": 0.1}, {"x": 0.9}])
    assert r.status == 200, r.body
    assert [d["doc"]["_source"]["pred"] for d in r.body["docs"]] == [1.0, 2.0]


def test_pipeline_local_style_with_full_response_path(reg):
    pipe = {"processors": [{"ml_inference": {
        "model_id": "reg", "function_name": "regression",
        "model_input": '{"docs": [{"x": ${input_map.x}}]}', "input_map": [{"x": "x"}],
        "output_map": [{"out": "$.inference_results[0].output[0].dataAsMap.predicted_value"}]}}]}
    r = simulate(reg, pipe, [{"x": 0.9}])
    assert r.body["docs"][0]["doc"]["_source"] == {"x": 0.9, "out": 2.0}


def test_pipeline_failure_and_compound_ignore_failure(reg):
    pipe = {"processors": [{"ml_inference": {"model_id": "missing-model", "output_map": [{"o": "r"}]}}]}
    r = simulate(reg, pipe, [{"x": 0.1}])
    assert "error" in r.body["docs"][0]
    pipe["processors"][0]["ml_inference"]["ignore_failure"] = True
    r = simulate(reg, pipe, [{"x": 0.1}])
    assert r.body["docs"][0]["doc"]["_source"] == {"x": 0.1}


def test_pipeline_factory_error_is_reported(reg):
    r = reg.request("PUT", "_ingest/pipeline/p", {"processors": [{"ml_inference": {
        "model_id": "reg", "function_name": "text_embedding"}}]})
    assert r.status == 400
    assert "Please provide model input" in json.dumps(r.body)


def test_output_path_not_found_with_ignore_missing():
    # a tensor path that finds nothing is not written when ignore_missing is set (the conformance case of
    # testExecute_getModelOutputFieldWithInvalidDotPathSuccess); with full_response_path the whole output is
    # written (testExecute_localModelSuccess); an error otherwise
    out = run({"model_id": "m", "output_map": [{"x": "r.nope", "y": "r.k"}], "ignore_missing": True}, {"a": 1},
              Recorder(tensor_output({"r": {"k": 1}})))
    assert out == {"a": 1, "y": 1}
    mo = tensor_output({"r": [1]})
    out = run({"model_id": "m", "output_map": [{"x": "$.inference_results[0].output[0].nope"}],
               "ignore_missing": True, "full_response_path": True}, {"a": 1}, Recorder(mo))
    assert out["x"] == mo
    with pytest.raises(ApiError) as info:
        run({"model_id": "m", "output_map": [{"x": "r.nope"}]}, {"a": 1}, Recorder(tensor_output({"r": {"k": 1}})))
    assert info.value.reason == "An unexpected error occurred: model inference output cannot find field name: r.nope"


# -- local ml-commons models registered from a path (tests/ml_local_models.py) ----------------------------

@pytest.fixture(scope="module")
def local_models(tmp_path_factory):
    pytest.importorskip("transformers")
    from ml_local_models import build

    from es_infer_nb import Engine

    root = tmp_path_factory.mktemp("ml_local")
    built = {kind: build(root, kind) for kind in ("embedding", "sparse", "similarity", "qa")}
    engine = Engine(ml_model_paths=[root])
    ids = {}
    for kind, function in [("embedding", "text_embedding"), ("sparse", "sparse_encoding"),
                           ("similarity", "text_similarity"), ("qa", "question_answering")]:
        r = engine.request("POST", "_plugins/_ml/models/_register", {
            "name": kind, "function_name": function, "model_format": "TORCH_SCRIPT", "url": str(built[kind][0]),
            "model_config": {"model_type": "bert", "embedding_dimension": 32,
                             "framework_type": "huggingface_transformers"}}, {"deploy": "true"})
        assert r.status == 200, r.body
        ids[kind] = engine.request("GET", f"_plugins/_ml/tasks/{r.body['task_id']}").body["model_id"]
    return engine, ids, built


def local_source(engine, processor, source):
    r = simulate(engine, {"processors": [{"ml_inference": processor}]}, [source])
    assert "doc" in r.body["docs"][0], r.body
    return r.body["docs"][0]["doc"]["_source"]


def test_local_text_embedding_beside_each_context(local_models):
    import numpy as np
    from ml_local_models import mean_embedding

    engine, ids, built = local_models
    source = local_source(engine, {
        "model_id": ids["embedding"], "function_name": "text_embedding", "full_response_path": True,
        "model_input": '{ "text_docs": ${input_map.text_docs}, "return_number": ${model_config.return_number}, '
                       '"target_response": ${model_config.target_response} }',
        "model_config": {"return_number": True, "target_response": ["sentence_embedding"]},
        "input_map": [{"text_docs": "passages.*.context"}],
        "output_map": [{"passages.*.context_embedding": "$.inference_results.*.output.*.data"}]},
        {"passages": [{"context": "the capital of france is paris"}, {"context": "my little red car"}]})
    folder, module = built["embedding"]
    for passage in source["passages"]:
        expected = mean_embedding(module, folder, passage["context"])
        np.testing.assert_allclose(passage["context_embedding"], expected, rtol=1e-4, atol=1e-4)


def test_local_sparse_encoding_both_output_paths(local_models):
    engine, ids, _ = local_models
    base = {"model_id": ids["sparse"], "function_name": "sparse_encoding",
            "model_input": '{ "text_docs": ["${input_map.text}"] }', "input_map": [{"text": "body"}]}
    full = local_source(engine, {**base, "output_map": [
        {"body_sparse": "$.inference_results[0].output[0].dataAsMap.response[0]"}]}, {"body": "paris is big"})
    assert isinstance(full["body_sparse"], dict) and {"paris", "big"} <= set(full["body_sparse"])
    assert all(isinstance(w, float) and w > 0 for w in full["body_sparse"].values())
    short = local_source(engine, {**base, "full_response_path": False, "output_map": [{"body_sparse": "response"}]},
                         {"body": "paris is big"})
    assert short["body_sparse"] == [full["body_sparse"]]


def test_local_text_similarity_with_a_model_config_query(local_models):
    from ml_local_models import outputs

    engine, ids, built = local_models
    docs = ["paris is the capital", "my little red car"]
    source = local_source(engine, {
        "model_id": ids["similarity"], "function_name": "text_similarity",
        "model_config": {"query": "the capital of france"},
        "model_input": '{ "query_text": "${model_config.query}", "text_docs": ${input_map.docs} }',
        "input_map": [{"docs": "passages"}],
        "output_map": [{"scores": "$.inference_results[*].output[0].data[0]"}]}, {"passages": docs})
    folder, module = built["similarity"]
    expected = [float(outputs(module, folder, "the capital of france", d)[0][0]) for d in docs]
    assert source["scores"] == pytest.approx(expected, abs=1e-5)


def test_local_question_answering(local_models):
    engine, ids, _ = local_models
    processor = {"model_id": ids["qa"], "function_name": "question_answering",
                 "model_input": '{ "question": "${input_map.question}", "context": "${input_map.context}" }',
                 "input_map": [{"question": "q", "context": "c"}],
                 "output_map": [{"answer": "$.inference_results[0].output[0].result"}]}
    doc = {"q": "where lives ana", "c": "ana lives in new york city"}
    source = local_source(engine, processor, doc)
    direct = engine.request("POST", f"_plugins/_ml/models/{ids['qa']}/_predict",
                            {"question": doc["q"], "context": doc["c"]}).body
    assert source["answer"] == direct["inference_results"][0]["output"][0]["result"] and source["answer"]
    bad = simulate(engine, {"processors": [{"ml_inference": processor}]}, [{"q": 'a "quote', "c": "x"}])
    assert "Invalid payload" in json.dumps(bad.body["docs"][0])


# -- NaN / Infinity model outputs, as OpenSearch writes them -------------------------------------------

NON_FINITE_ANSWERS = {
    # post-processed (connector.post_process.openai.embedding): ml-commons reads the answer with
    # Jayway JsonPath's permissive json-smart parser (NaN accepted), makes a FLOAT32 data tensor
    "/post": b'{"object":"list","data":[{"index":0,"embedding":[NaN,1e400,-1e400,0.5]}]}',
    # no post-process: ml-commons' Jackson mapper reads the answer into dataAsMap; a number beyond a
    # double parses to +-Infinity
    "/map": b'{"scores":[1e400,-1e400,0.25]}',
}


def _non_finite_service(req):
    return 200, NON_FINITE_ANSWERS[req.path]


def _non_finite_pipeline(engine, url):
    """Two remote models on a loopback service answering NaN / out-of-range numbers, one pipeline."""
    ids = []
    for path, extra in (("/post", {"pre_process_function": "connector.pre_process.openai.embedding",
                                   "post_process_function": "connector.post_process.openai.embedding"}),
                        ("/map", {})):
        action = {"action_type": "predict", "method": "POST", "url": url + path,
                  "request_body": '{ "input": ${parameters.input} }', **extra}
        connector = engine.request("POST", "_plugins/_ml/connectors/_create", {
            "name": path, "version": 1, "protocol": "http", "parameters": {}, "credential": {"key": "local"},
            "actions": [action]})
        assert connector.status == 200, connector.body
        model = engine.request("POST", "_plugins/_ml/models/_register", {
            "name": path, "function_name": "remote", "connector_id": connector.body["connector_id"]})
        assert model.status == 200, model.body
        ids.append(model.body["model_id"])
    put = engine.request("PUT", "_ingest/pipeline/non_finite", {"processors": [
        {"ml_inference": {"model_id": ids[0], "input_map": [{"input": "text"}],
                          "output_map": [{"embedding": "$.embedding"}]}},
        {"ml_inference": {"model_id": ids[1], "input_map": [{"input": "text"}],
                          "output_map": [{"scores": "scores"}]}}]})
    assert put.status == 200, put.body


SIMULATE = {"docs": [{"_source": {"text": ["a text"]}}]}


def test_non_finite_model_output_through_simulate():
    """OpenSearch keeps NaN / Infinity in the document (the FLOAT32 tensor's floats, dataAsMap's
    doubles): ``Engine.request`` answers them as floats, ``_simulate`` over HTTP as Jackson writes
    them (``"NaN"``, ``"Infinity"``, ``"-Infinity"``, its ``QUOTE_NON_NUMERIC_NUMBERS`` default)."""
    import math

    from es_infer_nb import Engine
    from es_infer_nb.services.loopback import LoopbackServer

    with LoopbackServer(_non_finite_service) as service:
        engine = Engine()
        _non_finite_pipeline(engine, service.url)
        resp = engine.request("POST", "_ingest/pipeline/non_finite/_simulate", SIMULATE)
        assert resp.status == 200, resp.body
        source = resp.body["docs"][0]["doc"]["_source"]
        nan, inf, minus_inf, half = source["embedding"]
        assert math.isnan(nan) and inf == math.inf and minus_inf == -math.inf and half == 0.5
        assert source["scores"] == [math.inf, -math.inf, 0.25]
        assert source["text"] == ["a text"]


def test_non_finite_model_output_over_http():
    import httpx

    from es_infer_nb import Engine
    from es_infer_nb.server import serve
    from es_infer_nb.services.loopback import LoopbackServer

    with LoopbackServer(_non_finite_service) as service:
        engine = Engine()
        _non_finite_pipeline(engine, service.url)
        with serve(engine, port=0, quiet=True) as handle:
            raw = httpx.post(f"{handle.url}/_ingest/pipeline/non_finite/_simulate", json=SIMULATE, timeout=30)
    assert raw.status_code == 200, raw.text
    assert '"embedding":["NaN","Infinity","-Infinity",0.5]' in raw.text
    assert '"scores":["Infinity","-Infinity",0.25]' in raw.text

    def strict(token):
        raise AssertionError(f"a bare {token} token in the answer: not JSON")

    source = json.loads(raw.text, parse_constant=strict)["docs"][0]["doc"]["_source"]
    assert source["embedding"] == ["NaN", "Infinity", "-Infinity", 0.5]
    assert source["scores"] == ["Infinity", "-Infinity", 0.25]
