"""The ingest document: ``_source`` plus metadata, ``_ingest`` metadata, and ES field paths.

Mirrors ``IngestDocument``: ``data`` holds the source fields and the metadata fields
(``_index``, ``_id``, ...) side by side (``sourceAndMetadata``); ``ingest`` holds the
``_ingest`` map. A path starting ``_ingest.`` addresses the ingest map, ``_source.`` the
source explicitly; a numeric segment indexes a list.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError, illegal_argument
from ..models.tree.features import dig, java_string
from ..painless.values import MAX_NESTING_DEPTH, java_type

META_FIELDS = ("_index", "_id", "_routing", "_version", "_version_type", "_if_seq_no", "_if_primary_term",
               "_dynamic_templates")


def clone(value: Any) -> Any:
    """A deep copy of a JSON-like value (dicts and lists copied, leaves shared), much faster than deepcopy."""
    if type(value) is dict:
        return {k: clone(v) for k, v in value.items()}
    if type(value) is list:
        return [clone(v) for v in value]
    if isinstance(value, (dict, list)):
        return copy.deepcopy(value)
    return value




def nesting_depth_error(value: Any, limit: int = MAX_NESTING_DEPTH) -> ApiError | None:
    """The error of a value nested deeper than ``limit`` objects/arrays (measured without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return ApiError("x_content_parse_exception", f"Document nesting depth ({depth}) exceeds the maximum "
                            f"allowed ({limit})", 400)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return None



_JAVA_INT = re.compile(r"[+-]?[0-9]+")


def java_int(text: str) -> int:
    """``Integer.parseInt``: optional sign and ASCII digits only, within 32 bits (``ValueError`` otherwise)."""
    if not _JAVA_INT.fullmatch(text) or not -(2 ** 31) <= int(text) < 2 ** 31:
        raise ValueError(text)
    return int(text)


def _list_index(items: list[Any], part: str, path: str) -> int:
    """The index ``part`` of ``path`` names in ``items``, or ES's error for a non-integer or out-of-bounds one."""
    try:
        i = java_int(part)
    except ValueError:
        raise illegal_argument(
            f"[{part}] is not an integer, cannot be used as an index as part of path [{path}]") from None
    if i < 0 or i >= len(items):
        raise illegal_argument(f"[{i}] is out of bounds for array with length [{len(items)}] as part of path [{path}]")
    return i


def all_fields(source: dict[str, Any], prefix: str = "") -> list[str]:
    """``IngestDocument.getAllFields``: every key path through nested objects (not into lists)."""
    out: list[str] = []
    for key, value in source.items():
        out.append(prefix + key)
        if isinstance(value, dict):
            out.extend(all_fields(value, f"{prefix}{key}."))
    return out


def should_keep(path: str, keep: list[str]) -> bool:
    """``RemoveProcessor.shouldKeep``: the path is kept, or lies above or below a kept one."""
    return any(path == k or k.startswith(path + ".") or path.startswith(k + ".") for k in keep)


@dataclass
class Doc:
    data: dict[str, Any]
    ingest: dict[str, Any] = field(default_factory=dict)
    dropped: bool = False
    results: list[dict[str, Any]] | None = None  # verbose processor results

    # -- paths -----------------------------------------------------------------------------
    def _root(self, path: str) -> tuple[Any, list[str]]:
        if not isinstance(path, str) or not path:
            raise illegal_argument("path cannot be null nor empty")
        if path == "_ingest":
            return {"_ingest": self.ingest}, ["_ingest"]
        root = self.data
        rest = path
        if path.startswith("_ingest."):
            root, rest = self.ingest, path[len("_ingest."):]
        elif path.startswith("_source."):
            rest = path[len("_source."):]
        parts = rest.split(".")
        if not parts[-1]:  # Java's String.split drops trailing empty strings (``a.`` is ``a``)
            while parts and not parts[-1]:
                parts.pop()
            if not parts:
                raise illegal_argument(f"path [{path}] is not valid")
        return root, parts

    @staticmethod
    def _step(container: Any, part: str, path: str) -> tuple[bool, Any]:
        if isinstance(container, dict):
            if part in container:
                return True, container[part]
            return False, None
        if isinstance(container, list):
            return True, container[_list_index(container, part, path)]
        if container is None:
            raise illegal_argument(f"cannot resolve [{part}] from null as part of path [{path}]")
        raise illegal_argument(f"cannot resolve [{part}] from object of type [{java_type(container)}] as part of path [{path}]")

    def get(self, path: str) -> Any:
        root, parts = self._root(path)
        current = root
        for part in parts:
            found, current = self._step(current, part, path)
            if not found:
                raise illegal_argument(f"field [{part}] not present as part of path [{path}]")
        return current

    def has(self, path: str, *, fail_out_of_range: bool = False) -> bool:
        """``IngestDocument.hasField(path, failOutOfRange)``: with ``fail_out_of_range``, a list index out
        of bounds raises ES's out-of-bounds error instead of reading as absent."""
        try:
            root, parts = self._root(path)
        except ApiError:
            return False
        current = root
        for part in parts:
            if isinstance(current, dict):
                if part not in current:
                    return False
                current = current[part]
            elif isinstance(current, list):
                try:
                    i = java_int(part)
                except ValueError:
                    return False
                if not 0 <= i < len(current):
                    if fail_out_of_range:
                        _list_index(current, part, path)
                    return False
                current = current[i]
            else:
                return False
        return True

    def set(self, path: str, value: Any, *, append: bool = False) -> None:
        """``IngestDocument.setFieldValue`` / ``appendFieldValue``: missing objects on the way are created;
        a null or scalar one on the way is an error, as ES words it."""
        root, parts = self._root(path)
        current = root
        for part in parts[:-1]:
            if isinstance(current, dict) and part not in current:
                current[part] = {}
            _, current = self._step(current, part, path)
        leaf = parts[-1]
        if current is None:
            raise illegal_argument(f"cannot set [{leaf}] with null parent as part of path [{path}]")
        if isinstance(current, list):
            i = _list_index(current, leaf, path)
            current[i] = _appended(current[i], value) if append else value
            return
        if not isinstance(current, dict):
            raise illegal_argument(
                f"cannot set [{leaf}] with parent object of type [{java_type(current)}] as part of path [{path}]")
        if append and leaf in current:
            current[leaf] = _appended(current[leaf], value)
        else:
            current[leaf] = value

    def remove(self, path: str) -> None:
        root, parts = self._root(path)
        current = root
        for part in parts[:-1]:
            found, current = self._step(current, part, path)
            if not found:
                raise illegal_argument(f"field [{part}] not present as part of path [{path}]")
        leaf = parts[-1]
        if isinstance(current, dict):
            if leaf not in current:
                raise illegal_argument(f"field [{leaf}] not present as part of path [{path}]")
            del current[leaf]
        elif isinstance(current, list):
            del current[_list_index(current, leaf, path)]
        elif current is None:
            raise illegal_argument(f"cannot remove [{leaf}] from null as part of path [{path}]")
        else:
            raise illegal_argument(f"cannot remove [{leaf}] from object of type [{java_type(current)}] as part of path [{path}]")

    # -- views -------------------------------------------------------------------------------
    def source(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k not in META_FIELDS}

    def render(self, *, with_pipeline: bool = False, copy_values: bool = True) -> dict[str, Any]:
        """The ``doc`` object of a ``_simulate`` answer (a deep copy unless ``copy_values`` is false)."""
        cp = clone if copy_values else (lambda v: v)
        out: dict[str, Any] = {}
        for key in ("_index", "_id", "_version", "_routing", "_version_type", "_if_seq_no", "_if_primary_term"):
            if self.data.get(key) is not None:
                out[key] = cp(self.data[key])
        if self.data.get("_dynamic_templates") is not None:  # WriteableIngestDocument: the value's toString
            out["_dynamic_templates"] = java_string(self.data["_dynamic_templates"])
        out["_source"] = cp(self.source())
        ingest: dict[str, Any] = {}
        if with_pipeline and self.ingest.get("pipeline") is not None:
            ingest["pipeline"] = self.ingest["pipeline"]
        for key, value in self.ingest.items():
            # a verbose step of an on_failure processor shows the failure metadata it runs with, as ES
            if key in ("pipeline",) or (key.startswith("on_failure_") and not with_pipeline):
                continue
            ingest[key] = cp(value)
        out["_ingest"] = ingest
        return out

    def ctx(self) -> dict[str, Any]:
        """The painless ``ctx`` map of a condition (source and metadata, plus ``_ingest``)."""
        view = dict(self.data)
        view["_ingest"] = self.ingest
        return view


def _appended(old: Any, value: Any) -> list[Any]:
    items = list(old) if isinstance(old, list) else [old]
    if isinstance(value, list):
        items.extend(value)
    else:
        items.append(value)
    return items


_MUSTACHE = re.compile(r"\{\{\{\s*([^}]+?)\s*\}\}\}|\{\{\s*([^}]+?)\s*\}\}")


def template_field(m: re.Match[str]) -> str:
    """The field a mustache match names (``{{ctx.a}}`` and ``{{a}}`` both name ``a``)."""
    name = (m.group(1) or m.group(2)).strip()
    return name[4:] if name.startswith("ctx.") else name


def template_text(value: Any) -> str:
    """How a field's value reads inside a mustache template (null and missing read as empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render_template(template: Any, doc: Doc) -> Any:
    """Mustache ``{{field}}`` / ``{{{field}}}`` substitution from the document (missing -> empty)."""
    if not isinstance(template, str) or "{{" not in template:
        return template

    def sub(m: re.Match[str]) -> str:
        try:
            value = doc.get(template_field(m))
        except ApiError:
            return ""
        return template_text(value)

    return _MUSTACHE.sub(sub, template)


def map_fields(fields: dict[str, Any], field_map: dict[str, str] | None) -> dict[str, Any]:
    """``LocalModel.mapFieldsIfNecessary``: for each ``src -> dest``, ``putIfAbsent(dest, dig(src))`` when non-null."""
    for src, dest in (field_map or {}).items():
        value = dig(fields, src)
        if value is not None and fields.get(dest) is None:
            fields[dest] = value
    return fields
