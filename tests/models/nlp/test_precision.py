"""``precision`` (auto / fp32 / bf16 / fp16 / int8): the resolver per CPU, errors, accuracy of bf16 on the
bench corpus, and the parameter through df.infer.run, import_hf_model, _start / _stats, es-infer embed
and the Dask accessor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from es_infer_nb import ApiError, Engine
from es_infer_nb.cli import main
from es_infer_nb.models.nlp import precision as precision_module
from es_infer_nb.models.nlp import quantize
from es_infer_nb.models.nlp.precision import (PRECISIONS, CpuCapability, amx_int8_supported, avx512_supported,
                                               bf16_supported, check_precision, cpu_capability, resolve_precision,
                                               vnni_int8_supported)
from helpers import vectors

CORPUS = Path(__file__).resolve().parents[3] / "benchmarks" / "data" / "corpus.jsonl"
MINILM = "sentence-transformers__all-minilm-l6-v2"
VECTOR = "ml.inference.predicted_value"

SAPPHIRE_RAPIDS = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile"})
COOPER_LAKE = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})
ICE_LAKE = frozenset({"avx2", "avx512f", "avx512_vnni"})
ZEN_4 = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})
HASWELL = frozenset({"avx2", "fma"})


def simulate(monkeypatch: pytest.MonkeyPatch, flags: frozenset[str], *, isa: str | None = None,
             aten: str = "AVX512") -> None:
    """Replace the capability probe with a CPU of these flags (and ISA caps)."""
    monkeypatch.setattr(precision_module, "cpu_capability", lambda: CpuCapability(flags, isa, aten))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# -- the resolver --------------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "isa", "aten", "expected"), [
    (SAPPHIRE_RAPIDS, None, "AVX512", "bf16"),
    (COOPER_LAKE, None, "AVX512", "bf16"),
    (ICE_LAKE, None, "AVX512", "fp32"),
    (HASWELL, None, "AVX2", "fp32"),
    (SAPPHIRE_RAPIDS, "AVX2", "AVX512", "fp32"),  # oneDNN capped to AVX2: an AVX2 machine simulated
    (SAPPHIRE_RAPIDS, "AVX512_CORE_VNNI", "AVX512", "fp32"),  # below AVX512_CORE_BF16
    (SAPPHIRE_RAPIDS, "avx512_core_amx", "AVX512", "bf16"),
    (SAPPHIRE_RAPIDS, "AVX512_CORE_BF16", "AVX512", "bf16"),
    (SAPPHIRE_RAPIDS, "SOMETHING_NEW", "AVX512", "fp32"),  # unknown cap: the safe choice
    (SAPPHIRE_RAPIDS, None, "AVX2", "fp32"),  # ATEN_CPU_CAPABILITY=avx2
])
def test_auto_picks_per_simulated_cpu(monkeypatch, flags, isa, aten, expected):
    simulate(monkeypatch, flags, isa=isa, aten=aten)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("AUTO", "cpu") == expected


@pytest.mark.parametrize(("flags", "isa", "aten", "avx512", "amx_int8", "vnni_int8"), [
    (SAPPHIRE_RAPIDS, None, "AVX512", True, True, True),
    (ICE_LAKE, None, "AVX512", True, False, True),
    (ZEN_4, None, "AVX512", True, False, True),
    (HASWELL, None, "AVX2", False, False, False),
    (SAPPHIRE_RAPIDS, "AVX2", "AVX512", False, False, False),  # oneDNN held to AVX2
    (SAPPHIRE_RAPIDS, None, "AVX2", False, False, False),  # ATen held to AVX2
    (ZEN_4, "AVX2_VNNI", "AVX512", False, False, False),  # oneDNN held to 256-bit VNNI
    (SAPPHIRE_RAPIDS, "AVX512_CORE", "AVX512", True, False, False),  # AVX-512 without VNNI
    (SAPPHIRE_RAPIDS, "AVX512_CORE_VNNI", "AVX512", True, False, True),
    (SAPPHIRE_RAPIDS, "AVX512_CORE_AMX", "AVX512", True, True, True),
    (SAPPHIRE_RAPIDS, "default", "AVX512", True, True, True),
    (SAPPHIRE_RAPIDS, "SOMETHING_NEW", "AVX512", False, False, False),  # unknown cap: held
])
def test_the_isa_probes_per_simulated_cpu(flags, isa, aten, avx512, amx_int8, vnni_int8):
    cap = CpuCapability(flags, isa, aten)
    assert avx512_supported(cap) is avx512
    assert amx_int8_supported(cap) is amx_int8
    assert vnni_int8_supported(cap) is vnni_int8


def test_int8_on_onednn_says_where_the_default_int8_projections_run():
    """What the embedded model's int8 batch size follows: the projections :func:`int8_options`
    picks for this CPU run on oneDNN's int8 GEMM exactly when it says so."""
    options = quantize.int8_options(None)
    layer = quantize.Int8Linear(torch.nn.Linear(32, 48), activation=options["activation"],
                                keep_float_rows=options["keep_float_rows"], reduce_range=options["reduce_range"])
    assert (layer._onednn is not None) is quantize.int8_on_onednn()
    assert quantize.int8_on_onednn() is (quantize.full_range_safe() and quantize.onednn_int8())


@pytest.mark.parametrize(("amx", "vnni", "expected"), [(True, True, True), (False, True, True), (True, False, True),
                                                        (False, False, False)])
def test_onednn_int8_follows_the_amx_and_vnni_probes(monkeypatch, amx, vnni, expected):
    """oneDNN's int8 GEMM replaces fbgemm's where int8 products accumulate in int32 (AMX tiles,
    AVX512-VNNI); below that it would sum u8 x s8 pairs in saturating int16, and fbgemm stays."""
    monkeypatch.setattr(quantize, "amx_int8_supported", lambda: amx)
    monkeypatch.setattr(quantize, "vnni_int8_supported", lambda: vnni)
    quantize.onednn_int8.cache_clear()
    try:
        assert quantize.onednn_int8() is expected
    finally:
        quantize.onednn_int8.cache_clear()


def test_auto_is_fp16_on_cuda_and_explicit_choices_stay(monkeypatch):
    simulate(monkeypatch, HASWELL, aten="AVX2")
    assert resolve_precision("auto", "cuda") == "fp16"
    assert resolve_precision("auto", "cuda:1") == "fp16"
    for name in ("fp32", "bf16", "fp16", "int8"):
        assert resolve_precision(name, "cpu") == name
    assert resolve_precision("bf16", "cuda") == "bf16"
    with pytest.raises(ValueError, match=r"\[precision\] int8 is dynamic CPU quantization"):
        resolve_precision("int8", "cuda")


def test_default_comes_from_the_environment(monkeypatch):
    simulate(monkeypatch, SAPPHIRE_RAPIDS)
    monkeypatch.delenv("ES_INFER_NB_PRECISION", raising=False)
    assert check_precision(None) == "auto" and resolve_precision(None) == "bf16"
    monkeypatch.setenv("ES_INFER_NB_PRECISION", "int8")
    assert resolve_precision(None) == "int8"
    monkeypatch.setenv("ES_INFER_NB_PRECISION", "fp64")
    with pytest.raises(ValueError, match=r"\[ES_INFER_NB_PRECISION\] must be one of"):
        resolve_precision(None)


def test_the_real_probe_reads_the_cpu_and_honours_onednn_max_cpu_isa(monkeypatch):
    precision_module._probe.cache_clear()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    try:
        cap = cpu_capability()
        assert cap.onednn_max_isa == "AVX2"
        assert not bf16_supported(cap)  # whatever the CPU: oneDNN is held to AVX2
        assert cap.flags  # /proc/cpuinfo was read
    finally:
        precision_module._probe.cache_clear()


@pytest.mark.parametrize("bad", ["fp8", "float32 ", "", 16, True])
def test_invalid_precision_names_the_field_and_the_valid_values(bad):
    with pytest.raises(ValueError) as info:
        check_precision(bad)
    message = str(info.value)
    assert "[precision]" in message
    assert all(f"'{name}'" in message for name in PRECISIONS), message


# -- accuracy ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not bf16_supported(), reason=f"this CPU has no native bf16 ({cpu_capability().describe()}): "
                                                  "bf16 would be emulated, the accuracy claim is about AMX / AVX512-BF16")
def test_bf16_stays_within_cosine_0_9999_of_fp32_on_the_corpus():
    texts = [json.loads(line)["text"] for line in CORPUS.read_text(encoding="utf-8").splitlines()][::18]
    assert len(texts) >= 300
    series = pd.Series(texts)
    engine = Engine()
    exact = vectors(series.infer.run(MINILM, engine=engine, precision="fp32"))
    fast = vectors(series.infer.run(MINILM, engine=engine, precision="bf16"))
    cos = cosines(exact, fast)
    assert not np.array_equal(exact, fast)  # it really ran in bf16
    assert cos.min() >= 0.9999, (cos.min(), texts[int(cos.argmin())])
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


# -- the parameter through the entry points ----------------------------------------------------------

TASK_MODELS = {"text-embedding": ("base", "text_embedding"), "pass-through": ("base", "pass_through"),
               "ner": ("token", "ner"), "text-classification": ("sequence", "text_classification"),
               "zero-shot": ("nli", "zero_shot_classification"), "text-expansion": ("masked_lm", "text_expansion")}


@pytest.fixture(scope="module")
def started(tiny_models) -> Engine:
    """An engine with tiny models of several tasks imported and deployed."""
    engine = Engine()
    for model_id, (kind, task) in TASK_MODELS.items():
        engine.import_hf_model(tiny_models[kind], task, model_id)
        engine.request("POST", f"_ml/trained_models/{model_id}/deployment/_start").raise_for_status()
    return engine


def test_df_infer_run_precision_runs_every_task(started):
    """Every task's model loads in each precision under its deployment; vectors stay close to fp32."""
    docs = pd.Series(["the capital of france is paris", "my little red car", "who lives in new york"])
    base = None
    for precision in ("fp32", "bf16", "int8", "auto"):
        for model_id in TASK_MODELS:
            config = {"zero_shot_classification": {"labels": ["sports", "politics"]}} if model_id == "zero-shot" else None
            out = docs.infer.run(model_id, engine=started, precision=precision, inference_config=config)
            assert len(out) == 3
            assert not any(c.endswith(".error") for c in out.columns), (model_id, precision, out.columns)
        emb = vectors(docs.infer.run("text-embedding", engine=started, precision=precision))
        if base is None:
            base = emb
        else:
            assert cosines(base, emb).min() > 0.99, precision
    loaded = {key[1] for key in _deployment(started, "text-embedding")._backends}
    assert {"fp32", "bf16", "int8"} <= loaded  # one model per precision, none served from another's cache


def _deployment(engine: Engine, deployment_id: str):
    from es_infer_nb.models.deployments import deployments

    return deployments(engine).require(deployment_id)


def test_df_infer_run_rejects_a_bad_precision(started):
    docs = pd.Series(["paris"])
    with pytest.raises(ApiError) as info:
        docs.infer.run("text-embedding", engine=started, precision="fp8")
    assert info.value.status == 400 and "[precision] must be one of" in info.value.reason
    assert "'bf16'" in info.value.reason


def _stats_precision(engine: Engine, deployment_id: str) -> str:
    body = engine.request("GET", f"_ml/trained_models/{deployment_id}/_stats").raise_for_status().body
    found = [s["deployment_stats"] for s in body["trained_model_stats"]
             if s.get("deployment_stats", {}).get("deployment_id") == deployment_id]
    return found[0]["precision"]


def test_precision_of_start_import_and_auto_is_shown_in_stats(monkeypatch, tiny_models):
    simulate(monkeypatch, HASWELL, aten="AVX2")
    monkeypatch.delenv("ES_INFER_NB_PRECISION", raising=False)
    engine = Engine()
    engine.import_hf_model(tiny_models["base"], "text_embedding", "emb")
    engine.import_hf_model(tiny_models["base"], "text_embedding", "emb-int8", precision="int8")
    start = "_ml/trained_models/{}/deployment/_start"
    engine.request("POST", start.format("emb"), params={"deployment_id": "auto-avx2"}).raise_for_status()
    assert _stats_precision(engine, "auto-avx2") == "fp32"  # auto on an AVX2-class CPU
    started = engine.request("POST", start.format("emb"), params={"deployment_id": "q", "precision": "bf16"})
    assert started.raise_for_status().body["assignment"]["precision"] == "bf16"  # the _start answer shows it too
    assert list(started.body["assignment"])[-1] == "precision"  # after ES's fields
    assert _stats_precision(engine, "q") == "bf16"
    engine.request("POST", start.format("emb"), {"precision": "fp16"},  # the id from the query (ES ignores the body's)
                   {"deployment_id": "b"}).raise_for_status()
    assert _stats_precision(engine, "b") == "fp16"
    engine.request("POST", start.format("emb-int8")).raise_for_status()
    assert _stats_precision(engine, "emb-int8") == "int8"  # what the import recorded
    simulate(monkeypatch, SAPPHIRE_RAPIDS)
    engine.request("POST", start.format("emb"), params={"deployment_id": "auto-amx"}).raise_for_status()
    assert _stats_precision(engine, "auto-amx") == "bf16"
    out = pd.Series(["paris"]).infer.run("auto-amx", engine=engine)
    assert np.isfinite(vectors(out)).all()

    bad = engine.request("POST", start.format("emb"), params={"deployment_id": "x", "precision": "fp8"})
    assert bad.status == 400 and bad.body["error"]["type"] == "illegal_argument_exception"
    assert "[precision] must be one of" in bad.body["error"]["reason"]
    with pytest.raises(ValueError, match=r"\[precision\] must be one of"):
        engine.import_hf_model(tiny_models["base"], "text_embedding", "bad", precision="half")


def test_es_infer_embed_precision(capsys, tmp_path):
    texts = ["The quick brown fox jumps over the lazy dog.", "Stock markets fell sharply", "hello"]
    outputs = {}
    for precision in ("fp32", "bf16", "int8"):
        dest = tmp_path / f"{precision}.jsonl"
        code = main(["embed", *texts, "--precision", precision, "--output", str(dest)])
        _out, err = capsys.readouterr()
        assert code == 0, err
        assert f"384 dims, {precision}, embedding" in err
        rows = [json.loads(line) for line in dest.read_text(encoding="utf-8").splitlines()]
        outputs[precision] = np.array([r[VECTOR] for r in rows], dtype=np.float32)
    assert cosines(outputs["fp32"], outputs["bf16"]).min() > 0.999
    assert cosines(outputs["fp32"], outputs["int8"]).min() > 0.99
    assert main(["embed", "hello", "--precision", "fp8"]) == 2
    assert "--precision" in capsys.readouterr().err


def test_dask_accessor_passes_precision(started):
    dd = pytest.importorskip("dask.dataframe")
    frame = pd.DataFrame({"text_field": ["the capital of france is paris", "my little red car", "a b c"] * 4})
    ddf = dd.from_pandas(frame, npartitions=2)
    got = vectors(ddf.infer.run("text-embedding", engine=started, precision="int8").compute(scheduler="sync"))
    want = vectors(frame.infer.run("text-embedding", engine=started, precision="int8"))
    exact = vectors(frame.infer.run("text-embedding", engine=started, precision="fp32"))
    # dynamic int8 scales follow the batch (partitions batch rows differently): close, not equal
    assert cosines(got, want).min() > 0.999
    assert np.abs(got - exact).max() > 1e-5  # the partitions really ran in int8, not fp32
    with pytest.raises(ApiError, match=r"\[precision\] must be one of"):
        ddf.infer.run("text-embedding", engine=started, precision="fp8").compute(scheduler="sync")
