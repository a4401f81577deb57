"""Loopback model services on 127.0.0.1 for the OpenSearch ml-commons tests, and their connectors."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator

from es_infer_nb.services.loopback import LoopbackServer, Received

API_KEY = "sk-loopback-secret-5d1f0c"
DIMS = 8


def vector_of(text: str) -> list[float]:
    """The loopback service's embedding of ``text``: deterministic, distinct per text."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [round((b - 128) / 128.0, 6) for b in digest[:DIMS]]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def embedding_service(req: Received) -> tuple[int, Any]:
    """Answers like the seed's remote model: ``{"data": vector}`` for an ``input``; OpenAI-, Cohere- and
    Bedrock-shaped answers on ``/openai``, ``/cohere``, ``/bedrock``; 401 without the API key."""
    if req.headers.get("Authorization") != f"Bearer {API_KEY}":
        return 401, {"message": "invalid api key"}
    body = req.json()
    if req.path.startswith("/openai"):
        return 200, {"object": "list", "data": [{"index": i, "embedding": vector_of(t)} for i, t in enumerate(body["input"])]}
    if req.path.startswith("/cohere"):
        return 200, {"embeddings": [vector_of(t) for t in body["texts"]]}
    if req.path.startswith("/bedrock"):
        return 200, {"embedding": vector_of(body["inputText"]), "inputTextTokenCount": 3}
    if req.path.startswith("/default"):
        return 200, [vector_of(t) for t in body["input"]]
    if req.path.startswith("/fail"):
        return 503, {"error": "overloaded", "seen": req.headers.get("Authorization")}  # echoes the key
    return 200, {"data": vector_of(_text(body["input"]))}


def start() -> LoopbackServer:
    return LoopbackServer(embedding_service).start()


def connector_body(server: LoopbackServer, path: str = "/embed", **action: Any) -> dict[str, Any]:
    """A connector for the loopback service: the api key as a credential, the text as ``input``."""
    predict = {"action_type": "predict", "method": "POST", "url": "${parameters.endpoint}" + path,
               "headers": {"Authorization": "Bearer ${credential.api_key}"},
               "request_body": '{ "input": "${parameters.input}" }'}
    predict.update(action)
    return {"name": "loopback embeddings", "description": "a loopback embedding service", "version": 1,
            "protocol": "http", "parameters": {"endpoint": server.url},
            "credential": {"api_key": API_KEY}, "actions": [predict]}


def serving(handler: Any) -> Iterator[LoopbackServer]:
    """A loopback service answering with ``handler`` for a test module's fixture, stopped after."""
    server = LoopbackServer(handler).start()
    try:
        yield server
    finally:
        server.stop()


def call(engine: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """``engine.request`` as ``(status, body)``."""
    resp = engine.request(method, path, body)
    return resp.status, resp.body


def ok(engine: Any, method: str, path: str, body: Any = None) -> Any:
    """The body of a request that must answer 200."""
    status, out = call(engine, method, path, body)
    assert status == 200, out
    return out
