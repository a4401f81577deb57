"""Word and sentence boundaries for ES's chunkers, which take them from ICU's ``BreakIterator`` (root locale).

* Words: Unicode's default word boundaries (UAX #29, through the ``regex`` module's ``WORD`` flag): ``3.14``,
  ``1,000``, ``U.S.A``, ``example.com`` and ``can't`` are one word each; a segment counts as a word when it
  holds a letter or a digit (ICU's rule status is not ``WORD_NONE``), so punctuation, spaces, symbols and
  emoji do not. ICU splits Chinese and Japanese text with a dictionary; without one each ideograph (and each
  hiragana) is a word here: such texts count more words than ICU gives them.
* Sentences: UAX #29's sentence boundaries (rules SB3-SB11), what ICU's root sentence iterator applies: a
  break after a line feed, after ``。`` with no space, none inside ``12. i 13.`` (a full stop before a lower-case
  word).
"""

from __future__ import annotations

import regex

__all__ = ["sentence_breaks", "word_spans"]

_BOUNDARY = regex.compile(r"\b", flags=regex.WORD)
_WORDLIKE = regex.compile(r"[\p{L}\p{N}]")
_CLASSES = ("CR", "LF", "Extend", "Sep", "Format", "Sp", "Lower", "Upper", "OLetter", "Numeric", "ATerm",
            "SContinue", "STerm", "Close")
_CLASS = regex.compile("|".join(f"(?P<{c}>\\p{{Sentence_Break={c}}})" for c in _CLASSES))
_PARA_SEP = frozenset({"Sep", "CR", "LF"})
_TERMS = frozenset({"ATerm", "STerm"})
_NOT_BEFORE_LOWER = frozenset({"OLetter", "Upper", "Lower", "Sep", "CR", "LF", "ATerm", "STerm"})


def word_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each word of ``text``, in order."""
    bounds = [m.start() for m in _BOUNDARY.finditer(text)]
    if not bounds or bounds[0] != 0:
        bounds.insert(0, 0)
    if bounds[-1] != len(text):
        bounds.append(len(text))
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if a < b and _WORDLIKE.search(text, a, b)]


def _class(ch: str) -> str:
    m = _CLASS.match(ch)
    return m.lastgroup if m is not None and m.lastgroup is not None else "Other"


def sentence_breaks(text: str) -> list[int]:
    """The offsets where a sentence of ``text`` ends (the last one ``len(text)``); empty text: ``[0]``."""
    if not text:
        return [0]
    classes = [_class(c) for c in text]
    base: list[int] = []  # SB5: Extend and Format belong to the character before them
    for i, c in enumerate(classes):
        if c in ("Extend", "Format") and base and classes[base[-1]] not in _PARA_SEP:
            continue
        base.append(i)
    kinds = [classes[i] for i in base]
    breaks = [base[k] for k in range(1, len(base)) if _breaks_before(kinds, k)]
    return breaks + [len(text)]


def _breaks_before(kinds: list[str], k: int) -> bool:
    prev, cur = kinds[k - 1], kinds[k]
    if prev == "CR" and cur == "LF":  # SB3
        return False
    if prev in _PARA_SEP:  # SB4
        return True
    if prev == "ATerm" and cur == "Numeric":  # SB6
        return False
    if prev == "ATerm" and cur == "Upper" and k >= 2 and kinds[k - 2] in ("Upper", "Lower"):  # SB7
        return False
    j = k - 1
    while j >= 0 and kinds[j] == "Sp":
        j -= 1
    spaces = j < k - 1
    while j >= 0 and kinds[j] == "Close":
        j -= 1
    if j < 0 or kinds[j] not in _TERMS:
        return False  # SB998
    if kinds[j] == "ATerm":  # SB8: a full stop before a lower-case word is no end
        m = k
        while m < len(kinds) and kinds[m] not in _NOT_BEFORE_LOWER:
            m += 1
        if m < len(kinds) and kinds[m] == "Lower":
            return False
    if cur in ("SContinue", "ATerm", "STerm"):  # SB8a
        return False
    if not spaces and cur in ("Close", "Sp", "Sep", "CR", "LF"):  # SB9
        return False
    if cur in ("Sp", "Sep", "CR", "LF"):  # SB10
        return False
    return True  # SB11
