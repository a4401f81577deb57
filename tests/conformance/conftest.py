"""The conformance harness: every case of every ``*.json`` file in one directory.

The directory is ``$ES_INFER_NB_CONFORMANCE`` (relative paths are taken from the repository root),
``tests/conformance/cases`` (kept in the repository) otherwise. Each case is one pytest item with
the id ``<file stem>::<case id>``; the runners (``runners/``) map file schemas and case kinds to the
project's code, never case ids to answers. Outcomes are strict: a mismatch, an exception, a missing
route or module fails. The only cases expected not to pass are listed in ``known_failures.json``
(id, reason, what would make it pass); they run as strict xfails, so a listed case that passes
fails the run. At the end of the session a summary per file prints passed / failed / xfailed out
of the cases found.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(HERE) not in sys.path:  # ``runners`` is imported by name, whatever pytest's import mode
    sys.path.insert(0, str(HERE))

from runners import detect_schema  # noqa: E402

TEST_NAME = "test_case"


def conformance_dir() -> Path:
    raw = os.environ.get("ES_INFER_NB_CONFORMANCE")
    if raw:
        path = Path(raw).expanduser()
        return path if path.is_absolute() else (REPO / path).resolve()
    return HERE / "cases"


def load_cases(directory: Path) -> list[tuple[str, Any, dict[str, Any]]]:
    """(test id, case, file-level metadata) for every case of every ``*.json`` file, in file order.

    A file that cannot be read or has no ``cases`` list still yields one item, which fails with
    the reason, so nothing in the directory is dropped silently.
    """
    found: list[tuple[str, Any, dict[str, Any]]] = []
    if not directory.is_dir():
        return found
    for file in sorted(directory.glob("*.json")):
        meta: dict[str, Any] = {"_stem": file.stem, "_file": str(file)}
        try:
            with open(file, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError) as exc:
            found.append((f"{file.stem}::<unreadable>", None, {**meta, "_load_error": f"{type(exc).__name__}: {exc}"}))
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
            found.append((f"{file.stem}::<no cases>", None, {**meta, "_load_error": "no top-level 'cases' list"}))
            continue
        meta.update({k: v for k, v in doc.items() if k != "cases"})
        meta["_schema"] = detect_schema(meta, doc["cases"])
        meta["_count"] = len(doc["cases"])
        for i, case in enumerate(doc["cases"]):
            case_id = case.get("id") if isinstance(case, dict) else None
            found.append((f"{file.stem}::{case_id if case_id is not None else f'<case {i}>'}", case, meta))
    return found


CONFORMANCE_DIR = conformance_dir()
CASES = load_cases(CONFORMANCE_DIR)
KNOWN_FAILURES_FILE = HERE / "known_failures.json"


def load_known_failures(path: Path = KNOWN_FAILURES_FILE) -> dict[str, dict[str, str]]:
    """``<file stem>::<case id>`` -> {"reason", "to_pass"} for every case listed as not passing."""
    with open(path, encoding="utf-8") as fh:
        listed = json.load(fh)["cases"]
    for key, entry in listed.items():
        if not (isinstance(entry, dict) and entry.get("reason") and entry.get("to_pass")):
            raise ValueError(f"{path.name}: {key} needs a 'reason' and a 'to_pass'")
    return listed


KNOWN_FAILURES = load_known_failures()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "conformance_case" in metafunc.fixturenames:
        if not CASES:  # an empty parameter set would collapse into one skip: say why, loudly
            raise pytest.UsageError(f"no conformance case files (*.json with cases) in {CONFORMANCE_DIR}")
        params = []
        for test_id, case, meta in CASES:
            known = KNOWN_FAILURES.get(test_id)
            marks = [pytest.mark.xfail(reason=f"{known['reason']} (to pass: {known['to_pass']})", strict=True,
                                       raises=pytest.fail.Exception)] if known else []
            params.append(pytest.param((case, meta), id=test_id, marks=marks))
        metafunc.parametrize("conformance_case", params)


# -- summary per file ---------------------------------------------------------------------------

_ID = re.compile(r"::" + TEST_NAME + r"\[(?P<id>.*)\]$")
_RANK = {"failed": 5, "error": 5, "xpassed": 4, "passed": 3, "xfailed": 2, "skipped": 1}


def _case_outcomes(terminalreporter: Any) -> dict[str, str]:
    """nodeid-param -> outcome (the worst seen across setup/call/teardown)."""
    outcomes: dict[str, str] = {}
    for category, reports in terminalreporter.stats.items():
        if category not in _RANK:
            continue
        for report in reports:
            nodeid = getattr(report, "nodeid", "")
            if "tests/conformance/" not in nodeid.replace("\\", "/") and "test_conformance.py" not in nodeid:
                continue
            m = _ID.search(nodeid)
            if not m:
                continue
            key = m.group("id")
            if _RANK[category] > _RANK.get(outcomes.get(key, ""), 0):
                outcomes[key] = category
    return outcomes


def pytest_terminal_summary(terminalreporter: Any) -> None:
    outcomes = _case_outcomes(terminalreporter)
    if not outcomes:
        return
    per_file: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, int] = defaultdict(int)
    counts_declared: dict[str, Any] = {}
    for _, _, meta in CASES:
        stem = meta["_stem"]
        totals[stem] += 1
        counts_declared[stem] = meta.get("count")
    for key, outcome in outcomes.items():
        stem = key.split("::", 1)[0]
        if stem not in totals:  # an id pytest rewrote (duplicates get a numeric suffix)
            stem = next((s for s in totals if key.startswith(s + "::")), stem)
        per_file[stem][outcome] += 1
    terminalreporter.write_sep("-", f"conformance cases per file ({CONFORMANCE_DIR})")
    grand: dict[str, int] = defaultdict(int)
    for stem in sorted(totals):
        c = per_file.get(stem, {})
        ran = sum(c.values())
        extra = ""
        for name in ("error", "xpassed", "skipped"):
            if c.get(name):
                extra += f"  {c[name]} {name}"
        if ran < totals[stem]:
            extra += f"  {totals[stem] - ran} not run"
        declared = counts_declared.get(stem)
        if isinstance(declared, int) and declared != totals[stem]:
            extra += f"  (file says count={declared})"
        terminalreporter.write_line(
            f"{stem:16s} {c.get('passed', 0):4d} passed {c.get('failed', 0):4d} failed "
            f"{c.get('xfailed', 0):4d} xfailed  of {totals[stem]:4d} cases{extra}"
        )
        for name, n in c.items():
            grand[name] += n
        grand["total"] += totals[stem]
    terminalreporter.write_line(
        f"{'all files':16s} {grand.get('passed', 0):4d} passed {grand.get('failed', 0):4d} failed "
        f"{grand.get('xfailed', 0):4d} xfailed  of {grand.get('total', 0):4d} cases"
    )
