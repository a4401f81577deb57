"""``text_classification`` and ``zero_shot_classification`` (spec §3.4-3.5)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ....errors import ApiError
from ..tokenization import NlpTokenizer, Window
from .base import HEAD_SEQUENCE, Task, as_bool, as_int, as_str, as_str_list, reject_span, with_truncation
from .helpers import order_desc, softmax

ZERO_SHOT_LABELS = ("entailment", "neutral", "contradiction")
DEFAULT_HYPOTHESIS = "This example is {}."


def format_hypothesis(template: str, label: str) -> str:
    """``LoggerMessageFormat.format(null, template, label)``: the first ``{}`` becomes the label; a ``{}``
    after a backslash is a literal ``{}`` (the backslash dropped), after two backslashes one backslash
    and the label; a template without ``{}`` is used as is."""
    out: list[str] = []
    i = 0
    while (j := template.find("{}", i)) != -1:
        escaped = j > 0 and template[j - 1] == "\\"
        if escaped and not (j > 1 and template[j - 2] == "\\"):
            out.append(template[i:j - 1] + "{")
            i = j + 1
            continue
        out.append(template[i:j - 1] if escaped else template[i:j])
        out.append(label)
        i = j + 2
        break
    out.append(template[i:])
    return "".join(out)


def top_classes(names: list[str], scores: np.ndarray, k: int) -> list[dict[str, Any]]:
    """The best ``k`` (all when negative) as ``{class_name, class_probability, class_score}``."""
    order = order_desc(scores)
    if k >= 0:
        order = order[:k]
    return [{"class_name": names[i], "class_probability": float(scores[i]), "class_score": float(scores[i])}
            for i in order]


def classification_result(results_field: str, names: list[str], scores: np.ndarray, k: int) -> dict[str, Any]:
    """``NlpClassificationInferenceResults``: the best class, ``top_classes`` when asked, its probability."""
    best = order_desc(scores)[0]
    out: dict[str, Any] = {results_field: names[best]}
    top = top_classes(names, scores, k) if k != 0 else []
    if top:
        out["top_classes"] = top
    out["prediction_probability"] = float(scores[best])
    return out


def text_classification_scores(logits_per_window: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """Softmax per window, averaged over windows; ES's errors for empty or mis-sized results."""
    rows = [np.asarray(w, dtype=np.float64).reshape(-1) for w in logits_per_window]
    if not rows or rows[0].size == 0:
        raise ApiError("status_exception", "Text classification result has no data", 500)
    for row in rows:  # every window's row is checked (TextClassificationProcessor.processResult)
        if row.size != len(labels):
            raise ApiError("status_exception", f"Expected exactly [{len(labels)}] values in text classification "
                           f"result; got [{row.size}]", 409)
    return np.mean(np.stack([softmax(r) for r in rows]), axis=0)


class TextClassification(Task):
    NAME: ClassVar[str] = "text_classification"
    HEAD: ClassVar[str] = HEAD_SEQUENCE
    OPTIONS: ClassVar[dict[str, Any]] = {"classification_labels": as_str_list, "num_top_classes": as_int}
    UPDATES: ClassVar[tuple[str, ...]] = ("classification_labels", "num_top_classes")

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"num_top_classes": 0}

    @property
    def labels(self) -> list[str]:
        return list(self.options.get("classification_labels") or [])

    def validate(self) -> None:
        labels = self.options.get("classification_labels")
        if labels is None or len(labels) < 2:  # TextClassificationConfig's constructor (a bad request)
            provided = "null" if labels is None else "[" + ", ".join(labels) + "]"
            raise ApiError("status_exception", f"[{self.NAME}] requires at least 2 [classification_labels]; "
                           f"provided {provided}", 400)

    def validate_update(self, stored: Task) -> None:
        if len(self.labels) != len(stored.options.get("classification_labels") or []):
            raise ApiError("illegal_argument_exception",
                           f"The number of [classification_labels] the model is defined with "
                           f"[{len(stored.options.get('classification_labels') or [])}] does not match the number in "
                           f"the update [{len(self.labels)}]", 400)

    def result(self, text: str, windows: list[Window], outputs: list[np.ndarray], tokenizer: NlpTokenizer
               ) -> dict[str, Any]:
        scores = text_classification_scores(outputs, self.labels)
        return with_truncation(classification_result(self.results_field, self.labels, scores,
                                                     int(self.options.get("num_top_classes", 0))), windows)


def zero_shot_scores(logits_per_label: list[np.ndarray], classification_labels: list[str], multi_label: bool,
                     n_labels: int | None = None) -> np.ndarray:
    """Entailment math: softmax over the entailment logits of all labels, or per label
    ``softmax([entailment, contradiction])[0]`` with ``multi_label``. The result must hold one row of 3
    values per candidate label (``n_labels``), as ES checks it."""
    lowered = [c.lower() for c in classification_labels]
    e, c = lowered.index("entailment"), lowered.index("contradiction")
    if not logits_per_label:
        raise ApiError("status_exception", "Zero shot classification result has no data", 500)
    if n_labels is not None and len(logits_per_label) != n_labels:
        # ES prints the length of the batch (one input text) after "got", not the number of rows
        raise ApiError("status_exception", f"Expected exactly [{n_labels}] values in zero shot classification "
                       f"result; got [1]", 409)
    flat = [np.asarray(r, dtype=np.float64).reshape(-1) for r in logits_per_label]
    for row in flat:
        if row.size != 3:
            raise ApiError("status_exception", f"Expected exactly [3] values in inner zero shot classification "
                           f"result; got [{row.size}]", 409)
    rows = np.stack(flat)
    if multi_label:
        return np.array([softmax([row[e], row[c]])[0] for row in rows])
    return softmax(rows[:, e])


class ZeroShotClassification(Task):
    NAME: ClassVar[str] = "zero_shot_classification"
    HEAD: ClassVar[str] = HEAD_SEQUENCE
    OPTIONS: ClassVar[dict[str, Any]] = {"classification_labels": as_str_list, "labels": as_str_list,
                                         "multi_label": as_bool, "hypothesis_template": as_str}
    UPDATES: ClassVar[tuple[str, ...]] = ("labels", "multi_label")
    ONE_INPUT: ClassVar[str | None] = "zero-shot classification"

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {"hypothesis_template": DEFAULT_HYPOTHESIS, "multi_label": False}

    def validate(self) -> None:
        # ZeroShotClassificationConfig's constructor, in its order and words (bad requests)
        labels = self.options.get("classification_labels")
        if labels is None:
            raise ApiError("illegal_argument_exception", "Required [classification_labels]", 400)
        required = "[" + ", ".join(sorted(ZERO_SHOT_LABELS)) + "]"
        if len(labels) != 3:
            raise ApiError("status_exception", f"[classification_labels] must contain exactly the three values "
                           f"{required}", 400)
        bad = [x.lower() for x in labels if x.lower() not in ZERO_SHOT_LABELS]
        if bad:
            raise ApiError("status_exception", f"[classification_labels] must contain exactly the three values "
                           f"{required}. Invalid labels [{', '.join(bad)}]", 400)
        if "labels" in self.options and not self.options["labels"]:
            raise ApiError("status_exception", "[labels] must not be empty", 400)
        reject_span(self)
        lowered = [x.lower() for x in labels]  # ZeroShotClassificationProcessor's constructor
        if "entailment" not in lowered or "contradiction" not in lowered:
            raise ApiError("status_exception",
                           "zero_shot_classification requires [entailment] and [contradiction] in classification_labels",
                           400)

    def validate_update(self, stored: Task) -> None:
        self.validate()

    def check_request(self) -> None:
        self.candidate_labels  # noqa: B018 - raises the ES error when missing

    @property
    def candidate_labels(self) -> list[str]:
        labels = self.options.get("labels")
        if not labels:
            raise ApiError("status_exception", "stored configuration has no [labels] defined, supplied inference_config "
                           "update must supply [labels]", 400)  # ZeroShotClassificationConfigUpdate.apply
        return list(labels)

    def windows(self, text: str, tokenizer: NlpTokenizer) -> list[Window]:
        """One sequence pair per candidate label: (text, hypothesis with the label)."""
        first = tokenizer.inner(text)
        template = str(self.options.get("hypothesis_template", DEFAULT_HYPOTHESIS))
        return [tokenizer.tokenize_pair(first, format_hypothesis(template, label), self.tokenization.truncate)
                for label in self.candidate_labels]

    def result(self, text: str, windows: list[Window], outputs: list[np.ndarray], tokenizer: NlpTokenizer
               ) -> dict[str, Any]:
        labels = self.candidate_labels
        scores = zero_shot_scores(outputs, list(self.options["classification_labels"]),
                                  bool(self.options.get("multi_label", False)), len(labels))
        return with_truncation(classification_result(self.results_field, labels, scores, -1), windows)
