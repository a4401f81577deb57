"""Length-sorted, token-budgeted dynamic batching for transformer inference.

:func:`run_batches` is the one loop every NLP model here runs its forward passes through:

* items are sorted by token length and grouped so that a group's *padded* size
  (``len(group) * longest item in it``) stays within ``token_budget`` — short texts share big
  batches, long ones go in small ones, and almost no compute is spent on padding; for a model that
  runs only a batch's real tokens (``packed``: the fast CPU encoder) the budget counts those;
* every group runs under ``torch.inference_mode``;
* outputs come back in input order, whatever order the groups ran in;
* a CUDA out-of-memory error splits the group in half and retries each half (down to one item,
  then a clear :class:`BatchOutOfMemory` is raised);
* a ``KeyboardInterrupt`` (Ctrl-C, the notebook's stop button) becomes
  :class:`es_infer_nb.errors.InferenceInterrupted` whose ``partial`` keeps every finished output;
* a ``tqdm.auto`` bar shows progress when asked, or by default for large inputs called directly
  (after ``run_control.DELAY_S``); never inside a deployment's queue worker or under a
  ``df.infer`` call's own bar (:mod:`es_infer_nb.models.run_control`);
* a stop request (every caller of the queue's batch gave up: ``run_control.stop_requested``) is
  checked between groups: the groups in flight finish, no new one starts, and
  :class:`~es_infer_nb.models.run_control.Cancelled` is raised;
* on CPU, ``streams`` (:func:`cpu_streams`) groups run at once, each on its own thread with its
  share of torch's threads (one each on a 2-core machine), as OpenVINO's THROUGHPUT streams do:
  small transformer GEMMs and the element-wise passes between them scale far better across
  independent batches than across the threads of one (no barrier after every op). The threads are
  one pool per process (:mod:`.stream_pool`) that serves the oldest run's groups first, so a run
  started beside another (the deployment's next model call) only takes the cores the older one
  leaves idle; a stop or an interrupt drops the groups not started yet.
"""

from __future__ import annotations

import itertools
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Callable, Sequence, TypeVar

from ...errors import InferenceInterrupted
from ..run_control import Cancelled, RunProgress, current_progress, in_worker, stop_requested
from .stream_pool import StreamPool, next_run, pool_for

__all__ = ["BatchOutOfMemory", "MAX_STREAMS", "PROGRESS_THRESHOLD", "cpu_streams", "group_tokens", "plan_batches", "run_batches"]

T = TypeVar("T")

#: with ``progress=None`` a bar is shown from this many items on
PROGRESS_THRESHOLD = 512
#: the most CPU streams :func:`cpu_streams` gives
MAX_STREAMS = 4
#: the smallest group (padded tokens) :func:`plan_batches` halves for streams: a forward pass reads
#: every weight of the model once (MiniLM float32: 88 MB), which rows past ~512 amortise (one thread,
#: 48-token passes cost twice a 720-token pass's time per token); halving a 32-text call's two groups
#: of 800-950 tokens made it 10% slower
MIN_SPLIT_TOKENS = 1024
#: how often a run on the streams looks for a stop request while its groups run or wait
STOP_POLL_S = 0.02


def cpu_streams() -> int:
    """How many batches a CPU model runs at once: one per torch thread, at most :data:`MAX_STREAMS`."""
    import torch

    return max(1, min(torch.get_num_threads(), MAX_STREAMS))


class BatchOutOfMemory(RuntimeError):
    """Even a single item does not fit in the device's memory."""


def plan_batches(lengths: Sequence[int], *, token_budget: int = 2048, max_batch: int = 256,
                 streams: int = 1, packed: bool = False) -> list[list[int]]:
    """Index groups, shortest items first, each padded size ``len * max length`` within budget (with
    ``packed``, for a model that runs a batch's real tokens only, their sum: see :func:`group_tokens`).

    A group always holds at least one item, so an item longer than the budget runs alone. With
    ``streams`` > 1 (that many groups run at once, each stream taking the next group when it
    finishes) the plan is cut for the streams to finish together: the largest groups are halved
    until the group count is a multiple of ``streams`` (3 groups on 2 streams would leave one idle
    for a whole group), and so are the last ``streams`` groups, the longest texts, which run last:
    a stream that finishes first takes a half instead of waiting out a whole group. Halves are cut
    where their padded sizes are most equal, and only from :data:`MIN_SPLIT_TOKENS` up. Measured on
    the bench corpus (2 streams, calls interleaved call by call): bf16 calls of 128 texts 10% faster,
    float32 ones of 1,024 ~3%, calls of 32 texts unchanged.
    """
    if token_budget < 1:
        raise ValueError(f"token_budget must be at least 1, got [{token_budget}]")
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, got [{max_batch}]")
    if streams < 1:
        raise ValueError(f"streams must be at least 1, got [{streams}]")
    order = sorted(range(len(lengths)), key=lambda i: (int(lengths[i]), i))
    groups: list[list[int]] = []
    current: list[int] = []
    real = 0  # the current group's tokens
    for i in order:
        # sorted ascending, so the newcomer is the group's longest item
        longest = max(int(lengths[i]), 1)
        cost = real + longest if packed else (len(current) + 1) * longest
        if current and (cost > token_budget or len(current) >= max_batch):
            groups.append(current)
            current, real = [], 0
        current.append(i)
        real += longest
    if current:
        groups.append(current)
    if streams > 1:
        _share_out(groups, lengths, streams, packed)
    return groups


def group_tokens(group: Sequence[int], lengths: Sequence[int], packed: bool) -> int:
    """The tokens a forward pass over ``group`` (sorted by length, as :func:`plan_batches` makes them)
    computes: its real tokens where the model packs them (``packed``: the fast CPU encoder runs its
    projections, norms and attention on real tokens only), else the padded ``len * longest``."""
    if packed:
        return sum(max(int(lengths[i]), 1) for i in group)
    return len(group) * max(int(lengths[group[-1]]), 1) if group else 0


def _share_out(groups: list[list[int]], lengths: Sequence[int], streams: int, packed: bool) -> None:
    """Split ``groups`` in place for ``streams`` (see :func:`plan_batches`): one group stays whole
    (it runs on all of torch's threads, unless another run has the streams), and so does a group
    under :data:`MIN_SPLIT_TOKENS`."""
    def tokens(group: list[int]) -> int:
        return group_tokens(group, lengths, packed)

    def halves(group: list[int]) -> list[list[int]]:
        """``group`` in two of the most equal sizes, or whole when small."""
        if len(group) < 2 or tokens(group) < MIN_SPLIT_TOKENS:
            return [group]
        sizes = [max(int(lengths[i]), 1) for i in group]
        if packed:  # the first k items' tokens against the rest's
            before = list(itertools.accumulate(sizes))
            cut = min(range(1, len(group)), key=lambda k: max(before[k - 1], before[-1] - before[k - 1]))
        else:  # sorted by length: a part's longest item is its last
            cut = min(range(1, len(group)), key=lambda k: max(k * sizes[k - 1], (len(group) - k) * sizes[-1]))
        return [group[:cut], group[cut:]]

    if len(groups) < 2:
        return
    while len(groups) % streams:
        _, k = max((tokens(group), k) for k, group in enumerate(groups))
        parts = halves(groups[k])
        if len(parts) == 1:
            break
        groups[k:k + 1] = parts
    groups[-streams:] = [part for group in groups[-streams:] for part in halves(group)]


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError)


def _free_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _run_group(
    group: list[int], forward: Callable[[list[int]], Sequence[T]], store: Callable[[list[int], list[T]], None]
) -> None:
    """``store(group, forward(group))``; on CUDA OOM split in half and retry each half."""
    try:
        outputs = forward(list(group))
    except Exception as exc:
        if not _is_oom(exc):
            raise
        del exc
        _free_cuda_cache()
        if len(group) == 1:
            raise BatchOutOfMemory(
                f"out of device memory on a single item (index {group[0]}); use a shorter input, a "
                "smaller model, or device=cpu"
            ) from None
        half = len(group) // 2
        _run_group(group[:half], forward, store)
        _run_group(group[half:], forward, store)
        return
    outputs = list(outputs)
    if len(outputs) != len(group):
        raise RuntimeError(f"forward returned {len(outputs)} outputs for a batch of {len(group)} items")
    store(group, outputs)


def run_batches(
    lengths: Sequence[int],
    forward: Callable[[list[int]], Sequence[T]],
    *,
    token_budget: int = 2048,
    max_batch: int = 256,
    progress: bool | None = None,
    desc: str = "",
    streams: int = 1,
    packed: bool = False,
) -> list[T]:
    """Run ``forward`` over token-budgeted groups of item indices; outputs in input order.

    ``lengths[i]`` is item ``i``'s token count; ``forward(indices)`` returns one output per index
    (in the order given). On interrupt, :class:`InferenceInterrupted` carries in ``partial`` the
    list of outputs with ``None`` for the items not finished, and ``rows_done`` their count.
    ``streams`` > 1 (CPU models only: no out-of-memory splitting there) runs that many groups at
    once on worker threads (see the module's notes); ``forward`` must then be thread-safe. ``packed``:
    ``forward`` runs a group's real tokens only, so the budget counts those (:func:`plan_batches`).
    """
    import torch

    n = len(lengths)
    groups = plan_batches(lengths, token_budget=token_budget, max_batch=max_batch, streams=streams, packed=packed)
    results: list[T | None] = [None] * n
    if progress is None:
        show: bool | None = None if n >= PROGRESS_THRESHOLD and not in_worker() and current_progress() is None \
            else False
    else:
        show = progress
    bar = RunProgress(n, desc or "", show=show, unit="item", leave=True) if show is not False and n else None
    done = 0

    def store(indices: list[int], outputs: list[T]) -> None:
        nonlocal done
        for index, output in zip(indices, outputs):
            results[index] = output
        done += len(indices)
        if bar is not None:
            bar.advance(len(indices))

    try:
        pool = pool_for(streams, max(1, torch.get_num_threads() // streams)) if streams > 1 else None
        # a lone group runs here on all of torch's threads, unless another run has the streams
        if pool is not None and (len(groups) > 1 or pool.busy):
            _run_streams(groups, forward, store, pool)
        else:
            with torch.inference_mode():
                for group in groups:
                    if stop_requested():
                        raise Cancelled(f"stopped after {done} of {n} items: the caller gave up")
                    _run_group(group, forward, store)
    except KeyboardInterrupt as exc:
        if isinstance(exc, InferenceInterrupted):
            raise
        raise InferenceInterrupted(done, n, results) from None
    finally:
        if bar is not None:
            bar.close()
    return results  # type: ignore[return-value]


def _run_streams(groups: list[list[int]], forward: Callable[[list[int]], Sequence[T]],
                 store: Callable[[list[int], list[T]], None], pool: StreamPool) -> None:
    """The groups on the process's shared streams (:mod:`.stream_pool`, each with its share of torch's
    threads), all queued at once behind those of every run started before; a stop or an interrupt
    drops the groups not started. Results stored from this thread."""
    import torch

    run = next_run()

    def job(group: list[int]) -> Callable[[], list[T]]:
        def call() -> list[T]:
            with torch.inference_mode():  # thread-local: entered on the stream
                outputs = list(forward(list(group)))
            if len(outputs) != len(group):
                raise RuntimeError(f"forward returned {len(outputs)} outputs for a batch of {len(group)} items")
            return outputs
        return call

    pending: dict[Future[list[T]], list[int]] = {
        pool.submit((run, index), job(group)): group for index, group in enumerate(groups)}
    try:
        stopped = False
        while pending:
            finished, _ = wait(pending, timeout=STOP_POLL_S, return_when=FIRST_COMPLETED)
            if not stopped and stop_requested():
                stopped = True
                for future in pending:  # the groups not started yet never run; those running finish
                    future.cancel()
            for future in finished:
                group = pending.pop(future)
                if not future.cancelled():
                    store(group, future.result())
        if stopped:
            raise Cancelled("stopped between batches: the caller gave up")
    except KeyboardInterrupt:
        # keep what the batches still running finish: the interrupt's partial result has them
        for future in pending:
            future.cancel()
        for future, group in pending.items():
            if not future.cancelled() and future.exception() is None:
                store(group, future.result())
        raise
    except BaseException:
        for future in pending:
            future.cancel()
        raise
