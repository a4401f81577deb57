"""Loopback model services for the ``_inference`` tests (one server, routed by path) and helpers.

Formats: Alibaba Cloud OpenSearch (embeddings / sparse / rerank / completion), OpenAI (embeddings,
chat completions), text-embeddings-inference (embed, rerank); and misbehaving services: slow,
failing (500 for inputs containing ``FAIL``), rate-limiting (429 twice per key, then answers),
malformed (not JSON / wrong shape), and one echoing the Authorization header in its error.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from es_infer_nb.services.loopback import Received


def vector(text: str) -> list[float]:
    """A deterministic 3-d embedding of ``text``."""
    return [float(len(text)), float(sum(map(ord, text)) % 97), 1.0]


def score(query: str, doc: str) -> float:
    return float(len(set(query.split()) & set(doc.split()))) + len(doc) / 1000.0


class Router:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, req: Received) -> tuple[int, Any] | tuple[int, Any, dict[str, str]]:
        path = req.path.split("?")[0]
        with self.lock:
            self.calls[path] += 1
            count = self.calls[path]
        try:
            body = req.json()
        except ValueError:
            return 400, {"error": {"message": "the body is not JSON"}}
        if path.startswith("/ratelimited/") and count <= 2:
            return 429, {"error": {"message": "Too many requests"}}, {"Retry-After": "0"}
        texts = body.get("input") or body.get("inputs") or body.get("texts") or []
        if isinstance(texts, str):
            texts = [texts]
        if any("FAIL" in t for t in texts if isinstance(t, str)):
            return 500, {"error": {"message": "model crashed on a FAIL input"}}
        if path.startswith("/slow"):
            time.sleep(1.0)
        kind = path.strip("/").split("/")[-1]
        return 200, getattr(self, "_" + kind.replace("-", "_"))(req, body, texts)

    # -- Alibaba Cloud OpenSearch formats ---------------------------------------------------
    def _ali_embeddings(self, req: Received, body: dict, texts: list[str]) -> Any:
        return {"request_id": "r1", "latency": 2, "usage": {"token_count": 3},
                "result": {"embeddings": [{"index": i, "embedding": vector(t)} for i, t in enumerate(texts)]}}

    def _ali_sparse(self, req: Received, body: dict, texts: list[str]) -> Any:
        return {"request_id": "r2", "latency": 2, "result": {"sparse_embeddings": [
            {"index": i, "embedding": [{"tokenId": len(w), "weight": 0.5 + j} for j, w in enumerate(t.split())]}
            for i, t in enumerate(texts)]}}

    def _ali_rerank(self, req: Received, body: dict, texts: list[str]) -> Any:
        docs = body["docs"]
        ranked = sorted(range(len(docs)), key=lambda i: -score(body["query"], docs[i]))
        return {"request_id": "r3", "latency": 2, "result": {"scores": [
            {"index": i, "score": score(body["query"], docs[i])} for i in ranked[: body.get("top_n") or len(docs)]]}}

    def _ali_completion(self, req: Received, body: dict, texts: list[str]) -> Any:
        return {"request_id": "r4", "result": {"text": f"echo: {body['messages'][0]['content']}"}}

    # -- OpenAI ----------------------------------------------------------------------------
    def _embeddings(self, req: Received, body: dict, texts: list[str]) -> Any:
        if req.headers.get("Authorization") != "Bearer sk-test-123":
            return {"error": "unexpected"}
        data = [{"object": "embedding", "index": i, "embedding": vector(t)} for i, t in enumerate(texts)]
        return {"object": "list", "data": list(reversed(data)), "model": body["model"]}

    def _completions(self, req: Received, body: dict, texts: list[str]) -> Any:
        content = body["messages"][0]["content"]
        return {"id": "c1", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content.upper()}, "finish_reason": "stop"}]}

    # -- text-embeddings-inference ------------------------------------------------------------
    def _embed(self, req: Received, body: dict, texts: list[str]) -> Any:
        return [vector(t) for t in texts]

    def _rerank(self, req: Received, body: dict, texts: list[str]) -> Any:
        out = [{"index": i, "score": score(body["query"], t)} for i, t in enumerate(texts)]
        if body.get("return_text"):
            for e in out:
                e["text"] = texts[e["index"]]
        return sorted(out, key=lambda e: -e["score"])

    # -- misbehaving ---------------------------------------------------------------------------
    def _not_json(self, req: Received, body: dict, texts: list[str]) -> Any:
        return b"<html>oops</html>"

    def _wrong_shape(self, req: Received, body: dict, texts: list[str]) -> Any:
        return {"result": {"embeddings": "nope"}}


def ali_embeddings(url: str, **extra: Any) -> dict[str, Any]:
    """A custom endpoint body in Alibaba Cloud OpenSearch's text-embedding format."""
    settings = {
        "url": url,
        "headers": {"Authorization": "Bearer ${api_key}"},
        "secret_parameters": {"api_key": "ali-secret-XYZ"},
        "request": '{"input": ${input}, "input_type": ${input_type}}',
        "input_type": {"translation": {"ingest": "document", "search": "query"}, "default": "document"},
        "response": {"json_parser": {"text_embeddings": "$.result.embeddings[*].embedding"},
                     "error_parser": {"path": "$.error.message"}},
    }
    settings.update(extra)
    return {"service": "custom", "service_settings": settings}


def ok(resp) -> Any:
    assert resp.status == 200, resp.body
    return resp.body
