"""The fast BERT encoder in a concrete precision: one builder for the embedded MiniLM and for imported
plain-BERT models (text_embedding / pass_through heads), so both run the same code.

* ``fp32``: :class:`.bert_encoder.BertEncoder`, CPU projections on packed weights (MKL's GEMM on Intel CPUs,
  :class:`.mkl_gemm.MKLLinear`; oneDNN elsewhere, :class:`.bert_encoder.OneDNNLinear`),
  the first layer's Q/K/V projection from tables of the embeddings and the layer norms in C (:mod:`.native_norm`);
* ``bf16``: on CPU the projections, attention and residual stream in bfloat16 with float32 softmax
  and layer-norm statistics (:meth:`.bert_encoder.BertEncoder.use_bf16`), the first projection from the
  float32 tables and the norms in C as for fp32; on CUDA bfloat16 throughout;
* ``fp16``: float16 throughout;
* ``int8``: :func:`.quantize.quantize_encoder` with :func:`.quantize.int8_options` (CPU), the first layer's
  Q/K/V projection from the float32 tables (ATen's layer norms: in C they measured no faster and less close).
"""

from __future__ import annotations

import copy
from typing import Any

from .bert_encoder import BertEncoder, supports
from .precision import torch_dtype
from .quantize import int8_options, quantize_encoder

__all__ = ["build_encoder", "supports"]


def build_encoder(model: Any, precision: str, device: str, tokenizer: Any = None) -> BertEncoder:
    """A :class:`BertEncoder` of a copy of ``model``'s weights (a transformers ``BertModel``, see
    :func:`supports`) in ``precision`` (a concrete one) on ``device``."""
    if not supports(model.config):
        raise ValueError(f"the fast encoder needs a plain BERT model, not {model.config.model_type}")
    encoder = BertEncoder(copy.deepcopy(model))
    if precision == "int8":
        if device != "cpu":
            raise ValueError("precision int8 is dynamic CPU quantization; use device=cpu")
        # the first layer's Q/K/V from tables of the float32 weights, not its int8 GEMM: bench corpus,
        # min cosine to fp32 0.9936 -> 0.9969 and 3% faster (one thread); the word table (141 MB) is the one
        # the model's fp32 / bf16 encoders use where they are loaded too
        encoder.use_embedding_tables()
        encoder = quantize_encoder(encoder, "int8", **int8_options(model.config, tokenizer))
        encoder.keep_embedding_tables()
    cpu_bf16 = precision == "bf16" and device == "cpu"
    encoder = encoder.to(device, torch_dtype("fp32" if cpu_bf16 else precision))
    if device == "cpu" and precision in ("fp32", "bf16"):
        if precision == "fp32":
            encoder.use_packed_gemms()  # float32 projections on MKL's packed GEMM (Intel) or oneDNN (elsewhere)
        encoder.use_embedding_tables()  # the first layer's Q/K/V from tables of the (float32) embeddings
        encoder.use_native_norms()  # the residual adds and layer norms in place in C (int8: +0.7%, noise)
    if cpu_bf16:
        encoder.use_bf16()  # bfloat16 GEMMs (AMX / AVX512-BF16 through oneDNN) and residuals
    return encoder
