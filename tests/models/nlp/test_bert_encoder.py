"""The fast BERT encoder's bfloat16 pieces: the short-batch attention and the bfloat16 residual stream."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from es_infer_nb.models.nlp import bert_encoder
from es_infer_nb.models.nlp.bert_encoder import BF16Linear, onednn_available


def _qkv(batch: int, length: int, heads: int = 4, head_dim: int = 8) -> tuple[torch.Tensor, ...]:
    """Q, K, V as the encoder slices them: strided views of one fused (tokens, 3 * hidden) projection."""
    torch.manual_seed(0)
    fused = torch.randn(batch * length, 3 * heads * head_dim).bfloat16()
    return fused.view(batch, length, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)


def _mask_bias(batch: int, length: int) -> torch.Tensor:
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[0, length // 2:] = False  # one padded text
    bias = torch.zeros(batch, length, dtype=torch.bfloat16)
    bias.masked_fill_(~mask, torch.finfo(torch.bfloat16).min)
    return bias[:, None, None, :]


@pytest.mark.parametrize("masked", [False, True])
def test_short_bf16_attention_matches_float32_attention_and_is_token_major(masked):
    batch, length = 3, 10
    q, k, v = _qkv(batch, length)
    bias = _mask_bias(batch, length) if masked else None
    assert length <= bert_encoder.SHORT_BF16_ATTENTION  # the two-matmul path
    with torch.inference_mode():
        ctx = bert_encoder._attend(q, k, v, bias)
        exact = F.scaled_dot_product_attention(q.float(), k.float(), v.float(),
                                               attn_mask=None if bias is None else bias.float(), scale=1.0)
    assert ctx.shape == (batch, 4, length, 8) and ctx.dtype is torch.bfloat16
    # written in the layout the output projection reads: (batch, tokens, heads, head_dim) contiguous
    assert ctx.transpose(1, 2).is_contiguous()
    torch.testing.assert_close(ctx.float(), exact, atol=2e-2, rtol=2e-2)


@pytest.mark.skipif(not onednn_available(), reason="oneDNN's linear is not available in this torch build")
def test_bf16_linear_accumulates_into_a_bfloat16_residual():
    torch.manual_seed(1)
    linear = nn.Linear(32, 16)
    fast = BF16Linear(linear)
    x = torch.randn(5, 32)
    h = torch.randn(5, 16).bfloat16()
    with torch.inference_mode():
        out = fast.accumulate(x, h)
        exact = h.float() + linear(x)
    assert out.dtype is torch.bfloat16
    torch.testing.assert_close(out.float(), exact, atol=5e-2, rtol=2e-2)


def test_use_bf16_keeps_the_residual_stream_in_bfloat16(tiny_models):
    from transformers import AutoModel

    from es_infer_nb.models.nlp.bert_encoder import BertEncoder

    model = AutoModel.from_pretrained(str(tiny_models["base"])).eval()
    encoder = BertEncoder(model)
    vocab = model.config.vocab_size
    ids = torch.tensor([[2, 7, 8, 9, 3], [2, 7, 3, 0, 0]]) % vocab
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    with torch.inference_mode():
        exact = encoder(ids, mask)
        assert encoder.use_bf16()
        assert encoder.residual_dtype is torch.bfloat16
        fast = encoder(ids, mask)
    assert fast.dtype is torch.bfloat16
    cos = F.cosine_similarity(fast.float()[mask], exact[mask], dim=-1)
    assert float(cos.min()) >= 0.999, float(cos.min())
