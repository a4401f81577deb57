"""ml-commons' Predict API for a local model as its upstream tests and main code have it
(opensearch-project/ml-commons 950f0560: ``RestMLPredictionAction``, ``MLInput.parse``, ``TextDocsMLInput``,
``ModelResultFilter``, ``AsymmetricTextEmbeddingParameters``, ``TextEmbeddingModel``, ``DLModel.predict``,
``RestMLRegisterModelAction``)."""

from __future__ import annotations

from typing import Any

import pytest

from es_infer_nb import Engine
from es_infer_nb.services.ml_commons import MINILM

ML = "_plugins/_ml"
PARAMS = "org.opensearch.ml.common.input.parameter.textembedding"
ASYMMETRIC = {
    "model_type": "bert",
    "embedding_dimension": 384,
    "framework_type": "SENTENCE_TRANSFORMERS",
    "query_prefix": "query >>",
    "passage_prefix": "passage >> ",
}


def call(engine: Engine, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    resp = engine.request(method, path, body)
    return resp.status, resp.body


def minilm(engine: Engine, deploy: bool = True, **extra: Any) -> str:
    status, task = call(
        engine,
        "POST",
        f"{ML}/models/_register",
        {"name": MINILM, "version": "1.0.1", "model_format": "TORCH_SCRIPT", **extra},
    )
    assert status == 200, task
    model_id = call(engine, "GET", f"{ML}/tasks/{task['task_id']}")[1]["model_id"]
    if deploy:
        assert call(engine, "POST", f"{ML}/models/{model_id}/_deploy")[0] == 200
    return model_id


def data(answer: dict[str, Any], doc: int = 0) -> list[float]:
    return answer["inference_results"][doc]["output"][0]["data"]


def test_unknown_algorithm_in_the_path(engine):
    # MLInput.parse -> FunctionName.from: "Wrong function name"; RestMLPredictionAction answers it 400 for a
    # model its node holds and 404 from the model lookup's listener for one it does not (not deployed)
    deployed, registered = minilm(engine), minilm(engine, deploy=False)
    for model_id, status in ((deployed, 400), (registered, 404)):
        got, body = call(engine, "POST", f"{ML}/_predict/no_such_algo/{model_id}", {"text_docs": ["a"]})
        assert (got, body["status"]) == (status, status)
        assert (body["error"]["type"], body["error"]["reason"]) == ("illegal_argument_exception", "Wrong function name")
    status, body = call(engine, "POST", f"{ML}/_predict/SPARSE_ENCODING/{deployed}", {"text_docs": ["a"]})
    assert status == 200 and len(data(body)) == 384  # a known name reads text docs alike


def test_asymmetric_model_without_parameters_is_an_ml_exception(engine):
    # TextEmbeddingDenseModelTest.initModel_predict_TorchScript_SentenceTransformer_SmallModel_With_Asymmetric_
    # Prompts_SadPath1: an MLException around the IllegalArgumentException (DLModel.predict: "Failed to inference")
    model_id = minilm(engine, model_config=ASYMMETRIC)
    status, body = call(engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": ["a park"]})
    assert status == 500
    assert body["error"] == {
        "root_cause": [{"type": "m_l_exception", "reason": f"Failed to inference TEXT_EMBEDDING model: {model_id}"}],
        "type": "m_l_exception",
        "reason": f"Failed to inference TEXT_EMBEDDING model: {model_id}",
        "caused_by": {
            "type": "illegal_argument_exception",
            "reason": "The embedding model chosen is asymmetric. To use it, you must declare whether the "
            "input is of type `QUERY` or of type `PASSAGE`.",
        },
    }


def test_symmetric_model_with_parameters_is_an_ml_exception(engine):
    # ..._With_Asymmetric_Prompts_SadPath2; any "parameters" object is AsymmetricTextEmbeddingParameters, even
    # one without content_type
    model_id = minilm(engine)
    for params in ({"content_type": "query"}, {}):
        status, body = call(
            engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": ["a park"], "parameters": params}
        )
        assert (status, body["error"]["type"]) == (500, "m_l_exception")
        assert body["error"]["caused_by"]["reason"] == (
            "When passing AsymmetricTextEmbeddingParameters, the model requires to be registered with at least one "
            "of `query_prefix` or `passage_prefix`."
        )


def test_parameters_without_content_type_take_the_query_prefix(engine):
    # TextEmbeddingModel.addPrefixesToData: PASSAGE picks passage_prefix, anything else (null) query_prefix
    asymmetric, plain = minilm(engine, model_config=ASYMMETRIC), minilm(engine)
    path = f"{ML}/_predict/text_embedding"
    status, none_given = call(engine, "POST", f"{path}/{asymmetric}", {"text_docs": ["a park"], "parameters": {}})
    assert status == 200
    query = call(
        engine, "POST", f"{path}/{asymmetric}", {"text_docs": ["a park"], "parameters": {"content_type": "query"}}
    )[1]
    reference = call(engine, "POST", f"{path}/{plain}", {"text_docs": ["query >>a park"]})[1]
    assert data(none_given) == data(query)
    assert data(query) == pytest.approx(data(reference), abs=1e-5)


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"content_type": "document"},
            f"No enum constant {PARAMS}.AsymmetricTextEmbeddingParameters.EmbeddingContentType.DOCUMENT",
        ),
        (
            {"content_type": "passage", "sparse_embedding_format": "bits"},
            f"No enum constant {PARAMS}.SparseEmbeddingFormat.BITS",
        ),
    ],
)
def test_parameters_enums_are_parsed_first(engine, params, message):
    # AsymmetricTextEmbeddingParameters.parse: EmbeddingContentType / SparseEmbeddingFormat.valueOf(upper case)
    model_id = minilm(engine, model_config=ASYMMETRIC)
    status, body = call(engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": ["a"], "parameters": params})
    assert (status, body["error"]["type"], body["error"]["reason"]) == (400, "illegal_argument_exception", message)


def test_parse_errors_come_before_the_asymmetric_check(engine):
    # TextDocsMLInput: "Empty text docs" while the request is read, before the model runs
    model_id = minilm(engine, model_config=ASYMMETRIC)
    status, body = call(engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": []})
    assert (status, body["error"]["reason"]) == (400, "Empty text docs")
    status, body = call(engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": ["a"], "parameters": "x"})
    assert (status, body["error"]["type"]) == (400, "parsing_exception")
    assert (
        body["error"]["reason"] == "Failed to parse object: expecting token of type [START_OBJECT] but found "
        "[VALUE_STRING]"
    )


@pytest.mark.parametrize("positions, kept", [([0], 1), (["0"], 1), ([0.7], 1), (["1"], 0), ([" 0 "], 1)])
def test_target_response_positions_are_coerced(engine, positions, kept):
    # ModelResultFilter.parse / TextDocsMLInput: parser.intValue() (coercing: a number's text, a truncated number);
    # ModelTensors.filter keeps the tensors at those positions
    model_id = minilm(engine)
    status, body = call(
        engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": ["a"], "target_response_positions": positions}
    )
    assert status == 200
    assert len(body["inference_results"][0].get("output", [])) == kept


def test_target_response_position_that_is_no_number(engine):
    model_id = minilm(engine)
    status, body = call(
        engine,
        "POST",
        f"{ML}/models/{model_id}/_predict",
        {"text_docs": ["a"], "result_filter": {"target_response_positions": ["first"]}},
    )
    assert (status, body["error"]["type"], body["error"]["reason"]) == (
        400,
        "number_format_exception",
        'For input string: "first"',
    )


def test_register_route_with_model_id_and_version(engine):
    # RestMLRegisterModelActionTests.testRoutes: POST /_plugins/_ml/models/{model_id}/{version}/_register reads
    # the body as the plain route does
    status, task = call(
        engine,
        "POST",
        f"{ML}/models/test_model_with_modelId/1/_register",
        {"name": MINILM, "version": "1.0.1", "model_format": "TORCH_SCRIPT"},
    )
    assert status == 200 and list(task) == ["task_id", "status"] and task["status"] == "CREATED"
    done = call(engine, "GET", f"{ML}/tasks/{task['task_id']}")[1]
    assert done["state"] == "COMPLETED" and done["function_name"] == "TEXT_EMBEDDING"
