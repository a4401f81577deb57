"""es_infer_nb: Elasticsearch / OpenSearch machine-learning inference in a notebook kernel.

``import es_infer_nb`` registers the ``.infer`` accessor on pandas DataFrames and
Series; ``%load_ext es_infer_nb`` adds the ``%%infer`` / ``%infer`` magics.
"""

from __future__ import annotations

from .engine import Engine, Response, default_engine, set_default_engine, set_html_renderer
from .errors import ApiError, InferenceInterrupted
from .notebook import accessor as _accessor  # noqa: F401  (registers df.infer)
from .dask import install_hook as _dask_hook
from .version import __version__

_dask_hook()  # ddf.infer on Dask DataFrames, registered when dask.dataframe is imported


def _response_html(response: Response) -> str:
    from .widgets.reprs import response_html  # rendering lives with the widgets, imported when first shown

    return response_html(response)


set_html_renderer(_response_html)  # Response._repr_html_: the engine sits below the widgets


__all__ = ["ApiError", "Engine", "InferenceInterrupted", "Response", "default_engine", "run_files", "serve", "set_default_engine", "__version__"]


def serve(engine: Engine | None = None, port: int = 9200, host: str = "127.0.0.1", **options):  # type: ignore[no-untyped-def]
    """Serve ``engine`` over Elasticsearch's HTTP API in a background thread (see :func:`es_infer_nb.server.serve`)."""
    from .server import serve as _serve

    return _serve(engine, port, host, **options)


def run_files(inputs, output, **options):  # type: ignore[no-untyped-def]
    """Stream Parquet / CSV / JSONL files through a model or pipeline (see :func:`es_infer_nb.files.run_files`)."""
    from .files import run_files as _run_files

    return _run_files(inputs, output, **options)


def load_ipython_extension(ipython) -> None:  # pragma: no cover - exercised through IPython
    from .notebook.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython) -> None:  # pragma: no cover
    from .notebook.magics import unload_ipython_extension as _unload

    _unload(ipython)
