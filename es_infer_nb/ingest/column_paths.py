"""The field paths the column forms take: plain dotted paths (no template, no metadata field) and the
source fields a template reads. A processor class checks its configuration with these
(``Processor.columns_take``) before :mod:`.columnar` runs it column-at-a-time."""

from __future__ import annotations

from typing import Any

from .columnar_table import is_prefix
from .document import _MUSTACHE, template_field

__all__ = ["is_prefix", "plain_path", "template_fields"]


def plain_path(path: Any) -> bool:
    """A non-empty dotted path of a source field: no mustache template, no ``_`` metadata field, no
    empty part."""
    return isinstance(path, str) and bool(path) and "{{" not in path and not path.startswith("_") \
        and all(path.split("."))


def template_fields(value: str) -> list[str] | None:
    """The source fields a template reads (``None`` when it reads metadata); ``_ingest.*`` is the same
    for every document of the batch and does not count."""
    names = [template_field(m) for m in _MUSTACHE.finditer(value)]
    names = [n for n in names if not n.startswith("_ingest.")]
    return names if all(plain_path(n) for n in names) else None
