"""Counters moved on workers, gathered back into the engine that started the job.

Each partition takes a snapshot of its worker engine's counters before and after running and
sends the difference (inference counts, failures, cache misses, ingest counts per pipeline and
processor, deployment counters). On a ``distributed`` cluster the difference travels as a
worker event (``Worker.log_event`` on :data:`TOPIC`); the client that was current when the job
was built subscribes to the topic and merges each difference into the job's engine as the
partition finishes, so the engine's ``_stats`` is complete when ``compute()`` returns. On the
local threaded / synchronous schedulers the partition merges straight into the engine.
A partition killed before it finished sends nothing. Each difference is sent with its partition
(the partition number and, on a ``distributed`` worker, the id of the compute's span), and the
client keeps what it merged per job, run and partition (for the :data:`MAX_TRACKED_RUNS` most
recent job runs, as a retry comes while its compute runs): a partition Dask runs again within one compute
(its worker died after it finished, its result was lost) replaces its earlier counts instead of
adding to them, counter by counter (the engine gets the larger of the two, counters never go back),
so every partition counts once per compute. Computing the same lazy frame again is a new span and
counts again, as the models really ran again. On the local schedulers, which never re-run a
partition (and on a worker whose tasks carry no span id), every difference adds.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..frames.counters import merge, snapshot

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

TOPIC = "es-infer-nb-stats"

__all__ = ["TOPIC", "deliver", "difference", "merge", "register_job", "report", "snapshot"]

_jobs: "dict[str, weakref.ref[Engine]]" = {}
#: (job, run) -> partition -> the counters merged for it so far; the most recent runs only (a retry
#: comes while its compute runs)
_merged: "OrderedDict[tuple[str, Any], dict[Any, dict[str, Any]]]" = OrderedDict()
MAX_TRACKED_RUNS = 64
_subscribed: "weakref.WeakSet[Any]" = weakref.WeakSet()
_lock = threading.Lock()


def difference(after: dict[str, Any], before: dict[str, Any], *, floor: bool = False) -> dict[str, Any]:
    """``after - before``, keeping only the entries that moved; ``floor``: a counter that went down
    counts 0 (what ``after`` counts beyond ``before``)."""
    out: dict[str, Any] = {}
    for section, entries in after.items():
        moved = {}
        for key, values in entries.items():
            old = before.get(section, {}).get(key, {})
            delta = {f: max(v - old.get(f, 0), 0) if floor else v - old.get(f, 0) for f, v in values.items()}
            if any(delta.values()):
                moved[key] = delta
        if moved:
            out[section] = moved
    return out


def register_job(job: str, engine: "Engine") -> None:
    """Route the job's counter differences to ``engine``; subscribe the current distributed client."""
    with _lock:
        for dead in [j for j, ref in _jobs.items() if ref() is None]:
            del _jobs[dead]
        _jobs[job] = weakref.ref(engine)
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - dask without distributed
        return
    try:
        client = default_client()
    except ValueError:  # no client: the local schedulers run partitions in this process
        return
    with _lock:
        if client in _subscribed:
            return
        _subscribed.add(client)
    client.subscribe_topic(TOPIC, _on_event)


def _on_event(event: Any) -> None:
    _, message = event
    part = message.get("partition")
    deliver(message.get("job", ""), message.get("delta", {}), tuple(part) if part is not None else None)


def _add(merged: dict[str, Any], more: dict[str, Any]) -> None:
    for section, entries in more.items():
        for key, values in entries.items():
            target = merged.setdefault(section, {}).setdefault(key, {})
            for f, v in values.items():
                target[f] = target.get(f, 0) + v


def deliver(job: str, delta: dict[str, Any], part: tuple[Any, ...] | None = None) -> bool:
    """Merge ``delta`` into the job's engine if this process holds it; False otherwise.

    ``part`` (partition number, run): a difference for a partition already merged in the same run
    adds only what it counts beyond the earlier one; ``None`` always adds."""
    with _lock:
        ref = _jobs.get(job)
        engine = ref() if ref is not None else None
        if engine is None:
            return False
        if part is not None:
            partition, run = part
            runs = _merged.setdefault((job, run), {})
            _merged.move_to_end((job, run))
            while len(_merged) > MAX_TRACKED_RUNS:
                _merged.popitem(last=False)
            merged = runs.setdefault(partition, {})
            delta = difference(delta, merged, floor=True)
            _add(merged, delta)
    merge(engine, delta)
    return True


def _worker() -> Any:
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):  # not in a task of a distributed worker
        return None


def run_id(worker: Any) -> str | None:
    """The compute the task running on ``worker`` belongs to (its span id); None if unknown."""
    try:
        span = worker.state.tasks[worker.get_current_task()].span_id
    except (AttributeError, KeyError):  # a distributed without spans
        return None
    return None if span is None else str(span)


def report(job: str, delta: dict[str, Any], partition: int | None = None) -> None:
    """Send a partition's counter difference home (a worker event, or straight into this process's engine),
    with the partition number and the run it belongs to, so that a re-run partition counts once."""
    if not delta:
        return
    worker = _worker()
    run = run_id(worker) if worker is not None else None
    part = (partition, run) if partition is not None and run is not None else None
    if deliver(job, delta, part):
        return
    if worker is None:
        return  # a local process pool: the counters stay with the pool's process
    worker.log_event(TOPIC, {"job": job, "delta": delta, "partition": list(part) if part is not None else None})
