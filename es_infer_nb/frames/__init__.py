"""DataFrame execution: ``df.infer.run`` over frames (:mod:`.run`, interruptible and resumable in
:mod:`.resume`), pipelines and simulate over frames (:mod:`.pipeline`, column-at-a-time in
:mod:`.columnar`) and the result columns a job declares before it runs (:mod:`.meta`,
:mod:`.pipeline_meta`), for pandas and Dask alike; the engine state shipped to the processes that
run partitions (:mod:`.workers`) and the counters they send back (:mod:`.counters`); texts to
vectors with the embedded model for ``es-infer embed`` (:mod:`.embed`).

The entry points (accessors, Dask workers, ``files/``, the magics, the CLI) call this package; it
calls the ingest executor, the backends and the models below it. Device, batch size and progress
are parameters: the engine's own device is never changed for a call.
"""

from ..models.results import DEFAULT_TARGET_FIELD, target_prefix

__all__ = ["DEFAULT_TARGET_FIELD", "target_prefix"]
