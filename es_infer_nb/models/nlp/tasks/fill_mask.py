"""``fill_mask``: the vocabulary distribution at the one mask token (spec §3.5)."""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from ....errors import ApiError
from ..tokenization import NlpTokenizer, Window
from .base import HEAD_MASKED_LM, Task, as_int, as_str, reject_span, with_truncation
from .helpers import softmax, top_k

BYTE_LEVEL_SPACE = "\u0120"  # GPT-2 / RoBERTa byte-level BPE marks a leading space with Ġ
SENTENCEPIECE_SPACE = "\u2581"


def decode(token: str) -> str:
    """A vocabulary entry as text (``TokenizationResult.decode``): no ``##`` / ``Ġ`` / ``▁`` marker."""
    if token.startswith("##"):
        return token[2:]
    return token.lstrip(BYTE_LEVEL_SPACE + SENTENCEPIECE_SPACE) or token


def validate_mask(text: str, mask_token: str) -> None:
    """Exactly one mask token in the input."""
    first = text.find(mask_token)
    if first < 0:
        raise ApiError("validation_exception",
                       f"Validation Failed: 1: no {mask_token} token could be found in the input;", 400)
    if text.find(mask_token, first + 1) > 0:
        raise ApiError("status_exception", f"only one {mask_token} token should exist in the input", 400)


def fill_mask_result(results_field: str, text: str, token_ids: Sequence[int], logits: np.ndarray, mask_id: int | None,
                     mask_token: str, vocab: Sequence[str], num_top_classes: int) -> dict[str, Any]:
    # FillMaskProcessor.processResult's checks, in its order
    if len(token_ids) == 0:
        raise ApiError("status_exception", "tokenization is empty", 500)
    if mask_id is None:
        raise ApiError("status_exception", f"The token id for the mask token {mask_token} is not known in the "
                       "tokenizer. Check the vocabulary contains the mask token", 409)
    if mask_id not in token_ids:
        raise ApiError("status_exception", f"mask token id [{mask_id}] not found in the tokenization", 500)
    position = list(token_ids).index(mask_id)
    scores = softmax(np.asarray(logits, dtype=np.float64)[position])
    k = scores.shape[0] if num_top_classes < 0 else max(num_top_classes, 1)
    best = top_k(k, scores)
    predicted = decode(vocab[best[0][1]])
    out: dict[str, Any] = {results_field: predicted}
    if num_top_classes != 0:
        out["top_classes"] = [{"class_name": decode(vocab[i]), "class_probability": s, "class_score": s}
                              for s, i in best]
    out["prediction_probability"] = best[0][0]
    out[f"{results_field}_sequence"] = text.replace(mask_token, predicted)
    return out


class FillMask(Task):
    NAME: ClassVar[str] = "fill_mask"
    HEAD: ClassVar[str] = HEAD_MASKED_LM
    OPTIONS: ClassVar[dict[str, Any]] = {"num_top_classes": as_int, "mask_token": as_str}
    UPDATES: ClassVar[tuple[str, ...]] = ("num_top_classes",)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"num_top_classes": 0}

    def validate(self) -> None:
        reject_span(self)  # FillMaskConfig's constructor
        mask = self.options.get("mask_token")
        if mask is not None and mask != self.tokenization.mask_token:
            raise ApiError("illegal_argument_exception",
                           f"Mask token requested was [{mask}] but must be [{self.tokenization.mask_token}] for this "
                           f"model", 400)

    def validate_update(self, stored: Task) -> None:
        reject_span(self)  # FillMaskConfigUpdate.apply builds a FillMaskConfig: its span check

    def validate_input(self, text: str, tokenizer: NlpTokenizer) -> None:
        validate_mask(text, tokenizer.mask_token)

    def result(self, text: str, windows: list[Window], outputs: list[np.ndarray], tokenizer: NlpTokenizer
               ) -> dict[str, Any]:
        return with_truncation(fill_mask_result(self.results_field, text, windows[0].token_ids, outputs[0],
                                                tokenizer.mask_id, tokenizer.mask_token, tokenizer.vocab,
                                                int(self.options.get("num_top_classes", 0))), windows)
