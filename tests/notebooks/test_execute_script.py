"""notebooks/execute.py's ``tidy``: what it keeps of an executed notebook (no kernel needed here)."""

from __future__ import annotations

import json
import sys

import nbformat

from nb_runner import ROOT, tutorial_script

script = tutorial_script()
VIEW, STATE = script.WIDGET_VIEW, script.WIDGET_STATE
A, B, C, BAR, BAR_CHILD = ("a" * 32, "b" * 32, "c" * 32, "d" * 32, "e" * 32)


def model(name: str, **state) -> dict:
    return {"model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0", "model_name": name,
            "state": state}


def executed() -> nbformat.NotebookNode:
    """A notebook as nbclient leaves it: a widget (A -> B), a tqdm bar widget, an unshown model, volatile text."""
    view = {"output_type": "execute_result", "execution_count": 2, "metadata": {},
            "data": {VIEW: {"model_id": A, "version_major": 2, "version_minor": 0},
                     "text/plain": "widget", "text/html": "<div>static</div>"}}
    bar = {"output_type": "display_data", "metadata": {},
           "data": {VIEW: {"model_id": BAR, "version_major": 2, "version_minor": 0},
                    "text/plain": "infer m: 100%|##########| 40/40 [00:05<00:00,  6.67rows/s]"}}
    cells = [
        nbformat.v4.new_code_cell("x = 1", execution_count=1, outputs=[
            {"output_type": "stream", "name": "stdout",
             "text": f"saved to /tmp/tmpab12_x/out.parquet from {ROOT}/data on http://127.0.0.1:41651/v1 in "
                     f"{sys.prefix}/lib\n"},
            {"output_type": "stream", "name": "stderr", "text": "\rembedding:  50%|#####     | 1/2 [00:01<00:01]"},
            {"output_type": "stream", "name": "stderr", "text": "UserWarning: a real warning\n"},
        ]),
        nbformat.v4.new_code_cell("w", execution_count=2, outputs=[view, bar]),
        nbformat.v4.new_code_cell("print('x' * 10_000)", execution_count=3, outputs=[
            {"output_type": "stream", "name": "stdout", "text": "x" * 10_000}]),
    ]
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i}"  # as in a saved notebook (new_code_cell makes random ones)
    cells[0].metadata["execution"] = {"iopub.execute_input": "2026-12-05T19:00:00Z"}
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    nb.metadata["widgets"] = {STATE: {"version_major": 2, "version_minor": 0, "state": {
        A: model("VBoxModel", children=[f"IPY_MODEL_{B}"]),
        B: model("HTMLModel", value="<b>hi</b>"),
        C: model("LabelModel", value="never shown"),
        BAR: model("HBoxModel", children=[f"IPY_MODEL_{BAR_CHILD}"]),
        BAR_CHILD: model("FloatProgressModel", value=40),
    }}}
    return nbformat.from_dict(json.loads(json.dumps(nb)))


def test_progress_bars_go_real_warnings_stay():
    nb = script.tidy(executed())
    first = nb.cells[0].outputs
    assert [o["name"] for o in first] == ["stdout", "stderr"]
    assert first[1]["text"] == "UserWarning: a real warning\n"
    assert len(nb.cells[1].outputs) == 1  # the tqdm widget is gone, our widget stays


def test_widget_state_keeps_what_a_view_shows_with_numbered_ids():
    nb = script.tidy(executed())
    state = nb.metadata["widgets"][STATE]["state"]
    one, two = f"{1:032x}", f"{2:032x}"
    assert list(state) == [one, two]  # A and its child B; not C (unshown), not the bar
    assert state[one]["model_name"] == "VBoxModel" and state[one]["state"]["children"] == [f"IPY_MODEL_{two}"]
    assert state[two]["state"]["value"] == "<b>hi</b>"
    assert nb.cells[1].outputs[0]["data"][VIEW]["model_id"] == one
    assert nb.cells[1].outputs[0]["data"]["text/html"] == "<div>static</div>"  # the static fallback rides along
    nbformat.validate(nb)


def test_same_notebook_same_text():
    """Ids numbered in order of appearance: two runs (different uuids) write the same file."""
    first = nbformat.writes(script.tidy(executed()))
    other = executed()
    text = nbformat.writes(other).replace(A, "f" * 32).replace(B, "9" * 32)
    assert nbformat.writes(script.tidy(nbformat.reads(text, as_version=4))) == first


def test_volatile_text_is_replaced_and_long_text_cut():
    nb = script.tidy(executed())
    text = nb.cells[0].outputs[0]["text"]
    assert "/tmp/" not in text and str(ROOT) not in text and sys.prefix not in text and "41651" not in text
    assert "<tmp>/out.parquet" in text and "<repo>/data" in text and "127.0.0.1:<port>/v1" in text
    assert "<python>/lib" in text
    long = nb.cells[2].outputs[0]["text"]
    assert len(long) < 10_000 and long.startswith("x" * script.MAX_TEXT_CHARS) and "cut by notebooks/execute.py" in long


def test_big_static_copy_of_a_saved_widget_goes():
    nb = executed()
    data = nb.cells[1].outputs[0]["data"]
    data["text/html"] = "<svg>" + "<circle/>" * script.MAX_FALLBACK_CHARS + "</svg>"
    tidy = script.tidy(nb)
    assert set(tidy.cells[1].outputs[0]["data"]) == {VIEW, "text/plain"}  # the view draws it from the state
    small = script.tidy(executed())
    assert small.cells[1].outputs[0]["data"]["text/html"] == "<div>static</div>"


def test_no_timings_no_kernel_version():
    nb = script.tidy(executed())
    assert "execution" not in nb.cells[0].metadata
    assert "version" not in nb.metadata["language_info"]


def test_no_widget_shown_no_widget_state():
    nb = executed()
    nb.cells[1].outputs = []
    assert "widgets" not in script.tidy(nb).metadata

