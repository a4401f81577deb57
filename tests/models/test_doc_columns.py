"""Per-document ES results -> Arrow-typed DataFrame columns (``es_infer_nb.models.doc_columns``)."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa

from es_infer_nb.models.byte_size import ByteSize
from es_infer_nb.models.doc_columns import DocsResult, RunResults


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


def _vectors(rng: np.random.Generator, n: int, width: int) -> list[list[float]]:
    return [row.tolist() for row in rng.standard_normal((n, width)).astype(np.float32)]  # what a model answers


def _chunked(model_id: str, chunks: list[list[dict]]) -> RunResults:
    out = RunResults(model_id)
    for part in chunks:
        out.extend([dict(doc) for doc in part])
    return out


def _same_columns(chunks: list[list[dict]]) -> None:
    """RunResults over the chunks gives exactly DocsResult's columns over all their docs."""
    docs = [dict(doc) for part in chunks for doc in part]
    index = pd.RangeIndex(100, 100 + len(docs))
    want = pd.DataFrame(DocsResult("m", docs).to_columns("ml", index), index=index)
    got = pd.DataFrame(_chunked("m", chunks).to_columns("ml", index), index=index)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert _chunked("m", chunks).to_docs() == docs


def test_run_results_give_the_columns_of_all_docs_whatever_the_chunks_hold():
    rng = np.random.default_rng(3)
    v = _vectors(rng, 40, 6)
    error = {"error": "Input field [text_field] does not exist in the source document"}
    # embeddings with errors, a truncated row and a chunk of errors only (no vector key at all)
    _same_columns([[{"predicted_value": v[0]}, error, {"is_truncated": True, "predicted_value": v[1]}],
                   [error, error], [{"predicted_value": v[2]}, {"predicted_value": v[3]}]])
    # another width in a later chunk: a list column, as over the plain docs
    _same_columns([[{"predicted_value": v[4]}], [{"predicted_value": v[5][:3]}], [{"predicted_value": v[6]}]])
    # float64 values float32 does not hold: the same float32 column, not packed on the way
    _same_columns([[{"predicted_value": [0.1, 0.2, 1 / 3]}], [{"predicted_value": v[7][:3]}]])
    # another kind of value for the key in a later chunk (before or after the vectors): JSON text or Arrow's own
    _same_columns([[{"predicted_value": v[8]}], [{"predicted_value": "not a vector"}], [{"predicted_value": v[9]}]])
    _same_columns([[{"predicted_value": "first"}], [{"predicted_value": v[10]}]])
    _same_columns([[{"predicted_value": v[11]}], [{"predicted_value": 2.5}]])
    # ints, nested lists (pass_through tensors), objects: never packed, the same columns
    _same_columns([[{"predicted_value": [1, 2, 3]}], [{"predicted_value": [4, 5, 6]}]])
    _same_columns([[{"predicted_value": [[0.5, 1.5], [2.5, 3.5]]}], [{"predicted_value": [[1.0, 2.0], [3.0, 4.0]]}]])
    _same_columns([[{"tokens": {"a": 0.5}, "score": 1.0}], [{"tokens": {"b": 2.0}, "score": None}]])
    # a vector key present as None in a row: the objects keep it (to_docs gives it back as it was)
    _same_columns([[{"predicted_value": v[14]}], [{"predicted_value": None}, {"predicted_value": v[15]}]])
    # key order: first seen over the whole run, the error column last
    got = _chunked("m", [[error], [{"is_truncated": True, "predicted_value": v[12]}, {"predicted_value": v[13]}]])
    assert list(got.to_columns("ml", pd.RangeIndex(3))) == ["ml.is_truncated", "ml.predicted_value", "ml.error",
                                                           "ml.model_id"]


def test_run_results_keep_vectors_as_float32_rows_and_leave_the_answers_untouched():
    """The deployment's answers (its cache may hold them) keep their vectors; the run keeps 4 bytes a number."""
    rng = np.random.default_rng(4)
    part = [{"predicted_value": row} for row in _vectors(rng, 200, 384)]
    out = RunResults("m")
    tracemalloc.start()
    try:
        out.extend(part)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all("predicted_value" in doc for doc in part)  # the answers as they were
    assert not any("predicted_value" in doc for doc in out.docs)  # the run's own objects: no Python floats
    assert held < 200 * 384 * 4 * 2  # float32 rows (and a little more), not ~12 KB of floats a row
    column = out.to_columns("", pd.RangeIndex(200))["predicted_value"]
    assert column.dtype == pd.ArrowDtype(pa.list_(pa.float32(), 384))
    np.testing.assert_array_equal(np.stack(column.to_numpy()), np.array([d["predicted_value"] for d in part],
                                                                         dtype=np.float32))
