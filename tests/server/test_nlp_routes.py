"""NLP model APIs through the official client: deployments, definition parts, vocabulary, _inference.

Each test first checks the engine's routing table for its route (without running it: resolving an
unknown route raises ES's ``no handler found`` 400, a known path with the wrong method a 405) and
fails when it is missing, then drives it for real through the client, the way eland does.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path

import pytest
from elasticsearch import NotFoundError

from es_infer_nb import Engine
from es_infer_nb.models.nlp import EMBEDDED_MODEL_ID

PART_SIZE = 1024 * 1024  # eland's DEFAULT_CHUNK_SIZE is 4 MiB; the issue asks for 1 MiB parts


def has_route(engine: Engine, method: str, path: str) -> bool:
    import es_infer_nb.api  # noqa: F401  (registers every route)
    from es_infer_nb.api.routing import resolve
    from es_infer_nb.errors import ApiError

    try:
        resolve(method, "/" + path)
    except ApiError:
        return False
    return True


def need(engine: Engine, method: str, path: str) -> None:
    assert has_route(engine, method, path), f"the engine has no route {method} {path}"


def test_deploy_infer_stop_the_embedded_model(engine, es):
    need(engine, "POST", f"_ml/trained_models/{EMBEDDED_MODEL_ID}/deployment/_start")
    started = es.options(request_timeout=120).ml.start_trained_model_deployment(
        model_id=EMBEDDED_MODEL_ID, wait_for="started", timeout="60s", queue_capacity=64
    )
    assert started["assignment"]["assignment_state"] == "started"
    texts = ["The quick brown fox", "Stock markets fell sharply"]
    res = es.ml.infer_trained_model(model_id=EMBEDDED_MODEL_ID, docs=[{"text_field": t} for t in texts], timeout="30s")
    vectors = [r["predicted_value"] for r in res["inference_results"]]
    assert [len(v) for v in vectors] == [384, 384]
    norm = math.sqrt(sum(x * x for x in vectors[0]))
    assert abs(norm - 1.0) < 1e-3
    stats = es.ml.get_trained_models_stats(model_id=EMBEDDED_MODEL_ID)["trained_model_stats"][0]
    assert stats["deployment_stats"]["state"] == "started"
    assert es.ml.stop_trained_model_deployment(model_id=EMBEDDED_MODEL_ID)["stopped"] is True
    with pytest.raises(NotFoundError):
        es.ml.stop_trained_model_deployment(model_id="no-such-deployment", allow_no_match=False)


def _tiny_bert(folder: Path):
    """A tiny random BERT traced with torch.jit.trace (mean pooled), its vocabulary and tokenizer."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    words = "the quick brown fox jumps over lazy dog stock markets fell sharply hello world".split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *(f"tok{i}" for i in range(4000))]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=256, max_position_embeddings=128)
    bert = BertModel(config).eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids, position_ids):  # type: ignore[no-untyped-def]
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            position_ids=position_ids)[0]
            mask = attention_mask.unsqueeze(-1).to(out.dtype)
            return (out * mask).sum(1) / mask.sum(1)

    enc = tokenizer(["hello world", "the quick brown fox"], padding=True, return_tensors="pt")
    positions = torch.arange(enc["input_ids"].shape[1]).expand_as(enc["input_ids"])
    example = (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], positions)
    with torch.no_grad():
        traced = torch.jit.trace(MeanPooled().eval(), example)
    path = folder / "traced_pytorch_model.pt"
    torch.jit.save(traced, str(path))
    return path, vocab, tokenizer, traced


def test_pytorch_upload_in_parts_the_eland_way(engine, es, tmp_path):
    import torch

    model_id = "tiny-bert-embedder"
    need(engine, "PUT", f"_ml/trained_models/{model_id}/definition/0")
    need(engine, "PUT", f"_ml/trained_models/{model_id}/vocabulary")
    need(engine, "POST", f"_ml/trained_models/{model_id}/deployment/_start")
    path, vocab, tokenizer, traced = _tiny_bert(tmp_path)

    # eland's PyTorchModel.put_config
    es.ml.put_trained_model(
        model_id=model_id,
        model_type="pytorch",
        inference_config={"text_embedding": {"tokenization": {"bert": {"do_lower_case": True, "max_sequence_length": 64}}}},
        input={"field_names": ["text_field"]},
    )
    # eland's put_model: base64 parts with total_definition_length and total_parts
    size = path.stat().st_size
    total_parts = math.ceil(size / PART_SIZE)
    assert total_parts >= 2
    with open(path, "rb") as fh:
        for part in range(total_parts):
            chunk = fh.read(PART_SIZE)
            ack = es.ml.put_trained_model_definition_part(
                model_id=model_id, part=part, total_definition_length=size, total_parts=total_parts,
                definition=base64.b64encode(chunk).decode(),
            )
            assert ack["acknowledged"] is True
    # eland's put_vocab: a raw perform_request with plain JSON headers
    es.perform_request(
        "PUT", f"/_ml/trained_models/{model_id}/vocabulary",
        headers={"accept": "application/json", "content-type": "application/json"},
        body={"vocabulary": vocab},
    )
    stored = es.ml.get_trained_models(model_id=model_id, include="definition_status")["trained_model_configs"][0]
    assert stored["model_type"] == "pytorch"
    # eland's start / infer / stop / delete
    es.options(request_timeout=60).ml.start_trained_model_deployment(model_id=model_id, timeout="60s", wait_for="started")
    texts = ["hello world", "The quick brown fox"]
    res = es.options(request_timeout=60).perform_request(
        "POST", f"/_ml/trained_models/{model_id}/_infer", params={"timeout": "60s"},
        headers={"accept": "application/json", "content-type": "application/json"},
        body={"docs": [{"text_field": t} for t in texts]},
    )
    got = torch.tensor([r["predicted_value"] for r in res["inference_results"]])
    for i, text in enumerate(texts):
        enc = tokenizer([text], return_tensors="pt")
        positions = torch.arange(enc["input_ids"].shape[1]).unsqueeze(0)
        with torch.no_grad():
            want = traced(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], positions)[0]
        assert torch.allclose(got[i], want, atol=1e-4), (text, got[i][:4], want[:4])
    es.ml.stop_trained_model_deployment(model_id=model_id)
    es.options(ignore_status=404).ml.delete_trained_model(model_id=model_id)
    with pytest.raises(NotFoundError):
        es.ml.get_trained_models(model_id=model_id)


def test_inference_endpoints_through_the_client(engine, es):
    need(engine, "PUT", "_inference/text_embedding/probe-endpoint")
    need(engine, "POST", "_inference/text_embedding/probe-endpoint")
    created = es.inference.put(
        task_type="text_embedding",
        inference_id="minilm",
        inference_config={"service": "elasticsearch",
                          "service_settings": {"model_id": EMBEDDED_MODEL_ID, "num_allocations": 1, "num_threads": 1}},
    )
    assert created["inference_id"] == "minilm" and created["task_type"] == "text_embedding"
    listed = es.inference.get(task_type="text_embedding", inference_id="minilm")
    assert listed["endpoints"][0]["service"] == "elasticsearch"
    out = es.inference.inference(task_type="text_embedding", inference_id="minilm", input=["hello world", "bye"])
    embeddings = out["text_embedding"]
    assert len(embeddings) == 2 and len(embeddings[0]["embedding"]) == 384
    assert es.inference.delete(inference_id="minilm")["acknowledged"] is True
    with pytest.raises(NotFoundError):
        es.inference.get(inference_id="minilm")
