"""Atomic JSON persistence of the engine's state under its home directory.

One JSON file per object (``<home>/<kind>/<id>.json``). Writes go to a temporary
file in the same directory, are fsynced and then ``os.replace``d over the target,
so a crash never leaves a half-written object and a reader never sees one.
With no home the store keeps everything in memory.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote, unquote


def atomic_write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(value, fh, ensure_ascii=False, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class JsonStore:
    """A keyed collection of JSON documents, in memory and optionally on disk."""

    def __init__(self, home: Path | None, kind: str) -> None:
        self._dir = home / kind if home is not None else None
        self._items: dict[str, Any] = {}
        if self._dir is not None and self._dir.is_dir():
            for file in sorted(self._dir.glob("*.json")):
                if file.name.startswith(".tmp-"):
                    continue
                with open(file, encoding="utf-8") as fh:
                    self._items[unquote(file.stem)] = json.load(fh)

    def _file(self, key: str) -> Path:
        assert self._dir is not None
        return self._dir / f"{quote(key, safe='')}.json"

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> Any:
        return self._items.get(key)

    def items(self) -> list[tuple[str, Any]]:
        return sorted(self._items.items())

    def put(self, key: str, value: Any) -> None:
        if self._dir is not None:
            atomic_write_json(self._file(key), value)
        self._items[key] = value

    def delete(self, key: str) -> None:
        if self._dir is not None:
            try:
                os.unlink(self._file(key))
            except FileNotFoundError:
                pass
        self._items.pop(key, None)
