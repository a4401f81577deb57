"""Reading ``df.infer.run`` results: which columns hold the results, and one row's values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..frames import DEFAULT_TARGET_FIELD as DEFAULT_PREFIX


def as_frame(result: Any) -> pd.DataFrame:
    """A DataFrame from what ``df.infer.run`` returned, one ``_infer`` result (a dict), or a list of them."""
    if isinstance(result, pd.DataFrame):
        return result
    if isinstance(result, pd.Series):
        return result.to_frame().T  # one row (e.g. df.loc[label])
    if isinstance(result, Mapping):
        return pd.DataFrame([dict(result)])
    if isinstance(result, list) and all(isinstance(r, Mapping) for r in result):
        return pd.DataFrame([dict(r) for r in result])
    raise TypeError(
        f"result must be what df.infer.run returned (a DataFrame), an _infer result dict or a list of them, "
        f"found {type(result).__name__}")


def find_prefix(frame: pd.DataFrame, leaf: str) -> str | None:
    """The target-field prefix of the column ``<prefix>.<leaf>`` (``""`` for a bare ``leaf``), or None."""
    columns = [str(c) for c in frame.columns]
    if f"{DEFAULT_PREFIX}.{leaf}" in columns:
        return DEFAULT_PREFIX
    if leaf in columns:
        return ""
    for c in columns:
        if c.endswith(f".{leaf}"):
            return c[: -len(leaf) - 1]
    return None


def column(prefix: str, leaf: str) -> str:
    return f"{prefix}.{leaf}" if prefix else leaf


def position_of(frame: pd.DataFrame, row: Any) -> int:
    """The position of index label ``row`` (the first one when labels repeat)."""
    if row not in frame.index:
        shown = row.item() if hasattr(row, "item") else row
        raise KeyError(f"row {shown!r} is not in the frame's index")
    loc = frame.index.get_loc(row)
    if isinstance(loc, slice):
        return int(loc.start)
    if not isinstance(loc, int):  # a boolean mask for repeated labels
        return int(pd.Series(loc).to_numpy().nonzero()[0][0])
    return loc


def cell(frame: pd.DataFrame, position: int, name: str | None) -> Any:
    """The value at ``position`` of column ``name`` (None for a missing column or a missing value)."""
    if name is None or name not in frame.columns:
        return None
    value = frame[name].iloc[position]
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    try:
        if pd.isna(value) is True:
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    return value


def row_options(frame: pd.DataFrame) -> list[tuple[str, int]]:
    """``(label text, position)`` pairs for a row selector."""
    return [(str(label), i) for i, label in enumerate(frame.index)]
