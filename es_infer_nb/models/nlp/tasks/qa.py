"""``question_answering``: the best context span over every window (spec §3.5, ES's
``QuestionAnsweringProcessor``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ....errors import ApiError
from ..tokenization import NlpTokenizer, Window
from .base import HEAD_SPAN, Task, as_int, as_str, with_truncation
from .helpers import java_offset

MASKED = -10000.0


@dataclass(frozen=True)
class Answer:
    start_token: int  # index into the window's context pieces
    end_token: int
    score: float
    window: int


def _normalize(values: np.ndarray, seq2_start: int, token_count: int) -> np.ndarray:
    """Positions outside the context (but CLS) set to -10000, then softmax (``normalizeWith``)."""
    x = np.array(values, dtype=np.float64)
    keep = np.zeros(x.shape[0], dtype=bool)
    keep[0] = True
    keep[seq2_start:max(seq2_start, token_count - 1)] = True
    x[~keep] = MASKED
    return np.exp(x - np.log(np.cumsum(np.exp(x))[-1]))  # the sum taken in order, as Java adds it


def top_scores(start: np.ndarray, end: np.ndarray, num_answers: int, seq2_start: int, token_count: int,
               max_answer_length: int, window: int) -> list[Answer]:
    """Candidate spans of one window, in the order ES offers them to its top-k queue."""
    if len(start) != len(end):
        raise ApiError("status_exception", f"question answering result has invalid dimensions; possible start tokens "
                       f"[{len(start)}] must equal possible end tokens [{len(end)}]", 409)
    s = _normalize(start, seq2_start, token_count)
    e = _normalize(end, seq2_start, token_count)
    s[0] = e[0] = 0.0
    if num_answers == 1:
        best = Answer(0, 0, 0.0, window)
        top = 0.0
        for i in range(seq2_start, token_count):
            if s[i] == 0:
                continue
            for j in range(i, min(i + max_answer_length, token_count)):
                score = s[i] * e[j]
                if score > top:
                    top = score
                    best = Answer(i - seq2_start, j - seq2_start, float(score), window)
        return [best]
    return [Answer(i - seq2_start, j - seq2_start, float(s[i] * e[j]), window)
            for i in range(seq2_start, token_count) for j in range(i, min(i + max_answer_length, token_count))]


class TopK:
    """Lucene's bounded ``PriorityQueue`` of answers by score (``ScoreAndIndicesPriorityQueue``): keeps the
    ``size`` best, an equal score never evicts, and equal scores come out in its heap's order."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.heap: list[Answer] = []  # heap[0] is Lucene's heap[1], the smallest

    def offer(self, answer: Answer) -> None:
        """``insertWithOverflow``."""
        if len(self.heap) < self.size:
            self.heap.append(answer)
            self._up(len(self.heap) - 1)
        elif self.heap and self.heap[0].score < answer.score:
            self.heap[0] = answer
            self._down(0)

    def pop(self) -> Answer:
        heap = self.heap
        top = heap[0]
        last = heap.pop()
        if heap:
            heap[0] = last
            self._down(0)
        return top

    def best_first(self) -> list[Answer]:
        """Popped smallest first into the result's tail, as ``processResult`` fills its answer list."""
        return [self.pop() for _ in range(len(self.heap))][::-1]

    def _up(self, i: int) -> None:
        heap = self.heap
        node = heap[i]
        while i > 0 and node.score < heap[(i - 1) >> 1].score:
            heap[i] = heap[(i - 1) >> 1]
            i = (i - 1) >> 1
        heap[i] = node

    def _down(self, i: int) -> None:
        heap = self.heap
        n = len(heap)
        node = heap[i]
        j = self._smaller_child(i, n)
        while j < n and heap[j].score < node.score:
            heap[i] = heap[j]
            i = j
            j = self._smaller_child(i, n)
        heap[i] = node

    def _smaller_child(self, i: int, n: int) -> int:
        j = 2 * i + 1
        if j + 1 < n and self.heap[j + 1].score < self.heap[j].score:
            return j + 1
        return j


def qa_answers(windows: list[Window], outputs: list[np.ndarray], num_top_classes: int, max_answer_length: int
               ) -> list[Answer]:
    """Every window's candidate spans through one queue (``QuestionAnsweringProcessor.processResult``), after
    its checks on the model's output."""
    if not outputs:
        raise ApiError("status_exception", "question answering result has no data", 500)
    if len(outputs) != len(windows):
        raise ApiError("status_exception", f"question answering result has invalid dimensions; the number of spans "
                       f"[{len(outputs)}] does not match batched token size [{len(windows)}]", 409)
    queue = TopK(max(num_top_classes, 1))
    for index, (window, out) in enumerate(zip(windows, outputs)):
        out = np.asarray(out, dtype=np.float64)
        for answer in top_scores(out[0], out[1], queue.size, window.seq_pair_offset, len(window.token_ids),
                                 max_answer_length, index):
            queue.offer(answer)
    return queue.best_first()


def qa_result(results_field: str, context: str, windows: list[Window], answers: list[Answer], num_top_classes: int
              ) -> dict[str, Any]:
    if not any(w.pieces for w in windows):
        raise ApiError("status_exception", "question answering needs a non-empty context; the input has no tokens", 400)
    entries = []
    offset = java_offset(context)  # ES's offsets count UTF-16 units
    for a in answers:
        pieces = windows[a.window].pieces
        start, end = pieces[a.start_token].start, pieces[a.end_token].end
        # TopAnswerEntry's field order: answer, start_offset, end_offset, score
        entries.append({"answer": context[start:end], "start_offset": offset(start), "end_offset": offset(end),
                        "score": a.score})
    best = entries[0]
    out: dict[str, Any] = {results_field: best["answer"], "start_offset": best["start_offset"],
                           "end_offset": best["end_offset"]}
    if num_top_classes > 0:
        out["top_classes"] = entries
    out["prediction_probability"] = best["score"]
    return out


class QuestionAnswering(Task):
    NAME: ClassVar[str] = "question_answering"
    HEAD: ClassVar[str] = HEAD_SPAN
    OPTIONS: ClassVar[dict[str, Any]] = {"question": as_str, "max_answer_length": as_int, "num_top_classes": as_int}
    UPDATES: ClassVar[tuple[str, ...]] = ("question", "max_answer_length", "num_top_classes")
    REQUIRED_UPDATE: ClassVar[str | None] = "question"
    ONE_INPUT: ClassVar[str | None] = "question answering"

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"max_answer_length": 15, "num_top_classes": 0}

    def validate(self) -> None:
        """``QuestionAnsweringConfig``'s constructor checks (create time)."""
        top = int(self.options.get("num_top_classes", 0))
        if top < 0:
            raise ApiError("status_exception",
                           f"[num_top_classes] must be greater than or equal to [0]; provided [{top}]", 400)
        longest = int(self.options.get("max_answer_length", 15))
        if longest <= 0:
            raise ApiError("status_exception", f"[max_answer_length] must be greater than [0]; provided [{longest}]", 400)

    def validate_update(self, stored: Task) -> None:
        self.validate()  # QuestionAnsweringConfigUpdate.apply builds a QuestionAnsweringConfig: its range checks

    def check_request(self) -> None:
        self.question  # noqa: B018 - raises the ES error when missing

    @property
    def question(self) -> str:
        question = self.options.get("question")
        if not question:
            raise ApiError("status_exception", "please provide configuration update for question_answering task "
                           "including the desired [question]", 400)
        return str(question)

    def windows(self, text: str, tokenizer: NlpTokenizer) -> list[Window]:
        t = self.tokenization
        return tokenizer.tokenize_pair_span(self.question, text, t.truncate, t.span)

    def result(self, text: str, windows: list[Window], outputs: list[np.ndarray], tokenizer: NlpTokenizer
               ) -> dict[str, Any]:
        k = int(self.options.get("num_top_classes", 0))
        answers = qa_answers(windows, outputs, k, int(self.options.get("max_answer_length", 15)))
        return with_truncation(qa_result(self.results_field, text, windows, answers, k), windows)

    def stored_config(self) -> dict[str, Any]:
        out = super().stored_config()
        out.pop("question", None)
        return out
