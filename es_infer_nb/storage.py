"""Atomic JSON persistence of the engine's state under its home directory.

One JSON file per object (``<home>/<kind>/<id>.json``). Writes go to a temporary
file in the same directory, are fsynced and then ``os.replace``d over the target,
so a crash never leaves a half-written object and a reader never sees one.
With no home the store keeps everything in memory.

One home, several engines (a server, ``es-infer request --home``, a notebook):
every write holds the home's lock (``fcntl.flock`` on ``<home>/.lock``, a few
milliseconds) and bumps a generation number kept in that file; a store re-reads
its directory before answering when the generation moved (read-through), so an
object deleted by one engine is gone in the others. Counters are merged as
deltas under the same lock (:mod:`es_infer_nb.stats`).

A state file that cannot be read costs only its own object: it is moved aside to
``<name>.corrupt`` with a :class:`CorruptStateWarning` and a log record naming it
(relative to the home), and the rest is loaded.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

log = logging.getLogger("es_infer_nb.storage")

LOCK_FILE = ".lock"
TMP_PREFIX = ".tmp-"
#: how long a write waits for another engine holding the home's lock before giving up
LOCK_TIMEOUT_S = 60.0


class CorruptStateWarning(UserWarning):
    """A state file under an engine home could not be read; it was moved aside (``.corrupt``)."""


class HomeLockTimeout(RuntimeError):
    """Another process held an engine home's lock for longer than :data:`LOCK_TIMEOUT_S`."""


# -- the home's lock ----------------------------------------------------------------------------------


class HomeLock:
    """The write lock of one home, shared by the engines of one process on that home: a thread
    ``RLock`` (re-entrant) around ``fcntl.flock`` on ``<home>/.lock``, whose first bytes hold the
    generation number (bumped by every write) and the holder's process id."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._path = home / LOCK_FILE
        self._rlock = threading.RLock()
        self._depth = 0
        self._pid = -1
        self._fd = -1
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._pid = os.getpid()
        self._rlock = threading.RLock()
        self._depth = 0

    def _file(self) -> int:
        if self._pid != os.getpid():  # a forked child: its own open file, or flock would be shared
            self._open()
        return self._fd

    def __del__(self) -> None:
        try:
            if self._fd >= 0 and self._pid == os.getpid():
                os.close(self._fd)
        except (OSError, AttributeError):
            pass

    @contextmanager
    def write(self) -> Iterator[None]:
        """Hold the home exclusively (re-entrant within a thread)."""
        fd = self._file()
        with self._rlock:
            if self._depth == 0:
                self._acquire(fd)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def _acquire(self, fd: int) -> None:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        pause = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._read()[1]
                    raise HomeLockTimeout(
                        f"the engine home [{self.home.name}] has been locked by process [{holder}] for more than "
                        f"{LOCK_TIMEOUT_S:.0f} s; stop that process or use another home") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
        generation = self._read()[0]
        os.pwrite(fd, f"{generation:<20d} {os.getpid():<12d}\n".encode("ascii"), 0)

    def _read(self) -> tuple[int, int]:
        raw = os.pread(self._file(), 40, 0).split()
        try:
            return int(raw[0]), int(raw[1])
        except (IndexError, ValueError):
            return 0, 0

    def generation(self) -> int:
        """The home's generation number: it moves whenever an engine wrote an object."""
        return self._read()[0]

    def bump(self) -> int:
        """Move the generation on (call while holding :meth:`write`); returns the new number."""
        generation = self._read()[0] + 1
        os.pwrite(self._file(), f"{generation:<20d} {os.getpid():<12d}\n".encode("ascii"), 0)
        return generation


_LOCKS: weakref.WeakValueDictionary[str, HomeLock] = weakref.WeakValueDictionary()
_LOCKS_LOCK = threading.Lock()


def home_lock(home: Path) -> HomeLock:
    """The process's :class:`HomeLock` for ``home`` (one per resolved path)."""
    key = os.path.realpath(home)
    with _LOCKS_LOCK:
        found = _LOCKS.get(key)
        if found is None:
            home.mkdir(parents=True, exist_ok=True)
            found = _LOCKS[key] = HomeLock(home)
        return found


def writing(home: Path | None) -> AbstractContextManager[None]:
    """Hold ``home``'s lock for a group of writes (nothing for an in-memory engine)."""
    return home_lock(home).write() if home is not None else nullcontext()


# -- files ----------------------------------------------------------------------------------------------


def atomic_write_json(path: Path, value: Any, *, mode: int | None = None) -> None:
    """Write ``value`` as compact JSON, atomically (see :func:`atomic_write_text`)."""
    atomic_write_text(path, json.dumps(value, ensure_ascii=False, separators=(",", ":")), mode=mode, suffix=".json")


def atomic_write_text(path: Path, text: str, *, mode: int | None = None, suffix: str = "") -> None:
    """Write a file atomically: a temporary file in the same folder (``mode`` set before any byte is
    written), flushed and fsynced, then renamed over ``path``; the temporary file never outlives a failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def relative(path: Path, home: Path | None) -> str:
    """``path`` as it is named in warnings and logs: relative to the home, never absolute."""
    if home is not None:
        try:
            return path.relative_to(home).as_posix()
        except ValueError:
            pass
    return path.name


def _aside(path: Path) -> Path:
    target = path.with_name(path.name + ".corrupt")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt.{n}")
        n += 1
    return target


def quarantine(path: Path, home: Path | None, problem: str) -> Path | None:
    """Move an unreadable state file aside (``<name>.corrupt``, never over an earlier one), with a
    :class:`CorruptStateWarning` and a log record naming it; returns where it went (None when it
    could not be moved)."""
    target: Path | None = _aside(path)
    try:
        os.replace(path, target)  # type: ignore[arg-type]
        where = f"moved aside to [{relative(target, home)}]"  # type: ignore[arg-type]
    except OSError as exc:
        target = None
        where = f"could not be moved aside ({exc.strerror or exc})"
    message = (f"es_infer_nb: state file [{relative(path, home)}] is unreadable ({problem}); it was {where} and "
               "the rest of the engine home is loaded")
    log.warning(message)
    warnings.warn(message, CorruptStateWarning, stacklevel=3)
    return target


class Unreadable(ValueError):
    """A state file's content is not what it should hold."""


def read_json(path: Path, check: Callable[[Any], bool] | None = None) -> Any:
    """A state file's JSON; raises :class:`Unreadable` (with a short reason) when it is empty, not
    UTF-8, not JSON, or fails ``check``; ``FileNotFoundError`` when it is gone."""
    data = path.read_bytes()
    if not data.strip():
        raise Unreadable("empty file")
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise Unreadable("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise Unreadable(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise Unreadable("invalid JSON: nested too deeply") from None
    if check is not None and not check(value):
        raise Unreadable(f"unexpected content ({type(value).__name__})")
    return value


def quarantine_if_unreadable(path: Path, home: Path | None, problem: str,
                             check: Callable[[Any], bool] | None = None) -> bool:
    """Under the home's lock, move ``path`` aside if it is still unreadable (another engine may have
    rewritten or removed it meanwhile); True when it is gone or was moved aside."""
    with writing(home):
        try:
            read_json(path, check)
            return False
        except FileNotFoundError:
            return True
        except (Unreadable, OSError):
            quarantine(path, home, problem)
            return True


def load_state_file(path: Path, home: Path | None, check: Callable[[Any], bool] | None = None,
                    default: Any = None) -> Any:
    """A single state file (stats, secrets): its JSON, or ``default`` when it is missing or unreadable
    (then moved aside under the home's lock, unless it was rewritten meanwhile)."""
    try:
        return read_json(path, check)
    except FileNotFoundError:
        return default
    except (Unreadable, OSError) as exc:
        if quarantine_if_unreadable(path, home, str(exc), check):
            return default
        return load_state_file(path, home, check, default)


def stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a rewritten file from the one read before (atomic writes give a new inode)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def remove_orphans(home: Path) -> list[str]:
    """Delete ``.tmp-*`` files left under ``home`` by writes a crash interrupted (call while holding
    the home's lock, so no write of this home is in flight); returns their relative paths."""
    removed: list[str] = []
    for root, dirs, files in os.walk(home):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith(TMP_PREFIX):
                path = Path(root) / name
                try:
                    path.unlink()
                    removed.append(relative(path, home))
                except OSError:
                    pass
    if removed:
        log.info("es_infer_nb: removed %d unfinished write(s) left by a crash: %s", len(removed), ", ".join(removed))
    return removed


# -- a keyed collection -----------------------------------------------------------------------------------


class JsonStore:
    """A keyed collection of JSON documents, in memory and optionally on disk (one file per key).

    With a home it reads through: before answering, it re-reads the files other engines on the same
    home changed (when the home's generation moved). ``check`` tells a well-formed document; a file
    that is not is moved aside (:func:`quarantine`) and its key is absent. ``on_change`` listeners are
    told the keys another engine added, changed or removed.
    """

    def __init__(self, home: Path | None, kind: str, *, check: Callable[[Any], bool] | None = None) -> None:
        self._home = home
        self._dir = home / kind if home is not None else None
        self._check = check
        self._items: dict[str, Any] = {}
        self._stamps: dict[str, tuple[int, int, int] | None] = {}
        self._listeners: list[Callable[[set[str]], None]] = []
        self._sync_lock = threading.RLock()
        self._lock = home_lock(home) if home is not None else None
        self._seen = -1
        self._written = False
        self.refresh()

    def on_change(self, listener: Callable[[set[str]], None]) -> None:
        """Call ``listener(keys)`` when a refresh finds keys changed by another engine."""
        self._listeners.append(listener)

    def refresh(self) -> None:
        """Re-read what another engine on this home changed since the last look (cheap when nothing did)."""
        if self._lock is None:
            return
        generation = self._lock.generation()
        if generation == self._seen:
            return
        bad: list[tuple[Path, str]] = []
        with self._sync_lock:
            if generation != self._seen:
                changed = self._scan(bad)
                self._seen = generation
            else:
                changed = set()
        for path, problem in bad:  # outside the store's lock: moving a file aside takes the home's
            if not quarantine_if_unreadable(path, self._home, problem, self._check):
                self._seen = -1  # rewritten meanwhile: read it at the next look
        if changed:
            for listener in list(self._listeners):
                listener(changed)

    def _scan(self, bad: list[tuple[Path, str]]) -> set[str]:
        assert self._dir is not None
        found: dict[str, Path] = {}
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            names = []
        for name in names:
            if name.endswith(".json") and not name.startswith(TMP_PREFIX):
                found[unquote(name[: -len(".json")])] = self._dir / name
        changed = {k for k in self._items if k not in found}
        for key in changed:
            self._items.pop(key, None)
            self._stamps.pop(key, None)
        for key, path in sorted(found.items()):
            now = stamp(path)
            if now is None or (key in self._items and self._stamps.get(key) == now):
                continue
            value = self._read(path, bad)
            if value is _GONE:
                if self._items.pop(key, _GONE) is not _GONE:
                    changed.add(key)
                self._stamps.pop(key, None)
                continue
            self._items[key] = value
            self._stamps[key] = now
            changed.add(key)
        return changed

    def _read(self, path: Path, bad: list[tuple[Path, str]]) -> Any:
        try:
            return read_json(path, self._check)
        except FileNotFoundError:
            return _GONE
        except (Unreadable, OSError) as exc:
            bad.append((path, str(exc)))
            return _GONE

    def _file(self, key: str) -> Path:
        assert self._dir is not None
        return self._dir / f"{quote(key, safe='')}.json"

    def __contains__(self, key: object) -> bool:
        self.refresh()
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        self.refresh()
        return iter(sorted(self._items))

    def __len__(self) -> int:
        self.refresh()
        return len(self._items)

    def get(self, key: str) -> Any:
        self.refresh()
        return self._items.get(key)

    def items(self) -> list[tuple[str, Any]]:
        self.refresh()
        return sorted(self._items.items())

    def ever_written(self) -> bool:
        """Whether this collection ever held a document (on disk: its folder exists), deleted since or not:
        what OpenSearch's "the index exists" means for ml-commons' messages."""
        self.refresh()
        return bool(self._items) or self._written or (self._dir is not None and self._dir.exists())

    def put(self, key: str, value: Any) -> None:
        self._written = True
        if self._lock is None:
            self._items[key] = value
            return
        with self._lock.write(), self._sync_lock:
            before = self._lock.generation()
            path = self._file(key)
            atomic_write_json(path, value)
            after = self._lock.bump()
            self._items[key] = value
            self._stamps[key] = stamp(path)
            if before == self._seen:
                self._seen = after

    def delete(self, key: str) -> None:
        if self._lock is None:
            self._items.pop(key, None)
            return
        with self._lock.write(), self._sync_lock:
            before = self._lock.generation()
            try:
                os.unlink(self._file(key))
            except FileNotFoundError:
                pass
            after = self._lock.bump()
            self._items.pop(key, None)
            self._stamps.pop(key, None)
            if before == self._seen:
                self._seen = after


_GONE: Any = object()


# -- start-up ---------------------------------------------------------------------------------------------


def clean_home(home: Path) -> list[str]:
    """At an engine's start: remove the ``.tmp-*`` files of writes a crash interrupted (under the
    home's lock, so no other engine's write is in flight)."""
    with writing(home):
        return remove_orphans(home)


def is_object(value: Any) -> bool:
    return isinstance(value, dict)


def is_string(value: Any) -> bool:
    return isinstance(value, str)


def is_endpoint_config(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("task_type"), str)
