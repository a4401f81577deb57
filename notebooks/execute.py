"""Execute the tutorials in fresh kernels and write them back with their outputs and widget state.

    python notebooks/execute.py                 # every notebooks/*.ipynb
    python notebooks/execute.py 02_tabular_models.ipynb --check   # run, write nothing; exit 1 when stale

Each notebook runs top to bottom in a new ``python3`` kernel of this interpreter (cwd: a temporary
folder, ``ES_INFER_NB_HOME`` unset, ``TQDM_DISABLE`` set) through nbclient with
``store_widget_state=True``, so ``jupyter nbconvert --to html`` and nbviewer show the widgets, not an
empty output. The written notebook is kept small and stable between runs:

* no execution timings in cell metadata, no kernel version in the notebook metadata;
* no progress bars (a tqdm widget, or tqdm text on stderr: its rate and times change every run);
* only the widget models a shown view needs (the views and what they reference), with ids
  numbered in order of appearance instead of random uuids, so a re-run changes no id;
* text outputs longer than :data:`MAX_TEXT_CHARS` are cut (with a note);
* a widget's static ``text/html`` copy (for pages without a widget manager) is dropped when it is
  longer than :data:`MAX_FALLBACK_CHARS` and the widget's state is saved: the view draws the same
  HTML from the state, and ``text/plain`` stays;
* volatile text (temporary folders, this checkout's and the Python environment's paths, the user's
  home, the free port of a loopback service) replaced by a placeholder.

A failing cell stops the run with the cell's error and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: per cell; the slowest tutorial cell (a model load) takes well under this
CELL_TIMEOUT_S = 600
#: a stream or text/plain output longer than this is cut
MAX_TEXT_CHARS = 6_000
#: a widget's text/html fallback longer than this is not kept twice (state + fallback)
MAX_FALLBACK_CHARS = 50_000
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_TQDM = re.compile(r"\d+%\|.*\| *[\d.]+[kMG]?/[\d.?]+[kMG]? \[")
_MODEL_REF = re.compile(r"IPY_MODEL_([0-9a-f]{32})")


def execute(path: Path, workdir: Path | None = None) -> nbformat.NotebookNode:
    """:func:`run`, then :func:`tidy`: the notebook as this script writes it."""
    return tidy(run(path, workdir))


def run(path: Path, workdir: Path | None = None) -> nbformat.NotebookNode:
    """Run ``path`` in a fresh kernel (cwd ``workdir`` or a temporary folder), the outputs as they came;
    raise nbclient's ``CellExecutionError`` on a failing cell."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    env = {key: value for key, value in os.environ.items() if key != "ES_INFER_NB_HOME"}  # own state
    env["TQDM_DISABLE"] = "1"  # tqdm.std bars off (tqdm.auto's widget bar ignores it: see tidy)
    # the kernel imports this checkout's es_infer_nb, whatever the environment has installed
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="es-infer-nb-tutorial-") as tmp:
        client = NotebookClient(
            nb,
            timeout=CELL_TIMEOUT_S,
            kernel_name="python3",
            store_widget_state=True,
            record_timing=False,
            resources={"metadata": {"path": str(workdir or tmp)}},
        )
        client.execute(env=env)  # passed to the kernel manager's start_kernel
    return nb


def tidy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The stable, small form of an executed notebook (see the module docstring)."""
    nb.metadata.pop("papermill", None)
    language = nb.metadata.get("language_info")
    if isinstance(language, dict):
        language.pop("version", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        cell.outputs = [output for output in cell.outputs if not _progress_bar(output)]
        for output in cell.outputs:
            _tidy_output(output)
    _prune_widget_state(nb)
    _drop_big_fallbacks(nb)
    return nb


def _progress_bar(output: dict[str, Any]) -> bool:
    """A tqdm bar: its widget (``text/plain`` ``desc: 100%|####| 40/40 [00:05<00:00, ...]``) or its text."""
    if output.get("output_type") == "stream":
        text = output.get("text", "")
        return output.get("name") == "stderr" and all(_TQDM.search(line) for line in re.split(r"[\r\n]+", text.strip()))
    data = output.get("data") or {}
    return WIDGET_VIEW in data and bool(_TQDM.search(str(data.get("text/plain", ""))))


def _tidy_output(output: dict[str, Any]) -> None:
    if output.get("output_type") == "stream":
        output["text"] = _cut(_scrub(output.get("text", "")))
    for key, value in list((output.get("data") or {}).items()):
        if isinstance(value, str) and key.startswith("text/"):
            output["data"][key] = _cut(_scrub(value)) if key == "text/plain" else _scrub(value)


def _scrub(text: str) -> str:
    """Paths that differ per machine or run: the Python environment, this checkout, temporary folders,
    the home folder."""
    for prefix, name in ((sys.prefix, "<python>"), (sys.base_prefix, "<python>"), (str(ROOT), "<repo>")):
        if len(prefix) > 1:
            text = text.replace(prefix, name)
    text = re.sub(r"(/tmp|/var/folders/[^/\s]+/[^/\s]+/T)/[\w.\-]+", "<tmp>", text)
    text = re.sub(r"\b(127\.0\.0\.1|localhost):\d{4,5}\b", r"\1:<port>", text)  # loopback services: a free port
    home = str(Path.home())
    if home not in ("/", ""):
        text = text.replace(home, "~")
    return text


def _cut(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return text[:MAX_TEXT_CHARS] + f"\n… ({len(text) - MAX_TEXT_CHARS:,} more characters cut by notebooks/execute.py)\n"


def shown_models(nb: nbformat.NotebookNode) -> list[str]:
    """The model ids of the widget views in the outputs, in order."""
    ids = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = (output.get("data") or {}).get(WIDGET_VIEW)
            if isinstance(view, dict) and view.get("model_id"):
                ids.append(str(view["model_id"]))
    return ids


def reachable(state: dict[str, Any], roots: Iterable[str]) -> Iterator[str]:
    seen: set[str] = set()
    stack = list(roots)[::-1]
    while stack:
        model_id = stack.pop()
        if model_id in seen or model_id not in state:
            continue
        seen.add(model_id)
        yield model_id
        refs = _MODEL_REF.findall(json.dumps(state[model_id].get("state", {}), sort_keys=True))
        stack.extend(reversed(refs))


def _prune_widget_state(nb: nbformat.NotebookNode) -> None:
    """Keep the models the shown views reach; number the ids in order of appearance."""
    widgets = nb.metadata.get("widgets", {}).get(WIDGET_STATE)
    if not widgets:
        nb.metadata.pop("widgets", None)
        return
    state = widgets.get("state", {})
    order = list(reachable(state, shown_models(nb)))
    if not order:
        nb.metadata.pop("widgets", None)
        return
    widgets["state"] = {model_id: state[model_id] for model_id in order}
    renames = {old: f"{i + 1:032x}" for i, old in enumerate(order)}
    text = json.dumps(nb)
    text = re.sub(r"[0-9a-f]{32}", lambda m: renames.get(m.group(0), m.group(0)), text)
    fresh = nbformat.from_dict(json.loads(text))
    nb.clear()
    nb.update(fresh)


def _drop_big_fallbacks(nb: nbformat.NotebookNode) -> None:
    saved = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data") or {}
            view = data.get(WIDGET_VIEW)
            if isinstance(view, dict) and view.get("model_id") in saved \
                    and len(data.get("text/html", "")) > MAX_FALLBACK_CHARS:
                del data["text/html"]


def shapes(nb: nbformat.NotebookNode) -> list[list[str]]:
    """Per code cell, the kinds of its outputs (stdout text, a result's MIME types): what a change to
    the cells changes and a re-run does not (stderr warnings are left out: they vary by environment)."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kinds: list[str] = []
        for out in cell.outputs:
            if out["output_type"] == "stream":
                if out["name"] == "stdout" and "stdout" not in kinds:
                    kinds.append("stdout")
            else:
                kinds.append(out["output_type"] + ":" + ",".join(sorted(out.get("data", {}))))
        cells.append(kinds)
    return cells


def _changed(path: Path, nb: nbformat.NotebookNode) -> bool:
    return path.read_text(encoding="utf-8") != nbformat.writes(nb) + "\n"


def _stale(path: Path, nb: nbformat.NotebookNode) -> bool:
    """The committed notebook's outputs differ in kind from a fresh run's (values are not compared)."""
    return shapes(nbformat.read(path, as_version=4)) != shapes(nb)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebook files or names in notebooks/ (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="run, write nothing; report (exit 1) notebooks whose committed outputs differ in kind "
                             "from the run's (new or removed outputs; values such as timings are not compared)")
    args = parser.parse_args(argv)
    paths = [Path(n) if Path(n).exists() else HERE / n for n in args.notebooks] or sorted(HERE.glob("*.ipynb"))
    changed = []
    for path in paths:
        print(f"executing {path.name} ...", file=sys.stderr, flush=True)
        nb = execute(path)
        if args.check:
            if _stale(path, nb):
                changed.append(path.name)
        elif _changed(path, nb):
            changed.append(path.name)
            nbformat.write(nb, path)
    print(("stale: " if args.check else "written: ") + (", ".join(changed) or "nothing"), file=sys.stderr)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
