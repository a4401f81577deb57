"""run_batches: length-sorted token-budgeted groups, input order, OOM split, interrupt, progress."""

from __future__ import annotations

import pytest
import torch

from es_infer_nb.errors import InferenceInterrupted
from es_infer_nb.models.nlp.batching import (MIN_SPLIT_TOKENS, BatchOutOfMemory, group_tokens, plan_batches,
                                             run_batches)

LENGTHS = [5, 120, 3, 64, 64, 7, 300, 1, 33, 200, 12, 12, 90]


class Recorder:
    """A fake forward: records each call's indices, answers ``("out", index)``."""

    def __init__(self, lengths, fail_above: int | None = None, interrupt_on_call: int | None = None):
        self.lengths = lengths
        self.calls: list[list[int]] = []
        self.fail_above = fail_above
        self.interrupt_on_call = interrupt_on_call
        self.grad_enabled: list[bool] = []
        self.inference_mode: list[bool] = []

    def __call__(self, indices: list[int]):
        self.grad_enabled.append(torch.is_grad_enabled())
        self.inference_mode.append(torch.is_inference_mode_enabled())
        if self.interrupt_on_call is not None and len(self.calls) == self.interrupt_on_call:
            raise KeyboardInterrupt
        padded = len(indices) * max(self.lengths[i] for i in indices)
        if self.fail_above is not None and padded > self.fail_above:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.calls.append(list(indices))
        return [("out", i) for i in indices]


def padded(lengths, group):
    return len(group) * max(lengths[i] for i in group)


def test_outputs_in_input_order():
    fwd = Recorder(LENGTHS)
    out = run_batches(LENGTHS, fwd, token_budget=256, progress=False)
    assert out == [("out", i) for i in range(len(LENGTHS))]
    # every index ran exactly once
    assert sorted(i for call in fwd.calls for i in call) == list(range(len(LENGTHS)))


@pytest.mark.parametrize("budget", [1, 50, 128, 256, 2048])
def test_groups_respect_the_token_budget(budget):
    fwd = Recorder(LENGTHS)
    run_batches(LENGTHS, fwd, token_budget=budget, progress=False)
    for call in fwd.calls:
        assert len(call) >= 1
        # a single item longer than the budget runs alone
        assert padded(LENGTHS, call) <= budget or len(call) == 1


def test_groups_are_length_sorted_and_filled():
    groups = plan_batches(LENGTHS, token_budget=256)
    flat = [LENGTHS[i] for g in groups for i in g]
    assert flat == sorted(LENGTHS)
    # greedy: adding the next group's first item would have broken the budget
    for group, nxt in zip(groups, groups[1:]):
        assert (len(group) + 1) * LENGTHS[nxt[0]] > 256


def test_max_batch_caps_group_size():
    lengths = [4] * 50
    fwd = Recorder(lengths)
    run_batches(lengths, fwd, token_budget=10_000, max_batch=8, progress=False)
    assert [len(c) for c in fwd.calls] == [8] * 6 + [2]


def test_zero_length_items_still_batch():
    lengths = [0, 0, 0]
    assert run_batches(lengths, Recorder(lengths), token_budget=2, progress=False) == [("out", 0), ("out", 1), ("out", 2)]


def test_empty_input():
    fwd = Recorder([])
    assert run_batches([], fwd, progress=True) == []
    assert fwd.calls == []


def test_forward_runs_under_inference_mode():
    fwd = Recorder(LENGTHS)
    run_batches(LENGTHS, fwd, progress=False)
    assert fwd.inference_mode and all(fwd.inference_mode)
    assert not any(fwd.grad_enabled)


def test_cuda_oom_splits_the_batch_and_retries():
    lengths = [10] * 16
    fwd = Recorder(lengths, fail_above=40)  # only groups of <= 4 fit
    out = run_batches(lengths, fwd, token_budget=160, progress=False)
    assert out == [("out", i) for i in range(16)]
    assert [len(c) for c in fwd.calls] == [4, 4, 4, 4]
    assert sorted(i for c in fwd.calls for i in c) == list(range(16))


def test_cuda_oom_on_a_single_item_is_a_clear_error():
    lengths = [10, 500]
    fwd = Recorder(lengths, fail_above=100)
    with pytest.raises(BatchOutOfMemory, match="single item"):
        run_batches(lengths, fwd, token_budget=10_000, progress=False)


def test_other_errors_propagate_unchanged():
    def forward(indices):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_batches([1, 2], forward, progress=False)


def test_forward_must_answer_one_output_per_item():
    with pytest.raises(RuntimeError, match="2 items"):
        run_batches([1, 1], lambda idx: ["only one"], progress=False)


def test_interrupt_keeps_finished_batches():
    lengths = [10] * 12
    fwd = Recorder(lengths, interrupt_on_call=2)
    with pytest.raises(InferenceInterrupted) as info:
        run_batches(lengths, fwd, token_budget=40, progress=False)  # groups of 4
    err = info.value
    assert isinstance(err, KeyboardInterrupt)
    assert (err.rows_done, err.rows_total) == (8, 12)
    finished = [i for c in fwd.calls for i in c]
    assert len(finished) == 8
    for i, value in enumerate(err.partial):
        assert value == (("out", i) if i in finished else None)


def test_interrupt_after_an_oom_split_keeps_the_finished_half():
    lengths = [10] * 8
    fwd = Recorder(lengths, fail_above=40, interrupt_on_call=1)
    with pytest.raises(InferenceInterrupted) as info:
        run_batches(lengths, fwd, token_budget=80, progress=False)
    assert info.value.rows_done == 4
    assert sum(v is not None for v in info.value.partial) == 4


def test_progress_bar(capsys):
    lengths = [3] * 20
    run_batches(lengths, Recorder(lengths), token_budget=15, progress=True, desc="embedding")
    err = capsys.readouterr().err
    assert "embedding" in err and "20/20" in err


def test_no_progress_bar_for_small_inputs_by_default(capsys):
    run_batches([3] * 5, Recorder([3] * 5), progress=None)
    assert capsys.readouterr().err == ""


def test_bad_budgets():
    with pytest.raises(ValueError, match="token_budget"):
        run_batches([1], Recorder([1]), token_budget=0)
    with pytest.raises(ValueError, match="max_batch"):
        run_batches([1], Recorder([1]), max_batch=0)


# -- CPU streams ------------------------------------------------------------------------------------


def test_streams_plan_an_even_share_of_groups_and_halve_the_last_ones() -> None:
    """On 2 streams a call of 3 budget-sized groups would leave one stream idle for a whole group: the
    largest is halved until the count is even; the last 2 groups (the longest texts, run last) are
    halved too, so the stream that finishes first takes a half. Halves are of equal padded size, not
    of equal counts. Every item once, shortest first; one group (it runs with all of torch's threads)
    and groups under MIN_SPLIT_TOKENS stay whole."""
    assert MIN_SPLIT_TOKENS == 1024
    lengths = [100] * 45  # 4,500 tokens: 3 groups of 1,500 on one stream
    assert [len(g) for g in plan_batches(lengths, token_budget=1500)] == [15, 15, 15]
    # the last of the 3 halved (700 + 800 tokens: under MIN_SPLIT_TOKENS, so the last two stay)
    assert [len(g) for g in plan_batches(lengths, token_budget=1500, streams=2)] == [15, 15, 7, 8]
    groups = plan_batches([100] * 60, token_budget=1500, streams=2)  # 4 groups: even, the last 2 halved
    assert [len(g) for g in groups] == [15, 15, 7, 8, 7, 8]
    assert [i for g in groups for i in g] == list(range(60))
    # 30 texts of 10 and 10 of 100 in one group of 4,000 padded tokens: cut between them (300 | 1,000)
    uneven = plan_batches([10] * 30 + [100] * 30, token_budget=4000, streams=2)
    assert [len(g) for g in uneven] == [30, 10, 10, 10]
    mixed = [(i * 37) % 97 + 1 for i in range(400)]
    for streams in (2, 3, 4):
        planned = plan_batches(mixed, token_budget=2048, streams=streams)
        assert sorted(i for g in planned for i in g) == list(range(400))
        assert [mixed[i] for g in planned for i in g] == sorted(mixed)
        assert all(padded(mixed, g) <= 2048 or len(g) == 1 for g in planned)
        assert len(planned) > len(plan_batches(mixed, token_budget=2048))
    assert plan_batches([100] * 10, token_budget=2048, streams=2) == [list(range(10))]  # one group
    assert plan_batches([5, 5, 5], token_budget=5, streams=2) == [[0], [1], [2]]  # single items
    assert [len(g) for g in plan_batches([20] * 30, token_budget=200, streams=2)] == [10, 10, 10]  # small
    with pytest.raises(ValueError, match="streams"):
        plan_batches([1], streams=0)



def test_a_packed_model_gets_groups_budgeted_by_their_real_tokens() -> None:
    """For a model that runs a batch's real tokens only (``packed``: the fast CPU encoder) a group's
    size is the sum of its lengths, not ``len * longest``: groups of mixed lengths fill the budget
    with real tokens; halves for the streams are of equal real tokens."""
    lengths = [10] * 30 + [100] * 30
    groups = plan_batches(lengths, token_budget=1000, packed=True)
    assert [sum(lengths[i] for i in g) for g in groups] == [1000, 1000, 1000, 300]
    assert [len(g) for g in groups] == [37, 10, 10, 3]  # 30 x 10 + 7 x 100 share the first
    assert all(group_tokens(g, lengths, True) <= 1000 for g in groups)
    assert [len(g) for g in plan_batches(lengths, token_budget=1000)] == [30, 10, 10, 10]  # padded: 300 | 1000
    assert group_tokens([0, 30], lengths, False) == 200 and group_tokens([0, 30], lengths, True) == 110
    mixed = [(i * 37) % 97 + 1 for i in range(400)]
    for streams in (1, 2, 4):
        planned = plan_batches(mixed, token_budget=2048, streams=streams, packed=True)
        assert [mixed[i] for g in planned for i in g] == sorted(mixed)
        assert all(group_tokens(g, mixed, True) <= 2048 or len(g) == 1 for g in planned)
    assert len(plan_batches(mixed, token_budget=2048, packed=True)) < len(plan_batches(mixed, token_budget=2048))
    # two groups (30 x 10 + 17 x 100 and 13 x 100 real tokens) on 2 streams: both halved, by real tokens
    halves = plan_batches(lengths, token_budget=2000, streams=2, packed=True)
    assert [group_tokens(g, lengths, True) for g in halves] == [1000, 1000, 600, 700]
    assert [len(g) for g in halves] == [37, 10, 6, 7]
    fwd = Recorder(mixed)
    assert run_batches(mixed, fwd, token_budget=512, progress=False, packed=True) == [("out", i) for i in range(400)]
    assert all(sum(mixed[i] for i in call) <= 512 for call in fwd.calls)


def test_streams_run_groups_on_worker_threads_in_input_order():
    import threading

    lengths = [(i * 7) % 23 + 1 for i in range(300)]
    seen: dict[str, tuple[int, bool]] = {}
    lock = threading.Lock()

    def forward(indices):
        with lock:
            seen[threading.current_thread().name] = (torch.get_num_threads(), torch.is_inference_mode_enabled())
        return [i * 10 for i in indices]

    threads_before = torch.get_num_threads()
    out = run_batches(lengths, forward, token_budget=64, streams=2)
    assert out == [i * 10 for i in range(300)]
    assert seen and all(name.startswith("es-infer-stream") for name in seen)
    assert all(inference for _threads, inference in seen.values())
    assert all(threads == max(1, threads_before // 2) for threads, _ in seen.values())
    assert torch.get_num_threads() == threads_before  # the caller's setting is untouched


def test_streams_propagate_errors_and_check_output_counts():
    def failing(indices):
        if 5 in indices:
            raise ValueError("bad item")
        return list(indices)

    with pytest.raises(ValueError, match="bad item"):
        run_batches([3] * 40, failing, token_budget=6, streams=2)
    with pytest.raises(RuntimeError, match="outputs for a batch"):
        run_batches([3] * 40, lambda idx: [0], token_budget=6, streams=2)


def test_streams_interrupt_keeps_finished_batches():
    calls = []

    def forward(indices):
        calls.append(indices)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return list(indices)

    with pytest.raises(InferenceInterrupted) as info:
        run_batches([2] * 60, forward, token_budget=4, streams=2)
    exc = info.value
    assert exc.rows_total == 60 and 0 < exc.rows_done < 60
    assert sum(v is not None for v in exc.partial) == exc.rows_done


def test_streams_leave_torchs_thread_count_as_they_found_it() -> None:
    """A streams run sets one thread per worker; torch.set_num_threads there also changes what threads
    created later start with, so without putting it back every later run (a deployment's next call, a
    new deployment's worker) would see one thread and run one stream. Checked from a new thread."""
    import threading

    before = torch.get_num_threads()
    if before < 2:
        pytest.skip("one torch thread: no streams to run")
    seen_in_workers: list[int] = []

    def forward(indices: list[int]) -> list[int]:
        seen_in_workers.append(torch.get_num_threads())
        return [i * 2 for i in indices]

    out = run_batches([5] * 40, forward, streams=2, token_budget=20)
    assert out == [i * 2 for i in range(40)]
    assert seen_in_workers and set(seen_in_workers) == {max(1, before // 2)}
    later: list[int] = []
    worker = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
    worker.start()
    worker.join()
    assert later == [before] and torch.get_num_threads() == before
