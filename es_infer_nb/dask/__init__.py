"""Dask scale-out: ``ddf.infer.run`` / ``ddf.infer.pipeline`` on ``dask.dataframe`` frames.

``import es_infer_nb`` calls :func:`install_hook`, which costs nothing when Dask is absent and does
not import Dask itself: the ``.infer`` accessor is registered on Dask DataFrames when
``dask.dataframe`` is (or already was) imported. The pieces:

* :mod:`.config`: the job config (engine state JSON + the call), the definitions of pytorch models
  uploaded in parts that travel beside it, and :func:`make_predict_fn`, the one factory that builds
  a partition function from them (cached engine per worker process);
* :mod:`.meta`: result columns declared from the model, task and endpoint configs;
* :mod:`.stats`: worker counters gathered back into the engine's ``_stats`` (once per partition);
* :mod:`.accessor`: the accessor itself.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

__all__ = ["install_hook", "make_predict_fn"]

_TARGET = "dask.dataframe"


def make_predict_fn(config: Any, key: str | None = None, definitions: Any = None) -> Any:
    """See :func:`es_infer_nb.dask.config.make_predict_fn`."""
    from .config import make_predict_fn as make

    return make(config, key, definitions)


def _register() -> None:
    from . import accessor  # noqa: F401  (registers ddf.infer)


class _Finder(importlib.abc.MetaPathFinder):
    """Registers the accessor right after ``dask.dataframe`` finishes importing."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            _register()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install_hook() -> None:
    """Register ``ddf.infer`` now if ``dask.dataframe`` is imported, else when it is."""
    if _TARGET in sys.modules:
        _register()
        return
    if any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    try:
        if importlib.util.find_spec("dask") is None:
            return
    except (ImportError, ValueError):  # pragma: no cover - a broken dask install
        return
    sys.meta_path.insert(0, _Finder())
