"""Request bodies as Elasticsearch's XContent layer reads them, limits included.

ES parses JSON with Jackson (``JsonXContentImpl``): strict duplicate detection, and Jackson's
``StreamReadConstraints`` defaults (nesting depth 1000, number length 1000); ``NaN`` /
``Infinity`` are not JSON; bytes must be UTF-8. Each breach is a 400
``x_content_parse_exception`` with Jackson's message, before anything else sees the body, so a
rejected request stores nothing. :func:`parse_json` reads text (the standard library's C
parser with hooks; a position-tracking scan runs only to report a breach), and
:func:`check_object` applies the depth and number-length limits to a body given as Python
objects (``Engine.request`` with a dict), where there is no text to point into.
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
from typing import Any

from ..errors import ApiError

#: Jackson's ``StreamReadConstraints.DEFAULT_MAX_DEPTH`` (ES keeps the default)
MAX_NESTING_DEPTH = 1000
#: Jackson's ``StreamReadConstraints.DEFAULT_MAX_NUM_LEN``
MAX_NUMBER_LENGTH = 1000

_SOURCE = "[Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: {line}, column: {col}]"
_NON_STANDARD = "Non-standard token '{token}': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow"
_DEPTH = ("Document nesting depth ({depth}) exceeds the maximum allowed ({limit}, from "
          "`StreamReadConstraints.getMaxNestingDepth()`)")
_NUMBER = ("Number value length ({length}) exceeds the maximum allowed ({limit}, from "
           "`StreamReadConstraints.getMaxNumberLength()`)")

_TOKEN = re.compile(
    r"""[ \t\r\n]*(?:
        (?P<str>"(?:[^"\\]|\\.)*")|
        (?P<num>-?[0-9][0-9.eE+\-]*)|
        (?P<punct>[{}\[\]:,])|
        (?P<word>-?[A-Za-z]+)
    )""",
    re.VERBOSE | re.DOTALL,
)
_RECURSION_LOCK = threading.Lock()
#: interpreter recursion limit that lets the standard library parse / dump 1000-deep bodies
_RECURSION_HEADROOM = 4 * MAX_NESTING_DEPTH + 1000


class _Breach(Exception):
    """Raised inside the fast parser's hooks: the slow scan then finds where and why."""


def _location(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def xcontent_error(message: str, line: int | None = None, col: int | None = None) -> ApiError:
    """ES's 400 for a body Jackson refuses (``[line:col] message`` plus Jackson's location)."""
    if line is None or col is None:
        return ApiError("x_content_parse_exception", message, 400)
    where = _SOURCE.format(line=line, col=col)
    return ApiError("x_content_parse_exception", f"[{line}:{col}] {message}\n at {where}", 400)


def _at(text: str, pos: int, message: str) -> ApiError:
    line, col = _location(text, pos)
    return xcontent_error(message, line, col)


# -- bytes -> text -----------------------------------------------------------------------------

def decode_utf8(raw: bytes) -> str:
    """UTF-8 text of a body, or Jackson's 400 for the first invalid byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        head = raw[start]
        if exc.reason == "invalid continuation byte":
            end = start + 1
            while end < len(raw) and 0x80 <= raw[end] <= 0xBF:
                end += 1
            bad = raw[end] if end < len(raw) else head
            message = f"Invalid UTF-8 middle byte 0x{bad:x}"
        else:
            message = f"Invalid UTF-8 start byte 0x{head:x}"
        prefix = raw[:start]
        line = prefix.count(b"\n") + 1
        col = start - (prefix.rfind(b"\n") + 1) + 1
        raise xcontent_error(message, line, col) from None


# -- text -> objects ---------------------------------------------------------------------------

def _ensure_recursion_headroom() -> None:
    """Let 1000-deep bodies through the standard library's recursive parser and encoder."""
    if sys.getrecursionlimit() < _RECURSION_HEADROOM:
        with _RECURSION_LOCK:
            if sys.getrecursionlimit() < _RECURSION_HEADROOM:
                sys.setrecursionlimit(_RECURSION_HEADROOM)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Breach
    return out


def _constant(token: str) -> Any:
    raise _Breach


def _int(token: str) -> int:
    if len(token) - token.startswith("-") > MAX_NUMBER_LENGTH:  # Jackson counts the digits
        raise _Breach
    return int(token)


def _float(token: str) -> float:
    if len(token) > MAX_NUMBER_LENGTH:
        raise _Breach
    return float(token)  # 1e999 is Infinity, as Jackson reads it


#: bytes -> "0" for a digit, " " otherwise: a number longer than the limit holds a run of at least
#: a third of it in digits (at most a sign, a point, an "e" and its sign break it up)
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * ((MAX_NUMBER_LENGTH - 4) // 3)


def _may_hold_long_numbers(text: str) -> bool:
    return _LONG_RUN in text.encode("utf-8", "surrogatepass").translate(_DIGITS)


def _depth(value: Any) -> int:
    """How deep ``value`` nests (containers only; iterative)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return deepest


def _number_problem(token: str) -> str | None:
    if token.lstrip("-").isdigit():
        digits = len(token.lstrip("-"))
        return _NUMBER.format(length=digits, limit=MAX_NUMBER_LENGTH) if digits > MAX_NUMBER_LENGTH else None
    if len(token) > MAX_NUMBER_LENGTH:
        return _NUMBER.format(length=len(token), limit=MAX_NUMBER_LENGTH)
    return None


def scan(text: str) -> ApiError | None:
    """The first limit ``text`` breaches (depth, duplicate key, number, NaN), with its location.

    A position-tracking walk over the tokens; used to report, not to parse (malformed JSON is
    left to the parser, which says where it is).
    """
    stack: list[set[str] | None] = []  # a set of the keys seen per object, None per array
    expect_key = False
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            return None
        pos = m.end()
        kind = m.lastgroup
        token = m.group(kind or 0)
        if kind == "punct":
            if token in "{[":
                stack.append(set() if token == "{" else None)
                if len(stack) > MAX_NESTING_DEPTH:
                    return _at(text, pos, _DEPTH.format(depth=len(stack), limit=MAX_NESTING_DEPTH))
                expect_key = token == "{"
            elif token in "}]":
                if stack:
                    stack.pop()
                expect_key = False
            elif token == ",":
                expect_key = bool(stack) and stack[-1] is not None
            else:  # ":"
                expect_key = False
        elif kind == "str":
            if expect_key and stack and stack[-1] is not None:
                try:
                    key = json.loads(token)
                except ValueError:
                    return None
                if key in stack[-1]:
                    return _at(text, pos, f"Duplicate field '{key}'")
                stack[-1].add(key)
            expect_key = False
        elif kind == "num":
            problem = _number_problem(token)
            if problem is not None:
                return _at(text, pos, problem)
        elif kind == "word":
            if token in ("NaN", "Infinity", "-Infinity", "+Infinity"):
                return _at(text, pos, _NON_STANDARD.format(token=token))
    return None


#: largest body whose breach is located by the (Python-speed) scan; larger ones are reported
#: without a line and column
_SCAN_LIMIT = 10 * 1024 * 1024


def _located(text: str, fallback: ApiError) -> ApiError:
    problem = scan(text) if len(text) <= _SCAN_LIMIT else None
    return problem or fallback


def parse_json(text: str) -> Any:
    """Parse a request body as ES does (limits included); ``None`` for an empty body.

    The standard library's C parser does the work; its hooks see every object and ``NaN`` token
    (and every number, where the text holds a long run of digits), and a depth walk runs only
    when the text holds more than 1000 brackets.
    """
    if text.startswith("\ufeff"):  # a UTF-8 byte order mark, which Jackson skips
        text = text[1:]
    if not text.strip():
        return None
    openers = text.count("{") + text.count("[")
    if openers > MAX_NESTING_DEPTH // 5:
        _ensure_recursion_headroom()
    too_deep = xcontent_error(_DEPTH.format(depth=MAX_NESTING_DEPTH + 1, limit=MAX_NESTING_DEPTH))
    hooks: dict[str, Any] = {"object_pairs_hook": _pairs, "parse_constant": _constant}
    if len(text) > len(_LONG_RUN) and _may_hold_long_numbers(text):
        hooks.update(parse_int=_int, parse_float=_float)
    try:
        value = json.loads(text, **hooks)
    except _Breach:
        raise _located(text, xcontent_error("[1:1] Unexpected character or end of input")) from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            "x_content_parse_exception",
            f"[{exc.lineno}:{exc.colno}] Unexpected character or end of input: {exc.msg}",
            400,
        ) from None
    except RecursionError:
        raise _located(text, too_deep) from None
    if openers > MAX_NESTING_DEPTH and isinstance(value, (dict, list)) and _depth(value) > MAX_NESTING_DEPTH:
        raise _located(text, too_deep)
    return value


# -- Python objects ----------------------------------------------------------------------------

_TEN_TO_LIMIT = 10**MAX_NUMBER_LENGTH


def _int_digits(value: int) -> int:
    magnitude = abs(value)
    digits = int(magnitude.bit_length() * math.log10(2)) + 1
    while digits > 1 and magnitude < 10 ** (digits - 1):
        digits -= 1
    while magnitude >= 10**digits:
        digits += 1
    return digits


def check_object(body: Any) -> None:
    """Apply the parser's limits to a body given as Python objects (no text, so no location).

    Nesting deeper than 1000 and integers longer than 1000 digits answer the 400 Jackson would
    give the same body sent as JSON. Iterative: a 10,000-deep dict (or one that contains
    itself) is a 400, never a ``RecursionError``. Non-finite floats stay allowed here: from
    Python they are doubles, as ES's own processors make them (JSON text cannot carry them).
    """
    if not isinstance(body, (dict, list, tuple)):
        _check_scalar(body)
        return
    deepest = 0
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING_DEPTH:
            raise xcontent_error(_DEPTH.format(depth=depth, limit=MAX_NESTING_DEPTH))
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list, tuple)):
                stack.append((child, depth + 1))
            else:
                _check_scalar(child)
    if deepest > MAX_NESTING_DEPTH // 5:
        _ensure_recursion_headroom()


def _check_scalar(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _TEN_TO_LIMIT:
        raise xcontent_error(_NUMBER.format(length=_int_digits(value), limit=MAX_NUMBER_LENGTH))


# -- what a stored object may hold -----------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def _dotted(path: list[Any]) -> str:
    return ".".join(str(p) for p in path) or "<body>"


def lone_surrogate(body: Any) -> ApiError | None:
    """The 400 for a string holding a lone UTF-16 surrogate (a ``"\\ud800"`` escape), else ``None``.

    JSON lets such escapes through and ES's parser keeps them, but they cannot be written back as
    UTF-8: an object stored with one could never be read or answered again. A request that
    stores its body (PUT, ``_create``, ``_register``, ``_update``) holding one is refused before
    anything is stored (other requests keep them; answers escape them).
    """
    stack: list[tuple[Any, list[Any]]] = [(body, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            m = _SURROGATE.search(node) if not node.isascii() else None
            if m is not None:
                return xcontent_error(f"[{_dotted(path)}] holds a lone surrogate [\\u{ord(m.group()):04x}]: an object that "
                                      "is stored must be valid Unicode")
        elif isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and not key.isascii() and _SURROGATE.search(key):
                    return xcontent_error(f"[{_dotted(path)}] has a field name holding a lone surrogate: an object that "
                                          "is stored must be valid Unicode")
                if isinstance(value, (str, dict, list, tuple)):
                    stack.append((value, [*path, key]))
        elif isinstance(node, (list, tuple)):
            stack.extend((v, [*path, i]) for i, v in enumerate(node) if isinstance(v, (str, dict, list, tuple)))
    return None
