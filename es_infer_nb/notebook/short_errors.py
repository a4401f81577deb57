"""One-line errors in IPython for :class:`~es_infer_nb.ApiError` and interrupted runs.

IPython asks an exception for ``_render_traceback_()`` before it formats a traceback; with
``%load_ext es_infer_nb`` (``%config InferMagic.short_errors = True``, the default) an
``ApiError`` raised in any cell (``df.infer.run("nope")``) shows as
``ApiError: 404 resource_not_found_exception: Could not find trained model [nope]`` and an
interrupted run as one line saying how to resume it. Python outside IPython is not affected.
"""

from __future__ import annotations

from ..errors import ApiError, InferenceInterrupted

__all__ = ["install", "installed", "one_line", "uninstall"]

_CLASSES = (ApiError, InferenceInterrupted)


def one_line(exc: BaseException) -> str:
    """The line shown for ``exc``."""
    if isinstance(exc, ApiError):
        line = f"ApiError: {exc.status} {exc.type}: {exc.reason}"
        return f"{line} ({exc.hint})" if exc.hint else line
    if isinstance(exc, InferenceInterrupted):
        if exc.partial is None:  # a request (POST _infer) keeps no rows: it runs again as a whole
            return f"InferenceInterrupted: stopped after {exc.rows_done} of {exc.rows_total} rows; nothing was kept"
        text = str(exc)
        if exc.resumable and "%infer resume" not in text:
            text += "; .resume() runs the remaining rows"
        return f"InferenceInterrupted: {text}"
    return f"{type(exc).__name__}: {exc}"  # pragma: no cover - only installed on the classes above


def _render(self: BaseException) -> list[str]:
    return [one_line(self)]


def install() -> None:
    for cls in _CLASSES:
        cls._render_traceback_ = _render  # type: ignore[attr-defined]


def uninstall() -> None:
    for cls in _CLASSES:
        if cls.__dict__.get("_render_traceback_") is _render:
            del cls._render_traceback_  # type: ignore[attr-defined]


def installed() -> bool:
    return all(cls.__dict__.get("_render_traceback_") is _render for cls in _CLASSES)
