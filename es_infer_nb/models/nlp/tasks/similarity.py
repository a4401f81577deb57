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


def combine_span_scores(outputs: list[np.ndarray], how: str) -> float:
    """``TextSimilarityProcessor.ResultProcessor``: one value per window, combined with ``max`` (from
    -infinity) or ``mean`` (the sum in window order over the count); ES's errors for a missing or
    mis-sized result."""
    if not outputs:
        raise ApiError("status_exception", "text_similarity result has no data", 500)
    values: list[float] = []
    for out in outputs:
        row = np.asarray(out, dtype=np.float64).reshape(-1)
        if row.size != 1:
            raise ApiError("status_exception", f"Expected exactly [1] value in text_similarity result; got "
                           f"[{row.size}]", 409)
        values.append(float(row[0]))
    if how == "max":
        return max(values, default=float("-inf"))
    total = 0.0
    for v in values:
        total += v
    return total / len(values)


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
        value = combine_span_scores(outputs, str(self.options.get("span_score_combination_function", "max")))
        return with_truncation({self.results_field: value}, windows)

    def stored_config(self) -> dict[str, Any]:
        out = super().stored_config()
        out.pop("text", None)
        return out
