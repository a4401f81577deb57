"""Bad input: every failing document gets its ES error; nothing else in the batch is lost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from es_infer_nb.errors import ApiError

GOOD = {"text_field": "the capital of france is paris"}
BAD_DOCS = [
    ({}, "Input field [text_field] does not exist in the source document"),
    ({"text_field": None}, "Input field [text_field] does not exist in the source document"),
    ({"text_field": 42}, "Input value [42] for field [text_field] must be a string"),
    ({"text_field": 1.5}, "Input value [1.5] for field [text_field] must be a string"),
    ({"text_field": True}, "Input value [true] for field [text_field] must be a string"),
    ({"text_field": ["a", "b"]}, "Input value [[a, b]] for field [text_field] must be a string"),
    ({"text_field": {"x": 1}}, "Input value [{x=1}] for field [text_field] must be a string"),
    ({"other": "paris"}, "Input field [text_field] does not exist in the source document"),
]


def same(a, b) -> bool:
    """Equal results up to float noise (batch padding changes the last bits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, abs=1e-5)
    return a == b


@pytest.mark.parametrize("task", ["text_embedding", "text_classification", "ner", "text_expansion", "pass_through"])
def test_bad_documents_fail_alone(nlp_model, task):
    model = nlp_model(task)
    docs = [GOOD] + [d for d, _ in BAD_DOCS] + [GOOD, {"text_field": ""}]
    result = model.infer(docs)
    out = result.to_docs()
    assert len(out) == len(docs)
    assert same(out[0], out[-2]) and "error" not in out[0]
    for got, (_doc, message) in zip(out[1:-2], BAD_DOCS):
        assert got == {"error": message}
    assert "error" not in out[-1]  # an empty string is valid text ([CLS] [SEP])
    assert result.error_mask.tolist() == [False] + [True] * len(BAD_DOCS) + [False, False]
    assert all(isinstance(e, ApiError) and e.status == 400 for e in result.errors[1:-2])
    alone = model.infer([GOOD]).to_docs()[0]
    assert same(out[0], alone)  # the batch around it changed nothing


def test_very_long_texts_truncate_or_fail_alone(nlp_model):
    long = "the capital of france is paris " * 5000
    model = nlp_model("text_embedding")
    out = model.infer([{"text_field": long}, GOOD]).to_docs()
    assert out[0]["is_truncated"] is True and len(out[0]["predicted_value"]) == 32
    strict = model.infer([{"text_field": long}, GOOD],
                         {"text_embedding": {"tokenization": {"bert": {"truncate": "none"}}}}).to_docs()
    assert strict[0]["error"].startswith("Input too large. The tokenized input length [30002] exceeds the maximum "
                                         "sequence length [128]")
    assert same(strict[1], out[1])


def test_tasks_with_their_own_document_errors(nlp_model):
    fill = nlp_model("fill_mask").infer([{"text_field": "paris"}, {"text_field": "[MASK] is big"}, {"text_field": ""}])
    assert fill.error_mask.tolist() == [True, False, True]
    qa = nlp_model("question_answering").infer([{"text_field": ""}, {"text_field": "ana lives in paris"}],
                                               {"question_answering": {"question": "who"}})
    assert qa.error_mask.tolist() == [True, False]


def test_unknown_labels_and_bad_updates_fail_the_request(nlp_model):
    with pytest.raises(ApiError, match=r"does not match the number in the update \[2\]"):
        nlp_model("text_classification").infer([GOOD], {"text_classification": {"classification_labels": ["a", "b"]}})
    with pytest.raises(ApiError, match=r"classification label \[PERSON\] is not an entity I-O-B tag"):
        nlp_model("ner", classification_labels=["O", "PERSON"])
    with pytest.raises(ApiError, match=r"\[labels\] must not be empty"):  # ZeroShotClassificationConfigUpdate
        nlp_model("zero_shot_classification").infer([GOOD], {"zero_shot_classification": {"labels": []}})
    with pytest.raises(ApiError, match=r"failed to parse field \[num_top_classes\]"):
        nlp_model("text_classification").infer([GOOD], {"text_classification": {"num_top_classes": "many"}})
    relabelled = nlp_model("text_classification").infer(
        [GOOD], {"text_classification": {"classification_labels": ["bad", "meh", "good"]}}).to_docs()[0]
    assert relabelled["predicted_value"] in ("bad", "meh", "good")


def test_columns_keep_every_row_with_arrow_types(nlp_model):
    result = nlp_model("text_embedding").infer([GOOD, {"text_field": 3}, GOOD])
    cols = result.to_columns("ml.inference", pd.Index([10, 11, 12]))
    vec = cols["ml.inference.predicted_value"]
    assert vec.dtype == pd.ArrowDtype(pa.list_(pa.float32(), 32))
    assert vec.isna().tolist() == [False, True, False]
    assert cols["ml.inference.error"].tolist()[1] == "Input value [3] for field [text_field] must be a string"
    assert np.allclose(vec.iloc[0], result.to_docs()[0]["predicted_value"])
    ner = nlp_model("ner").infer([{"text_field": "hi ana from new york"}, {}]).to_columns("out", pd.RangeIndex(2))
    assert isinstance(ner["out.entities"].dtype, pd.ArrowDtype)


def test_rest_infer_reports_failed_documents_in_place(nlp_engine):
    assert nlp_engine.request("POST", "_ml/trained_models/text-embedding/deployment/_start").status in (200, 409)
    answer = nlp_engine.request("POST", "_ml/trained_models/text-embedding/_infer",
                                {"docs": [GOOD, {"text_field": ["x"]}, GOOD]})
    assert answer.status == 200, answer.body
    results = answer.body["inference_results"]
    assert len(results) == 3 and same(results[0], results[2])
    assert results[1] == {"error": "Input value [[x]] for field [text_field] must be a string"}
