"""Adapters for ``nlp.json`` (tests/conformance/cases): one function per case kind, each calling the real
tokenization and task code (contract in ``tests/conformance/runners/adapters.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from es_infer_nb.models.nlp.network import build_request
from es_infer_nb.models.nlp.tasks import classification, expansion, fill_mask, helpers, ner, parse_task, qa
from es_infer_nb.models.nlp.tasks.classification import ZeroShotClassification
from es_infer_nb.models.nlp.tasks.expansion import TextExpansion
from es_infer_nb.models.nlp.tasks.ner import Ner
from es_infer_nb.models.nlp.tasks.qa import QuestionAnswering
from es_infer_nb.models.nlp.tasks.similarity import TextSimilarity
from es_infer_nb.models.nlp.tokenization import Window, build_tokenizer, parse
from es_infer_nb.models.nlp.tokenization.wordpiece import BasicTokenizer


def _tokenizer(vocab: list[str], tokenization: dict[str, Any] | None, never_split: list[str] | None = None):
    return build_tokenizer(parse(tokenization), vocab=vocab, never_split=never_split or ())


def _window_json(window) -> dict[str, Any]:
    return {"token_ids": window.token_ids, "token_map": window.token_map, "tokens": window.tokens,
            "is_truncated": window.truncated}


def bert_tokenize(vocab: list[str], tokenization: dict[str, Any], input: Any, call: dict[str, Any],
                  never_split: list[str] | None = None) -> list[dict[str, Any]]:
    tok = _tokenizer(vocab, tokenization, never_split)
    truncate = (call or {}).get("truncate") or tok.settings.truncate
    span = (call or {}).get("span")
    if isinstance(input, list):
        first, second = input
        if span is None:
            return [_window_json(tok.tokenize_pair(first, second, truncate))]
        return [_window_json(w) for w in tok.tokenize_pair_span(first, second, truncate, int(span))]
    return [_window_json(w) for w in tok.tokenize(input, truncate, -1 if span is None else int(span))]


# -- post-processing kinds: the task code on given logits ------------------------------------------------

def _window(token_ids: list[int], pieces: list | None = None) -> Window:
    return Window(list(token_ids), list(range(len(token_ids))), False, pieces or [])


def softmax(input: list[Any]) -> list[Any]:
    return helpers.softmax(input).tolist()


def top_k(k: int, input: list[float]) -> dict[str, Any]:
    best = helpers.top_k(k, input)
    return {"indices": [i for _s, i in best], "scores": [s for s, _i in best]}


def ner_config_validation(classification_labels: list[str]) -> dict[str, Any]:
    task = Ner.parse({"classification_labels": classification_labels})
    return {"iob_map": [t.tag for t in ner.iob_map(task.options.get("classification_labels"))]}


def ner_iob_map(classification_labels: list[str] | None = None) -> dict[str, Any]:
    return ner_config_validation(classification_labels or [])


def ner_postprocess(vocab: list[str], tokenization: dict[str, Any], classification_labels: list[str], input: str,
                    token_logits: list[list[float]] | None) -> dict[str, Any]:
    """``token_logits`` None: the model gave no output at all."""
    task = Ner.parse({"classification_labels": classification_labels, "tokenization": tokenization})
    tok = build_tokenizer(task.tokenization, vocab=vocab)
    windows = task.windows(input, tok)
    outputs = [] if token_logits is None else [np.asarray(token_logits, dtype=np.float64)]
    return task.result(input, windows, outputs, tok)


def ner_group_tagged_tokens(input: str, basic_token_tags: list[str]) -> dict[str, Any]:
    basic = BasicTokenizer().tokenize(input)
    tagged = [ner.TaggedToken(start, end, ner.IobTag.of(tag), 1.0)
              for (_t, start, end), tag in zip(basic, basic_token_tags)]
    return {"entities": ner.group_tagged_tokens(tagged, input)}


def ner_annotated_text(input: str, entities: list[dict[str, Any]]) -> dict[str, Any]:
    return {"annotated_text": ner.annotated_text(input, entities)}


def fill_mask_postprocess(vocab: list[str], input: str, token_ids: list[int], mask_token_id: int | None,
                          token_logits: list[list[float]], num_top_classes: int, results_field: str | None = None,
                          mask_token: str | None = None) -> dict[str, Any]:
    """``mask_token_id`` None: the vocabulary has no mask token (``mask_token`` names it)."""
    mask_token = mask_token or vocab[mask_token_id]
    out = fill_mask.fill_mask_result("predicted_value", input, token_ids, np.asarray(token_logits), mask_token_id,
                                     mask_token, vocab, num_top_classes)
    out["predicted_sequence"] = out["predicted_value_sequence"]
    return out


def fill_mask_validate_input(input: str, mask_token: str) -> dict[str, Any]:
    fill_mask.validate_mask(input, mask_token)
    return {"valid": True}


def text_expansion_postprocess(vocab: list[str], token_logits: list[float], results_field: str | None = None,
                               replacements: dict[str, str] | None = None) -> dict[str, Any]:
    """``replacements`` (vocabulary id -> token) given to the result processor instead of the map built
    from the vocabulary."""
    task = TextExpansion.parse({"results_field": results_field} if results_field else {})
    weights = np.asarray(token_logits, dtype=np.float64)
    if replacements is not None:
        tokens = expansion.weighted_tokens(weights, vocab, {int(k): v for k, v in replacements.items()})
        return {"results_field": task.results_field, "weighted_tokens": [[t, w] for t, w in tokens]}
    tok = _FixedVocab(vocab)
    result = task.result("", [_window([])], [weights], tok)  # type: ignore[arg-type]
    return {"results_field": task.results_field, "weighted_tokens": [[t, w] for t, w in result[task.results_field].items()]}


def text_expansion_sanitize_vocab(vocab: list[str]) -> dict[str, Any]:
    return {"replacements": {str(i): t for i, t in expansion.sanitized_vocab(vocab).items()}}


def text_expansion_chunked(vocab: list[str], tokenization: dict[str, Any], input: str,
                           token_logits_per_window: list[list[float]]) -> dict[str, Any]:
    task = TextExpansion.parse({"tokenization": tokenization})
    tok = build_tokenizer(task.tokenization, vocab=vocab)
    windows = task.windows(input, tok)
    chunks = task.chunks(input, windows, [np.asarray(w) for w in token_logits_per_window], tok)
    return {"chunks": chunks}


def text_classification_postprocess(classification_labels: list[str], logits: list[float],
                                    num_top_classes: int = -1) -> dict[str, Any]:
    """The labels and ``num_top_classes`` go through the task's config parsing (its create-time checks)."""
    classification.TextClassification.parse({"classification_labels": classification_labels,
                                              "num_top_classes": num_top_classes})
    scores = classification.text_classification_scores([np.asarray(logits)], classification_labels)
    return classification.classification_result("predicted_value", classification_labels, scores, num_top_classes)


def zero_shot_postprocess(classification_labels: list[str], labels: list[str], multi_label: bool,
                          logits_per_label: list[list[float]]) -> dict[str, Any]:
    task = ZeroShotClassification.parse({"classification_labels": classification_labels, "labels": labels,
                                         "multi_label": multi_label})
    return task.result("", [], [np.asarray(r) for r in logits_per_label], None)  # type: ignore[arg-type]


def text_similarity_postprocess(text: str, span_score_combination_function: str,
                                logits_per_window: list[list[float]], results_field: str | None = None
                                ) -> dict[str, Any]:
    """One relevance logit per window combined as the task's ``span_score_combination_function``."""
    inner: dict[str, Any] = {"text": text, "span_score_combination_function": span_score_combination_function}
    if results_field is not None:
        inner["results_field"] = results_field
    task = TextSimilarity.parse(inner)
    return task.result("", [], [np.asarray(w) for w in logits_per_window], None)  # type: ignore[arg-type]


def nlp_build_request(vocab: list[str], tokenization: dict[str, Any], task_config: dict[str, Any], input: list[str],
                      request_id: str) -> dict[str, Any]:
    task = parse_task({name: {**(inner or {}), "tokenization": tokenization} for name, inner in task_config.items()})
    tok = build_tokenizer(task.tokenization, vocab=vocab)
    windows = task.request_windows(list(input), tok)
    return build_request(windows, task.tokenization.kind, tok.pad_id, request_id)


def question_answering(vocab: list[str], tokenization: dict[str, Any], question: str, input: str,
                       num_top_classes: int, max_answer_length: int, results_field: str, start_logits: list[float],
                       end_logits: list[float]) -> dict[str, Any]:
    task = QuestionAnswering.parse({"tokenization": tokenization, "question": question,
                                    "num_top_classes": num_top_classes, "max_answer_length": max_answer_length,
                                    "results_field": results_field})
    tok = build_tokenizer(task.tokenization, vocab=vocab)
    windows = task.windows(input, tok)
    result = task.result(input, windows, [np.asarray([start_logits, end_logits])], tok)
    return {**result, "predicted_value": result[results_field], "score": result["prediction_probability"],
            "token_count": len(windows[0].token_ids), "seq_pair_offset": windows[0].seq_pair_offset,
            "any_truncated": any(w.truncated for w in windows)}


def question_answering_top_scores(start_logits: list[float], end_logits: list[float], seq2_start: int,
                                  num_answers: int, span_end: int, max_answer_length: int) -> list[dict[str, Any]]:
    queue = qa.TopK(num_answers)
    for answer in qa.top_scores(np.asarray(start_logits), np.asarray(end_logits), num_answers, seq2_start, span_end,
                                max_answer_length, 0):
        queue.offer(answer)
    return [{"score": a.score, "start_token": a.start_token, "end_token": a.end_token} for a in queue.best_first()]


class _FixedVocab:
    """The vocabulary facts a task reads from a tokenizer, for post-processing-only cases."""

    def __init__(self, vocab: list[str]) -> None:
        self.vocab = vocab
