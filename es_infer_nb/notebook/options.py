"""Notebook-wide defaults for ``df.infer`` / ``series.infer``.

``%config InferMagic.device = "cuda"`` (and ``batch_size``, ``progress``) writes here, so
the accessor in the same notebook follows the magic's settings. An argument given to
``run()`` always wins over these defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class NotebookOptions:
    """Defaults used by the accessors when ``run()`` is not given a value.

    ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... (``None``: the engine's device).
    ``batch_size``: rows per model call (``None``: the model's choice).
    ``progress``: ``True`` shows the progress bar at once, ``False`` never (``None``: after ~2 s).
    """

    device: str | None = None
    batch_size: int | None = None
    progress: bool | None = None

    def reset(self) -> None:
        self.device = None
        self.batch_size = None
        self.progress = None


options = NotebookOptions()


@contextmanager
def device_scope(engine: Any, device: str | None) -> Iterator[None]:
    """Run the block with ``engine.device = device``: the magic's REST requests, which take no device of
    their own (DataFrame runs get theirs as a parameter of :mod:`es_infer_nb.frames`)."""
    if device is None or not hasattr(engine, "device") or engine.device == device:
        yield
        return
    old = engine.device
    engine.device = device
    try:
        yield
    finally:
        engine.device = old
