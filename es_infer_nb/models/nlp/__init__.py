"""NLP models (``pytorch`` trained models): the embedded all-MiniLM-L6-v2 default for now.

Import :mod:`es_infer_nb.models.nlp.embedded` for the model itself; this package keeps its own
import free of torch/transformers so that listing it costs nothing.
"""

from __future__ import annotations

EMBEDDED_MODEL_ID = "sentence-transformers__all-minilm-l6-v2"

__all__ = ["EMBEDDED_MODEL_ID"]
