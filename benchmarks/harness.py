"""The one harness of the benchmarks: clean environment, interleaved rounds, fatal checks, one JSON line.

Every script in ``benchmarks/`` uses it the same way::

    import harness
    harness.clean_environment()          # before numpy loads: re-executes without OPENBLAS_* overrides
    ...
    bench = harness.Bench("trees", args)  # notes the machine and its load average
    timings = bench.rounds({"ours": Contender(run_ours, units=rows), "xgboost": Contender(...)})
    bench.check("max_abs_diff ours vs xgboost", value, bound=1e-4)            # fatal past the bound
    bench.compare("ours", "xgboost")                                           # ratio of medians
    bench.report(extra_fields)           # one JSON line on stdout; exit 1 if a check failed

* Rounds are interleaved: each round runs every contender once, in the same order, so a slow spell of
  a shared machine costs all of them alike. Every round's time is kept; each contender gets its
  median and its best, and a comparison's headline is the ratio of the MEDIAN rates (best-of ratios
  are printed beside it, never as the headline).
* ``--rounds`` sets the count; by default it is chosen after the first round: 5 when every
  contender's first round took under a second, 3 otherwise (at least those counts either way).
* A contender may time itself (a child process, a remote run): return :class:`Timed` from its call.
* A check compares ours with the anchor (max abs diff, min cosine, equality); its bound is printed,
  and a check past its bound makes the script exit 1 after printing its JSON line.
* Peers that are not installed are skipped with a printed note (:meth:`Bench.peer`), never fatal.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_UNSET_MARK = "ES_INFER_NB_BENCH_UNSET"
_KEEP_ENV = "ES_INFER_NB_BENCH_KEEP_ENV"
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
SUB_SECOND_ROUNDS = 5
LONG_ROUNDS = 3


def clean_environment() -> None:
    """Re-execute this script without ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` (they slow a current
    numpy/OpenBLAS), for this process and its children only. Call it before numpy is imported. Set
    ``ES_INFER_NB_BENCH_KEEP_ENV=1`` to keep them."""
    if os.environ.get(_KEEP_ENV) or _UNSET_MARK in os.environ:
        return
    present = [name for name in OPENBLAS_OVERRIDES if name in os.environ]
    if not present:
        return
    if "numpy" in sys.modules:
        raise RuntimeError("harness.clean_environment() must run before numpy is imported")
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_OVERRIDES}
    env[_UNSET_MARK] = ",".join(present)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(sys.orig_argv), env)


def environment_note() -> dict[str, Any]:
    """What :func:`clean_environment` did, for the JSON line."""
    unset = [n for n in os.environ.get(_UNSET_MARK, "").split(",") if n]
    if unset:
        note = f"re-executed with {', '.join(unset)} unset (this process and its children only)"
    elif os.environ.get(_KEEP_ENV):
        note = f"{_KEEP_ENV} set: OPENBLAS overrides kept as found"
    else:
        note = "no OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the environment"
    return {"openblas_vars_unset": unset, "note": note}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--rounds`` and ``--quick``, shared by every script."""
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"interleaved rounds (default: {SUB_SECOND_ROUNDS} when every contender's first "
                             f"round is under 1 s, else {LONG_ROUNDS})")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not figures to quote")


#: environment variables that cap the instruction set a run uses (oneDNN, ATen, FBGEMM, our native kernels)
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "FBGEMM_ENABLE_INSTRUCTIONS",
            "ES_INFER_NB_NATIVE_ISA")


def machine() -> dict[str, Any]:
    """CPU model, the vector / matrix flags it has, thread counts, load average now."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    info: dict[str, Any] = {"cpu": model, "cpu_flags": [f for f in CPU_FLAGS if f in flags],
                            "cpu_count": os.cpu_count(), "python": platform.python_version()}
    caps = {k: os.environ[k] for k in ISA_CAPS if os.environ.get(k)}
    if caps:  # a simulated smaller CPU: say so beside the flags the CPU really has
        info["isa_caps"] = caps
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["torch"] = torch.__version__
    except ImportError:
        info["torch_threads"] = None
    return info


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class Timed:
    """What a contender returns when it measures itself: its own seconds, and its output."""

    seconds: float
    value: Any = None


@dataclass
class Contender:
    """One timed call; ``units`` is what one call processes (rows, documents), for the rates."""

    run: Callable[[], Any]
    units: float
    unit: str = "rows"


@dataclass
class Timings:
    seconds: dict[str, list[float]] = field(default_factory=dict)
    units: dict[str, float] = field(default_factory=dict)
    unit: dict[str, str] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def best(self, name: str) -> float:
        return min(self.seconds[name])

    def summary(self, name: str) -> dict[str, Any]:
        units, unit = self.units[name], self.unit[name]
        return {"units_per_call": units, "unit": unit,
                f"median_{unit}_per_s": _round(units / self.median(name)),
                f"best_{unit}_per_s": _round(units / self.best(name)),
                "median_s": _round(self.median(name)), "best_s": _round(self.best(name)),
                "rounds_s": [_round(s) for s in self.seconds[name]]}


def _round(x: float) -> float:
    return float(f"{x:.4g}") if abs(x) < 1000 else round(x)


class Bench:
    """One benchmark run: its rounds, checks, comparisons, peers and the JSON line at the end."""

    def __init__(self, name: str, args: argparse.Namespace, params: dict[str, Any] | None = None) -> None:
        self.name = name
        self.args = args
        self.params = params or {}
        self.load_before = load_average()
        self.timings = Timings()
        self.checks: list[dict[str, Any]] = []
        self.comparisons: list[dict[str, Any]] = []
        self.peers_skipped: dict[str, str] = {}
        self.peers_ran: list[str] = []
        self.notes: dict[str, str] = {}
        print(f"# {name}: load average before {self.load_before}", file=sys.stderr)

    # -- peers ------------------------------------------------------------------------------------
    def peer(self, name: str, module: str) -> Any | None:
        """The peer's module, or None (with a printed note) when it is not installed or fails to import."""
        try:
            return importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any failure to import a peer only skips it
            self.skip(name, f"not available ({type(exc).__name__}: {exc}); pip install -e '.[bench]'")
            return None

    def skip(self, name: str, why: str) -> None:
        self.peers_skipped[name] = why
        print(f"# peer {name} skipped: {why}", file=sys.stderr)

    # -- timing -----------------------------------------------------------------------------------
    def rounds(self, contenders: dict[str, Contender]) -> Timings:
        """Run the contenders in interleaved rounds; every round's seconds kept, last outputs kept."""
        t = self.timings
        for name, c in contenders.items():
            t.seconds[name], t.units[name], t.unit[name] = [], c.units, c.unit
        wanted = self.args.rounds
        done = 0
        while wanted is None or done < wanted:
            for name, c in contenders.items():
                start = time.perf_counter()
                out = c.run()
                elapsed = time.perf_counter() - start
                if isinstance(out, Timed):
                    elapsed, out = out.seconds, out.value
                t.seconds[name].append(elapsed)
                t.last[name] = out
            done += 1
            print("# round " + str(done) + ": " + ", ".join(
                f"{n} {t.seconds[n][-1]:.3f} s" for n in contenders), file=sys.stderr)
            if wanted is None:
                slowest = max(t.seconds[n][0] for n in contenders)
                wanted = SUB_SECOND_ROUNDS if slowest < 1.0 else LONG_ROUNDS
        return t

    def compare(self, ours: str, peer: str, note: str | None = None) -> dict[str, Any]:
        """Ours' rate over the peer's: the ratio of the median rates (headline) and of the best."""
        t = self.timings
        rate = {n: (t.units[n] / t.median(n), t.units[n] / t.best(n)) for n in (ours, peer)}
        entry = {"ours": ours, "peer": peer, "ratio_of_medians": _round(rate[ours][0] / rate[peer][0]),
                 "ratio_of_best": _round(rate[ours][1] / rate[peer][1])}
        if note:
            entry["note"] = note
        self.comparisons.append(entry)
        if peer not in self.peers_ran and not peer.startswith("ours"):
            self.peers_ran.append(peer)
        return entry

    # -- correctness ------------------------------------------------------------------------------
    def check(self, what: str, value: float | bool, bound: float | None = None, *, at_least: bool = False) -> bool:
        """Record a correctness check: ``value <= bound`` (``>=`` with ``at_least``; truthy when no bound).
        Printed with its bound; any failed check makes :meth:`report` exit 1."""
        if bound is None:
            ok = bool(value)
            shown: Any = bool(value)
        else:
            ok = bool(value >= bound) if at_least else bool(value <= bound)
            shown = float(value)
        entry = {"check": what, "value": shown, "bound": None if bound is None else (">= " if at_least else "<= ")
                 + repr(bound), "ok": ok}
        self.checks.append(entry)
        print(f"# check {what}: {shown} (bound {entry['bound'] or 'true'}): {'ok' if ok else 'FAILED'}",
              file=sys.stderr)
        return ok

    def drift(self, name: str) -> float:
        """Median seconds of the last half of ``name``'s rounds over the first half's (1.0: steady)."""
        seconds = self.timings.seconds[name]
        half = len(seconds) // 2
        if half == 0:
            return 1.0
        return statistics.median(seconds[-half:]) / statistics.median(seconds[:half])

    def check_steady(self, ours: str, peers: list[str], tolerance: float) -> bool:
        """Fatal check that ``ours``' later rounds are not slower than its first ones beyond the noise:
        its drift (:meth:`drift`) at most ``tolerance`` times the larger of 1 and the peers' median
        drift (a machine that slows down slows every contender). Every drift is printed."""
        drifts = {n: self.drift(n) for n in [ours, *peers] if n in self.timings.seconds}
        for n, d in drifts.items():
            print(f"# drift {n}: last-half median / first-half median = {d:.3f}", file=sys.stderr)
        peer_drift = statistics.median([drifts[n] for n in peers if n in drifts] or [1.0])
        bound = round(tolerance * max(1.0, peer_drift), 3)
        return self.check(f"{ours} later rounds / first rounds (median seconds)", drifts[ours], bound)

    # -- the JSON line ----------------------------------------------------------------------------
    def report(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Print the one JSON line; exit 1 when a check failed (after printing it)."""
        contenders = {n: self.timings.summary(n) for n in self.timings.seconds}
        rounds = {len(v) for v in self.timings.seconds.values()}
        figures = {
            "benchmark": self.name,
            "quick": bool(getattr(self.args, "quick", False)),
            **self.params,
            "headline": self.comparisons[0] if self.comparisons else None,
            "comparisons": self.comparisons,
            "contenders": contenders,
            "rounds": max(rounds) if rounds else 0,
            "checks": self.checks,
            "ok": all(c["ok"] for c in self.checks),
            "peers_ran": self.peers_ran,
            "peers_skipped": self.peers_skipped,
            "notes": self.notes,
            **(extra or {}),
            "machine": {**machine(), "load_average_before": self.load_before, "load_average_after": load_average()},
            "environment": environment_note(),
        }
        sys.stderr.flush()
        print(json.dumps(figures), flush=True)
        if not figures["ok"]:
            failed = [c["check"] for c in self.checks if not c["ok"]]
            print(f"# FAILED correctness: {failed}", file=sys.stderr)
            raise SystemExit(1)
        return figures
