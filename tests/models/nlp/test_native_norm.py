"""The C layer norms of the fast BERT encoder (es_infer_nb.models.nlp.native_norm): the in-place layer
norm and the embeddings + first Q/K/V projection kernel give the numbers of ATen's layer norm and the
GEMM they replace, in every batch layout the encoder runs, AVX-512 and AVX2 builds; used only where
they apply."""

from __future__ import annotations

import copy
import weakref

import pytest
import torch
from torch import nn

from es_infer_nb.models import native_build
from es_infer_nb.models.nlp import native_attention, native_norm
from es_infer_nb.models.nlp.bert_encoder import BertEncoder
from es_infer_nb.models.nlp.fast_encoder import build_encoder
from tiny_models import random_bert


def _needs_kernel() -> None:
    if native_build.compiler_path() is None:
        pytest.skip("no C compiler on this machine: the encoder runs the first projection as a GEMM")
    assert native_norm.kernel() is not None, "a C compiler is present, so the embedding kernel must build"


def _parts(hidden: int = 32, width: int = 96, vocab: int = 50, positions: int = 40, seed: int = 0):
    torch.manual_seed(seed)
    word = torch.randn(vocab, hidden) + 0.5  # a mean far from zero: the regrouping's cancellation shows
    position = torch.randn(positions, hidden) * 0.3
    type0 = torch.randn(hidden) * 0.1
    norm = nn.LayerNorm(hidden, eps=1e-12)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_(0, 0.2)
    projection = nn.Linear(hidden, width)
    return word, position, type0, norm, projection


def _reference(word, position, type0, norm, projection, ids, positions):
    """float64: the layer norm of the summed embeddings and the projection of it."""
    x = (word[ids] + position[positions] + type0).double()
    h = nn.functional.layer_norm(x, x.shape[-1:], norm.weight.double(), norm.bias.double(), norm.eps)
    return h, nn.functional.linear(h, projection.weight.double(), projection.bias.double())


def test_the_kernel_equals_the_layer_norm_and_the_projection_and_zeroes_padding_rows():
    _needs_kernel()
    parts = _parts()
    tables = native_norm.build_tables(*parts)
    assert tables is not None and tables.tword.shape == (50, 96) and tables.tpos.shape == (40, 96)
    ids = torch.tensor([3, 0, 49, 7, 7, 12, 30])
    positions = torch.tensor([0, 1, 2, 0, 39, 5, 1])
    with torch.inference_mode():
        h, proj = native_norm.embed(tables, ids, positions, rows=10)
        want_h, want_proj = _reference(*parts, ids, positions)
        gemm = parts[4](h[:7])  # what the encoder computed before: the GEMM of the float32 layer norm
    assert h.shape == (10, 32) and proj.shape == (10, 96)
    torch.testing.assert_close(h[:7].double(), want_h, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(proj[:7].double(), want_proj, atol=1e-5, rtol=1e-5)
    # the regrouped arithmetic is as close to float64 as the GEMM it replaces
    assert (proj[:7].double() - want_proj).abs().max() <= 4 * (gemm.double() - want_proj).abs().max() + 1e-6
    assert not h[7:].any() and not proj[7:].any()  # the rows past the tokens: zeros
    with torch.inference_mode():
        h16, proj16 = native_norm.embed(tables, ids, positions, rows=10, dtype=torch.bfloat16)
    assert h16.dtype is torch.bfloat16 and proj16.dtype is torch.bfloat16
    # the same float32 values, rounded once to bfloat16
    torch.testing.assert_close(h16.float(), h.bfloat16().float(), atol=0, rtol=0)
    torch.testing.assert_close(proj16.float(), proj.bfloat16().float(), atol=0, rtol=0)
    with pytest.raises(ValueError, match="writes"):
        native_norm.embed(tables, ids, positions, rows=7, dtype=torch.float16)


def test_the_layer_norm_runs_in_place_on_strided_rows_as_atens_does():
    _needs_kernel()
    _, _, _, norm, _ = _parts(hidden=48)
    torch.manual_seed(2)
    base = torch.randn(9, 64) * 3 + 1
    x = base[:, 8:56]  # rows of 48 floats with a row stride of 64: a view
    outside = torch.cat([base[:, :8], base[:, 56:]], dim=1).clone()
    assert native_norm.usable(x, norm)
    with torch.inference_mode():
        want = norm(x.clone())
        exact = nn.functional.layer_norm(x.double(), (48,), norm.weight.double(), norm.bias.double(), norm.eps)
        out = native_norm.layer_norm_(x, norm)
    assert out.data_ptr() == x.data_ptr() and torch.equal(base[:, 8:56], out)  # written where it was
    torch.testing.assert_close(out, want, atol=2e-6, rtol=1e-5)
    assert (out.double() - exact).abs().max() <= 2 * (want.double() - exact).abs().max() + 1e-7
    assert torch.equal(torch.cat([base[:, :8], base[:, 56:]], dim=1), outside)  # the columns around: untouched
    # with a residual: norm(x + residual), still in place, the residual untouched
    y, residual = torch.randn(5, 48) * 2, torch.randn(5, 48) + 3
    kept = residual.clone()
    with torch.inference_mode():
        want = norm(y + residual)
        out = native_norm.layer_norm_(y, norm, residual=residual)
    assert out.data_ptr() == y.data_ptr() and torch.equal(residual, kept)
    torch.testing.assert_close(out, want, atol=2e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="residual"):
        native_norm.layer_norm_(y, norm, residual=torch.randn(4, 48))
    # where it does not run: other dtypes, sizes, layouts or norms
    assert not native_norm.usable(x.half(), norm)
    assert not native_norm.usable(torch.randn(3, 40), nn.LayerNorm(40))
    assert not native_norm.usable(torch.randn(48, 3).t(), norm)
    assert not native_norm.usable(torch.randn(3, 48), nn.LayerNorm(48, elementwise_affine=False))


def test_bfloat16_rows_are_normed_in_float32_and_rounded_once_as_torchs_mixed_layer_norm():
    _needs_kernel()
    _, _, _, norm, _ = _parts(hidden=64)
    torch.manual_seed(4)
    x = (torch.randn(7, 64) * 3 + 1).bfloat16()
    residual = (torch.randn(7, 64) - 2).bfloat16()
    assert native_norm.usable(x, norm)
    with torch.inference_mode():
        want = norm(x.clone())  # torch: bfloat16 in and out, float32 weights and statistics
        exact = nn.functional.layer_norm(x.double(), (64,), norm.weight.double(), norm.bias.double(), norm.eps)
        out = native_norm.layer_norm_(x.clone(), norm)
        summed = native_norm.layer_norm_(x.clone(), norm, residual=residual)
        exact_sum = nn.functional.layer_norm(x.double() + residual.double(), (64,), norm.weight.double(),
                                             norm.bias.double(), norm.eps)
    assert out.dtype is torch.bfloat16 and summed.dtype is torch.bfloat16
    torch.testing.assert_close(out.float(), want.float(), atol=0, rtol=2 ** -7)  # one bfloat16 ulp at most
    # rounded once from the float64 value's float32 neighbour: within half an ulp (2^-9 relative) + float32 noise
    assert ((out.double() - exact).abs() <= exact.abs() * 2 ** -8 + 1e-6).all()
    assert ((summed.double() - exact_sum).abs() <= exact_sum.abs() * 2 ** -8 + 1e-6).all()
    with pytest.raises(ValueError, match="residual"):
        native_norm.layer_norm_(x, norm, residual=residual.float())


def test_ids_and_positions_outside_the_tables_are_refused():
    _needs_kernel()
    tables = native_norm.build_tables(*_parts())
    with pytest.raises(IndexError, match=r"token ids must be in \[0, 50\)"):
        native_norm.embed(tables, torch.tensor([1, 50]), torch.tensor([0, 1]), rows=2)
    with pytest.raises(IndexError, match="positions"):
        native_norm.embed(tables, torch.tensor([1, 2]), torch.tensor([0, 40]), rows=2)
    with pytest.raises(IndexError):
        native_norm.embed(tables, torch.tensor([-1]), torch.tensor([0]), rows=1)


def test_tables_are_built_only_where_the_kernel_applies(monkeypatch):
    _needs_kernel()
    word, position, type0, norm, projection = _parts()
    assert native_norm.build_tables(word, position, type0, norm, nn.Linear(32, 96, bias=False)) is None
    bf16 = nn.Linear(32, 96).to(torch.bfloat16)
    assert native_norm.build_tables(word, position, type0, norm, bf16) is None
    odd = _parts(hidden=24, width=72)  # not a multiple of the kernel's vectors
    assert native_norm.build_tables(*odd) is None
    monkeypatch.setattr(native_norm, "MAX_TABLE_BYTES", 50 * 96 * 4 - 1)  # a word table too large
    assert native_norm.build_tables(word, position, type0, norm, projection) is None
    monkeypatch.setattr(native_norm, "MAX_TABLE_BYTES", 50 * 96 * 4)
    assert native_norm.build_tables(word, position, type0, norm, projection) is not None
    monkeypatch.setenv("ES_INFER_NB_NO_NATIVE", "1")
    assert native_norm.build_tables(word, position, type0, norm, projection) is None


def test_the_avx2_build_gives_the_same_answers(monkeypatch, tmp_path):
    _needs_kernel()
    parts = _parts(seed=3)
    tables = native_norm.build_tables(*parts)
    ids, positions = torch.tensor([4, 8, 15, 16, 23, 42]), torch.tensor([0, 1, 2, 3, 4, 5])
    want = native_norm.embed(tables, ids, positions, rows=6)
    monkeypatch.setenv("ES_INFER_NB_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setattr(native_norm, "_state", {})
    monkeypatch.setenv("ES_INFER_NB_NATIVE_ISA", "avx2")
    got = native_norm.embed(tables, ids, positions, rows=6)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def _bert():
    return random_bert(7, vocab_size=120, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                       max_position_embeddings=300)


def _batch(lengths: list[int], vocab: int = 120) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(sum(lengths))
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.int64)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(1, vocab, (n,))
        mask[i, :n] = 1
    return ids, mask


# uniform (no padding), padded + packed, long and short texts; with the attention kernel and with
# torch's attention (packed projections when padding is > 10%, the padded layout when it is not)
@pytest.mark.parametrize("torch_attention", [False, True])
@pytest.mark.parametrize("lengths", [[6, 6, 6], [9, 3, 1, 7], [200, 4], [200, 190]])
def test_the_fp32_encoder_with_the_c_norms_equals_it_without_and_transformers(monkeypatch, lengths, torch_attention):
    _needs_kernel()
    if torch_attention:
        monkeypatch.setattr(native_attention, "usable", lambda *args: False)
    bert = _bert()
    encoder = build_encoder(bert, "fp32", "cpu")
    assert encoder.embedding_tables is not None
    ids, mask = _batch(lengths)
    assert all(layer.native_norms for layer in encoder.layers)
    with torch.inference_mode():
        fast = encoder(ids, mask)
        encoder.embedding_tables = None
        for layer in encoder.layers:
            layer.native_norms = False
        plain = encoder(ids, mask)  # ATen's layer norms and the first projection's GEMM
        want = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    keep = mask.bool()
    # padding positions too: zeros where packed, the padded layout's values where not
    torch.testing.assert_close(fast, plain, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(fast[keep], want[keep], atol=2e-5, rtol=1e-4)


def test_token_types_and_swapped_projections_run_without_the_tables(monkeypatch):
    _needs_kernel()
    bert = _bert()
    encoder = build_encoder(bert, "fp32", "cpu")
    ids, mask = _batch([5, 8])
    types = torch.zeros_like(ids)
    types[:, 3:] = 1
    calls = []
    monkeypatch.setattr(native_norm, "embed", lambda *a, **k: calls.append(a) or pytest.fail("tables used"))
    with torch.inference_mode():
        got = encoder(ids, mask, types)  # pairs: type 1 rows, which the tables do not hold
        want = bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    keep = mask.bool()
    torch.testing.assert_close(got[keep], want[keep], atol=2e-5, rtol=1e-4)
    # the first projection swapped (another module, as quantizing would) after the tables were built:
    # they are not used, its own GEMM runs
    swapped = nn.Linear(encoder.layers[0].qkv.in_features, encoder.layers[0].qkv.out_features)
    with torch.no_grad():
        swapped.weight.copy_(encoder.layers[0].qkv.weight)
        swapped.bias.copy_(encoder.layers[0].qkv.bias)
    encoder.layers[0].qkv = swapped
    with torch.inference_mode():
        got = encoder(ids, mask)
        want = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    assert not calls
    torch.testing.assert_close(got[keep], want[keep], atol=2e-5, rtol=1e-4)


def test_the_bf16_encoder_writes_the_tables_projection_and_norms_in_bfloat16():
    """bf16 on CPU: the tables of the float32 weights stay in use after the projections turn bfloat16
    (the first projection then more exact than a bfloat16 GEMM), the residual adds and norms in C."""
    _needs_kernel()
    bert = _bert()
    encoder = build_encoder(bert, "bf16", "cpu")
    assert encoder.embedding_tables is not None and encoder.embedding_tables.source is encoder.layers[0].qkv
    assert all(layer.native_norms for layer in encoder.layers)
    ids, mask = _batch([9, 3, 1, 7])
    with torch.inference_mode():
        fast = encoder(ids, mask)
        encoder.embedding_tables = None
        for layer in encoder.layers:
            layer.native_norms = False
        plain = encoder(ids, mask)  # ATen's mixed-dtype norms, the GEMM's fused add
        want = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    keep = mask.bool()
    assert fast.dtype is torch.bfloat16

    def cosine(a, b):
        return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)

    assert cosine(fast[keep], want[keep]).min() > 0.9999  # bf16's bound against float32
    assert cosine(fast[keep], want[keep]).mean() >= cosine(plain[keep], want[keep]).mean() - 1e-5


def test_an_encoder_cast_after_its_tables_writes_them_in_its_dtype_or_runs_the_gemm(monkeypatch):
    """Tables built, then the whole encoder cast (``.to(dtype)``, the older bfloat16-throughout knob):
    bfloat16 rows come from the tables, float16 ones (which the kernel does not write) from the GEMM."""
    _needs_kernel()
    written = []
    embed = native_norm.embed
    monkeypatch.setattr(native_norm, "embed", lambda *args, **kw: written.append(args[4]) or embed(*args, **kw))
    bert = _bert()
    ids, mask = _batch([9, 3, 1, 7])
    keep = mask.bool()
    with torch.inference_mode():
        want = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    for dtype in (torch.bfloat16, torch.float16):
        encoder = BertEncoder(copy.deepcopy(bert))  # it shares the model's embedding modules
        assert encoder.use_embedding_tables()
        encoder = encoder.to(dtype)
        with torch.inference_mode():
            got = encoder(ids, mask)
        assert got.dtype is dtype
        cosine = torch.nn.functional.cosine_similarity(got[keep].float(), want[keep], dim=-1)
        assert cosine.min() > 0.999
    assert written == [torch.bfloat16]  # the float16 encoder ran its first projection's GEMM


def test_the_cpu_encoders_get_tables_and_only_fp32_and_bf16_the_c_norms():
    """int8 takes the first projection from the float32 tables (closer than its int8 GEMM) and keeps
    ATen's norms."""
    _needs_kernel()
    bert = _bert()
    assert build_encoder(bert, "fp32", "cpu").embedding_tables is not None
    int8 = build_encoder(bert, "int8", "cpu")
    assert int8.embedding_tables is not None and int8.embedding_tables.source is int8.layers[0].qkv
    assert type(int8.layers[0].qkv).__name__ == "Int8Linear"
    assert not any(layer.native_norms for layer in int8.layers)
    plain = BertEncoder(bert)  # opt-in: use_embedding_tables(), use_native_norms()
    assert plain.embedding_tables is None and not any(layer.native_norms for layer in plain.layers)


def test_a_forward_pass_looks_the_kernels_up_once_and_an_encoder_cast_later_keeps_atens_norms(monkeypatch):
    """The C norm kernel is looked up once per pass (not at each of the 2 x layers norms) and the
    attention kernel's texts are prepared once; ES_INFER_NB_NO_NATIVE set between passes still turns the
    kernels off; an fp32 encoder cast to bfloat16 after it was built (its norms' weights no longer
    float32) runs ATen's norms instead of handing the C kernel the wrong weights."""
    _needs_kernel()
    bert = _bert()
    encoder = build_encoder(bert, "fp32", "cpu")
    assert all(layer.native_norms for layer in encoder.layers) and len(encoder.layers) > 1
    ids, mask = _batch([9, 3, 1, 7])
    keep = mask.bool()
    lookups, prepared, normed = [], [], []
    kernel, texts, layer_norm_ = native_norm.kernel, native_attention.texts, native_norm.layer_norm_
    monkeypatch.setattr(native_norm, "kernel", lambda: lookups.append(1) or kernel())
    monkeypatch.setattr(native_attention, "texts", lambda *a: prepared.append(1) or texts(*a))
    monkeypatch.setattr(native_norm, "layer_norm_", lambda *a, **k: normed.append(k.get("lib")) or layer_norm_(*a, **k))
    with torch.inference_mode():
        want = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        got = encoder(ids, mask)
    torch.testing.assert_close(got[keep], want[keep], atol=2e-5, rtol=1e-4)
    assert len(prepared) == 1 and len(normed) == 2 * len(encoder.layers)
    assert all(lib is not None for lib in normed) and len(lookups) == 1  # one for the embeddings and the norms
    normed.clear()
    monkeypatch.setenv("ES_INFER_NB_NO_NATIVE", "1")
    with torch.inference_mode():
        torch.testing.assert_close(encoder(ids, mask)[keep], want[keep], atol=2e-5, rtol=1e-4)
    assert not normed
    monkeypatch.delenv("ES_INFER_NB_NO_NATIVE")
    cast = BertEncoder(copy.deepcopy(bert))
    assert cast.use_native_norms()
    cast = cast.to(torch.bfloat16)  # the older bfloat16-throughout knob, after the norms were chosen
    assert all(layer.native_norms for layer in cast.layers)  # decided when built, re-checked per pass
    with torch.inference_mode():
        half = cast(ids, mask)
    assert half.dtype is torch.bfloat16 and not normed
    cosine = torch.nn.functional.cosine_similarity(half[keep].float(), want[keep], dim=-1)
    assert cosine.min() > 0.999


def test_the_int8_encoder_runs_its_first_projection_from_the_float32_tables_closer_than_its_gemm(monkeypatch):
    """The tables of the float32 weights stand in for the quantized first projection: the hidden states
    are at least as close to transformers' as with that projection's int8 GEMM."""
    _needs_kernel()
    bert = _bert()
    ids, mask = _batch([9, 3, 1, 7])
    keep = mask.bool()
    used = []
    embed = native_norm.embed
    monkeypatch.setattr(native_norm, "embed", lambda *a, **k: used.append(1) or embed(*a, **k))
    with torch.inference_mode():
        want = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        encoder = build_encoder(bert, "int8", "cpu")
        fast = encoder(ids, mask)
        assert used
        encoder.embedding_tables = None  # the int8 GEMM of the first projection
        gemm = encoder(ids, mask)

    def cosine(a, b):
        return torch.nn.functional.cosine_similarity(a[keep], b[keep], dim=-1)

    assert cosine(fast, want).min() > 0.99
    assert cosine(fast, want).mean() >= cosine(gemm, want).mean() - 1e-4


def test_encoders_of_the_same_weights_share_one_word_table_and_others_get_their_own():
    """fp32, bf16 and int8 encoders of one model (each from its own copy of the weights) hold one word
    table between them; other weights get another; the table goes when its last encoder does."""
    import gc

    _needs_kernel()
    bert = _bert()
    fp32, bf16, int8 = (build_encoder(bert, p, "cpu") for p in ("fp32", "bf16", "int8"))
    tables = [e.embedding_tables for e in (fp32, bf16, int8)]
    assert all(t is not None for t in tables)
    assert len({t.tword.data_ptr() for t in tables}) == 1
    other = copy.deepcopy(bert)
    with torch.no_grad():
        other.embeddings.word_embeddings.weight[3] += 1.0
    mine = build_encoder(other, "fp32", "cpu").embedding_tables
    assert mine.tword.data_ptr() != tables[0].tword.data_ptr()
    ids, mask = _batch([5, 2])
    with torch.inference_mode():
        want = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        torch.testing.assert_close(fp32(ids, mask)[mask.bool()], want[mask.bool()], atol=2e-5, rtol=1e-4)
    shared = weakref.ref(tables[0].tword)
    del fp32, bf16, int8, tables
    gc.collect()
    assert shared() is None  # no cache keeps it alive
    again = build_encoder(bert, "fp32", "cpu").embedding_tables
    assert again is not None and again.tword.data_ptr() != mine.tword.data_ptr()


def test_bias_gelu_is_the_exact_gelu_written_in_place_and_falls_back_to_aten():
    """``gelu(x + bias)`` in C: the erf GELU to float32 accuracy (against float64: at most 2e-6 on
    [-12, 12], ATen's own 1.3e-6 with AVX-512), in place, NaN kept; rows the kernel does not take (a width
    not a multiple of VECTOR_MULTIPLE, bfloat16, a column stride, a bias of another dtype) get ATen's
    ``add_`` and ``gelu_``."""
    import torch.nn.functional as F

    if native_norm.kernel() is None:
        pytest.skip("no C compiler here: ATen's GELU runs")
    torch.manual_seed(11)
    z = torch.linspace(-12, 12, 64 * 1536).reshape(64, 1536)
    bias = torch.randn(1536) * 0.3
    for b in (bias, None):
        x = z.clone()
        assert native_norm.bias_gelu_(x, b) is x
        want = F.gelu((z if b is None else z + b).double())
        assert float((x.double() - want).abs().max()) <= 2e-6
    x = torch.zeros(1, 16)
    x[0, 0] = float("nan")
    assert torch.isnan(native_norm.bias_gelu_(x)[0, 0]) and torch.equal(x[0, 1:], torch.zeros(15))
    base = torch.randn(8, 40) * 3
    wide = torch.randn(40, 8) * 3
    cases = [(base[:, :20].contiguous(), torch.randn(20)),  # 20 floats a row: not a multiple of 16
             (base.to(torch.bfloat16), None), (wide.t(), torch.randn(40)),  # bfloat16; a column stride
             (base.clone(), torch.randn(40, dtype=torch.float64))]  # a float64 bias
    for x, b in cases:
        want = torch.ops.aten.gelu_(x.clone() if b is None else x.clone().add_(b))
        assert torch.equal(native_norm.bias_gelu_(x, b), want)
