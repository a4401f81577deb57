"""``chunking_settings`` of text_embedding / sparse_embedding endpoints (ES's chunkers).

* ``sentence`` (ES's default since 8.16: ``max_chunk_size`` 250 words, ``sentence_overlap`` 1):
  whole sentences packed up to ``max_chunk_size`` words; with overlap 1 each chunk repeats the
  previous chunk's last sentence; a sentence longer than the limit is split on word boundaries.
* ``word`` (ES's older default: 250 words, ``overlap`` 100): windows of ``max_chunk_size`` words,
  each starting ``max_chunk_size - overlap`` words after the previous one.
* ``none``: the whole text is one chunk.

:func:`preview_chunks` shows the chunks of a text before any model runs::

    >>> from es_infer_nb.services.chunking import preview_chunks
    >>> preview_chunks("One two three. Four five.", {"strategy": "word", "max_chunk_size": 10, "overlap": 0})
    [{'text': 'One two three. Four five.', 'start': 0, 'end': 25}]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import ApiError

WORD = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)
SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"'”’)\]]*\s+")

DEFAULT_SETTINGS = {"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1}
WORD_MAX_RANGE = (10, 300)
SENTENCE_MAX_RANGE = (20, 300)


@dataclass(frozen=True)
class ChunkingSettings:
    strategy: str = "sentence"
    max_chunk_size: int | None = 250
    overlap: int | None = None
    sentence_overlap: int | None = 1

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"strategy": self.strategy}
        if self.strategy == "word":
            out.update(max_chunk_size=self.max_chunk_size, overlap=self.overlap)
        elif self.strategy == "sentence":
            out.update(max_chunk_size=self.max_chunk_size, sentence_overlap=self.sentence_overlap)
        return out

    def chunks(self, text: str) -> list[tuple[int, int]]:
        """``(start, end)`` character offsets of each chunk of ``text``."""
        if self.strategy == "none" or not text:
            return [(0, len(text))]
        words = [(m.start(), m.end()) for m in WORD.finditer(text)]
        if not words:
            return [(0, len(text))]
        assert self.max_chunk_size is not None
        if self.strategy == "word":
            spans = _word_windows(words, self.max_chunk_size, self.overlap or 0)
        else:
            spans = _sentence_chunks(text, words, self.max_chunk_size, self.sentence_overlap or 0)
        # first chunk from the text's start, last to its end (leading/trailing non-words kept)
        spans[0] = (0, spans[0][1])
        spans[-1] = (spans[-1][0], len(text))
        return spans


def _word_windows(words: list[tuple[int, int]], size: int, overlap: int) -> list[tuple[int, int]]:
    step = max(1, size - overlap)
    out = []
    for start in range(0, len(words), step):
        window = words[start : start + size]
        out.append((window[0][0], window[-1][1]))
        if start + size >= len(words):
            break
    return out


def _sentence_chunks(text: str, words: list[tuple[int, int]], size: int, overlap: int) -> list[tuple[int, int]]:
    bounds = [0] + [m.end() for m in SENTENCE_END.finditer(text)] + [len(text)]
    # each sentence: its words and its end offset (punctuation kept, trailing space dropped)
    sentences: list[tuple[list[tuple[int, int]], int]] = []
    for lo, hi in zip(bounds, bounds[1:]):
        inside = [w for w in words if lo <= w[0] < hi]
        if inside:
            sentences.append((inside, lo + len(text[lo:hi].rstrip())))
    chunks: list[tuple[int, int]] = []
    current: list[tuple[int, int]] = []
    current_end = 0
    last: tuple[list[tuple[int, int]], int] | None = None
    for sentence, end in sentences:
        if len(sentence) > size:  # an over-long sentence: its own word windows
            if current:
                chunks.append((current[0][0], current_end))
            windows = words_slice(sentence, size)
            chunks.extend((w[0][0], w[-1][1]) for w in windows[:-1])
            chunks.append((windows[-1][0][0], end))
            current, last = [], None
            continue
        if current and len(current) + len(sentence) > size:
            chunks.append((current[0][0], current_end))
            carry = last[0] if overlap and last is not None and len(last[0]) + len(sentence) <= size else []
            current = list(carry)
        current.extend(sentence)
        current_end = end
        last = (sentence, end)
    if current:
        chunks.append((current[0][0], current_end))
    return chunks


def words_slice(words: list[tuple[int, int]], size: int) -> list[list[tuple[int, int]]]:
    return [words[i : i + size] for i in range(0, len(words), size)]


def _invalid(message: str) -> ApiError:
    return ApiError("validation_exception", f"Validation Failed: 1: [chunking_settings] {message};", 400)


def _int_in(raw: dict[str, Any], key: str, lo: int, hi: int) -> int:
    if key not in raw:
        raise _invalid(f"does not contain the required setting [{key}]")
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"Invalid value type for setting [{key}], expected an integer")
    if not lo <= value <= hi:
        raise _invalid(f"Invalid value [{value}]. [{key}] must be between [{lo}] and [{hi}]")
    return value


def parse_chunking_settings(raw: Any) -> ChunkingSettings:
    """``chunking_settings`` as ES validates them; ``None``/``{}`` give ES's defaults."""
    if raw is None or raw == {}:
        return ChunkingSettings(**DEFAULT_SETTINGS)
    if not isinstance(raw, dict):
        raise _invalid("must be an object")
    strategy = raw.get("strategy")
    if strategy is None:
        raise _invalid("does not contain the required setting [strategy]")
    allowed = {"word": {"strategy", "max_chunk_size", "overlap"},
               "sentence": {"strategy", "max_chunk_size", "sentence_overlap"},
               "none": {"strategy"}}
    if strategy not in allowed:
        raise _invalid(f"Invalid chunkingStrategy [{strategy}], must be one of [word, sentence, none]")
    extra = sorted(set(raw) - allowed[strategy])
    if extra:
        raise _invalid(f"Invalid settings {extra} for [{strategy}] strategy, allowed: {sorted(allowed[strategy])}")
    if strategy == "none":
        return ChunkingSettings("none", None, None, None)
    if strategy == "word":
        size = _int_in(raw, "max_chunk_size", *WORD_MAX_RANGE)
        overlap = _int_in(raw, "overlap", 0, size // 2)
        return ChunkingSettings("word", size, overlap, None)
    size = _int_in(raw, "max_chunk_size", *SENTENCE_MAX_RANGE)
    sentence_overlap = _int_in(raw, "sentence_overlap", 0, 1) if "sentence_overlap" in raw else 1
    return ChunkingSettings("sentence", size, None, sentence_overlap)


def preview_chunks(text: str, chunking_settings: dict[str, Any] | ChunkingSettings | None = None) -> list[dict[str, Any]]:
    """The chunks an endpoint with these ``chunking_settings`` would embed for ``text``."""
    settings = (chunking_settings if isinstance(chunking_settings, ChunkingSettings)
                else parse_chunking_settings(chunking_settings))
    return [{"text": text[s:e], "start": s, "end": e} for s, e in settings.chunks(text)]
