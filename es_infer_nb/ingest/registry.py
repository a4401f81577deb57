"""The one table of ingest processors: each processor is one class, registered here once.

A class carries its ``type`` (the name in a pipeline body), parses its own config (its constructor
takes a :class:`~.config.Conf`), has its per-document form (``execute`` / ``run_batch``), where it has
one its column form (``run_columns``; ``columns_take()``: whether that form takes its configuration)
and its declared columns (``declare_columns``: the stand-in values it writes, from its configuration;
``writes_no_columns`` for a class that writes none). The pipeline parser reads this table; the columnar
executor (:mod:`.columnar`) and the declared columns of :mod:`es_infer_nb.frames.pipeline_meta` ask the
processor's class, so a class registered here is run by columns and declared with no other edit. The
tests check every class declares its columns, and the doc-vs-column equivalence test iterates the
classes with a column form.
"""

from __future__ import annotations

from .inference import InferenceProcessor
from .ml_inference import MLInferenceProcessor
from .pipeline import (ConvertProcessor, DropProcessor, FailProcessor, ForeachProcessor, LowercaseProcessor,
                       PipelineProcessor, Processor, RemoveProcessor, RenameProcessor, SetProcessor,
                       UppercaseProcessor)
from .processors import AppendProcessor, GsubProcessor, JoinProcessor, JsonProcessor, SplitProcessor, TrimProcessor
from .script import ScriptProcessor

__all__ = ["ELASTICSEARCH_ONLY", "PROCESSORS", "column_form_types", "unknown_type_reason"]

_CLASSES: tuple[type[Processor], ...] = (
    AppendProcessor, TrimProcessor, SplitProcessor, JoinProcessor, GsubProcessor, JsonProcessor,
    SetProcessor, RenameProcessor, RemoveProcessor, UppercaseProcessor, LowercaseProcessor, ConvertProcessor,
    FailProcessor, DropProcessor, PipelineProcessor, InferenceProcessor, ForeachProcessor, MLInferenceProcessor,
    ScriptProcessor,
)

#: processor type (as written in a pipeline) -> its class
PROCESSORS: dict[str, type[Processor]] = {cls.type: cls for cls in _CLASSES}


def column_form_types() -> list[str]:
    """The processor types with a column form, in registry order."""
    return [name for name, cls in PROCESSORS.items() if cls.has_column_form()]


#: Elasticsearch ingest processor types es_infer_nb does not run (a pipeline with one is valid on a
#: cluster but refused here, with a reason that says so rather than "no such processor")
ELASTICSEARCH_ONLY: frozenset[str] = frozenset({
    "attachment", "bytes", "circle", "community_id", "csv", "date", "date_index_name", "dissect",
    "dot_expander", "enrich", "fingerprint", "geo_grid", "geoip", "grok", "html_strip", "ip_location", "kv",
    "network_direction", "redact", "registered_domain", "reroute", "script", "set_security_user", "sort",
    "terminate", "uri_parts", "urldecode", "user_agent",
} - set(PROCESSORS))


def unknown_type_reason(processor_type: str) -> str:
    """The ``parse_exception`` reason for a processor type not in :data:`PROCESSORS` (ES's own words,
    plus, for a type Elasticsearch has, that es_infer_nb does not run it)."""
    reason = f"No processor type exists with name [{processor_type}]"
    if processor_type in ELASTICSEARCH_ONLY:
        reason += (f": [{processor_type}] is valid in Elasticsearch, not supported by es_infer_nb "
                   f"(supported here: {', '.join(sorted(PROCESSORS))})")
    return reason
