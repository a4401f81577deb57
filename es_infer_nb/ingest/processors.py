"""More common ES processors: ``append``, ``trim``, ``split``, ``join``, ``gsub``, ``json``.

Same semantics and messages as the Elasticsearch ``ingest-common`` processors (AppendProcessor,
TrimProcessor, SplitProcessor, JoinProcessor, GsubProcessor, JsonProcessor). Registered in
:mod:`es_infer_nb.ingest.registry`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ApiError
from ..models.tree.features import java_string
from .config import Conf
from .declared import SymbolicDocument, append_writes, join_writes, json_writes, split_writes
from .document import MAX_NESTING_DEPTH, Doc, clone, java_type, nesting_depth_error, render_template
from .pipeline import Processor, Run, _CaseProcessor, _render_value
from .regexes import bounded, compile_pattern, java_split
from .regexes import error as regex_error


def _illegal(message: str) -> ApiError:
    return ApiError("illegal_argument_exception", message, 400)


def _java_regex(c: Conf, prop: str, pattern: str) -> Any:
    try:
        return compile_pattern(pattern)
    except regex_error as err:
        raise c.error(prop, f"Invalid regex pattern. {_pattern_syntax_message(pattern, err)}") from None


def _pattern_syntax_message(pattern: str, err: Any) -> str:
    """``PatternSyntaxException.getMessage()`` for the common syntax errors (description, ``near
    index``, the pattern, a caret line); the regex package's own text for the others."""
    msg, pos = getattr(err, "msg", str(err)), getattr(err, "pos", None)
    if msg == "unterminated character set":
        desc, index = "Unclosed character class", len(pattern) - 1
    elif msg == "missing )":
        desc, index = "Unclosed group", len(pattern)
    elif msg == "unbalanced parenthesis" and pos is not None:
        desc, index = "Unmatched closing ')'", pos - 1
    elif msg == "nothing to repeat" and pos is not None and pos < len(pattern):
        desc, index = f"Dangling meta character '{pattern[pos]}'", pos
    else:
        return str(err)
    caret = f"\n{' ' * index}^" if 0 <= index < len(pattern) else ""
    return f"{desc} near index {index}\n{pattern}{caret}"


def _java_replacement(replacement: str) -> str:
    """Java ``Matcher.replaceAll`` replacement syntax (``$1``, ``${name}``, ``\\$``) to Python's."""
    out: list[str] = []
    i = 0
    while i < len(replacement):
        ch = replacement[i]
        if ch == "\\" and i + 1 < len(replacement):
            nxt = replacement[i + 1]
            out.append("\\\\" if nxt == "\\" else nxt)
            i += 2
            continue
        if ch == "$":
            m = re.match(r"\$(\d+)|\$\{([A-Za-z][A-Za-z0-9]*)\}", replacement[i:])
            if m is None:
                raise _illegal("Illegal group reference")
            out.append(f"\\g<{m.group(1) or m.group(2)}>")
            i += m.end()
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class AppendProcessor(Processor):
    type = "append"

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        append_writes(doc, self, partial)

    def __init__(self, c: Conf) -> None:
        super().__init__()
        self.field = c.string("field")
        self.value = c.raw("value")
        if self.value is None:  # ConfigurationUtils.readObject: absent and null alike
            raise c.error("value", "required property is missing")
        self.allow_duplicates = c.boolean("allow_duplicates", True)
        c.media_type()

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        path = render_template(self.field, doc)
        value = _render_value(clone(self.value), doc)
        values = value if isinstance(value, list) else [value]
        if not doc.has(path):
            items: list[Any] = []
            self._add(items, values)
            doc.set(path, items)
            return
        old = doc.get(path)
        items = old if isinstance(old, list) else [old]
        added = self._add(items, values)
        if not isinstance(old, list) and (added or self.allow_duplicates):
            doc.set(path, items)  # IngestDocument.appendValues: a scalar stays a scalar when nothing was added

    def _add(self, items: list[Any], values: list[Any]) -> bool:
        added = False
        for v in values:
            if self.allow_duplicates or not any(_java_equals(v, item) for item in items):
                items.append(v)
                added = True
        return added


def _java_equals(a: Any, b: Any) -> bool:
    """Java's ``Object.equals`` (``List.contains``): ``1``, ``1.0`` and ``true`` are three values."""
    if java_type(a) != java_type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_java_equals(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_java_equals(v, b[k]) for k, v in a.items())
    return bool(a == b)


class _StringProcessor(_CaseProcessor):
    """``AbstractStringProcessor`` (lists of strings and the messages: :class:`_CaseProcessor`)."""


_JAVA_WHITESPACE = "".join(chr(i) for i in range(33))


class TrimProcessor(_StringProcessor):
    type = "trim"

    def convert(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise _illegal(f"field [{self.field}] of type [{java_type(value)}] cannot be cast to [java.lang.String]")
        return value.strip(_JAVA_WHITESPACE)  # Java String.trim(): every char <= U+0020 at both ends


class GsubProcessor(_StringProcessor):
    type = "gsub"

    def __init__(self, c: Conf) -> None:
        super().__init__(c)
        self.pattern = _java_regex(c, "pattern", c.string("pattern"))
        raw = c.string("replacement")
        try:
            self.replacement = _java_replacement(raw)
        except ApiError:
            raise c.error("replacement", f"Illegal group reference in [{raw}]") from None

    def convert(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise _illegal(f"field [{self.field}] of type [{java_type(value)}] cannot be cast to [java.lang.String]")
        try:
            return bounded(self.pattern, self.type, self.pattern.sub, self.replacement, value)
        except (regex_error, IndexError) as err:
            raise _illegal(f"No group {err}") from None


class SplitProcessor(Processor):
    type = "split"

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        split_writes(doc, self, partial)

    def __init__(self, c: Conf) -> None:
        super().__init__()
        self.field = c.string("field")
        raw = c.string("separator")
        self.separator: Any = None
        self.separator_error: str | None = None
        try:  # SplitProcessor compiles nothing: an invalid separator fails each document (String.split)
            self.separator = compile_pattern(raw)
        except regex_error as err:
            self.separator_error = _pattern_syntax_message(raw, err)
        self.ignore_missing = c.boolean("ignore_missing", False)
        self.preserve_trailing = c.boolean("preserve_trailing", False)
        self.target_field = c.string("target_field", self.field)

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        if not doc.has(self.field) and self.ignore_missing:
            return
        value = doc.get(self.field)
        if value is None:
            if self.ignore_missing:
                return
            raise _illegal(f"field [{self.field}] is null, cannot split.")
        if not isinstance(value, str):
            raise _illegal(f"field [{self.field}] of type [{java_type(value)}] cannot be cast to [java.lang.String]")
        if self.separator_error is not None:
            raise ApiError("pattern_syntax_exception", self.separator_error, 400)
        doc.set(self.target_field, java_split(self.separator, value, self.type, keep_trailing=self.preserve_trailing))


class JoinProcessor(Processor):
    type = "join"

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        join_writes(doc, self, partial)

    def __init__(self, c: Conf) -> None:
        super().__init__()
        self.field = c.string("field")
        self.separator = c.string("separator")
        self.target_field = c.string("target_field", self.field)

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        value = doc.get(self.field)
        if value is None:
            raise _illegal(f"field [{self.field}] is null, cannot join.")
        if not isinstance(value, list):
            raise _illegal(f"field [{self.field}] of type [{java_type(value)}] cannot be cast to [java.util.List]")
        if any(v is None for v in value):  # ES: list.stream().map(Object::toString) throws on a null element
            raise ApiError("null_pointer_exception", 'Cannot invoke "Object.toString()" because "<parameter1>" is null',
                           500)
        doc.set(self.target_field, self.separator.join(java_string(v) for v in value))


class JsonProcessor(Processor):
    type = "json"

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        json_writes(doc, self, partial)

    def __init__(self, c: Conf) -> None:
        super().__init__()
        self.field = c.string("field")
        target = c.string("target_field", None)
        self.add_to_root = c.boolean("add_to_root", False)
        self.allow_duplicate_keys = c.boolean("allow_duplicate_keys", False)
        strategy = c.string("add_to_root_conflict_strategy", None)
        if strategy is not None and strategy.lower() not in ("replace", "merge"):
            raise c.error("add_to_root_conflict_strategy", f"conflict strategy [{strategy}] not supported, cannot "
                          "convert field.")
        if self.add_to_root and target is not None:
            raise c.error("target_field", "Cannot set a target field while also setting `add_to_root` to true")
        if strategy is not None and not self.add_to_root:
            raise c.error("add_to_root_conflict_strategy",
                          "Cannot set `add_to_root_conflict_strategy` if `add_to_root` is false")
        self.strict = c.boolean("strict_json_parsing", True)
        self.strategy = (strategy or "replace").lower()
        self.target_field = target if target is not None else self.field

    def _parse(self, field_value: Any) -> Any:
        """``JsonProcessor.apply``: the value's text (``toString()``) read as one JSON value; with
        ``strict_json_parsing`` nothing but whitespace may follow it."""
        text = "null" if field_value is None else java_string(field_value)

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for k, v in items:
                if k in out and not self.allow_duplicate_keys:
                    raise _illegal(f"Duplicate field '{k}'")
                out[k] = v
            return out

        start = len(text) - len(text.lstrip(_JSON_WHITESPACE))
        if start == len(text):
            return None  # no token at all: Jackson's nextToken() is null, and so is the value
        try:
            value, end = json.JSONDecoder(object_pairs_hook=pairs).raw_decode(text, start)
        except json.JSONDecodeError as err:
            raise _illegal(f"com.fasterxml.jackson.core.JsonParseException: {_jackson_message(text, err)}") from None
        except RecursionError:
            raise _too_deep(f"Document nesting depth exceeds the maximum allowed ({_JSON_DEPTH})") from None
        if self.strict and text[end:].strip(_JSON_WHITESPACE):
            raise _illegal(f"The input {text} is not valid JSON and the strict_json_parsing parameter is true")
        too_deep = nesting_depth_error(value, _JSON_DEPTH) if isinstance(value, (dict, list)) else None
        if too_deep is not None:
            raise _too_deep(too_deep.reason)
        return value

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        value = self._parse(doc.get(self.field))
        if not self.add_to_root:
            doc.set(self.target_field, value)
            return
        if not isinstance(value, dict):
            raise _illegal("cannot add non-map fields to root of document")
        if self.strategy == "merge":
            _merge(doc.data, value)
        else:
            doc.data.update(value)


_JSON_WHITESPACE = " \t\r\n"
_JACKSON_SOURCE = "REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled)"
_TOKEN = re.compile(r"[\w$]+")


def _jackson_message(text: str, err: json.JSONDecodeError) -> str:
    """Jackson's ``JsonParseException`` message for text that does not parse: ``Unrecognized token``
    for a bare word where a value starts, the decoder's own words otherwise; then the location."""
    token = _TOKEN.match(text, err.pos) if err.msg == "Expecting value" else None
    if token is None:
        return f"{err.msg}\n at [Source: {_JACKSON_SOURCE}; line: {err.lineno}, column: {err.colno}]"
    end = token.end()
    line = text.count("\n", 0, end) + 1
    column = end - (text.rfind("\n", 0, end) + 1) + 1
    return (f"Unrecognized token '{token.group()}': was expecting (JSON String, Number, Array, Object or token "
            f"'null', 'true' or 'false')\n at [Source: {_JACKSON_SOURCE}; line: {line}, column: {column}]")


_JSON_DEPTH = MAX_NESTING_DEPTH - 1  # the parsed value goes one level down into the document, at least


def _too_deep(reason: str) -> ApiError:
    return _illegal(f"com.fasterxml.jackson.core.exc.StreamConstraintsException: {reason}")


def _merge(target: dict[str, Any], source: dict[str, Any]) -> None:
    for k, v in source.items():
        if isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge(target[k], v)
        else:
            target[k] = v
