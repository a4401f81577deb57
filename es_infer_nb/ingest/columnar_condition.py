"""``if`` conditions evaluated over a :class:`~.columnar_table.Table`, a mask at a time.

The condition tree :mod:`.condition` parses is walked once per batch: a ``ctx.a?.b`` chain reads
the column ``a.b`` (an absent row is ``null`` or a null-dereference error exactly as the
per-document walk decides), numeric comparisons of typed columns are numpy comparisons, and
everything else goes value by value through :mod:`.condition`'s own ``_eval`` / ``_call`` (one
implementation of the semantics). Rows whose outcome is an error, or that the columns cannot
decide (a path through a scalar or a list), come back as *trouble*: the executor hands them to the
per-document path, which raises the exact error. Conditions on metadata, ``_ingest`` or computed
keys are evaluated row by row with :meth:`Condition.evaluate` over each row's ``ctx``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import ApiError
from .columnar_table import Table
from .condition import Condition, _call, _eval

#: a row where the path is an object (a dict the table keeps as columns)
OBJECT = object()

_SAFE_INT = 2**53


class _Unsupported(Exception):
    """The shape is not one the columns evaluate; fall back to row-by-row evaluation."""


@dataclass
class _Const:
    value: Any


def evaluate(cond: Condition, table: Table, idx: np.ndarray,
             contexts: Callable[[np.ndarray], list[dict[str, Any]]]) -> tuple[np.ndarray, np.ndarray]:
    """(result, trouble) for the rows ``idx`` of ``table`` (both aligned with ``idx``)."""
    m = idx.size
    try:
        value, err = _node(cond.tree, table, idx, cond.source)
    except _Unsupported:
        return _per_row(cond, idx, contexts)
    ok, bad = _as_bool(value, m)
    trouble = err | bad
    return ok & ~trouble, trouble


def _per_row(cond: Condition, idx: np.ndarray,
             contexts: Callable[[np.ndarray], list[dict[str, Any]]]) -> tuple[np.ndarray, np.ndarray]:
    ok = np.zeros(idx.size, dtype=bool)
    trouble = np.zeros(idx.size, dtype=bool)
    for k, ctx in enumerate(contexts(idx)):
        try:
            ok[k] = cond.evaluate(ctx)
        except Exception:  # noqa: BLE001 - the per-document path raises it again, exactly
            trouble[k] = True
    return ok, trouble


def _path(node: Any) -> list[tuple[str, bool]] | None:
    steps: list[tuple[str, bool]] = []
    while node[0] == "get":
        key = node[2]
        if key[0] != "lit" or not isinstance(key[1], str):
            return None
        steps.append((key[1], node[3]))
        node = node[1]
    if node[0] != "ctx" or not steps:
        return None
    return steps[::-1]


def _read(steps: list[tuple[str, bool]], table: Table, idx: np.ndarray) -> tuple[Any, np.ndarray]:
    keys = [k for k, _ in steps]
    if keys[0].startswith("_") or any("." in k or not k for k in keys):
        raise _Unsupported
    path = ".".join(keys)
    m = idx.size
    err = table.prefix_present(path)[idx]
    sub = table.sub_present(path)[idx]
    leaf = table.cols.get(path)
    here = np.zeros(m, dtype=bool)
    if leaf is not None:
        here = leaf.present[idx]
        vals = leaf.values[idx]
        if leaf.kind != "O" and here.all() and not err.any() and not sub.any():
            return vals, err
    out = np.full(m, None, dtype=object)
    if leaf is not None and here.any():
        out[here] = vals[here].astype(object) if vals.dtype != object else vals[here]
    out[sub] = OBJECT
    absent = ~(here | sub | err)
    if len(keys) > 1 and absent.any():
        reached = np.ones(m, dtype=bool)  # every object before this step exists
        for i in range(len(keys) - 1):
            exists = table.sub_present(".".join(keys[: i + 1]))[idx]
            if not all(safe for _, safe in steps[i + 1:]):
                err |= absent & reached & ~exists  # the next access dereferences null
            reached &= exists
    return out, err


def _node(node: Any, table: Table, idx: np.ndarray, source: str) -> tuple[Any, np.ndarray]:
    m = idx.size
    op = node[0]
    none = np.zeros(m, dtype=bool)
    if op == "lit":
        return _Const(node[1]), none
    if op == "get":
        steps = _path(node)
        if steps is None:
            raise _Unsupported
        return _read(steps, table, idx)
    if op == "not":
        value, err = _node(node[1], table, idx, source)
        ok, bad = _as_bool(value, m)
        return ~ok, err | bad
    if op in ("and", "or"):
        left, err = _node(node[1], table, idx, source)
        a, bad = _as_bool(left, m)
        err = err | bad
        right, err_b = _node(node[2], table, idx, source)
        b, bad_b = _as_bool(right, m)
        need = (a if op == "and" else ~a) & ~err
        err = err | (need & (err_b | bad_b))
        return (a & b) if op == "and" else (a | b), err
    if op == "cmp":
        left, err_a = _node(node[2], table, idx, source)
        right, err_b = _node(node[3], table, idx, source)
        return _compare(node[1], left, right, m, source, err_a | err_b)
    if op == "call":
        target, err_t = _node(node[1], table, idx, source)
        arg, err_a = _node(node[3], table, idx, source)
        err = err_t | err_a

        def one(t: Any, a: Any) -> Any:
            if t is OBJECT or a is OBJECT:
                raise _Undecided
            return _call(("call", ("lit", t), node[2], ("lit", a), node[4]), {}, source)

        return _elementwise(one, target, arg, m, err)
    raise _Unsupported


class _Undecided(Exception):
    pass


def _values(value: Any, m: int) -> list[Any]:
    if isinstance(value, _Const):
        return [value.value] * m
    return value.tolist()


def _elementwise(fn: Callable[[Any, Any], Any], a: Any, b: Any, m: int, err: np.ndarray) -> tuple[Any, np.ndarray]:
    if isinstance(a, _Const) and isinstance(b, _Const):
        try:
            return _Const(fn(a.value, b.value)), err
        except (ApiError, _Undecided):
            return _Const(None), np.ones(m, dtype=bool)
    out = np.empty(m, dtype=object)
    err = err.copy()
    for k, (x, y) in enumerate(zip(_values(a, m), _values(b, m))):
        if err[k]:
            continue
        try:
            out[k] = fn(x, y)
        except (ApiError, _Undecided):
            err[k] = True
    return out, err


def _numeric(value: Any) -> str | None:
    """``f`` / ``i`` when ``value`` is a typed numeric array or a number numpy compares exactly."""
    if isinstance(value, _Const):
        v = value.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        if isinstance(v, int):
            return "i" if -_SAFE_INT < v < _SAFE_INT else None
        return "f"
    if value.dtype.kind in "fi":
        return value.dtype.kind
    return None


_NUMPY_OPS = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
              ">=": np.greater_equal}


def _compare(sym: str, a: Any, b: Any, m: int, source: str, err: np.ndarray) -> tuple[Any, np.ndarray]:
    ka, kb = _numeric(a), _numeric(b)
    if ka is not None and kb is not None and not (isinstance(a, _Const) and isinstance(b, _Const)):
        # typed numbers: numpy decides as Python does (ints and floats within 2**53 of each other)
        mixed = {ka, kb} == {"i", "f"}
        if not mixed or all(isinstance(v, _Const) or v.dtype.kind == "f" or np.abs(v).max(initial=0) < _SAFE_INT
                            for v in (a, b)):
            x = a.value if isinstance(a, _Const) else a
            y = b.value if isinstance(b, _Const) else b
            return np.asarray(_NUMPY_OPS[sym](x, y), dtype=bool), err
    if sym in ("==", "!=") and not isinstance(a, _Const) and isinstance(b, _Const) and a.dtype.kind == "b" \
            and isinstance(b.value, bool):
        same = a == b.value
        return (same if sym == "==" else ~same), err

    def one(x: Any, y: Any) -> Any:
        if x is OBJECT or y is OBJECT:
            other = y if x is OBJECT else x
            if sym in ("==", "!=") and other is None:
                return sym == "!="
            raise _Undecided
        return _eval(("cmp", sym, ("lit", x), ("lit", y)), {}, source)

    return _elementwise(one, a, b, m, err)


def _as_bool(value: Any, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(value as a bool mask, rows where it is not a boolean)."""
    if isinstance(value, _Const):
        if isinstance(value.value, bool):
            return np.full(m, value.value), np.zeros(m, dtype=bool)
        return np.zeros(m, dtype=bool), np.ones(m, dtype=bool)
    if value.dtype.kind == "b":
        return value.astype(bool, copy=False), np.zeros(m, dtype=bool)
    if value.dtype.kind != "O":
        return np.zeros(m, dtype=bool), np.ones(m, dtype=bool)
    ok = np.fromiter((v is True for v in value), dtype=bool, count=m)
    bad = np.fromiter((not isinstance(v, bool) for v in value), dtype=bool, count=m)
    return ok, bad
