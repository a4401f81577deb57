"""The model-stats dashboard: ``GET _ml/trained_models/<ids>/_stats``, refreshed while a run proceeds.

``model_stats(model_ids=None, engine=None, interval=2.0)`` shows per model the inference
counters (inferences, failures, cache misses, missing-all-fields), the throughput since the
previous refresh, the deployment stats of NLP deployments (average / last-minute latency, cache
hits, throughput last minute, pending, errors) and ingest per pipeline and processor.

Each refresh samples, per model, the rate (inferences/s since the previous refresh) and the
latency (ms per inference over that interval: from the deployment's counters for an NLP
deployment, else from the ingest time of the model's inference processors; none when nothing
ran) into a bounded history (``history`` samples) drawn as two SVG sparklines per model. The
dashboard fits 900 px (the widget's ``layout.max_width`` and the HTML's ``max-width``; wide
tables scroll inside it); the same HTML, sparklines included, is the static fallback.

A daemon thread calls :meth:`ModelStatsWidget.refresh` every ``interval`` seconds (``0``: no
thread); ``.stop()`` ends it (also the "live" toggle, ``close()``, and ``idle_stop`` seconds
without any counter moving). Marks: ``.esinb-ms-model[data-model-id]`` with
``td[data-stat=<name>]`` cells, ``svg.esinb-spark[data-metric=rate|latency][data-values]``,
``.esinb-ms-deployment``, ``.esinb-ms-pipeline[data-pipeline]``, ``.esinb-ms-processor[data-processor]``
(ES's ``type:tag`` key).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ..engine import default_engine
from ._base import DisplayWidget
from ._html import attrs, box, esc, num, sparkline, text_table

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["MAX_WIDTH", "ModelStatsWidget", "model_stats"]

#: the dashboard's width limit (a laptop-width JupyterLab cell)
MAX_WIDTH = "900px"
_STYLE = (
    "<style>"
    f".esinb-ms{{max-width:{MAX_WIDTH};overflow-x:auto;box-sizing:border-box}}"
    ".esinb-ms table{width:100%;font-size:11px}"
    ".esinb-ms th{white-space:normal;vertical-align:bottom;font-weight:600}"
    ".esinb-ms td.esinb-ms-id{max-width:180px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}"
    "</style>"
)
_LABELS = {"inference_count": "inferences", "failure_count": "failures", "cache_miss_count": "cache misses",
           "missing_all_fields_count": "missing all fields", "pipeline_count": "pipelines"}

_INFERENCE = ("inference_count", "failure_count", "cache_miss_count", "missing_all_fields_count")
_DEPLOYMENT = ("state", "inference_count", "average_inference_time_ms", "average_inference_time_ms_last_minute",
               "inference_cache_hit_count", "inference_cache_hit_count_last_minute", "throughput_last_minute",
               "peak_throughput_per_minute", "number_of_pending_requests", "error_count", "rejected_execution_count",
               "timeout_count")


def _cells(values: dict[str, Any], names: Sequence[str]) -> str:
    return "".join(f'<td class="num"{attrs(data_stat=n, data_value=values.get(n))}>{esc(num(values.get(n)))}</td>'
                   for n in names)


def _heads(names: Sequence[str]) -> str:
    return "".join(f"<th>{esc(_LABELS.get(n, n.replace('_', ' ')))}</th>" for n in names)


def _latency_sources(stat: dict[str, Any]) -> tuple[float, int]:
    """(total ms, inferences) the model's ``_stats`` account for: the deployment's nodes (average time x
    count), else the ingest time of its inference processors (``time_in_millis`` over ``count``)."""
    dep = stat.get("deployment_stats") or {}
    nodes = dep.get("nodes") or []
    total, count = 0.0, 0
    for node in nodes:
        n = int(node.get("inference_count") or 0)
        avg = node.get("average_inference_time_ms")
        if n and isinstance(avg, (int, float)):
            total += float(avg) * n
            count += n
    if count:
        return total, count
    for pipeline in ((stat.get("ingest") or {}).get("pipelines") or {}).values():
        for proc in pipeline.get("processors") or []:
            for entry in proc.values():
                if entry.get("type") in ("inference", "ml_inference"):
                    st = entry.get("stats") or {}
                    total += float(st.get("time_in_millis") or 0)
                    count += int(st.get("count") or 0)
    return total, count


def _deployment_totals(dep: dict[str, Any]) -> dict[str, Any]:
    """One line per deployment: the node counters added up, averages weighted by inference count."""
    nodes = dep.get("nodes") or []
    out: dict[str, Any] = {"state": dep.get("state")}
    count = sum(int(n.get("inference_count") or 0) for n in nodes)
    out["inference_count"] = dep.get("inference_count", count)
    for key in ("inference_cache_hit_count", "inference_cache_hit_count_last_minute", "throughput_last_minute",
                "number_of_pending_requests", "error_count", "rejected_execution_count", "timeout_count"):
        values = [n.get(key) for n in nodes if isinstance(n.get(key), (int, float))]
        if values or key in dep:
            out[key] = dep.get(key, sum(values))
    for key, weight in (("average_inference_time_ms", "inference_count"),
                        ("average_inference_time_ms_last_minute", "throughput_last_minute")):
        pairs = [(float(n[key]), float(n.get(weight) or 0)) for n in nodes if isinstance(n.get(key), (int, float))]
        total = sum(wt for _, wt in pairs)
        if pairs:
            out[key] = sum(v * wt for v, wt in pairs) / total if total else pairs[0][0]
    out["peak_throughput_per_minute"] = dep.get("peak_throughput_per_minute")
    return out


class ModelStatsWidget(DisplayWidget):
    """A live ``_stats`` table; see the module doc."""

    def __init__(self, model_ids: Sequence[str] | str | None = None, engine: "Engine | None" = None, *,
                 interval: float = 2.0, idle_stop: float | None = 600.0, history: int = 60) -> None:
        if isinstance(model_ids, str):
            model_ids = [m for m in model_ids.split(",") if m]
        self.model_ids = list(model_ids) if model_ids else None
        if engine is None:
            engine = default_engine()
        self.engine = engine
        self.interval = float(interval)
        self.idle_stop = idle_stop
        self.stats: list[dict[str, Any]] = []
        self.error: str | None = None
        self.refresh_count = 0
        self.throughput: dict[str, float] = {}  # inferences / s between the last two refreshes
        self.latency: dict[str, float | None] = {}  # ms per inference between the last two refreshes
        if history < 2:
            raise ValueError(f"history must keep at least 2 samples to draw a line, found {history}")
        #: per model, the last ``history`` samples of (monotonic time, rate /s, latency ms or None)
        self.history: dict[str, deque[tuple[float, float, float | None]]] = {}
        self.history_size = int(history)
        self._previous: dict[str, tuple[float, int]] = {}
        self._previous_latency: dict[str, tuple[float, int]] = {}
        self._last_change = time.monotonic()
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self.live = w.ToggleButton(value=False, description="live", tooltip="refresh every interval seconds",
                                   icon="refresh")
        self.refresh_button = w.Button(description="refresh now")
        self.status = w.Label()
        self.view = w.HTML()
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.live.observe(self._on_live, names="value")
        super().__init__(children=[w.HBox([self.live, self.refresh_button, self.status],
                                          layout=w.Layout(flex_flow="row wrap")), self.view],
                         layout=w.Layout(width="100%", max_width=MAX_WIDTH, overflow="auto"))
        self.view.layout = w.Layout(width="100%", max_width=MAX_WIDTH)
        self.add_class("esinb-model-stats")
        self.refresh()
        if self.interval > 0:
            self.start()

    # -- refreshing -------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return f"_ml/trained_models/{','.join(self.model_ids) if self.model_ids else '_all'}/_stats"

    def refresh(self) -> list[dict[str, Any]]:
        """Read ``_stats`` now and redraw; returns the ``trained_model_stats`` entries."""
        with self._lock:
            resp = self.engine.request("GET", self.path, params={"size": 10000, "allow_no_match": "true"})
            now = time.monotonic()
            if resp.ok:
                self.stats = list((resp.body or {}).get("trained_model_stats") or [])
                self.error = None
            else:
                err = (resp.body or {}).get("error") if isinstance(resp.body, dict) else None
                self.error = f"{resp.status} {err.get('type')}: {err.get('reason')}" if isinstance(err, dict) \
                    else f"{resp.status}"
            changed = False
            for stat in self.stats:
                mid = str(stat.get("model_id"))
                count = int((stat.get("inference_stats") or {}).get("inference_count") or 0)
                before = self._previous.get(mid)
                if before is not None and now > before[0]:
                    self.throughput[mid] = (count - before[1]) / (now - before[0])
                    changed = changed or count != before[1]
                self._previous[mid] = (now, count)
                self._sample_latency(mid, stat)
                if mid in self.throughput:
                    samples = self.history.setdefault(mid, deque(maxlen=self.history_size))
                    samples.append((now, self.throughput[mid], self.latency.get(mid)))
            if changed:
                self._last_change = now
            self.refresh_count += 1
            self.view.value = self.static_html()
            self.status.value = self._status_text()
            return self.stats

    def _sample_latency(self, mid: str, stat: dict[str, Any]) -> None:
        total, count = _latency_sources(stat)
        before = self._previous_latency.get(mid)
        self._previous_latency[mid] = (total, count)
        if before is None:
            return
        done = count - before[1]
        self.latency[mid] = (total - before[0]) / done if done > 0 else None

    def series(self, model_id: str, metric: str) -> list[float | None]:
        """The sampled ``"rate"`` (inferences/s) or ``"latency"`` (ms) of a model, oldest first."""
        if metric not in ("rate", "latency"):
            raise ValueError(f"metric must be 'rate' or 'latency', found {metric!r}")
        column = 1 if metric == "rate" else 2
        return [sample[column] for sample in self.history.get(model_id, ())]

    def _spark(self, model_id: str, metric: str, color: str) -> str:
        return sparkline(self.series(model_id, metric), color=color, data_metric=metric, data_model_id=model_id)

    def start(self, interval: float | None = None) -> None:
        """Refresh every ``interval`` seconds in a daemon thread (until :meth:`stop`)."""
        if interval is not None:
            self.interval = float(interval)
        if self.interval <= 0:
            raise ValueError(f"interval must be > 0 seconds to refresh in the background, found {self.interval}")
        if self.running:
            return
        self._stop_event = threading.Event()
        self._last_change = time.monotonic()
        self._thread = threading.Thread(target=self._loop, args=(self._stop_event,), daemon=True,
                                        name="es-infer-nb-model-stats")
        self._thread.start()
        self._sync_toggle(True)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background refresh and wait for the thread to end."""
        self._stop_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        self._sync_toggle(False)
        self.status.value = self._status_text()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop_event.is_set()

    def close(self) -> None:
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - close() also runs from __del__, at interpreter exit
            event = getattr(self, "_stop_event", None)
            if event is not None:
                event.set()
        super().close()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a dashboard must not kill the kernel's thread
                self.error = f"refresh failed: {type(exc).__name__}: {exc}"
                self.status.value = self._status_text()
            if self.idle_stop is not None and time.monotonic() - self._last_change > self.idle_stop:
                stop.set()
                self._sync_toggle(False)
                self.status.value = self._status_text() + " · stopped (no change)"

    def _sync_toggle(self, value: bool) -> None:
        if self.live.value != value:
            self._syncing = True
            try:
                self.live.value = value
            finally:
                self._syncing = False

    def _on_live(self, change: dict[str, Any]) -> None:
        if getattr(self, "_syncing", False):
            return
        if change["new"]:
            self.start(self.interval if self.interval > 0 else 2.0)
        else:
            self.stop()

    def _status_text(self) -> str:
        state = f"every {self.interval:g} s" if self.running else "paused"
        text = f"{len(self.stats)} models · refresh #{self.refresh_count} · {state}"
        return f"{text} · {self.error}" if self.error else text

    # -- rendering --------------------------------------------------------------------------
    def static_html(self) -> str:
        parts = [f'<div class="esinb-title">model stats ({esc(self.path)})</div>']
        if self.error:
            parts.append(f'<div class="esinb-ms-error">{esc(self.error)}</div>')
        heads = ["model_id", *_INFERENCE, "inferences/s", "rate over time", "latency ms", "latency over time",
                 "pipeline_count"]
        rows = []
        for stat in self.stats:
            mid = str(stat.get("model_id"))
            inf = stat.get("inference_stats") or {}
            rows.append(
                f"<tr{attrs(class_='esinb-ms-model', data_model_id=mid)}>"
                f'<td class="esinb-ms-id" title="{esc(mid)}">{esc(mid)}</td>{_cells(inf, _INFERENCE)}'
                f"{_cells({'throughput': self.throughput.get(mid)}, ['throughput'])}"
                f"<td>{self._spark(mid, 'rate', '#1a7f37')}</td>"
                f"{_cells({'latency_ms': self.latency.get(mid)}, ['latency_ms'])}"
                f"<td>{self._spark(mid, 'latency', '#8250df')}</td>{_cells(stat, ['pipeline_count'])}</tr>")
        parts.append(f'<table class="esinb-ms-models"><thead><tr>{_heads(heads)}</tr></thead>'
                     f'<tbody>{"".join(rows)}</tbody></table>')
        deployments = [(str(s.get("model_id")), s["deployment_stats"]) for s in self.stats if s.get("deployment_stats")]
        if deployments:
            body = "".join(
                f"<tr{attrs(class_='esinb-ms-deployment', data_model_id=mid, data_deployment_id=d.get('deployment_id'))}>"
                f"<td>{esc(d.get('deployment_id') or mid)}</td>{_cells(_deployment_totals(d), _DEPLOYMENT)}</tr>"
                for mid, d in deployments)
            parts.append('<div class="esinb-title">deployments</div>'
                         f'<table class="esinb-ms-deployments"><thead><tr>{_heads(["deployment", *_DEPLOYMENT])}</tr>'
                         f"</thead><tbody>{body}</tbody></table>")
        ingest_rows = []
        for stat in self.stats:
            mid = str(stat.get("model_id"))
            for pid, p in ((stat.get("ingest") or {}).get("pipelines") or {}).items():
                ingest_rows.append(f"<tr{attrs(class_='esinb-ms-pipeline', data_model_id=mid, data_pipeline=pid)}>"
                                   f"<td>{esc(mid)}</td><td>{esc(pid)}</td><td></td>"
                                   f"{_cells(p, ['count', 'time_in_millis', 'current', 'failed'])}</tr>")
                for proc in p.get("processors") or []:
                    for name, entry in proc.items():
                        ingest_rows.append(
                            f"<tr{attrs(class_='esinb-ms-processor', data_model_id=mid, data_pipeline=pid, data_processor=name, data_type=entry.get('type'))}>"
                            f"<td></td><td></td><td>{esc(name)}</td>"
                            f"{_cells(entry.get('stats') or {}, ['count', 'time_in_millis', 'current', 'failed'])}</tr>")
        if ingest_rows:
            heads_i = ["model", "pipeline", "processor", "count", "time_in_millis", "current", "failed"]
            parts.append('<div class="esinb-title">ingest</div>'
                         f'<table class="esinb-ms-ingest"><thead><tr>{_heads(heads_i)}</tr></thead>'
                         f'<tbody>{"".join(ingest_rows)}</tbody></table>')
        inner = box(_STYLE + "".join(parts), "esinb-ms", data_refresh_count=self.refresh_count)
        # inline too: renderers that drop <style> (GitHub, some exporters) keep the width
        return f'<div class="esinb-ms-frame" style="max-width:{MAX_WIDTH};overflow-x:auto">{inner}</div>'

    def text(self) -> str:
        rows = [[str(s.get("model_id")), *[(s.get("inference_stats") or {}).get(n) for n in _INFERENCE],
                 self.throughput.get(str(s.get("model_id")))] for s in self.stats]
        table = text_table(["model_id", *_INFERENCE, "inferences/s"], rows)
        return f"model stats ({self.path}, {'live' if self.running else 'paused'})\n{table}" + \
            (f"\n{self.error}" if self.error else "")


def model_stats(model_ids: Sequence[str] | str | None = None, engine: "Engine | None" = None, *,
                interval: float = 2.0, idle_stop: float | None = 600.0, history: int = 60) -> ModelStatsWidget:
    """The model-stats dashboard of ``model_ids`` (None: every model; wildcards allowed).

    Refreshes every ``interval`` seconds in a background thread (``0``: only on
    ``.refresh()`` / the button); ``.stop()`` ends the refreshing, and it ends by itself after
    ``idle_stop`` seconds without any inference counter moving (``None``: never). ``history``: how
    many samples of rate and latency the sparklines keep.
    """
    return ModelStatsWidget(model_ids, engine, interval=interval, idle_stop=idle_stop, history=history)
