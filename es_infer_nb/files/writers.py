"""Result batches written as they come: Parquet (one row group per batch), CSV or JSONL.

The Parquet schema is fixed by the first batch (the result columns are declared up front, so every
batch has the same columns); a later batch is cast to it. CSV cells holding lists or objects are
written as JSON text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .readers import file_format


class Writer(Protocol):
    def write(self, frame: pd.DataFrame) -> None: ...

    def close(self) -> None: ...


def _table(frame: pd.DataFrame, schema: pa.Schema | None) -> pa.Table:
    if schema is None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
        return table.cast(pa.schema(fields))
    try:
        return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
        raise ValueError(f"a batch's values do not fit the output's column types set by the first batch: {err}; "
                         "write JSONL, or give the column one type") from None


class ParquetOut:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: Any = None
        self._schema: pa.Schema | None = None

    def write(self, frame: pd.DataFrame) -> None:
        table = _table(frame, self._schema)
        if self._writer is None:
            self._schema = table.schema.remove_metadata()
            table = table.cast(self._schema)
            # dictionary pages only for text: trying them on every float column costs more than the model
            text = [f.name for f in self._schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            self._writer = pq.ParquetWriter(self.path, self._schema, use_dictionary=text)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        else:  # no rows: an empty file with no columns is still a valid Parquet file
            pq.write_table(pa.table({}), self.path)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


class JsonlOut:
    def __init__(self, path: Path) -> None:
        self._fh = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, frame: pd.DataFrame) -> None:
        rows = _table(frame, None).to_pylist()
        self._fh.write("".join(json.dumps({k: _json_value(v) for k, v in r.items() if v is not None},
                                          ensure_ascii=False, default=str) + "\n" for r in rows))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class CsvOut:
    def __init__(self, path: Path) -> None:
        self._fh = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by close()
        self._header = True

    def write(self, frame: pd.DataFrame) -> None:
        out = frame.copy()
        for name in out.columns:
            col = out[name]
            if isinstance(col.dtype, pd.ArrowDtype) and pa.types.is_nested(col.dtype.pyarrow_dtype) or col.dtype == object:
                out[name] = [None if v is None or v is pd.NA else
                             (json.dumps(_json_value(v), default=str) if isinstance(v, (list, dict)) else v)
                             for v in _table(out[[name]], None).column(0).to_pylist()]
        out.to_csv(self._fh, index=False, header=self._header)
        self._header = False
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def open_writer(path: Path) -> Writer:
    fmt = file_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return {"parquet": ParquetOut, "csv": CsvOut, "jsonl": JsonlOut}[fmt](path)
