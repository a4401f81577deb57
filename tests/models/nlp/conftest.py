"""Session-wide tiny models (built once) for the NLP task tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiny_models import build


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_nlp")
    return {kind: build(root / kind, kind, seed=i)
            for i, kind in enumerate(("base", "token", "sequence", "nli", "similarity", "masked_lm", "qa"))}


TASK_OF_KIND = {
    "base": ("text_embedding", "pass_through"),
    "token": ("ner",),
    "sequence": ("text_classification",),
    "nli": ("zero_shot_classification",),
    "similarity": ("text_similarity",),
    "masked_lm": ("fill_mask", "text_expansion"),
    "qa": ("question_answering",),
}


@pytest.fixture(scope="session")
def nlp_engine(tiny_models: dict[str, Path]):
    """An in-memory engine with every tiny model imported for its tasks (ids ``<task>`` with ``-``)."""
    from es_infer_nb import Engine

    engine = Engine()
    for kind, tasks in TASK_OF_KIND.items():
        for task in tasks:
            engine.import_hf_model(tiny_models[kind], task, task.replace("_", "-"))
    return engine


@pytest.fixture(scope="session")
def nlp_model(nlp_engine):
    """``nlp_model(task, **inner_overrides)``: an NlpModel of the imported tiny model (cached per config)."""
    from es_infer_nb.models.nlp.model import NlpModel

    cache: dict[str, NlpModel] = {}

    def make(task: str, **overrides):
        import json

        key = task + json.dumps(overrides, sort_keys=True)
        if key not in cache:
            model_id = task.replace("_", "-")
            stored = dict(nlp_engine.models.config(model_id))
            inner = {**stored["inference_config"][task], **overrides}
            stored["inference_config"] = {task: inner}
            cache[key] = NlpModel(model_id, stored, "cpu")
        return cache[key]

    return make
