"""``text_expansion`` (ELSER-style sparse vectors, spec §3.5).

Per window the model gives one weight per vocabulary entry; windows combine by element-wise max;
weights ``> 0`` are kept, as float32, sorted by weight descending; vocabulary tokens containing
``.`` have every ``.`` replaced by ``__`` (field-name safety).
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from ..tokenization import NlpTokenizer, Window
from .base import HEAD_EXPANSION, Task, with_truncation


def sanitized_vocab(vocab: Sequence[str]) -> dict[int, str]:
    """``buildSanitizedVocabMap``: id -> replacement, only for tokens that change."""
    return {i: t.replace(".", "__") for i, t in enumerate(vocab) if "." in t}


def weighted_tokens(weights: np.ndarray, vocab: Sequence[str], replacements: dict[int, str]
                    ) -> list[tuple[str, float]]:
    """Positive weights as ``(token, float32 weight)``, heaviest first (stable on ties)."""
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    idx = np.nonzero(w > 0)[0]
    idx = idx[idx < len(vocab)]
    values = w[idx].astype(np.float32)
    order = np.argsort(-values, kind="stable")
    return [(replacements.get(int(idx[o]), vocab[int(idx[o])]), float(values[o])) for o in order]


def combine(outputs: list[np.ndarray]) -> np.ndarray:
    """Windows merge by element-wise max."""
    return np.max(np.stack([np.asarray(o, dtype=np.float64).reshape(-1) for o in outputs]), axis=0)


class TextExpansion(Task):
    NAME: ClassVar[str] = "text_expansion"
    HEAD: ClassVar[str] = HEAD_EXPANSION

    def result(self, text: str, windows: list[Window], outputs: list[np.ndarray], tokenizer: NlpTokenizer
               ) -> dict[str, Any]:
        tokens = weighted_tokens(combine(outputs), tokenizer.vocab, sanitized_vocab(tokenizer.vocab))
        return with_truncation({self.results_field: dict(tokens)}, windows)

    def chunks(self, text: str, windows: list[Window], outputs: list[np.ndarray], tokenizer: NlpTokenizer
               ) -> list[dict[str, Any]]:
        """Chunked results: one ``{matched_text, weighted_tokens}`` per window."""
        replacements = sanitized_vocab(tokenizer.vocab)
        out = []
        for window, weights in zip(windows, outputs):
            matched = text[window.pieces[0].start:window.pieces[-1].end] if window.pieces else ""
            out.append({"matched_text": matched,
                        "weighted_tokens": dict(weighted_tokens(weights, tokenizer.vocab, replacements))})
        return out
