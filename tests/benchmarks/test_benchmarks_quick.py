"""Smoke run of the README's benchmarks: each script with ``--quick`` exits 0 and prints its JSON line
(every contender's median and best, the ratio of medians as headline, the checks, the CPU line)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.parametrize("script, anchor", [
    ("trees.py", "xgboost"),
    ("feature_importance.py", "shap"),
    ("pipeline.py", "doc_at_a_time"),
])
def test_quick_run_prints_medians_and_ratio(script: str, anchor: str) -> None:
    pytest.importorskip("xgboost")
    if script == "feature_importance.py":
        pytest.importorskip("shap")
    env = {**os.environ, "TQDM_DISABLE": "1", "OPENBLAS_CORETYPE": "Haswell"}
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick"], capture_output=True, text=True,
                          cwd=BENCHMARKS, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = json.loads(proc.stdout.strip().splitlines()[-1])

    assert line["ok"] is True and line["checks"] and all(c["ok"] for c in line["checks"])
    assert all(c["bound"] is None or c["bound"].startswith(("<=", ">=")) for c in line["checks"])
    # the harness's rule: five interleaved rounds when the slowest first round is sub-second, else three
    first = max(c["rounds_s"][0] for c in line["contenders"].values())
    assert line["rounds"] >= (5 if first < 1.0 else 3), (line["rounds"], first)
    for name in ("ours", anchor):
        figures = line["contenders"][name]
        assert len(figures["rounds_s"]) == line["rounds"]
        assert figures["median_s"] >= figures["best_s"] > 0
        assert figures[f"median_{figures['unit']}_per_s"] > 0
    headline = line["headline"]
    assert (headline["ours"], headline["peer"]) == ("ours", anchor)
    assert headline["ratio_of_medians"] > 0 and headline["ratio_of_best"] > 0
    rate = {n: line["contenders"][n]["units_per_call"] / line["contenders"][n]["median_s"] for n in ("ours", anchor)}
    assert headline["ratio_of_medians"] == pytest.approx(rate["ours"] / rate[anchor], rel=2e-3)

    machine = line["machine"]
    assert machine["cpu"] and isinstance(machine["cpu_flags"], list)
    assert machine["cpu_count"] == os.cpu_count() and machine["torch_threads"] >= 1
    assert len(machine["load_average_before"]) == 3 and len(machine["load_average_after"]) == 3
    # the script re-executed itself without the OpenBLAS override it was started with
    assert line["environment"]["openblas_vars_unset"] == ["OPENBLAS_CORETYPE"]


def test_a_check_past_its_bound_is_fatal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("benchmarks_harness", BENCHMARKS / "harness.py")
    assert spec is not None and spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "benchmarks_harness", harness)  # dataclasses look their module up
    spec.loader.exec_module(harness)

    args = type("Args", (), {"rounds": None, "quick": True})()
    bench = harness.Bench("fatal", args)  # type: ignore[arg-type]
    t = bench.rounds({"ours": harness.Contender(lambda: harness.Timed(0.25, [1.0]), 10),
                      "anchor": harness.Contender(lambda: harness.Timed(0.5, [1.5]), 10)})
    assert t.seconds == {"ours": [0.25] * 5, "anchor": [0.5] * 5}  # sub-second: five rounds
    bench.compare("ours", "anchor")
    bench.check("max_abs_diff ours vs anchor", abs(t.last["ours"][0] - t.last["anchor"][0]), 1e-6)
    with pytest.raises(SystemExit) as exited:
        bench.report()
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    line = json.loads(out.strip().splitlines()[-1])
    assert line["ok"] is False and line["checks"][0]["bound"] == "<= 1e-06"
    assert line["headline"]["ratio_of_medians"] == 2.0
    assert "bound <= 1e-06): FAILED" in err
