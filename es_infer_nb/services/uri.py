"""The URI syntax check of ``java.net.URI`` (RFC 2396), which Elasticsearch applies to a service URL.

``uri_syntax_error(text)`` returns the message Java's parser gives for the first syntax error of
``text`` (``Illegal character in path at index 0: ^``), or ``None`` when the text is a valid URI.
Only the character-level rules are modelled: which characters each component may hold and the
``%XX`` escapes; non-ASCII characters other than spaces and controls are allowed, as in Java.
"""

from __future__ import annotations

import string

_ALNUM = set(string.ascii_letters + string.digits)
_UNRESERVED = _ALNUM | set("-_.!~*'()")
_PATH = _UNRESERVED | set(":@&=+$,;/")
_URIC = _UNRESERVED | set(";/?:@&=+$,[]")
_AUTHORITY = _UNRESERVED | set(";:@&=+$,[]")
_SCHEME = _ALNUM | set("+-.")
_HEX = set(string.hexdigits)


def _other(ch: str) -> bool:
    """Java's "other" category: non-ASCII, not a space or a control character."""
    return ord(ch) > 0x7F and not ch.isspace() and ch.isprintable()


def _scan(text: str, start: int, end: int, allowed: set[str], component: str) -> str | None:
    i = start
    while i < end:
        ch = text[i]
        if ch == "%":
            if i + 2 < end and text[i + 1] in _HEX and text[i + 2] in _HEX:
                i += 3
                continue
            return f"Malformed escape pair at index {i}: {text}"
        if ch not in allowed and not _other(ch):
            return f"Illegal character in {component} at index {i}: {text}"
        i += 1
    return None


def _first(text: str, chars: str, start: int) -> int:
    hits = [i for i in (text.find(c, start) for c in chars) if i >= 0]
    return min(hits) if hits else len(text)


def uri_syntax_error(text: str) -> str | None:
    """Java's ``URISyntaxException`` message for ``text``, or ``None`` when it parses."""
    pos = 0
    colon = _first(text, ":", 0)
    stop = _first(text, "/?#", 0)
    if colon < stop and colon < len(text):
        if colon == 0:
            return f"Expected scheme name at index 0: {text}"
        if text[0] not in string.ascii_letters:
            return f"Illegal character in scheme name at index 0: {text}"
        for i in range(1, colon):
            if text[i] not in _SCHEME:
                return f"Illegal character in scheme name at index {i}: {text}"
        pos = colon + 1
        if pos == len(text):
            return f"Expected scheme-specific part at index {pos}: {text}"
        if text[pos] != "/":  # opaque: mailto:x
            frag = _first(text, "#", pos)
            return _scan(text, pos, frag, _URIC, "opaque part") or (
                _scan(text, frag + 1, len(text), _URIC, "fragment") if frag < len(text) else None)
    if text.startswith("//", pos):
        auth_end = _first(text, "/?#", pos + 2)
        err = _scan(text, pos + 2, auth_end, _AUTHORITY, "authority")
        if err:
            return err
        pos = auth_end
    path_end = _first(text, "?#", pos)
    err = _scan(text, pos, path_end, _PATH, "path")
    if err:
        return err
    pos = path_end
    if pos < len(text) and text[pos] == "?":
        query_end = _first(text, "#", pos + 1)
        err = _scan(text, pos + 1, query_end, _URIC, "query")
        if err:
            return err
        pos = query_end
    if pos < len(text) and text[pos] == "#":
        return _scan(text, pos + 1, len(text), _URIC, "fragment")
    return None
