"""Interrupt and resume long ``df.infer`` runs.

The runners stop cleanly on Ctrl-C (the notebook's stop button) and raise
:class:`es_infer_nb.InferenceInterrupted` with the rows they finished (always a prefix of the
rows). :func:`run_resumable` turns that into an exception whose ``partial`` is what the call
would have returned (unfinished rows marked with an ``error``) and whose ``resume()`` runs only
the rows not reached and returns the full result, equal to an uninterrupted run::

    try:
        out = df.infer.run("my-model")
    except es_infer_nb.InferenceInterrupted as exc:
        stopped = exc                  # stopped.partial: the finished rows, in place
    out = stopped.resume()             # the rest of the rows; may be interrupted and resumed again

The latest interrupted run is also kept here (:func:`last_interrupted`), so that
``%infer resume`` can continue it from any cell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from ..errors import InferenceInterrupted

__all__ = ["combine_results", "forget", "last_interrupted", "run_resumable"]

T = TypeVar("T")
Compute = Callable[[pd.DataFrame], pd.DataFrame]

_last: InferenceInterrupted | None = None


def last_interrupted() -> InferenceInterrupted | None:
    """The most recent interrupted ``df.infer`` run that was not resumed to the end (or ``None``)."""
    return _last


def forget() -> None:
    """Drop the remembered interrupted run (its ``partial`` frame is freed)."""
    global _last
    _last = None


def _nulls(like: pd.Series, n: int, index: pd.Index) -> pd.Series:
    """``n`` missing values with ``like``'s dtype (so that a concat keeps the dtype)."""
    dtype = like.dtype
    if isinstance(dtype, pd.ArrowDtype) or pd.api.types.is_extension_array_dtype(dtype):
        return pd.Series(pd.array([None] * n, dtype=dtype), index=index)
    if dtype.kind == "f":
        return pd.Series([float("nan")] * n, index=index, dtype=dtype)
    return pd.Series([None] * n, index=index, dtype=object)


def _merged_order(first: list[str], second: list[str]) -> list[str]:
    """``second``'s order, with names only in ``first`` placed after their predecessor there."""
    out = list(second)
    for pos, name in enumerate(first):
        if name in out:
            continue
        before = next((first[j] for j in range(pos - 1, -1, -1) if first[j] in out), None)
        out.insert(0 if before is None else out.index(before) + 1, name)
    return out


def combine_results(done: pd.DataFrame | None, more: pd.DataFrame) -> pd.DataFrame:
    """Result columns of consecutive row ranges, as one run over all the rows would give them.

    A column only the first part has and that holds no value there (the ``error`` column an
    interruption added, all null over the finished rows) is left out, as a single run would.
    """
    if done is None:
        return more
    names = [str(c) for c in done.columns]
    keep_first = [c for c in names if c in more.columns or done[c].notna().any()]
    order = _merged_order(keep_first, [str(c) for c in more.columns])
    parts = []
    for part in (done, more):
        cols = {}
        for name in order:
            if name in part.columns:
                cols[name] = part[name]
            else:
                other = more if part is done else done
                cols[name] = _nulls(other[name], len(part), part.index)
        parts.append(pd.DataFrame(cols, index=part.index))
    return pd.concat(parts, axis=0)


def _remember(exc: InferenceInterrupted | None) -> None:
    global _last
    _last = exc


def run_resumable(
    frame: pd.DataFrame,
    compute: Compute,
    finish: Callable[[pd.DataFrame, bool], T],
    *,
    prefix: bool = True,
    done: pd.DataFrame | None = None,
    what: str = "",
    key: Any = None,
) -> T:
    """``finish(compute(frame), True)``, resumable when ``compute`` is interrupted.

    ``compute`` maps rows to their result columns (same index); it raises
    ``InferenceInterrupted`` with ``rows_done`` and a ``partial`` result frame for all its rows.
    ``finish(results, final)`` shapes the answer (``final=False`` for an interrupted run's
    ``partial``, which must not modify the caller's frame). ``prefix=False`` says the
    finished rows of ``compute`` are not a prefix: a resume then runs every row again.
    ``done`` holds the results of the first ``len(done)`` rows from an earlier try; ``key``
    is kept on the exception (``_key``) so that a caller can recognise its own run.
    """
    start = 0 if done is None else len(done)
    try:
        more = compute(frame.iloc[start:])
    except InferenceInterrupted as exc:
        if not isinstance(exc.partial, pd.DataFrame):
            raise
        k = exc.rows_done if prefix else 0
        finished = combine_results(done, exc.partial.iloc[:k])
        shown = combine_results(finished, exc.partial.iloc[k:])
        total = len(frame)
        stopped = InferenceInterrupted(start + k, total, finish(shown, False))
        stopped.args = (
            f"{what or 'inference'} interrupted after {start + k} of {total} rows; the finished rows are kept "
            "in .partial; .resume() (or %infer resume) runs the remaining rows",
        )
        earlier = finished if start + k else None

        def resume() -> T:
            result = run_resumable(frame, compute, finish, prefix=prefix, done=earlier, what=what, key=key)
            if _last is stopped:
                forget()
            return result

        stopped._resume = resume
        stopped._key = key  # type: ignore[attr-defined]
        _remember(stopped)
        raise stopped from None
    return finish(combine_results(done, more), True)
