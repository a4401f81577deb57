"""``chunking_settings`` of text_embedding / sparse_embedding endpoints, and ES's chunkers.

* ``sentence`` (ES's default: ``max_chunk_size`` 250 words, ``sentence_overlap`` 1): whole sentences packed
  up to ``max_chunk_size`` words; with ``sentence_overlap`` 1 each chunk starts with the sentence before it
  (its last ``min(max_chunk_size / 2, 20)`` words where it is longer); a sentence (with its overlap) longer
  than the limit is cut into word windows overlapping by ``min(20, (max_chunk_size - 1) / 2)`` words, the
  last of them taking the following sentences in. A chunk ends where the next sentence starts.
* ``word`` (``max_chunk_size`` words, ``overlap`` 1 .. max / 2): windows of ``max_chunk_size`` words, each
  starting ``max_chunk_size - overlap`` words after the one before, at the boundary right after the word
  before it (the separator between two words belongs to the later chunk); a full last window ends at its
  last word, a partial one at the end of the text.
* ``recursive``: the text cut at the first of ``separators`` (regexes; or a ``separator_group``:
  ``plaintext`` / ``markdown``), the pieces merged back up to ``max_chunk_size`` words, a piece still too
  long cut at the next separator, and sentence chunks (no overlap) once none is left.
* ``none``: the whole text is one chunk.

Words and sentences are :mod:`.text_breaks`' (ICU's rules, as ES's ``BreakIterator``). Settings are
validated as ES's ``*ChunkingSettings.fromMap`` do, every error of a map reported at once.

:func:`preview_chunks` shows the chunks of a text before any model runs::

    >>> from es_infer_nb.services.chunking import preview_chunks
    >>> preview_chunks("One two three. Four five.", {"strategy": "word", "max_chunk_size": 10, "overlap": 1})
    [{'text': 'One two three. Four five.', 'start': 0, 'end': 25}]
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

import regex

from ..errors import ApiError
from .text_breaks import sentence_breaks, word_spans

DEFAULT_SETTINGS = {"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1}
WORD_MAX_RANGE = (10, 300)
SENTENCE_MAX_RANGE = (20, 300)
STRATEGIES = ("word", "sentence", "recursive", "none")
#: RecursiveChunkingSettings' named separator groups
SEPARATOR_GROUPS: dict[str, tuple[str, ...]] = {
    "plaintext": (r"(?<!\n)\n\n(?!\n)", r"(?<!\n)\n(?!\n)"),
    "markdown": ("\n# ", "\n## ", "\n### ", "\n#### ", "\n##### ", "\n###### ", "\n^(?!\\s*$).*\\n-{1,}\\n",
                 "\n^(?!\\s*$).*\\n={1,}\\n"),
}


@dataclass(frozen=True)
class ChunkingSettings:
    strategy: str = "sentence"
    max_chunk_size: int | None = 250
    overlap: int | None = None
    sentence_overlap: int | None = 1
    separators: tuple[str, ...] | None = None
    separator_group: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"strategy": self.strategy}
        if self.strategy == "word":
            out.update(max_chunk_size=self.max_chunk_size, overlap=self.overlap)
        elif self.strategy == "sentence":
            out.update(max_chunk_size=self.max_chunk_size, sentence_overlap=self.sentence_overlap)
        elif self.strategy == "recursive":
            out["max_chunk_size"] = self.max_chunk_size
            out["separators"] = list(self.separator_list())
        return out

    def separator_list(self) -> tuple[str, ...]:
        if self.separators is not None:
            return self.separators
        return SEPARATOR_GROUPS[self.separator_group or "plaintext"]

    def chunks(self, text: str) -> list[tuple[int, int]]:
        """``(start, end)`` character offsets of each chunk of ``text``."""
        if self.strategy == "none":
            return [(0, len(text))]
        assert self.max_chunk_size is not None
        if self.strategy == "word":
            return [(s, e) for s, e, _ in word_windows(text, self.max_chunk_size, self.overlap or 0)]
        if self.strategy == "recursive":
            return _Recursive(text, self.separator_list(), self.max_chunk_size).chunks()
        return sentence_chunks(text, self.max_chunk_size, bool(self.sentence_overlap))


#: what ES's EmbeddingRequestChunker chunks with for an endpoint that has no chunking settings
REQUEST_CHUNKER_DEFAULT = ChunkingSettings("word", 250, 100, None)


class _Words:
    """A text's words: counts and skips over offsets."""

    def __init__(self, text: str) -> None:
        spans = word_spans(text)
        self.starts = [s for s, _ in spans]
        self.ends = [e for _, e in spans]

    def count(self, start: int, end: int) -> int:
        """Words that start at or after ``start`` and end by ``end``."""
        return max(0, bisect.bisect_right(self.ends, end) - bisect.bisect_left(self.starts, start))

    def skip(self, start: int, n: int) -> int:
        """Where the word after the first ``n`` words from ``start`` begins (``start`` itself for none)."""
        first = bisect.bisect_left(self.starts, start)
        if n <= 0 or first >= len(self.starts):
            return start
        if first + n < len(self.starts):
            return self.starts[first + n]
        return self.ends[-1]


def word_windows(text: str, size: int, overlap: int) -> list[tuple[int, int, int]]:
    """``WordBoundaryChunker.chunkPositions``: ``(start, end, words)`` of each window; none for ``""``."""
    if not text:
        return []
    ends = [e for _, e in word_spans(text)]
    step = size - overlap
    out: list[tuple[int, int, int]] = []
    counted, since_mark, start, next_start = 0, 0, 0, 0
    for end in ends:
        counted += 1
        since_mark += 1
        if counted >= size:
            out.append((start, end, counted))
            counted = overlap
            if overlap == 0:
                next_start = end
            start = next_start
        if since_mark == step:
            next_start, since_mark = end, 0
    if counted > overlap or not out:  # the last window, shorter than the size (or the only one): to the end
        out.append((start, len(text), counted))
    return out


def _split_overlap(size: int) -> int:
    """The word overlap of a long sentence's windows."""
    return min(20, (size - 1) // 2)


def _kept_words(size: int) -> int:
    """The most words of the preceding sentence a chunk starts with."""
    return min(size // 2, 20)


def sentence_chunks(text: str, size: int, overlap: bool) -> list[tuple[int, int]]:
    """``SentenceBoundaryChunker.chunk``."""
    words = _Words(text)
    chunks: list[tuple[int, int]] = []
    chunk_start = chunk_end = sentence_start = previous_start = 0
    chunk_words = previous_words = 0
    for sentence_end in sentence_breaks(text):
        sentence_words = words.count(sentence_start, sentence_end)
        if chunk_words + sentence_words > size:
            next_words = sentence_words
            if chunk_words > 0:
                chunks.append((chunk_start, chunk_end))
                if overlap:  # the sentence before, whole where both fit, else its last words
                    skipped = 0 if previous_words + sentence_words <= size else max(0, previous_words -
                                                                                     _kept_words(size))
                    chunk_start = words.skip(previous_start, skipped) if skipped else previous_start
                    chunk_words = previous_words - skipped + sentence_words
                    next_words = chunk_words
                else:
                    chunk_start, chunk_words = sentence_start, sentence_words
            if next_words > size:  # too long even alone: word windows, the last one left open
                windows = word_windows(text[chunk_start:sentence_end], size, _split_overlap(size))
                for start, end, _ in windows[:-1]:
                    chunks.append((chunk_start + start, chunk_start + end))
                last_start, _, last_words = windows[-1]
                chunk_start, chunk_words = chunk_start + last_start, last_words
        else:
            chunk_words += sentence_words
        previous_start, previous_words = sentence_start, sentence_words
        sentence_start = chunk_end = sentence_end
    if chunk_words > 0:
        chunks.append((chunk_start, len(text)))
    return chunks or [(0, len(text))]


class _Recursive:
    """``RecursiveChunker`` over one text."""

    def __init__(self, text: str, separators: tuple[str, ...], size: int) -> None:
        self.text, self.separators, self.size = text, separators, size
        self.words = _Words(text)

    def chunks(self) -> list[tuple[int, int]]:
        return self._chunk(0, len(self.text), 0)

    def _fits(self, start: int, end: int) -> bool:
        return self.words.count(start, end) <= self.size

    def _chunk(self, start: int, end: int, level: int) -> list[tuple[int, int]]:
        if start == end or self._fits(start, end):
            return [(start, end)]
        if level >= len(self.separators):  # no separator left: sentence chunks without overlap
            return [(start + s, start + e) for s, e in sentence_chunks(self.text[start:end], self.size, False)]
        out: list[tuple[int, int]] = []
        for piece in self._merged(self._split(start, end, self.separators[level])):
            out.extend([piece] if self._fits(*piece) else self._chunk(*piece, level + 1))
        return out

    def _split(self, start: int, end: int, separator: str) -> list[tuple[int, int]]:
        """The span cut where ``separator`` matches (each match starts the next piece)."""
        pieces, piece_start = [], start
        for m in regex.finditer(separator, self.text[start:end]):  # Java's Pattern defaults: ^ at the start only
            at = start + m.start()
            if at > piece_start:
                pieces.append((piece_start, at))
                piece_start = at
        pieces.append((piece_start, end))
        return pieces

    def _merged(self, pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Neighbouring pieces joined while they fit in ``size`` words."""
        out: list[tuple[int, int]] = []
        for piece in pieces:
            if out and self._fits(out[-1][0], piece[1]):
                out[-1] = (out[-1][0], piece[1])
            else:
                out.append(piece)
        return out


# -- settings -----------------------------------------------------------------------------------------------


def _validation(errors: list[str]) -> ApiError:
    return ApiError("validation_exception", "Validation Failed: " + "".join(f"{i}: {e};" for i, e in
                                                                            enumerate(errors, start=1)), 400)


def _number(value: int) -> str:
    return f"{float(value)}" if math.isfinite(value) else str(value)


def _positive_int(raw: dict[str, Any], key: str, errors: list[str]) -> int | None:
    """``ServiceUtils.extractRequiredPositiveInteger``."""
    if key not in raw or raw[key] is None:
        errors.append(f"[chunking_settings] does not contain the required setting [{key}]")
        return None
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(f"field [{key}] is not of the expected type. The value [{value}] cannot be converted to a "
                      "[Integer]")
        return None
    if value <= 0:
        errors.append(f"[chunking_settings] Invalid value [{value}]. [{key}] must be a positive integer")
        return None
    return value


def _int_between(raw: dict[str, Any], key: str, lo: int, hi: int, errors: list[str]) -> int | None:
    """``extractRequiredPositiveIntegerBetween`` / ``...LessThanOrEqualToMax``."""
    value = _positive_int(raw, key, errors)
    if value is None:
        return None
    if value < lo:
        errors.append(f"[chunking_settings] Invalid value [{_number(value)}]. [{key}] must be a greater than or equal "
                      f"to [{_number(lo)}]")
        return None
    if value > hi:
        errors.append(f"[chunking_settings] Invalid value [{_number(value)}]. [{key}] must be a less than or equal to "
                      f"[{_number(hi)}]")
        return None
    return value


_UNKNOWN = {"word": "Word based chunking settings can not have the following settings: ",
            "sentence": "Sentence based chunking settings can not have the following settings: ",
            "recursive": "Recursive chunking settings can not have the following settings: ",
            "none": "When chunking is disabled (none), settings can not have the following: "}
_ALLOWED = {"word": ("strategy", "max_chunk_size", "overlap"),
            "sentence": ("strategy", "max_chunk_size", "sentence_overlap"),
            "recursive": ("strategy", "max_chunk_size", "separators", "separator_group"),
            "none": ("strategy",)}


def parse_chunking_settings(raw: Any) -> ChunkingSettings:
    """``ChunkingSettingsBuilder.fromMap``: ``None`` / ``{}`` give ES's defaults."""
    if raw is None or raw == {}:
        return ChunkingSettings(**DEFAULT_SETTINGS)
    if not isinstance(raw, dict):
        raise _validation(["[chunking_settings] must be an object"])
    strategy = raw.get("strategy")
    if strategy is None:
        raise ApiError("illegal_argument_exception", "Can't generate Chunker without ChunkingStrategy provided", 400)
    if strategy not in STRATEGIES:
        raise ApiError("illegal_argument_exception", f"Invalid chunkingStrategy {strategy}", 400)
    errors: list[str] = []
    extra = [k for k in raw if k not in _ALLOWED[strategy]]
    if extra:
        errors.append(_UNKNOWN[strategy] + "[" + ", ".join(extra) + "]")
    out: ChunkingSettings | None = None
    if strategy == "none":
        out = ChunkingSettings("none", None, None, None)
    elif strategy == "word":
        size = _int_between(raw, "max_chunk_size", *WORD_MAX_RANGE, errors)
        if size is not None:
            overlap = _int_between(raw, "overlap", 1, size // 2, errors)
            out = ChunkingSettings("word", size, overlap, None)
    elif strategy == "sentence":
        size = _int_between(raw, "max_chunk_size", *SENTENCE_MAX_RANGE, errors)
        sentence_overlap = raw.get("sentence_overlap")
        if sentence_overlap is None:
            sentence_overlap = 1
        elif isinstance(sentence_overlap, bool) or not isinstance(sentence_overlap, int):
            errors.append(f"field [sentence_overlap] is not of the expected type. The value [{sentence_overlap}] "
                          "cannot be converted to a [Integer]")
        elif sentence_overlap not in (0, 1):
            errors.append(f"sentence_overlap[{sentence_overlap}] must be either 0 or 1")
        out = ChunkingSettings("sentence", size, None, sentence_overlap)
    else:
        out = _recursive(raw, errors)
    if errors:
        raise _validation(errors)
    assert out is not None
    return out


def _recursive(raw: dict[str, Any], errors: list[str]) -> ChunkingSettings:
    """``RecursiveChunkingSettings.fromMap``."""
    size = _int_between(raw, "max_chunk_size", *WORD_MAX_RANGE, errors)
    separators, group = raw.get("separators"), raw.get("separator_group")
    if separators is not None and group is not None:
        errors.append("Recursive chunking settings can not have both separators and separator_set")  # ES's words
    if group is not None and group not in SEPARATOR_GROUPS:
        errors.append(f"[chunking_settings] Invalid value [{group}] received. [separator_group] must be one of "
                      f"[{', '.join(sorted(SEPARATOR_GROUPS))}]")
    listed: tuple[str, ...] | None = None
    if separators is not None:
        if not isinstance(separators, list) or not all(isinstance(s, str) for s in separators):
            errors.append("field [separators] is not of the expected type. The value "
                          f"[{separators}] cannot be converted to a [List]")
        elif not separators:
            errors.append("Recursive chunking settings can not have an empty list of separators")
        else:
            for pattern in separators:
                try:
                    regex.compile(pattern)
                except regex.error as err:
                    errors.append(f"[chunking_settings] Invalid separator [{pattern}]: {err}")
            listed = tuple(separators)
    return ChunkingSettings("recursive", size, None, None, listed, None if listed else (group or "plaintext"))


def preview_chunks(text: str, chunking_settings: dict[str, Any] | ChunkingSettings | None = None) -> list[dict[str, Any]]:
    """The chunks an endpoint with these ``chunking_settings`` would embed for ``text``."""
    settings = (chunking_settings if isinstance(chunking_settings, ChunkingSettings)
                else parse_chunking_settings(chunking_settings))
    return [{"text": text[s:e], "start": s, "end": e} for s, e in settings.chunks(text)]
