"""The one table of ingest processors: each processor is one class, registered here once.

A class carries its ``type`` (the name in a pipeline body), parses its own config (its constructor
takes a :class:`~.config.Conf`), has its per-document form (``execute`` / ``run_batch``) and names
its column form (``column_form``: the step of :mod:`.columnar` that runs it column-at-a-time, or
``None``). The pipeline parser, the columnar executor and the declared columns of
:mod:`es_infer_nb.frames.pipeline_meta` all read this table; the tests check that the column forms
and the declared columns cover it, and the doc-vs-column equivalence test iterates it.
"""

from __future__ import annotations

from .inference import InferenceProcessor
from .ml_inference import MLInferenceProcessor
from .pipeline import (ConvertProcessor, DropProcessor, FailProcessor, ForeachProcessor, LowercaseProcessor,
                       PipelineProcessor, Processor, RemoveProcessor, RenameProcessor, SetProcessor,
                       UppercaseProcessor)
from .processors import AppendProcessor, GsubProcessor, JoinProcessor, JsonProcessor, SplitProcessor, TrimProcessor

__all__ = ["PROCESSORS", "column_form_types"]

_CLASSES: tuple[type[Processor], ...] = (
    AppendProcessor, TrimProcessor, SplitProcessor, JoinProcessor, GsubProcessor, JsonProcessor,
    SetProcessor, RenameProcessor, RemoveProcessor, UppercaseProcessor, LowercaseProcessor, ConvertProcessor,
    FailProcessor, DropProcessor, PipelineProcessor, InferenceProcessor, ForeachProcessor, MLInferenceProcessor,
)

#: processor type (as written in a pipeline) -> its class
PROCESSORS: dict[str, type[Processor]] = {cls.type: cls for cls in _CLASSES}


def column_form_types() -> list[str]:
    """The processor types with a column form, in registry order."""
    return [name for name, cls in PROCESSORS.items() if cls.column_form is not None]
