"""Ingest stats ``current``: the documents in flight in a pipeline / an inference processor right now
(``IngestMetric.preIngest`` / ``postIngest``), observed from another thread while the model call runs."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

import es_infer_nb  # noqa: F401
from helpers import stump_regression


@pytest.fixture
def eng(engine):
    assert engine.request("PUT", "_ml/trained_models/reg", stump_regression()).status == 200
    engine.request("PUT", "_ingest/pipeline/p", {"processors": [
        {"set": {"field": "a", "value": 1}},
        {"inference": {"model_id": "reg", "tag": "t", "if": "ctx.skip != true"}}]})
    return engine


def ingest(engine):
    r = engine.request("GET", "_ml/trained_models/reg/_stats")
    assert r.status == 200, r.body
    ing = r.body["trained_model_stats"][0]["ingest"]
    pipe = ing["pipelines"]["p"]  # processors: every processor of the pipeline (the set one first)
    return ing["total"]["current"], pipe["current"], pipe["processors"][1]["inference:t"]["stats"]["current"]


def test_current_counts_documents_in_flight(eng, monkeypatch):
    from es_infer_nb.models import runner

    entered, release = threading.Event(), threading.Event()
    real = runner.run_tree

    def slow(*args, **kw):
        entered.set()
        assert release.wait(30)
        return real(*args, **kw)

    monkeypatch.setattr(runner, "run_tree", slow)
    frame = pd.DataFrame({"x": [0.1, 0.9, 0.5, 0.2], "skip": [False, False, True, False]})
    out: list[pd.DataFrame] = []
    worker = threading.Thread(target=lambda: out.append(frame.infer.pipeline("p", engine=eng)))
    worker.start()
    try:
        assert entered.wait(30)
        # 4 documents in the pipeline, 3 of them (the `if` let them through) in the inference processor
        assert ingest(eng) == (4, 4, 3)
    finally:
        release.set()
        worker.join(30)
    assert out and out[0]["ml.inference.t.predicted_value"].notna().sum() == 3
    assert ingest(eng) == (0, 0, 0)
    r = eng.request("GET", "_ml/trained_models/reg/_stats").body["trained_model_stats"][0]["ingest"]
    assert r["pipelines"]["p"]["count"] == 4 and r["pipelines"]["p"]["processors"][1]["inference:t"]["stats"][
        "count"] == 3


def test_current_back_to_zero_when_the_run_is_interrupted(eng, monkeypatch):
    from es_infer_nb.models import runner

    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_tree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pd.DataFrame({"x": [0.1, 0.9]}).infer.pipeline("p", engine=eng)
    assert ingest(eng) == (0, 0, 0)


def test_nested_pipeline_current(eng, monkeypatch):
    """A ``pipeline`` processor: the called pipeline's documents are in flight in both pipelines."""
    from es_infer_nb.models import runner

    eng.request("PUT", "_ingest/pipeline/outer", {"processors": [{"pipeline": {"name": "p"}}]})
    seen: list[tuple[int, int, int]] = []
    real = runner.run_tree

    def peek(*args, **kw):
        seen.append(ingest(eng))
        return real(*args, **kw)

    monkeypatch.setattr(runner, "run_tree", peek)
    pd.DataFrame({"x": [0.1, 0.9]}).infer.pipeline("outer", engine=eng)
    assert seen == [(2, 2, 2)]
    assert ingest(eng) == (0, 0, 0)
