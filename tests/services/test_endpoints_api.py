"""``_inference`` REST API through ``Engine.request`` against real loopback model services."""

from __future__ import annotations

import pytest
from endpoint_servers import ali_embeddings, ok, score, vector

from es_infer_nb.services.chunking import preview_chunks


def test_put_get_and_infer_alibaba_text_embedding(engine, model_server):
    put = ok(engine.request("PUT", "_inference/text_embedding/ali-emb",
                            ali_embeddings(f"{model_server.url}/ali-embeddings")))
    assert put["inference_id"] == "ali-emb" and put["task_type"] == "text_embedding"
    assert put["service"] == "custom"
    assert put["service_settings"]["rate_limit"] == {"requests_per_minute": 10000}
    assert put["chunking_settings"] == {"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1}
    answer = ok(engine.request("POST", "_inference/text_embedding/ali-emb", {"input": ["hello", "world!"]}))
    assert answer == {"text_embedding": [{"embedding": vector("hello")}, {"embedding": vector("world!")}]}
    single = ok(engine.request("POST", "_inference/ali-emb", {"input": "one", "input_type": "search"}))
    assert single == {"text_embedding": [{"embedding": vector("one")}]}
    sent = model_server.received[-1].json()
    assert sent == {"input": ["one"], "input_type": "query"}
    assert model_server.received[-1].headers["Authorization"] == "Bearer ali-secret-XYZ"


def test_custom_request_with_a_lone_surrogate_sends_javas_bytes(engine, model_server):
    # found by the request fuzzer: a lone surrogate in the input of a custom endpoint failed with a Python
    # encoding error; ES sends String.getBytes(UTF_8), the surrogate as "?"
    ok(engine.request("PUT", "_inference/text_embedding/ali-s", ali_embeddings(f"{model_server.url}/ali-embeddings")))
    answer = ok(engine.request("POST", "_inference/text_embedding/ali-s", {"input": ["a\ud800"]}))
    assert model_server.received[-1].json()["input"] == ["a?"]
    assert answer == {"text_embedding": [{"embedding": vector("a?")}]}


def test_get_variants_and_task_type_mismatch(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/e1", ali_embeddings(f"{model_server.url}/ali-embeddings")))
    body = ali_embeddings(f"{model_server.url}/ali-embeddings")
    body["task_type"] = "text_embedding"
    ok(engine.request("PUT", "_inference/e2", body))
    for path in ("_inference", "_inference/_all", "_inference/text_embedding/_all"):
        ids = [e["inference_id"] for e in ok(engine.request("GET", path))["endpoints"]]
        assert ids == ["e1", "e2"], path
    assert ok(engine.request("GET", "_inference/rerank/_all")) == {"endpoints": []}
    assert ok(engine.request("GET", "_inference/e1"))["endpoints"][0]["inference_id"] == "e1"
    missing = engine.request("GET", "_inference/nope")
    assert missing.status == 404
    assert missing.body["error"]["reason"] == "Inference endpoint not found [nope]"
    wrong = engine.request("POST", "_inference/rerank/e1", {"input": ["a"], "query": "q"})
    assert wrong.status == 400
    assert "Incompatible task_type, the requested type [rerank] does not match the model type [text_embedding]" \
        == wrong.body["error"]["reason"]
    again = engine.request("PUT", "_inference/text_embedding/e1", ali_embeddings("http://127.0.0.1:1"))
    assert again.status == 400 and again.body["error"]["type"] == "resource_already_exists_exception"


def test_sparse_rerank_completion_in_alibaba_formats(engine, model_server):
    url = model_server.url
    ok(engine.request("PUT", "_inference/sparse_embedding/ali-sparse", {"service": "alibaba-cloud-custom-model",
        "service_settings": {
            "url": f"{url}/ali-sparse", "secret_parameters": {"api_key": "k1"},
            "request": '{"input": ${input}}',
            "response": {"json_parser": {"token_path": "$.result.sparse_embeddings[*].embedding[*].tokenId",
                                         "weight_path": "$.result.sparse_embeddings[*].embedding[*].weight"}}}}))
    sparse = ok(engine.request("POST", "_inference/sparse_embedding/ali-sparse", {"input": ["ab cde", "x"]}))
    assert sparse == {"sparse_embedding": [{"is_truncated": False, "embedding": {"2": 0.5, "3": 1.5}},
                                           {"is_truncated": False, "embedding": {"1": 0.5}}]}

    ok(engine.request("PUT", "_inference/rerank/ali-rr", {"service": "custom", "service_settings": {
        "url": f"{url}/ali-rerank", "secret_parameters": {"api_key": "k2"},
        "request": '{"query": ${query}, "docs": ${input}, "top_n": ${top_n}}',
        "response": {"json_parser": {"relevance_score": "$.result.scores[*].score",
                                     "reranked_index": "$.result.scores[*].index"}}}}))
    docs = ["cats and dogs", "the capital of france", "france capital city paris"]
    rr = ok(engine.request("POST", "_inference/rerank/ali-rr",
                           {"input": docs, "query": "capital of france", "top_n": 2, "return_documents": True}))
    assert [e["index"] for e in rr["rerank"]] == [1, 2]
    assert rr["rerank"][0] == {"index": 1, "relevance_score": pytest.approx(score("capital of france", docs[1])),
                               "text": docs[1]}
    no_query = engine.request("POST", "_inference/rerank/ali-rr", {"input": docs})
    assert no_query.status == 400 and "[query]" in no_query.body["error"]["reason"]

    ok(engine.request("PUT", "_inference/completion/ali-llm", {"service": "custom", "service_settings": {
        "url": f"{url}/ali-completion", "secret_parameters": {"api_key": "k3"},
        "request": '{"messages": [{"role": "user", "content": ${input}}], "model": ${model}}',
        "response": {"json_parser": {"completion_result": "$.result.text"}}},
        "task_settings": {"parameters": {"model": "qwen"}}}))
    done = ok(engine.request("POST", "_inference/completion/ali-llm", {"input": 'Say "hi"'}))
    assert done == {"completion": [{"result": 'echo: Say "hi"'}]}
    assert model_server.received[-1].json()["model"] == "qwen"


def test_custom_task_type_returns_the_whole_response(engine, model_server):
    ok(engine.request("PUT", "_inference/custom/raw", {"service": "custom", "service_settings": {
        "url": f"{model_server.url}/ali-embeddings", "secret_parameters": {"k": "v"},
        "request": '{"input": ${input}}', "response": {"json_parser": {}}}}))
    answer = ok(engine.request("POST", "_inference/custom/raw", {"input": ["a"]}))
    assert answer["custom"]["result"]["embeddings"][0]["embedding"] == vector("a")


def test_openai_and_openai_compatible(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/oa", {"service": "openai", "service_settings": {
        "api_key": "sk-test-123", "model_id": "text-embedding-3-small", "url": f"{model_server.url}/v1/embeddings"}}))
    got = ok(engine.request("POST", "_inference/text_embedding/oa", {"input": ["a", "bb", "ccc"]}))
    # the server answers in reverse order; entries are put back by "index"
    assert got == {"text_embedding": [{"embedding": vector(t)} for t in ("a", "bb", "ccc")]}
    assert model_server.received[-1].json() == {"model": "text-embedding-3-small", "input": ["a", "bb", "ccc"]}
    ok(engine.request("PUT", "_inference/completion/chat", {"service": "openai", "service_settings": {
        "api_key": "sk-test-123", "model_id": "gpt-x", "url": f"{model_server.url}/v1/chat/completions"}}))
    assert ok(engine.request("POST", "_inference/completion/chat", {"input": "hi"})) == {
        "completion": [{"result": "HI"}]}
    missing_key = engine.request("PUT", "_inference/text_embedding/oa2", {"service": "openai",
                                 "service_settings": {"model_id": "m"}})
    assert missing_key.status == 400
    assert "does not contain the required setting [api_key]" in missing_key.body["error"]["reason"]


def test_hugging_face_text_embeddings_inference(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/tei", {"service": "hugging_face",
                      "service_settings": {"url": f"{model_server.url}/embed", "batch_size": 2}}))
    got = ok(engine.request("POST", "_inference/text_embedding/tei", {"input": ["a", "b", "c"]}))
    assert got["text_embedding"] == [{"embedding": vector(t)} for t in "abc"]
    sent = sorted((r.json() for r in model_server.received[-2:]), key=lambda b: -len(b["inputs"]))
    assert sent == [{"inputs": ["a", "b"]}, {"inputs": ["c"]}]  # two concurrent requests, in any order
    ok(engine.request("PUT", "_inference/rerank/tei-rr", {"service": "hugging_face",
                      "service_settings": {"url": f"{model_server.url}/rerank"}}))
    rr = ok(engine.request("POST", "_inference/rerank/tei-rr",
                           {"input": ["x y", "q x"], "query": "q x", "return_documents": True}))
    assert rr["rerank"][0] == {"index": 1, "relevance_score": pytest.approx(2.003), "text": "q x"}


def test_services_listing_marks_secrets(engine):
    services = ok(engine.request("GET", "_inference/_services"))
    by_name = {s["service"]: s for s in services}
    assert {"custom", "alibaba-cloud-custom-model", "openai", "hugging_face", "elasticsearch"} <= set(by_name)
    assert by_name["custom"]["configurations"]["secret_parameters"]["sensitive"] is True
    assert by_name["openai"]["configurations"]["api_key"]["sensitive"] is True
    assert by_name["openai"]["configurations"]["model_id"]["sensitive"] is False
    rerank = [s["service"] for s in ok(engine.request("GET", "_inference/_services/rerank"))]
    assert "openai" not in rerank and "custom" in rerank


def test_delete_refused_while_a_pipeline_uses_the_endpoint(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/used", ali_embeddings(f"{model_server.url}/ali-embeddings")))
    engine.pipelines.put("p1", {"processors": [{"inference": {"model_id": "used", "input_output": {
        "input_field": "t", "output_field": "v"}}}]})
    refused = engine.request("DELETE", "_inference/text_embedding/used")
    assert refused.status == 409
    assert refused.body["error"]["reason"].startswith("Inference endpoint used is referenced by pipelines: [p1].")
    dry = ok(engine.request("DELETE", "_inference/used", params={"dry_run": "true"}))
    assert dry == {"acknowledged": False, "pipelines": ["p1"], "error_message": refused.body["error"]["reason"]}
    assert ok(engine.request("GET", "_inference/used"))["endpoints"]
    assert ok(engine.request("DELETE", "_inference/used", params={"force": "true"})) == {  # TransportDelete...:
        "acknowledged": True, "pipelines": []}  # a delete that goes ahead answers no pipelines
    assert engine.request("GET", "_inference/used").status == 404


def test_chunking_settings_validation_and_preview(engine, model_server):
    body = ali_embeddings(f"{model_server.url}/ali-embeddings")
    body["chunking_settings"] = {"strategy": "word", "max_chunk_size": 5, "overlap": 1}
    bad = engine.request("PUT", "_inference/text_embedding/c1", body)
    assert (bad.status, bad.body["error"]["reason"]) == (400, "Validation Failed: 1: [chunking_settings] Invalid value "
                                                         "[5.0]. [max_chunk_size] must be a greater than or equal to [10.0];")
    body["chunking_settings"] = {"strategy": "word", "max_chunk_size": 10, "overlap": 5}
    assert ok(engine.request("PUT", "_inference/text_embedding/c1", body))["chunking_settings"] == {
        "strategy": "word", "max_chunk_size": 10, "overlap": 5}
    text = " ".join(f"w{i}" for i in range(22))
    chunks = preview_chunks(text, {"strategy": "word", "max_chunk_size": 10, "overlap": 5})
    assert [c["text"].split()[0] for c in chunks] == ["w0", "w5", "w10", "w15"]
    assert all(len(c["text"].split()) <= 10 for c in chunks) and chunks[-1]["text"].endswith("w21")
    sentences = "First one here. Second sentence is here. Third."
    assert [c["text"] for c in preview_chunks(sentences, {"strategy": "none"})] == [sentences]
    default = preview_chunks(sentences)
    assert default == [{"text": sentences, "start": 0, "end": len(sentences)}]
    assert [c["text"] for c in preview_chunks(" ".join(["Word word word word word."] * 6),
            {"strategy": "sentence", "max_chunk_size": 20, "sentence_overlap": 1})] == [
        "Word word word word word. " * 4,  # a sentence chunk ends where the next sentence starts
        "Word word word word word. " * 2 + "Word word word word word."]


def test_request_validation(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/v", ali_embeddings(f"{model_server.url}/ali-embeddings")))
    assert engine.request("POST", "_inference/v", {}).body["error"]["reason"] == (
        "Validation Failed: 1: Field [input] cannot be null;")
    assert engine.request("POST", "_inference/v", {"input": []}).status == 400
    assert engine.request("POST", "_inference/v", {"input": [1]}).status == 400
    assert engine.request("POST", "_inference/v", {"input": "a", "bogus": 1}).status == 400
    unknown = engine.request("PUT", "_inference/text_embedding/x", {"service": "nope", "service_settings": {}})
    assert unknown.status == 400 and unknown.body["error"]["reason"] == "Unknown service [nope]"
    bad_template = ali_embeddings("http://127.0.0.1:1", request='{"input": ${input}, "m": ${missing}}')
    err = engine.request("PUT", "_inference/text_embedding/x", bad_template)
    assert err.status == 400
    assert err.body["error"]["type"] == "validation_exception"  # ES: the PUT's model configuration check
    assert err.body["error"]["reason"] == (
        "Validation Failed: 1: Failed to validate model configuration: Found placeholder [${missing}] in field "
        "[request] after replacement call, please check that all templates have a corresponding field definition.;")


def test_chunked_inference_follows_the_endpoint_chunking(engine, model_server):
    from es_infer_nb.services.runner import infer_chunked

    body = ali_embeddings(f"{model_server.url}/ali-embeddings")
    body["chunking_settings"] = {"strategy": "word", "max_chunk_size": 10, "overlap": 1}
    ok(engine.request("PUT", "_inference/text_embedding/chunky", body))
    long_text = " ".join(f"w{i}" for i in range(15))
    out = infer_chunked(engine, "chunky", [long_text, "short"])
    # WordBoundaryChunker: the second window starts at the boundary after w8 (its separator with it)
    assert [c["text"] for c in out[0]] == [" ".join(f"w{i}" for i in range(10)),
                                          " " + " ".join(f"w{i}" for i in range(9, 15))]
    assert out[0][1]["embedding"] == vector(out[0][1]["text"])
    assert out[1] == [{"text": "short", "start": 0, "end": 5, "embedding": vector("short")}]


def test_update_keeps_secrets_and_changes_settings(engine, model_server):
    ok(engine.request("PUT", "_inference/text_embedding/upd", ali_embeddings(f"{model_server.url}/ali-embeddings")))
    updated = ok(engine.request("PUT", "_inference/text_embedding/upd/_update",
                                {"service_settings": {"batch_size": 3}, "task_settings": {"parameters": {"m": "x"}}}))
    assert updated["service_settings"]["batch_size"] == 3 and updated["task_settings"] == {"parameters": {"m": "x"}}
    ok(engine.request("POST", "_inference/upd", {"input": ["z"]}))
    assert model_server.received[-1].headers["Authorization"] == "Bearer ali-secret-XYZ"


def test_custom_task_and_secret_parameters_as_es_reads_them(engine, model_server):
    """CustomTaskSettingsTests / CustomSecretSettingsTests: null values are dropped, no [parameters] is
    written when there are none; AbstractInferenceServiceTests: an unknown task_settings key is refused
    (its name only: a misplaced value may be a secret)."""
    settings = {"url": f"{model_server.url}/ali-embeddings", "secret_parameters": {"k": "s3cr3t-token", "gone": None},
                "request": '{"input": ${input}, "key": "${k}"}',
                "response": {"json_parser": {"text_embeddings": "$.result.embeddings[*].embedding"}}}
    made = ok(engine.request("PUT", "_inference/text_embedding/nulls", {
        "service": "custom", "service_settings": settings, "task_settings": {"parameters": {"value": "abc", "n": None}}}))
    assert made["task_settings"] == {"parameters": {"value": "abc"}}
    empty = ok(engine.request("PUT", "_inference/text_embedding/empty", {
        "service": "custom", "service_settings": settings, "task_settings": {"parameters": {}}}))
    assert "task_settings" not in empty  # empty settings are not shown (ModelConfigurations)
    extra = engine.request("PUT", "_inference/text_embedding/extra", {
        "service": "custom", "service_settings": settings,
        "task_settings": {"parameters": {"test_key": "test_value"}, "extra_key": "secret-looking-value"}})
    assert extra.status == 400 and extra.body["error"]["type"] == "status_exception"
    reason = extra.body["error"]["reason"]
    assert reason == "Model configuration contains settings [extra_key] unknown to the [custom] service"
    assert "secret-looking-value" not in reason
