"""Trained model deployments (pytorch models): state, routing, queue, priority, inference cache, device.

ES runs a pytorch model in a native process per deployment; here a deployment holds the loaded
model (per device) inside the engine. What ES users see is kept: one deployment per
``deployment_id`` (several per model allowed), ``number_of_allocations`` / ``threads_per_allocation``
/ ``queue_capacity`` / ``cache_size`` / ``priority`` as validated by
``StartTrainedModelDeploymentAction.Request``, one local ML node in the routing table, the
assignment and allocation states, and the node counters of ``_stats``.

* The queue: each deployment owns an :class:`~.batcher.InferenceBatcher` and one worker thread.
  Every caller (``_infer`` over HTTP or ``Engine.request``, ``df.infer.run``, pipelines) queues its
  documents there; the worker gathers the calls waiting (a short window, up to ``MAX_BATCH_DOCS``
  documents with the same inference config) into one model call and hands each caller its own
  results or error. An ``_infer`` whose documents do not fit in what is left of ``queue_capacity``
  is refused as ES refuses it: 429 ``es_rejected_execution_exception`` (``inference process queue
  is full. Unable to execute command``), its documents counted in ``rejected_execution_count``.
  ``_infer`` waits for the queue outside the engine's lock, so concurrent requests really merge.
  Frames and pipelines feed chunks of at most ``queue_capacity`` documents and wait for room
  (back-pressure), so they are never rejected; they keep the next chunk queued while one runs. Once
  the running model call has started its last batches on the CPU streams
  (:func:`.nlp.stream_pool.streams_finishing`), the worker starts the next one beside it: it
  tokenizes meanwhile and its batches take the streams the running call frees (the streams serve the
  older call first), instead of one core idling through the last batch and both through the
  tokenizing. Calls still run one at a time otherwise (a model call not on the streams never has
  another beside it). ``_infer?timeout=`` bounds the wait (408, counted in
  ``timeout_count``); without it the wait is unbounded (ES: 10s).
* The cache: keyed on (input text, inference config update), bounded by ``cache_size`` in bytes
  (default: the model size, as ES; ``0b`` disables it). Hits skip the model; repeated inputs in one
  batch are computed once and count as hits, as they would in ES's one-at-a-time native process.
* Threads and allocations are recorded and reported; the local process uses torch's own threading.
* Device: the engine's device (``Engine(device=...)``) unless ``_start`` is given the es_infer_nb
  parameter ``device`` (``cpu``, ``cuda``, ``cuda:<n>``, ``auto``); ``df.infer.run(device=...)``
  loads the model once more on that device under the same deployment.
* Precision: ``_start``'s es_infer_nb parameter ``precision`` (``auto``, ``fp32``, ``bf16``, ``fp16``,
  ``int8``; :mod:`.nlp.precision`), else what ``import_hf_model(precision=...)`` recorded, else the
  default (``auto``); ``df.infer.run(precision=...)`` loads the model once more in that precision
  under the same deployment. ``_stats`` shows the deployment's as ``precision``.

Deployments persist under the engine's home (as ES keeps assignments in the cluster state): a new
Engine on the same home has them started again, loading the model on first use, and their counters
go on from what was saved (``<home>/stats/deployment_stats.json``; a stopped deployment's go with it).
Engines sharing a home follow each other's starts and stops.
"""

from __future__ import annotations

import json
import logging
import platform
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ApiError, not_found
from ..stats import DeploymentCounters, now_millis
from ..storage import JsonStore
from .batcher import InferenceBatcher, wait
from .builtin import is_builtin
from .byte_size import ByteSize
from .doc_columns import DocsResult
from .inference_cache import InferenceCache, estimate_bytes
from .native_definitions import check_deployable, definition_missing, native_definitions
from .nlp.graph_check import UnsafeDefinition
from .nlp.model import stored_precision
from .nlp.stream_pool import streams_finishing
from .nlp_backend import Backend, input_field, load_backend, resolve_device, resolve_model_precision
from .tree.features import dig

if TYPE_CHECKING:  # pragma: no cover
    from concurrent.futures import Future

    from ..engine import Engine

log = logging.getLogger("es_infer_nb.deployments")

DEFAULT_NUM_ALLOCATIONS = 1
DEFAULT_NUM_THREADS = 1
DEFAULT_QUEUE_CAPACITY = 10_000  # StartTrainedModelDeploymentAction.DEFAULT_QUEUE_CAPACITY (1024 before 8.x's raise)
MAX_QUEUE_CAPACITY = 100_000
MAX_THREADS_PER_ALLOCATION = 32
PRIORITIES = ("normal", "low")
WAIT_FOR_STATES = ("started", "starting", "fully_allocated")
MEMORY_OVERHEAD_BYTES = 240 * 1024 * 1024  # StartTrainedModelDeploymentAction.MEMORY_OVERHEAD
#: most documents one model call gathers from waiting calls (a single larger call runs alone)
MAX_BATCH_DOCS = 512
#: how long the worker waits for more calls before running a batch that is not full
GATHER_WINDOW_S = 0.002
#: chunks an in-process caller (a frame, a pipeline) keeps queued beside the one running
CHUNKS_AHEAD = 1
PROCESS_NAME = "inference process"


def required_native_memory_bytes(model_bytes: int) -> int:
    """``StartTrainedModelDeploymentAction.estimateMemoryUsageBytes`` without per-allocation figures."""
    return MEMORY_OVERHEAD_BYTES + 2 * model_bytes if model_bytes > 0 else 0


@dataclass(frozen=True)
class CallOptions:
    """What calls must share to run in one model call (the batcher's key)."""

    update_key: str
    field: str
    device: str | None
    precision: str | None = None
    update: Any = field(default=None, compare=False, hash=False)

    @classmethod
    def of(cls, update: Any, field_name: str, device: str | None, precision: str | None = None) -> "CallOptions":
        key = json.dumps(update, sort_keys=True, default=str) if update else ""
        return cls(key, field_name, device, precision, update)


@dataclass
class AdaptiveAllocations:
    enabled: bool | None = None
    min_number_of_allocations: int | None = None
    max_number_of_allocations: int | None = None

    @classmethod
    def parse(cls, raw: Any) -> "AdaptiveAllocations | None":
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise ApiError("x_content_parse_exception", "[adaptive_allocations] expected an object", 400)
        allowed = {"enabled", "min_number_of_allocations", "max_number_of_allocations"}
        for key in raw:
            if key not in allowed:
                raise ApiError("x_content_parse_exception", f"[adaptive_allocations_settings] unknown field [{key}]",
                               400)
        out = cls()
        if raw.get("enabled") is not None:
            if not isinstance(raw["enabled"], bool):
                raise ApiError("x_content_parse_exception",
                               "[adaptive_allocations_settings] failed to parse field [enabled]", 400)
            out.enabled = raw["enabled"]
        for key in ("min_number_of_allocations", "max_number_of_allocations"):
            if raw.get(key) is not None:
                value = raw[key]
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ApiError("x_content_parse_exception",
                                   f"[adaptive_allocations_settings] failed to parse field [{key}]", 400)
                setattr(out, key, value)
        return out

    def problems(self) -> list[str]:
        """``AdaptiveAllocationsSettings.validate``."""
        out = []
        lo, hi = self.min_number_of_allocations, self.max_number_of_allocations
        if lo is not None and lo < 0:
            out.append("[min_number_of_allocations] must be a non-negative integer")
        if hi is not None and hi < 1:
            out.append("[max_number_of_allocations] must be a positive integer")
        if lo is not None and hi is not None and lo > hi:
            out.append("[min_number_of_allocations] must not be larger than [max_number_of_allocations]")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def merged(cls, current: dict[str, Any] | None, update: "AdaptiveAllocations | None") -> "AdaptiveAllocations | None":
        """``AdaptiveAllocationsSettings.merge``: the update's fields over the deployment's."""
        if update is None:
            return None if not current else cls(**current)
        base = cls(**current) if current else cls()
        for key, value in asdict(update).items():
            if value is not None:
                setattr(base, key, value)
        return base


@dataclass
class DeploymentParams:
    """What ``_start`` fixes for a deployment (``TaskParams``)."""

    model_id: str
    deployment_id: str
    model_bytes: int
    number_of_allocations: int = DEFAULT_NUM_ALLOCATIONS
    threads_per_allocation: int = DEFAULT_NUM_THREADS
    queue_capacity: int = DEFAULT_QUEUE_CAPACITY
    cache_size: str | None = None  # as given (``getStringRep``); None: the model size
    priority: str = "normal"
    adaptive_allocations: dict[str, Any] | None = None
    device: str | None = None
    #: as asked for at ``_start`` (``None``: the model's or the default)
    precision: str | None = None
    start_time: int = field(default_factory=now_millis)

    @property
    def cache_bytes(self) -> ByteSize:
        if self.cache_size is None:
            return ByteSize.of_bytes(self.model_bytes)
        return ByteSize.parse(self.cache_size, "cache_size")


class Deployment:
    """One started deployment on the local node."""

    def __init__(self, params: DeploymentParams, engine_device: str | None,
                 loader: Callable[[str, str, str], Backend], model_precision: str | None = None) -> None:
        self.params = params
        self.state = "started"
        self.routing_state = "started"
        self.reason: str | None = None
        self.counters = DeploymentCounters()
        self.cache = InferenceCache(max(0, params.cache_bytes.bytes))
        self.default_device = params.device or engine_device or "cpu"
        #: what calls that name no precision get (``None``: the default, ``auto`` unless set otherwise)
        self.default_precision = params.precision or model_precision
        self._loader = loader
        self._backends: dict[tuple[str, str], Backend] = {}
        self._lock = threading.RLock()
        self.queue: InferenceBatcher[dict[str, Any], dict[str, Any]] = InferenceBatcher(
            self._run_batch, max_batch_size=MAX_BATCH_DOCS, queue_capacity=params.queue_capacity,
            window_s=GATHER_WINDOW_S, name=PROCESS_NAME, split_calls=False, keyed=True,
            overlap=streams_finishing)

    @property
    def model_id(self) -> str:
        return self.params.model_id

    @property
    def deployment_id(self) -> str:
        return self.params.deployment_id

    def backend(self, device: str | None = None, precision: str | None = None) -> Backend:
        """The model loaded for ``device`` and ``precision`` (each defaulting to the deployment's)."""
        dev = resolve_device(device or self.default_device)
        key = (dev, resolve_model_precision(precision or self.default_precision, dev))
        with self._lock:
            model = self._backends.get(key)
            if model is None:
                model = self._backends[key] = self._loader(self.model_id, *key)
            return model

    @property
    def precision(self) -> str:
        """The precision the deployment's default model runs in (what ``_stats`` shows)."""
        dev = resolve_device(self.default_device)
        key = (dev, resolve_model_precision(self.default_precision, dev))
        with self._lock:
            model = self._backends.get(key)
        return str(getattr(model, "precision", key[1])) if model is not None else key[1]

    def unload(self) -> None:
        with self._lock:
            self._backends.clear()
        self.cache.clear()

    def shutdown(self) -> None:
        """Answer the calls already queued, stop the worker, drop the loaded model. Call it without the
        engine's state lock: it waits for the worker."""
        self.state = "stopping"
        self.queue.close()
        self.unload()

    # -- inference -----------------------------------------------------------------------------------
    def check_routable(self) -> None:
        """``TransportInternalInferModelAction``'s checks before a request goes to a node."""
        if self.state in ("stopping", "failed"):
            raise ApiError("status_exception", f"Trained model [{self.deployment_id}] is [{self.state}]", 409)
        if self.routing_state not in ("started", "stopping"):
            raise ApiError("status_exception",
                           f"Trained model deployment [{self.deployment_id}] is not allocated to any nodes", 409)

    def submit(self, docs: list[dict[str, Any]], update: dict[str, Any] | None, field: str, *,
               device: str | None = None, wait_for_room: bool = False, precision: str | None = None
               ) -> "Future[list[dict[str, Any]]]":
        """Queue ``docs``; the future holds one ES result per document. Raises ES's 429 when the
        queue has no room for all of them (unless ``wait_for_room``: then waits for room)."""
        self.check_routable()
        n = len(docs)
        try:
            future = self.queue.submit_async(docs, key=CallOptions.of(update, field, device, precision),
                                             wait_for_room=wait_for_room)
        except ApiError as err:
            if err.status == 429:
                self.counters.record_rejected(n)
            raise
        self.counters.add_pending(n)
        future.add_done_callback(lambda _: self.counters.add_pending(-n))
        return future

    def result(self, future: "Future[list[dict[str, Any]]]", n: int, timeout: float | None = None,
               timeout_text: str | None = None) -> list[dict[str, Any]]:
        """Wait for a submitted call: ES's 408 after ``timeout`` s (``timeout_count``); the model's
        error for this call alone (``error_count``)."""
        try:
            return wait(future, timeout)
        except TimeoutError:
            self.counters.record_timeout(n)
            raise ApiError("status_exception",
                           f"timeout [{timeout_text or f'{timeout}s'}] waiting for inference result", 408) from None
        except Exception:
            self.counters.record(inferences=0, time_ms=0.0, errors=n)
            raise

    def infer(self, docs: list[dict[str, Any]], update: dict[str, Any] | None, field: str, *,
              device: str | None = None, precision: str | None = None) -> DocsResult:
        """In-process callers: documents in chunks of at most ``queue_capacity`` (see :meth:`infer_chunks`);
        results in input order."""
        out: list[dict[str, Any]] = []
        for part in self.infer_chunks(docs, update, field, device=device, precision=precision):
            out.extend(part)
        return DocsResult(self.model_id, out)

    def infer_chunks(self, docs: list[dict[str, Any]], update: dict[str, Any] | None, field: str, *,
                     step: int | None = None, device: str | None = None, precision: str | None = None
                     ) -> Iterator[list[dict[str, Any]]]:
        """Each chunk's results, in order: chunks of at most ``step`` (and ``queue_capacity``) documents,
        each waiting for room in the queue (never rejected), :data:`CHUNKS_AHEAD` more queued while one
        runs. Leaving early (an error, Ctrl-C, ``close()``) drops the chunks still queued or running."""
        self.check_routable()
        if precision is not None:  # a bad value fails the call here, not in the worker
            resolve_model_precision(precision, resolve_device(device or self.default_device))
        step = max(1, min(self.params.queue_capacity, step or self.params.queue_capacity))
        queued: deque[tuple[Future[list[dict[str, Any]]], int]] = deque()
        try:
            for start in range(0, len(docs), step):
                chunk = docs[start:start + step]
                queued.append((self.submit(chunk, update, field, device=device, wait_for_room=True,
                                           precision=precision), len(chunk)))
                if len(queued) > CHUNKS_AHEAD:
                    yield self._next_result(queued)
            while queued:
                yield self._next_result(queued)
        finally:
            for future, _ in queued:
                self.queue.abandon(future)

    def _next_result(self, queued: "deque[tuple[Future[list[dict[str, Any]]], int]]") -> list[dict[str, Any]]:
        part = self.result(*queued[0])  # left queued until answered: an interrupted wait abandons it too
        queued.popleft()
        return part

    def _run_batch(self, docs: list[dict[str, Any]], options: CallOptions) -> list[dict[str, Any]]:
        """The worker: one model call for documents of several callers sharing ``options``."""
        return self._infer(docs, options.update, options.field, options.device, options.precision).to_docs()

    def _infer(self, docs: list[dict[str, Any]], update: dict[str, Any] | None, field: str,
               device: str | None, precision: str | None = None) -> DocsResult:
        started = time.perf_counter()
        update_key = json.dumps(update, sort_keys=True, default=str) if update else ""
        if precision is not None:  # results of another precision are not these
            update_key += "\x00" + resolve_model_precision(precision, resolve_device(device or self.default_device))
        out: list[dict[str, Any] | None] = [None] * len(docs)
        misses: dict[str, list[int]] = {}  # cache key -> rows asking for it
        uncacheable: list[int] = []
        hits = 0
        for i, doc in enumerate(docs):
            value = dig(doc, field)
            if not self.cache.enabled or not isinstance(value, str):
                uncacheable.append(i)
                continue
            key = value + "\x00" + update_key
            cached = self.cache.get(key)
            if cached is not None:
                out[i] = dict(cached)
                hits += 1
            elif key in misses:
                misses[key].append(i)
                hits += 1  # computed once below, then served from the cache
            else:
                misses[key] = [i]
        hit_ms = (time.perf_counter() - started) * 1000.0
        run_rows = sorted([rows[0] for rows in misses.values()] + uncacheable)
        model_ms = 0.0
        if run_rows:
            t0 = time.perf_counter()
            answers = self.backend(device, precision).infer([docs[i] for i in run_rows], update, field=field).to_docs()
            model_ms = (time.perf_counter() - t0) * 1000.0
            for i, answer in zip(run_rows, answers):
                out[i] = answer
        for key, rows in misses.items():
            answer = out[rows[0]]
            assert answer is not None
            if "error" not in answer:
                self.cache.put(key, answer, estimate_bytes(key))
            for j in rows[1:]:
                out[j] = dict(answer)
        results = [r if r is not None else {"error": "no result"} for r in out]
        errors = sum(1 for r in results if "error" in r)
        self.counters.record(inferences=len(docs), time_ms=model_ms, cache_hits=hits, hit_time_ms=hit_ms,
                             errors=errors)
        return DocsResult(self.model_id, results)

    # -- ES shapes -------------------------------------------------------------------------------------
    def allocation_status(self) -> dict[str, Any]:
        n = self.params.number_of_allocations
        return {"allocation_count": n, "target_allocation_count": n,
                "state": "fully_allocated" if self.routing_state == "started" else self.routing_state}

    def task_parameters(self) -> dict[str, Any]:
        p = self.params
        return {
            "model_id": p.model_id, "deployment_id": p.deployment_id, "model_bytes": p.model_bytes,
            "threads_per_allocation": p.threads_per_allocation, "number_of_allocations": p.number_of_allocations,
            "queue_capacity": p.queue_capacity, "cache_size": p.cache_bytes.string_rep(), "priority": p.priority,
            "per_deployment_memory_bytes": 0, "per_allocation_memory_bytes": 0,
        }


class Node:
    """The one local ML node deployments are routed to."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex[:22]
        self.ephemeral_id = uuid.uuid4().hex[:22]
        self.name = platform.node() or "es-infer-nb"

    def to_dict(self) -> dict[str, Any]:
        return {self.id: {"name": self.name, "ephemeral_id": self.ephemeral_id,
                          "transport_address": "127.0.0.1:9300", "attributes": {}, "roles": ["ml"]}}


def iso_millis(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class StartRequest:
    """``StartTrainedModelDeploymentAction.Request`` (query params and body)."""

    model_id: str
    deployment_id: str
    number_of_allocations: int | None = None
    threads_per_allocation: int = DEFAULT_NUM_THREADS
    queue_capacity: int = DEFAULT_QUEUE_CAPACITY
    cache_size: ByteSize | None = None
    priority: str = "normal"
    wait_for: str = "started"
    timeout_s: float = 30.0
    adaptive_allocations: AdaptiveAllocations | None = None
    device: str | None = None
    precision: str | None = None

    def problems(self) -> list[str]:
        """``Request.validate`` in ES's order."""
        out: list[str] = []
        if self.wait_for not in WAIT_FOR_STATES:
            out.append(f"invalid [wait_for] state [{self.wait_for}]; must be one of [{', '.join(WAIT_FOR_STATES)}")
        if self.number_of_allocations is not None:
            if self.number_of_allocations < 1:
                out.append("[number_of_allocations] must be a positive integer")
            if self.adaptive_allocations is not None and self.adaptive_allocations.enabled is True:
                out.append("[number_of_allocations] cannot be set if adaptive allocations is enabled")
        if self.threads_per_allocation < 1:
            out.append("[threads_per_allocation] must be a positive integer")
        if self.adaptive_allocations is not None:
            out.extend(self.adaptive_allocations.problems())
        t = self.threads_per_allocation
        if t > MAX_THREADS_PER_ALLOCATION or t < 1 or (t & (t - 1)) != 0:
            out.append(f"[threads_per_allocation] must be a power of 2 less than or equal to {MAX_THREADS_PER_ALLOCATION}")
        if self.queue_capacity < 1:
            out.append("[queue_capacity] must be a positive integer")
        if self.queue_capacity > MAX_QUEUE_CAPACITY:
            out.append(f"[queue_capacity] must be less than {MAX_QUEUE_CAPACITY}")
        if self.timeout_s <= 0:
            out.append("[timeout] must be positive")
        if self.priority == "low":
            if self.number_of_allocations is not None and self.number_of_allocations > 1:
                out.append("[number_of_allocations] must be 1 when [priority] is low")
            if self.threads_per_allocation > 1:
                out.append("[threads_per_allocation] must be 1 when [priority] is low")
        return out

    def allocations(self) -> int:
        """``computeNumberOfAllocations``."""
        if self.number_of_allocations is not None:
            return self.number_of_allocations
        lo = self.adaptive_allocations.min_number_of_allocations if self.adaptive_allocations else None
        return lo if lo else DEFAULT_NUM_ALLOCATIONS


def is_deployment_record(value: Any) -> bool:
    """What a saved deployment looks like (``<home>/deployments/<id>.json``)."""
    return (isinstance(value, dict) and isinstance(value.get("model_id"), str)
            and isinstance(value.get("deployment_id"), str))


class Deployments:
    """Every deployment of an engine, by deployment id (insertion order kept per model)."""

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine
        self.node = Node()
        self._store = JsonStore(engine.home, "deployments", check=is_deployment_record)
        self._by_id: dict[str, Deployment] = {}
        self._starting: dict[str, threading.Event] = {}  # deployment ids whose model is loading now
        for dep_id, raw in self._store.items():
            self._restart(dep_id, raw)
        self._store.on_change(self._changed_elsewhere)

    def _restart(self, dep_id: str, raw: dict[str, Any]) -> None:
        """A deployment saved under the home (by this engine before, or another engine now)."""
        if not self.engine.models.exists(raw["model_id"]):
            return
        known = {f.name for f in fields(DeploymentParams)}
        try:
            self._by_id[dep_id] = self._make(DeploymentParams(**{k: v for k, v in raw.items() if k in known}))
        except Exception as exc:  # noqa: BLE001 - a damaged record costs only its own deployment
            log.warning("es_infer_nb: deployment [%s] saved under the home is unusable (%s); skipped", dep_id, exc)

    def _changed_elsewhere(self, deployment_ids: set[str]) -> None:
        """Another engine on the home started, updated or stopped deployments: follow it."""
        for dep_id in deployment_ids:
            raw = self._store.get(dep_id)
            dep = self._by_id.get(dep_id)
            if raw is None:
                if dep is not None:
                    self._by_id.pop(dep_id, None)
                    dep.state = "stopping"
                    dep.queue.close()
                    dep.unload()
                    self.engine.stats.forget_deployment(dep_id)
            elif dep is None:
                self._restart(dep_id, raw)
            else:
                dep.params.number_of_allocations = raw.get("number_of_allocations", dep.params.number_of_allocations)
                dep.params.adaptive_allocations = raw.get("adaptive_allocations", dep.params.adaptive_allocations)

    def _make(self, params: DeploymentParams, engine_device: str | None = None) -> Deployment:
        """A deployment of ``params``; one that names no device runs on ``engine_device``, else the engine's."""
        stored = self.engine.models.config(params.model_id) if self.engine.models.exists(params.model_id) else {}
        dep = Deployment(params, engine_device or self.engine.device, self._load, stored_precision(stored))
        dep.counters = self.engine.stats.deployment_counters(params.deployment_id)  # saved under the home
        return dep

    def _load(self, model_id: str, device: str, precision: str) -> Backend:
        return load_backend(model_id, self.engine.models.config(model_id), device, native_definitions(self.engine),
                            trust_torchscript=self.engine.trust_torchscript, precision=precision)

    # -- lookups ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        self._store.refresh()
        return len(self._by_id)

    def get(self, deployment_id: str) -> Deployment | None:
        self._store.refresh()
        return self._by_id.get(deployment_id)

    def all(self) -> list[Deployment]:
        self._store.refresh()
        return list(self._by_id.values())

    def model_id_of(self, name: str) -> str | None:
        """The model behind a deployment id, model id or alias; None when unknown."""
        self._store.refresh()
        dep = self._by_id.get(name)
        return dep.model_id if dep is not None else self.engine.models.resolve(name)

    def input_field_of(self, name: str) -> str:
        """The field ``input`` texts stand for (``_infer``'s ``input``, the elasticsearch service): the
        first input field of the model behind ``name`` (``text_field`` by default or when unknown)."""
        model_id = self.model_id_of(name)
        return input_field(self.engine.models.config(model_id)) if model_id is not None else "text_field"

    def require_model_id(self, name: str) -> str:
        """:meth:`model_id_of`, with ES's not-found error from the model store when unknown."""
        self._store.refresh()
        dep = self._by_id.get(name)
        return dep.model_id if dep is not None else self.engine.models.require(name)

    def of_model(self, model_id: str) -> list[Deployment]:
        self._store.refresh()
        return [d for d in self._by_id.values() if d.model_id == model_id]

    def require(self, deployment_id: str) -> Deployment:
        self._store.refresh()
        dep = self._by_id.get(deployment_id)
        if dep is None:
            raise not_found(f"No known model deployment with id [{deployment_id}]")
        return dep

    def for_inference(self, id_or_alias: str, *, device: str | None = None) -> Deployment | None:
        """The deployment that serves ``id_or_alias`` (deployment id, model id or alias); None for a
        model that is not pytorch. Raises ES's 409 when a pytorch model has no deployment; the
        built-in embedding model gets a default deployment on first use, on ``device`` (``None``: the
        engine's)."""
        self._store.refresh()
        dep = self._by_id.get(id_or_alias)
        if dep is not None:
            dep.check_routable()
            return dep
        model_id = self.engine.models.require(id_or_alias)
        stored = self.engine.models.config(model_id)
        if stored.get("model_type", "tree_ensemble") != "pytorch":
            return None
        candidates = self.of_model(model_id)
        if not candidates and is_builtin(model_id):
            candidates = [self.start(StartRequest(model_id, model_id), reuse=True, engine_device=device)]
        if not candidates:
            raise ApiError(
                "status_exception",
                f"Model [{id_or_alias}] must be deployed to use. Please deploy with the start trained model "
                "deployment API.",
                409,
            )
        routable = [d for d in candidates if d.state == "started"]
        chosen = min(routable or candidates, key=lambda d: d.counters.inference_count)
        chosen.check_routable()
        return chosen

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self, req: StartRequest, *, reuse: bool = False, engine_device: str | None = None) -> Deployment:
        """Validate, load the model (without the engine's state lock: other requests go on), then
        register the deployment under the lock. A second start of an id that is started or starting
        is ES's "already exists" error; with ``reuse`` it gets that deployment instead (once started).
        ``engine_device``: the device a request that names none runs on (``None``: the engine's)."""
        while True:
            with self.engine.lock:
                self._store.refresh()
                existing = self._by_id.get(req.deployment_id)
                if existing is not None:
                    if reuse:
                        return existing
                    raise self._exists(req.deployment_id)
                pending = self._starting.get(req.deployment_id)
                if pending is None:
                    mine = self._starting[req.deployment_id] = threading.Event()
                    break
                if not reuse:
                    raise self._exists(req.deployment_id)
            pending.wait()  # another caller is starting it: take theirs, or start it if theirs failed
        try:
            return self._start(req, reuse, engine_device)
        finally:
            with self.engine.lock:
                self._starting.pop(req.deployment_id, None)
            mine.set()

    def _start(self, req: StartRequest, reuse: bool, engine_device: str | None = None) -> Deployment:
        models = self.engine.models
        with self.engine.lock:
            model_id = models.require(req.model_id)
            stored = models.config(model_id)
            kind = stored.get("model_type", "tree_ensemble")
            if kind != "pytorch":
                raise ApiError("status_exception",
                               f"model [{model_id}] of type [{kind}] cannot be deployed. Only PyTorch models can be "
                               "deployed", 400)
            if req.deployment_id != model_id and models.exists(req.deployment_id):
                raise ApiError(
                    "status_exception",
                    f"Deployment id [{req.deployment_id}] is the same as an another model which is not the model "
                    "being deployed. Deployment id can be the same as the model being deployed but cannot match a "
                    "different model",
                    400,
                )
            check_deployable(self.engine, model_id)
            parts = native_definitions(self.engine)
            model_bytes = parts.total_length(model_id) or int(stored.get("model_size_bytes") or 0)
        if req.device is not None or req.precision is not None:
            # an unusable device or precision is the request's fault (400), not a node failure
            resolve_model_precision(req.precision, resolve_device(req.device or engine_device or self.engine.device))
        params = DeploymentParams(
            model_id=model_id, deployment_id=req.deployment_id,
            model_bytes=model_bytes,
            number_of_allocations=req.allocations(), threads_per_allocation=req.threads_per_allocation,
            queue_capacity=req.queue_capacity,
            cache_size=req.cache_size.string_rep() if req.cache_size is not None else None,
            priority=req.priority,
            adaptive_allocations=req.adaptive_allocations.to_dict() if req.adaptive_allocations else None,
            device=req.device, precision=req.precision,
        )
        dep = self._make(params, engine_device)
        try:
            dep.backend()  # ES loads the model when the deployment starts
        except UnsafeDefinition:
            raise  # the uploaded definition is refused (400), not a node failure
        except Exception as err:  # noqa: BLE001 - any load failure fails the start, as a node failure in ES
            missing = definition_missing(self.engine, model_id)
            if missing is not None:
                raise missing from None
            reason = err.reason if isinstance(err, ApiError) else f"{type(err).__name__}: {err}"
            raise ApiError(
                "status_exception",
                "Could not start trained model deployment, the following nodes failed with errors "
                f"[{{{self.node.id}={reason}}}]",
                500,
            ) from None
        with self.engine.lock:
            winner = self._by_id.get(params.deployment_id)
            if winner is None and not models.exists(model_id):
                dep.shutdown()
                raise not_found(f"Could not find trained model [{req.model_id}]")  # deleted while it loaded
            if winner is None:
                self._by_id[params.deployment_id] = dep
                self._store.put(params.deployment_id, asdict(params))
                return dep
        dep.shutdown()  # a concurrent start of the same id won
        if reuse:
            return winner
        raise self._exists(params.deployment_id)

    @staticmethod
    def _exists(deployment_id: str) -> ApiError:
        return ApiError(
            "status_exception",
            "Could not start model deployment because an existing deployment with the same id "
            f"[{deployment_id}] exist",
            400,
        )

    def detach(self, deployment_id: str) -> Deployment:
        """Take a deployment out of the routing table and the home (under the engine's state lock);
        the caller then calls :meth:`Deployment.shutdown` outside the lock."""
        with self.engine.lock:
            dep = self._by_id.pop(deployment_id)
            dep.state = "stopping"
            self._store.delete(deployment_id)
            self.engine.stats.forget_deployment(deployment_id)
            return dep

    def stop(self, deployment_id: str) -> None:
        self.detach(deployment_id).shutdown()

    def update(self, deployment_id: str, number_of_allocations: int | None,
               adaptive: AdaptiveAllocations | None, reset: bool = False) -> Deployment:
        """A new allocation count and / or adaptive settings (``adaptive``: the merged settings; ``reset``:
        the adaptive settings removed)."""
        dep = self.require(deployment_id)
        if number_of_allocations is not None:
            dep.params.number_of_allocations = number_of_allocations
        if reset:
            dep.params.adaptive_allocations = None
        elif adaptive is not None:
            dep.params.adaptive_allocations = adaptive.to_dict()
            if number_of_allocations is None and adaptive.min_number_of_allocations:
                dep.params.number_of_allocations = max(dep.params.number_of_allocations,
                                                       adaptive.min_number_of_allocations)
        self._store.put(deployment_id, asdict(dep.params))
        return dep

    def forget_model(self, model_id: str) -> list[Deployment]:
        """Detach every deployment of ``model_id``; the caller shuts them down outside the state lock."""
        return [self.detach(dep.deployment_id) for dep in self.of_model(model_id)]


def deployments(engine: "Engine") -> Deployments:
    """The engine's deployments (created on first use)."""
    found = getattr(engine, "_deployments", None)
    if found is None:
        with engine.lock:
            found = getattr(engine, "_deployments", None)
            if found is None:
                found = Deployments(engine)
                engine._deployments = found  # type: ignore[attr-defined]
    return found


def model_field(engine: "Engine", model_id: str) -> str:
    return input_field(engine.models.config(model_id))
