"""What every NLP task shares: its options (create-time and update), the windows a document is
tokenized into, and what it makes of the model's outputs (spec §3.4-3.5).

A task never runs the model: :class:`~es_infer_nb.models.nlp.model.NlpModel` tokenizes with
:meth:`Task.windows`, runs the network head named by :attr:`Task.head` on every window, and hands
the per-window outputs (numpy, padding removed) to :meth:`Task.result`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from ....errors import ApiError
from ..tokenization import NlpTokenizer, Tokenization, Window, apply_update, parse

DEFAULT_RESULTS_FIELD = "predicted_value"

#: model heads (what the network returns per window)
HEAD_EMBEDDING = "embedding"  # [hidden]
HEAD_HIDDEN = "hidden"  # [tokens, hidden]
HEAD_SEQUENCE = "sequence"  # [labels]
HEAD_TOKEN = "token"  # [tokens, labels]
HEAD_MASKED_LM = "masked_lm"  # [tokens, vocab]
HEAD_EXPANSION = "expansion"  # [vocab]
HEAD_SPAN = "span"  # [2, tokens]: start and end logits


def unknown_field(task: str, key: str, update: bool) -> ApiError:
    """The task parser's unknown-field error; in a request's update, the cause of the request parser's
    ``failed to parse field [inference_config]`` (as ES's strict parsers nest)."""
    cause = ApiError("x_content_parse_exception", f"[{task}] unknown field [{key}]", 400)
    if not update:
        return cause
    return ApiError("x_content_parse_exception", "[infer_trained_model_request] failed to parse field "
                    "[inference_config]", 400, caused_by=cause)


def parse_error(task: str, key: str) -> ApiError:
    return ApiError("x_content_parse_exception", f"[{task}] failed to parse field [{key}]", 400)


def as_int(task: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise parse_error(task, key)
    return int(value)


def as_str(task: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise parse_error(task, key)
    return value


def as_bool(task: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise parse_error(task, key)
    return value


def as_str_list(task: str, key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise parse_error(task, key)
    return list(value)


@dataclass(frozen=True)
class Task:
    """A task's settings; subclasses add their options and post-processing."""

    NAME: ClassVar[str] = ""
    HEAD: ClassVar[str] = HEAD_HIDDEN
    #: option -> reader, accepted at creation (besides results_field / tokenization / vocabulary)
    OPTIONS: ClassVar[dict[str, Any]] = {}
    #: options a request may update (besides results_field / tokenization)
    UPDATES: ClassVar[tuple[str, ...]] = ()
    #: the option an update must give (a question, a text), or None
    REQUIRED_UPDATE: ClassVar[str | None] = None
    #: the task's words in ES's refusal of a request over more than one text (the pair tasks), or None
    ONE_INPUT: ClassVar[str | None] = None

    tokenization: Tokenization = field(default_factory=Tokenization)
    results_field: str = DEFAULT_RESULTS_FIELD
    options: dict[str, Any] = field(default_factory=dict)

    # -- configuration ---------------------------------------------------------------------------
    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def parse(cls, inner: dict[str, Any] | None) -> "Task":
        """The stored (create-time) config of this task, validated as ES validates it."""
        inner = dict(inner or {})
        options = cls.defaults()
        for key, value in inner.items():
            if key in ("results_field", "tokenization", "vocabulary"):
                continue
            reader = cls.OPTIONS.get(key)
            if reader is None:
                raise unknown_field(cls.NAME, key, update=False)
            if value is not None:
                options[key] = reader(cls.NAME, key, value)
        results_field = inner.get("results_field")
        task = cls(parse(inner.get("tokenization")),
                   as_str(cls.NAME, "results_field", results_field) if results_field is not None
                   else DEFAULT_RESULTS_FIELD, options)
        task.validate()
        return task

    def validate(self) -> None:
        """Create-time checks beyond field types (overridden per task)."""

    def updated(self, update: dict[str, Any] | None) -> "Task":
        """These settings with a request's ``inference_config`` update applied."""
        if not update:
            return self
        if not isinstance(update, dict):
            raise ApiError("x_content_parse_exception", f"[{self.NAME}] update must be an object", 400)
        if self.REQUIRED_UPDATE is not None and update.get(self.REQUIRED_UPDATE) is None:
            # the update's constructor: ExceptionsHelper.requireNonNull
            raise ApiError("illegal_argument_exception", f"[{self.REQUIRED_UPDATE}] must not be null.", 400)
        options = dict(self.options)
        results_field = self.results_field
        tokenization = self.tokenization
        for key, value in update.items():
            if key == "results_field":
                if value is not None:
                    results_field = as_str(self.NAME, key, value)
            elif key == "tokenization":
                tokenization = apply_update(tokenization, value)
            elif key in self.UPDATES:
                if value is not None:
                    options[key] = self.OPTIONS[key](self.NAME, key, value)
            else:
                raise unknown_field(self.NAME, key, update=True)
        task = replace(self, tokenization=tokenization, results_field=results_field, options=options)
        task.validate_update(self)
        return task

    def validate_update(self, stored: "Task") -> None:
        """Checks on a request's settings (overridden per task)."""

    # -- running -----------------------------------------------------------------------------------
    def check_request(self) -> None:
        """Raise the ES error for settings a request must complete (a question, a text, labels)."""

    def validate_input(self, text: str, tokenizer: NlpTokenizer) -> None:
        """Raise the ES error for a document this task cannot take (overridden per task)."""

    def windows(self, text: str, tokenizer: NlpTokenizer) -> list[Window]:
        t = self.tokenization
        return tokenizer.tokenize(text, t.truncate, t.span)

    def request_windows(self, texts: list[str], tokenizer: NlpTokenizer) -> list[Window]:
        """The windows of one request over ``texts``, each text's in turn (the request builder's
        ``buildRequest``); a pair task's builder takes one text only (a bad request)."""
        if self.ONE_INPUT is not None and len(texts) > 1:
            raise ApiError("status_exception", f"Unable to do {self.ONE_INPUT} on more than one text input at a time",
                           400)
        return [window for text in texts for window in self.windows(text, tokenizer)]

    def result(self, text: str, windows: list[Window], outputs: list[np.ndarray], tokenizer: NlpTokenizer
               ) -> dict[str, Any]:
        raise NotImplementedError

    def stored_config(self) -> dict[str, Any]:
        """The config as GET shows it (defaults filled)."""
        out: dict[str, Any] = {**self.options, "tokenization": self.tokenization.to_dict(),
                               "results_field": self.results_field}
        return out


def reject_span(task: "Task") -> None:
    """ES's configs for tasks that read one window only (zero_shot_classification, fill_mask) refuse a
    ``span``."""
    if task.tokenization.span != -1:
        raise ApiError("status_exception", f"[{task.NAME}] does not support windowing long text sequences; "
                       f"configured span [{task.tokenization.span}]", 400)


def with_truncation(result: dict[str, Any], windows: list[Window]) -> dict[str, Any]:
    """``is_truncated: true`` (after the result, as ``NlpInferenceResults`` writes it) only when a
    window was truncated."""
    if any(w.truncated for w in windows):
        result["is_truncated"] = True
    return result
