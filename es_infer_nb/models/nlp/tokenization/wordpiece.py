"""Elasticsearch's BERT tokenizer (``WordPieceAnalyzer``), reproduced exactly.

The pipeline, as ES builds it from Lucene parts:

1. ``ControlCharFilter``: control, format, private-use and surrogate characters are removed
   (tab, newline and carriage return are kept); offsets still point into the original text.
   Java sees text as UTF-16, so every character outside the BMP (emoji, CJK extension B...) is a
   surrogate pair and is removed too.
2. ``WhitespaceTokenizer(512)``: split on Java whitespace (not the no-break spaces); a run longer
   than 512 characters is cut into 512-character tokens.
3. ``BasicTokenFilter``: a whitespace token listed in ``never_split`` is kept whole; otherwise it
   is split on punctuation (ASCII symbol ranges and every Unicode ``P*`` category) and CJK
   ideographs, consecutive pieces that spell a ``never_split`` token are merged back, and with
   ``strip_accents`` (default: ``do_lower_case``) each piece is NFD-normalised and its non-spacing
   marks removed (a piece left empty disappears).  Each resulting *basic token* is one position.
4. ``WordPieceTokenFilter``: greedy longest-match-first word pieces (``##`` continuation) looked up
   case-insensitively when ``do_lower_case``; a word with an unmatched part, or longer than 100
   characters, becomes a single ``[UNK]``; a ``never_split`` token maps to its vocabulary id or
   ``[UNK]``.

Every word piece remembers the character offsets of its basic token in the original text and its
position (the index of the basic token), which ES calls the token map.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

WHITESPACE_MAX_TOKEN_LEN = 512
MAX_INPUT_CHARS_PER_WORD = 100
CONTINUATION = "##"
NEVER_SPLIT_DEFAULT = ("[MASK]",)
# Character.isWhitespace is false for these space separators
NO_BREAK_SPACES = frozenset("\u00a0\u2007\u202f")
CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0x2F800, 0x2FA1F),
)


@dataclass(frozen=True)
class Piece:
    """One word piece: its vocabulary id, text, and the offsets of the basic token it came from."""

    id: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class InnerTokens:
    """A sequence's word pieces and, per piece, the position of its basic token."""

    pieces: list[Piece]
    positions: list[int]

    @property
    def ids(self) -> list[int]:
        return [p.id for p in self.pieces]

    def __len__(self) -> int:
        return len(self.pieces)


def is_control(ch: str) -> bool:
    if ch in "\n\r\t":
        return False
    if ord(ch) > 0xFFFF:  # a surrogate pair in Java's UTF-16
        return True
    return unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")


def is_whitespace(ch: str) -> bool:
    """``Character.isWhitespace``."""
    if ch in "\t\n\u000b\f\r\u001c\u001d\u001e\u001f":
        return True
    return unicodedata.category(ch) in ("Zs", "Zl", "Zp") and ch not in NO_BREAK_SPACES


def is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def java_lower(text: str) -> str:
    """``Character.toLowerCase`` per code point (simple case mapping, never changes the length)."""
    out = []
    for ch in text:
        low = ch.lower()
        out.append(low if len(low) == 1 else ch)
    return "".join(out)


def strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


def whitespace_words(text: str) -> list[tuple[str, int, int]]:
    """Control characters removed, then Lucene's whitespace tokens ``(text, start, end)``."""
    words: list[tuple[str, int, int]] = []
    chars: list[str] = []
    start = end = -1
    for i, ch in enumerate(text):
        if is_control(ch):
            continue  # removed: the characters around it join
        if is_whitespace(ch):
            if chars:
                words.append(("".join(chars), start, end))
                chars = []
            continue
        if not chars:
            start = i
        chars.append(ch)
        end = i + 1
        if len(chars) == WHITESPACE_MAX_TOKEN_LEN:
            words.append(("".join(chars), start, end))
            chars = []
    if chars:
        words.append(("".join(chars), start, end))
    return words


def _word_chars(text: str, start: int, end: int) -> list[tuple[str, int]]:
    """The kept characters of a whitespace word with their offsets."""
    return [(ch, i) for i, ch in enumerate(text[start:end], start) if not is_control(ch)]


class BasicTokenizer:
    """ES's ``BasicTokenFilter`` over whitespace tokens: ``[(text, start, end)]`` basic tokens."""

    def __init__(self, *, tokenize_cjk: bool = True, strip_accents: bool = False,
                 never_split: Iterable[str] = ()) -> None:
        self.tokenize_cjk = tokenize_cjk
        self.strip = strip_accents
        self.never_split = frozenset(never_split)
        self._trie: dict = {}
        plain = BasicTokenizer.__new__(BasicTokenizer)
        plain.tokenize_cjk, plain.strip, plain.never_split, plain._trie = tokenize_cjk, strip_accents, frozenset(), {}
        for token in self.never_split:
            node = self._trie
            for part, _s, _e in plain.tokenize(token):
                node = node.setdefault(part, {})
            node[None] = True  # leaf marker

    def _split(self, text: str, start: int, end: int) -> list[tuple[str, int, int]]:
        chars = _word_chars(text, start, end)
        out: list[tuple[str, int, int]] = []
        buf: list[tuple[str, int]] = []
        for ch, i in chars:
            if (self.tokenize_cjk and is_cjk(ch)) or is_punctuation(ch):
                if buf:
                    out.append(("".join(c for c, _ in buf), buf[0][1], buf[-1][1] + 1))
                    buf = []
                out.append((ch, i, i + 1))
            else:
                buf.append((ch, i))
        if buf:
            out.append(("".join(c for c, _ in buf), buf[0][1], end))
        return out

    def _merge(self, splits: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
        """Consecutive pieces spelling a never-split token become one token again (``mergeSplits``)."""
        if len(splits) == 1 or not self._trie:
            return splits
        merged: list[tuple[str, int, int]] = []
        matching: list[tuple[str, int, int]] = []
        node = self._trie
        for token in splits:
            child = node.get(token[0])
            if child is None:
                if node is not self._trie:
                    merged.extend(matching)
                    matching = []
                    node = self._trie
                child = node.get(token[0])
                if child is None:
                    merged.append(token)
                else:
                    matching.append(token)
                    node = child
            elif None in child and len(child) == 1:  # a leaf
                matching.append(token)
                text = "".join(t[0] for t in matching)
                if text in self.never_split:
                    merged.append((text, matching[0][1], matching[-1][2]))
                else:
                    merged.extend(matching)
                matching = []
                node = self._trie
            else:
                matching.append(token)
                node = child
        merged.extend(matching)
        return merged

    def tokenize_word(self, text: str, start: int, end: int) -> list[tuple[str, int, int]]:
        word = "".join(ch for ch, _ in _word_chars(text, start, end))
        if word in self.never_split:
            return [(word, start, end)]
        tokens = self._merge(self._split(text, start, end))
        if self.strip:
            tokens = [(strip_accents(t), s, e) for t, s, e in tokens]
            tokens = [t for t in tokens if t[0]]
        return tokens

    def tokenize(self, text: str) -> list[tuple[str, int, int]]:
        out: list[tuple[str, int, int]] = []
        for _word, start, end in whitespace_words(text):
            out.extend(self.tokenize_word(text, start, end))
        return out


class WordPieceTokenizer:
    """ES's BERT inner tokenization: text -> word pieces with positions (see the module docstring)."""

    def __init__(self, vocab: Sequence[str], *, do_lower_case: bool = False, tokenize_cjk: bool = True,
                 strip_accents: bool | None = None, never_split: Iterable[str] = (),
                 unknown_token: str = "[UNK]", max_input_chars_per_word: int = MAX_INPUT_CHARS_PER_WORD) -> None:
        self.vocab = list(vocab)
        self.max_input_chars_per_word = max_input_chars_per_word  # WordPieceAnalyzer passes 100
        self.ignore_case = do_lower_case
        self.never_split = frozenset([*never_split, *NEVER_SPLIT_DEFAULT])
        self.basic = BasicTokenizer(tokenize_cjk=tokenize_cjk,
                                    strip_accents=do_lower_case if strip_accents is None else strip_accents,
                                    never_split=self.never_split)
        self.index: dict[str, int] = {}
        for i, word in enumerate(self.vocab):  # a later duplicate wins, as in CharArrayMap.put
            self.index[self._key(word)] = i
        self.never_split_keys = frozenset(self._key(t) for t in self.never_split)
        if self._key(unknown_token) not in self.index:
            raise ValueError(f"provided vocabulary does not contain the unknown token of [{unknown_token}]")
        self.unknown_token = unknown_token
        self.unknown_id = self.index[self._key(unknown_token)]

    def _key(self, text: str) -> str:
        return java_lower(text) if self.ignore_case else text

    def id_of(self, token: str) -> int | None:
        return self.index.get(self._key(token))

    def pieces(self, word: str, start: int, end: int) -> list[Piece]:
        if self._key(word) in self.never_split_keys:
            found = self.index.get(self._key(word))
            return [Piece(self.unknown_id if found is None else found, word, start, end)]
        if len(word) > self.max_input_chars_per_word:
            return [Piece(self.unknown_id, self.unknown_token, start, end)]
        out: list[Piece] = []
        pos = 0
        while pos < len(word):
            stop = len(word)
            found = None
            while pos < stop:
                sub = word[pos:stop] if pos == 0 else CONTINUATION + word[pos:stop]
                found = self.index.get(self._key(sub))
                if found is not None:
                    out.append(Piece(found, sub, start, end))
                    break
                stop -= 1
            if found is None:
                return [Piece(self.unknown_id, self.unknown_token, start, end)]
            pos = stop
        return out

    def __call__(self, text: str) -> InnerTokens:
        pieces: list[Piece] = []
        positions: list[int] = []
        for position, (word, start, end) in enumerate(self.basic.tokenize(text)):
            for piece in self.pieces(word, start, end):
                pieces.append(piece)
                positions.append(position)
        return InnerTokens(pieces, positions)
