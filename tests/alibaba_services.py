"""A loopback stand-in on 127.0.0.1 for the Alibaba Cloud model services of seed 004, and its answers.

Routes (any method; the method and query string are echoed where a test needs them):

* ``.../text-embedding/<service>``: ``{"input": [..], "input_type": ..}`` -> ``result.embeddings[*]
  {index, embedding}`` (the seed's text_embedding response shape);
* ``.../text-sparse-embedding/<service>``: -> ``result.sparse_embeddings[*] {index, embedding[*]
  {token_id, weight}}`` (token ids as the seed's ``sparse_result`` configuration reads them);
* ``.../ranker/<service>``: ``{"query", "docs"}`` -> ``result.scores[*] {index, score, text}`` in the
  documents' order (as the seed's rerank answer shows them; ``text`` for ``document_text``);
* ``.../text-generation/<service>``: ``{"messages": [..]}`` -> ``result.text``;
* ``.../query-analyze/<service>``: anything -> an answer echoing method, query parameters and body
  (task type ``custom``);
* ``/v3/openapi/deployments/<name>/predict``: the seed's GET example endpoint, ``embeddings[*]
  {index, embedding}``, needs the ``Token`` header as well;
* ``/canned/<name>``: the answer registered with :meth:`AlibabaService.can` (the seed's own response
  examples).

Every route but ``/canned`` answers 401 without ``Authorization: Bearer <API_KEY>`` and 400 for a
body that is not JSON (the body must be a JSON object). Every value is exact in float32.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from es_infer_nb.services.loopback import LoopbackServer, Received

API_KEY = "OS-ali-loopback-key-8c1e2f"
TOKEN = "deployment-token-77a0"
WORKSPACE = "/v3/openapi/workspaces/default"
EMBEDDING = f"{WORKSPACE}/text-embedding/ops-text-embedding-001"
SPARSE = f"{WORKSPACE}/text-sparse-embedding/ops-text-sparse-embedding-001"
RERANK = f"{WORKSPACE}/ranker/ops-bge-reranker-larger"
COMPLETION = f"{WORKSPACE}/text-generation/ops-qwen-turbo"
ANALYZE = f"{WORKSPACE}/query-analyze/ops-query-analyze-001"
DEPLOYMENT = "/v3/openapi/deployments/xxx/predict"
DIMS = 8


def vector_of(text: str, input_type: str = "document") -> list[float]:
    """The service's embedding of ``text`` (another one for ``input_type`` ``query``)."""
    digest = hashlib.sha256(f"{input_type}:{text}".encode("utf-8")).digest()
    return [(b - 128) / 64.0 for b in digest[:DIMS]]


def sparse_of(text: str) -> list[dict[str, Any]]:
    """The service's sparse embedding of ``text``: one ``{token_id, weight}`` per distinct word."""
    words = list(dict.fromkeys(text.lower().split()))
    return [{"token_id": int.from_bytes(hashlib.sha256(w.encode()).digest()[:3], "big"),
             "weight": min(len(w), 16) / 8.0} for w in words]


def score_of(query: str, doc: str) -> float:
    """The ranker's score: shared words count, longer documents a little more."""
    shared = set(query.lower().split()) & set(doc.lower().split())
    return len(shared) * 0.5 + min(len(doc), 64) / 256.0


def _usage(texts: list[str]) -> dict[str, int]:
    return {"token_count": sum(len(t.split()) for t in texts)}


class AlibabaService:
    """The loopback server; ``received`` holds every request it was sent."""

    def __init__(self) -> None:
        self.canned: dict[str, Any] = {}
        self.server = LoopbackServer(self.answer)

    def start(self) -> "AlibabaService":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def received(self) -> list[Received]:
        return self.server.received

    def can(self, name: str, body: Any, status: int = 200) -> str:
        """Answer ``body`` (with ``status``) on ``/canned/<name>``; returns that path."""
        self.canned[name] = (status, body)
        return f"/canned/{name}"

    def answer(self, req: Received) -> tuple[int, Any]:
        split = urlsplit(req.path)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        if path.startswith("/canned/"):
            return self.canned[path.removeprefix("/canned/")]
        if req.headers.get("Authorization") != f"Bearer {API_KEY}":
            return 401, {"request_id": "loopback", "latency": 0, "code": "InvalidApiKey",
                         "message": "The API key is missing or not valid"}
        try:
            body = json.loads(req.body) if req.body else {}
        except ValueError:
            return 400, {"request_id": "loopback", "code": "InvalidParameter", "message": "the body is not JSON"}
        if not isinstance(body, dict):
            return 400, {"request_id": "loopback", "code": "InvalidParameter", "message": "the body is not an object"}
        if path == EMBEDDING:
            texts = body["input"]
            return 200, {"request_id": "B4AB89C8-B135-0000-A6F8-2BAB801A2CE4", "latency": 38, "usage": _usage(texts),
                         "result": {"embeddings": [{"index": i, "embedding": vector_of(t, body["input_type"])}
                                                   for i, t in enumerate(texts)]}}
        if path == DEPLOYMENT:
            if req.headers.get("Token") != TOKEN:
                return 403, {"request_id": "loopback", "code": "Forbidden", "message": "the Token header is wrong"}
            texts = body["input"]
            return 200, {"embeddings": [{"index": i, "embedding": vector_of(t, body["input_type"])}
                                        for i, t in enumerate(texts)]}
        if path == SPARSE:
            texts = body["input"]
            return 200, {"request_id": "75C50B5B-E79E-4930-0000-F48DBB392231", "latency": 22, "usage": _usage(texts),
                         "result": {"sparse_embeddings": [{"index": i, "embedding": sparse_of(t)}
                                                          for i, t in enumerate(texts)]}}
        if path == RERANK:
            docs = body["docs"]
            return 200, {"request_id": "24B004E0-ADEF-0000-879B-F28359BFAD1D", "latency": 19,
                         "usage": {"doc_count": len(docs)},
                         "result": {"scores": [{"index": i, "score": score_of(body["query"], d), "text": d}
                                               for i, d in enumerate(docs)]}}
        if path == COMPLETION:
            prompt = body["messages"][-1]["content"]
            return 200, {"request_id": "450fcb80-f796-0000-8d69-e1e86d29aa9f", "latency": 564.9,
                         "result": {"text": f"answer to: {prompt}"},
                         "usage": {"output_tokens": 3, "input_tokens": len(prompt.split()), "total_tokens": 9}}
        if path == ANALYZE:
            return 200, {"request_id": "loopback-analyze", "latency": 3,
                         "result": {"method": req.method, "query_string": query, "request": body}}
        return 404, {"request_id": "loopback", "code": "NotFound", "message": f"no service at [{path}]"}


def start() -> AlibabaService:
    return AlibabaService().start()
