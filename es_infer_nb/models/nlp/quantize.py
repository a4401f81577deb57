"""Dynamic int8 quantization for CPU inference (eland's ``--quantize``).

eland's ``eland_import_hub_model --quantize`` runs
``torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)``: int8
weights, activations quantized on the fly. Done to *every* Linear of all-MiniLM-L6-v2 that costs
too much accuracy (minimum cosine to the float model about 0.87 on a 5,500-sentence corpus), so
:func:`quantize_encoder` quantizes a chosen subset: see :data:`DEFAULT_TARGETS`.
"""

from __future__ import annotations

from typing import Any, Iterable

__all__ = ["DEFAULT_TARGETS", "quantize_encoder", "quantize_mode"]

#: the Linear sub-module names (inside each encoder layer) quantized by default
DEFAULT_TARGETS: tuple[str, ...] = ("ffn_in", "ffn_out", "qkv", "attn_out")


def quantize_mode(quantize: str | bool | None) -> str | None:
    """``None``/``False`` -> ``None``; ``True`` / ``"int8"`` / ``"qint8"`` -> ``"int8"``."""
    if quantize is None or quantize is False:
        return None
    if quantize is True or str(quantize).lower() in ("int8", "qint8"):
        return "int8"
    raise ValueError(f"unknown quantize [{quantize}]; use int8 (dynamic int8 quantization) or None")


def quantize_encoder(encoder: Any, mode: str = "int8", *, targets: Iterable[str] = DEFAULT_TARGETS,
                     layers: Iterable[int] | None = None, per_channel: bool = True) -> Any:
    """Quantize (in place) the ``targets`` Linear modules of the encoder ``layers`` (default all)."""
    import torch
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    if quantize_mode(mode) != "int8":
        raise ValueError(f"unknown quantize [{mode}]")
    torch.backends.quantized.engine = "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "qnnpack"
    chosen = set(layers) if layers is not None else set(range(len(encoder.layers)))
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    spec = {f"layers.{i}.{name}": qconfig for i in sorted(chosen) for name in targets}
    return quantize_dynamic(encoder, spec, dtype=torch.qint8, inplace=True)
