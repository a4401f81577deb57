"""NLP models (``pytorch`` trained models), as Elasticsearch runs them.

* :mod:`.tokenization` — ES's tokenizers (WordPiece analyzer for bert / mpnet, HF-backed kinds),
  truncation, span windows, sequence pairs;
* :mod:`.tasks` — every NLP task's options and post-processing (spec §3.4-3.5);
* :mod:`.network` — the transformers network with the head a task needs;
* :mod:`.model` — :class:`~.model.NlpModel`, what a deployment runs;
* :mod:`.importer` — local Hugging Face folders imported the way eland does;
* :mod:`.embedded` — the bundled all-MiniLM-L6-v2 default;
* :mod:`.conformance` — adapters for ``nlp.json``.

This package keeps its own import free of torch/transformers so that listing it costs nothing.
"""

from __future__ import annotations

EMBEDDED_MODEL_ID = "sentence-transformers__all-minilm-l6-v2"

__all__ = ["EMBEDDED_MODEL_ID"]
