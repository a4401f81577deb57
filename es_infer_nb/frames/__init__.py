"""DataFrame execution: pipelines and simulate over frames (:mod:`.pipeline`, column-at-a-time in
:mod:`.columnar`) and the result columns a job declares before it runs (:mod:`.meta`,
:mod:`.pipeline_meta`), for pandas and Dask alike.

The entry points (accessors, Dask workers, ``files/``, the magics) call this package; it calls the
ingest executor, the backends and the models below it.
"""

from ..models.results import DEFAULT_TARGET_FIELD, target_prefix

__all__ = ["DEFAULT_TARGET_FIELD", "target_prefix"]
