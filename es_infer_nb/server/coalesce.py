"""Concurrent ``_infer`` calls on one model, answered by one engine call (a full batch).

Many clients each sending a few documents would make the model run many small batches, one
after the other (the engine serves one request at a time). :class:`InferCoalescer` puts an
:class:`~.batcher.InferenceBatcher` in front of ``POST _ml/trained_models/<id>/_infer``:
calls with the same path, query and ``inference_config`` that arrive while the model is busy
(or within a short gathering window) become one ``Engine.request`` with all their documents,
and each caller gets exactly its own ``inference_results``.

Everything still goes through ``Engine.request``, so answers, stats and errors are the
engine's: a merged call that fails is re-run call by call, so an error reaches only the call
that caused it, with the engine's own error answer. Calls with more documents than a batch,
unusual bodies or other routes are not touched.

Off by default (``infer_batch_docs=0``): on the 2-core machine it was measured on, merging did
not raise throughput (the engine runs one request at a time either way); turn it on with
``serve(..., infer_batch_docs=64)`` / ``es-infer serve --infer-batch-docs 64``.
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING, Any

from .batcher import InferenceBatcher

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine, Response

INFER_PATH = re.compile(r"^/?_ml/(?:trained_models|inference)/[^/]+/(?:deployment/)?_infer$")
DEFAULT_MAX_DOCS = 0
DEFAULT_WINDOW_S = 0.002
#: the engine decides about queue capacity; this only bounds memory
QUEUE_LIMIT = 1_000_000


class EngineAnswer(Exception):
    """A merged call's non-200 engine answer, handed back unchanged to the one caller."""

    def __init__(self, response: "Response") -> None:
        super().__init__(f"engine answered {response.status}")
        self.response = response


class InferCoalescer:
    """One batcher per (uri, inference_config) key; ``answer`` returns the engine's Response."""

    def __init__(self, engine: "Engine", *, max_docs: int = DEFAULT_MAX_DOCS, window_s: float = DEFAULT_WINDOW_S) -> None:
        self.engine = engine
        self.max_docs = max_docs
        self.window_s = window_s
        self._batchers: dict[tuple[str, str], InferenceBatcher[dict[str, Any], Any]] = {}
        self._lock = threading.Lock()

    def eligible(self, method: str, path: str, body: Any) -> bool:
        """Only plain ``{"docs": [...], "inference_config"?}`` calls of at most ``max_docs`` documents."""
        if method != "POST" or not INFER_PATH.match(path) or not isinstance(body, dict):
            return False
        if not set(body) <= {"docs", "inference_config"}:
            return False
        docs = body.get("docs")
        return (isinstance(docs, list) and 0 < len(docs) <= self.max_docs
                and all(isinstance(d, dict) for d in docs)
                and isinstance(body.get("inference_config", {}), dict))

    def answer(self, uri: str, body: dict[str, Any]) -> "Response":
        """Queue the call's documents, wait for its results; blocks (run it on a worker thread)."""
        from ..engine import Response

        config = body.get("inference_config")
        batcher = self._batcher(uri, config)
        try:
            results = batcher.submit(body["docs"])
        except EngineAnswer as answer:
            return answer.response
        return Response(200, {"inference_results": results})

    def close(self) -> None:
        with self._lock:
            batchers = list(self._batchers.values())
            self._batchers.clear()
        for b in batchers:
            b.close()

    def _batcher(self, uri: str, config: dict[str, Any] | None) -> InferenceBatcher[dict[str, Any], Any]:
        key = (uri, json.dumps(config, sort_keys=True))
        with self._lock:
            batcher = self._batchers.get(key)
            if batcher is None:
                batcher = InferenceBatcher(
                    lambda docs: self._run(uri, config, docs),
                    max_batch_size=self.max_docs,
                    queue_capacity=QUEUE_LIMIT,
                    window_s=self.window_s,
                    name=f"http _infer {uri}",
                    split_calls=False,
                )
                self._batchers[key] = batcher
            return batcher

    def _run(self, uri: str, config: dict[str, Any] | None, docs: list[dict[str, Any]]) -> list[Any]:
        body: dict[str, Any] = {"docs": docs}
        if config is not None:
            body["inference_config"] = config
        resp = self.engine.request("POST", uri, body)
        if resp.status != 200:
            raise EngineAnswer(resp)
        results = resp.body["inference_results"]
        return list(results)
