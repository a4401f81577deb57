"""The one conformance test: each case goes to the runner for its file schema and kind."""

from __future__ import annotations

from runners import run_case


def test_case(conformance_case):
    case, meta = conformance_case
    run_case(case, meta)
