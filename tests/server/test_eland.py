"""eland itself against ``es_infer_nb.serve``: tree models through MLModel, the pytorch upload path through PyTorchModel.

eland 9.x pins ``pandas<3`` (this environment runs pandas 3), so eland cannot live in the test venv.
The test builds a second venv with eland 9.2 and pandas 2 (plus the libraries its model
transformers need, and torch 2.13 from the local wheel), then runs ``eland_session.py`` in it
against a server started here. That script makes eland do what a user does:

* ``MLModel.import_model`` with compressed definitions for scikit-learn, XGBoost and LightGBM
  classifiers and regressors, ``exists_model``, ``predict`` (an ``_ingest/pipeline/_simulate``),
  ``es_if_exists="replace"`` / ``"fail"``, ``delete_model``;
* ``TransformerModel`` tracing a tiny random BERT built in a local folder (no hub), then
  ``PyTorchModel.import_model`` (config with ``model_type: pytorch``, the TorchScript file in
  64 KiB definition parts, the vocabulary), ``start`` (``wait_for=started``), ``infer``, ``stop``,
  ``delete`` for a text_embedding and a text_classification model.

The script sets each answer beside the libraries' own ``predict`` / the traced file's own output
and prints them; the assertions are here. The budget covers the install (~1 min on an idle
2-core machine) on a loaded CI machine.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from external import need, registry_available
from venvs import VenvBuild

BUDGET_S = 600
SESSION_TIMEOUT_S = 300
ELAND_REQUIREMENTS = [
    "eland[scikit-learn,xgboost,lightgbm]==9.2.0",
    "pandas<3",
    "torch==2.13.0",
    "transformers<5",
    "sentence-transformers>=5,<6",
]
SCRIPT = Path(__file__).with_name("eland_session.py")


@pytest.fixture(scope="module")
def eland_venv(tmp_path_factory: pytest.TempPathFactory) -> VenvBuild:
    need("registry", registry_available())
    build = VenvBuild(tmp_path_factory.mktemp("eland") / "venv", BUDGET_S, "eland venv")
    build.create(SCRIPT.parent)
    build.run([build.python, "-m", "pip", "install", "-q", *ELAND_REQUIREMENTS], cwd=SCRIPT.parent,
              what="pip install eland")
    versions = build.run([build.python, "-c", "import eland, pandas; print(eland.__version__, pandas.__version__)"],
                         cwd=SCRIPT.parent, what="import eland")
    eland_version, pandas_version = versions.split()
    assert eland_version == "9.2.0" and pandas_version.startswith("2."), versions
    return build


def test_eland_imports_predicts_and_uploads_pytorch_models(eland_venv, server, engine, tmp_path):
    proc = subprocess.run([eland_venv.python, str(SCRIPT), server.url, str(tmp_path)], capture_output=True, text=True,
                          timeout=SESSION_TIMEOUT_S, env=eland_venv.env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("ELAND-RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-6000:]
    result = json.loads(lines[-1].removeprefix("ELAND-RESULT "))
    assert result["eland"] == "9.2.0" and result["info"].startswith("9.")

    trees = result["trees"]
    assert len(trees) == 8
    for model_id, seen in trees.items():
        assert seen["exists"] is True, model_id
        assert seen["rows"] == 60, model_id
        if seen["classification"]:
            assert seen["diff"] == 0.0, (model_id, seen)  # share of rows whose class differs from model.predict
        else:
            assert seen["diff"] < 1e-5, (model_id, seen)  # max |ours - model.predict| (float32 thresholds/leaves)
        assert seen["refused_existing"] == f"Trained machine learning model {model_id} already exists"
        assert seen["exists_after_delete"] is False, model_id

    for task in ("text_embedding", "text_classification"):
        seen = result[task]
        assert seen["parts"] > 1, seen  # the TorchScript file went up in several definition parts
        assert seen["listed"] and seen["config_model_type"] == "pytorch", seen
        assert seen["deployment_state"] == "started" and seen["inference_count"] == 3, seen
        assert seen["listed_after_delete"] is False, seen
    assert result["text_embedding"]["dims"] == [64, 64, 64]
    assert result["text_embedding"]["min_cosine"] > 0.99999
    classified = result["text_classification"]
    assert classified["predicted"] == classified["expected"] and classified["top_classes"] == [3, 3, 3]
    assert classified["probability_diff"] < 1e-5  # every class's probability vs the softmax of the traced logits

    # the engine saw it all and holds nothing of it any more
    body = engine.request("GET", "_ml/trained_models").body
    assert not {c["model_id"] for c in body["trained_model_configs"]} & {*trees, "eland-text-embedding",
                                                                          "eland-text-classification"}
