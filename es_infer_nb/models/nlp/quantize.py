"""Dynamic int8 quantization for CPU inference (eland's ``--quantize``), accurate enough for search.

eland's ``eland_import_hub_model --quantize`` runs
``torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)``: int8
weights, activations quantized on the fly with one scale per tensor, and on x86 only 7 bits of
activation range (``reduce_range``). On all-MiniLM-L6-v2 that costs a lot (minimum cosine to the
float model 0.87-0.92 on the 5,500-sentence bench corpus), for two reasons measured there:

* the ``[CLS]`` token's hidden state carries outliers 3-10x larger than any other token's (up to
  ~28 in the FFN inputs of the first layers, where other tokens stay below ~13), and one scale per
  tensor then wastes most of the int8 range on one row per text;
* 7-bit activations halve the resolution again.

:class:`Int8Linear` fixes both: every row but each sequence's first (``[CLS]``) is quantized and
multiplied by fbgemm's int8 kernels with the full 8-bit activation range and per-output-channel
weight scales; the first rows (one per text: ~3% of the tokens of the corpus) run in float32 against
the original weights. Padding rows (never read) are zeroed so they cannot widen the range either.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DEFAULT_TARGETS", "Int8Linear", "quantize_encoder", "quantize_mode"]

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


class Int8Linear(nn.Module):
    """A ``nn.Linear`` as int8 weights (per output channel) x dynamically quantized 8-bit inputs.

    ``forward(x, rows)``: ``x`` is ``(tokens, in_features)``; with ``rows=(float_rows, zero_rows)``
    the row indices (or a ``slice``) in ``float_rows`` are computed in float32 instead and kept
    out of the activation range, and ``zero_rows`` (padding) are zeroed first.
    """

    row_aware = True

    def __init__(self, linear: nn.Linear, per_channel: bool = True, input_max: torch.Tensor | None = None,
                 alpha: float = 0.5) -> None:
        super().__init__()
        _engine()
        weight = linear.weight.detach().float().contiguous()
        bias = linear.bias.detach().float().contiguous() if linear.bias is not None else None
        self.in_features, self.out_features = linear.in_features, linear.out_features
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
            self._packed = torch.ops.quantized.linear_prepack(qweight, bias)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.register_buffer("input_scale", None if smooth is None else (1.0 / smooth).contiguous())

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 (fbgemm, 8-bit activations)"

    def forward(self, x: torch.Tensor, rows: tuple[Any, Any] | None = None) -> torch.Tensor:
        if rows is None:
            return torch.ops.quantized.linear_dynamic(x, self._packed, True)
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
        y = torch.ops.quantized.linear_dynamic(scaled, self._packed, True)
        if scaled is x:
            x[float_rows] = kept
        y[float_rows] = F.linear(kept, self.weight, self.bias)
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


def quantize_encoder(encoder: Any, mode: str = "int8", *, targets: Iterable[str] = DEFAULT_TARGETS,
                     layers: Iterable[int] | None = None, per_channel: bool = True,
                     calibration: torch.Tensor | None = None, smooth: Iterable[str] = ("ffn_in",),
                     alpha: float = 0.5) -> Any:
    """Replace (in place) the ``targets`` Linear modules of the encoder ``layers`` (default all).

    With ``calibration`` token ids, the ``smooth`` targets get SmoothQuant input scaling from the
    input ranges seen on them.
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
                                            input_max=ranges.get(f"layers.{index}.{name}"), alpha=alpha))
    return encoder
