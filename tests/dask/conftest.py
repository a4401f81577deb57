"""A two-process ``distributed.LocalCluster`` on 127.0.0.1 shared by the Dask tests of a module, and an
OpenAI-like loopback service behind two ``_inference`` endpoints, and tiny random BERTs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                           dashboard_address=None, worker_dashboard_address=None)
    c = Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _openai_like(req):
    body = req.json()
    if req.path.endswith("/embeddings"):
        data = [{"index": i, "embedding": [float(len(t)), float(sum(map(ord, t)) % 97)]}
                for i, t in enumerate(body["input"])]
        return 200, {"object": "list", "data": data}
    return 200, {"choices": [{"index": 0, "message": {"role": "assistant",
                                                      "content": body["messages"][0]["content"].upper()}}]}


@pytest.fixture(scope="module")
def service():
    from es_infer_nb.services.loopback import LoopbackServer

    with LoopbackServer(_openai_like) as server:
        yield server


@pytest.fixture
def endpoint_engine(service):
    """Makes a fresh engine with the ``text_embedding`` endpoint ``emb-ep`` and the ``completion`` endpoint
    ``chat-ep`` on the loopback service."""
    from es_infer_nb import Engine

    def make() -> Engine:
        engine = Engine()
        for task, inference_id, path in (("text_embedding", "emb-ep", "embeddings"),
                                         ("completion", "chat-ep", "chat/completions")):
            engine.request("PUT", f"_inference/{task}/{inference_id}", {"service": "openai", "service_settings": {
                "api_key": "sk-test", "model_id": "m", "url": f"{service.url}/v1/{path}"}}).raise_for_status()
        return engine

    return make


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """Tiny random BERTs built here (nothing downloaded): ``base`` (embeddings) and ``sequence`` (3 labels)."""
    pytest.importorskip("transformers")
    sys.path.insert(0, str(Path(__file__).parents[1] / "models" / "nlp"))
    from tiny_models import build

    root = tmp_path_factory.mktemp("dask_tiny")
    return {"base": build(root / "base", "base", seed=0), "sequence": build(root / "sequence", "sequence", seed=1)}


@pytest.fixture
def nlp_engine(tiny):
    """Makes a fresh engine with ``emb`` (text_embedding) and ``cls`` (text_classification) imported from
    the tiny BERTs and started."""
    from es_infer_nb import Engine

    def make() -> Engine:
        engine = Engine()
        engine.import_hf_model(tiny["base"], "text_embedding", "emb")
        engine.import_hf_model(tiny["sequence"], "text_classification", "cls")
        for model_id in ("emb", "cls"):
            engine.request("POST", f"_ml/trained_models/{model_id}/deployment/_start").raise_for_status()
        return engine

    return make
