"""The network failing on some rows (a torch error inside a batch) fails those rows only, with ES's
``status_exception`` "Error in inference process: [...]"; the other rows of the batch come out as
when they run alone, through ``NlpModel.infer``, ``_infer``, ``df.infer.run`` and the processor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import es_infer_nb  # noqa: F401  (the .infer accessor)
from es_infer_nb import Engine
from es_infer_nb.models.nlp.model import (LOCAL_MODEL_KEY, ModelFailure, NlpModel, isolate_failures,
                                          model_error_reason)
from tiny_models import VOCAB

LONG = " ".join(["word"] * 200)  # 202 tokens: more than the tiny models' 128 position embeddings
SHORT = ["the capital of france is paris", "my little red car", "hi", "ana lives in new york", "the big dog"]
TOO_LONG_REASON = ("Error in inference process: [The size of tensor a (202) must match the size of tensor b (128) "
                   "at non-singleton dimension 1]")


def assert_same(a, b):
    """Equal result objects, numbers to float tolerance (batches pad differently)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, abs=1e-5)
    else:
        assert a == b


def over_long(stored: dict, task: str) -> dict:
    """``stored`` with a max sequence length above the network's limit and no truncation (what an
    import before the cap, or a hand-written config, could hold)."""
    out = dict(stored)
    inner = dict(out["inference_config"][task])
    ((kind, tok),) = inner["tokenization"].items()
    inner["tokenization"] = {kind: {**tok, "max_sequence_length": 386, "truncate": "none"}}
    out["inference_config"] = {task: inner}
    return out


@pytest.mark.parametrize("task", ["text_embedding", "ner", "text_classification", "text_expansion"])
def test_a_row_too_long_for_the_network_fails_alone(nlp_engine, task):
    model_id = task.replace("_", "-")
    stored = nlp_engine.models.config(model_id)
    capped = NlpModel(model_id, stored, "cpu")
    alone = [capped.infer([{"text_field": t}]).to_docs()[0] for t in SHORT]
    model = NlpModel(model_id, over_long(stored, task), "cpu")
    docs = [{"text_field": SHORT[0]}, {"text_field": LONG}] + [{"text_field": t} for t in SHORT[1:]]
    result = model.infer(docs)
    out = result.to_docs()
    assert out[1] == {"error": TOO_LONG_REASON}
    err = result.errors[1]
    assert (err.type, err.status) == ("status_exception", 500)
    assert list(result.error_mask) == [False, True, False, False, False, False]
    for got, expected in zip(out[:1] + out[2:], alone):
        assert_same(got, expected)


def test_the_failing_batch_is_split_down_to_the_rows_the_model_raises_on(nlp_model):
    """A network that raises whenever a batch holds the token ``dog``: split until that row runs alone."""
    model = nlp_model("text_embedding")
    texts = SHORT + ["a dog and a cat", "this example is fun", "the red dog"]
    expected = [model.infer([{"text_field": t}]).to_docs()[0] for t in texts]
    real, dog = model.network, VOCAB.index("dog")
    sizes: list[int] = []

    def network(windows, pad_id):
        sizes.append(len(windows))
        if any(dog in w.token_ids for w in windows):
            raise IndexError("index out of range in self")
        return real(windows, pad_id)

    network.packs_tokens = real.packs_tokens  # type: ignore[attr-defined]  # what the batch planner reads
    model.network = network
    try:
        out = model.infer([{"text_field": t} for t in texts]).to_docs()
    finally:
        model.network = real
    assert sizes[0] == len(texts) and min(sizes) == 1  # one batch first, then halves down to single rows
    for i, text in enumerate(texts):
        if "dog" in text:
            assert out[i] == {"error": "Error in inference process: [index out of range in self]"}
        else:
            assert_same(out[i], expected[i])


def test_isolate_failures_leaves_other_errors_alone():
    import torch

    def run(indices):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.cuda.OutOfMemoryError):  # batching's own split handles it
        isolate_failures(run, [0, 1])
    with pytest.raises(TypeError):  # a bug is not a row's failure
        isolate_failures(lambda indices: [len(None)], [0, 1])
    calls: list[list[int]] = []

    def fails_on_two(indices):
        calls.append(indices)
        if 2 in indices:
            raise RuntimeError("no row 2")
        return [i * 10 for i in indices]

    out = isolate_failures(fails_on_two, [0, 1, 2, 3])
    assert out[:2] == [0, 10] and isinstance(out[2], ModelFailure) and out[3] == 30
    assert out[2].reason == "no row 2"
    assert calls == [[0, 1, 2, 3], [0, 1], [2, 3], [2], [3]]


def test_model_error_reason_has_no_traceback():
    torchscript = RuntimeError(
        "The following operation failed in the TorchScript interpreter.\n"
        "Traceback of TorchScript, serialized code (most recent call last):\n"
        '  File "code/__torch__/transformers/models/bert.py", line 12, in forward\n'
        "    input = torch.embedding(weight, input_ids, -1, False, False)\n"
        "    ~~~~~~~~~~~~~~~ <--- HERE\n"
        "RuntimeError: index out of range in self\n")
    assert model_error_reason(torchscript) == "index out of range in self"
    assert model_error_reason(RuntimeError("shape '[2, 3]' is invalid for input of size 5")) == \
        "shape '[2, 3]' is invalid for input of size 5"
    assert model_error_reason(RuntimeError("")) == "RuntimeError"


# -- the engine's surfaces ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tiny_models):
    """``over``: the tiny embedding model stored with max 386 / truncate none (more than its 128
    positions), deployed; ``ok``: the same files as the importer stores them (capped at 128)."""
    eng = Engine()
    eng.import_hf_model(tiny_models["base"], "text_embedding", "ok")
    config = {"text_embedding": {"tokenization": {"bert": {"do_lower_case": True, "max_sequence_length": 386,
                                                           "truncate": "none"}}}}
    r = eng.request("PUT", "_ml/trained_models/over", {"model_type": "pytorch", "inference_config": config,
                                                        "input": {"field_names": ["text_field"]}})
    assert r.status == 200, r.body
    eng.request("PUT", "_ml/trained_models/over/vocabulary", {"vocabulary": VOCAB}).raise_for_status()
    eng.models.put("over", {**eng.models.config("over"), LOCAL_MODEL_KEY: {"path": str(tiny_models["base"])}})
    for model_id in ("ok", "over"):
        assert eng.request("POST", f"_ml/trained_models/{model_id}/deployment/_start").status == 200
    return eng


def reference(engine, texts):
    r = engine.request("POST", "_ml/trained_models/ok/_infer", {"docs": [{"text_field": t} for t in texts]})
    return [doc["predicted_value"] for doc in r.body["inference_results"]]


def test_infer_api_reports_the_failing_row_and_answers_the_others(engine):
    texts = [SHORT[0], LONG, SHORT[1]]
    r = engine.request("POST", "_ml/trained_models/over/_infer", {"docs": [{"text_field": t} for t in texts]})
    assert r.status == 200, r.body
    first, bad, last = r.body["inference_results"]
    assert bad == {"error": TOO_LONG_REASON}
    ok = reference(engine, [SHORT[0], SHORT[1]])
    np.testing.assert_allclose(first["predicted_value"], ok[0], atol=1e-5)
    np.testing.assert_allclose(last["predicted_value"], ok[1], atol=1e-5)


def test_frame_run_keeps_every_other_row(engine):
    texts = [SHORT[0], LONG, SHORT[1], SHORT[2]]
    out = pd.DataFrame({"text_field": texts}).infer.run("over", engine=engine)
    assert out.loc[1, "ml.inference.error"] == TOO_LONG_REASON
    assert out["ml.inference.error"].isna().tolist() == [True, False, True, True]
    ok = reference(engine, [SHORT[0], SHORT[1], SHORT[2]])
    for row, vector in zip((0, 2, 3), ok):
        np.testing.assert_allclose(np.asarray(out.loc[row, "ml.inference.predicted_value"]), vector, atol=1e-5)


def test_processor_fails_only_the_row_with_es_error_body(engine):
    r = engine.request("POST", "_ingest/pipeline/_simulate", {
        "pipeline": {"processors": [{"inference": {"model_id": "over"}}]},
        "docs": [{"_source": {"text_field": LONG}}, {"_source": {"text_field": SHORT[0]}}]})
    assert r.status == 200, r.body
    bad, good = r.body["docs"]
    assert bad["error"]["root_cause"] == [{"type": "status_exception", "reason": TOO_LONG_REASON}]
    assert (bad["error"]["type"], bad["error"]["reason"]) == ("status_exception", TOO_LONG_REASON)
    assert "Traceback" not in str(bad)
    np.testing.assert_allclose(good["doc"]["_source"]["ml"]["inference"]["predicted_value"],
                               reference(engine, [SHORT[0]])[0], atol=1e-5)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning", "ignore::FutureWarning")
def test_torchscript_upload_fails_the_row_with_the_error_not_the_traceback(engine, tiny_models):
    """A traced module uploaded the eland way raises a TorchScript error carrying a serialized
    traceback: the row's reason is the error's own message, the other row its hidden states."""
    import base64
    import io

    import torch
    from transformers import BertModel

    bert = BertModel.from_pretrained(str(tiny_models["base"])).eval()
    ids = torch.tensor([[2, 5, 6, 3]])
    with torch.no_grad():
        traced = torch.jit.trace(bert, (ids, torch.ones_like(ids), torch.zeros_like(ids), torch.arange(4)[None]),
                                 strict=False)  # its output: a dict, last_hidden_state first
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    raw = base64.b64encode(buf.getvalue()).decode()
    config = {"pass_through": {"tokenization": {"bert": {"do_lower_case": True, "max_sequence_length": 386,
                                                         "truncate": "none"}}}}
    engine.request("PUT", "_ml/trained_models/ts-over", {"model_type": "pytorch", "inference_config": config,
                                                         "input": {"field_names": ["text_field"]}})
    engine.request("PUT", "_ml/trained_models/ts-over/definition/0", {
        "definition": raw, "total_definition_length": len(buf.getvalue()), "total_parts": 1})
    engine.request("PUT", "_ml/trained_models/ts-over/vocabulary", {"vocabulary": VOCAB})
    assert engine.request("POST", "_ml/trained_models/ts-over/deployment/_start").status == 200

    def infer(texts):
        r = engine.request("POST", "_ml/trained_models/ts-over/_infer", {"docs": [{"text_field": t} for t in texts]})
        assert r.status == 200, r.body
        return r.body["inference_results"]

    good, bad = infer([SHORT[0], LONG])
    assert bad == {"error": "Error in inference process: [index out of range in self]"}
    (alone,) = infer([SHORT[0]])
    np.testing.assert_allclose(good["predicted_value"], alone["predicted_value"], atol=1e-5)
