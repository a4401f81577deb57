"""Texts to vectors with the embedded default model (all-MiniLM-L6-v2), for ``es-infer embed``.

Device, precision, batch size and progress are parameters; the model is the process-wide one of
:mod:`es_infer_nb.models.nlp.embedded` (loaded once per device and precision).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..models.nlp.embedded import EmbeddedMiniLM, model_for

__all__ = ["EmbeddedMiniLM", "embed_texts", "embedded_model"]


def embedded_model(device: str | None = None, precision: str | None = None) -> EmbeddedMiniLM:
    """The embedded model for ``device`` and ``precision`` (not loaded yet: call ``.load()``); a
    RuntimeError / ValueError names a device or precision this machine cannot run."""
    return model_for(device, precision)


def embed_texts(model: EmbeddedMiniLM, texts: Sequence[str], *, batch_size: int | None = None,
                progress: Any = None) -> np.ndarray:
    """One L2-normalised vector per text (rows in the texts' order); ``progress``: as
    :meth:`EmbeddedMiniLM.embed` (a callable gets the number of texts finished after each batch)."""
    return model.embed(list(texts), batch_size=batch_size, progress=progress)
