"""``%%infer`` / ``%infer`` driven through a real IPython shell."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers import infer_magic, ipython_shell, stump_regression
from IPython.core.error import UsageError
from IPython.core.formatters import DisplayFormatter
from IPython.utils.capture import capture_output

from es_infer_nb import Engine, Response, default_engine, set_default_engine
from es_infer_nb.notebook.console import ConsoleRequest
from es_infer_nb.notebook.magics import ConsoleResult, InferMagic, short_error
from es_infer_nb.notebook.options import options

STUMP = json.dumps(stump_regression())


@pytest.fixture(scope="module")
def shell():
    return ipython_shell()


_magic = infer_magic


@pytest.fixture
def ip(shell):
    if "infer" not in shell.magics_manager.magics["cell"]:
        shell.run_line_magic("load_ext", "es_infer_nb")
    engine = Engine()
    set_default_engine(engine)
    before = set(shell.user_ns)
    yield shell
    magic = _magic(shell)
    magic.home = None
    magic.device = None
    magic.batch_size = None
    magic.progress = None
    shell.config.pop("InferMagic", None)  # %config writes into the shell's config too
    set_default_engine(None)
    options.reset()
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]


def _texts(captured) -> list[str]:
    return [out.data.get("text/plain", "") for out in captured.outputs]


def test_cell_runs_requests_and_stores_the_last_body(ip):
    cell = f"PUT _ml/trained_models/m1\n{STUMP}\n\nGET _ml/trained_models/m1"
    with capture_output() as captured:
        ip.run_cell_magic("infer", "--out r", cell)
    r = ip.user_ns["r"]
    assert isinstance(r, dict)
    assert r["count"] == 1 and r["trained_model_configs"][0]["model_id"] == "m1"
    texts = _texts(captured)
    assert len(texts) == 2
    assert texts[0].startswith("# PUT _ml/trained_models/m1  200 OK")
    assert texts[1].startswith("# GET _ml/trained_models/m1  200 OK")
    assert '"model_id": "m1"' in texts[1]
    assert default_engine().request("GET", "_ml/trained_models/m1").ok


def test_infer_request_through_the_magic(ip):
    cell = f"""PUT _ml/trained_models/m1
{STUMP}

# infer two docs
POST _ml/trained_models/m1/_infer
{{"docs": [{{"x": 0.1}}, {{"x": 3}}]}}
"""
    with capture_output():
        ip.run_cell_magic("infer", "-o res", cell)
    values = [r["predicted_value"] for r in ip.user_ns["res"]["inference_results"]]
    assert values == [1.0, 2.0]


def test_api_error_is_displayed_without_traceback(ip):
    with capture_output() as captured:
        result = ip.run_cell("%%infer\nGET _ml/trained_models/nope\n")
    assert result.error_in_exec is None and result.error_before_exec is None
    assert "Traceback" not in captured.stdout + captured.stderr
    text = "\n".join(_texts(captured)) + captured.stdout
    assert "resource_not_found_exception" in text
    assert "404 resource_not_found_exception: Could not find trained model [nope]" in text


def test_failing_request_does_not_stop_the_cell(ip):
    cell = f"GET _ml/trained_models/nope\nPUT _ml/trained_models/m2\n{STUMP}\n"
    with capture_output() as captured:
        result = ip.run_cell("%%infer --out last\n" + cell)
    assert result.error_in_exec is None
    assert default_engine().request("GET", "_ml/trained_models/m2").ok
    assert ip.user_ns["last"]["model_id"] == "m2"
    assert len(captured.outputs) == 2


def test_stop_on_error_stops_and_fails_the_cell(ip):
    cell = f"GET _ml/trained_models/nope\nPUT _ml/trained_models/m3\n{STUMP}\n"
    with capture_output() as captured:
        result = ip.run_cell("%%infer --stop-on-error --out e\n" + cell)
    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in captured.stdout + captured.stderr
    assert "404 resource_not_found_exception" in captured.stderr
    assert "line 2" in captured.stderr  # the %%infer line is line 1
    assert not default_engine().request("GET", "_ml/trained_models/m3").ok
    assert ip.user_ns["e"]["status"] == 404  # the failed answer is still stored


def test_malformed_body_is_a_usage_error_and_runs_nothing(ip):
    cell = f'PUT _ml/trained_models/m4\n{STUMP}\n\nPOST _ml/trained_models/m4/_infer\n{{"docs": [{{"x": 1}},]}}\n'
    with capture_output() as captured:
        result = ip.run_cell("%%infer\n" + cell)
    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in captured.stderr
    assert "line 6" in captured.stderr and "request 2" in captured.stderr
    assert not default_engine().request("GET", "_ml/trained_models/m4").ok


def test_variables_from_the_notebook(ip):
    ip.user_ns["mid"] = "m5"
    ip.user_ns["docs"] = [{"x": 0.0}, {"x": 9.0}]
    cell = f"PUT _ml/trained_models/{{{{mid}}}}\n{STUMP}\nPOST _ml/trained_models/${{mid}}/_infer\n{{\"docs\": {{{{docs}}}}}}\n"
    with capture_output():
        ip.run_cell_magic("infer", "--out r --quiet", cell)
    assert [d["predicted_value"] for d in ip.user_ns["r"]["inference_results"]] == [1.0, 2.0]


def test_unknown_variable_is_a_usage_error(ip):
    with capture_output() as captured:
        result = ip.run_cell("%%infer\nGET _ml/trained_models/{{undefined_thing}}\n")
    assert isinstance(result.error_in_exec, UsageError)
    assert "undefined_thing" in captured.stderr and "line 2" in captured.stderr


def test_no_vars_flag_keeps_placeholders(ip):
    with capture_output() as captured:
        ip.run_cell_magic("infer", "--no-vars", "GET _ml/trained_models/{{undefined_thing}}")
    assert "{{undefined_thing}}" in _texts(captured)[0]


@pytest.mark.parametrize("line, first", [("r <<", ""), ("", "r <<"), ("--quiet", "r << GET _ml/trained_models/m6")])
def test_assignment_syntax(ip, line, first):
    ip.run_cell_magic("infer", "--quiet", f"PUT _ml/trained_models/m6\n{STUMP}")
    body = "" if first.startswith("r << GET") else "GET _ml/trained_models/m6"
    cell = f"{first}\n{body}" if first else body
    with capture_output():
        ip.run_cell_magic("infer", line, cell)
    assert ip.user_ns["r"]["trained_model_configs"][0]["model_id"] == "m6"


def test_quiet_displays_nothing(ip):
    with capture_output() as captured:
        ip.run_cell_magic("infer", "-q -o r", "GET _ml/trained_models")
    assert captured.outputs == [] and "count" in ip.user_ns["r"]


def test_unexpected_words_on_the_cell_line(ip):
    with pytest.raises(UsageError, match="unexpected argument"):
        ip.run_cell_magic("infer", "GET _ml/trained_models", "GET _ml/trained_models")
    with pytest.raises(UsageError):
        ip.run_cell_magic("infer", "--bogus", "GET _ml/trained_models")
    with pytest.raises(UsageError, match="variable name"):
        ip.run_cell_magic("infer", "--out 1x", "GET _ml/trained_models")


def test_engine_flag_uses_a_notebook_engine(ip):
    other = Engine()
    ip.user_ns["other"] = other
    ip.run_cell_magic("infer", "--engine other -q", f"PUT _ml/trained_models/m7\n{STUMP}")
    assert other.request("GET", "_ml/trained_models/m7").ok
    assert not default_engine().request("GET", "_ml/trained_models/m7").ok
    ip.user_ns["notengine"] = 3
    with pytest.raises(UsageError, match="not an es_infer_nb.Engine"):
        ip.run_cell_magic("infer", "--engine notengine", "GET _ml/trained_models")


# -- line mode ------------------------------------------------------------------------------

def _put_stump(ip, model_id="m1"):
    ip.run_cell_magic("infer", "-q", f"PUT _ml/trained_models/{model_id}\n{STUMP}")


def test_models_summary_is_a_dataframe(ip):
    _put_stump(ip, "m1")
    frame = ip.run_line_magic("infer", "models")
    assert isinstance(frame, pd.DataFrame)
    row = frame.set_index("model_id").loc["m1"]
    assert row["model_type"] == "tree_ensemble" and row["task"] == "regression" and row["input_fields"] == "x"
    assert isinstance(row["created"], pd.Timestamp)
    only = ip.run_line_magic("infer", "models m1")
    assert only["model_id"].tolist() == ["m1"]


def test_models_summary_through_run_cell_and_out(ip):
    _put_stump(ip, "m1")
    with capture_output():
        result = ip.run_cell("%infer models --out models_df")
    assert isinstance(result.result, pd.DataFrame)
    assert "m1" in ip.user_ns["models_df"]["model_id"].tolist()


def test_stats_summary(ip):
    _put_stump(ip, "m1")
    _put_stump(ip, "m2")
    ip.run_cell_magic("infer", "-q", 'POST _ml/trained_models/m1/_infer\n{"docs": [{"x": 1}, {"x": 0}]}')
    stats = ip.run_line_magic("infer", "stats m1,m2").set_index("model_id")
    assert stats.loc["m1", "inference_count"] == 2
    assert stats.loc["m2", "inference_count"] == 0
    assert stats.loc["m1", "pipeline_count"] == 0
    both = ip.run_line_magic("infer", "stats m1 m2")
    assert sorted(both["model_id"]) == ["m1", "m2"]


def test_stats_of_unknown_model_is_a_usage_error(ip):
    with pytest.raises(UsageError, match="resource_not_found_exception"):
        ip.run_line_magic("infer", "stats nope")


def test_pipelines_summary(ip):
    _put_stump(ip, "m1")
    empty = ip.run_line_magic("infer", "pipelines")
    assert isinstance(empty, pd.DataFrame) and len(empty) == 0 and "pipeline" in empty.columns
    ip.run_cell_magic(
        "infer",
        "-q",
        'PUT _ingest/pipeline/p1\n{"description": "score", "processors": [{"inference": {"model_id": "m1"}}]}',
    )
    frame = ip.run_line_magic("infer", "pipelines")
    assert frame["pipeline"].tolist() == ["p1"]
    assert frame["models"].tolist() == ["m1"] and frame["processor_types"].tolist() == ["inference"]
    assert frame["processors"].tolist() == [1]


def test_unknown_subcommand_lists_the_valid_ones(ip):
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("infer", "modls")
    msg = str(info.value)
    assert "models" in msg and "stats" in msg and "pipelines" in msg and "Did you mean 'models'" in msg
    with pytest.raises(UsageError, match="Valid commands"):
        ip.run_line_magic("infer", "")


def test_one_line_request(ip):
    _put_stump(ip, "m1")
    with capture_output() as captured:
        ip.run_line_magic("infer", "GET _ml/trained_models/m1 --out one")
    assert ip.user_ns["one"]["count"] == 1
    assert _texts(captured)[0].startswith("# GET _ml/trained_models/m1  200 OK")
    with pytest.raises(UsageError, match="%%infer"):
        ip.run_line_magic("infer", "POST _ml/trained_models/m1/_infer extra")


def test_line_mode_errors_without_traceback(ip):
    with capture_output() as captured:
        result = ip.run_cell("%infer frobnicate")
    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in captured.stdout + captured.stderr


def test_help_shows_the_options(ip):
    with capture_output() as captured:
        ip.run_cell("%infer?")
    assert "--out" in captured.stdout and "--stop-on-error" in captured.stdout


# -- configuration ----------------------------------------------------------------------------

def test_config_options_take_effect(ip, monkeypatch):
    import es_infer_nb.models.runner as runner

    magic = _magic(ip)
    ip.run_line_magic("config", "InferMagic.batch_size = 1000")
    ip.run_line_magic("config", "InferMagic.progress = False")
    ip.run_line_magic("config", "InferMagic.device = 'cpu'")
    assert (magic.batch_size, magic.progress, magic.device) == (1000, False, "cpu")
    assert (options.batch_size, options.progress, options.device) == (1000, False, "cpu")
    assert ip.run_line_magic("config", "InferMagic.batch_size") == 1000

    seen = {}

    def fake_infer_frame(engine, model_id, df, **kwargs):
        seen.update(kwargs)
        return pd.DataFrame(index=df.index)

    monkeypatch.setattr(runner, "infer_frame", fake_infer_frame)
    pd.DataFrame({"x": [1.0]}).infer.run("m1")
    assert (seen["batch_size"], seen["progress"], seen["device"]) == (1000, False, "cpu")


def test_invalid_config_values_are_rejected(ip):
    magic = _magic(ip)
    with capture_output():
        ip.run_line_magic("config", "InferMagic.batch_size = -5")
        ip.run_line_magic("config", "InferMagic.device = 'not-a-device'")
    assert magic.batch_size is None and magic.device is None


def test_device_applies_to_the_magic_requests(ip):
    class RecordingEngine:
        device = None

        def __init__(self):
            self.devices = []

        def request(self, method, path, body=None, params=None, *, device=None):
            self.devices.append(device)
            return Response(200, {"acknowledged": True})

    rec = RecordingEngine()
    ip.user_ns["rec"] = rec
    ip.run_line_magic("config", "InferMagic.device = 'cpu'")
    ip.run_cell_magic("infer", "-q -e rec", "GET a\nGET b")
    assert rec.devices == ["cpu", "cpu"] and rec.device is None  # a parameter of each call; the engine's kept


def test_without_a_device_the_magic_requests_name_none(ip):
    class PlainEngine:  # an engine whose request takes no device: the magic passes none when it has none
        def __init__(self):
            self.calls = []

        def request(self, method, path, body=None, params=None):
            self.calls.append((method, path))
            return Response(200, {"acknowledged": True})

    plain = PlainEngine()
    ip.user_ns["plain"] = plain
    ip.run_line_magic("config", "InferMagic.device = None")
    ip.run_cell_magic("infer", "-q -e plain", "GET a")
    assert plain.calls == [("GET", "a")]


def test_the_magic_runs_a_model_on_its_device_without_changing_the_engines(ip, monkeypatch):
    from es_infer_nb.models import runner

    eng = Engine(device="cuda")
    assert eng.request("PUT", "_ml/trained_models/stump", stump_regression()).ok
    seen = []
    original = runner.load_model
    monkeypatch.setattr(runner, "load_model",
                        lambda e, m, device=None: seen.append((device, e.device)) or original(e, m, device))
    ip.user_ns["eng"] = eng
    ip.run_line_magic("config", "InferMagic.device = 'cpu'")
    ip.run_cell_magic("infer", "-q -e eng", 'POST _ml/trained_models/stump/_infer\n{"docs": [{"x": 0.9}]}')
    assert seen == [("cpu", "cuda")]
    assert eng.device == "cuda"


def test_home_makes_a_persistent_default_engine(ip, tmp_path):
    home = tmp_path / "home"
    ip.run_line_magic("config", f"InferMagic.home = {str(home)!r}")
    _put_stump(ip, "persisted")
    assert Engine(home).request("GET", "_ml/trained_models/persisted").ok
    # df.infer uses the same engine as the magic
    out = pd.DataFrame({"x": [0.0]}).infer.run("persisted")
    assert out["ml.inference.predicted_value"].tolist() == [1.0]
    ip.run_line_magic("config", "InferMagic.home = None")
    assert not default_engine().request("GET", "_ml/trained_models/persisted").ok


def test_config_lists_the_magic(ip):
    with capture_output() as captured:
        ip.run_line_magic("config", "InferMagic")
    for name in ("home", "device", "batch_size", "progress"):
        assert f"InferMagic.{name}" in captured.stdout


def test_reload_keeps_one_configurable(ip):
    ip.run_line_magic("reload_ext", "es_infer_nb")
    assert len([c for c in ip.configurables if isinstance(c, InferMagic)]) == 1
    assert "infer" in ip.magics_manager.magics["cell"]


def test_config_survives_reload_and_bad_values_are_skipped(ip):
    ip.run_line_magic("config", "InferMagic.batch_size = 7")
    ip.run_line_magic("reload_ext", "es_infer_nb")
    assert _magic(ip).batch_size == 7 and options.batch_size == 7
    ip.config.InferMagic.progress = "maybe"
    ip.config.InferMagic.bogus = 1
    with pytest.warns(UserWarning) as record:
        ip.run_line_magic("reload_ext", "es_infer_nb")
    messages = " ".join(str(w.message) for w in record)
    assert "InferMagic.progress" in messages and "'bogus'" in messages
    assert _magic(ip).batch_size == 7 and _magic(ip).progress is None


def test_unload_removes_the_magic(shell):
    shell.run_line_magic("unload_ext", "es_infer_nb")
    try:
        assert "infer" not in shell.magics_manager.magics["cell"]
        assert not [c for c in shell.configurables if isinstance(c, InferMagic)]
    finally:
        shell.run_line_magic("load_ext", "es_infer_nb")
    assert "infer" in shell.magics_manager.magics["line"]


# -- display objects ----------------------------------------------------------------------------

def test_console_result_mimebundle():
    req = ConsoleRequest("GET", "_ml/trained_models/m1", None, 1)
    ok = ConsoleResult(req, Response(200, {"count": 0, "trained_model_configs": []}))
    data, _ = DisplayFormatter().format(ok)
    assert set(data) == {"text/plain", "text/html"}  # JupyterLab would rank application/json above the HTML
    assert 'data-status="200"' in data["text/html"] and 'data-status-class="2xx"' in data["text/html"]
    assert data["text/plain"].startswith("# GET _ml/trained_models/m1  200 OK\n{")
    assert ok._repr_mimebundle_(include=["application/json"])["application/json"] == ok.body

    err_body = {"error": {"root_cause": [{"type": "t", "reason": "r"}], "type": "t", "reason": "r"}, "status": 404}
    bad = ConsoleResult(req, Response(404, err_body))
    assert bad.header == "GET _ml/trained_models/m1  404 t: r" and not bad.ok

    head = ConsoleResult(ConsoleRequest("HEAD", "x", None, 1), Response(200, None))
    data, _ = DisplayFormatter().format(head)
    assert "application/json" not in data and data["text/plain"] == "# HEAD x  200 OK"


def test_short_error_shapes():
    assert short_error(400, {"error": {"type": "a", "reason": "b"}, "status": 400}) == "400 a: b"
    assert short_error(400, {"error": "plain reason"}) == "400 plain reason"
    assert short_error(404, {}) == "404 Not Found"
