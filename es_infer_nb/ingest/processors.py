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
        raise c.error(prop, f"Invalid regex pattern. {err}") from None


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
        if not c.has("value"):
            raise c.error("value", "required property is missing")
        self.value = c.raw("value")
        self.allow_duplicates = c.boolean("allow_duplicates", True)
        media = c.string("media_type", "application/json")
        if media not in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
            raise c.error("media_type", f"property does not contain a supported media type [{media}]")

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
            if self.allow_duplicates or v not in items:
                items.append(v)
                added = True
        return added


class _StringProcessor(_CaseProcessor):
    """``AbstractStringProcessor``: a string, or a list of strings, processed into ``target_field``."""

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        if not doc.has(self.field) or doc.get(self.field) is None:
            super().execute(doc, run, pipeline_id)  # the missing / null messages
            return
        value = doc.get(self.field)
        if isinstance(value, list):
            for v in value:
                if not isinstance(v, str):
                    raise _illegal(f"value [{_java_str(v)}] of type [{java_type(v)}] in list field [{self.field}] "
                                   "cannot be cast to [java.lang.String]")
            doc.set(self.target_field, [self.convert(v) for v in value])
            return
        doc.set(self.target_field, self.convert(value))


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
        self.separator = _java_regex(c, "separator", c.string("separator"))
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
        doc.set(self.target_field, self.separator.join(_java_str(v) for v in value))


def _java_str(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_java_str(v) for v in value) + "]"
    return str(value)


class JsonProcessor(Processor):
    type = "json"

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        json_writes(doc, self, partial)

    def __init__(self, c: Conf) -> None:
        super().__init__()
        self.field = c.string("field")
        target = c.string("target_field", None)
        self.add_to_root = c.boolean("add_to_root", False)
        strategy = c.string("add_to_root_conflict_strategy", None)
        self.allow_duplicate_keys = c.boolean("allow_duplicate_keys", False)
        self.strict = c.boolean("strict_json_parsing", True)
        if self.add_to_root and target is not None:
            raise c.error("target_field", "Cannot set a target field while also setting `add_to_root` to true")
        if strategy is not None and not self.add_to_root:
            raise c.error("add_to_root_conflict_strategy",
                          "Cannot set `add_to_root_conflict_strategy` if `add_to_root` is false")
        if strategy is not None and strategy.lower() not in ("replace", "merge"):
            raise c.error("add_to_root_conflict_strategy", f"conflict strategy [{strategy}] not supported, cannot "
                          "convert field.")
        self.strategy = (strategy or "replace").lower()
        self.target_field = target if target is not None else self.field

    def _parse(self, text: Any) -> Any:
        if text is None:
            return None
        if isinstance(text, (dict, list, bool, int, float)):
            return text
        if not isinstance(text, str):
            text = str(text)

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for k, v in items:
                if k in out and not self.allow_duplicate_keys:
                    raise _illegal(f"Duplicate field '{k}'")
                out[k] = v
            return out

        try:
            if self.strict:
                value = json.loads(text, object_pairs_hook=pairs)
            else:
                value, _ = json.JSONDecoder(object_pairs_hook=pairs).raw_decode(text.lstrip())
        except json.JSONDecodeError as err:
            raise _illegal(f"com.fasterxml.jackson.core.JsonParseException: {err.msg} at line {err.lineno} "
                           f"column {err.colno}") from None
        except RecursionError:
            raise _too_deep(f"Document nesting depth exceeds the maximum allowed ({_JSON_DEPTH})") from None
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


_JSON_DEPTH = MAX_NESTING_DEPTH - 1  # the parsed value goes one level down into the document, at least


def _too_deep(reason: str) -> ApiError:
    return _illegal(f"com.fasterxml.jackson.core.exc.StreamConstraintsException: {reason}")


def _merge(target: dict[str, Any], source: dict[str, Any]) -> None:
    for k, v in source.items():
        if isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge(target[k], v)
        else:
            target[k] = v
