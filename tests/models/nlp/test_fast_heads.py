"""BERT sequence- and token-classification heads run on the fast encoder and give transformers' logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from es_infer_nb.models.nlp.network import Network
from es_infer_nb.models.nlp.tasks.base import HEAD_SEQUENCE, HEAD_TOKEN
from es_infer_nb.models.nlp.tokenization import Window


def _windows() -> list[Window]:
    single = Window(token_ids=[2, 5, 6, 7, 8, 3], token_map=[-1, 0, 1, 2, 3, -1], truncated=False, pieces=[])
    pair = Window(token_ids=[2, 5, 6, 3, 10, 11, 12, 3], token_map=[-1, 0, 1, -1, 0, 1, 2, -1], truncated=False,
                  pieces=[], seq_pair_offset=4)  # a second sequence: token type 1 from its first token
    return [single, pair, Window(token_ids=[2, 9, 3], token_map=[-1, 0, -1], truncated=False, pieces=[])]


@pytest.mark.parametrize("kind, head", [("sequence", HEAD_SEQUENCE), ("nli", HEAD_SEQUENCE), ("token", HEAD_TOKEN)])
def test_classification_heads_use_the_fast_encoder_and_match_transformers(tiny_models: dict[str, Path],
                                                                          kind: str, head: str) -> None:
    import torch
    import transformers

    folder = tiny_models[kind]
    network = Network(folder, head, precision="fp32")
    assert network.encoder is not None and network.model is None  # the fast path, not transformers
    assert network.packs_tokens  # CPU batches on their real tokens: budgeted by those

    cls = transformers.BertForSequenceClassification if head == HEAD_SEQUENCE \
        else transformers.BertForTokenClassification
    reference = cls.from_pretrained(str(folder)).eval()
    windows = _windows()
    ours = network(windows, pad_id=0)
    for window, got in zip(windows, ours):
        ids = torch.tensor([window.token_ids])
        types = torch.zeros_like(ids)  # ES's request: token type 0 everywhere, pairs included
        with torch.no_grad():
            logits = reference(input_ids=ids, token_type_ids=types).logits[0].numpy()
        np.testing.assert_allclose(got, logits, atol=2e-5, rtol=1e-4)


def test_a_model_on_transformers_pads_its_batches(tiny_models: dict[str, Path]) -> None:
    """A head the fast encoder does not run (masked LM: transformers' own model) computes padded
    batches: they stay budgeted by their padded size."""
    from es_infer_nb.models.nlp.tasks.base import HEAD_MASKED_LM

    network = Network(tiny_models["masked_lm"], HEAD_MASKED_LM, precision="fp32")
    assert network.encoder is None and network.model is not None
    assert not network.packs_tokens
