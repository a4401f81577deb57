"""``fill_mask``: the vocabulary distribution at the one mask token (spec §3.5)."""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Sequence

import numpy as np

from ....errors import ApiError
from ..tokenization import NlpTokenizer, Window
from .base import HEAD_MASKED_LM, Task, as_int, as_str, reject_span, with_truncation
from .helpers import softmax, top_k

SENTENCEPIECE_SPACE = "\u2581"  # XLM-RoBERTa's Unigram marks a leading space with ▁ (``UnigramTokenizer.PREFIX``)
#: kinds whose results decode vocabulary entries from GPT-2's byte-level alphabet (``RobertaTokenizationResult``)
BYTE_LEVEL_KINDS = ("roberta", "byte_level_bpe")


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's ``bytes_to_unicode`` reversed (ES's ``BpeTokenizer.byteEncoder``): printable bytes stand for
    themselves, the others for the code points from U+0100 on, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1),
                 *range(ord("\u00ae"), ord("\u00ff") + 1)]
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def _java_trim(text: str) -> str:
    """``String.trim``: every leading and trailing character up to U+0020 removed."""
    return text.strip("".join(chr(i) for i in range(0x21)))


def decode(token: str, kind: str = "bert") -> str:
    """A vocabulary entry as the result shows it (``TokenizationResult.decode`` of the tokenizer ``kind``):
    as is for WordPiece and DeBERTa (``##`` kept), one leading ``▁`` dropped for XLM-RoBERTa, the
    byte-level characters read back as UTF-8 and trimmed for RoBERTa."""
    if kind == "xlm_roberta":
        return token[1:] if token.startswith(SENTENCEPIECE_SPACE) else token
    if kind in BYTE_LEVEL_KINDS:
        table = _byte_decoder()
        raw = b"".join(bytes([table[ch]]) if ch in table else ch.encode("utf-8") for ch in token)
        return _java_trim(raw.decode("utf-8", errors="replace"))
    return token


def validate_mask(text: str, mask_token: str) -> None:
    """Exactly one mask token in the input."""
    first = text.find(mask_token)
    if first < 0:
        raise ApiError("validation_exception",
                       f"Validation Failed: 1: no {mask_token} token could be found in the input;", 400)
    if text.find(mask_token, first + len(mask_token)) > 0:  # searched again after the first mask
        raise ApiError("status_exception", f"only one {mask_token} token should exist in the input", 400)


def fill_mask_result(results_field: str, text: str, token_ids: Sequence[int], logits: np.ndarray, mask_id: int | None,
                     mask_token: str, vocab: Sequence[str], num_top_classes: int, kind: str = "bert"
                     ) -> dict[str, Any]:
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
    k = scores.shape[0] if num_top_classes == -1 else max(num_top_classes, 1)  # -1 is all; at least the best one
    best = top_k(k, scores)
    predicted = decode(vocab[best[0][1]], kind)
    out: dict[str, Any] = {results_field: predicted}
    if num_top_classes != 0:
        out["top_classes"] = [{"class_name": decode(vocab[i], kind), "class_probability": s, "class_score": s}
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
                                                int(self.options.get("num_top_classes", 0)),
                                                tokenizer.settings.kind), windows)
