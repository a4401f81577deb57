"""Adapters for ``../shared/conformance/nlp.json``: one function per case kind, each calling the real
tokenization and task code (contract in ``tests/conformance/runners/adapters.py``)."""

from __future__ import annotations

from typing import Any

from .tokenization import build_tokenizer, parse


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
