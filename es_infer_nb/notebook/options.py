"""Notebook-wide defaults for ``df.infer`` / ``series.infer``.

``%config InferMagic.device = "cuda"`` (and ``batch_size``, ``progress``) writes here, so
the accessor in the same notebook follows the magic's settings. An argument given to
``run()`` always wins over these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass


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
