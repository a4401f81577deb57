"""A batch of ingest documents held as columns: one array per leaf field path.

The column-at-a-time executor (:mod:`.columnar`) keeps the documents of a batch as a
:class:`Table`: for every dotted leaf path (``user.age``) an array of values and a ``present``
mask (the field exists in that document; an object column may hold JSON ``null`` where
present). The nesting is implied by the dots, as a DataFrame's dotted columns are. Two rules keep
it equal to the documents it stands for:

* in one row, a path and a strict prefix of it are never both present (``a`` is an object
  there, or ``a.b`` does not exist); an emptied object is the leaf value ``{}`` at its path;
* a non-empty object value only sits in a column the input had (a DataFrame column of dicts,
  kept whole as the per-document path keeps it).

Operations that could break a rule for a row (writing under a present scalar, moving an object)
are reported to the caller as *trouble* for those rows; the executor then hands them to the
per-document path. :meth:`Table.sources` turns rows back into ``_source`` dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from .document import clone

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Column:
    """Values (typed ``float64`` / ``int64`` / ``bool`` or Python ``object``) and where they exist.

    ``owned`` False: ``values`` is shared (a DataFrame's), copied before the first change.
    ``strings``: every present value is a ``str`` (no dict or list to look into). ``consts``: the only
    values ever written, when the column holds nothing but these strings (cheap output). ``arrow``: the
    values as an Arrow string array (a DataFrame's); the Python ``values`` are made from it only when
    something asks for them.
    """

    __slots__ = ("_values", "present", "owned", "strings", "consts", "arrow")

    def __init__(self, values: np.ndarray | None, present: np.ndarray, owned: bool = True, strings: bool = False,
                 consts: frozenset[str] | None = None, arrow: Any = None) -> None:
        self._values = values
        self.present = present
        self.owned = owned
        self.strings = strings
        self.consts = consts
        self.arrow = arrow

    @property
    def values(self) -> np.ndarray:
        if self._values is None:
            self._values = self.arrow.to_numpy(zero_copy_only=False).astype(object, copy=False)
        return self._values

    @values.setter
    def values(self, values: np.ndarray) -> None:
        self._values = values

    @property
    def kind(self) -> str:
        return "O" if self._values is None else self._values.dtype.kind

    def python(self, idx: np.ndarray) -> list[Any]:
        """The Python values at ``idx`` (``float`` / ``int`` / ``bool`` / objects as stored)."""
        return self.values[idx].tolist()


def scalar_kind(value: Any) -> str:
    """The typed kind a Python scalar can live in (``O`` for anything else)."""
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int):
        return "i" if INT64_MIN <= value <= INT64_MAX else "O"
    if isinstance(value, float):
        return "f"
    return "O"


_DTYPES = {"f": np.float64, "i": np.int64, "b": np.bool_, "O": object}


def typed_array(values: list[Any]) -> np.ndarray:
    """An array keeping every value's Python type: typed when all share one kind, else ``object``."""
    kinds = {scalar_kind(v) for v in values}
    if len(kinds) == 1:
        (kind,) = kinds
        if kind != "O":
            return np.array(values, dtype=_DTYPES[kind])
    return object_array(values)


def object_array(values: Iterable[Any]) -> np.ndarray:
    """An ``object`` array holding each value as it is (lists stay list elements, never a dimension)."""
    items = values if isinstance(values, list) else list(values)
    out = np.empty(len(items), dtype=object)
    for i, v in enumerate(items):
        out[i] = v
    return out


def _empty(kind: str, n: int) -> np.ndarray:
    if kind == "O":
        return np.full(n, None, dtype=object)
    return np.zeros(n, dtype=_DTYPES[kind])


def is_prefix(prefix: str, path: str) -> bool:
    return path.startswith(prefix) and len(path) > len(prefix) and path[len(prefix)] == "."


@dataclass
class Table:
    n: int
    cols: dict[str, Column] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)

    # -- where things are ----------------------------------------------------------------------
    def exists(self, path: str) -> np.ndarray:
        """Rows where ``path`` is a field (a leaf or an object); only meaningful without trouble."""
        out = self.sub_present(path)
        col = self.cols.get(path)
        if col is not None:
            out |= col.present
        return out

    def sub_present(self, path: str) -> np.ndarray:
        """Rows where ``path`` is an object (some column under it is present)."""
        out = np.zeros(self.n, dtype=bool)
        for name, col in self.cols.items():
            if is_prefix(path, name):
                out |= col.present
        return out

    def prefix_present(self, path: str) -> np.ndarray:
        """Rows where a strict prefix of ``path`` holds a value (a scalar, null, list, or an object the
        table does not split): a path through it is outside what the columns describe."""
        out = np.zeros(self.n, dtype=bool)
        parts = path.split(".")
        for j in range(1, len(parts)):
            col = self.cols.get(".".join(parts[:j]))
            if col is not None:
                out |= col.present
        return out

    def object_values(self, path: str) -> np.ndarray:
        """Rows where the leaf at ``path`` is a dict or a list (values the per-document path walks into)."""
        col = self.cols.get(path)
        out = np.zeros(self.n, dtype=bool)
        if col is None or col.kind != "O" or col.strings:
            return out
        idx = np.flatnonzero(col.present)
        if idx.size:
            vals = col.values[idx]
            out[idx] = [isinstance(v, (dict, list)) for v in vals]
        return out

    def none_values(self, path: str) -> np.ndarray:
        """Rows where the leaf at ``path`` is present and null."""
        col = self.cols.get(path)
        if col is None or col.kind != "O" or col.strings:
            return np.zeros(self.n, dtype=bool)
        return col.present & np.equal(col.values, None)

    # -- changes -------------------------------------------------------------------------------
    def write(self, path: str, rows: np.ndarray, values: Any) -> None:
        """Set the leaf ``path`` in ``rows`` (a bool mask) to ``values`` (a scalar, or an array
        aligned with ``np.flatnonzero(rows)``); an object there is replaced, as ``Doc.set`` does."""
        idx = np.flatnonzero(rows)
        if idx.size == 0:
            return
        for name, col in list(self.cols.items()):
            if is_prefix(path, name) or is_prefix(name, path):
                # an object there is replaced; an emptied parent ({}) gets the field (callers hand off
                # rows where a prefix holds anything else)
                col.present[idx] = False
                self.touched.add(name)
        if isinstance(values, np.ndarray):
            kind = values.dtype.kind if values.dtype.kind in "fibO" else "O"
            if kind != values.dtype.kind:
                values = values.astype(object)
        else:
            kind = scalar_kind(values)
        full = idx.size == self.n
        col = self.cols.get(path)
        others = None if col is None or full else col.present & ~rows
        alone = others is None or not others.any()  # nothing else in the column stays
        text = isinstance(values, str)
        consts = (frozenset([values]) if alone else (col.consts | {values}) if col.consts is not None else None) \
            if text else None
        strings = text and (alone or col.strings)
        if full and (isinstance(values, np.ndarray) or kind != "O"):
            # every row: the values become the column (arrays handed to write are the caller's own)
            data = values if isinstance(values, np.ndarray) else np.full(self.n, values, dtype=_DTYPES[kind])
            new = Column(data, np.ones(self.n, dtype=bool), owned=data.flags.writeable, strings=strings, consts=consts)
            if col is None:
                self._insert(path, new)
            else:
                self.cols[path] = new
            self.touched.add(path)
            return
        if col is None:
            col = Column(_empty(kind, self.n), np.zeros(self.n, dtype=bool))
            self._insert(path, col)
        elif not col.owned:
            col.values, col.owned = col.values.copy(), True
        if col.kind != kind:
            col.values = col.values.astype(object) if not alone else _empty(kind, self.n)
        if isinstance(values, (dict, list)):
            for i in idx.tolist():
                col.values[i] = clone(values)
        else:
            col.values[idx] = values
        col.present[idx] = True
        col.strings, col.consts, col.arrow = strings, consts, None
        self.touched.add(path)

    def move(self, src: str, dst: str, rows: np.ndarray) -> None:
        """``rename``: the leaf ``src`` of ``rows`` goes to ``dst`` (the column itself when it moves whole,
        so a DataFrame's array is not copied)."""
        col = self.cols.get(src)
        if col is None:
            return
        if dst not in self.cols and not (col.present & ~rows).any():
            for name, other in self.cols.items():
                if is_prefix(dst, name) or is_prefix(name, dst):
                    other.present[rows] = False
                    self.touched.add(name)
            del self.cols[src]
            self.remove(src, rows)  # an emptied parent object stays as {}
            self._insert(dst, col)
            self.touched.update((src, dst))
            return
        values = col.values[np.flatnonzero(rows)]
        self.remove(src, rows)
        self.write(dst, rows, values)

    def remove(self, path: str, rows: np.ndarray) -> None:
        """Remove the field ``path`` (a leaf or a whole object) from ``rows``; a parent object left
        without fields stays, as ``{}``."""
        idx = np.flatnonzero(rows)
        if idx.size == 0:
            return
        for name, col in self.cols.items():
            if name == path or is_prefix(path, name):
                col.present[idx] = False
                self.touched.add(name)
        if "." in path:
            parent = path.rsplit(".", 1)[0]
            emptied = rows & ~self.sub_present(parent)
            if emptied.any():
                self.write(parent, emptied, {})
        self._forget_empty(path)

    def _forget_empty(self, path: str) -> None:
        for name in [name for name in self.cols if name == path or is_prefix(path, name)]:
            if not self.cols[name].present.any():
                del self.cols[name]  # a field gone from every row comes back at the end of its object

    def _insert(self, path: str, col: Column) -> None:
        """Add a column where the field lands in a document's key order: after the last column of its
        deepest existing parent object, else at the end."""
        parts = path.split(".")
        names = list(self.cols)
        for j in range(len(parts) - 1, 0, -1):
            parent = ".".join(parts[:j])
            after = [k for k, name in enumerate(names) if is_prefix(parent, name)]
            if after:
                pos = after[-1] + 1
                items = list(self.cols.items())
                items.insert(pos, (path, col))
                self.cols = dict(items)
                return
        self.cols[path] = col

    # -- back to documents -----------------------------------------------------------------------
    def sources(self, idx: Iterable[int]) -> list[dict[str, Any]]:
        """The ``_source`` of each row in ``idx`` (values copied, so the caller may change them)."""
        rows = np.asarray(list(idx), dtype=np.int64)
        out: list[dict[str, Any]] = [{} for _ in range(rows.size)]
        if rows.size == 0:
            return out
        for name, col in self.cols.items():
            mask = col.present[rows]
            if not mask.any():
                continue
            where = np.flatnonzero(mask)
            values = col.values[rows[where]].tolist()
            parts = name.split(".")
            for k, value in zip(where.tolist(), values):
                node = out[k]
                for part in parts[:-1]:
                    node = node.setdefault(part, {})
                node[parts[-1]] = clone(value)
        return out


def table_from_sources(sources: list[dict[str, Any]]) -> Table | None:
    """A table of JSON ``_source`` documents (``None`` when a key has a dot in it, is empty or starts
    with ``_``: the columns could not tell such a key from a nested path)."""
    leaves: dict[str, dict[int, Any]] = {}

    def walk(node: dict[str, Any], prefix: str, row: int) -> bool:
        for key, value in node.items():
            if not isinstance(key, str) or not key or "." in key or (not prefix and key.startswith("_")):
                return False
            path = prefix + key
            if isinstance(value, dict) and value:
                if not walk(value, path + ".", row):
                    return False
            else:
                leaves.setdefault(path, {})[row] = value
        return True

    for row, src in enumerate(sources):
        if not isinstance(src, dict) or not walk(src, "", row):
            return None
    n = len(sources)
    table = Table(n)
    for path, by_row in leaves.items():
        present = np.zeros(n, dtype=bool)
        rows = np.fromiter(by_row, dtype=np.int64, count=len(by_row))
        present[rows] = True
        found = typed_array(list(by_row.values()))
        values = _empty(found.dtype.kind, n)
        if found.dtype == object:
            for i, v in zip(rows.tolist(), found.tolist()):
                values[i] = v
        else:
            values[rows] = found
        table.cols[path] = Column(values, present)
    return table
