"""The numeric precision an NLP model runs in, and the one place ``"auto"`` is decided.

``precision`` is a public option of every NLP entry point (``df.infer.run``, ``import_hf_model``,
deployment ``_start``, ``es-infer embed``, the Dask accessor):

* ``"fp32"``: float32 everywhere (the reference);
* ``"bf16"``: the encoder's projections (and attention) in bfloat16 with float32 accumulation,
  layer norms and the residual stream in float32 (on CPUs with AMX / AVX512-BF16 oneDNN runs the
  GEMMs on the bf16 units);
* ``"fp16"``: float16 weights and activations (what a GPU wants);
* ``"int8"``: dynamic int8 quantization of the projections, CPU only (:mod:`.quantize`);
* ``"auto"`` (the default): the fastest of these on the device whose vectors stay within cosine
  0.9999 of float32: ``fp16`` on CUDA, ``bf16`` on a CPU with native bf16 (AMX or AVX512-BF16,
  unless ``ONEDNN_MAX_CPU_ISA`` / ``ATEN_CPU_CAPABILITY`` caps the ISA below it), ``fp32`` elsewhere.
  int8 is never picked by ``auto`` (its vectors drift to cosine ~0.996).

:func:`resolve_precision` is the resolver every loader calls; :func:`cpu_capability` is the probe
(tests replace it to simulate other CPUs).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_ENV", "PRECISIONS", "CpuCapability", "amx_int8_supported", "avx512_supported", "bf16_supported",
           "check_precision", "cpu_capability", "default_precision", "resolve_precision", "torch_dtype",
           "vnni_int8_supported"]

#: the environment variable naming the precision used when none is given (default ``auto``)
DEFAULT_ENV = "ES_INFER_NB_PRECISION"

#: what ``precision`` accepts
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16", "int8")
#: the concrete precisions ``auto`` resolves among
CONCRETE: tuple[str, ...] = ("fp32", "bf16", "fp16", "int8")

#: oneDNN's CPU ISA names (``ONEDNN_MAX_CPU_ISA``), weakest first; bf16 GEMMs need AVX512_CORE_BF16 or above
ONEDNN_ISAS: tuple[str, ...] = (
    "SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_CORE_BF16",
    "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX", "AVX512_CORE_AMX", "AVX10_1_512_AMX_FP16",
    "AVX512_CORE_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2",
)
BF16_MIN_ISA = "AVX512_CORE_BF16"
#: CPU flags (``/proc/cpuinfo``) that give native bf16 dot products
BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@dataclass(frozen=True)
class CpuCapability:
    """What the CPU offers and what the process is allowed to use of it."""

    flags: frozenset[str] = field(default_factory=frozenset)
    #: ``ONEDNN_MAX_CPU_ISA`` (or the older ``DNNL_MAX_CPU_ISA``), upper-cased; ``None`` when unset
    onednn_max_isa: str | None = None
    #: ``torch.backends.cpu.get_cpu_capability()`` (``AVX512``, ``AVX2``, ``DEFAULT``...)
    aten: str | None = None
    #: ``vendor_id`` of ``/proc/cpuinfo`` (``GenuineIntel``, ``AuthenticAMD``); ``None`` when unknown
    vendor: str | None = None

    def describe(self) -> str:
        bf16 = sorted(self.flags & BF16_FLAGS) or ["no bf16 flags"]
        isa = f", ONEDNN_MAX_CPU_ISA={self.onednn_max_isa}" if self.onednn_max_isa else ""
        return f"{', '.join(bf16)}, ATen {self.aten or 'unknown'}{isa}"


def _cpu_info() -> tuple[frozenset[str], str | None]:
    """The first processor's flags and vendor in ``/proc/cpuinfo`` (none where it cannot be read)."""
    flags: frozenset[str] | None = None
    vendor = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if flags is None and line.startswith(("flags", "Features")):
                    flags = frozenset(line.split(":", 1)[1].split())
                elif vendor is None and line.startswith("vendor_id"):
                    vendor = line.split(":", 1)[1].strip() or None
                if flags is not None and vendor is not None:
                    break
    except OSError:
        pass
    return flags or frozenset(), vendor


@functools.cache
def _probe() -> CpuCapability:
    aten = None
    try:
        import torch

        aten = str(torch.backends.cpu.get_cpu_capability())
    except (ImportError, AttributeError, RuntimeError):
        pass
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    flags, vendor = _cpu_info()
    return CpuCapability(flags, isa.strip().upper() if isa else None, aten, vendor)


def cpu_capability() -> CpuCapability:
    """This process's CPU: its flags and the ISA caps set for oneDNN / ATen (probed once)."""
    return _probe()


def _isa_allows(cap: CpuCapability, min_isa: str, aten_prefixes: tuple[str, ...]) -> bool:
    """Whether neither ATen's capability (``ATEN_CPU_CAPABILITY``) nor oneDNN's ISA cap
    (``ONEDNN_MAX_CPU_ISA``) holds this process below ``min_isa`` (an unknown cap name: held)."""
    if cap.aten is not None and not cap.aten.upper().startswith(aten_prefixes):
        return False  # ATen capped (to AVX2 / DEFAULT): a weaker CPU class is being simulated
    isa = (cap.onednn_max_isa or "").strip().upper()
    if isa and isa not in ("ALL", "DEFAULT"):
        return isa in ONEDNN_ISAS and ONEDNN_ISAS.index(isa) >= ONEDNN_ISAS.index(min_isa)
    return True


def amx_int8_supported(cap: CpuCapability | None = None) -> bool:
    """Whether int8 GEMMs run on AMX tiles here: an ``amx_int8`` CPU with oneDNN not capped below
    ``AVX512_CORE_AMX`` (nor ATen below AVX-512)."""
    cap = cap if cap is not None else cpu_capability()
    return "amx_int8" in cap.flags and _isa_allows(cap, "AVX10_1_512_AMX", ("AVX512", "AVX10"))


def vnni_int8_supported(cap: CpuCapability | None = None) -> bool:
    """Whether int8 GEMMs accumulate in int32 on AVX512-VNNI here (``vpdpbusd``): an ``avx512_vnni``
    CPU with oneDNN not capped below ``AVX512_CORE_VNNI`` (nor ATen below AVX-512)."""
    cap = cap if cap is not None else cpu_capability()
    return "avx512_vnni" in cap.flags and _isa_allows(cap, "AVX512_CORE_VNNI", ("AVX512", "AVX10"))


def avx512_supported(cap: CpuCapability | None = None) -> bool:
    """Whether oneDNN runs its AVX-512 kernels here: an ``avx512f`` CPU with neither oneDNN nor ATen
    capped below AVX-512 (an AVX2-class CPU, real or simulated, answers ``False``)."""
    cap = cap if cap is not None else cpu_capability()
    return "avx512f" in cap.flags and _isa_allows(cap, "AVX512_CORE", ("AVX512", "AVX10"))


def bf16_supported(cap: CpuCapability | None = None) -> bool:
    """Whether bf16 GEMMs run natively here: an AMX or AVX512-BF16 CPU, with neither oneDNN
    (``ONEDNN_MAX_CPU_ISA``) nor ATen (``ATEN_CPU_CAPABILITY``) capped below it."""
    cap = cap if cap is not None else cpu_capability()
    return bool(cap.flags & BF16_FLAGS) and _isa_allows(cap, BF16_MIN_ISA, ("AVX512", "AVX10", "ZVECTOR", "SVE"))


def default_precision() -> str:
    """The precision of a call that names none: ``$ES_INFER_NB_PRECISION`` when set, else ``auto``."""
    value = os.environ.get(DEFAULT_ENV)
    return check_precision(value, DEFAULT_ENV) if value else "auto"


def check_precision(value: Any, field_name: str = "precision") -> str:
    """``value`` as one of :data:`PRECISIONS` (``None`` -> :func:`default_precision`), or a
    ValueError naming the field and the valid values."""
    if value is None:
        return default_precision()
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text not in PRECISIONS:
        raise ValueError(f"[{field_name}] must be one of {list(PRECISIONS)}, got [{value}]")
    return text


def resolve_precision(precision: Any, device: str = "cpu", *, field_name: str = "precision") -> str:
    """The concrete precision (``fp32`` / ``bf16`` / ``fp16`` / ``int8``) a model runs in on ``device``.

    ``None``: :func:`default_precision`. ``auto``: ``fp16`` on CUDA, ``bf16`` on a CPU where :func:`bf16_supported`, else ``fp32``.
    ``int8`` is dynamic CPU quantization: asked for on CUDA it is a ValueError.
    """
    name = check_precision(precision, field_name)
    cuda = str(device).startswith("cuda")
    if name == "auto":
        if cuda:
            return "fp16"
        return "bf16" if bf16_supported() else "fp32"
    if name == "int8" and cuda:
        raise ValueError(f"[{field_name}] int8 is dynamic CPU quantization; use device=cpu, or precision fp16 / "
                         "auto on CUDA")
    return name


def torch_dtype(precision: str) -> Any:
    """The torch dtype of a concrete precision's activations (int8 computes around float32)."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16,
            "int8": torch.float32}[precision]
