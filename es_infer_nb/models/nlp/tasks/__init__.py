"""Every Elasticsearch NLP task, by ``inference_config`` name."""

from __future__ import annotations

from typing import Any

from ....errors import ApiError
from .base import Task
from .classification import TextClassification, ZeroShotClassification
from .embedding import PassThrough, TextEmbedding
from .expansion import TextExpansion
from .fill_mask import FillMask
from .ner import Ner
from .qa import QuestionAnswering
from .similarity import TextSimilarity

TASKS: dict[str, type[Task]] = {cls.NAME: cls for cls in (
    TextEmbedding, TextExpansion, TextClassification, ZeroShotClassification, Ner, FillMask, QuestionAnswering,
    TextSimilarity, PassThrough)}

__all__ = ["TASKS", "Task", "parse_task"]


def parse_task(inference_config: dict[str, Any]) -> Task:
    """The task of a stored ``inference_config`` (one key)."""
    if not isinstance(inference_config, dict) or len(inference_config) != 1:
        raise ApiError("status_exception",
                       "inference_config must be an object with one inference type mapped to an object.", 400)
    ((name, inner),) = inference_config.items()
    cls = TASKS.get(name)
    if cls is None:
        raise ApiError("status_exception", f"unrecognized inference configuration type [{name}]. Supported types "
                       f"{sorted(TASKS)}", 400)
    return cls.parse(inner)
