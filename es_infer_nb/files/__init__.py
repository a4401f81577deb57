"""Out-of-core runs: ``es_infer_nb.run_files(...)`` and ``es-infer run`` over Parquet / CSV / JSONL files.

:mod:`.readers` (pyarrow batches), :mod:`.writers` (results written as they come), :mod:`.run`
(the loop), :mod:`.cli` (the ``es-infer run`` subcommand).
"""

from __future__ import annotations

from .run import FilesInterrupted, RunSummary, run_files

__all__ = ["FilesInterrupted", "RunSummary", "run_files"]
