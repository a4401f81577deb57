"""``_infer`` and the ``inference`` processor on pytorch models (spec §3.2, §3.3, §5), on the bundled
all-MiniLM-L6-v2 (real vectors)."""

from __future__ import annotations

import numpy as np
import pytest

from es_infer_nb.models.nlp.embedded import get_model

EMBEDDED = "sentence-transformers__all-minilm-l6-v2"


@pytest.fixture(scope="module")
def vec():
    model = get_model("cpu")
    return lambda text: model.embed([text])[0]


def infer(engine, path, body):
    r = engine.request("POST", f"_ml/trained_models/{path}", body)
    assert r.status == 200, r.body
    return r.body["inference_results"]


def test_infer_docs_input_and_deprecated_route(engine, vec):
    (a,) = infer(engine, f"{EMBEDDED}/_infer", {"docs": [{"text_field": "hello there"}]})
    np.testing.assert_allclose(a["predicted_value"], vec("hello there"), atol=1e-6)
    (b,) = infer(engine, f"{EMBEDDED}/_infer", {"input": "hello there"})
    (c,) = infer(engine, f"{EMBEDDED}/deployment/_infer", {"docs": [{"text_field": "hello there"}]})
    assert a == b == c


def test_results_field_update_and_truncation(engine):
    (r,) = infer(engine, f"{EMBEDDED}/_infer", {"docs": [{"text_field": "short"}],
                                               "inference_config": {"text_embedding": {"results_field": "vec"}}})
    assert list(r) == ["vec"]
    (long,) = infer(engine, f"{EMBEDDED}/_infer", {"docs": [{"text_field": "word " * 400}]})
    assert list(long) == ["is_truncated", "predicted_value"] and long["is_truncated"] is True


def test_failed_documents_do_not_drop_the_others(engine, vec):
    out = infer(engine, f"{EMBEDDED}/_infer", {"docs": [{"text_field": ["a"]}, {}, {"text_field": "ok"}]})
    assert out[0] == {"error": "Input value [['a']] for field [text_field] must be a string"}
    assert out[1] == {"error": "Input field [text_field] does not exist in the source document"}
    np.testing.assert_allclose(out[2]["predicted_value"], vec("ok"), atol=1e-6)


def test_wrong_update_type_is_an_error(engine):
    r = engine.request("POST", f"_ml/trained_models/{EMBEDDED}/_infer",
                       {"docs": [{"text_field": "x"}], "inference_config": {"ner": {}}})
    assert r.status == 403 and r.body["error"]["reason"] == (  # TrainedModelDeploymentTask.infer
        f"Trained model [{EMBEDDED}] is configured for task [text_embedding] but called with task [ner]")


def test_pipeline_target_field_style(engine, vec):
    engine.request("PUT", "_ingest/pipeline/emb", {"processors": [
        {"inference": {"model_id": EMBEDDED, "field_map": {"body": "text_field"}, "tag": "e"}}]})
    r = engine.request("POST", "_ingest/pipeline/emb/_simulate", {"docs": [
        {"_source": {"body": "a body"}}, {"_source": {"body": 12}}]})
    ok, bad = r.body["docs"]
    written = ok["doc"]["_source"]["ml"]["inference"]["e"]
    assert written["model_id"] == EMBEDDED
    np.testing.assert_allclose(written["predicted_value"], vec("a body"), atol=1e-6)
    assert bad["error"]["reason"] == "Input value [12] for field [text_field] must be a string"
    stats = engine.request("GET", f"_ml/trained_models/{EMBEDDED}/_stats").body["trained_model_stats"][0]
    assert stats["pipeline_count"] == 1 and stats["deployment_stats"]["inference_count"] == 2


def test_pipeline_input_output_style(engine, vec):
    pipeline = {"processors": [{"inference": {"model_id": EMBEDDED, "ignore_missing": True, "input_output": [
        {"input_field": "title", "output_field": "title_vec"},
        {"input_field": "body", "output_field": "ml.body_vec"}]}}]}
    r = engine.request("POST", "_ingest/pipeline/_simulate", {"pipeline": pipeline, "docs": [
        {"_source": {"title": "a title", "body": "a body"}},
        {"_source": {"title": "only a title"}},
        {"_source": {"body": "first input missing: nothing is inferred"}},
        {"_source": {"title": 5, "body": "x"}}]})
    d0, d1, d2, d3 = (d.get("doc", d) for d in r.body["docs"])
    src = d0["_source"]
    assert src["model_id"] == EMBEDDED and "model_id" not in src["ml"]
    np.testing.assert_allclose(src["title_vec"], vec("a title"), atol=1e-6)
    np.testing.assert_allclose(src["ml"]["body_vec"], vec("a body"), atol=1e-6)
    np.testing.assert_allclose(d1["_source"]["ml"]["body_vec"], vec(""), atol=1e-6)  # missing input sent as ""
    assert d2["_source"] == {"body": "first input missing: nothing is inferred"}
    assert d3["error"]["reason"] == "input field [title] cannot be processed because it is not a text field"


def test_input_output_missing_without_ignore_missing(engine):
    pipeline = {"processors": [{"inference": {"model_id": EMBEDDED, "input_output": {
        "input_field": "title", "output_field": "v"}}}]}
    r = engine.request("POST", "_ingest/pipeline/_simulate", {"pipeline": pipeline, "docs": [{"_source": {}}]})
    assert r.body["docs"][0]["error"]["reason"] == "field [title] not present as part of path [title]"


def test_input_output_on_a_tree_model_is_refused(engine):
    engine.request("PUT", "_ml/trained_models/tree", {
        "input": {"field_names": ["x"]}, "inference_config": {"regression": {}},
        "definition": {"trained_model": {"tree": {"feature_names": ["x"], "tree_structure": [
            {"node_index": 0, "leaf_value": 1.0}]}}}})
    r = engine.request("POST", "_ingest/pipeline/_simulate", {"pipeline": {"processors": [{"inference": {
        "model_id": "tree", "input_output": {"input_field": "x", "output_field": "y"}}}]},
        "docs": [{"_source": {"x": "a"}}]})
    assert "[input_output] is only supported for NLP models" in r.body["docs"][0]["error"]["reason"]


def test_truncate_none_update_fails_only_the_long_document(engine):
    out = infer(engine, f"{EMBEDDED}/_infer", {
        "docs": [{"text_field": "word " * 400}, {"text_field": "short"}],
        "inference_config": {"text_embedding": {"tokenization": {"bert": {"truncate": "none"}}}}})
    assert out[0] == {"error": "Input too large. The tokenized input length [402] exceeds the maximum sequence "
                               "length [256]"}
    assert len(out[1]["predicted_value"]) == 384


# -- user models: tiny random-weight transformers built by the tests (tests/models/nlp/tiny_models.py) ------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from models.nlp.tiny_models import build

    root = tmp_path_factory.mktemp("tiny_deploy")
    return {kind: build(root / kind, kind, seed=i) for i, kind in enumerate(("base", "token"))}


def put_local(engine, model_id, folder, inference_config):
    """A pytorch model whose files are a local folder, stored as the Hugging Face importer stores it."""
    from es_infer_nb.models.nlp.model import LOCAL_MODEL_KEY

    r = engine.request("PUT", f"_ml/trained_models/{model_id}", {
        "model_type": "pytorch", "inference_config": inference_config, "model_size_bytes": 1000,
        "input": {"field_names": ["text_field"]}})
    assert r.status == 200, r.body
    engine.models.put(model_id, {**engine.models.config(model_id), LOCAL_MODEL_KEY: {"path": str(folder)}})


def test_user_model_through_its_deployment(engine, tiny, monkeypatch):
    from es_infer_nb.models.nlp.model import NlpModel

    put_local(engine, "tiny-emb", tiny["base"], {"text_embedding": {"tokenization": {"bert": {}}}})
    status = engine.request("GET", "_ml/trained_models/tiny-emb", params={"include": "definition_status"})
    assert status.body["trained_model_configs"][0]["fully_defined"] is True
    docs = {"docs": [{"text_field": "the capital of france is paris"}, {"text_field": "my little red car"}]}
    assert engine.request("POST", "_ml/trained_models/tiny-emb/_infer", docs).status == 409
    assert engine.request("POST", "_ml/trained_models/tiny-emb/deployment/_start",
                          params={"cache_size": "1mb"}).status == 200
    calls: list[int] = []
    real = NlpModel.infer

    def counting(self, batch, update=None, *, field=None, progress=None):
        calls.append(len(batch))
        return real(self, batch, update, field=field, progress=progress)

    monkeypatch.setattr(NlpModel, "infer", counting)
    first = infer(engine, "tiny-emb/_infer", docs)
    direct = NlpModel("tiny-emb", engine.models.config("tiny-emb"), "cpu")
    assert first == real(direct, docs["docs"], field="text_field").to_docs()
    assert calls == [2]
    assert infer(engine, "tiny-emb/_infer", docs) == first and calls == [2]  # cache hits skip the model
    node = engine.request("GET", "_ml/trained_models/tiny-emb/_stats").body[
        "trained_model_stats"][0]["deployment_stats"]["nodes"][0]
    assert node["inference_count"] == 4 and node["inference_cache_hit_count"] == 2


def test_user_ner_model_in_a_pipeline_and_a_frame(engine, tiny):
    import pandas as pd

    import es_infer_nb  # noqa: F401

    put_local(engine, "tiny-ner", tiny["token"], {"ner": {
        "classification_labels": ["O", "B_PER", "I_PER", "B_LOC", "I_LOC", "B_ORG", "I_ORG"],
        "tokenization": {"bert": {"do_lower_case": True}}}})
    engine.request("POST", "_ml/trained_models/tiny-ner/deployment/_start")
    r = engine.request("POST", "_ingest/pipeline/_simulate", {
        "pipeline": {"processors": [{"inference": {"model_id": "tiny-ner"}}]},
        "docs": [{"_source": {"text_field": "ana lives in new york"}}, {"_source": {"text_field": None}}]})
    ok, bad = r.body["docs"]
    written = ok["doc"]["_source"]["ml"]["inference"]
    assert written["model_id"] == "tiny-ner" and isinstance(written["predicted_value"], str)
    assert "entities" in written
    assert bad["error"]["reason"] == "Input field [text_field] does not exist in the source document"
    out = pd.Series(["ana lives in new york", 7]).infer.run("tiny-ner", engine=engine)
    assert out.loc[0, "ml.inference.predicted_value"] == written["predicted_value"]
    assert out.loc[1, "ml.inference.error"] == "Input value [7] for field [text_field] must be a string"


def test_torchscript_uploaded_in_parts_runs_like_the_local_folder(engine, tiny):
    """eland's upload: a traced module in base64 parts + the vocabulary; same vectors as the folder."""
    import base64
    import io

    import torch
    from transformers import BertModel

    from models.nlp.tiny_models import VOCAB

    class MeanPooled(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids, position_ids):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                               position_ids=position_ids)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1)

    bert = BertModel.from_pretrained(str(tiny["base"])).eval()
    example = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    with torch.no_grad():
        traced = torch.jit.trace(MeanPooled(bert).eval(), (example, (example > 0).long(), torch.zeros_like(example),
                                                           torch.arange(4).expand_as(example)))
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    raw = buf.getvalue()
    config = {"text_embedding": {"tokenization": {"bert": {"do_lower_case": True}}}}
    engine.request("PUT", "_ml/trained_models/ts-emb", {"model_type": "pytorch", "inference_config": config,
                                                        "input": {"field_names": ["text_field"]}})
    half = len(raw) // 2
    for part, chunk in enumerate((raw[:half], raw[half:])):
        r = engine.request("PUT", f"_ml/trained_models/ts-emb/definition/{part}", {
            "definition": base64.b64encode(chunk).decode(), "total_definition_length": len(raw), "total_parts": 2})
        assert r.status == 200, r.body
    engine.request("PUT", "_ml/trained_models/ts-emb/vocabulary", {"vocabulary": VOCAB})
    r = engine.request("POST", "_ml/trained_models/ts-emb/deployment/_start")
    assert r.status == 200, r.body
    assert r.body["assignment"]["task_parameters"]["model_bytes"] == len(raw)
    docs = {"docs": [{"text_field": "the capital of france is paris"}, {"text_field": "my little red car"}]}
    uploaded = infer(engine, "ts-emb/_infer", docs)
    put_local(engine, "folder-emb", tiny["base"], config)
    engine.request("POST", "_ml/trained_models/folder-emb/deployment/_start")
    local = infer(engine, "folder-emb/_infer", docs)
    for a, b in zip(uploaded, local):
        np.testing.assert_allclose(a["predicted_value"], b["predicted_value"], atol=1e-5)


def test_start_without_vocabulary_or_with_a_bad_definition_fails(engine):
    engine.request("PUT", "_ml/trained_models/bad", {"model_type": "pytorch", "inference_config": {"pass_through": {}}})
    engine.request("PUT", "_ml/trained_models/bad/definition/0",
                   {"definition": "bm90IGEgbW9kZWw=", "total_definition_length": 11, "total_parts": 1})
    r = engine.request("POST", "_ml/trained_models/bad/deployment/_start")
    assert r.status == 500 and "has no vocabulary" in r.body["error"]["reason"]
    engine.request("PUT", "_ml/trained_models/bad/vocabulary",
                   {"vocabulary": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "word"]})
    r = engine.request("POST", "_ml/trained_models/bad/deployment/_start")
    assert r.status == 500 and r.body["error"]["reason"].startswith(
        "Could not start trained model deployment, the following nodes failed with errors [{")
    assert "not a TorchScript module" in r.body["error"]["reason"]


def test_pytorch_model_without_input_reads_the_input_field(engine):
    """TrainedModelType.PYTORCH's default input is [input] (TrainedModelConfig.handleDefaultInput)."""
    r = engine.request("PUT", "_ml/trained_models/no-input", {
        "model_type": "pytorch", "inference_config": {"pass_through": {}}})
    assert r.status == 200, r.body
    assert r.body["input"] == {"field_names": ["input"]}
    got = engine.request("GET", "_ml/trained_models/no-input").body["trained_model_configs"][0]
    assert got["input"] == {"field_names": ["input"]}
