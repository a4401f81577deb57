"""Elasticsearch-shaped errors.

Every API failure is an :class:`ApiError` carrying the ES error ``type``, the
``reason`` and the HTTP ``status``. :meth:`ApiError.body` renders the exact
envelope Elasticsearch answers with::

    {"error": {"root_cause": [...], "type": ..., "reason": ...}, "status": 404}
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path
from typing import Any


class ApiError(Exception):
    """An error with the Elasticsearch error type, reason and HTTP status."""

    def __init__(
        self,
        type: str,
        reason: str,
        status: int = 400,
        *,
        caused_by: "ApiError | None" = None,
        metadata: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        simple: bool = False,
        es_exception: bool = True,
    ) -> None:
        super().__init__(reason)
        self.type = type
        self.reason = reason
        self.status = status
        self.caused_by = caused_by
        self.metadata = dict(metadata or {})
        self.headers = dict(headers or {})
        #: ES answers some REST-layer errors with a bare ``{"error": "<reason>"}`` string body
        self.simple = simple
        #: ``False`` for a plain Java exception (``IllegalArgumentException`` under a ``script_exception``):
        #: ES's ``root_cause`` stops at the innermost Elasticsearch exception above it
        self.es_exception = es_exception
        #: a Python-side hint (``did you mean [x]?``): in ``str()`` and the notebook's one line,
        #: never in :meth:`body` (the REST answer keeps Elasticsearch's exact reason)
        self.hint: str | None = None

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.type!r}, {self.reason!r})"

    def __str__(self) -> str:
        text = f"[{self.status}] {self.type}: {self.reason}"
        return f"{text} ({self.hint})" if self.hint else text

    def suggest(self, name: str, candidates: Any) -> "ApiError":
        """Set :attr:`hint` to the ids closest to ``name`` (difflib) when this is a 404 naming
        ``[name]``; returns self (to ``raise exc.suggest(...)``)."""
        if self.status == 404 and self.hint is None and f"[{name}]" in self.reason:
            close = difflib.get_close_matches(name, sorted({str(c) for c in candidates} - {name}), n=3, cutoff=0.6)
            if close:
                self.hint = "did you mean " + " or ".join(f"[{c}]" for c in close) + "?"
        return self

    def _cause_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "reason": self.reason}
        body.update(self.metadata)
        if self.caused_by is not None:
            body["caused_by"] = self.caused_by._cause_body()
        return body

    def root_causes(self) -> list[dict[str, Any]]:
        """The innermost causes, as ES lists them in ``root_cause``."""
        inner = self
        while inner.caused_by is not None and inner.caused_by.es_exception:
            inner = inner.caused_by
        body = {"type": inner.type, "reason": inner.reason}
        body.update(inner.metadata)
        return [body]

    def error_object(self) -> dict[str, Any]:
        err: dict[str, Any] = {"root_cause": self.root_causes()}
        err.update(self._cause_body())
        return err

    def body(self) -> dict[str, Any]:
        if self.simple:
            return {"error": self.reason} if self.status == 400 else {"error": self.reason, "status": self.status}
        return {"error": self.error_object(), "status": self.status}


def without_paths(body: Any, *roots: Any) -> Any:
    """``body`` with absolute paths of this machine taken out of its strings.

    Each folder in ``roots`` (the engine's home) is written relative to itself
    (``/data/home/pipelines/p.json`` -> ``pipelines/p.json``), Python's installation as
    ``<python>``, the user's home folder as ``~``; an error body then tells where without telling
    the layout of the machine.
    """

    folders: list[tuple[str, str]] = []
    for root in roots:
        if root is None:
            continue
        for form in dict.fromkeys((str(root), os.path.realpath(root))):
            folders.append((form.rstrip(os.sep) + os.sep, ""))
            folders.append((form.rstrip(os.sep), "."))

    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):  # library paths in a message
        if len(prefix.rstrip(os.sep)) > 1:
            folders.append((prefix.rstrip(os.sep), "<python>"))
    user_home = str(Path.home()).rstrip(os.sep)
    if len(user_home) > 1:
        folders.append((user_home, "~"))
    folders.sort(key=lambda pair: len(pair[0]), reverse=True)

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            for folder, replacement in folders:
                if folder in value:
                    value = value.replace(folder, replacement)
            return value
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return scrub(body)


# -- constructors for the errors Elasticsearch uses most -----------------------------------

def not_found(reason: str) -> ApiError:
    return ApiError("resource_not_found_exception", reason, 404)


def already_exists(reason: str) -> ApiError:
    return ApiError("resource_already_exists_exception", reason, 400)


def illegal_argument(reason: str, status: int = 400) -> ApiError:
    return ApiError("illegal_argument_exception", reason, status)


def status_exception(reason: str, status: int = 400) -> ApiError:
    return ApiError("status_exception", reason, status)


def parse_error(reason: str) -> ApiError:
    return ApiError("x_content_parse_exception", reason, 400)


def validation_failed(messages: list[str]) -> ApiError:
    """``ActionRequestValidationException``: ``Validation Failed: 1: msg;2: msg;``."""
    text = "".join(f"{i}: {m};" for i, m in enumerate(messages, start=1))
    return ApiError("action_request_validation_exception", f"Validation Failed: {text}", 400)


class InferenceInterrupted(KeyboardInterrupt):
    """Raised when a long inference is interrupted (Ctrl-C / the notebook's stop button).

    Finished batches are not lost: ``partial`` holds the result columns for every row, the
    rows after ``rows_done`` carrying an ``error`` saying they were not inferred. Where the
    run can continue (``df.infer.run``, ``series.infer.run``), ``resume()`` runs only the
    rows not reached and returns the full result.
    """

    def __init__(self, rows_done: int, rows_total: int, partial: Any = None) -> None:
        super().__init__(f"inference interrupted after {rows_done} of {rows_total} rows; "
                         "the finished rows are in .partial")
        self.rows_done = rows_done
        self.rows_total = rows_total
        self.partial = partial
        self._resume: Any = None  # set by the runs that can continue (df.infer.run, series.infer.run)

    @property
    def resumable(self) -> bool:
        return self._resume is not None

    def resume(self) -> Any:
        """Run only the rows not reached and return the full result, as the uninterrupted call would."""
        if self._resume is None:
            raise RuntimeError("this interrupted run cannot be resumed; run it again")
        return self._resume()
