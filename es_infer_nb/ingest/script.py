"""The ``script`` ingest processor (ES's ``ScriptProcessor``) over the Painless subset of :mod:`es_infer_nb.painless`.

Config: ``source`` (an inline script; the shorthand ``{"script": "ctx.a = 1"}`` too) or ``id`` (a stored
script: es_infer_nb keeps no stored scripts, so ES's 404 for a script it cannot find, saying so),
``lang`` (``painless`` only), ``params`` (read-only, as ``params.x`` / ``params['x']``), ``options``.
The script is compiled when the pipeline is parsed (a ``script_exception`` "compile error" carrying the
processor's type and tag, as ES's factory answers) and runs per document on its ``ctx`` (source and
metadata fields, and ``_ingest`` as the ``if`` conditions see it: ``timestamp``, ``_value`` inside
``foreach``; it never lands in the source); a runtime error fails that document alone (``on_failure`` /
``ignore_failure`` apply).
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ApiError
from .config import Conf
from .declared import UNKNOWN, SymbolicDocument
from .document import Doc, clone, java_type
from ..models.java_hash import hashmap_order
from ..painless import Program, compile_script
from .pipeline import Processor, Run

__all__ = ["ScriptProcessor"]


def _illegal(message: str) -> ApiError:
    return ApiError("illegal_argument_exception", message, 400)


class ScriptProcessor(Processor):
    type = "script"

    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        """Each field the script assigns: what it computes is known when it runs (an unknown value, on some rows)."""
        for path in self.writes:
            doc.write(path, [UNKNOWN], True)

    def __init__(self, c: Conf) -> None:
        super().__init__()
        both = [k for k in hashmap_order(list(c.config)) if k in ("source", "inline", "id")]
        snapshot = dict(c.config)
        source = c.raw("source", c.raw("inline"))
        script_id = c.raw("id")
        lang = c.raw("lang")
        params = c.raw("params")
        options = c.raw("options")
        if source is not None and script_id is not None:
            raise self._both_types(c, snapshot, both)
        if source is None and script_id is None:
            raise _illegal("must specify either [source] for an inline script or [id] for a stored script")
        if params is not None and not isinstance(params, dict):
            raise _illegal(f"[params] must be an object, but was [{java_type(params)}]")
        if options is not None and not isinstance(options, dict):
            raise _illegal(f"[options] must be an object, but was [{java_type(options)}]")
        if script_id is not None:
            if lang is not None:
                raise _illegal("[lang] cannot be specified for stored scripts")
            raise ApiError(
                "resource_not_found_exception",
                f"unable to find script [{script_id}] in cluster state: stored scripts (PUT _scripts) are "
                "valid in Elasticsearch, not supported by es_infer_nb; give the script inline as [source]",
                404,
                metadata=self._where(c),
            )
        if not isinstance(source, str):
            raise _illegal(f"[source] must be a string, but was [{java_type(source)}]")
        lang = "painless" if lang is None else lang
        if lang != "painless":
            raise _illegal(f"script_lang not supported [{lang}]")
        self.source = source
        self.params: dict[str, Any] = dict(params or {})
        try:
            self.program: Program = compile_script(source)
        except ApiError as err:
            err.metadata.update(self._where(c))
            raise

    @classmethod
    def _both_types(cls, c: Conf, config: dict[str, Any], keys: list[str]) -> ApiError:
        """``Script.parse`` of a config naming both a source and an id: the ``XContentParseException`` at the
        second of them (in the ``HashMap`` order ES writes the config in), which the factory's caller wraps
        as a plain ``exception`` (``ExceptionsHelper.convertToElastic``)."""
        field = keys[-1]
        text = "{"
        column = 0
        for key in hashmap_order(list(config)):
            text += ("," if len(text) > 1 else "") + json.dumps(key) + ":"
            if key == field:
                column = len(text) + 1
            text += json.dumps(config[key], separators=(",", ":"))
        location = f"[1:{column}] [script] failed to parse field [{field}]"
        cause = _illegal("must only use one of [source, id] when specifying a script")
        parse = ApiError("x_content_parse_exception", location, 400, caused_by=cause, es_exception=False)
        return ApiError(
            "exception",
            f"org.elasticsearch.xcontent.XContentParseException: {location}",
            400,
            caused_by=parse,
            metadata=cls._where(c),
        )

    @staticmethod
    def _where(c: Conf) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if c.tag is not None:
            meta["processor_tag"] = c.tag
        meta["processor_type"] = c.type
        return meta

    @property
    def writes(self) -> list[str]:
        """The ``ctx`` fields the script assigns with literal names (for the frames' declared columns)."""
        return list(self.program.writes)

    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        if "_ingest" in doc.data:  # a source field of that name: ctx is the document as it is
            self.program.execute(doc.data, clone(self.params))
            return
        doc.data["_ingest"] = doc.ingest  # ctx._ingest (timestamp, foreach's _value), as the `if` conditions see it
        try:
            self.program.execute(doc.data, clone(self.params))
        finally:
            ingest = doc.data.pop("_ingest", None)
            if isinstance(ingest, dict):
                doc.ingest = ingest
