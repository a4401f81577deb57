"""The common base of the widgets: an ``ipywidgets.VBox`` that also reads well without a front-end.

In JupyterLab the live widget shows; the same display bundle carries ``text/html`` (a static
rendering of the current state, for nbviewer/GitHub/exported HTML) and ``text/plain`` (a
terminal or a plain ``repr``). Subclasses implement :meth:`static_html` and :meth:`text`.
"""

from __future__ import annotations

from typing import Any, Callable

import ipywidgets as w
import pandas as pd

from ._frames import row_options

#: more rows than this: an IntSlider instead of a Dropdown
SELECT_LIMIT = 1000


def row_selector(frame: pd.DataFrame, row: Any, on_change: Callable[[dict[str, Any]], None]) -> w.Dropdown | w.IntSlider | None:
    """The row picker of a per-row widget: none for one given row or a one-row frame, a Dropdown of
    the index labels up to :data:`SELECT_LIMIT` rows, an IntSlider of positions beyond."""
    if row is not None or len(frame) <= 1:
        return None
    if len(frame) <= SELECT_LIMIT:
        selector: w.Dropdown | w.IntSlider = w.Dropdown(options=row_options(frame), value=0, description="row")
    else:
        selector = w.IntSlider(value=0, min=0, max=len(frame) - 1, description="row position")
    selector.observe(on_change, names="value")
    return selector


class DisplayWidget(w.VBox):
    """A VBox whose ``_repr_html_`` / ``__repr__`` render its current state without JavaScript."""

    def static_html(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def text(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self.static_html()

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle = dict(bundle)
            bundle["text/plain"] = self.text()
            bundle.setdefault("text/html", self.static_html())
        return bundle
