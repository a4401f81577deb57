"""The common base of the widgets: an ``ipywidgets.VBox`` that also reads well without a front-end.

In JupyterLab the live widget shows; the same display bundle carries ``text/html`` (a static
rendering of the current state, for nbviewer/GitHub/exported HTML) and ``text/plain`` (a
terminal or a plain ``repr``). Subclasses implement :meth:`static_html` and :meth:`text`.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w


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
