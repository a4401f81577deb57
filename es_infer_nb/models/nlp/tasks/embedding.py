"""``text_embedding`` and ``pass_through``: the model output of the first window (spec §3.5)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ....errors import ApiError
from ..tokenization import NlpTokenizer, Window
from .base import HEAD_EMBEDDING, HEAD_HIDDEN, Task, as_int, with_truncation


class TextEmbedding(Task):
    NAME: ClassVar[str] = "text_embedding"
    HEAD: ClassVar[str] = HEAD_EMBEDDING
    OPTIONS: ClassVar[dict[str, Any]] = {"embedding_size": as_int}

    def validate(self) -> None:
        size = self.options.get("embedding_size")
        if size is not None and size <= 0:
            raise ApiError("illegal_argument_exception", f"[embedding_size] must be greater than 0; provided [{size}]",
                           400)

    def result(self, text: str, windows: list[Window], outputs: list[np.ndarray], tokenizer: NlpTokenizer
               ) -> dict[str, Any]:
        vector = np.asarray(outputs[0], dtype=np.float32).reshape(-1)
        return with_truncation({self.results_field: vector.tolist()}, windows)  # Python floats, exact


class PassThrough(Task):
    NAME: ClassVar[str] = "pass_through"
    HEAD: ClassVar[str] = HEAD_HIDDEN

    def result(self, text: str, windows: list[Window], outputs: list[np.ndarray], tokenizer: NlpTokenizer
               ) -> dict[str, Any]:
        tensor = np.asarray(outputs[0], dtype=np.float64)
        if tensor.ndim == 1:
            tensor = tensor[None, :]
        return with_truncation({self.results_field: tensor.tolist()}, windows)
