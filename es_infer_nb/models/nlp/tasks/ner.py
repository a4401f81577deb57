"""``ner``: IOB tags per token, merged into words and grouped into entities (spec §3.5, ES's
``NerProcessor``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ....errors import ApiError
from ..tokenization import NlpTokenizer, Window
from ..tokenization.wordpiece import java_lower
from .base import HEAD_TOKEN, Task, as_str_list, with_truncation
from .helpers import java_offset, softmax

DEFAULT_LABELS = ("O", "B_MISC", "I_MISC", "B_PER", "I_PER", "B_ORG", "I_ORG", "B_LOC", "I_LOC")


@dataclass(frozen=True)
class IobTag:
    tag: str
    entity: str

    @classmethod
    def of(cls, tag: str) -> "IobTag":
        upper = tag.upper()
        if upper[:2] in ("B-", "I-", "B_", "I_"):
            return cls(tag, upper[2:])
        if upper == "O":
            return cls(tag, upper)
        raise ValueError(f"classification label [{tag}] is not an entity I-O-B tag.")

    @property
    def is_beginning(self) -> bool:
        return self.tag[:1] in ("b", "B")

    @property
    def is_none(self) -> bool:
        return self.tag in ("o", "O")


def validate_labels(labels: list[str] | None) -> None:
    """Every label an IOB tag, none twice (a ``validation_exception`` listing every problem)."""
    if not labels:
        return
    problems: list[str] = []
    seen: set[IobTag] = set()
    for label in labels:
        try:
            tag = IobTag.of(label)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if tag in seen:
            problems.append(f"the classification label [{label}] is duplicated in the list [{', '.join(labels)}]")
        seen.add(tag)
    if problems:
        raise ApiError("validation_exception",
                       "Validation Failed: " + "".join(f"{i}: {p};" for i, p in enumerate(problems, 1)), 400)


def iob_map(labels: list[str] | None) -> list[IobTag]:
    return [IobTag.of(label) for label in (labels or DEFAULT_LABELS)]


@dataclass(frozen=True)
class TaggedToken:
    start: int
    end: int
    tag: IobTag
    score: float


def tag_tokens(window: Window, scores: np.ndarray, tags: list[IobTag]) -> list[TaggedToken]:
    """Word pieces of one word averaged (after softmax); the argmax tag labels the word."""
    out: list[TaggedToken] = []
    token_map = window.token_map
    i = 0
    specials = 0
    n = len(window.token_ids)
    while i < n:
        position = token_map[i]
        if position < 0:
            i += 1
            specials += 1
            continue
        j = i
        while j < n - 1 and token_map[j + 1] == position:
            j += 1
        avg = scores[i: j + 1, : len(tags)].mean(axis=0)
        best = int(np.argmax(avg))
        piece = window.pieces[i - specials]
        out.append(TaggedToken(piece.start, piece.end, tags[best], float(avg[best])))
        i = j + 1
    return out


def group_tagged_tokens(tokens: list[TaggedToken], text: str) -> list[dict[str, Any]]:
    """Entities: start at a non-``O`` word, extend over following words of the same entity type
    that are not ``B`` tags; the score is the mean; the text spans the words in ``text``."""
    entities: list[dict[str, Any]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.tag.is_none:
            i += 1
            continue
        j = i + 1
        total = token.score
        while j < len(tokens) and not tokens[j].tag.is_beginning and tokens[j].tag.entity == token.tag.entity:
            total += tokens[j].score
            j += 1
        start, end = token.start, tokens[j - 1].end
        entities.append({"entity": text[start:end], "class_name": token.tag.entity,
                         "class_probability": total / (j - i), "start_pos": start, "end_pos": end})
        i = j
    return entities


def annotated_text(text: str, entities: list[dict[str, Any]]) -> str:
    """``[<text>](<CLASS>&<text, spaces as +>)`` in place of each entity."""
    if not entities:
        return text
    out: list[str] = []
    cur = 0
    for entity in entities:
        start, end = entity["start_pos"], entity["end_pos"]
        if start == -1:
            continue
        if start != cur:
            out.append(text[cur:start])
        seq = text[start:end]
        out.append(f"[{seq}]({entity['class_name']}&{seq.replace(' ', '+')})")
        cur = end
    out.append(text[cur:])
    return "".join(out)


def ner_result(results_field: str, text: str, window: Window, logits: np.ndarray, labels: list[str] | None,
               ignore_case: bool) -> dict[str, Any]:
    tags = iob_map(labels)
    scores = softmax(np.asarray(logits, dtype=np.float64))
    tagged = tag_tokens(window, scores, tags)
    entities = group_tagged_tokens(tagged, java_lower(text) if ignore_case else text)
    annotated = annotated_text(text, entities)
    offset = java_offset(text)  # ES's positions count UTF-16 units
    for entity in entities:
        entity["start_pos"], entity["end_pos"] = offset(entity["start_pos"]), offset(entity["end_pos"])
    return {results_field: annotated, "entities": entities}


class Ner(Task):
    NAME: ClassVar[str] = "ner"
    HEAD: ClassVar[str] = HEAD_TOKEN
    OPTIONS: ClassVar[dict[str, Any]] = {"classification_labels": as_str_list}

    def validate(self) -> None:
        validate_labels(self.options.get("classification_labels"))

    def result(self, text: str, windows: list[Window], outputs: list[np.ndarray], tokenizer: NlpTokenizer
               ) -> dict[str, Any]:
        labels = self.options.get("classification_labels")
        width = len(labels or DEFAULT_LABELS)
        if not windows or not outputs or not any(w.token_ids for w in windows):
            # NerProcessor.processResult (NerProcessorTests.testProcessResults_GivenNoTokens)
            raise ApiError("status_exception", "no valid tokenization to build result", 500)
        logits = np.asarray(outputs[0], dtype=np.float64)
        if logits.ndim != 2 or logits.shape[1] != width:
            raise ApiError("status_exception", f"Expected [{width}] label scores per token in the ner result; got "
                           f"shape {list(logits.shape)}", 409)
        return with_truncation(ner_result(self.results_field, text, windows[0], logits, labels,
                                          self.tokenization.do_lower_case), windows)
