"""ml-commons HTTP connectors as ml-commons runs them: every built-in pre- and post-process function,
painless process scripts (blueprint ones), ``response_filter``, one request per doc where ml-commons
sends them so, StringSubstitutor's body filling, header checks, connector validation and how answers and
failures read. Upstream: ml-commons ConnectorUtils / RemoteConnectorExecutor / HttpConnector /
AbstractConnector / MLSdkAsyncHttpResponseHandler and the connector/functions classes, with their tests."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import pytest

from es_infer_nb import Engine
from es_infer_nb.services.loopback import LoopbackServer, Received
from opensearch_services import call, ok, serving

ML = "_plugins/_ml"
#: the answers of the canned service, by path: (status, body or a function of the request's JSON)
ANSWERS: dict[str, tuple[int, Any]] = {
    "/openai": (200, lambda b: {"data": [{"embedding": [float(len(t)), 0.5]} for t in b["input"]]}),
    "/bedrock": (200, lambda b: {"embedding": [float(len(b["inputText"])), 0.25], "inputTextTokenCount": 2}),
    "/cohere-rerank": (200, lambda b: {"results": [{"index": i, "relevance_score": 1.0 / (1 + i)}
                                                   for i in reversed(range(len(b["documents"])))]}),
    "/bedrock-rerank": (200, {"results": [{"index": 2, "relevanceScore": 0.7711548805236816},
                                          {"index": 0, "relevanceScore": 0.0025114635936915874},
                                          {"index": 1, "relevanceScore": 2.4876489987946115e-05}]}),
    "/default-rerank": (200, [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}]),
    "/cohere-v2": (200, {"embeddings": {"int8": [[1, -2, 3], [4, 5, -6]], "float": [[0.5, 0.25]]}}),
    "/bedrock-v2": (200, {"embeddingsByType": {"binary": [1, 0, 1, 1]}}),
    "/nova": (200, {"embeddings": [{"embeddingType": "TEXT", "embedding": [0.1, 0.2]}]}),
    "/batch": (200, {"jobArn": "arn:aws:bedrock:us-east-1:12345678912:model-invocation-job/w1xtlm0ik3e1"}),
    "/passthrough": (200, {"inference_results": [{"output": [
        {"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [2], "data": [0.5, 0.25]},
        {"name": "response", "dataAsMap": {"k": "v"}}], "status_code": 200}]}),
    "/nested": (200, {"data": {"result": "filtered response"}, "other": 1}),
    "/vectors": (200, {"data": [{"embedding": {"FLOAT32": [0.1, 0.2, 0.3]}}]}),
    "/sagemaker": (200, lambda b: [{"score": 0.5 + i / 10} for i, _ in enumerate(b["inputs"])]),
    "/multiple": (300, {"ok": True}),
    "/empty": (200, ""),
    "/empty-error": (500, ""),
    "/echo": (200, lambda b: {"echo": b}),
}


def _answer(req: Received) -> tuple[int, Any]:
    status, body = ANSWERS[req.path.split("?")[0]]
    if callable(body):
        body = body(json.loads(req.body) if req.body else None)
    return status, body


@pytest.fixture(scope="module")
def service() -> Iterator[LoopbackServer]:
    yield from serving(_answer)


def error(engine: Engine, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    status, out = call(engine, method, path, body)
    assert status >= 400, out
    return status, out["error"]


def connector(server: LoopbackServer, path: str, body: str | None = '{ "input": ${parameters.input} }',
              parameters: dict[str, Any] | None = None, **action: Any) -> dict[str, Any]:
    predict: dict[str, Any] = {"action_type": "predict", "method": "POST", "url": server.url + path}
    if body is not None:
        predict["request_body"] = body
    predict.update(action)
    return {"name": "canned", "version": "1", "protocol": "http", "parameters": parameters or {},
            "credential": {"key": "canned-key"}, "actions": [predict]}


def model(engine: Engine, server: LoopbackServer, path: str, **kw: Any) -> str:
    connector_id = ok(engine, "POST", f"{ML}/connectors/_create", connector(server, path, **kw))["connector_id"]
    return ok(engine, "POST", f"{ML}/models/_register",
              {"name": "m", "function_name": "remote", "connector_id": connector_id})["model_id"]


def sent(server: LoopbackServer, n: int = 1) -> list[Any]:
    return [json.loads(r.body) for r in server.received[-n:]]


# -- pre-process: which parameters, how many requests -----------------------------------------------------


def test_bedrock_embedding_sends_one_request_per_doc(engine, service):
    """RemoteConnectorExecutor: the Bedrock pre-process takes one doc a request; each request is an
    ``inference_results`` entry, in doc order (before, only the first doc was sent)."""
    model_id = model(engine, service, "/bedrock", body='{ "inputText": "${parameters.inputText}" }',
                     pre_process_function="connector.pre_process.bedrock.embedding",
                     post_process_function="connector.post_process.bedrock.embedding")
    out = ok(engine, "POST", f"{ML}/_predict/text_embedding/{model_id}", {"text_docs": ["one", "three", "a \"q\""]})
    assert sent(service, 3) == [{"inputText": "one"}, {"inputText": "three"}, {"inputText": "a \"q\""}]
    assert out == {"inference_results": [
        {"output": [{"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [2], "data": [n, 0.25]}],
         "status_code": 200} for n in (3.0, 5.0, 5.0)]}


def test_input_docs_processed_step_size_chunks_the_docs(engine, service):
    model_id = model(engine, service, "/openai", parameters={"input_docs_processed_step_size": 2},
                     pre_process_function="connector.pre_process.openai.embedding",
                     post_process_function="connector.post_process.openai.embedding")
    out = ok(engine, "POST", f"{ML}/_predict/text_embedding/{model_id}", {"text_docs": ["a", "bb", "ccc", "dddd", "e"]})
    assert sent(service, 3) == [{"input": ["a", "bb"]}, {"input": ["ccc", "dddd"]}, {"input": ["e"]}]
    assert [[t["data"][0] for t in r["output"]] for r in out["inference_results"]] == [[1.0, 2.0], [3.0, 4.0], [1.0]]
    bad = model(engine, service, "/openai", parameters={"input_docs_processed_step_size": 0},
                pre_process_function="connector.pre_process.openai.embedding")
    status, err = error(engine, "POST", f"{ML}/_predict/text_embedding/{bad}", {"text_docs": ["a"]})
    assert (status, err["reason"]) == (
        400, "Invalid parameter: input_docs_processed_step_size. It must be positive integer.")


def test_rerank_functions_keep_the_documents_order(engine, service):
    """Cohere rerank: ``query``, ``documents``, ``top_n`` in; one ``similarity`` tensor per document, in the
    documents' order (the answer lists them by score)."""
    body = '{ "query": "${parameters.query}", "documents": ${parameters.documents}, "top_n": ${parameters.top_n} }'
    model_id = model(engine, service, "/cohere-rerank", body=body,
                     pre_process_function="connector.pre_process.cohere.rerank",
                     post_process_function="connector.post_process.cohere.rerank")
    out = ok(engine, "POST", f"{ML}/_predict/text_similarity/{model_id}",
             {"query_text": "what is \"x\"?", "text_docs": ["d0", "d1", "d2"]})
    assert sent(service) == [{"query": "what is \"x\"?", "documents": ["d0", "d1", "d2"], "top_n": 3}]
    assert out["inference_results"][0]["output"] == [
        {"name": "similarity", "data_type": "FLOAT32", "shape": [1], "data": [s]} for s in (1.0, 0.5, 1 / 3)]


def test_bedrock_and_default_rerank(engine, service):
    body = '{ "queries": ${parameters.queries}, "sources": ${parameters.sources}, "n": ${parameters.numberOfResults} }'
    model_id = model(engine, service, "/bedrock-rerank", body=body,
                     pre_process_function="connector.pre_process.bedrock.rerank",
                     post_process_function="connector.post_process.bedrock.rerank")
    out = ok(engine, "POST", f"{ML}/_predict/text_similarity/{model_id}", {"query_text": "q", "text_docs": ["a", "b", "c"]})
    assert sent(service) == [{"queries": [{"textQuery": {"text": "q"}, "type": "TEXT"}], "n": 3, "sources": [
        {"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": d}}} for d in "abc"]}]
    assert [t["data"][0] for t in out["inference_results"][0]["output"]] == [
        0.0025114635936915874, 2.4876489987946115e-05, 0.7711548805236816]
    default = model(engine, service, "/default-rerank", body='{ "q": "${parameters.query}" }',
                    pre_process_function="connector.pre_process.default.rerank",
                    post_process_function="connector.post_process.default.rerank")
    out = ok(engine, "POST", f"{ML}/_predict/text_similarity/{default}", {"query_text": "q", "text_docs": ["a", "b"]})
    assert [t["data"][0] for t in out["inference_results"][0]["output"]] == [0.1, 0.9]


def test_text_similarity_needs_a_pre_process_that_takes_it(engine, service):
    bare = model(engine, service, "/echo", body='{ "q": "${parameters.query}" }')
    status, err = error(engine, "POST", f"{ML}/_predict/text_similarity/{bare}", {"query_text": "q", "text_docs": ["a"]})
    assert (status, err["reason"]) == (400, "pre_process_function not defined in connector")
    embedding = model(engine, service, "/echo", pre_process_function="connector.pre_process.openai.embedding")
    status, err = error(engine, "POST", f"{ML}/_predict/text_similarity/{embedding}",
                        {"query_text": "q", "text_docs": ["a"]})
    assert err["reason"] == ("This pre_process_function can only support TextDocsInputDataSet which including a list "
                             "of string with key 'text_docs'")
    rerank = model(engine, service, "/echo", pre_process_function="connector.pre_process.cohere.rerank")
    status, err = error(engine, "POST", f"{ML}/_predict/text_embedding/{rerank}", {"text_docs": ["a"]})
    assert err["reason"] == "This pre_process_function can only support TextSimilarityInputDataSet"
    for body, reason in (({"query_text": "q", "text_docs": []}, "No text documents were provided"),
                         ({"text_docs": ["a"]}, "No query text was provided")):
        assert error(engine, "POST", f"{ML}/_predict/text_similarity/{rerank}", body)[1]["reason"] == reason


def test_multimodal_and_nova_pre_process(engine, service):
    cases = [("connector.pre_process.bedrock.multimodal_embedding", ["a text", "aW1n"],
              {"inputText": "a text", "inputImage": "aW1n"}),
             ("connector.pre_process.cohere.multimodal_embedding", ["aW1n"], {"images": ["aW1n"]}),
             ("connector.pre_process.bedrock.nova.embedding", ['{"image": "aW1n"}'], {"image": "aW1n"}),
             ("connector.pre_process.bedrock.nova.embedding", ["plain"], {"text": "plain"}),
             ("connector.pre_process.bedrock.nova.video_embedding", ["dmlk"], {"inputVideo": "dmlk"})]
    for function, docs, params in cases:
        body = "{" + ", ".join(f'"{k}": ${{parameters.{k}}}' if isinstance(v, list) else f'"{k}": "${{parameters.{k}}}"'
                               for k, v in params.items()) + "}"
        model_id = model(engine, service, "/echo", body=body, pre_process_function=function)
        out = ok(engine, "POST", f"{ML}/_predict/text_embedding/{model_id}", {"text_docs": docs})
        assert out["inference_results"][0]["output"][0]["dataAsMap"]["echo"] == params, function
    cohere = model(engine, service, "/echo", pre_process_function="connector.pre_process.cohere.multimodal_embedding")
    assert error(engine, "POST", f"{ML}/_predict/text_embedding/{cohere}", {"text_docs": [None]})[1]["reason"] == \
        "No image provided"


def test_a_parameters_input_passes_a_built_in_pre_process(engine, service):
    """``returnDirectlyForRemoteInferenceInput``: a ``parameters`` call (an ``ml_inference`` document's) is
    sent as given whatever built-in pre-process the action names."""
    model_id = model(engine, service, "/echo", pre_process_function="connector.pre_process.bedrock.embedding")
    out = ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {"input": ["x", "y"]}})
    assert out["inference_results"][0]["output"][0]["dataAsMap"]["echo"] == {"input": ["x", "y"]}


# -- post-process and response_filter ---------------------------------------------------------------------


@pytest.mark.parametrize("path, function, tensors", [
    ("/cohere-v2", "connector.post_process.cohere_v2.embedding.int8",
     [{"name": "sentence_embedding", "data_type": "INT8", "shape": [3], "data": [1, -2, 3]},
      {"name": "sentence_embedding", "data_type": "INT8", "shape": [3], "data": [4, 5, -6]}]),
    ("/cohere-v2", "connector.post_process.cohere_v2.embedding.float",
     [{"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [2], "data": [0.5, 0.25]}]),
    ("/bedrock-v2", "connector.post_process.bedrock_v2.embedding.binary",
     [{"name": "sentence_embedding", "data_type": "BINARY", "shape": [4], "data": [1, 0, 1, 1]}]),
    ("/nova", "connector.post_process.bedrock.nova.embedding",
     [{"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [2], "data": [0.1, 0.2]}]),
    ("/batch", "connector.post_process.bedrock.batch_job_arn",
     [{"name": "response", "dataAsMap": {
         "jobArn": "arn:aws:bedrock:us-east-1:12345678912:model-invocation-job/w1xtlm0ik3e1",
         "processedJobArn": "arn:aws:bedrock:us-east-1:12345678912:model-invocation-job%2Fw1xtlm0ik3e1"}}]),
    ("/passthrough", "connector.post_process.mlcommons.passthrough",
     [{"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [2], "data": [0.5, 0.25]},
      {"name": "response", "dataAsMap": {"k": "v"}}]),
])
def test_built_in_post_process_functions(engine, service, path, function, tensors):
    model_id = model(engine, service, path, post_process_function=function)
    out = ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {"input": 1}})
    assert out == {"inference_results": [{"output": tensors, "status_code": 200}]}


def test_response_filter(engine, service):
    """Without a post-process the filtered value is the ``response`` tensor (the whole answer where the path
    finds nothing); with a built-in one it replaces the function's path and names the data type."""
    plain = model(engine, service, "/nested", parameters={"response_filter": "$.data"})
    out = ok(engine, "POST", f"{ML}/models/{plain}/_predict", {"parameters": {"input": 1}})
    assert out["inference_results"][0]["output"] == [{"name": "response", "dataAsMap": {"result": "filtered response"}}]
    out = ok(engine, "POST", f"{ML}/models/{plain}/_predict",
             {"parameters": {"input": 1, "response_filter": "$.data.result"}})
    assert out["inference_results"][0]["output"] == [{"name": "response", "dataAsMap": {"response": "filtered response"}}]
    out = ok(engine, "POST", f"{ML}/models/{plain}/_predict", {"parameters": {"input": 1, "response_filter": "$.nope"}})
    assert out["inference_results"][0]["output"][0]["dataAsMap"] == {"data": {"result": "filtered response"}, "other": 1}
    typed = model(engine, service, "/vectors", parameters={"response_filter": "$.data[*].embedding.FLOAT32"},
                  post_process_function="connector.post_process.openai.embedding")
    out = ok(engine, "POST", f"{ML}/models/{typed}/_predict", {"parameters": {"input": 1}})
    assert out["inference_results"][0]["output"] == [
        {"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [3], "data": [0.1, 0.2, 0.3]}]


def test_post_process_misses_and_bad_shapes(engine, service):
    """Jayway's misses are MLExceptions (500, the cause kept); the functions' own checks are 400s."""
    bedrock = model(engine, service, "/nested", post_process_function="connector.post_process.bedrock.embedding")
    status, err = error(engine, "POST", f"{ML}/models/{bedrock}/_predict", {"parameters": {"input": 1}})
    assert (status, err["type"], err["reason"]) == (500, "m_l_exception", "Fail to execute PREDICT in aws connector")
    assert (err["caused_by"]["type"], err["caused_by"]["reason"]) == (
        "path_not_found_exception", "No results for path: $['embedding']")
    openai = model(engine, service, "/batch", post_process_function="connector.post_process.openai.embedding")
    status, err = error(engine, "POST", f"{ML}/models/{openai}/_predict", {"parameters": {"input": 1}})
    assert err["caused_by"]["reason"] == "Missing property in path $['data']"
    strings = model(engine, service, "/nested", parameters={"response_filter": "$.data.result"},
                    post_process_function="connector.post_process.bedrock.embedding")
    status, err = error(engine, "POST", f"{ML}/models/{strings}/_predict", {"parameters": {"input": 1}})
    assert (status, err["reason"]) == (400, "Post process function input is not a List.")
    lists = model(engine, service, "/cohere-v2", parameters={"response_filter": "$.embeddings.int8[0]"},
                  post_process_function="connector.post_process.openai.embedding")
    status, err = error(engine, "POST", f"{ML}/models/{lists}/_predict", {"parameters": {"input": 1}})
    assert (status, err["reason"]) == (400, "The embedding should be a non-empty List containing List of Float values.")
    missing = model(engine, service, "/vectors", parameters={"response_filter": "$.missing[*]"},
                    post_process_function="connector.post_process.default.embedding")
    status, err = error(engine, "POST", f"{ML}/models/{missing}/_predict", {"parameters": {"input": 1}})
    assert (status, err["caused_by"]["reason"]) == (500, "Missing property in path $['missing']")
    empty = model(engine, service, "/vectors", parameters={"response_filter": "$.data[*].nope"},
                  post_process_function="connector.post_process.default.embedding")
    out = ok(engine, "POST", f"{ML}/models/{empty}/_predict", {"parameters": {"input": 1}})
    assert out == {"inference_results": [{"status_code": 200}]}  # no tensors: no "output"


# -- painless scripts ------------------------------------------------------------------------------------

TITAN_PRE = ('\n    StringBuilder builder = new StringBuilder();\n    builder.append("\\"");\n'
             '    String first = params.text_docs[0];\n    builder.append(first);\n    builder.append("\\"");\n'
             '    def parameters = "{" +"\\"inputText\\":" + builder + "}";\n'
             '    return  "{" +"\\"parameters\\":" + parameters + "}";')
TITAN_POST = ('\n      def name = "sentence_embedding";\n      def dataType = "FLOAT32";\n'
              '      if (params.embedding == null || params.embedding.length == 0) {\n        return params.message;\n'
              '      }\n      def shape = [params.embedding.length];\n      def json = "{" +\n'
              '                 "\\"name\\":\\"" + name + "\\"," +\n'
              '                 "\\"data_type\\":\\"" + dataType + "\\"," +\n'
              '                 "\\"shape\\":" + shape + "," +\n'
              '                 "\\"data\\":" + params.embedding +\n                 "}";\n      return json;\n    ')


def test_titan_blueprint_scripts(engine, service):
    """ml-commons' Bedrock Titan blueprint: a painless pre-process (one request per doc, each doc escaped for
    a JSON string before the script sees it) and a painless post-process returning a tensor's JSON."""
    model_id = model(engine, service, "/bedrock", body='{ "inputText": "${parameters.inputText}" }',
                     pre_process_function=TITAN_PRE, post_process_function=TITAN_POST)
    got = ok(engine, "GET", f"{ML}/connectors/{ok(engine, 'GET', f'{ML}/models/{model_id}')['connector_id']}")
    assert got["actions"][0]["pre_process_function"] == TITAN_PRE
    out = ok(engine, "POST", f"{ML}/_predict/text_embedding/{model_id}", {"text_docs": ["hello", 'say "hi"']})
    assert sent(service, 2) == [{"inputText": "hello"}, {"inputText": 'say "hi"'}]
    assert out["inference_results"] == [
        {"output": [{"name": "sentence_embedding", "data_type": "FLOAT32", "shape": [2], "data": [n, 0.25]}],
         "status_code": 200} for n in (5.0, 8.0)]


SAGEMAKER_PRE = """
    String query_text = params.query_text;
    StringBuilder builder = new StringBuilder('[');
    for (int i=0; i<params.text_docs.length; i ++) {
      builder.append('{"text":"');
      builder.append(escape(query_text));
      builder.append('", "text_pair":"');
      builder.append(escape(params.text_docs[i]));
      builder.append('"}');
      if (i<params.text_docs.length - 1) {
        builder.append(',');
      }
    }
    builder.append(']');
    def parameters = '{ "inputs": ' + builder + ' }';
    return  '{"parameters": ' + parameters + '}';
"""
SAGEMAKER_POST = """
    if (params.result == null || params.result.length < 1) {
      return 'no result generated';
    }
    def outputs = params.result;
    def resultBuilder = new StringBuilder('[ ');
    for (int i=0; i<outputs.length; i++) {
      resultBuilder.append(' {"name": "similarity", "data_type": "FLOAT32", "shape": [1],');
      resultBuilder.append('"data": [');
      resultBuilder.append(outputs[i].score);
      resultBuilder.append(']}');
      if (i<outputs.length - 1) {
        resultBuilder.append(',');
      }
    }
    resultBuilder.append(']');
    return resultBuilder.toString();
"""


def test_cross_encoder_rerank_scripts_with_the_default_escape(engine, service):
    """The SageMaker cross-encoder tutorial's scripts: ``escape()`` called without being defined gets
    ml-commons' default one; a top-level array answer is ``params.result``; a returned array of tensor JSON is
    one tensor per item. The docs reach the script escaped for a JSON string already (``processTextDoc``), so
    the tutorial's own escape() escapes them twice, as in ml-commons: the service gets the backslashes."""
    model_id = model(engine, service, "/sagemaker", body='{ "inputs": ${parameters.inputs} }',
                     pre_process_function=SAGEMAKER_PRE, post_process_function=SAGEMAKER_POST)
    out = ok(engine, "POST", f"{ML}/_predict/text_similarity/{model_id}",
             {"query_text": 'a "q"', "text_docs": ["d\\1", "d2"]})
    assert sent(service) == [{"inputs": [{"text": 'a \\"q\\"', "text_pair": "d\\\\1"},
                                         {"text": 'a \\"q\\"', "text_pair": "d2"}]}]
    assert out["inference_results"][0]["output"] == [
        {"name": "similarity", "data_type": "FLOAT32", "shape": [1], "data": [s]} for s in (0.5, 0.6)]


def test_script_answers_that_are_not_tensors_and_script_errors(engine, service):
    text = model(engine, service, "/nested", post_process_function="return 'no result generated';")
    out = ok(engine, "POST", f"{ML}/models/{text}/_predict", {"parameters": {"input": 1}})
    assert out["inference_results"][0]["output"] == [{"name": "response", "dataAsMap": {"response": "no result generated"}}]
    nothing = model(engine, service, "/nested", post_process_function="if (false) { return 'x'; }")
    out = ok(engine, "POST", f"{ML}/models/{nothing}/_predict", {"parameters": {"input": 1}})
    assert out["inference_results"][0]["output"][0]["dataAsMap"] == {"data": {"result": "filtered response"}, "other": 1}
    broken = model(engine, service, "/nested", post_process_function="return params.nope.length;")
    status, err = error(engine, "POST", f"{ML}/models/{broken}/_predict", {"parameters": {"input": 1}})
    assert (status, err["type"], err["reason"], err["caused_by"]["type"]) == (
        400, "script_exception", "runtime error", "null_pointer_exception")
    null_pre = model(engine, service, "/echo", pre_process_function="if (false) { return 'x'; }")
    status, err = error(engine, "POST", f"{ML}/_predict/text_embedding/{null_pre}", {"text_docs": ["a"]})
    assert (status, err["reason"]) == (400, "Preprocess function output is null")


def test_a_parameters_input_runs_a_pre_process_script_only_when_asked(engine, service):
    script = 'return \'{"parameters": {"input": "\' + params.text + \'!", "n": 3}}\';'
    asked = model(engine, service, "/echo", body='{ "input": "${parameters.input}", "n": ${parameters.n} }',
                  parameters={"pre_process_function.process_remote_inference_input": "true"},
                  pre_process_function=script)
    out = ok(engine, "POST", f"{ML}/models/{asked}/_predict", {"parameters": {"text": "hi"}})
    assert out["inference_results"][0]["output"][0]["dataAsMap"]["echo"] == {"input": "hi!", "n": 3.0}  # Gson's 3.0
    not_asked = model(engine, service, "/echo", body='{ "input": "${parameters.input}" }', pre_process_function=script)
    out = ok(engine, "POST", f"{ML}/models/{not_asked}/_predict", {"parameters": {"input": "as is"}})
    assert out["inference_results"][0]["output"][0]["dataAsMap"]["echo"] == {"input": "as is"}


# -- filling the request ----------------------------------------------------------------------------------


def test_string_substitutor_features(engine, service):
    """``:-default``, a quoted ``:-null`` as JSON null, connector parameters filled in turn (a prompt template
    around the call's text, inside the JSON context it stands in), ``$${`` for a literal, ``.toString()``,
    a null parameter as ``null``."""
    params = {"prompt": "Human: ${parameters.inputs} Assistant:",
              "messages": '[{"role": "user", "content": "${parameters.inputs}"}]'}
    body = ('{"t": ${parameters.temp:-0.5}, "img": "${parameters.image:-null}", "prompt": "${parameters.prompt}", '
            '"messages": ${parameters.messages}, "lit": "$${parameters.inputs}", "n": ${parameters.none}, '
            '"docs": "${parameters.docs.toString()}"}')
    model_id = model(engine, service, "/echo", body=body, parameters=params)
    out = ok(engine, "POST", f"{ML}/models/{model_id}/_predict",
             {"parameters": {"inputs": 'say "hi"', "none": None, "docs": ["a", "b"]}})
    assert out["inference_results"][0]["output"][0]["dataAsMap"]["echo"] == {
        "t": 0.5, "img": None, "prompt": 'Human: say "hi" Assistant:',
        "messages": [{"role": "user", "content": 'say "hi"'}], "lit": "${parameters.inputs}", "n": None,
        "docs": '["a","b"]'}
    looped = model(engine, service, "/echo", body='{"a": "${parameters.a}"}',
                   parameters={"a": "x ${parameters.b}", "b": "${parameters.a}"})
    status, err = error(engine, "POST", f"{ML}/models/{looped}/_predict", {"parameters": {}})
    assert (status, err["reason"]) == (400, "Infinite loop in property interpolation of ${parameters.a}: a->b->a")


def test_a_documents_text_stays_data(engine, service):
    """A call's value is never a template (es_infer_nb's departure from StringSubstitutor, which fills
    placeholders inside substituted values too): a document holding ``${parameters.secret}`` is sent as text."""
    model_id = model(engine, service, "/echo", body='{ "input": "${parameters.input}" }', parameters={"secret": "s3"})
    out = ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {"input": "${parameters.secret}"}})
    assert out["inference_results"][0]["output"][0]["dataAsMap"]["echo"] == {"input": "${parameters.secret}"}


def test_missing_parameters_invalid_payload_and_the_switches(engine, service):
    raw = model(engine, service, "/echo", body='{"input": ${parameters.input} }')
    status, err = error(engine, "POST", f"{ML}/models/{raw}/_predict", {"parameters": {}})
    assert (status, err["reason"]) == (400, "Invalid payload: {\"input\": ${parameters.input} }")  # before the check
    quoted = model(engine, service, "/echo", body='{"input": "${parameters.input}", "role": "${parameters.role}"}')
    status, err = error(engine, "POST", f"{ML}/models/{quoted}/_predict", {"parameters": {}})
    assert err["reason"] == "Some parameter placeholder not filled in payload: input, role"
    out = ok(engine, "POST", f"{ML}/models/{quoted}/_predict",
             {"parameters": {"input": "x", "skip_validating_missing_parameters": "true"}})
    assert out["inference_results"][0]["output"][0]["dataAsMap"]["echo"] == {"input": "x", "role": "${parameters.role}"}
    escaped = model(engine, service, "/echo", body='{"input": "${parameters.input}"}',
                    parameters={"no_escape_params": "input"})
    out = ok(engine, "POST", f"{ML}/models/{escaped}/_predict", {"parameters": {"input": 'a\\"b'}})
    assert out["inference_results"][0]["output"][0]["dataAsMap"]["echo"] == {"input": 'a"b'}


def test_headers(engine, service):
    real_ip = model(engine, service, "/echo", headers={"X-Real-IP": "${parameters.ip}"})
    status, err = error(engine, "POST", f"{ML}/models/{real_ip}/_predict", {"parameters": {"input": 1, "ip": "1.2.3.4"}})
    assert err["reason"].startswith("Header 'X-Real-IP' cannot use ${parameters.*} placeholders")
    blocked_id = model(engine, service, "/echo", headers={"Authorization": "Bearer ${parameters.token}"},
                       parameters={"token": "abc"})
    status, err = error(engine, "POST", f"{ML}/models/{blocked_id}/_predict", {"parameters": {"input": 1}})
    assert (status, err["reason"]) == (400, "Header 'Authorization' cannot use ${parameters.*} placeholders for "
                                       "security reasons. Use ${credential.*} instead.")
    open_id = model(engine, service, "/echo", headers={"X-Request-ID": "${parameters.rid}"})
    for rid, reason in (("a\x01b", "Header value contains invalid control character"),
                        ("x" * 9000, "Header size (key + value) exceeds 8KB limit")):
        status, err = error(engine, "POST", f"{ML}/models/{open_id}/_predict", {"parameters": {"input": 1, "rid": rid}})
        assert (status, err["reason"]) == (400, reason)
    ok(engine, "POST", f"{ML}/models/{open_id}/_predict", {"parameters": {"input": 1, "rid": "tab\there"}})
    assert service.received[-1].headers["X-Request-ID"] == "tab\there"
    status, err = error(engine, "POST", f"{ML}/models/{open_id}/_predict", {"parameters": {"input": 1}})
    assert err["reason"] == "Header 'X-Request-ID' contains unresolved placeholder. Required parameter is missing."


# -- connectors and answers -------------------------------------------------------------------------------


@pytest.mark.parametrize("change, reason", [
    (lambda c: c.pop("name"), "Connector name is null"),
    (lambda c: c.pop("version"), "Connector version is null"),
    (lambda c: c.pop("credential"), "Connector credential is null or empty list"),
    (lambda c: c.update(credential={}), "Connector credential is null or empty list"),
    (lambda c: c.update(protocol="ftp"),
     "Unsupported connector protocol. Please use one of [aws_sigv4, http, mcp_sse, mcp_streamable_http]"),
    (lambda c: c["actions"][0].update(action_type="foo"),
     "No enum constant org.opensearch.ml.common.connector.ConnectorAction.ActionType.FOO"),
    (lambda c: c["actions"][0].update(name="bad name!"),
     "Action name contains invalid characters. Only alphanumeric characters, hyphens, and underscores are allowed"),
    (lambda c: c["actions"][0].update(name="x" * 65), "Action name exceeds maximum length of 64 characters"),
    (lambda c: c["actions"][0].update(name="a\nb"), "Action name must not contain control characters"),
    (lambda c: c["actions"][0].update(name="predict"), "name can't be one of action type [PREDICT, EXECUTE, "
                                                        "BATCH_PREDICT, CANCEL_BATCH_PREDICT, BATCH_PREDICT_STATUS]"),
])
def test_connector_validation(engine, service, change: Callable[[dict[str, Any]], Any], reason):
    body = connector(service, "/echo")
    change(body)
    status, err = error(engine, "POST", f"{ML}/connectors/_create", body)
    assert (status, err["type"], err["reason"]) == (400, "illegal_argument_exception", reason)


def test_action_name_and_method_as_given(engine, service):
    body = connector(service, "/echo", name="embed-v1", method="post")
    connector_id = ok(engine, "POST", f"{ML}/connectors/_create", body)["connector_id"]
    action = ok(engine, "GET", f"{ML}/connectors/{connector_id}")["actions"][0]
    assert list(action) == ["action_type", "method", "url", "request_body", "name"]
    assert (action["method"], action["name"]) == ("post", "embed-v1")
    patch = model(engine, service, "/echo", method="PATCH")
    assert error(engine, "POST", f"{ML}/models/{patch}/_predict", {"parameters": {"input": 1}})[1]["reason"] == \
        "unsupported http method"
    inline = {**connector(service, "/echo"), "actions": [{"action_type": "execute", "method": "POST",
                                                          "url": service.url + "/echo", "request_body": "{}"}]}
    model_id = ok(engine, "POST", f"{ML}/models/_register",
                  {"name": "m", "function_name": "remote", "connector": inline})["model_id"]
    assert error(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {}})[1]["reason"] == \
        "no PREDICT action found"


def test_answer_status_handling(engine, service):
    """200-300 are answers (300 too); an empty 2xx body is a 502; an error status with no body says so."""
    out = ok(engine, "POST", f"{ML}/models/{model(engine, service, '/multiple')}/_predict", {"parameters": {"input": 1}})
    assert out == {"inference_results": [{"output": [{"name": "response", "dataAsMap": {"ok": True}}],
                                          "status_code": 300}]}
    status, err = error(engine, "POST", f"{ML}/models/{model(engine, service, '/empty')}/_predict",
                        {"parameters": {"input": 1}})
    assert (status, err["reason"]) == (502, "Remote service returned empty response body")
    status, err = error(engine, "POST", f"{ML}/models/{model(engine, service, '/empty-error')}/_predict",
                        {"parameters": {"input": 1}})
    assert (status, err["reason"]) == (500, "Remote service returned error status 500 with empty body")


def test_a_service_that_cannot_be_reached(engine):
    closed = LoopbackServer(lambda req: (200, {}))
    closed.start()
    url = closed.url
    closed.stop()
    body = {"name": "gone", "version": "1", "protocol": "http", "parameters": {}, "credential": {"k": "gone-key"},
            "actions": [{"action_type": "predict", "method": "POST", "url": url + "/x", "request_body": "{}"}]}
    connector_id = ok(engine, "POST", f"{ML}/connectors/_create", body)["connector_id"]
    model_id = ok(engine, "POST", f"{ML}/models/_register",
                  {"name": "m", "function_name": "remote", "connector_id": connector_id})["model_id"]
    status, err = error(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {}})
    assert status == 500 and err["reason"].startswith("Error communicating with remote model: ")


def test_retry_settings_as_connector_client_config_has_them(engine, service, monkeypatch):
    """ConnectorClientConfig: retries off by default; when on, a constant 200 ms wait unless the connector
    asks for one of the jittered exponential policies."""
    from es_infer_nb.services import transport as transport_module
    from es_infer_nb.services.ml_connector import Connector

    settings = Connector.parse(connector(service, "/echo")).transport_settings()
    assert (settings.max_retries, settings.backoff_s, settings.backoff_policy) == (0, 0.2, "constant")
    body = {**connector(service, "/empty-error"), "client_config": {"max_retry_times": 3}}
    waits: list[float] = []
    monkeypatch.setattr(transport_module.time, "sleep", waits.append)
    connector_id = ok(engine, "POST", f"{ML}/connectors/_create", body)["connector_id"]
    model_id = ok(engine, "POST", f"{ML}/models/_register",
                  {"name": "m", "function_name": "remote", "connector_id": connector_id})["model_id"]
    assert error(engine, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {"input": 1}})[0] == 500
    assert waits == [0.2, 0.2, 0.2]
    jittered = {**connector(service, "/echo"), "client_config": {"retry_backoff_policy": "exponential_full_jitter"}}
    assert Connector.parse(jittered).transport_settings().backoff_policy == "exponential_full_jitter"
    status, err = error(engine, "POST", f"{ML}/connectors/_create",
                        {**connector(service, "/echo"), "client_config": {"retry_backoff_policy": "sometimes"}})
    assert status == 400 and "retry_backoff_policy one of [constant, " in err["reason"]
