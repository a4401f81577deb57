"""Chunked inference against upstream's request chunker and result tests (elastic/elasticsearch
x-pack/plugin/inference .../chunking/EmbeddingRequestChunkerTests; x-pack/plugin/core
.../inference/results/DenseEmbeddingFloatResultsTests, DenseEmbeddingByteResultsTests,
SparseEmbeddingResultsTests ``testEmbeddingMerge``) and the main code they exercise
(``EmbeddingRequestChunker``: batches across inputs, ``MAX_CHUNKS``, a failed batch failing its inputs only)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from es_infer_nb import Engine
from es_infer_nb.errors import ApiError
from es_infer_nb.services.chunking import ChunkingSettings
from es_infer_nb.services.loopback import LoopbackServer, Received
from es_infer_nb.services.runner import _chunk_entries, infer_chunked, merge_embeddings


def put_custom(engine: Engine, url: str, batch_size: int, chunking: dict[str, Any] | None = None) -> None:
    body: dict[str, Any] = {
        "service": "custom",
        "service_settings": {
            "url": url,
            "request": '{"input": ${input}}',
            "batch_size": batch_size,
            "secret_parameters": {},
            "response": {"json_parser": {"text_embeddings": "$.data[*].embedding"}},
        },
    }
    if chunking is not None:
        body["chunking_settings"] = chunking
    put = engine.request("PUT", "_inference/text_embedding/chunker", body)
    assert put.status == 200, put.body


def one_embedding_per_input(req: Received) -> tuple[int, Any]:
    texts = json.loads(req.body)["input"]
    return 200, {"data": [{"embedding": [float(len(t))]} for t in texts]}


def passage(words: int, stem: str) -> str:
    return "".join(f"{stem}{i} " for i in range(words))


# -- batching -----------------------------------------------------------------------------------------------


def test_chunks_of_all_inputs_fill_the_batches_in_order():
    # EmbeddingRequestChunkerTests.testLongInputChunkedOverMultipleBatches (upstream: 20 words a chunk, no
    # overlap; the REST settings take an overlap of 1 at least, which also cuts 105 words into 6 chunks)
    inputs = ["1st small", passage(105, "passage_input"), "2nd small", "3rd small"]
    engine = Engine()
    with LoopbackServer(one_embedding_per_input) as server:
        put_custom(engine, server.url, 5, {"strategy": "word", "max_chunk_size": 20, "overlap": 1})
        out = infer_chunked(engine, "chunker", inputs)
        received = [json.loads(r.body)["input"] for r in server.received]
    # the batches go out concurrently: they arrive in any order, the first one starts with the first input
    sent = sorted(received, key=lambda batch: batch[0] != "1st small")
    assert [len(batch) for batch in sent] == [5, 4]
    assert sent[0][0] == "1st small" and sent[0][1].startswith("passage_input0 ")
    assert sent[1][2:] == ["2nd small", "3rd small"]
    assert [len(chunks) for chunks in out] == [1, 6, 1, 1]  # type: ignore[arg-type]
    assert out[2] == [{"text": "2nd small", "start": 0, "end": 9, "embedding": [9.0]}]


def test_blank_input_is_one_chunk():
    # EmbeddingRequestChunkerTests.testBlankInput_WordChunker / testBlankInput_SentenceChunker: a request of ""
    for chunking in (None, {"strategy": "word", "max_chunk_size": 10, "overlap": 1}):
        engine = Engine()
        with LoopbackServer(one_embedding_per_input) as server:
            put_custom(engine, server.url, 10, chunking)
            out = infer_chunked(engine, "chunker", [""])
            sent = [json.loads(r.body)["input"] for r in server.received]
        assert sent == [[""]]
        assert out == [[{"text": "", "start": 0, "end": 0, "embedding": [0.0]}]]


def test_wrong_number_of_responses_fails_the_batch_inputs_only():
    # EmbeddingRequestChunkerTests.testListenerErrorsWithWrongNumberOfResponses: the message; the inputs of
    # another batch keep their results (DebatchingListener.onFailure sets the error of its inputs only)
    def short_first_batch(req: Received) -> tuple[int, Any]:
        texts = json.loads(req.body)["input"]
        answered = texts[:2] if len(texts) == 3 else texts
        return 200, {"data": [{"embedding": [2.0]} for _ in answered]}

    engine = Engine()
    with LoopbackServer(short_first_batch) as server:
        put_custom(engine, server.url, 3, {"strategy": "none"})
        out = infer_chunked(engine, "chunker", ["1st small", "2nd small", "3rd small", "4th"])
    for failed in out[:3]:
        assert isinstance(failed, ApiError)
        assert (failed.type, failed.status) == ("status_exception", 500)
        assert failed.reason == "Error the number of embedding responses [2] does not equal the number of requests [3]"
    assert out[3] == [{"text": "4th", "start": 0, "end": 3, "embedding": [2.0]}]


# -- MAX_CHUNKS -----------------------------------------------------------------------------------------------


def very_long_input(results: list[dict[str, Any]], key: str) -> tuple[str, list[dict[str, Any]]]:
    """200000 words cut into 10000 chunks of 20 words (no overlap), each with its result."""
    text = passage(200000, "word")
    spans = ChunkingSettings("word", 20, 0, None).chunks(text)
    assert len(spans) == 10000
    return text, _chunk_entries(text, spans, results, key)


def weights() -> list[np.float32]:
    # the long input's chunks get 2/16384 ... 10001/16384 (the first small input took 1/16384)
    return [np.float32(k) / np.float32(16384) for k in range(2, 10002)]


def test_very_long_input_float_chunks_are_averaged_into_512():
    # EmbeddingRequestChunkerTests.testVeryLongInput_Float
    _, chunks = very_long_input([{"embedding": [float(w)]} for w in weights()], "text_embedding")
    assert len(chunks) == 512
    assert chunks[0]["text"].startswith("word0 word1 ") and chunks[0]["text"].endswith(" word398 word399")
    assert chunks[0]["embedding"] == [float(np.float32(2 + 21) / np.float32(2 * 16384))]
    assert chunks[511]["text"].startswith(" word199620 word199621 ")
    assert chunks[511]["text"].endswith(" word199998 word199999")
    assert chunks[511]["embedding"] == [float(np.float32(9983 + 10001) / np.float32(2 * 16384))]


def test_very_long_input_byte_chunks_are_averaged_and_rounded():
    # EmbeddingRequestChunkerTests.testVeryLongInput_Byte: weights 2 .. 10001 as bytes (overflowing)
    results = [{"embedding": [(k + 128) % 256 - 128]} for k in range(2, 10002)]
    _, chunks = very_long_input(results, "text_embedding_bytes")
    assert len(chunks) == 512
    assert chunks[0]["embedding"] == [12] and chunks[511]["embedding"] == [8]


def test_very_long_input_sparse_chunks_keep_the_highest_weight():
    # EmbeddingRequestChunkerTests.testVeryLongInput_Sparse
    results = [{"is_truncated": False, "embedding": {"word": float(w)}} for w in weights()]
    _, chunks = very_long_input(results, "sparse_embedding")
    assert len(chunks) == 512
    assert chunks[0]["embedding"] == {"word": float(np.float32(21) / np.float32(16384))}
    assert chunks[511]["embedding"] == {"word": float(np.float32(10001) / np.float32(16384))}
    assert chunks[0]["is_truncated"] is False


# -- Embedding.merge ------------------------------------------------------------------------------------------


def test_float_embedding_merge():
    # DenseEmbeddingFloatResultsTests.testEmbeddingMerge: a mean over all merged embeddings
    vectors = [[0.1, 0.2, 0.3, 0.4], [0.0, 0.4, 0.1, 1.0], [0.2, 0.9, 0.8, 0.1]]
    two = merge_embeddings("text_embedding", [{"embedding": v} for v in vectors[:2]])
    three = merge_embeddings("text_embedding", [{"embedding": v} for v in vectors])
    assert two["embedding"] == np.asarray([0.05, 0.3, 0.2, 0.7], dtype=np.float32).tolist()
    assert three["embedding"] == np.asarray([0.1, 0.5, 0.4, 0.5], dtype=np.float32).tolist()


def test_byte_embedding_merge():
    # DenseEmbeddingByteResultsTests.testEmbeddingMerge: the integer sum, rounded half up
    vectors = [[1, 1, -128], [1, 0, 127], [0, 0, 100]]
    assert merge_embeddings("text_embedding_bytes", [{"embedding": v} for v in vectors[:2]]) == {"embedding": [1, 1, 0]}
    assert merge_embeddings("text_embedding_bytes", [{"embedding": v} for v in vectors]) == {"embedding": [1, 0, 33]}
    assert merge_embeddings("text_embedding_bits", [{"embedding": v} for v in vectors]) == {"embedding": [1, 0, 33]}


def test_sparse_embedding_merge():
    # SparseEmbeddingResultsTests.testEmbeddingMerge: by weight, each token once, truncated if either was
    first = {"is_truncated": True, "embedding": {"this": 1.0, "is": 0.8, "the": 0.6, "first": 0.4, "embedding": 0.2}}
    second = {"is_truncated": False, "embedding": {"this": 0.95, "is": 0.85, "another": 0.65, "embedding": 0.15}}
    merged = merge_embeddings("sparse_embedding", [first, second])
    assert merged["is_truncated"] is True
    assert list(merged["embedding"].items()) == [
        ("this", 1.0),
        ("is", 0.85),
        ("another", 0.65),
        ("the", 0.6),
        ("first", 0.4),
        ("embedding", 0.2),
    ]


# -- completion answers ---------------------------------------------------------------------------------------


def test_completion_answers_every_result_of_the_first_input():
    # CompletionParameters: the request carries the first input alone; CompletionResponseParser gives every
    # result the path finds, and ChatCompletionResults writes them all
    def two_choices(req: Received) -> tuple[int, Any]:
        text = json.loads(req.body)["input"]
        return 200, {"choices": [{"message": {"content": f"{text}-1"}}, {"message": {"content": f"{text}-2"}}]}

    engine = Engine()
    with LoopbackServer(two_choices) as server:
        settings = {
            "url": server.url,
            "request": '{"input": ${input}}',
            "secret_parameters": {},
            "response": {"json_parser": {"completion_result": "$.choices[*].message.content"}},
        }
        put = engine.request("PUT", "_inference/completion/chat", {"service": "custom", "service_settings": settings})
        assert put.status == 200, put.body
        one = engine.request("POST", "_inference/completion/chat", {"input": "a"})
        two = engine.request("POST", "_inference/completion/chat", {"input": ["a", "b"]})
    assert one.body == {"completion": [{"result": "a-1"}, {"result": "a-2"}]}
    assert two.body == {"completion": [{"result": "a-1"}, {"result": "a-2"}]}
