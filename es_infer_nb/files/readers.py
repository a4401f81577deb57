"""Input files read in bounded batches with pyarrow: Parquet, CSV and JSONL (one or many files)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"[{path}]: unknown file type [{path.suffix or 'none'}]; use one of "
                         f"{', '.join(sorted(FORMATS))}")
    return fmt


def expand(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files from a path, a folder (its data files, sorted) or a list of them."""
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not items:
        raise ValueError("inputs: give at least one file or folder")
    files: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in FORMATS and not p.name.startswith("."))
            if not found:
                raise ValueError(f"[{path}]: the folder holds no {', '.join(sorted(FORMATS))} file")
            files.extend(found)
        elif path.is_file():
            file_format(path)
            files.append(path)
        else:
            raise FileNotFoundError(f"[{path}]: no such file or folder")
    return files


@dataclass
class Source:
    """Batches of rows (pandas frames) from the input files, and the row count when the files tell it."""

    files: list[Path]
    batch_size: int

    def total_rows(self) -> int | None:
        total = 0
        for path in self.files:
            if file_format(path) != "parquet":
                return None

            total += pq.ParquetFile(path).metadata.num_rows
        return total

    def batches(self) -> Iterator[pd.DataFrame]:
        for path in self.files:
            fmt = file_format(path)
            reader = {"parquet": _parquet, "csv": _csv, "jsonl": _jsonl}[fmt]
            yield from reader(path, self.batch_size)


def _frame(batch: pa.RecordBatch | pa.Table) -> pd.DataFrame:
    return batch.to_pandas()


def _parquet(path: Path, size: int) -> Iterator[pd.DataFrame]:
    # pre_buffer off: the pre-buffered reads of every row group stay cached, and memory would grow with the file
    with pq.ParquetFile(path, pre_buffer=False) as fh:
        for batch in fh.iter_batches(batch_size=size):
            yield _frame(batch)


def _csv(path: Path, size: int) -> Iterator[pd.DataFrame]:
    """CSV blocks re-cut to ``size`` rows (the reader's blocks are sized in bytes)."""
    reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 22))
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in reader:
        pending.append(batch)
        count += batch.num_rows
        while count >= size:
            table = pa.Table.from_batches(pending)
            yield _frame(table.slice(0, size))
            rest = table.slice(size)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield _frame(pa.Table.from_batches(pending))


def _jsonl(path: Path, size: int) -> Iterator[pd.DataFrame]:
    """``size`` lines at a time; nested objects become dotted columns (``user.age``), as documents' fields."""
    docs: list[Any] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"[{path}] line {number}: not JSON ({err.msg})") from None
            if not isinstance(doc, dict):
                raise ValueError(f"[{path}] line {number}: a document must be a JSON object")
            docs.append(doc)
            if len(docs) >= size:
                yield pd.json_normalize(docs, sep=".")
                docs = []
    if docs:
        yield pd.json_normalize(docs, sep=".")
