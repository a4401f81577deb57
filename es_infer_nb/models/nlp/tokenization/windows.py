"""Special tokens, truncation and span windows, as ES's ``NlpTokenizer`` applies them to any inner
tokenization (spec §4).

``tokenize(text, truncate, span)`` gives one window or, with ``span >= 0`` and ``truncate none``,
the overlapping windows ES cuts (never ending inside a word when it can, starting on a word
boundary); ``tokenize_pair`` the ``[CLS] a [SEP] b [SEP]``-style pair with ``first`` / ``second``
/ ``balanced`` / ``none`` truncation; ``tokenize_pair_span`` windows over the second sequence
(question answering).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ....errors import ApiError
from .wordpiece import InnerTokens, Piece

SPECIAL_POSITION = -1


@dataclass(frozen=True)
class Specials:
    """How a tokenizer wraps sequences: ids of its class / separator tokens and the layouts."""

    cls_id: int
    sep_id: int
    pair_separators: int = 1  # [SEP] for BERT, </s></s> for RoBERTa-likes
    non_empty_pairs: bool = False  # DeBERTa-v2: both sequences of a pair need a token

    @property
    def single_extra(self) -> int:
        return 2

    @property
    def pair_extra(self) -> int:
        return 2 + self.pair_separators


@dataclass
class Window:
    """One model input: ids, token map (-1 for special tokens) and what it covers."""

    token_ids: list[int]
    token_map: list[int]
    truncated: bool
    pieces: list[Piece]  # the content pieces (the second sequence's for a pair)
    seq_pair_offset: int = 0  # index of the first token of the second sequence (pairs)
    span_prev: int = -1
    first_pieces: list[Piece] = field(default_factory=list)

    @property
    def tokens(self) -> list[str]:
        return [p.text for p in self.pieces]


def bad_request(reason: str) -> ApiError:
    return ApiError("status_exception", reason, 400)


def illegal(reason: str) -> ApiError:
    return ApiError("illegal_argument_exception", reason, 400)


def no_progress() -> ApiError:
    """A span window that would start where the previous one started (the span too close to the window)."""
    return ApiError("illegal_state_exception", "Tokenization cannot be satisfied with the current span setting. "
                    "Consider decreasing the span setting", 500)


class WindowedTokenizer:
    """ES's ``NlpTokenizer`` behaviour over an ``inner`` tokenization function."""

    def __init__(self, inner: Callable[[str], InnerTokens], specials: Specials | None, max_sequence_length: int,
                 with_special_tokens: bool = True) -> None:
        self.inner = inner
        self.specials = specials
        self.max_sequence_length = max_sequence_length
        self.with_special_tokens = with_special_tokens and specials is not None

    # -- building windows ----------------------------------------------------------------------
    def _single(self, ids: list[int], positions: list[int]) -> tuple[list[int], list[int]]:
        if not self.with_special_tokens:
            return list(ids), list(positions)
        s = self.specials
        assert s is not None
        return [s.cls_id, *ids, s.sep_id], [SPECIAL_POSITION, *positions, SPECIAL_POSITION]

    def _pair(self, ids1: list[int], pos1: list[int], ids2: list[int], pos2: list[int]
              ) -> tuple[list[int], list[int], int]:
        s = self.specials
        assert s is not None
        seps = [s.sep_id] * s.pair_separators
        last = pos1[-1] if pos1 else 0
        ids = [s.cls_id, *ids1, *seps, *ids2, s.sep_id]
        token_map = [SPECIAL_POSITION, *pos1, *([SPECIAL_POSITION] * len(seps)), *[p + last for p in pos2],
                     SPECIAL_POSITION]
        return ids, token_map, 1 + len(ids1) + len(seps)

    # -- single sequence ------------------------------------------------------------------------
    def tokenize(self, text: str, truncate: str, span: int, window_size: int | None = None) -> list[Window]:
        window = self.max_sequence_length if window_size is None else window_size
        inner = self.inner(text)
        pieces, positions = list(inner.pieces), list(inner.positions)
        extra = self.specials.single_extra if self.with_special_tokens else 0
        n = len(pieces) + extra
        truncated = False
        if n > window:
            if truncate in ("first", "second", "balanced"):
                truncated = True
                keep = window - extra
                pieces, positions = pieces[:keep], positions[:keep]
            elif span == -1:
                raise bad_request(f"Input too large. The tokenized input length [{n}] exceeds the maximum sequence "
                                  f"length [{window}]")
        if n <= window or span == -1:
            ids, token_map = self._single([p.id for p in pieces], positions)
            return [Window(ids, token_map, truncated, pieces)]
        out: list[Window] = []
        width = window - extra
        start = end = 0
        span_prev = -1
        total = len(pieces)
        while end < total:
            end = min(start + width, total)
            if end != total:  # do not end inside a word
                while end > start + 1 and positions[end] == positions[end - 1]:
                    end -= 1
            ids, token_map = self._single([p.id for p in pieces[start:end]], positions[start:end])
            out.append(Window(ids, token_map, False, pieces[start:end], span_prev=span_prev))
            span_prev = span
            prev_start = start
            start = end - span
            if start <= prev_start:  # no progress: ES's loop never ends here; answer what its pair path answers
                raise no_progress()
            if start < total:  # back up to the first whole word
                while start > prev_start + 1 and positions[start] == positions[start - 1]:
                    start -= 1
                    span_prev += 1
        return out

    # -- sequence pairs ---------------------------------------------------------------------------
    def _require_specials(self) -> None:
        if not self.with_special_tokens:
            raise illegal("Unable to do sequence pair tokenization without special tokens")

    def _truncate_pair(self, inner1: InnerTokens, inner2: InnerTokens, truncate: str
                       ) -> tuple[list[Piece], list[int], list[Piece], list[int], bool]:
        assert self.specials is not None
        extra = self.specials.pair_extra
        max_len = self.max_sequence_length
        p1, pos1 = list(inner1.pieces), list(inner1.positions)
        p2, pos2 = list(inner2.pieces), list(inner2.positions)
        if self.specials.non_empty_pairs and (not p1 or not p2):
            raise illegal("Both sequences must have at least one token")
        n = len(p1) + len(p2) + extra
        if n <= max_len:
            return p1, pos1, p2, pos2, False
        if truncate == "first":
            if len(p2) > max_len - extra:
                raise bad_request(f"Attempting truncation [first] but input is too large for the second sequence. "
                                  f"The tokenized input length [{len(p2)}] exceeds the maximum sequence length "
                                  f"[{max_len - extra}], when taking special tokens into account")
            keep = max_len - extra - len(p2)
            return p1[:keep], pos1[:keep], p2, pos2, True
        if truncate == "second":
            if len(p1) > max_len - extra:
                raise bad_request(f"Attempting truncation [second] but input is too large for the first sequence. "
                                  f"The tokenized input length [{len(p1)}] exceeds the maximum sequence length "
                                  f"[{max_len - extra}], when taking special tokens into account")
            keep = max_len - extra - len(p1)
            return p1, pos1, p2[:keep], pos2[:keep], True
        if truncate == "balanced":
            half = (max_len - extra) // 2
            if len(p2) > half:
                len1 = min(len(p1), half)
            else:
                len1 = min(len(p1), max_len - len(p2) - extra)
            len2 = min(len(p2), max_len - len1 - extra)
            return p1[:len1], pos1[:len1], p2[:len2], pos2[:len2], True
        raise bad_request(f"Input too large. The tokenized input length [{n}] exceeds the maximum sequence length "
                          f"[{max_len}]")

    def tokenize_pair(self, seq1: str | InnerTokens, seq2: str, truncate: str) -> Window:
        self._require_specials()
        inner1 = seq1 if isinstance(seq1, InnerTokens) else self.inner(seq1)
        p1, pos1, p2, pos2, truncated = self._truncate_pair(inner1, self.inner(seq2), truncate)
        ids, token_map, offset = self._pair([p.id for p in p1], pos1, [p.id for p in p2], pos2)
        return Window(ids, token_map, truncated, p2, seq_pair_offset=offset, first_pieces=p1)

    def tokenize_pair_span(self, seq1: str, seq2: str, truncate: str, span: int) -> list[Window]:
        """The second sequence cut into windows of ``span`` overlap, the first repeated in each."""
        self._require_specials()
        assert self.specials is not None
        if span < 0:
            return [self.tokenize_pair(seq1, seq2, truncate)]
        inner1, inner2 = self.inner(seq1), self.inner(seq2)
        extra = self.specials.pair_extra
        max_len = self.max_sequence_length
        n = len(inner1) + len(inner2) + extra
        if n < max_len:
            return [self.tokenize_pair(inner1, seq2, truncate)]
        true_max = max_len - extra - len(inner1)
        if true_max <= 0:
            raise illegal(f"Unable to do sequence pair tokenization: the first sequence [{len(inner1) + extra} tokens] "
                          f"is longer than the max sequence length [{max_len} tokens]")
        if span > true_max:
            raise illegal(f"Unable to do sequence pair tokenization: the combined first sequence and span length "
                          f"[{len(inner1)} + {span} = {len(inner1) + span} tokens] is longer than the max sequence "
                          f"length [{max_len} tokens]. Reduce the size of the [span] window.")
        ids1, pos1 = inner1.ids, list(inner1.positions)
        pieces2, pos2 = list(inner2.pieces), list(inner2.positions)
        out: list[Window] = []
        start = end = 0
        span_prev = -1
        total = len(pieces2)
        while end < total:
            end = min(start + true_max, total)
            if end != total:
                while end > start + 1 and pos2[end] == pos2[end - 1]:
                    end -= 1
            ids, token_map, offset = self._pair(ids1, pos1, [p.id for p in pieces2[start:end]], pos2[start:end])
            out.append(Window(ids, token_map, False, pieces2[start:end], seq_pair_offset=offset, span_prev=span_prev,
                              first_pieces=list(inner1.pieces)))
            span_prev = span
            prev_start = start
            start = end - span
            if start <= prev_start:
                raise no_progress()
            if start < total:
                while start > prev_start + 1 and pos2[start] == pos2[start - 1]:
                    start -= 1
                    span_prev += 1
        return out
