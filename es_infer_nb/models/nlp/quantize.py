"""Dynamic int8 quantization for CPU inference (eland's ``--quantize``), accurate enough for search.

eland's ``eland_import_hub_model --quantize`` runs
``torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)``: int8
weights, activations quantized on the fly with one scale per tensor, and on x86 only 7 bits of
activation range (``reduce_range``). On all-MiniLM-L6-v2 that costs a lot (minimum cosine to the
float model 0.87-0.92 on the 5,500-sentence bench corpus), for two reasons measured there:

* the ``[CLS]`` token's hidden state carries outliers 3-10x larger than any other token's (up to
  ~28 in the FFN inputs of the first layers, where other tokens stay below ~13), and one scale per
  tensor then wastes most of the int8 range on one row per text;
* a few hidden channels carry outliers in every token.

On a CPU whose int8 kernel saturates (fbgemm's AVX2 kernel, ``vpmaddubsw``, sums pairs of
u8 x s8 products in saturating int16, which full 8-bit activations can overflow) the 7 bits are
kept, and :class:`Int8Linear`

* scales every row (token) to its own range before fbgemm's per-tensor quantization and back
  after it (per-token activation scales, fused with the bias add / residual accumulation);
* runs each sequence's first ([CLS]) row in float32 against the original weights (one row per
  text: ~3% of the corpus's tokens);
* with :func:`calibration_ids`, moves the FFN input's outlier channels into the weights
  (SmoothQuant, ``alpha=0.5``);
* keeps per-output-channel int8 weights.

On the bench corpus (5,515 texts) that gives a minimum cosine above 0.99 to the float model
(0.9956). Where the kernel accumulates in int32 (AVX512-VNNI / AVX-VNNI: :func:`full_range_safe`
probes it), activations get all 8 bits (``reduce_range=False``) and one scale per tensor: with
the [CLS] rows in float32 and SmoothQuant that is as accurate (minimum cosine 0.9963 on the bench
corpus) and ~1.4x faster, the per-row max / divide / multiply passes gone. :func:`int8_options`
(what ``EmbeddedMiniLM(quantize="int8")`` uses) picks the scheme for the CPU it runs on.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .bert_encoder import onednn_available
from .native_quant import quantize_u8
from .precision import amx_int8_supported, vnni_int8_supported

__all__ = ["ACTIVATION_MODES", "DEFAULT_TARGETS", "Int8Linear", "full_range_safe", "int8_on_onednn", "int8_options",
           "onednn_int8", "quantize_encoder", "quantize_mode"]

#: the Linear sub-modules (inside each encoder layer) quantized by default: all of them
DEFAULT_TARGETS: tuple[str, ...] = ("qkv", "attn_out", "ffn_in", "ffn_out")


def quantize_mode(quantize: str | bool | None) -> str | None:
    """``None``/``False`` -> ``None``; ``True`` (eland's flag) / ``"int8"`` / ``"qint8"`` -> ``"int8"``."""
    if quantize is None or quantize is False:
        return None
    if quantize is True or str(quantize).lower() in ("int8", "qint8"):
        return "int8"
    raise ValueError(f"unknown quantize [{quantize}]; use int8 (dynamic int8 quantization) or None")


def _engine() -> None:
    engines = torch.backends.quantized.supported_engines
    if torch.backends.quantized.engine not in ("fbgemm", "x86", "qnnpack"):
        torch.backends.quantized.engine = "fbgemm" if "fbgemm" in engines else "qnnpack"


#: how activations are scaled before fbgemm's int8 GEMM: one scale per token (row) or per tensor
ACTIVATION_MODES = ("token", "tensor")

_FULL_RANGE: dict[str, bool] = {}


def full_range_safe() -> bool:
    """Whether this CPU's dynamic int8 GEMM (the current quantized engine) takes full 8-bit
    activations without overflow, i.e. whether ``reduce_range`` can be off.

    fbgemm's AVX2 kernel sums pairs of u8 x s8 products in saturating int16 (``vpmaddubsw``):
    ``2 x 255 x 127`` overflows, hence PyTorch's 7-bit default. AVX512-VNNI / AVX-VNNI kernels
    (``vpdpbusd``) accumulate in int32 and do not. Probed once per engine on the worst case
    (every activation 255, every weight 127): a saturating kernel returns about half the sum.
    """
    _engine()
    engine = torch.backends.quantized.engine
    safe = _FULL_RANGE.get(engine)
    if safe is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            weight = torch.quantize_per_tensor(torch.ones(16, 256), 1.0 / 127.0, 0, torch.qint8)
            packed = torch.ops.quantized.linear_prepack(weight, None)
            x = torch.ones(8, 256)
            with torch.inference_mode():
                y = torch.ops.quantized.linear_dynamic(x, packed, False)
        safe = _FULL_RANGE[engine] = bool(torch.allclose(y, torch.full_like(y, 256.0), rtol=1e-3))
    return safe


@functools.cache
def onednn_int8() -> bool:
    """Whether ``"tensor"``-mode int8 projections run on oneDNN's int8 GEMM (``onednn::qlinear_pointwise``)
    instead of fbgemm's, with the same int8 weights and the same per-call activation range: on AMX
    CPUs (measured ~1.9x fbgemm's dynamic linear per projection, 1024 x 384 x 1536, activation
    quantization included) and on AVX512-VNNI ones (AMD EPYC Zen 4: the int8 encoder 4.3% faster
    on one thread, 6-9% on two streams over the bench corpus; the FFN's GELU fused into the GEMM);
    probed once. Below VNNI oneDNN's int8 kernels sum u8 x s8 pairs in saturating int16, so fbgemm
    (7-bit activations, per-token scales) stays."""
    if not (amx_int8_supported() or vnni_int8_supported()):
        return False
    try:
        packed = torch.ops.onednn.qlinear_prepack(torch.ones(4, 16, dtype=torch.int8), None)
        y = torch.ops.onednn.qlinear_pointwise(torch.full((2, 16), 130, dtype=torch.uint8), 0.5, 128, packed,
                                               torch.full((4,), 0.25), torch.zeros(4, dtype=torch.int64), None,
                                               1.0, 0, torch.float32, "none", [], "")
        return bool(torch.allclose(y, torch.full((2, 4), 4.0)))  # 16 x (130 - 128) x 0.5 x 0.25
    except (AttributeError, RuntimeError):
        return False


def int8_on_onednn() -> bool:
    """Whether :func:`int8_options`' projections run on oneDNN's int8 GEMM here: per-tensor 8-bit
    activations (:func:`full_range_safe`) and :func:`onednn_int8`, what :class:`Int8Linear` checks."""
    return full_range_safe() and onednn_int8()


class Int8Linear(nn.Module):
    """A ``nn.Linear`` as int8 weights (per output channel) x dynamically quantized inputs.

    fbgemm's dynamic kernel quantizes its whole input with one (min, max) range, in 7 bits with
    ``reduce_range=True`` (needed where its AVX2 kernel sums pairs of u8 x s8 products in
    saturating int16, see :func:`full_range_safe`). ``activation="token"`` (the default) gives every row its own
    range anyway: rows are divided by their max ``|x|`` before the GEMM (so every row spans
    ``[-1, 1]``) and the outputs multiplied back, fused with the bias add or the residual
    accumulation: ``W (x / m) * m = W x``. An outlier token then costs only its own resolution.
    ``"tensor"`` is the plain per-tensor scheme.

    ``forward(x, rows)``: ``x`` is ``(tokens, in_features)``; with ``rows=(float_rows, zero_rows)``
    (``keep_float_rows=True``) the row indices (or a ``slice``) in ``float_rows`` are computed in
    float32 instead, and in ``"tensor"`` mode ``zero_rows`` (padding) are zeroed first so they
    cannot widen the range.
    """

    row_aware = True

    def __init__(self, linear: nn.Linear, per_channel: bool = True, input_max: torch.Tensor | None = None,
                 alpha: float = 0.5, *, activation: str = "token", keep_float_rows: bool = False,
                 reduce_range: bool = True) -> None:
        super().__init__()
        if activation not in ACTIVATION_MODES:
            raise ValueError(f"unknown activation scaling [{activation}]; use one of {list(ACTIVATION_MODES)}")
        _engine()
        weight = linear.weight.detach().float().contiguous()
        bias = linear.bias.detach().float().contiguous() if linear.bias is not None else None
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.activation = activation
        self.keep_float_rows = keep_float_rows
        self.reduce_range = reduce_range
        smooth = None
        if input_max is not None:
            # SmoothQuant: x W^T = (x / s)(W s)^T, s_j = max|x_j|^a / max|W_j|^(1-a) evens out the channels
            w_max = weight.abs().amax(dim=0).clamp(min=1e-5)
            smooth = (input_max.float().clamp(min=1e-5) ** alpha / w_max ** (1 - alpha)).clamp(min=1e-2, max=1e2)
        scaled = weight * smooth if smooth is not None else weight
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch deprecates quantized tensors in favour of torchao
            if per_channel:
                scales = (scaled.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
                qweight = torch.quantize_per_channel(scaled, scales, torch.zeros_like(scales, dtype=torch.long), 0, torch.qint8)
            else:
                qweight = torch.quantize_per_tensor(scaled, float(scaled.abs().max()) / 127.0 or 1.0, 0, torch.qint8)
            # per-token outputs are rescaled before the bias is added: the kernel gets none then
            self._packed = torch.ops.quantized.linear_prepack(qweight, None if activation == "token" else bias)
            # per-tensor activations on AMX / AVX512-VNNI: oneDNN's int8 GEMM, the same int8 weights and scales
            self._onednn = None
            if activation == "tensor" and per_channel and onednn_int8():
                self._onednn = (torch.ops.onednn.qlinear_prepack(qweight.int_repr().contiguous(), None),
                                scales.float().contiguous(), torch.zeros(self.out_features, dtype=torch.int64))
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.register_buffer("input_scale", None if smooth is None else (1.0 / smooth).contiguous())
        # the float32 rows through oneDNN where it runs (faster than MKL's sgemm on AMD CPUs)
        self._float_packed = torch.ops.mkldnn._reorder_linear_weight(weight) if keep_float_rows and onednn_available() else None

    def _float(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """``x W^T + bias`` in float32 with the original (unquantized) weights."""
        if self._float_packed is not None:
            return torch.ops.mkldnn._linear_pointwise(x, self._float_packed, bias, "none", [], "")
        return F.linear(x, self.weight, bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, int8 (fbgemm), "
                f"activation={self.activation}, keep_float_rows={self.keep_float_rows}")

    def _scaled_rows(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x / m, m)`` with ``m`` each row's max ``|x|`` (SmoothQuant's channel scale applied first)."""
        if self.input_scale is not None:
            x = x * self.input_scale
        peak = x.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12)
        return x / peak, peak

    def _token_product(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, m)``: ``y * m`` is ``x W^T`` (no bias)."""
        unit, peak = self._scaled_rows(x)
        return torch.ops.quantized.linear_dynamic(unit, self._packed, self.reduce_range), peak

    def forward(self, x: torch.Tensor, rows: tuple[Any, Any] | None = None) -> torch.Tensor:
        if self.activation == "token":
            y, peak = self._token_product(x)
            out = torch.addcmul(self.bias, y, peak) if self.bias is not None else y.mul_(peak)
            if rows is not None and self.keep_float_rows:
                out[rows[0]] = self._float(x[rows[0]], self.bias)
            return out
        return self._tensor_forward(x, rows)

    def accumulate(self, x: torch.Tensor, h: torch.Tensor, rows: tuple[Any, Any] | None = None) -> torch.Tensor:
        """``h += self(x)``, in place (the residual of an encoder layer); ``x`` is a temporary
        (the attention context, the FFN activation) and may be overwritten."""
        if self.activation != "token":
            return h.add_(self._tensor_forward(x, rows))
        exact = None
        if rows is not None and self.keep_float_rows:
            exact = self._float(x[rows[0]], None)
        if self.input_scale is not None:
            x = x * self.input_scale
        peak = x.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12)
        y = torch.ops.quantized.linear_dynamic(x.div_(peak), self._packed, self.reduce_range)
        if exact is not None:
            y[rows[0]] = 0  # replaced by the exact product
            h[rows[0]] += exact
        h.addcmul_(y, peak)
        if self.bias is not None:
            h.add_(self.bias)
        return h

    def _tensor_product(self, x: torch.Tensor, post_op: str = "none") -> torch.Tensor:
        """``post_op(x W^T + bias)`` with ``x`` quantized per tensor for this call (asymmetric uint8
        over its ``[min, max]`` range, zero included, as fbgemm's dynamic kernel picks it); ``post_op``
        ``"gelu"`` (exact) fused into oneDNN's GEMM."""
        if self._onednn is None:
            y = torch.ops.quantized.linear_dynamic(x, self._packed, self.reduce_range)
            return F.gelu(y) if post_op == "gelu" else y
        qx, scale, zero = quantize_u8(x)
        packed, scales, zeros = self._onednn
        return torch.ops.onednn.qlinear_pointwise(qx, scale, zero, packed, scales, zeros, self.bias, 1.0, 0,
                                                  torch.float32, post_op, [], "none" if post_op == "gelu" else "")

    def gelu(self, x: torch.Tensor, rows: tuple[Any, Any] | None = None) -> torch.Tensor:
        """``F.gelu(self(x, rows))``, fused into the GEMM where oneDNN runs it."""
        if self.activation != "tensor" or self._onednn is None:
            return F.gelu(self(x, rows))
        return self._tensor_forward(x, rows, "gelu")

    def _tensor_forward(self, x: torch.Tensor, rows: tuple[Any, Any] | None, post_op: str = "none") -> torch.Tensor:
        if rows is None or not self.keep_float_rows:
            scaled = x * self.input_scale if self.input_scale is not None else x
            if rows is not None and rows[1] is not None:
                scaled = scaled.clone() if scaled is x else scaled
                scaled[rows[1]] = 0
            return self._tensor_product(scaled, post_op)
        float_rows, zero_rows = rows
        if self.input_scale is not None:
            scaled = x * self.input_scale
            kept = x[float_rows]
        else:
            scaled = x
            kept = x[float_rows].clone()
        if zero_rows is not None:
            scaled[zero_rows] = 0  # padding: never read, must not widen the range
        scaled[float_rows] = 0
        y = self._tensor_product(scaled, post_op)
        if scaled is x:
            x[float_rows] = kept
        exact = self._float(kept, self.bias)
        y[float_rows] = F.gelu(exact) if post_op == "gelu" else exact
        return y


def input_ranges(encoder: Any, input_ids: torch.Tensor, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Per-channel max |input| of the named Linear modules on a calibration batch, first rows excluded."""
    modules = dict(encoder.named_modules())
    ranges: dict[str, torch.Tensor] = {}
    length = input_ids.shape[1]

    def hook(name: str) -> Any:
        def record(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            x = args[0].reshape(-1, length, args[0].shape[-1])[:, 1:]
            ranges[name] = x.abs().amax(dim=(0, 1))
        return record

    handles = [modules[name].register_forward_hook(hook(name)) for name in names]
    try:
        with torch.inference_mode():
            encoder(input_ids, torch.ones_like(input_ids, dtype=torch.bool))
    finally:
        for handle in handles:
            handle.remove()
    return ranges


def calibration_ids(vocab_size: int, cls_id: int, sep_id: int, *, texts: int = 64, length: int = 48,
                    seed: int = 0) -> torch.Tensor:
    """A fixed batch of ``[CLS] random word pieces [SEP]`` (seeded): which input channels carry
    outliers is a property of the weights, visible on any input."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(min(1000, vocab_size - 1), vocab_size, (texts, length), generator=generator)
    ids[:, 0] = cls_id
    ids[:, -1] = sep_id
    return ids


def int8_options(config: Any, tokenizer: Any = None) -> dict[str, Any]:
    """The accurate default for :func:`quantize_encoder`: the first ([CLS]) rows in float32,
    SmoothQuant on the FFN inputs calibrated on :func:`calibration_ids`, and 8-bit per-tensor
    activations where the CPU's int8 kernel cannot saturate (:func:`full_range_safe`), 7-bit
    per-token ones where it can (min cosine to float32 above 0.99 on the bench corpus either way,
    where eland's scheme gives 0.87-0.92)."""
    cls_id = getattr(tokenizer, "cls_token_id", None)
    sep_id = getattr(tokenizer, "sep_token_id", None)
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    if full_range_safe():
        # 8-bit activations: one scale per tensor is then as accurate as per-token 7-bit scales,
        # and saves the per-row max / divide / multiply passes
        options: dict[str, Any] = {"activation": "tensor", "keep_float_rows": True, "reduce_range": False}
    else:
        options = {"activation": "token", "keep_float_rows": True, "reduce_range": True}
    if cls_id is not None and sep_id is not None and vocab > 1000:
        options["calibration"] = calibration_ids(vocab, cls_id, sep_id)
        options["smooth"] = ("ffn_in",)
    return options


def quantize_encoder(encoder: Any, mode: str = "int8", *, targets: Iterable[str] = DEFAULT_TARGETS,
                     layers: Iterable[int] | None = None, per_channel: bool = True,
                     calibration: torch.Tensor | None = None, smooth: Iterable[str] = ("ffn_in",),
                     alpha: float = 0.5, activation: str = "token", keep_float_rows: bool = False,
                     reduce_range: bool = True) -> Any:
    """Replace (in place) the ``targets`` Linear modules of the encoder ``layers`` (default all).

    With ``calibration`` token ids, the ``smooth`` targets get SmoothQuant input scaling from the
    input ranges seen on them. ``reduce_range=False`` (8-bit activations) is only exact where
    :func:`full_range_safe` says so.
    """
    if quantize_mode(mode) != "int8":
        raise ValueError(f"unknown quantize [{mode}]")
    chosen = sorted(set(layers) if layers is not None else set(range(len(encoder.layers))))
    smooth = set(smooth) if calibration is not None else set()
    names = [f"layers.{i}.{name}" for i in chosen for name in targets if name in smooth]
    ranges = input_ranges(encoder, calibration, names) if names else {}
    for index in chosen:
        layer = encoder.layers[index]
        for name in targets:
            setattr(layer, name, Int8Linear(getattr(layer, name), per_channel=per_channel,
                                            input_max=ranges.get(f"layers.{index}.{name}"), alpha=alpha,
                                            activation=activation, keep_float_rows=keep_float_rows,
                                            reduce_range=reduce_range))
    return encoder
