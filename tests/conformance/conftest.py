"""The conformance harness: every case of every ``*.json`` file in ``$ES_INFER_NB_CONFORMANCE``.

Default directory: ``../shared/conformance`` next to the repository. One pytest item
per case, id ``<file stem>::<case id>``. Cases are mapped to runners by their kind
and shape (never by id); a case the project cannot run yet is xfailed with the reason.
A summary per file is printed at the end of the run.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def conformance_dir() -> Path:
    raw = os.environ.get("ES_INFER_NB_CONFORMANCE")
    if raw:
        path = Path(raw)
        return path if path.is_absolute() else (REPO / path).resolve()
    return (REPO.parent / "shared" / "conformance").resolve()


def load_cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(test id, case, file-level document) for every case found."""
    found: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    directory = conformance_dir()
    if not directory.is_dir():
        return found
    for file in sorted(directory.glob("*.json")):
        with open(file, encoding="utf-8") as fh:
            doc = json.load(fh)
        if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
            continue
        meta = {k: v for k, v in doc.items() if k != "cases"}
        meta["_stem"] = file.stem
        for case in doc["cases"]:
            found.append((f"{file.stem}::{case.get('id')}", case, meta))
    return found


CASES = load_cases()
_outcomes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "conformance_case" in metafunc.fixturenames:
        metafunc.parametrize(
            "conformance_case",
            [(case, meta) for _, case, meta in CASES],
            ids=[tid for tid, _, _ in CASES],
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    if "conformance_case" not in getattr(item, "fixturenames", ()):
        return
    stem = item.callspec.id.split("::", 1)[0] if hasattr(item, "callspec") else "?"
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        key = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        report.user_properties.append(("conformance", (stem, key)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == "conformance":
                    stem, key = value
                    counts[stem][key] += 1
    if not counts:
        return
    totals = defaultdict(int)
    for _, case, meta in CASES:
        totals[meta["_stem"]] += 1
    terminalreporter.write_sep("-", f"conformance cases ({conformance_dir()})")
    for stem in sorted(totals):
        c = counts.get(stem, {})
        terminalreporter.write_line(
            f"{stem:16s} {c.get('passed', 0):4d} passed  {c.get('failed', 0):4d} failed  "
            f"{c.get('xfailed', 0):4d} xfailed  of {totals[stem]} cases"
        )
