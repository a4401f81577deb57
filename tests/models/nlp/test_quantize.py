"""int8 dynamic quantization of the embedded MiniLM (es_infer_nb.models.nlp.quantize): accuracy, not speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from es_infer_nb.models.nlp.embedded import EmbeddedMiniLM, get_model
from es_infer_nb.models.nlp.quantize import Int8Linear, calibration_ids, full_range_safe, int8_options, quantize_mode

CORPUS = Path(__file__).resolve().parents[3] / "benchmarks" / "data" / "corpus.jsonl"

SENTENCES = [
    "Not sure what this does.",
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Stock markets fell sharply on Tuesday after the central bank raised interest rates again.",
    "How do I reset my password if I no longer have access to my email account?",
    "ünïcödé and emoji 🦊 text",
    "short",
    "Elasticsearch runs NLP models on ingest pipelines and in the inference API. " * 6,
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def int8_model() -> EmbeddedMiniLM:
    return EmbeddedMiniLM("cpu", quantize="int8").load()


def corpus_texts(limit: int = 400) -> list[str]:
    if not CORPUS.is_file():
        return []
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines[:: max(1, len(lines) // limit)] if line.strip()]


def test_int8_vectors_stay_close_to_float(int8_model):
    texts = SENTENCES + corpus_texts()
    exact = get_model("cpu").embed(texts)
    approx = int8_model.embed(texts)
    cos = cosines(exact, approx)
    assert cos.min() >= 0.99, (cos.min(), texts[int(cos.argmin())])
    assert cos.mean() >= 0.995
    assert not np.array_equal(exact, approx)  # it really is quantized
    np.testing.assert_allclose(np.linalg.norm(approx, axis=1), 1.0, atol=1e-5)


def test_int8_model_uses_int8_layers_everywhere(int8_model):
    encoder = int8_model._encoder
    kinds = {type(module) for layer in encoder.layers for module in (layer.qkv, layer.attn_out, layer.ffn_in, layer.ffn_out)}
    assert kinds == {Int8Linear}
    layer = encoder.layers[0]
    # 8-bit per-tensor activations where the int8 kernel cannot saturate, 7-bit per-token ones where it can
    full = full_range_safe()
    assert layer.ffn_in.activation == ("tensor" if full else "token") and layer.ffn_in.keep_float_rows
    assert layer.ffn_in.reduce_range is not full
    from es_infer_nb.models.nlp.bert_encoder import onednn_available

    # the float32 [CLS] rows run through oneDNN where it is there (test_int8_linear_matches_float: exact)
    assert (layer.ffn_in._float_packed is not None) is onednn_available()
    assert layer.ffn_in.input_scale is not None  # SmoothQuant calibrated
    assert "int8" in repr(int8_model)


def test_int8_batching_changes_results_little(int8_model):
    # dynamic quantization ranges depend on the batch (padding included), the vectors barely
    alone = np.stack([int8_model.embed([t])[0] for t in SENTENCES[:4]])
    together = int8_model.embed(SENTENCES[:4])
    assert cosines(alone, together).min() >= 0.99


def _outlier_input(rows: int = 24, features: int = 64, seed: int = 0) -> torch.Tensor:
    x = torch.randn(rows, features, generator=torch.Generator().manual_seed(seed))
    x[0] *= 30  # one outlier token, as [CLS] in BERT
    x[:, 5] *= 8  # one outlier channel
    return x


@pytest.mark.parametrize("reduce_range", [True, False])
@pytest.mark.parametrize("activation", ["token", "tensor"])
@pytest.mark.parametrize("keep_float_rows", [False, True])
def test_int8_linear_matches_float(activation, keep_float_rows, reduce_range):
    if not reduce_range and not full_range_safe():
        pytest.skip("this CPU's int8 kernel saturates 8-bit activations (tested in a subprocess below)")
    torch.manual_seed(1)
    linear = nn.Linear(64, 48)
    x = _outlier_input()
    layer = Int8Linear(linear, activation=activation, keep_float_rows=keep_float_rows, reduce_range=reduce_range)
    rows = (slice(None, None, 12), None)
    with torch.inference_mode():
        expected = linear(x)
        got = layer(x.clone(), rows)
        h = torch.randn(24, 48)
        accumulated = layer.accumulate(x.clone(), h.clone(), rows)
    rel = (got - expected).norm() / expected.norm()
    assert rel < (0.02 if activation == "token" else 0.1)
    torch.testing.assert_close(accumulated, h + got, atol=1e-4, rtol=1e-4)
    if keep_float_rows:
        torch.testing.assert_close(got[::12], expected[::12], atol=1e-5, rtol=1e-5)


def test_per_token_scales_beat_per_tensor_on_an_outlier_token():
    torch.manual_seed(2)
    linear = nn.Linear(64, 48)
    x = _outlier_input()
    with torch.inference_mode():
        expected = linear(x)[1:]
        token = Int8Linear(linear, activation="token")(x)[1:]
        tensor = Int8Linear(linear, activation="tensor")(x)[1:]
    assert (token - expected).norm() < 0.5 * (tensor - expected).norm()


def test_smoothquant_scales_keep_the_product():
    torch.manual_seed(3)
    linear = nn.Linear(64, 32)
    x = _outlier_input()
    layer = Int8Linear(linear, input_max=x.abs().amax(dim=0))
    with torch.inference_mode():
        rel = (layer(x) - linear(x)).norm() / linear(x).norm()
    assert rel < 0.02


def test_options_and_errors():
    assert quantize_mode(True) == "int8" and quantize_mode("qint8") == "int8" and quantize_mode(None) is None
    with pytest.raises(ValueError, match="unknown quantize"):
        quantize_mode("int4")
    with pytest.raises(ValueError, match="activation"):
        Int8Linear(nn.Linear(4, 4), activation="channel")
    ids = calibration_ids(30522, 101, 102, texts=4, length=8)
    assert ids.shape == (4, 8) and bool((ids[:, 0] == 101).all()) and bool((ids[:, -1] == 102).all())
    assert torch.equal(ids, calibration_ids(30522, 101, 102, texts=4, length=8))  # seeded

    class Config:
        vocab_size = 30522

    class Tokenizer:
        cls_token_id, sep_token_id = 101, 102

    options = int8_options(Config(), Tokenizer())
    assert options["keep_float_rows"] and options["smooth"] == ("ffn_in",)
    if full_range_safe():
        assert options["activation"] == "tensor" and options["reduce_range"] is False
    else:
        assert options["activation"] == "token" and options["reduce_range"] is True
    assert "calibration" not in int8_options(Config(), None)



def test_full_range_probe_agrees_with_the_kernel():
    # the worst case for a saturating kernel: every activation 255 (u8), every weight 127 (s8)
    weight = torch.quantize_per_tensor(torch.ones(32, 128), 1.0 / 127.0, 0, torch.qint8)
    packed = torch.ops.quantized.linear_prepack(weight, None)
    with torch.inference_mode():
        full = torch.ops.quantized.linear_dynamic(torch.ones(4, 128), packed, False)
    exact = bool(torch.allclose(full, torch.full_like(full, 128.0), rtol=1e-3))
    assert full_range_safe() is exact


def test_saturating_kernel_keeps_7_bit_per_token_scales():
    # fbgemm limited to AVX2 (vpmaddubsw, int16 pair sums): what an AVX2-only CPU runs
    code = (
        "import torch\n"
        "from es_infer_nb.models.nlp.quantize import full_range_safe, int8_options\n"
        "class C: vocab_size = 30522\n"
        "class T: cls_token_id, sep_token_id = 101, 102\n"
        "o = int8_options(C(), T())\n"
        "print(full_range_safe(), o['activation'], o['reduce_range'])\n"
    )
    env = {**os.environ, "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "token", "True"]
