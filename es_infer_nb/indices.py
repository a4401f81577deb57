"""Indices: documents kept in memory per engine, for ``_bulk`` and ``_search`` (never persisted).

An index is its name, the field types of its mappings (``properties``) and its documents by id, in
the order they were written. Names are checked as Elasticsearch's ``MetadataCreateIndexService``
checks them; values are kept as sent (``_source``), the mapping only decides how a field is read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError

#: the mapping types kept; any other type is refused naming these
FIELD_TYPES = ("keyword", "text", "integer", "long", "short", "byte", "double", "float", "half_float", "date",
               "boolean", "object")
NUMERIC_TYPES = frozenset({"integer", "long", "short", "byte", "double", "float", "half_float", "date"})
#: ``Strings.INVALID_FILENAME_CHARS`` as ES lists them in its message
_INVALID_CHARS = ("\\", "/", "*", "?", "\"", "<", ">", "|", " ", ",")
_MAX_NAME_BYTES = 255


def validate_index_name(name: str) -> None:
    """ES's ``invalid_index_name_exception`` for a name it refuses."""

    def invalid(why: str) -> ApiError:
        return ApiError("invalid_index_name_exception", f"Invalid index name [{name}], {why}", 400,
                        metadata={"index_uuid": "_na_", "index": name})

    if any(c in name for c in _INVALID_CHARS):
        chars = ", ".join(_INVALID_CHARS)
        raise invalid(f"must not contain the following characters [{chars}]")
    if "#" in name:
        raise invalid("must not contain '#'")
    if ":" in name:
        raise invalid("must not contain ':'")
    if name.startswith(("_", "-", "+")):
        raise invalid("must not start with '_', '-', or '+'")
    if name != name.lower():
        raise invalid("must be lowercase")
    if name in (".", ".."):
        raise invalid("must not be '.' or '..'")
    if len(name.encode("utf-8")) > _MAX_NAME_BYTES:
        raise invalid(f"index name is too long, ({len(name.encode('utf-8'))} > {_MAX_NAME_BYTES})")


def new_id() -> str:
    """An auto-generated document id (20 characters, as ES's are)."""
    return uuid.uuid4().hex[:20]


def index_not_found(name: str) -> ApiError:
    return ApiError("index_not_found_exception", f"no such index [{name}]", 404,
                    metadata={"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_",
                              "index": name})


def _parse_properties(properties: Any, prefix: str = "") -> dict[str, str]:
    if not isinstance(properties, dict):
        raise ApiError("mapper_parsing_exception", "Failed to parse mapping: [properties] must be an object", 400)
    types: dict[str, str] = {}
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            raise ApiError("mapper_parsing_exception",
                           f"Failed to parse mapping: Expected map for property [fields] on field [{name}] but got a "
                           f"class {type(spec).__name__}", 400)
        full = prefix + str(name)
        if "properties" in spec:
            types.update(_parse_properties(spec["properties"], full + "."))
            continue
        kind = spec.get("type", "object")
        if kind not in FIELD_TYPES:
            raise ApiError("mapper_parsing_exception",
                           f"Failed to parse mapping: No handler for type [{kind}] declared on field [{name}] "
                           f"(es_infer_nb keeps the types {', '.join(FIELD_TYPES)})", 400)
        types[full] = str(kind)
    return types


@dataclass
class Index:
    name: str
    uuid: str
    #: dotted field path -> mapping type (``keyword``, ``integer``...)
    mappings: dict[str, str] = field(default_factory=dict)
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    seq_no: int = -1

    def put(self, doc_id: str | None, source: dict[str, Any], *, create: bool = False) -> tuple[str, str, int, int]:
        """Write a document: ``(id, result, version, seq_no)``; ``create`` refuses an existing id (409)."""
        if doc_id is None:
            doc_id = new_id()
        existed = doc_id in self.docs
        if create and existed:
            raise ApiError("version_conflict_engine_exception",
                           f"[{doc_id}]: version conflict, document already exists (current version "
                           f"[{self.versions[doc_id]}])", 409,
                           metadata={"index_uuid": self.uuid, "shard": "0", "index": self.name})
        self.docs[doc_id] = source
        self.versions[doc_id] = self.versions.get(doc_id, 0) + 1
        self.seq_no += 1
        return doc_id, "updated" if existed else "created", self.versions[doc_id], self.seq_no

    def mapping_body(self) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for path, kind in self.mappings.items():
            node = properties
            *parents, leaf = path.split(".")
            for part in parents:
                node = node.setdefault(part, {"properties": {}})["properties"]
            node[leaf] = {"type": kind}
        return {"properties": properties} if properties else {}


class IndexStore:
    """The engine's indices, in memory."""

    def __init__(self) -> None:
        self._indices: dict[str, Index] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._indices

    def names(self) -> list[str]:
        return sorted(self._indices)

    def get(self, name: str) -> Index:
        found = self._indices.get(name)
        if found is None:
            raise index_not_found(name)
        return found

    def create(self, name: str, body: Any = None) -> Index:
        validate_index_name(name)
        if name in self._indices:
            raise ApiError("resource_already_exists_exception", f"index [{name}/{self._indices[name].uuid}] already "
                           "exists", 400, metadata={"index_uuid": self._indices[name].uuid, "index": name})
        body = body or {}
        if not isinstance(body, dict):
            raise ApiError("parse_exception", "request body must be an object", 400)
        unknown = sorted(set(body) - {"mappings", "settings", "aliases"})
        if unknown:
            raise ApiError("parse_exception", f"unknown key [{unknown[0]}] for create index", 400)
        mappings = body.get("mappings") or {}
        if not isinstance(mappings, dict):
            raise ApiError("mapper_parsing_exception", "Failed to parse mapping: [mappings] must be an object", 400)
        types = _parse_properties(mappings.get("properties", {}))
        index = Index(name, uuid.uuid4().hex[:22], types)
        self._indices[name] = index
        return index

    def get_or_create(self, name: str) -> Index:
        """The index, created with no mappings when absent (ES's automatic index creation)."""
        return self._indices[name] if name in self._indices else self.create(name)

    def delete(self, name: str) -> None:
        if name not in self._indices:
            raise index_not_found(name)
        del self._indices[name]
