"""The device reaches a frame's pipeline run as a parameter (issue 18): the models the run loads, and a
deployment it starts on first use, run there; the engine's own device is never changed for the call.

The engine here names ``cuda`` and the call ``cpu``: on a machine without CUDA a model that took the
engine's device would fail to load, so a run that succeeds shows the parameter was used (and on one
with CUDA the loaded model's device says it)."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import stump_regression

import es_infer_nb  # noqa: F401 - registers df.infer
from es_infer_nb.engine import Engine
from es_infer_nb.frames.pipeline import run_frame_pipeline
from es_infer_nb.models import runner
from es_infer_nb.models.deployments import deployments
from es_infer_nb.models.nlp import EMBEDDED_MODEL_ID


@pytest.fixture
def engine() -> Engine:
    eng = Engine(device="cuda")
    assert eng.request("PUT", "_ml/trained_models/stump", stump_regression()).ok
    return eng


@pytest.mark.parametrize("columnar", [True, False])
def test_a_tree_model_in_a_pipeline_loads_on_the_call_device(engine, monkeypatch, columnar):
    seen = []
    original = runner.load_model

    def spy(eng, model_id, device=None):
        seen.append((device, eng.device))
        return original(eng, model_id, device)

    monkeypatch.setattr(runner, "load_model", spy)
    frame = pd.DataFrame({"x": [0.0, 1.0]})
    body = {"processors": [{"inference": {"model_id": "stump"}}]}
    out = run_frame_pipeline(engine, frame, body, device="cpu", columnar=columnar)
    assert out["ml.inference.predicted_value"].tolist() == [1.0, 2.0]
    assert seen and all(s == ("cpu", "cuda") for s in seen)  # the call's device; the engine's left as it was
    assert engine.device == "cuda"


def test_the_accessor_passes_its_device(engine, monkeypatch):
    seen = []
    original = runner.load_model
    monkeypatch.setattr(runner, "load_model", lambda eng, m, device=None: seen.append(device) or original(eng, m, device))
    out = pd.DataFrame({"x": [0.0, 1.0]}).infer.pipeline({"processors": [{"inference": {"model_id": "stump"}}]},
                                                         engine=engine, device="cpu")
    assert out["ml.inference.predicted_value"].tolist() == [1.0, 2.0]
    assert seen and set(seen) == {"cpu"}
    assert engine.device == "cuda"


def test_a_deployment_started_on_first_use_by_a_pipeline_gets_the_call_device(engine):
    frame = pd.DataFrame({"text_field": ["a fox", "a dog"]})
    body = {"processors": [{"inference": {"model_id": EMBEDDED_MODEL_ID}}]}
    out = run_frame_pipeline(engine, frame, body, device="cpu")
    assert "_ingest.error.type" not in out.columns
    vectors = out["ml.inference.predicted_value"].tolist()
    assert len(vectors) == 2 and len(vectors[0]) == 384
    dep = deployments(engine).get(EMBEDDED_MODEL_ID)
    assert dep is not None and dep.default_device == "cpu"
    assert dep.params.device is None  # the deployment names no device of its own, as when started by _infer
    assert engine.device == "cuda"


def test_without_a_device_a_deployment_started_on_first_use_gets_the_engines():
    eng = Engine(device="cpu")
    dep = deployments(eng).for_inference(EMBEDDED_MODEL_ID)
    assert dep is not None and dep.default_device == "cpu"
