"""A lean inference-only forward pass for BERT encoders (used by the embedded MiniLM).

:class:`BertEncoder` takes the weights of a transformers ``BertModel`` and computes the same
``last_hidden_state`` with less work per token:

* one fused Q/K/V projection per layer (one GEMM instead of three), the ``1/sqrt(head_dim)``
  attention scale folded into the query weights;
* the biases of the two output projections (attention output, FFN output) folded away: each is
  added once to the ``beta`` of the layer norm that produces the residual, and subtracted (times
  the weights) from the bias of the projection that reads that layer norm's output; the output
  projections then accumulate straight into the residual (``h.addmm_(x, W^T)``: no bias pass, no
  separate residual add);
* attention is ``scaled_dot_product_attention`` (its CPU kernel reads Q/K/V in place from the
  fused projection's output and writes the context in token-major order: no head transposes),
  with no mask at all when every sequence of the batch has the same length; short bfloat16 CPU
  batches use two batched matmuls around a float32 softmax instead (:func:`_attend`);
* on CPU, attention runs in a small C kernel over the packed tokens (:mod:`.native_attention`: no
  mask, no padding, Q/K/V read in place) where it beats torch's kernels (texts up to
  ``native_attention.MAX_LENGTH`` tokens); every batch with padding then runs its projections,
  GELUs and layer norms on the real tokens only (packed). Elsewhere a batch with more than 10%
  padding is packed too, attention alone running on the padded layout;
* plain ``nn.Linear`` / ``nn.LayerNorm`` modules, so ``.to(device, dtype)`` and
  ``torch.ao.quantization.quantize_dynamic`` apply to it unchanged; on CPU in float32,
  :meth:`BertEncoder.use_packed_gemms` then swaps the projections for weights packed once: MKL's
  packed GEMM on Intel CPUs (:class:`.mkl_gemm.MKLLinear`: 3-10% more GFLOP/s than oneDNN at these
  shapes), oneDNN elsewhere (:class:`OneDNNLinear`, GELU and residual add fused; ~1.9x MKL's sgemm end
  to end on AMD EPYC): :func:`.mkl_gemm.preferred` decides.

Only absolute-position, GELU, post-layer-norm BERT (what sentence-transformers' MiniLM / MPNet-free
BERT checkpoints use) is supported: :func:`supports` says whether a config qualifies.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import mkl_gemm, native_attention, native_norm
from .mkl_gemm import MKLLinear
from .precision import avx512_supported

__all__ = ["BF16Linear", "BertEncoder", "OneDNNLinear", "onednn_available", "supports"]

#: pack the real tokens (skip padding in the projections) when they are fewer than this share of a batch
PACK_BELOW = 0.9
#: bfloat16 CPU batches of at most this many tokens per text run attention as two matmuls (see :func:`_attend`)
SHORT_BF16_ATTENTION = 64
#: float32 CPU batches of at most this many tokens per text run attention as two matmuls too
SHORT_FP32_ATTENTION = 0
#: where the C kernel runs attention, the packed token rows are padded (with rows no text reads) to a
#: multiple of this: oneDNN builds and caches a GEMM kernel per row count, and a few dozen counts stay
#: in its cache where one per batch would not (bfloat16 on the bench corpus: later rounds no longer
#: recompile, and the first one compiles 1/32 as many kernels). Batches of fewer rows keep their count
#: (at most this many sizes to cache): a single short text padded to 32 rows ran 6-21% slower. Where
#: MKL's packed GEMM runs them (no kernel per row count) no rows are added: on the bench corpus the
#: padding was 1.3% more rows and the one-thread forward 1.3% slower (batch by batch interleaved)
ROW_BUCKET = 32
#: batches of up to this many rows (past ``ROW_BUCKET``) pad to a multiple of :data:`SMALL_ROW_BUCKET`
#: only: a single text of 33-63 tokens padded to 64 rows ran 40-50% slower than one of 31 (the GEMMs
#: of a few dozen rows cost in proportion to their rows); 12 more sizes to cache
SMALL_ROWS = 128
SMALL_ROW_BUCKET = 8


def padded_rows(tokens: int) -> int:
    """The rows a packed kernel batch of ``tokens`` real rows runs its projections on (see :data:`ROW_BUCKET`)."""
    if tokens <= ROW_BUCKET:
        return tokens
    bucket = SMALL_ROW_BUCKET if tokens <= SMALL_ROWS else ROW_BUCKET
    return -(-tokens // bucket) * bucket


def supports(config: Any) -> bool:
    """Whether ``config`` (a transformers ``BertConfig``) is a plain BERT this encoder reproduces."""
    return (
        getattr(config, "model_type", None) == "bert"
        and getattr(config, "hidden_act", None) == "gelu"
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and not getattr(config, "is_decoder", False)
    )


def _copy_linear(source: nn.Linear, weight_scale: float = 1.0) -> nn.Linear:
    layer = nn.Linear(source.in_features, source.out_features)
    with torch.no_grad():
        layer.weight.copy_(source.weight * weight_scale)
        layer.bias.copy_(source.bias * weight_scale)
    return layer


def _copy_norm(source: nn.LayerNorm) -> nn.LayerNorm:
    norm = nn.LayerNorm(source.normalized_shape, eps=source.eps)
    norm.load_state_dict(source.state_dict())
    return norm


def _fused_qkv(attention: Any, scale: float) -> nn.Linear:
    q, k, v = attention.query, attention.key, attention.value
    layer = nn.Linear(q.in_features, q.out_features + k.out_features + v.out_features)
    with torch.no_grad():
        layer.weight.copy_(torch.cat([q.weight * scale, k.weight, v.weight]))
        layer.bias.copy_(torch.cat([q.bias * scale, k.bias, v.bias]))
    return layer


@functools.cache
def onednn_available() -> bool:
    """Whether oneDNN's fp32 linear (``torch.ops.mkldnn._linear_pointwise``) can run here (probed
    once per process: every :class:`~.quantize.Int8Linear` and :meth:`BertEncoder.use_onednn` asks)."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        packed = torch.ops.mkldnn._reorder_linear_weight(torch.ones(2, 2))
        y = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 2), packed, None, "none", [], "")
        return bool(torch.equal(y, torch.full((1, 2), 2.0)))
    except (AttributeError, RuntimeError):
        return False


class OneDNNLinear(nn.Module):
    """A float32 ``nn.Linear`` on CPU through oneDNN with the weight packed once (its blocked layout).

    The same float32 arithmetic as ``F.linear``; on CPUs where MKL's sgemm takes a slow path (it
    dispatches on the vendor: AMD EPYC gets ~half of oneDNN's GFLOP/s at these shapes) it is the
    faster GEMM. Also fuses the GELU after the FFN input (:meth:`gelu`) and the residual add after
    the output projections (:meth:`accumulate`, a new tensor instead of a separate add pass).

    ``fuse_epilogues`` (default: where oneDNN runs AVX-512): whether the GELU of :meth:`gelu` and the
    add of :meth:`accumulate` are post-ops of the GEMM or ATen passes after it. Measured on the bench
    corpus, batch by batch interleaved, one thread: with AVX-512 the fused GELU is 8% faster end to end
    (the fused add even); with oneDNN held to AVX2 each post-op is slower than ATen's separate pass
    (GELU 2.4%, add 2.4% end to end), which then runs in place. (Where the encoder runs its layer norms
    in C, the residual add is the C kernel's, not :meth:`accumulate`'s: see ``_Layer._residual_norm``.)
    """

    def __init__(self, linear: nn.Linear, fuse_epilogues: bool | None = None) -> None:
        super().__init__()
        self.fuse_epilogues = avx512_supported() if fuse_epilogues is None else fuse_epilogues
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().contiguous()  # float32, or bfloat16 for a bf16 model
        self.register_buffer("weight", weight)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(weight.dtype).contiguous())
        self._packed = torch.ops.mkldnn._reorder_linear_weight(weight)

    def extra_repr(self) -> str:
        dtype = str(self.weight.dtype).replace("torch.", "")
        unfused = "" if self.fuse_epilogues else ", GELU and add unfused"
        return f"in_features={self.in_features}, out_features={self.out_features}, {dtype} (oneDNN{unfused})"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self._packed, self.bias, "none", [], "")

    def gelu(self, x: torch.Tensor) -> torch.Tensor:
        """``F.gelu(self(x))`` (exact, erf GELU): one pass where ``fuse_epilogues``."""
        if not self.fuse_epilogues:  # in place (a new tensor the GEMM's size cost 1.3% end to end, AVX2), in C
            return native_norm.bias_gelu_(self(x))
        return torch.ops.mkldnn._linear_pointwise(x, self._packed, self.bias, "gelu", [], "none")

    def accumulate(self, x: torch.Tensor, h: torch.Tensor, rows: Any = None) -> torch.Tensor:
        """``h + self(x)``: a new tensor where ``fuse_epilogues`` (the caller drops ``h``), else in ``h``."""
        if not self.fuse_epilogues:
            return h.add_(self(x))
        return torch.ops.mkldnn._linear_pointwise.binary(x, h, self._packed, self.bias, "add")


class BF16Linear(nn.Module):
    """A ``nn.Linear`` whose GEMM runs in bfloat16 (float32 accumulation) on a float32 model.

    The weight is stored in bfloat16 (packed once for oneDNN where it runs: AMX / AVX512-BF16 tiles
    on CPUs that have them); the input is cast to bfloat16 on the way in and the output is
    bfloat16. :meth:`accumulate` adds it into the residual: fused into the GEMM for a bfloat16
    residual stream (what :meth:`BertEncoder.use_bf16` sets up), in place for a float32 one.
    """

    def __init__(self, linear: nn.Module) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().to(torch.bfloat16).contiguous()
        bias = getattr(linear, "bias", None)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", None if bias is None else bias.detach().to(torch.bfloat16).contiguous())
        use_onednn = not weight.is_cuda and onednn_available() and _onednn_bf16()
        self._packed = torch.ops.mkldnn._reorder_linear_weight(weight) if use_onednn else None

    def extra_repr(self) -> str:
        kernel = "oneDNN" if self._packed is not None else "aten"
        return f"in_features={self.in_features}, out_features={self.out_features}, bfloat16 ({kernel})"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.bfloat16)
        if self._packed is not None:
            return torch.ops.mkldnn._linear_pointwise(x, self._packed, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)

    def gelu(self, x: torch.Tensor) -> torch.Tensor:
        """``F.gelu(self(x))`` (exact, erf GELU), fused into the GEMM where oneDNN runs it."""
        if self._packed is not None:
            return torch.ops.mkldnn._linear_pointwise(x.to(torch.bfloat16), self._packed, self.bias, "gelu", [],
                                                      "none")
        return F.gelu(self(x))

    def accumulate(self, x: torch.Tensor, h: torch.Tensor, rows: Any = None) -> torch.Tensor:
        """``h + self(x)`` in ``h``'s dtype: a bfloat16 ``h`` gets it fused into the GEMM (a new
        tensor), a float32 one in place."""
        if h.dtype is torch.bfloat16 and self._packed is not None:
            return torch.ops.mkldnn._linear_pointwise.binary(x.to(torch.bfloat16), h, self._packed, self.bias, "add")
        return h.add_(self(x))


@functools.cache
def _onednn_bf16() -> bool:
    """Whether oneDNN's linear takes bfloat16 here (probed once)."""
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(torch.ones(2, 2, dtype=torch.bfloat16))
        y = torch.ops.mkldnn._linear_pointwise(torch.ones(1, 2, dtype=torch.bfloat16), packed, None, "none", [], "")
        return bool(torch.equal(y.float(), torch.full((1, 2), 2.0)))
    except (AttributeError, RuntimeError):
        return False


def _linear(module: nn.Module, x: torch.Tensor, rows: Any) -> torch.Tensor:
    """``module(x)``; row-aware modules (int8, see :mod:`.quantize`) also get the row layout."""
    return module(x, rows) if getattr(module, "row_aware", False) else module(x)


def _gelu(module: nn.Module, x: torch.Tensor, rows: Any) -> torch.Tensor:
    """``F.gelu(module(x))``, fused into the GEMM where the module can (its ``gelu``)."""
    gelu = getattr(module, "gelu", None)
    if gelu is None:
        return F.gelu(_linear(module, x, rows))
    return gelu(x, rows) if getattr(module, "row_aware", False) else gelu(x)


def _accumulate(module: nn.Module, x: torch.Tensor, h: torch.Tensor, rows: Any) -> torch.Tensor:
    """``h + module(x)``, written into ``h`` (a residual nobody else reads any more)."""
    if type(module) is nn.Linear and module.bias is None:
        return h.addmm_(x, module.weight.t())
    accumulate = getattr(module, "accumulate", None)
    if accumulate is not None:
        return accumulate(x, h, rows)
    return h.add_(_linear(module, x, rows))


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``softmax(q k^T + bias) v`` per head (the scale is folded into ``q``).

    ``scaled_dot_product_attention`` everywhere but for short bfloat16 batches on CPU: there its
    flash kernel pays a fixed cost per (text, head) pair that dwarfs the work at a few dozen
    tokens, and two batched bf16 matmuls around a float32 softmax are ~10% faster end to end
    (measured on the bench corpus with AMX; the softmax in float32 keeps the result as close to
    float32 as the kernel's).
    """
    short = SHORT_BF16_ATTENTION if q.dtype is torch.bfloat16 else SHORT_FP32_ATTENTION if q.dtype is torch.float32 else 0
    if not q.is_cuda and q.shape[-2] <= short:
        scores = torch.matmul(q, k.transpose(-1, -2))
        # float32 scores (with the mask's float32 bias added in the same pass)
        scores = scores.float() if bias is None else torch.add(scores, bias.float())
        batch, heads, length, head_dim = q.shape
        # written token-major (the layout the output projection reads: no transpose copy after)
        ctx = q.new_empty((batch, length, heads, head_dim)).transpose(1, 2)
        return torch.matmul(scores.softmax(-1).to(q.dtype), v, out=ctx)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)


def _fold_output_biases(layers: Any, first_norm: nn.LayerNorm) -> None:
    """Move each output projection's bias into the layer norm feeding its residual (see above).

    ``norm(z) + b`` is ``norm`` with ``beta + b``; the projection reading that shifted output
    gets ``bias - W b`` so that its result is unchanged.
    """
    with torch.no_grad():
        norm = first_norm
        for layer in layers:
            for out, reader, next_norm in ((layer.attn_out, layer.qkv, layer.attn_norm),
                                           (layer.ffn_out, layer.ffn_in, layer.ffn_norm)):
                shift = out.bias.detach().clone()
                norm.bias += shift
                reader.bias -= reader.weight @ shift
                out.bias = None
                norm = next_norm


class _Layer(nn.Module):
    def __init__(self, layer: Any, heads: int) -> None:
        super().__init__()
        hidden = layer.attention.self.query.in_features
        self.heads = heads
        self.head_dim = hidden // heads
        self.qkv = _fused_qkv(layer.attention.self, self.head_dim ** -0.5)
        self.attn_out = _copy_linear(layer.attention.output.dense)
        self.attn_norm = _copy_norm(layer.attention.output.LayerNorm)
        self.ffn_in = _copy_linear(layer.intermediate.dense)
        self.ffn_out = _copy_linear(layer.output.dense)
        self.ffn_norm = _copy_norm(layer.output.LayerNorm)
        #: the residual adds and layer norms run in place in C (float32 or bfloat16 CPU rows, :mod:`.native_norm`)
        self.native_norms = False

    def attention(self, h: torch.Tensor, shape: tuple[int, int], bias: torch.Tensor | None, rows: Any,
                  packed: tuple[torch.Tensor, dict[Any, torch.Tensor]] | None,
                  native: native_attention.Texts | None = None,
                  qkv: torch.Tensor | None = None) -> torch.Tensor:
        batch, length = shape
        if qkv is None:
            qkv = _linear(self.qkv, h, rows)
        if native is not None:  # the C kernel, straight from the (packed) projection rows
            return native_attention.run(qkv, native)
        keep = None
        if packed is not None:  # packed tokens: back into the padded layout for attention only
            keep, buffers = packed
            padded = buffers.get(qkv.dtype)
            if padded is None:  # zeroed once per batch: later layers only overwrite the real rows
                padded = buffers[qkv.dtype] = qkv.new_zeros((batch * length, qkv.shape[1]))
            padded[keep] = qkv
            qkv = padded
        q, k, v = qkv.view(batch, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        ctx = _attend(q, k, v, bias)
        ctx = ctx.transpose(1, 2).reshape(batch * length, self.heads * self.head_dim)
        return ctx if keep is None else ctx[keep]

    def forward(self, h: torch.Tensor, shape: tuple[int, int], bias: torch.Tensor | None, rows: Any,
                packed: tuple[torch.Tensor, dict[Any, torch.Tensor]] | None = None,
                native: native_attention.Texts | None = None,
                qkv: torch.Tensor | None = None, norms: ctypes.CDLL | None = None) -> torch.Tensor:
        """``packed``: the real tokens' row indices and the batch's padded-layout buffers for the fused
        projection's output (by dtype), shared by all layers; ``native``: the texts of ``h`` when the C
        kernel runs attention (:mod:`.native_attention`); ``qkv``: the fused projection of ``h`` when
        already computed (the first layer's, from :mod:`.native_norm`); ``norms``: the loaded C norm
        kernel where ``h``'s rows can take it (:meth:`BertEncoder.forward` looks it up once a pass)."""
        context = self.attention(h, shape, bias, rows, packed, native, qkv)
        h = self._residual_norm(self.attn_out, context, h, rows, self.attn_norm, norms)
        inner = _gelu(self.ffn_in, h, rows)
        return self._residual_norm(self.ffn_out, inner, h, rows, self.ffn_norm, norms)

    def c_norms(self, lib: ctypes.CDLL | None, width: int) -> ctypes.CDLL | None:
        """``lib`` (the C norm kernel, or ``None``) where this layer's norms run in it: :attr:`native_norms`
        and float32 weights over ``width`` (checked at each pass: an encoder cast after it was built keeps
        ATen's norms)."""
        if lib is None or not self.native_norms:
            return None
        return lib if native_norm.takes(self.attn_norm, width) and native_norm.takes(self.ffn_norm, width) else None

    def _residual_norm(self, module: nn.Module, x: torch.Tensor, h: torch.Tensor, rows: Any,
                       norm: nn.LayerNorm, lib: ctypes.CDLL | None) -> torch.Tensor:
        """``norm(h + module(x))`` (``h``: a residual nobody reads after). Where ``lib`` (the C kernel, for
        rows like ``h``: :meth:`c_norms`), a float32 or bfloat16 oneDNN projection writes
        ``module(x)`` alone and the C kernel adds ``h`` and normalises in the same pass, in place (the
        GEMM's add post-op costs more: 6% of a 384 x 384 float32 projection; in bfloat16 the sum is then
        rounded once, not twice: closer to float32)."""
        if lib is not None:
            if type(module) in (OneDNNLinear, MKLLinear) or (type(module) is BF16Linear and h.dtype is torch.bfloat16):
                return native_norm.layer_norm_(module(x), norm, residual=h, lib=lib)
            return native_norm.layer_norm_(_accumulate(module, x, h, rows), norm, lib=lib)  # int8: its own add
        return norm(_accumulate(module, x, h, rows))


class BertEncoder(nn.Module):
    """``BertModel(...).last_hidden_state`` for inference, from a loaded transformers ``BertModel``."""

    def __init__(self, bert: Any) -> None:
        super().__init__()
        if not supports(bert.config):
            raise ValueError(f"BertEncoder supports plain BERT configs only, not {type(bert.config).__name__}")
        emb = bert.embeddings
        self.word_embeddings = emb.word_embeddings
        self.position_embeddings = emb.position_embeddings
        self.token_type_embeddings = emb.token_type_embeddings
        self.embedding_norm = _copy_norm(emb.LayerNorm)
        self.layers = nn.ModuleList(_Layer(layer, bert.config.num_attention_heads) for layer in bert.encoder.layer)
        _fold_output_biases(self.layers, self.embedding_norm)
        self.hidden = bert.config.hidden_size
        #: the rows int8 projections keep in float32: "first" ([CLS]) or "ends" ([CLS] and [SEP])
        self.float_rows = "first"
        #: the dtype attention runs in when it differs from the residual stream's (bf16 projections)
        self.attention_dtype: torch.dtype | None = None
        #: the dtype of the residual stream between layers when it differs from the weights' (bf16 projections)
        self.residual_dtype: torch.dtype | None = None
        #: the first layer's Q/K/V projection as tables of the embeddings (:meth:`use_embedding_tables`)
        self.embedding_tables: native_norm.EmbeddingTables | None = None
        self.eval()

    def use_bf16(self) -> bool:
        """Run the projections, attention and residual stream in bfloat16 (:class:`BF16Linear`: the
        residual add fused into the output projections' GEMM), the embeddings, softmax and the
        layer norms' statistics and weights in float32 (torch's mixed-type layer norm reads and
        writes bfloat16); returns whether anything changed. Measured on the bench corpus (AMX):
        ~15% faster than a float32 residual stream, min cosine vs float32 0.99995. Embedding tables
        (:meth:`use_embedding_tables`, from the float32 weights) stay in use, written in bfloat16."""
        changed = False
        for layer in self.layers:
            for name in ("qkv", "attn_out", "ffn_in", "ffn_out"):
                module = getattr(layer, name)
                if isinstance(module, (nn.Linear, OneDNNLinear, MKLLinear)):
                    setattr(layer, name, BF16Linear(module))
                    changed = True
        if changed:
            self.attention_dtype = torch.bfloat16
            self.residual_dtype = torch.bfloat16
            self.keep_embedding_tables()
        return changed

    def keep_embedding_tables(self) -> bool:
        """After the first projection was replaced by a lower-precision copy of the same weights (bfloat16
        by :meth:`use_bf16`, int8 by :func:`.quantize.quantize_encoder`): the tables, computed from the
        float32 weights, still give that projection (more exactly than the copy's GEMM): point them at the
        new module; returns whether there are tables. (A projection swapped for other weights must not
        be given them: only call this after such a copy.)"""
        if self.embedding_tables is None or not len(self.layers):
            return False
        self.embedding_tables = dataclasses.replace(self.embedding_tables, source=self.layers[0].qkv)
        return True

    def use_embedding_tables(self) -> bool:
        """Compute the first layer's Q/K/V projection from tables of the embeddings (float32 weights on
        CPU, :mod:`.native_norm`: 4.2% fewer FLOPs per token for MiniLM-L6, the word table 141 MB);
        returns whether it will. Call it on the float32 projections: :meth:`use_bf16` keeps the tables
        (written out in bfloat16 then); a projection swapped otherwise later does not use them."""
        tables = None
        if len(self.layers):
            tables = native_norm.build_tables(
                self.word_embeddings.weight, self.position_embeddings.weight, self.token_type_embeddings.weight[0],
                self.embedding_norm, self.layers[0].qkv)
        self.embedding_tables = tables
        return tables is not None

    def use_native_norms(self) -> bool:
        """Run the layers' residual adds and layer norms in place in C on float32 or bfloat16 CPU rows
        (:func:`.native_norm.layer_norm_`: ~half of ATen's time, one pass over a row in cache instead of
        a new tensor; bfloat16 encoder +4% end to end); returns whether it will."""
        found = native_norm.kernel() is not None
        for layer in self.layers:
            layer.native_norms = found and all(native_norm.takes(norm, self.hidden)
                                               for norm in (layer.attn_norm, layer.ffn_norm))
        return any(layer.native_norms for layer in self.layers)

    def use_packed_gemms(self) -> bool:
        """Run the (CPU, not quantized) projections on weights packed once: float32 ones through
        :class:`.mkl_gemm.MKLLinear` where :func:`.mkl_gemm.preferred` (Intel CPUs; its calls on several
        threads through a :class:`OneDNNLinear` of the same weights), else through
        :class:`OneDNNLinear`, as bfloat16 ones (the ``dtype=bfloat16`` model); returns whether any changed
        (``False``: neither GEMM available, or nothing to convert)."""
        mkl, onednn = mkl_gemm.preferred(), onednn_available()
        if not (mkl or onednn):
            return False
        dtypes = (torch.float32, torch.bfloat16) if onednn and _onednn_bf16() else (torch.float32,)
        changed = False
        for layer in self.layers:
            for name in ("qkv", "attn_out", "ffn_in", "ffn_out"):
                module = getattr(layer, name)
                if type(module) is not nn.Linear or module.weight.dtype not in dtypes or module.weight.is_cuda:
                    continue
                if mkl and module.weight.dtype is torch.float32:
                    # a call on several threads (a single text's) goes to oneDNN: MKL's packed GEMM barely splits
                    setattr(layer, name, MKLLinear(module, OneDNNLinear(module) if onednn else None))
                else:  # oneDNN is there: without it only float32 reaches here, and MKL took it
                    setattr(layer, name, OneDNNLinear(module))
                changed = True
        return changed

    def _any_rows(self) -> bool:
        """Whether this call's projections take any row count at no cost (MKL's packed GEMM on this
        thread, :meth:`.mkl_gemm.MKLLinear.any_rows`), so the packed rows need no :data:`ROW_BUCKET` padding."""
        out = self.layers[0].attn_out  # the first layer's Q/K/V may come from tables
        return isinstance(out, MKLLinear) and out.any_rows()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, length, hidden)`` hidden states; ``token_type_ids`` left out: type 0 everywhere
        (single texts)."""
        batch, length = input_ids.shape
        device = self.word_embeddings.weight.device
        stream_dtype = self.residual_dtype or self.word_embeddings.weight.dtype
        attention_dtype = self.attention_dtype or stream_dtype
        mask = attention_mask.bool()
        padded = not bool(mask.all())
        lengths = mask.sum(dim=1)
        heads = self.layers[0].heads if len(self.layers) else 1
        use_kernel = len(self.layers) > 0 and native_attention.usable(attention_dtype, self.hidden // heads, length,
                                                                      device)
        bias = None  # the padding mask of torch's attention (the kernel needs none)
        if padded and not use_kernel:
            if device.type == "cuda":
                bias = mask[:, None, None, :]
            else:
                bias = torch.zeros(mask.shape, dtype=attention_dtype, device=device)
                bias.masked_fill_(~mask, torch.finfo(attention_dtype).min)
                bias = bias[:, None, None, :]
        keep = None
        if padded and device.type != "cuda" and (use_kernel or int(lengths.sum()) < PACK_BELOW * mask.numel()):
            # every projection and layer norm runs on the real tokens only (packed): always where the
            # kernel runs attention (it reads the packed rows), else when padding is > 10%
            keep = mask.reshape(-1).nonzero().squeeze(1)
        tokens = batch * length if keep is None else len(keep)
        # the kernel's batches get rows no text reads, up to a size oneDNN keeps a GEMM kernel for (not
        # where MKL runs the projections: any row count costs it nothing, and the padding 1.3% more rows)
        rows_run = padded_rows(tokens) if use_kernel and not self._any_rows() else tokens
        # the C embeddings' and norms' kernel (one library), looked up once a pass: None where turned off
        lib = (native_norm.kernel() if self.embedding_tables is not None or any(layer.native_norms for layer in self.layers)
               else None)
        h, first_qkv = self._embed(input_ids, token_type_ids, keep, rows_run,
                                   stream_dtype if attention_dtype is stream_dtype else None, lib)
        # for row-aware (int8) projections: the first token of each text ([CLS], whose hidden state
        # carries the outliers) stays in float32, padding rows are zeroed
        if keep is not None:
            starts = lengths.cumsum(0) - lengths
            pads = None
        else:
            starts = torch.arange(batch, device=mask.device) * length
            pads = (~mask).reshape(-1).nonzero().squeeze(1) if padded else None
        if self.float_rows == "first":
            rows = (slice(None, None, length) if keep is None else starts, pads)
        else:
            rows = (torch.cat([starts, starts + lengths - 1]), pads)
        # the kernel reads the packed rows in place; torch's attention scatters them into the padded layout
        packed = None if keep is None or use_kernel else (keep, {})
        native = native_attention.texts(starts, lengths, heads, rows_run) if use_kernel else None
        if not native_norm.rows_usable(h):  # the residual stream's rows: the same in every layer
            lib = None
        for layer in self.layers:
            h = layer(h, (batch, length), bias, rows, packed, native, first_qkv, layer.c_norms(lib, self.hidden))
            first_qkv = None
        h = h[:tokens]
        if keep is not None:
            out = h.new_zeros((batch * length, self.hidden))
            out[keep] = h
            h = out
        return h.view(batch, length, self.hidden)

    def _embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, keep: torch.Tensor | None,
               rows: int, dtype: torch.dtype | None, lib: ctypes.CDLL | None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The residual stream's first ``rows`` rows (the ``keep`` tokens, else all, then zero rows), and
        the first layer's Q/K/V projection of them where :attr:`embedding_tables` computes it with ``lib``
        (the C kernel; else ``None``): ``dtype``, the residual stream's when attention runs in it too
        (``None``: it does not)."""
        batch, length = input_ids.shape
        positions_known = self.position_embeddings.weight.shape[0]
        if length > positions_known:  # what libtorch says on ES (the position embeddings' broadcast add)
            raise RuntimeError(f"The size of tensor a ({length}) must match the size of tensor b ({positions_known}) "
                               "at non-singleton dimension 1")
        tables = self.embedding_tables
        if (tables is not None and lib is not None and token_type_ids is None and not input_ids.is_cuda
                and dtype in native_norm.DTYPES and tables.source is self.layers[0].qkv):
            ids = input_ids.reshape(-1)
            positions = torch.arange(length).repeat(batch)
            if keep is not None:
                ids, positions = ids[keep], positions[keep]
            return native_norm.embed(tables, ids, positions, rows, dtype, lib=lib)
        types = (self.token_type_embeddings.weight[0] if token_type_ids is None
                 else self.token_type_embeddings(token_type_ids))
        h = self.word_embeddings(input_ids) + self.position_embeddings.weight[:length] + types
        h = self.embedding_norm(h).view(batch * length, self.hidden)
        if self.residual_dtype is not None:
            h = h.to(self.residual_dtype)
        if keep is not None:
            h = h[keep]
        if rows > h.shape[0]:
            h = torch.cat([h, h.new_zeros((rows - h.shape[0], self.hidden))])
        return h, None
