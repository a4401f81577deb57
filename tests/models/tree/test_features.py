"""Documents / DataFrames -> columns -> the feature matrix, with ES coercion rules."""

from __future__ import annotations

import math
import random
import struct

import numpy as np
import pandas as pd
import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.models.tree.features import (
    any_present,
    columns_from_docs,
    columns_from_frame,
    dig,
    feature_matrix,
    java_double_string,
    java_string,
    missing_mask,
    parse_java_double,
    to_double,
    to_double_column,
)


from helpers import obj, same  # noqa: E402


# -- Java formatting --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "value, text",
    [
        (3.0, "3.0"),
        (-3.0, "-3.0"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (100.0, "100.0"),
        (0.001, "0.001"),
        (9.99e-4, "9.99E-4"),
        (1e-4, "1.0E-4"),
        (9999999.0, "9999999.0"),
        (1e7, "1.0E7"),
        (12345678.9, "1.23456789E7"),
        (1e10, "1.0E10"),
        (-1.2345e20, "-1.2345E20"),
        (1e23, "1.0E23"),
        (1.7976931348623157e308, "1.7976931348623157E308"),
        (5e-324, "4.9E-324"),  # Double.MIN_VALUE: Java picks the closest 2-digit decimal
        (1e-323, "9.9E-324"),
        (1 / 3, "0.3333333333333333"),
        (math.nan, "NaN"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
    ],
)
def test_java_double_string(value, text):
    assert java_double_string(value) == text


def test_java_double_string_round_trips_and_uses_java_layout():
    rng = random.Random(7)
    for _ in range(20000):
        x = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        if math.isnan(x) or math.isinf(x):
            continue
        text = java_double_string(x)
        assert float(text) == x
        body = text.lstrip("-")
        if x != 0:
            assert ("E" in body) == (not 1e-3 <= abs(x) < 1e7), text
        mantissa = body.split("E")[0]
        assert "." in mantissa and mantissa[-1].isdigit()


@pytest.mark.parametrize(
    "value, text",
    [
        (3, "3"),
        (-12, "-12"),
        (2**70, "1180591620717411303424"),
        (3.0, "3.0"),
        (1e10, "1.0E10"),
        (True, "true"),
        (False, "false"),
        ("abc", "abc"),
        ("", ""),
        (None, "null"),
        (np.int64(7), "7"),
        (np.float64(2.5), "2.5"),
        (np.float32(0.5), "0.5"),
        (np.bool_(True), "true"),
        ([1, 2.0, "x"], "[1, 2.0, x]"),
        ({"a": 1}, "{a=1}"),
    ],
)
def test_java_string(value, text):
    assert java_string(value) == text


# -- Double.valueOf / to_double -------------------------------------------------------------

@pytest.mark.parametrize(
    "text, expected",
    [
        ("5", 5.0),
        ("0.5", 0.5),
        ("-0.5", -0.5),
        ("+1", 1.0),
        (" 1.5 ", 1.5),
        ("\t2\n", 2.0),
        ("1e3", 1000.0),
        ("1.e2", 100.0),
        (".5", 0.5),
        ("1d", 1.0),
        ("2.5F", 2.5),
        ("0x1p3", 8.0),
        ("-0X1.8P1", -3.0),
        ("Infinity", math.inf),
        ("-Infinity", -math.inf),
        ("1e400", math.inf),
        ("", None),
        ("   ", None),
        ("abc", None),
        ("1_000", None),  # Python-only syntax
        ("inf", None),
        ("nan", None),
        ("1,5", None),
        ("\u0661", None),  # Arabic-Indic digit one: not a Java number
        ("\u00a01", None),  # NBSP is not trimmed by Java
        ("e5", None),
        (".", None),
    ],
)
def test_parse_java_double(text, expected):
    assert parse_java_double(text) == expected


def test_parse_java_double_nan():
    assert math.isnan(parse_java_double("NaN"))


@pytest.mark.parametrize(
    "value, expected",
    [
        (5, 5.0),
        (-2.5, -2.5),
        ("0.5", 0.5),
        ("-0.5", -0.5),
        ("5", 5.0),
        ("", None),
        ("junk", None),
        ({}, None),
        ([1], None),
        (None, None),
        (True, None),
        (False, None),
        (np.int32(4), 4.0),
        (np.float32(0.25), 0.25),
        (np.bool_(True), None),
        (math.nan, None),
        ("NaN", None),
        (10**400, math.inf),
    ],
)
def test_to_double(value, expected):
    assert to_double(value) == expected


def test_to_double_column_numeric_and_bool_arrays():
    assert same(to_double_column(np.array([1, 2, 3])), [1, 2, 3])
    assert same(to_double_column(np.array([1.5, np.nan], dtype=np.float32)), [1.5, np.nan])
    assert same(to_double_column(np.array([True, False])), [np.nan, np.nan])
    assert same(to_double_column(np.array(["1", " 2 ", "x"])), [1, 2, np.nan])
    out = to_double_column(np.array([1.0, 2.0]))
    assert out.dtype == np.float64


def test_to_double_column_object_arrays():
    assert same(to_double_column(obj("1.5", None, "", "abc", " 7 ")), [1.5, np.nan, np.nan, np.nan, 7])
    assert same(to_double_column(obj(1, 2.5, None)), [1, 2.5, np.nan])
    assert same(to_double_column(obj(1, None, 3)), [1, np.nan, 3])
    assert same(to_double_column(obj(True, None, False)), [np.nan] * 3)
    assert same(to_double_column(obj(None, None)), [np.nan, np.nan])
    # mixed: numbers, numeric strings, bools, lists, dicts
    mixed = obj(1, "2", True, [3], {"a": 4}, 5.5, None, np.int64(6), "x", math.nan)
    assert same(to_double_column(mixed), [1, 2, np.nan, np.nan, np.nan, 5.5, np.nan, 6, np.nan, np.nan])
    assert same(to_double_column(obj(10**400, 1)), [math.inf, 1])
    assert to_double_column(obj()).shape == (0,)


# -- dig ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "doc",
    [
        {"a.b.c": 1},
        {"a": {"b.c": 1}},
        {"a.b": {"c": 1}},
        {"a": {"b": {"c": 1}}},
        {"a": {"b": {"x": 2}}, "a.b": {"c": 1}},
    ],
)
def test_dig_finds_every_split(doc):
    assert dig(doc, "a.b.c") == 1


def test_dig_misses_and_nulls():
    assert dig({"a": {"b": None}}, "a.b") is None
    assert dig({"a": 1}, "a.b") is None
    assert dig({"a": {"c": 1}}, "a.b") is None
    assert dig({}, "x") is None
    assert dig("not a map", "x") is None
    assert dig({"a": {"b": [1, 2]}}, "a.b") == [1, 2]
    assert dig({"a": {"b": {"c": 1}}}, "a.b") == {"c": 1}
    # a null exact key does not stop the nested search
    assert dig({"a.b": None, "a": {"b": 3}}, "a.b") == 3


def test_dig_prefers_longer_keys_first():
    # upstream example: depth first, longer keys first
    doc = {"a": {"b": {"c": {"d": 2}}}, "a.b": {"c": {"d": 5}}}
    assert dig(doc, "a.b.c.d") == 5
    assert dig({"a.b": {"c": 5}, "a": {"b": {"c": 2}}}, "a.b.c") == 5


# -- columns from documents -------------------------------------------------------------------

def test_columns_from_docs():
    docs = [
        {"x": 1, "nested": {"y": "a"}, "z": None},
        {"x": 2.5, "nested.y": "b"},
        {"z": [1, 2]},
        {"x": math.nan},
    ]
    cols = columns_from_docs(docs, ["x", "nested.y", "z", "absent", "x"])
    assert list(cols) == ["x", "nested.y", "z", "absent"]
    for arr in cols.values():
        assert arr.dtype == object and arr.shape == (4,)
    assert cols["x"].tolist() == [1, 2.5, None, None]
    assert cols["nested.y"].tolist() == ["a", "b", None, None]
    assert cols["z"][2] == [1, 2] and cols["z"][0] is None
    assert cols["absent"].tolist() == [None] * 4
    assert type(cols["x"][0]) is int


def test_columns_from_docs_empty_batch():
    cols = columns_from_docs([], ["a"])
    assert cols["a"].shape == (0,)


@pytest.mark.parametrize("bad", [["a"], [None], [3], [[1, 2]]])
def test_columns_from_docs_rejects_non_objects(bad):
    with pytest.raises(ApiError) as info:
        columns_from_docs([{"a": 1}] + bad, ["a"])
    err = info.value
    assert err.status == 400
    assert err.type == "illegal_argument_exception"
    assert "document [1]" in err.reason and "object" in err.reason


# -- columns from DataFrames ------------------------------------------------------------------

def test_columns_from_frame_numeric_columns_stay_numeric():
    df = pd.DataFrame({"i": [1, 2, 3], "f": [1.0, np.nan, 3.5], "b": [True, False, True], "u": np.array([1, 2, 3], dtype=np.uint8)})
    cols = columns_from_frame(df, ["i", "f", "b", "u"])
    assert cols["i"].dtype.kind == "i" and cols["i"].tolist() == [1, 2, 3]
    assert cols["f"].dtype == np.float64 and np.isnan(cols["f"][1])
    assert cols["b"].dtype == bool
    assert cols["u"].dtype.kind == "u"
    x = feature_matrix(cols, ["i", "f", "b", "u"], 3)
    assert same(x[:, 0], [1, 2, 3])
    assert same(x[:, 1], [1.0, np.nan, 3.5])
    assert same(x[:, 2], [np.nan] * 3)  # booleans are not numbers for ES
    assert same(x[:, 3], [1, 2, 3])


def test_columns_from_frame_string_columns():
    df = pd.DataFrame({"s": ["a", None, " 2.5 "]})
    assert pd.api.types.is_string_dtype(df["s"].dtype)  # pandas 3: the str dtype
    cols = columns_from_frame(df, ["s"])
    assert cols["s"].dtype == object
    assert cols["s"].tolist() == ["a", None, " 2.5 "]
    assert same(feature_matrix(cols, ["s"], 3)[:, 0], [np.nan, np.nan, 2.5])


@pytest.mark.parametrize("dtype", ["object", "string", "str", "string[pyarrow]"])
def test_columns_from_frame_every_string_dtype(dtype):
    s = pd.Series(["x", None, "1"], dtype=dtype)
    cols = columns_from_frame(pd.DataFrame({"s": s}), ["s"])
    assert cols["s"].dtype == object
    assert cols["s"].tolist() == ["x", None, "1"]


def test_columns_from_frame_nullable_dtypes():
    df = pd.DataFrame(
        {
            "I": pd.array([1, None, 3], dtype="Int64"),
            "Ifull": pd.array([1, 2, 3], dtype="Int32"),
            "F": pd.array([1.5, None, 2.0], dtype="Float64"),
            "B": pd.array([True, None, False], dtype="boolean"),
            "Bfull": pd.array([True, False, True], dtype="boolean"),
        }
    )
    cols = columns_from_frame(df, list(df.columns))
    # ints stay ints (so category 3 matches "3", not "3.0"); missing -> None
    assert cols["I"].dtype == object and cols["I"].tolist() == [1, None, 3]
    assert all(type(v) is int for v in cols["I"] if v is not None)
    assert cols["Ifull"].dtype.kind == "i"
    assert cols["F"].dtype == np.float64 and same(cols["F"], [1.5, np.nan, 2.0])
    assert cols["B"].dtype == object and cols["B"].tolist() == [True, None, False]
    assert cols["Bfull"].dtype == bool
    x = feature_matrix(cols, list(df.columns), 3)
    assert same(x[:, 0], [1, np.nan, 3])
    assert same(x[:, 3], [np.nan] * 3)
    assert same(any_present(cols, ["I"], 3), [True, False, True])


def test_columns_from_frame_arrow_dtypes():
    df = pd.DataFrame({"a": pd.array([1, None], dtype="int64[pyarrow]"), "d": pd.array([0.5, None], dtype="double[pyarrow]")})
    cols = columns_from_frame(df, ["a", "d"])
    assert cols["a"].tolist() == [1, None]
    assert same(cols["d"], [0.5, np.nan])


def test_columns_from_frame_categorical_and_object():
    df = pd.DataFrame(
        {
            "c": pd.Categorical(["x", None, "y", "x"]),
            "ci": pd.Categorical([1, 2, None, 1]),
            "o": pd.Series([1, "a", None, np.nan], dtype=object),
        }
    )
    cols = columns_from_frame(df, ["c", "ci", "o"])
    assert cols["c"].tolist() == ["x", None, "y", "x"]
    assert cols["ci"].tolist() == [1, 2, None, 1]
    assert type(cols["ci"][0]) is int
    assert cols["o"].tolist() == [1, "a", None, None]


def test_columns_from_frame_dict_valued_columns_and_absent_fields():
    df = pd.DataFrame({"a": [{"b": 1}, None, {"b": {"c": 2}}, {"x": 1}], "a.b": [None, None, None, None]})
    df = df.drop(columns=["a.b"])
    cols = columns_from_frame(df, ["a.b", "a.b.c", "zzz", "q.r"])
    assert cols["a.b"].tolist() == [1, None, {"c": 2}, None]
    assert cols["a.b.c"].tolist() == [None, None, 2, None]
    assert "zzz" not in cols and "q.r" not in cols


def test_columns_from_frame_exact_column_wins_over_nested():
    df = pd.DataFrame({"a.b": [5, 6], "a": [{"b": 1}, {"b": 2}]})
    cols = columns_from_frame(df, ["a.b"])
    assert cols["a.b"].tolist() == [5, 6]


def test_columns_from_frame_duplicate_columns_rejected():
    df = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ApiError) as info:
        columns_from_frame(df, ["a"])
    assert info.value.status == 400 and "more than once" in info.value.reason


def test_columns_from_frame_does_not_touch_the_frame():
    df = pd.DataFrame({"s": pd.Series(["a", None], dtype=object)})
    columns_from_frame(df, ["s"])
    assert df["s"].isna().tolist() == [False, True]


# -- missing values, presence and the feature matrix ---------------------------------------------

def test_missing_mask():
    assert missing_mask(obj(None, 1, "x", math.nan, [None])).tolist() == [True, False, False, True, False]
    assert missing_mask(np.array([1.0, np.nan])).tolist() == [False, True]
    assert missing_mask(np.array([1, 2])).tolist() == [False, False]
    assert missing_mask(np.array([True])).tolist() == [False]


def test_any_present():
    cols = {"a": obj(None, 1, None, ""), "b": np.array([np.nan, np.nan, 2.0, np.nan])}
    assert any_present(cols, ["a", "b", "absent"], 4).tolist() == [False, True, True, True]
    assert any_present(cols, ["absent"], 4).tolist() == [False] * 4
    assert any_present({}, [], 0).shape == (0,)


def test_feature_matrix():
    cols = {"a": obj("1", None, True), "b": np.array([1, 2, 3]), "c": np.array([0.5, np.nan, 1.5])}
    x = feature_matrix(cols, ["c", "absent", "a", "b"], 3)
    assert x.shape == (3, 4) and x.dtype == np.float64
    assert same(x[:, 0], [0.5, np.nan, 1.5])
    assert same(x[:, 1], [np.nan] * 3)
    assert same(x[:, 2], [1, np.nan, np.nan])
    assert same(x[:, 3], [1, 2, 3])
    assert feature_matrix({}, ["a"], 0).shape == (0, 1)
