"""``text_similarity`` (cross-encoder): the raw logit of (``text``, document) per window, combined
with ``max`` or ``mean`` (spec §3.5)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ....errors import ApiError
from ..tokenization import NlpTokenizer, Window
from .base import HEAD_SEQUENCE, Task, as_str, with_truncation

COMBINATIONS = ("max", "mean")


def _combination(task: str, key: str, value: Any) -> str:
    text = as_str(task, key, value).lower()
    if text not in COMBINATIONS:
        raise ApiError("illegal_argument_exception",
                       f"No enum constant org.elasticsearch.xpack.core.ml.inference.trainedmodel."
                       f"TextSimilarityConfig.SpanScoreFunction.{text.upper()}", 400)
    return text


class TextSimilarity(Task):
    NAME: ClassVar[str] = "text_similarity"
    HEAD: ClassVar[str] = HEAD_SEQUENCE
    OPTIONS: ClassVar[dict[str, Any]] = {"text": as_str, "span_score_combination_function": _combination}
    UPDATES: ClassVar[tuple[str, ...]] = ("text", "span_score_combination_function")
    REQUIRED_UPDATE: ClassVar[str | None] = "text"
    ONE_INPUT: ClassVar[str | None] = "text_similarity"

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"span_score_combination_function": "max"}

    def check_request(self) -> None:
        self.text  # noqa: B018 - raises the ES error when missing

    @property
    def text(self) -> str:
        text = self.options.get("text")
        if text is None:
            raise ApiError("status_exception", "please provide configuration update for text_similarity task including "
                           "the desired [text]", 400)
        return str(text)

    def windows(self, text: str, tokenizer: NlpTokenizer) -> list[Window]:
        t = self.tokenization
        return tokenizer.tokenize_pair_span(self.text, text, t.truncate, t.span)

    def result(self, text: str, windows: list[Window], outputs: list[np.ndarray], tokenizer: NlpTokenizer
               ) -> dict[str, Any]:
        scores = np.array([float(np.asarray(o, dtype=np.float64).reshape(-1)[0]) for o in outputs])
        how = self.options.get("span_score_combination_function", "max")
        value = float(scores.max() if how == "max" else scores.mean())
        return with_truncation({self.results_field: value}, windows)

    def stored_config(self) -> dict[str, Any]:
        out = super().stored_config()
        out.pop("text", None)
        return out
