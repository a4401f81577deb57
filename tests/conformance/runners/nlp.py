"""nlp.json: BERT tokenisation and NLP post-processing without model weights.

Adapter functions named like the case kinds in ``hooks_nlp`` (next to this module) (contract
in ``adapters.py``), called with the case's inputs as keyword arguments (``vocab`` resolved from
the file's ``vocabularies``):

* ``bert_tokenize(vocab, tokenization, input, call, never_split=None)`` -> list of windows
  ``{"token_ids", "token_map", "tokens"}`` (``tokens`` without special tokens);
* ``ner_postprocess``, ``ner_config_validation``, ``ner_iob_map``, ``ner_group_tagged_tokens``,
  ``ner_annotated_text``, ``fill_mask_postprocess``, ``fill_mask_validate_input``,
  ``text_expansion_postprocess``, ``text_expansion_sanitize_vocab``, ``text_expansion_chunked``,
  ``text_classification_postprocess``, ``softmax``, ``top_k``, ``question_answering``,
  ``question_answering_top_scores`` (``runs``), ``nlp_build_request``, ``zero_shot_postprocess``,
  ``text_similarity_postprocess``
  -> an object holding the case's expected keys.
"""

from __future__ import annotations

from typing import Any

from .adapters import run_adapter

HOOKS = f"{__package__}.hooks_nlp"


def run(case: dict[str, Any], meta: dict[str, Any]) -> None:
    if isinstance(case.get("runs"), list):  # one call per run: the run's inputs and expectations over the case's
        base = {k: v for k, v in case.items() if k != "runs"}
        for run_ in case["runs"]:
            run_adapter({**base, **run_}, meta, module=HOOKS)
        return
    run_adapter(case, meta, module=HOOKS)


KINDS = {kind: run for kind in (
    "bert_tokenize", "ner_postprocess", "ner_config_validation", "ner_iob_map", "ner_group_tagged_tokens",
    "ner_annotated_text", "fill_mask_postprocess", "fill_mask_validate_input", "text_expansion_postprocess",
    "text_expansion_sanitize_vocab", "text_expansion_chunked", "text_classification_postprocess", "softmax",
    "top_k", "question_answering", "question_answering_top_scores", "nlp_build_request", "zero_shot_postprocess",
    "text_similarity_postprocess",
)}


def default_kind(case: dict[str, Any]) -> str | None:
    return None
