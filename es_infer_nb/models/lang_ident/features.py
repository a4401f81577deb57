"""ES's text features for ``lang_ident_model_1`` (its port of CLD3's feature extraction).

The pipeline is ES's ``CustomWordEmbedding`` pre-processor: the text is cleaned and lower-cased
(:func:`clean_and_lower`), cut to 10,000 UTF-8 bytes, split into runs of one Unicode script
(:func:`script_sections`), and each run becomes six sparse feature vectors (:func:`extract`):
character 2-, 4-, 3- and 1-grams hashed into 1000 / 5000 / 5000 / 100 buckets, the share of
characters per CLD3 script class, and the script of the first letter. Java semantics are kept
where they change the result: n-grams are taken over UTF-16 code units and hashed from their UTF-8
bytes with CLD3's 32-bit Murmur variant, ``Character.isLetter`` is Unicode category L, and
``Character.UnicodeScript`` is the Unicode Script property (read through :mod:`regex`).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache

import regex

MAX_STRING_SIZE_IN_BYTES = 10_000

# ES's FeatureUtils: anything but letters, marks and Java's ASCII \s, and '|', and the Spacing
# Modifier Letters block, becomes a space; then runs of White_Space collapse to one space.
_NOT_LETTER_OR_SPECIAL = regex.compile(r"[^\p{L}\p{M} \t\n\x0B\f\r|]|\||[\u02B0-\u02FF]")
_WHITESPACE_RUN = regex.compile(r"\p{White_Space}+")


def clean_and_lower(text: str) -> str:
    out = ("" if text.startswith(" ") else " ") + _NOT_LETTER_OR_SPECIAL.sub(" ", text)
    out += "" if text.endswith(" ") else " "
    out = _WHITESPACE_RUN.sub(" ", out)
    return out.replace("\u0130", "I").lower()


def truncate_utf8(text: str, max_bytes: int = MAX_STRING_SIZE_IN_BYTES) -> str:
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", "ignore")


@lru_cache(maxsize=65536)
def is_letter(ch: str) -> bool:
    """Java's ``Character.isLetter``: Unicode general category L*."""
    return unicodedata.category(ch)[0] == "L"


# -- scripts --------------------------------------------------------------------------------------

# ES's ScriptCode: CLD3's ULScript ids for Java's Character.UnicodeScript values
SCRIPT_CODES: dict[str, int] = {
    "Latin": 1, "Greek": 2, "Cyrillic": 3, "Armenian": 4, "Hebrew": 5, "Arabic": 6, "Syriac": 7,
    "Thaana": 8, "Devanagari": 9, "Bengali": 10, "Gurmukhi": 11, "Gujarati": 12, "Oriya": 13,
    "Tamil": 14, "Telugu": 15, "Kannada": 16, "Malayalam": 17, "Sinhala": 18, "Thai": 19, "Lao": 20,
    "Tibetan": 21, "Myanmar": 22, "Georgian": 23, "Hangul": 24, "Han": 24, "Hiragana": 24,
    "Katakana": 24, "Ethiopic": 25, "Cherokee": 26, "Canadian_Aboriginal": 27, "Ogham": 28,
    "Runic": 29, "Khmer": 30, "Mongolian": 31, "Bopomofo": 34, "Yi": 36, "Old_Italic": 37,
    "Gothic": 38, "Deseret": 39, "Inherited": 40, "Tagalog": 41, "Hanunoo": 42, "Buhid": 43,
    "Tagbanwa": 44, "Limbu": 45, "Tai_Le": 46, "Linear_B": 47, "Ugaritic": 48, "Shavian": 49,
    "Osmanya": 50, "Cypriot": 51, "Braille": 52, "Buginese": 53, "Coptic": 54, "New_Tai_Lue": 55,
    "Glagolitic": 56, "Tifinagh": 57, "Syloti_Nagri": 58, "Old_Persian": 59, "Kharoshthi": 60,
    "Balinese": 61, "Cuneiform": 62, "Phoenician": 63, "Phags_Pa": 64, "Nko": 65, "Sundanese": 66,
    "Lepcha": 67, "Ol_Chiki": 68, "Vai": 69, "Saurashtra": 70, "Kayah_Li": 71, "Rejang": 72,
    "Lycian": 73, "Carian": 74, "Lydian": 75, "Cham": 76, "Tai_Tham": 77, "Tai_Viet": 78,
    "Avestan": 79, "Egyptian_Hieroglyphs": 80, "Samaritan": 81, "Lisu": 82, "Bamum": 83,
    "Javanese": 84, "Meetei_Mayek": 85, "Imperial_Aramaic": 86, "Old_South_Arabian": 87,
    "Inscriptional_Parthian": 88, "Inscriptional_Pahlavi": 89, "Old_Turkic": 90, "Kaithi": 91,
    "Batak": 92, "Brahmi": 93, "Mandaic": 94, "Chakma": 95, "Meroitic_Cursive": 96,
    "Meroitic_Hieroglyphs": 97, "Miao": 98, "Sharada": 99, "Sora_Sompeng": 100, "Takri": 101,
}
COMMON = 0
HANI = 24
HANGUL_MAJORITY = 102  # ScriptCode.MAX_SCRIPT_CODE: Hani text that is mostly Hangul

_SCRIPT_PATTERN = regex.compile(
    "|".join(rf"(?P<{name}>\p{{Script={name}}})" for name in [*SCRIPT_CODES, "Common"])
)
_HANGUL = regex.compile(r"\p{Script=Hangul}")


@lru_cache(maxsize=65536)
def unicode_script(ch: str) -> str:
    """Java's ``Character.UnicodeScript.of(cp)`` (by name) for the scripts ES maps; others ``Unknown``."""
    match = _SCRIPT_PATTERN.match(ch)
    return match.lastgroup if match and match.lastgroup else "Unknown"


def ul_script(ch: str) -> int:
    """ES's ``ScriptCode.unicodeScriptToULScript(Character.UnicodeScript.of(cp))``."""
    return SCRIPT_CODES.get(unicode_script(ch), COMMON)


# ES's ScriptDetector.Script (CLD3 script_detector.h): a few Unicode blocks, else the UTF-8 length
_BLOCKS = ((0x0370, 0x03FF, 5), (0x0400, 0x04FF, 6), (0x0590, 0x05FF, 7), (0x0600, 0x06FF, 8),
           (0x1100, 0x11FF, 9), (0x3040, 0x309F, 10), (0x30A0, 0x30FF, 11))


def detector_script(cp: int) -> int:
    for low, high, code in _BLOCKS:
        if low <= cp <= high:
            return code
    if cp <= 0:
        return 0
    if cp < 0x80:
        return 1
    if cp < 0x800:
        return 2
    if cp < 0x10000:
        return 3
    return 4 if cp < 0x110000 else 0


# -- sections -------------------------------------------------------------------------------------

def _java_trim(text: str) -> str:
    return text.strip("".join(chr(c) for c in range(0x21)))


def script_sections(text: str) -> list[tuple[str, int]]:
    """(section wrapped in spaces, UTF-8 byte length of the trimmed section) per run of one script.

    ES's ``CustomWordEmbedding.process``: a run starts at a letter and ends before a letter of
    another Unicode script (not Inherited) that the next code point confirms (it is neither Common
    nor the run's script); non-letters stay with the run they follow. Scripts here are Unicode's
    (Hangul, Han, Hiragana and Katakana are separate runs, though all are CLD3's Hani). The loop is
    ES's own, step for step, including its edges: it stops one code point before the end, so a
    text whose letters are all consumed leaves nothing, and one ending in non-letters after the
    scan gives a last section of its own. Scripts ES knows but :data:`SCRIPT_CODES` does not list
    read as one ``Unknown`` script here (Java tells them apart): only runs of two such scripts
    side by side could split differently."""
    cps = list(text)
    n = len(cps)
    out: list[tuple[str, int]] = []
    i = 0
    while i < n - 1:
        while i < n - 1 and not is_letter(cps[i]):
            i += 1
        current = unicode_script(cps[i])
        j = i + 1
        while j < n:
            while j < n and not is_letter(cps[j]):
                j += 1
            if j >= n:
                break
            seen = unicode_script(cps[j])
            if seen != current and seen != "Inherited" and j < n - 1:
                following = unicode_script(cps[j + 1])
                if following != "Common" and following != current:
                    break
            j += 1
        section = "".join(cps[i:j])
        wrapped = ("" if section.startswith(" ") else " ") + section + ("" if section.endswith(" ") else " ")
        out.append((wrapped, len(_java_trim(section).encode("utf-8", "surrogatepass"))))
        i = j
    return out


# -- feature extractors ---------------------------------------------------------------------------

def hash32(data: bytes, seed: int = 0xBEEF) -> int:
    """CLD3's ``utils::Hash32`` (Murmur2-like, 32-bit, unsigned result)."""
    mask = 0xFFFFFFFF
    m = 0x5BD1E995
    n = len(data)
    h = (seed ^ n) & mask
    i = 0
    while n >= 4:
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
        i += 4
        n -= 4
    if n == 3:
        h ^= data[i + 2] << 16
    if n >= 2:
        h ^= data[i + 1] << 8
    if n >= 1:
        h ^= data[i]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def _utf16_units(text: str) -> str:
    if not text or max(text) < "\U00010000":
        return text
    out = []
    for c in text:
        o = ord(c)
        if o < 0x10000:
            out.append(c)
        else:
            o -= 0x10000
            out.append(chr(0xD800 + (o >> 10)) + chr(0xDC00 + (o & 0x3FF)))
    return "".join(out)


def _java_utf8(units: str) -> bytes:
    """Java's ``String.getBytes(UTF_8)``: surrogate pairs joined, a lone surrogate as '?'."""
    if units.isascii():
        return units.encode("ascii")
    joined = units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return joined.encode("utf-8", "replace")


@lru_cache(maxsize=1 << 18)
def _bucket(gram: str, buckets: int) -> int:
    return hash32(_java_utf8(gram)) % buckets


Features = tuple[list[int], list[float]]


@lru_cache(maxsize=1 << 16)
def _grams(token: str, size: int) -> tuple[str, ...]:
    return tuple(token[i : i + size] for i in range(len(token) - size + 1))


def ngram_features(text: str, size: int, buckets: int) -> Features:
    """Share of each character n-gram of the words marked ``^word$`` (n-grams never span a space)."""
    tokens = ("^" + _utf16_units(text).replace(" ", "$ ^") + "$").split(" ")
    counts: Counter[str] = Counter()
    for tok in tokens:
        counts.update(_grams(tok, size))
    total = sum(counts.values())
    grams = sorted(counts)
    return [_bucket(g, buckets) for g in grams], [counts[g] / total for g in grams]


@lru_cache(maxsize=65536)
def _relevant_script(ch: str) -> int:
    """The ScriptDetector class of a letter or a non-ASCII character; -1 for anything else."""
    return detector_script(ord(ch)) if is_letter(ch) or ord(ch) > 127 else -1


def relevant_script_features(text: str) -> Features:
    counts = Counter(_relevant_script(ch) for ch in text)
    counts.pop(-1, None)
    total = sum(counts.values())
    codes = sorted(counts)
    return codes, [counts[c] / total for c in codes]


def script_feature(text: str) -> Features:
    first = next((ch for ch in text if is_letter(ch)), None)
    code = COMMON if first is None else ul_script(first)
    if code == HANI:
        hangul = other = 0
        for ch in text:
            if unicodedata.category(ch) in ("Zs", "Zl", "Zp"):
                continue
            if _HANGUL.match(ch):
                hangul += 1
            else:
                other += 1
        code = HANGUL_MAJORITY if hangul > other else HANI
    return [code], [1.0]


def extract(section: str) -> list[Features]:
    """The six feature vectors, in the order of the network's embedding tables."""
    return [
        ngram_features(section, 2, 1000),
        ngram_features(section, 4, 5000),
        relevant_script_features(section),
        script_feature(section),
        ngram_features(section, 3, 5000),
        ngram_features(section, 1, 100),
    ]
