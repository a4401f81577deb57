"""The C attention kernel of the fast BERT encoder (es_infer_nb.models.nlp.native_attention): the same
answers as torch's attention per text and head, float32 and bfloat16, AVX-512 and AVX2 builds, any
thread split; the encoder uses it where it is faster and falls back to torch where it is not built."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from es_infer_nb.models import native_build
from es_infer_nb.models.nlp import bert_encoder, mkl_gemm, native_attention
from tiny_models import random_bert

LENGTHS = [1, 7, 16, 17, 33, 64, 65, 100, 130, 257]


def _needs_kernel() -> None:
    if native_build.compiler_path() is None:
        pytest.skip("no C compiler on this machine: the encoder keeps torch's attention")
    lib = native_attention.kernel()
    assert lib is not None, "a C compiler is present, so the attention kernel must build"
    if native_attention.width(lib) == 0:
        pytest.skip("this CPU has neither AVX2 nor AVX-512: the kernel is built but not used")


def _packed(lengths: list[int], heads: int, head_dim: int, dtype: torch.dtype, seed: int = 0):
    torch.manual_seed(seed)
    tokens = sum(lengths)
    qkv = (torch.randn(tokens, 3 * heads * head_dim) * 2).to(dtype)
    lens = torch.tensor(lengths, dtype=torch.int64)
    starts = lens.cumsum(0) - lens
    return qkv, starts, lens


def _reference(qkv: torch.Tensor, starts: torch.Tensor, lens: torch.Tensor, heads: int) -> torch.Tensor:
    """float64 ``softmax(q k^T) v`` per text (the same bfloat16-rounded inputs, no rounding after)."""
    hidden = qkv.shape[1] // 3
    out = torch.zeros(qkv.shape[0], hidden, dtype=torch.float64)
    for start, length in zip(starts.tolist(), lens.tolist()):
        rows = qkv[start: start + length].double().view(length, 3, heads, hidden // heads).permute(1, 2, 0, 3)
        q, k, v = rows.unbind(0)
        ctx = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # (heads, length, head_dim)
        out[start: start + length] = ctx.transpose(0, 1).reshape(length, hidden)
    return out


def _torch_float32(qkv: torch.Tensor, starts: torch.Tensor, lens: torch.Tensor, heads: int) -> torch.Tensor:
    """torch's float32 attention per text (``scaled_dot_product_attention``)."""
    hidden = qkv.shape[1] // 3
    out = torch.zeros(qkv.shape[0], hidden)
    for start, length in zip(starts.tolist(), lens.tolist()):
        q, k, v = qkv[start: start + length].float().view(length, 3, heads, hidden // heads).permute(1, 2, 0, 3).unbind(0)
        out[start: start + length] = F.scaled_dot_product_attention(q, k, v, scale=1.0).transpose(0, 1).reshape(
            length, hidden)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("head_dim", [16, 32, 64, 128])
def test_the_kernel_equals_attention_per_text_and_head(dtype, head_dim):
    """Against float64 attention of the same inputs: no further from it than torch's own float32
    attention (float32), and within one bfloat16 rounding of the output (bfloat16)."""
    _needs_kernel()
    heads = 3
    qkv, starts, lens = _packed(LENGTHS, heads, head_dim, dtype)
    with torch.inference_mode():
        got = native_attention.attention(qkv, starts, lens, heads)
        torch_error = (_torch_float32(qkv, starts, lens, heads).double() - _reference(qkv, starts, lens, heads)).abs()
    assert got.shape == (qkv.shape[0], heads * head_dim) and got.dtype is dtype
    want = _reference(qkv, starts, lens, heads)
    error = (got.double() - want).abs()
    if dtype is torch.float32:
        assert float(error.max()) <= 1.5 * float(torch_error.max()) + 1e-6
        assert float(error.mean()) <= 1.5 * float(torch_error.mean()) + 1e-7
    else:  # float32 arithmetic, one rounding to bfloat16 at the end (half an ulp: 2^-9 relative)
        bound = want.abs() * 2.0 ** -8 + 1.5 * torch_error + 1e-6
        assert bool((error <= bound).all())


def test_a_padded_layout_reads_only_each_texts_rows_and_zeroes_the_rest():
    """Texts at any row offset (here the padded layout: starts every ``length`` rows): padding rows,
    even NaN ones, never reach a text's answer, and come back zero."""
    _needs_kernel()
    heads, head_dim, length = 2, 32, 12
    lens = torch.tensor([12, 5, 9], dtype=torch.int64)
    starts = torch.arange(3, dtype=torch.int64) * length
    torch.manual_seed(4)
    qkv = torch.randn(3 * length, 3 * heads * head_dim)
    for s, n in zip(starts.tolist(), lens.tolist()):
        qkv[s + n: s + length] = float("nan")
    got = native_attention.attention(qkv, starts, lens, heads)
    want = _reference(qkv, starts, lens, heads)
    real = torch.zeros(3 * length, dtype=torch.bool)
    for s, n in zip(starts.tolist(), lens.tolist()):
        real[s: s + n] = True
    torch.testing.assert_close(got[real].double(), want[real], atol=1e-4, rtol=1e-5)
    assert torch.equal(got[~real], torch.zeros_like(got[~real]))


def test_any_thread_split_gives_the_same_bits():
    _needs_kernel()
    qkv, starts, lens = _packed([3, 40, 90, 12] * 20, 6, 32, torch.float32, seed=2)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = native_attention.attention(qkv, starts, lens, 6)
        torch.set_num_threads(3)
        three = native_attention.attention(qkv, starts, lens, 6)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, three)


def test_the_avx2_build_gives_the_same_answers(monkeypatch, tmp_path):
    """``ES_INFER_NB_NATIVE_ISA=avx2`` (an AVX2-only machine simulated): 8-float vectors, the same
    answers; a build for neither ISA says so (width 0) and the encoder does not use it."""
    _needs_kernel()
    qkv, starts, lens = _packed(LENGTHS, 4, 32, torch.float32, seed=3)
    want = native_attention.attention(qkv, starts, lens, 4)
    monkeypatch.setenv("ES_INFER_NB_NATIVE_CACHE", str(tmp_path))
    for isa, width in (("avx2", 8), ("portable", 0)):
        monkeypatch.setattr(native_attention, "_state", {})
        monkeypatch.setenv("ES_INFER_NB_NATIVE_ISA", isa)
        lib = native_attention.kernel()
        assert lib is not None and native_attention.width(lib) == width
        if width:
            torch.testing.assert_close(native_attention.attention(qkv, starts, lens, 4), want, atol=1e-6, rtol=1e-5)
            assert native_attention.usable(torch.float32, 32, 512, torch.device("cpu"))  # every BERT length
            assert not native_attention.usable(torch.float32, 32, 513, torch.device("cpu"))
            assert native_attention.usable(torch.bfloat16, 32, 48, torch.device("cpu"))
            assert not native_attention.usable(torch.bfloat16, 32, 49, torch.device("cpu"))  # AVX2 bf16: torch's
        else:
            assert not native_attention.usable(torch.float32, 32, 8, torch.device("cpu"))


def test_where_the_kernel_runs():
    _needs_kernel()
    cpu = torch.device("cpu")
    limit = native_attention.MAX_LENGTH[native_attention.width(native_attention.kernel())][torch.float32]
    assert native_attention.usable(torch.float32, 32, limit, cpu)
    assert not native_attention.usable(torch.float32, 32, limit + 1, cpu)  # long texts: torch's flash kernel
    if native_attention.width(native_attention.kernel()) == 16:  # AVX-512: bfloat16 texts of every BERT length
        assert native_attention.usable(torch.bfloat16, 32, 512, cpu)
    assert not native_attention.usable(torch.float16, 32, 8, cpu)
    assert not native_attention.usable(torch.float32, 24, 8, cpu)  # a head size the kernel does not take
    assert not native_attention.usable(torch.float32, 32, 8, torch.device("meta"))


def _bert(heads: int = 4):
    return random_bert(5, vocab_size=100, hidden_size=16 * heads * 2, num_attention_heads=heads,
                       intermediate_size=64, max_position_embeddings=300)


@pytest.mark.parametrize("lengths", [[5, 5, 5], [9, 3, 1, 7], [120, 4]])
def test_the_encoder_with_the_kernel_matches_transformers_and_torchs_attention(monkeypatch, lengths):
    """Uniform, padded (packed) and long-and-short batches: the encoder's hidden states equal
    transformers' BertModel whether the kernel runs attention or torch does."""
    _needs_kernel()
    model = _bert()
    torch.manual_seed(6)
    batch, length = len(lengths), max(lengths)
    input_ids = torch.randint(1, 100, (batch, length))
    mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]
    input_ids[~mask] = 0
    encoder = bert_encoder.BertEncoder(model)
    calls = []
    real = native_attention.run
    monkeypatch.setattr(native_attention, "run", lambda *a: calls.append(1) or real(*a))
    with torch.inference_mode():
        want = model(input_ids=input_ids, attention_mask=mask.long()).last_hidden_state
        fast = encoder(input_ids, mask)
        assert len(calls) == (2 if length <= 48 or native_attention.width(native_attention.kernel()) == 16 else 0)
        monkeypatch.setattr(native_attention, "kernel", lambda: None)
        plain = encoder(input_ids, mask)
    torch.testing.assert_close(fast[mask], want[mask], atol=3e-5, rtol=1e-4)
    torch.testing.assert_close(plain[mask], fast[mask], atol=3e-5, rtol=1e-4)
    assert torch.equal(fast[~mask], torch.zeros_like(fast[~mask]))


def _rows_run(monkeypatch, lengths: list[int], *, packed_gemms: bool = False, threads: int | None = None
              ) -> list[int]:
    """The row counts the kernel got in each layer of an encoder over texts of ``lengths`` (``packed_gemms``:
    its projections on MKL, the environment asking for it; ``threads``: torch's threads for the call),
    its answers checked against transformers'."""
    model = _bert()
    batch, length = len(lengths), max(lengths)
    torch.manual_seed(8)
    input_ids = torch.randint(1, 100, (batch, length))
    mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]
    encoder = bert_encoder.BertEncoder(model)
    if packed_gemms:
        monkeypatch.setenv("ES_INFER_NB_FP32_GEMM", "mkl")
        assert encoder.use_packed_gemms()
    seen: list[int] = []
    real = native_attention.run
    monkeypatch.setattr(native_attention, "run", lambda qkv, *a: seen.append(qkv.shape[0]) or real(qkv, *a))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads or before)
        with torch.inference_mode():
            fast = encoder(input_ids, mask)
            want = model(input_ids=input_ids, attention_mask=mask.long()).last_hidden_state
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(fast[mask], want[mask], atol=3e-5, rtol=1e-4)
    return seen


@pytest.mark.parametrize(("lengths", "rows"), [([9], 9), ([20, 7], 27), ([32], 32), ([33], 40), ([30, 5], 40),
                                              ([40, 24], 64), ([100, 28], 128), ([100, 29], 160), ([120, 90], 224)])
def test_kernel_batches_pad_their_rows_to_the_bucket_only_past_one_bucket(monkeypatch, lengths, rows):
    """Packed kernel batches run their projections on a multiple of ROW_BUCKET rows (oneDNN's kernel
    cache), except batches of at most one bucket's tokens (a single short text: its own row count);
    up to SMALL_ROWS rows the multiple is SMALL_ROW_BUCKET (a text of 33 tokens: 40 rows, not 64)."""
    _needs_kernel()
    assert (bert_encoder.ROW_BUCKET, bert_encoder.SMALL_ROWS, bert_encoder.SMALL_ROW_BUCKET) == (32, 128, 8)
    assert _rows_run(monkeypatch, lengths) == [rows] * 2 and bert_encoder.padded_rows(sum(lengths)) == rows


@pytest.mark.parametrize(("threads", "lengths", "rows"), [(1, [40, 24], 64), (1, [100, 29], 129), (1, [33], 33),
                                                         (2, [100, 29], 160)])
def test_batches_on_mkl_pad_no_rows_and_those_on_onednn_do(monkeypatch, threads, lengths, rows):
    """Where MKL's packed GEMM runs the projections (a call on one thread) no rows are added (it builds no
    kernel per row count); a call on two threads goes to oneDNN and gets the ROW_BUCKET padding."""
    _needs_kernel()
    if not (mkl_gemm.available() and bert_encoder.onednn_available()):
        pytest.skip("needs both MKL (x86-64 torch) and oneDNN")
    assert _rows_run(monkeypatch, lengths, packed_gemms=True, threads=threads) == [rows] * 2


def test_a_bf16_encoder_runs_its_attention_in_the_kernel_close_to_float32(monkeypatch):
    _needs_kernel()
    model = _bert()
    torch.manual_seed(7)
    input_ids = torch.randint(1, 100, (3, 20))
    mask = torch.arange(20)[None, :] < torch.tensor([20, 13, 6])[:, None]
    encoder = bert_encoder.BertEncoder(model)
    fast = bert_encoder.BertEncoder(model)
    fast.use_bf16()
    calls = []
    real = native_attention.run
    monkeypatch.setattr(native_attention, "run", lambda qkv, *a: calls.append(qkv.dtype) or real(qkv, *a))
    with torch.inference_mode():
        exact = encoder(input_ids, mask)
        calls.clear()
        half = fast(input_ids, mask).float()
    assert calls == [torch.bfloat16] * 2
    cosine = F.cosine_similarity(half[mask], exact[mask], dim=-1)
    assert float(cosine.min()) > 0.999


def test_texts_prepared_once_serve_every_call_and_refuse_another_row_count():
    """:func:`native_attention.texts` once, :func:`native_attention.run` per layer: the same answers as
    :func:`native_attention.attention`; a projection of another row count is refused, not misread."""
    _needs_kernel()
    torch.manual_seed(11)
    lens = torch.tensor([5, 1, 9])
    starts = torch.tensor([0, 5, 6])
    qkv = torch.randn(16, 3 * 64)  # 15 tokens and a row no text reads
    batch = native_attention.texts(starts, lens, 2, 16)
    assert not batch.covered and batch.starts.dtype is torch.int64
    want = native_attention.attention(qkv, starts, lens, 2)
    for _ in range(2):
        torch.testing.assert_close(native_attention.run(qkv, batch), want, atol=0, rtol=0)
    assert torch.equal(want[15], torch.zeros(64))
    with pytest.raises(ValueError, match="16"):
        native_attention.run(qkv[:15], batch)


def test_the_openmp_split_gives_the_one_thread_answers_on_torchs_own_runtime():
    """Built with OpenMP (where the compiler has it), the kernel splits a call's (text, head) tasks over
    torch's OpenMP threads: bit for bit the answers of one thread, whatever the split; the library
    shares torch's libgomp (one OpenMP runtime in the process, not a second pool beside torch's)."""
    _needs_kernel()
    lib = native_attention.kernel()
    if not native_attention.openmp(lib):
        pytest.skip("the kernel was built without OpenMP here: parallel_rows splits its calls")
    if Path("/proc/self/maps").exists():  # a fresh process: loading the kernel maps no OpenMP runtime of its own
        probe = ("import json, torch\n"
                 "def gomp():\n"
                 "    return sorted({l.split()[-1] for l in open('/proc/self/maps') if 'libgomp' in l})\n"
                 "before = gomp()\n"
                 "from es_infer_nb.models.nlp import native_attention as na\n"
                 "lib = na.kernel()\n"
                 "print(json.dumps([before, gomp(), na.openmp(lib)]))\n")
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
        before, after, uses = json.loads(done.stdout.strip().splitlines()[-1])
        assert before and after == before and uses, (before, after, done.stderr[-2000:])
    torch.manual_seed(12)
    lens = torch.tensor([7, 1, 30, 12, 3])
    starts = torch.cat([torch.zeros(1, dtype=torch.int64), lens.cumsum(0)[:-1]])
    qkv = torch.randn(int(lens.sum()), 3 * 64)
    half = qkv.bfloat16()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, one_half = (native_attention.attention(x, starts, lens, 2) for x in (qkv, half))
        for threads in (2, 3, 7):  # an even split, an uneven one, more threads than some texts have tasks
            torch.set_num_threads(threads)
            assert torch.equal(native_attention.attention(qkv, starts, lens, 2), one)
            assert torch.equal(native_attention.attention(half, starts, lens, 2), one_half)
    finally:
        torch.set_num_threads(before)
