"""``%%infer --df`` (models and pipelines over notebook DataFrames), ``%infer endpoints | resume | stats --widget``,
and bad input in cells: one clear line, the kernel and the engine still usable. All in a real IPython shell."""

from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import pytest
from helpers import churn_model, infer_magic, ipython_shell, stump_regression
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from es_infer_nb import ApiError, Engine, InferenceInterrupted, set_default_engine
from es_infer_nb.models.tree.evaluate import CompiledModel
from es_infer_nb.frames import resume as resume_module
from es_infer_nb.notebook import short_errors
from es_infer_nb.notebook.options import options

PIPELINE = {"description": "score", "processors": [{"inference": {"model_id": "stump"}}]}


@pytest.fixture(scope="module")
def shell():
    return ipython_shell()


_magic = infer_magic


@pytest.fixture
def eng():
    engine = Engine()
    assert engine.request("PUT", "_ml/trained_models/stump", stump_regression()).ok
    assert engine.request("PUT", "_ml/trained_models/churner", churn_model()).ok
    assert engine.request("PUT", "_ingest/pipeline/score", PIPELINE).ok
    return engine


@pytest.fixture
def ip(shell, eng):
    if "infer" not in shell.magics_manager.magics["cell"]:
        shell.run_line_magic("load_ext", "es_infer_nb")
    set_default_engine(eng)
    before = set(shell.user_ns)
    shell.user_ns["df"] = pd.DataFrame({"x": [0.1, 0.9, 0.4, 0.7]}, index=[30, 10, 20, 40])
    yield shell
    magic = _magic(shell)
    magic.short_errors = True
    shell.config.pop("InferMagic", None)
    set_default_engine(None)
    options.reset()
    resume_module.forget()
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]


def _cell(ip, text):
    """Run a cell as the notebook would; return (result, stdout + stderr)."""
    with capture_output() as captured:
        result = ip.run_cell(text)
    return result, captured.stdout + captured.stderr


# -- models and pipelines over a DataFrame ---------------------------------------------------------

def test_model_over_a_dataframe_line_and_cell(ip, eng):
    df = ip.user_ns["df"]
    expected = df.infer.run("stump", engine=eng)
    result, _ = _cell(ip, "%infer --df df --model stump --out scored")
    pd.testing.assert_frame_equal(ip.user_ns["scored"], expected)
    pd.testing.assert_frame_equal(result.result, expected)  # shown as the cell's output too
    cell = '%%infer --df frame --model churner --out churn -q\n{"inference_config": {"classification": ' \
           '{"num_top_classes": 2}}, "field_map": {"months": "tenure"}, "target_field": "pred"}'
    ip.user_ns["frame"] = pd.DataFrame({"months": [3, 20], "plan": ["pro", "basic"]}, index=["a", "b"])
    result, _ = _cell(ip, cell)
    assert result.error_in_exec is None and result.result is None  # -q: stored, not shown
    churn = ip.user_ns["churn"]
    assert churn["pred.predicted_value"].tolist() == ["churn", "stay"]
    assert isinstance(churn["pred.top_classes"].dtype, pd.ArrowDtype)
    assert list(churn.index) == ["a", "b"]


def test_notebook_variables_in_the_options_cell(ip):
    ip.user_ns["cfg"] = {"regression": {"num_top_feature_importance_values": 1}}
    _cell(ip, '%%infer --df df --model stump --out r -q\n# explain the predictions\n{"inference_config": {{cfg}}}')
    assert "ml.inference.feature_importance" in ip.user_ns["r"].columns


def test_pipeline_stored_and_inline(ip, eng):
    df = ip.user_ns["df"]
    expected = df.infer.pipeline("score", engine=eng)
    _cell(ip, "%infer --df df --pipeline score --out piped -q")
    pd.testing.assert_frame_equal(ip.user_ns["piped"], expected)
    inline = '%%infer --df df --pipeline --out inl -q\n{"processors": [{"inference": {"model_id": "stump", ' \
             '"target_field": "t"}}, {"set": {"field": "tag", "value": "scored"}}]}'
    result, text = _cell(ip, inline)
    assert result.error_in_exec is None, text
    out = ip.user_ns["inl"]
    assert out["t.predicted_value"].tolist() == expected["ml.inference.predicted_value"].tolist()
    assert (out["tag"] == "scored").all() and list(out.index) == [30, 10, 20, 40]


def test_endpoints_summary_shows_no_secret(ip, eng):
    empty = ip.run_line_magic("infer", "endpoints")
    assert list(empty.columns)[:3] == ["inference_id", "task_type", "service"] and len(empty) == 0
    body = {"service": "openai", "service_settings": {"api_key": "sk-secret-value", "model_id": "text-embedding-3",
                                                      "url": "http://127.0.0.1:9/v1/embeddings"}}
    assert eng.request("PUT", "_inference/text_embedding/oa", body).ok
    frame = ip.run_line_magic("infer", "endpoints")
    row = frame.set_index("inference_id").loc["oa"]
    assert (row["task_type"], row["service"], row["model_id"]) == ("text_embedding", "openai", "text-embedding-3")
    assert "sk-secret-value" not in frame.to_string()
    assert ip.run_line_magic("infer", "endpoints oa")["inference_id"].tolist() == ["oa"]
    with pytest.raises(UsageError, match="404"):
        ip.run_line_magic("infer", "endpoints nope")


# -- interrupt and resume --------------------------------------------------------------------------

@pytest.fixture
def interrupt_third_batch(monkeypatch):
    real = CompiledModel.run
    calls = {"n": 0}

    def flaky(self, x):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, x)

    monkeypatch.setattr(CompiledModel, "run", flaky)


def test_interrupted_magic_run_keeps_rows_and_resumes(ip, eng, interrupt_third_batch):
    ip.user_ns["big"] = pd.DataFrame({"x": np.linspace(0, 1, 10)})
    expected = ip.user_ns["big"].infer.run("stump", engine=eng)  # calls 1 (one batch)
    result, text = _cell(ip, "%%infer --df big --model stump --out r\n{}")
    assert result.error_in_exec is None  # call 2: the whole frame in one batch
    ip.run_line_magic("config", "InferMagic.batch_size = 3")
    result, text = _cell(ip, "%infer --df big --model stump --out r")  # call 3 raises: nothing finished
    assert isinstance(result.error_in_exec, UsageError) and "Traceback" not in text
    assert "interrupted after 0 of 10 rows; r holds the finished rows; %infer resume --out r" in text
    assert ip.user_ns["r"]["ml.inference.error"].str.contains("interrupted").all()
    result, text = _cell(ip, "%infer resume -q")
    assert result.error_in_exec is None, text
    pd.testing.assert_frame_equal(ip.user_ns["r"], expected)
    result, text = _cell(ip, "%infer resume")
    assert isinstance(result.error_in_exec, UsageError) and "nothing to resume" in text


def test_interrupt_in_a_python_cell_is_one_line_and_resumable(ip, eng, interrupt_third_batch):
    ip.user_ns["big"] = pd.DataFrame({"x": np.linspace(0, 1, 10)})
    expected = ip.user_ns["big"].infer.run("stump", engine=eng)  # call 1
    _cell(ip, "%infer --df df --model stump --out earlier -q")  # call 2, not interrupted
    result, text = _cell(ip, "out = big.infer.run('stump', batch_size=4)")  # calls 3: no row done
    assert isinstance(result.error_in_exec, InferenceInterrupted)
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("InferenceInterrupted: model [stump] interrupted after 0 of 10")
    assert "%infer resume" in lines[0]
    result, _ = _cell(ip, "%infer resume")
    pd.testing.assert_frame_equal(result.result, expected)
    assert len(ip.user_ns["earlier"]) == 4  # the earlier --out variable is not touched


# -- bad input: one line, the kernel and the engine usable -----------------------------------------

BAD_CELLS = [
    ("%infer frobnicate", "unknown %infer command 'frobnicate'"),
    ("%%infer\nPOST _ml/trained_models/stump/_infer\n{\"docs\": [{\"x\": 1},]}", "invalid JSON body"),
    ("%%infer --df df --model stump\n{\"inference_config\": {\"regression\": }}", "the cell body is not JSON"),
    ("%%infer --df df --model stump\n{\"target_field\": {{no_such_var}}}", "unknown variable 'no_such_var'"),
    ("%%infer\nGET _ml/trained_models/{{no_such_var}}", "unknown variable 'no_such_var'"),
    ("%infer --df no_such_frame --model stump", "--df no_such_frame: no variable named 'no_such_frame'"),
    ("%infer --df df_list --model stump", "df_list is a list, not a pandas DataFrame"),
    ("%infer --df a_series --model stump", "a_series is a Series"),
    ("%infer --df df --model nope", "404 resource_not_found_exception: Could not find trained model [nope]"),
    ("%infer --df df --model stump --pipeline score", "give one of --model"),
    ("%infer --df df --pipeline nope", "pipeline with id [nope] does not exist"),
    ("%%infer --df df --pipeline score\n{\"processors\": []}", "leave the cell empty"),
    ("%%infer --df df --model stump\n{\"model_id\": \"x\"}", "unknown option(s) model_id"),
    ("%%infer --df df --model stump\n{\"inference_config\": {\"classification\": {}}}", "400"),
    ("%infer --model stump", "add --df NAME"),
    ("%infer stats --widget nope", None),
    ("%infer --bogus", "unrecognized arguments"),
]


@pytest.mark.parametrize("cell, message", BAD_CELLS)
def test_bad_input_is_one_clear_line(ip, eng, cell, message):
    ip.user_ns["df_list"] = [1, 2]
    ip.user_ns["a_series"] = pd.Series([1.0])
    models_before = eng.request("GET", "_ml/trained_models").body["count"]
    result, text = _cell(ip, cell)
    assert isinstance(result.error_in_exec, UsageError), text
    assert "Traceback" not in text
    first = text.strip().splitlines()[0]
    assert first.startswith("UsageError: ")
    if message is not None:
        assert message in first, text
    # the kernel and the engine are still usable, nothing changed
    assert eng.request("GET", "_ml/trained_models").body["count"] == models_before
    result, text = _cell(ip, "%infer --df df --model stump --out ok -q")
    assert result.error_in_exec is None, text
    assert ip.user_ns["ok"]["ml.inference.predicted_value"].notna().all()


def test_frame_without_the_model_fields_is_one_warning_line(ip):
    ip.user_ns["other"] = pd.DataFrame({"y": [1.0, 2.0]})
    result, text = _cell(ip, "%infer --df other --model stump --out r -q")
    assert result.error_in_exec is None and "Traceback" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("UserWarning: none of model [stump]'s input fields (x) is a column of the frame")
    assert "field_map" in lines[0]
    assert ip.user_ns["r"]["ml.inference.warning"].notna().all()  # ES's per-row warning, every row kept


def test_api_error_in_a_python_cell_is_one_line(ip):
    result, text = _cell(ip, "df.infer.run('nope')")
    assert isinstance(result.error_in_exec, ApiError)
    assert text.strip() == "ApiError: 404 resource_not_found_exception: Could not find trained model [nope]"
    ip.run_line_magic("config", "InferMagic.short_errors = False")
    assert not short_errors.installed()
    result, text = _cell(ip, "df.infer.run('nope')")
    assert "Traceback" in text or "most recent call last" in text
    ip.run_line_magic("config", "InferMagic.short_errors = True")
    assert short_errors.installed()


# -- help, config, widget ---------------------------------------------------------------------------

def test_help_lists_the_frame_options(ip):
    with capture_output() as captured:
        ip.run_cell("%infer?")
    for flag in ("--df", "--model", "--pipeline", "--widget", "endpoints", "resume"):
        assert flag in captured.stdout
    with capture_output() as captured:
        ip.run_line_magic("config", "InferMagic")
    assert "InferMagic.short_errors" in captured.stdout


def test_config_device_reaches_pipeline_runs(ip, eng, monkeypatch):
    # the device is a parameter of the frames/ pipeline run; the engine's own device is never changed
    seen = []
    import es_infer_nb.frames.pipeline as frames_pipeline

    original = frames_pipeline.run_frame_pipeline

    def spy(engine, frame, pipeline, **kwargs):
        seen.append(kwargs.get("device"))
        devices.append(engine.device)
        return original(engine, frame, pipeline, **kwargs)

    devices: list = []
    monkeypatch.setattr(frames_pipeline, "run_frame_pipeline", spy)
    ip.run_line_magic("config", "InferMagic.device = 'cpu'")
    _cell(ip, "%infer --df df --pipeline score -q")
    ip.user_ns["df"].infer.pipeline("score")
    assert seen == ["cpu", "cpu"]
    assert devices == [None, None]  # not mutated for the call
    assert eng.device is None  # restored


@pytest.fixture
def fake_widgets(monkeypatch):
    calls = []
    module = types.ModuleType("es_infer_nb.widgets")

    def model_stats(model_ids=None, engine=None):
        calls.append(("model_stats", model_ids, engine))
        return "dashboard"

    module.model_stats = model_stats
    monkeypatch.setitem(sys.modules, "es_infer_nb.widgets", module)
    return calls


def test_stats_widget(ip, eng, fake_widgets):
    assert ip.run_line_magic("infer", "stats --widget") == "dashboard"
    assert ip.run_line_magic("infer", "stats stump,churner --widget") == "dashboard"
    assert fake_widgets == [("model_stats", None, eng), ("model_stats", ["stump", "churner"], eng)]
    with pytest.raises(UsageError, match=r"Could not find trained model \[nope\]"):
        ip.run_line_magic("infer", "stats nope --widget")


def test_magic_json_of_a_frame_body_is_not_a_request(ip):
    # a request written in a --df cell is reported as what it is: not the options object
    result, text = _cell(ip, "%%infer --df df --model stump\nGET _ml/trained_models")
    assert isinstance(result.error_in_exec, UsageError) and "not JSON" in text


def test_interrupted_console_request_is_one_line(ip, monkeypatch):
    def stop(self, x):
        raise KeyboardInterrupt

    monkeypatch.setattr(CompiledModel, "run", stop)
    result, text = _cell(ip, '%%infer\nPOST _ml/trained_models/stump/_infer\n{"docs": [{"x": 1}]}')
    assert isinstance(result.error_in_exec, InferenceInterrupted)
    assert text.strip() == "InferenceInterrupted: stopped after 0 of 1 rows; nothing was kept"
    monkeypatch.undo()
    result, text = _cell(ip, '%%infer -o r -q\nPOST _ml/trained_models/stump/_infer\n{"docs": [{"x": 1}]}')
    assert result.error_in_exec is None and ip.user_ns["r"]["inference_results"][0]["predicted_value"] == 2.0
