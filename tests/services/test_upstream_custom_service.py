"""The custom service as a whole against upstream's service tests (elastic/elasticsearch x-pack/plugin/inference
.../services/custom/: CustomServiceTests, the AbstractInferenceServiceTests it runs, CustomModelTests,
CustomTaskSettingsTests, CustomSecretSettingsTests) and the main code they exercise (``CustomService
.parseRequestConfig``, ``CustomRequest``, ``CustomTaskSettings.fromMap``, ``CustomSecretSettings.fromMap``),
through ``Engine.request`` and a loopback service."""

from __future__ import annotations

from typing import Any

from es_infer_nb import Engine
from es_infer_nb.services.loopback import LoopbackServer, Received

#: CustomServiceTests.createTaskSettingsMap / createSecretSettingsMap: the same key in both
TASK_SETTINGS = {"parameters": {"test_key": "test_value"}}
SECRET_PARAMETERS = {"test_key": "test_value"}


def service_settings(task_type: str, url: str = "http://www.abc.com", **extra: Any) -> dict[str, Any]:
    """CustomServiceTests.createServiceSettingsMap (its json_parser per task type)."""
    parser = {
        "text_embedding": {"text_embeddings": "$.result.embeddings[*].embedding"},
        "completion": {"completion_result": "$.result.text"},
        "rerank": {
            "relevance_score": "$.results[*].relevance_score",
            "reranked_index": "$.results[*].index",
            "document_text": "$.results[*].document.text",
        },
    }[task_type]
    settings: dict[str, Any] = {
        "url": url,
        "headers": {"key": "value"},
        "query_parameters": [["key", "value"]],
        "request": "request body",
        "response": {"json_parser": parser},
    }
    if task_type == "text_embedding":
        settings.update(similarity="dot_product", dimensions=1536, max_input_tokens=512)
    settings.update(extra)
    return settings


def put(engine: Engine, task_type: str, body: dict[str, Any], inference_id: str = "id") -> tuple[int, Any]:
    resp = engine.request("PUT", f"_inference/{task_type}/{inference_id}", {"service": "custom", **body})
    return resp.status, resp.body


def reason(body: Any) -> tuple[str, str]:
    return body["error"]["type"], body["error"]["reason"]


def test_request_config_creates_models_with_a_task_parameter_named_as_a_secret(engine):
    # AbstractInferenceServiceTests.testParseRequestConfig_CreatesAnEmbeddingsModel / _CreatesACompletionModel with
    # CustomServiceTests' maps: task parameters and secret parameters both hold test_key, and the model is built
    for task_type in ("text_embedding", "completion"):
        settings = {**service_settings(task_type), "secret_parameters": dict(SECRET_PARAMETERS)}
        status, body = put(
            engine, task_type, {"service_settings": settings, "task_settings": TASK_SETTINGS}, f"id-{task_type}"
        )
        assert status == 200, body
        assert body["task_settings"] == {"parameters": {"test_key": "test_value"}}
        assert body["service_settings"]["url"] == "http://www.abc.com"
        assert "secret_parameters" not in body["service_settings"]
    chunking = engine.request("GET", "_inference/text_embedding/id-text_embedding").body["endpoints"][0]
    # ChunkingSettingsBuilder.fromMap(Map.of()): a request config without chunking settings gets the defaults
    assert chunking["chunking_settings"] == {"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1}


def test_a_task_parameter_is_used_over_the_secret_of_the_same_name(engine):
    # CustomRequest: the secret parameters are added first, the task parameters over them (string and JSON values)
    received: list[Received] = []

    def answer(req: Received) -> tuple[int, Any]:
        received.append(req)
        return 200, {"result": {"text": "ok"}}

    with LoopbackServer(answer) as server:
        settings = {
            "url": server.url + "/${path}",
            "secret_parameters": {"path": "secret-path", "key": "s3cr3t-val"},
            "headers": {"X-Key": "${key}"},
            "request": '{"input": ${input}, "key": ${key}}',
            "response": {"json_parser": {"completion_result": "$.result.text"}},
        }
        status, body = put(
            engine, "completion", {"service_settings": settings, "task_settings": {"parameters": {"key": "public"}}}
        )
        assert status == 200, body
        out = engine.request("POST", "_inference/completion/id", {"input": "hi"})
    assert out.status == 200 and out.body == {"completion": [{"result": "ok"}]}
    (req,) = received
    assert req.path == "/secret-path" and req.headers["X-Key"] == "public"
    assert req.json() == {"input": "hi", "key": "public"}


def test_unsupported_task_type(engine):
    # AbstractInferenceServiceTests.testParseRequestConfig_ThrowsUnsupportedModelType (CHAT_COMPLETION)
    settings = {**service_settings("completion"), "secret_parameters": dict(SECRET_PARAMETERS)}
    status, body = put(engine, "chat_completion", {"service_settings": settings, "task_settings": TASK_SETTINGS})
    assert status == 400
    assert reason(body) == ("status_exception", "The [custom] service does not support task type [chat_completion]")


def test_chunking_settings_are_read_for_the_embedding_task_types_only(engine):
    # CustomService.parseRequestConfig: chunking_settings are removed from the config for text_embedding and
    # sparse_embedding only; for the other task types the key stays and is unknown (throwIfNotEmptyMap(config))
    chunking = {"strategy": "word", "max_chunk_size": 10, "overlap": 1}
    for task_type in ("completion", "rerank"):
        status, body = put(
            engine,
            task_type,
            {"service_settings": service_settings(task_type), "chunking_settings": chunking},
            f"c-{task_type}",
        )
        assert status == 400
        assert reason(body) == (
            "status_exception",
            "Model configuration contains settings [chunking_settings] unknown to the [custom] service",
        )
    status, body = put(
        engine,
        "text_embedding",
        {"service_settings": service_settings("text_embedding"), "chunking_settings": chunking},
        "c-emb",
    )
    assert status == 200 and body["chunking_settings"] == chunking


def test_task_parameters_of_another_type(engine):
    # CustomTaskSettingsTests.testFromMap_Throws_IfValueIsInvalid: the entry as Java prints it
    status, body = put(
        engine,
        "completion",
        {
            "service_settings": service_settings("completion"),
            "task_settings": {"parameters": {"key": {"another_key": "value"}}},
        },
    )
    assert status == 400
    assert reason(body) == (
        "validation_exception",
        "Validation Failed: 1: Map field [parameters] has an entry that is not valid, [key => {another_key=value}]. "
        "Value type of [{another_key=value}] is not one of [Boolean, Double, Float, Integer, String].;",
    )
    # extractOptionalMapRemoveNulls -> removeAsType: parameters that are not a map
    status, body = put(
        engine,
        "completion",
        {"service_settings": service_settings("completion"), "task_settings": {"parameters": "abc"}},
    )
    assert reason(body) == (
        "validation_exception",
        "Validation Failed: 1: field [parameters] is not of the expected "
        "type. The value [abc] cannot be converted to a [Map];",
    )
    # testFromMap_RemovesNullValues, and a call's parameters over the stored ones (CustomModelTests.testOverride)
    status, body = put(
        engine,
        "completion",
        {
            "service_settings": service_settings("completion"),
            "task_settings": {"parameters": {"value": "abc", "null": None}},
        },
        "ok",
    )
    assert status == 200 and body["task_settings"] == {"parameters": {"value": "abc"}}


def test_a_call_parameter_overrides_the_stored_one(engine):
    # CustomModelTests.testOverride: CustomModel.of(model, {"parameters": {"key": "different_value"}})
    received: list[Received] = []

    def answer(req: Received) -> tuple[int, Any]:
        received.append(req)
        return 200, {"result": {"text": "ok"}}

    with LoopbackServer(answer) as server:
        settings = {
            "url": server.url,
            "request": '{"input": ${input}, "key": ${key}}',
            "response": {"json_parser": {"completion_result": "$.result.text"}},
        }
        assert (
            put(
                engine, "completion", {"service_settings": settings, "task_settings": {"parameters": {"key": "value"}}}
            )[0]
            == 200
        )
        out = engine.request(
            "POST",
            "_inference/completion/id",
            {"input": "hi", "task_settings": {"parameters": {"key": "different_value"}}},
        )
    assert out.status == 200, out.body
    assert received[0].json() == {"input": "hi", "key": "different_value"}


def test_secret_parameters_of_another_type_are_refused_without_their_value(engine):
    # CustomSecretSettingsTests.testFromMap_Throws_IfValueIsInvalid: the censored form (no key, no value)
    for value in ({"another_key": "value"}, 12345):
        settings = {**service_settings("completion"), "secret_parameters": {"key": value}}
        status, body = put(engine, "completion", {"service_settings": settings})
        assert status == 400
        assert reason(body) == (
            "validation_exception",
            "Validation Failed: 1: Map field [secret_parameters] has an "
            "entry that is not valid. Value type is not one of [String].;",
        )
        assert "another_key" not in str(body) and "12345" not in str(body)
    # testFromMap_RemovesNullValues: a null secret is dropped
    settings = {**service_settings("completion"), "secret_parameters": {"value": "abc", "null": None}}
    assert put(engine, "completion", {"service_settings": settings}, "nulls")[0] == 200


def test_rerank_answers_the_documents_the_service_ranked(engine):
    # CustomServiceTests.testRerankInfer_Cohere_Format: two inputs, the service's three ranked documents as given
    ranked = [
        {"document": {"text": "Washington, D.C.."}, "index": 2, "relevance_score": 0.98005307},
        {"document": {"text": "Carson City"}, "index": 0, "relevance_score": 0.10194652},
    ]
    with LoopbackServer(lambda _req: (200, {"index": "x", "results": ranked})) as server:
        settings = service_settings("rerank", server.url, request='{"input":${input}}')
        assert put(engine, "rerank", {"service_settings": settings, "task_settings": TASK_SETTINGS})[0] == 200
        out = engine.request("POST", "_inference/rerank/id", {"input": ["abcdefgh", "ijklmnop"], "query": "q"})
    assert out.status == 200, out.body
    assert [(e["index"], e["text"]) for e in out.body["rerank"]] == [(2, "Washington, D.C.."), (0, "Carson City")]
