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


def quick_run(script: str, *args: str, timeout: int = 300, **env: str) -> dict:
    """``benchmarks/<script> --quick *args`` (tqdm off, ``env`` added): it exits 0; its JSON line."""
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick", *args], capture_output=True,
                          text=True, cwd=BENCHMARKS, env={**os.environ, "TQDM_DISABLE": "1", **env},
                          timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("script, anchor", [
    ("trees.py", "xgboost"),
    ("feature_importance.py", "shap"),
    ("pipeline.py", "doc_at_a_time"),
])
def test_quick_run_prints_medians_and_ratio(script: str, anchor: str) -> None:
    pytest.importorskip("xgboost")
    if script == "feature_importance.py":
        pytest.importorskip("shap")
    line = quick_run(script, OPENBLAS_CORETYPE="Haswell")

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

    if script == "trees.py":  # later rounds checked against the first ones, for each of our models
        steady = [c for c in line["checks"] if "later rounds / first rounds" in c["check"]]
        assert steady and steady[0]["check"].startswith("ours ") and steady[0]["bound"].startswith("<= ")
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


def test_nlp_tasks_quick_run_checks_answers_against_the_pipeline() -> None:
    """text_classification and ner through Series.infer.run vs transformers' pipeline: the answers are
    compared (labels / entity spans equal, probabilities within 1e-4) and a mismatch is fatal."""
    pytest.importorskip("transformers")
    line = quick_run("nlp_tasks.py", "--rounds", "3")

    assert line["ok"] is True and line["docs"] == 32 and line["rounds"] == 3
    checks = {c["check"]: c for c in line["checks"]}
    for task in ("text_classification", "ner"):
        differ = next(c for name, c in checks.items() if name.startswith(f"{task}: texts whose"))
        assert differ["value"] == 0 and differ["bound"] == "<= 0" and differ["ok"]
        diff = checks[f"{task}: max abs probability diff vs the pipeline"]
        assert diff["bound"] == "<= 0.0001" and 0 <= diff["value"] <= 1e-4
        ratio = next(c for c in line["comparisons"] if c["ours"] == f"ours_{task}")
        assert ratio["peer"] == f"pipeline_{task}" and ratio["ratio_of_medians"] > 0
        for name in (f"ours_{task}", f"pipeline_{task}"):
            assert len(line["contenders"][name]["rounds_s"]) == 3
    assert line["entities_found"] > 0  # the ner comparison compared entities, not empty lists


def test_latency_quick_run_times_one_text_per_call_and_checks_the_vectors() -> None:
    """Single-text _infer calls (ours, per precision) against sentence-transformers' encode([text])
    (and the ONNX peers where installed): every contender's ms per call, cosines fatal."""
    pytest.importorskip("sentence_transformers")
    line = quick_run("latency.py", "--rounds", "3", timeout=600)

    assert line["ok"] is True and line["texts"] == 20 and line["rounds"] == 3
    assert (line["headline"]["ours"], line["headline"]["peer"]) == ("ours_fp32", "sentence_transformers")
    ms = line["median_ms_per_call"]
    assert set(ms) == set(line["contenders"]) and all(v > 0 for v in ms.values())
    for name, figures in line["contenders"].items():
        assert figures["unit"] == "calls" and figures["units_per_call"] == 20
        assert ms[name] == pytest.approx(1000 * figures["median_s"] / 20, rel=2e-3)
    cosines = [c for c in line["checks"] if c["check"].startswith("min cosine ")]
    assert len(cosines) == len(line["contenders"]) - 1 and all(c["bound"] == ">= 0.9999" for c in cosines)


def load_harness(monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location("benchmarks_harness", BENCHMARKS / "harness.py")
    assert spec is not None and spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "benchmarks_harness", harness)  # dataclasses look their module up
    spec.loader.exec_module(harness)
    return harness


def test_later_rounds_slower_than_the_peers_drift_fail_the_steady_check(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = load_harness(monkeypatch)
    args = type("Args", (), {"rounds": 6, "quick": False})()
    bench = harness.Bench("steady", args)  # type: ignore[arg-type]
    ours = iter([0.4, 0.4, 0.4, 0.8, 0.8, 0.8])  # twice as slow after three rounds
    steady = iter([0.4, 0.45, 0.4, 0.45, 0.4, 0.45])
    slowing = iter([0.5, 0.5, 0.5, 0.9, 0.9, 0.9])  # a machine that slows down: the peer slows as much
    bench.rounds({"ours": harness.Contender(lambda: harness.Timed(next(ours)), 1),
                  "ours_steady": harness.Contender(lambda: harness.Timed(next(steady)), 1),
                  "peer": harness.Contender(lambda: harness.Timed(next(slowing)), 1)})
    assert bench.drift("ours") == pytest.approx(2.0) and bench.drift("peer") == pytest.approx(1.8)
    assert bench.check_steady("ours_steady", [], 1.25)
    assert not bench.check_steady("ours", [], 1.25)
    assert bench.check_steady("ours", ["peer"], 1.25)  # 2.0 <= 1.25 * 1.8: the machine, not ours
    assert [c["ok"] for c in bench.checks] == [True, False, True]
    assert bench.checks[1]["bound"] == "<= 1.25"
