"""``lang_ident_model_1`` loaded: ES's ``LangIdentNeuralNetwork`` over CLD3's network.

Per document (ES 8.x): every script section of the cleaned text (:mod:`.features`) goes through
the network (embedding -> hidden layer -> ReLU -> softmax layer -> softmax); the section
probabilities are averaged with weights = the square of each section's UTF-8 byte length, so long
runs of one script dominate. Text without any letter has no section and is ``zxx`` (no linguistic
content). Output is a classification result as ES renders it: ISO 639-1 style codes of CLD3
(``en``, ``ko``, ``zh``, ``zh-Latn``, ...), ``top_classes``, ``prediction_probability`` and
``prediction_score`` (equal: the model has no class weights).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ...errors import ApiError
from ..inference_config import ClassificationConfig, InferenceConfig
from ..results import TreeBatchResult
from ..tree.features import Columns, any_present
from .features import clean_and_lower, extract, script_sections, truncate_utf8
from .weights import Cld3Params, load_params

# CLD3's output order (task_context_params.cc), as ES's LangIdentNeuralNetwork.LANGUAGE_NAMES
# fmt: off
LANGUAGE_NAMES: tuple[str, ...] = (
    "eo", "co", "eu", "ta", "de", "mt", "ps", "te", "su", "uz", "zh-Latn", "ne",
    "nl", "sw", "sq", "hmn", "ja", "no", "mn", "so", "ko", "kk", "sl", "ig",
    "mr", "th", "zu", "ml", "hr", "bs", "lo", "sd", "cy", "hy", "uk", "pt",
    "lv", "iw", "cs", "vi", "jv", "be", "km", "mk", "tr", "fy", "am", "zh",
    "da", "sv", "fi", "ht", "af", "la", "id", "fil", "sm", "ca", "el", "ka",
    "sr", "it", "sk", "ru", "ru-Latn", "bg", "ny", "fa", "haw", "gl", "et",
    "ms", "gd", "bg-Latn", "ha", "is", "ur", "mi", "hi", "bn", "hi-Latn", "fr",
    "yi", "hu", "xh", "my", "tg", "ro", "ar", "lb", "el-Latn", "st", "ceb",
    "kn", "az", "si", "ky", "mg", "en", "gu", "es", "pl", "ja-Latn", "ga", "lt",
    "sn", "yo", "pa", "ku",
)
# fmt: on
NO_LINGUISTIC_CONTENT = "zxx"
LABELS: list[str] = [*LANGUAGE_NAMES, NO_LINGUISTIC_CONTENT]
INPUT_FIELD = "text"
EMBEDDING_FIELD = "embedding"  # the custom_word_embedding dest_field = embedded_vector_feature_name
NAME = "lang_ident_neural_network"
# InferenceDefinition.infer refuses importance before the network runs (its own message is never reached)
NO_FEATURE_IMPORTANCE = f"Feature importance is not supported for the configured model of type [{NAME}]"
NOT_A_STRING = (
    f"[{NAME}] model could not find non-null collection of embeddings separated by unicode script type "
    f"[{EMBEDDING_FIELD}]. Please verify that the input is a string."
)


def _bad_request(reason: str) -> ApiError:
    return ApiError("status_exception", reason, 400)


def not_a_string(value: Any) -> str:
    """ES's message for a non-string ``text`` (CustomWordEmbedding writes no embeddings; the value
    itself is not quoted)."""
    return NOT_A_STRING


class LangIdentBatchResult(TreeBatchResult):
    """ES's top classes range over the 109 languages; ``zxx`` only stands in for text without letters."""

    def top_k(self) -> int:
        return min(super().top_k(), len(LANGUAGE_NAMES))

    def top_class_names(self) -> list[Any]:
        # LangIdentNeuralNetwork ranks its top classes with PredictionFieldType.STRING whatever the config
        return list(self.labels or LABELS)


class LangIdentModel:
    """The loaded model; same interface as ``TreeModel`` for the runner (columns in, batch result out)."""

    def __init__(self, model_id: str, params: Cld3Params | None = None) -> None:
        self.model_id = model_id
        self.params = params if params is not None else load_params()
        self.input_fields = [INPUT_FIELD]
        self.default_field_map: dict[str, str] = {}

    # -- the network ---------------------------------------------------------------------------
    def _embed(self, section: str) -> np.ndarray:
        parts = []
        for table, (ids, weights) in zip(self.params.embeddings, extract(section)):
            if ids:
                parts.append(np.asarray(weights, dtype=np.float64) @ table[np.asarray(ids)].astype(np.float64))
            else:
                parts.append(np.zeros(table.shape[1]))
        return np.concatenate(parts)

    def section_probabilities(self, sections: list[str]) -> np.ndarray:
        """Softmax over the 109 languages for each section: [sections, 109]."""
        x = np.stack([self._embed(s) for s in sections])
        hidden = x @ self.params.hidden + self.params.hidden_bias
        logits = np.maximum(hidden, 0.0) @ self.params.softmax + self.params.softmax_bias
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def probabilities(self, text: str) -> np.ndarray:
        """ES's probability vector over :data:`LABELS` for one text."""
        out = np.zeros(len(LABELS))
        sections = script_sections(truncate_utf8(clean_and_lower(text)))
        if not sections:
            out[-1] = 1.0
            return out
        probs = self.section_probabilities([s for s, _ in sections])
        squares = np.array([float(size) ** 2 for _, size in sections])
        out[: len(LANGUAGE_NAMES)] = (probs * np.maximum(squares, 1.0)[:, None]).sum(axis=0)
        total = squares.sum()
        if total != 0:
            out /= total
        return out

    # -- the runner's interface ----------------------------------------------------------------------
    def infer_columns(
        self,
        cols: Columns,
        n: int,
        config: InferenceConfig,
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> TreeBatchResult:
        if not isinstance(config, ClassificationConfig):
            raise _bad_request(f"[{NAME}] model only supports classification")
        present = any_present(cols, self.input_fields, n)
        texts = cols.get(INPUT_FIELD)
        probs = np.zeros((n, len(LABELS)))
        errors: list[str | None] = [None] * n
        if config.num_top_feature_importance_values > 0:
            # per document, after the all-fields-missing warning (LocalModel), whatever the text is
            errors = [NO_FEATURE_IMPORTANCE if p else None for p in present.tolist()]
            texts = None
        step = max(1, int(batch_size or 1024))
        for start in range(0, n, step):
            stop = min(n, start + step)
            for i in range(start, stop):
                if not present[i] or texts is None:
                    continue
                value = texts[i]
                if isinstance(value, str):
                    probs[i] = self.probabilities(value)
                else:
                    errors[i] = not_a_string(value)
            if on_batch is not None:
                on_batch(stop - start)
        return LangIdentBatchResult(
            model_id=self.model_id,
            config=config,
            values=np.argmax(probs, axis=1).astype(np.float64),
            probabilities=probs,
            warning=~present,
            errors=errors,
            labels=list(LABELS),
        )
