"""Per-document ES results -> Arrow-typed DataFrame columns (``es_infer_nb.models.doc_columns``)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa

from es_infer_nb.models.byte_size import ByteSize
from es_infer_nb.models.doc_columns import DocsResult


def test_columns_by_result_shape_and_parquet_round_trip():
    docs = [
        {"is_truncated": True, "predicted_value": [0.5, 1.5], "tokens": {"a": 0.25, "b": 1.0},
         "entities": [{"entity": "x", "class_name": "PER", "class_probability": 0.9, "start_pos": 0, "end_pos": 1}],
         "score": 0.5},
        {"error": "Input field [text_field] does not exist in the source document"},
        {"predicted_value": [2.0, 3.0], "tokens": {}, "entities": [], "score": 1},
    ]
    result = DocsResult("m", docs)
    assert result.error_mask.tolist() == [False, True, False]
    cols = result.to_columns("ml", pd.Index([7, 8, 9]))
    assert list(cols) == ["ml.is_truncated", "ml.predicted_value", "ml.tokens", "ml.entities", "ml.score",
                          "ml.error", "ml.model_id"]
    assert cols["ml.predicted_value"].dtype == pd.ArrowDtype(pa.list_(pa.float32(), 2))
    assert cols["ml.tokens"].dtype == pd.ArrowDtype(pa.map_(pa.string(), pa.float32()))
    assert cols["ml.is_truncated"].dtype == pd.ArrowDtype(pa.bool_())
    assert cols["ml.score"].tolist()[0] == 0.5 and np.isnan(cols["ml.score"].tolist()[1])
    assert cols["ml.error"].tolist()[0] is None or pd.isna(cols["ml.error"].tolist()[0])
    frame = pd.DataFrame(cols)
    buf = io.BytesIO()
    frame.to_parquet(buf)
    back = pd.read_parquet(io.BytesIO(buf.getvalue()), dtype_backend="pyarrow")
    assert back["ml.predicted_value"].dtype == frame["ml.predicted_value"].dtype
    np.testing.assert_array_equal(np.asarray(back.loc[9, "ml.predicted_value"]), [2.0, 3.0])


def test_ragged_vectors_stay_lists():
    cols = DocsResult("m", [{"v": [1.0]}, {"v": [1.0, 2.0]}]).to_columns("", pd.RangeIndex(2))
    assert pa.types.is_list(cols["v"].dtype.pyarrow_dtype)


def test_byte_sizes_as_es_prints_them():
    assert ByteSize.parse("10mb", "cache_size").bytes == 10 * 1024 * 1024
    assert ByteSize.parse("1G", "cache_size").string_rep() == "1gb"
    assert str(ByteSize.of_bytes(1536)) == "1.5kb" and str(ByteSize.of_bytes(1599)) == "1.5kb"
    assert str(ByteSize.of_bytes(438_000_000)) == "417.7mb" and str(ByteSize.of_bytes(0)) == "0b"
    assert ByteSize.parse("1.5kb", "cache_size").string_rep() == "1536b"
