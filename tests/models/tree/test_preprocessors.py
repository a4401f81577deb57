"""ES preprocessors: column-at-a-time processing, output naming, reverse maps and parsing errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.models.tree.features import columns_from_docs, columns_from_frame, feature_matrix
from es_infer_nb.models.tree.preprocessors import (
    FrequencyEncoding,
    MultiEncoding,
    NGramEncoding,
    OneHotEncoding,
    Preprocessor,
    TargetMeanEncoding,
    apply_to_doc,
    java_categories,
    parse_preprocessor,
    parse_preprocessors,
)


from helpers import obj, same  # noqa: E402


def one(spec: dict) -> Preprocessor:
    (pre,) = parse_preprocessors([spec])
    return pre


OHE = {"one_hot_encoding": {"field": "cat", "hot_map": {"foo": "c_foo", "bar": "c_bar", "1.0": "c_1.0", "1": "c_1", "true": "c_true"}}}
TME = {"target_mean_encoding": {"field": "cat", "feature_name": "cat_tme", "target_map": {"foo": 0.1, "3": 0.3}, "default_value": 0.99}}
FREQ = {"frequency_encoding": {"field": "cat", "feature_name": "cat_freq", "frequency_map": {"foo": 0.25, "2.5": 0.5}}}


# -- category strings ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "arr, expected",
    [
        (obj("a", None, "b", "a"), ["a", None, "b", "a"]),
        (obj(1, None, 3), ["1", None, "3"]),
        (obj(1.0, None, 1e10, -0.0, 0.0), ["1.0", None, "1.0E10", "-0.0", "0.0"]),
        (obj(1, 1.0, True, "1", None, math.nan), ["1", "1.0", "true", "1", None, None]),
        (obj([1, "a"], {"k": 2}), ["[1, a]", "{k=2}"]),
        (np.array([1, 2, 1]), ["1", "2", "1"]),
        (np.array([1.0, np.nan, 2.5, -0.0, 0.0]), ["1.0", None, "2.5", "-0.0", "0.0"]),
        (np.array([0.0, -0.0]), ["0.0", "-0.0"]),
        (np.array([-0.0, 0.0]), ["-0.0", "0.0"]),
        (np.array([True, False]), ["true", "false"]),
        (np.array(["x", "y"]), ["x", "y"]),
        (obj(), []),
        (obj(None, None), [None, None]),
    ],
)
def test_java_categories(arr, expected):
    codes, strings = java_categories(arr)
    assert [strings[c] if c >= 0 else None for c in codes] == expected


# -- one_hot_encoding -------------------------------------------------------------------------

def test_one_hot_matches_java_strings_and_writes_every_column():
    pre = one(OHE)
    cols = {"cat": obj("foo", 1.0, 1, True, "unseen", None)}
    pre.process(cols, 6)
    assert same(cols["c_foo"], [1, 0, 0, 0, 0, np.nan])
    assert same(cols["c_1.0"], [0, 1, 0, 0, 0, np.nan])
    assert same(cols["c_1"], [0, 0, 1, 0, 0, np.nan])
    assert same(cols["c_true"], [0, 0, 0, 1, 0, np.nan])
    assert same(cols["c_bar"], [0, 0, 0, 0, 0, np.nan])


def test_one_hot_all_present_gives_int_columns():
    pre = one(OHE)
    cols = {"cat": np.array(["foo", "bar"], dtype=object)}
    pre.process(cols, 2)
    assert cols["c_foo"].dtype.kind == "i"
    assert cols["c_foo"].tolist() == [1, 0]


def test_one_hot_float_column_matches_java_double_keys():
    pre = one({"one_hot_encoding": {"field": "x", "hot_map": {"3": "is3", "3.0": "is3_0"}}})
    cols = {"x": np.array([3.0, np.nan, 4.0])}
    pre.process(cols, 3)
    assert same(cols["is3"], [0, np.nan, 0])  # pandas gotcha: 3.0 is "3.0", never "3"
    assert same(cols["is3_0"], [1, np.nan, 0])


def test_one_hot_missing_field_writes_nothing():
    pre = one(OHE)
    cols = {"other": obj("foo")}
    pre.process(cols, 1)
    assert list(cols) == ["other"]
    cols = {"cat": obj(None, None)}
    pre.process(cols, 2)
    assert list(cols) == ["cat"]


def test_one_hot_outputs_in_key_order_and_reverse_map():
    pre = one({"one_hot_encoding": {"field": "f", "hot_map": {"b": "col_b", "a": "col_a", "C": "col_C"}}})
    # ES keeps hot_map in a TreeMap: outputs follow Java's String order of the keys
    assert pre.output_fields() == ["col_C", "col_a", "col_b"]
    assert pre.input_fields() == ["f"]
    assert pre.reverse_map() == {"col_C": "f", "col_a": "f", "col_b": "f"}


def test_one_hot_duplicate_output_column_last_key_wins():
    pre = one({"one_hot_encoding": {"field": "f", "hot_map": {"a": "col", "b": "col"}}})
    cols = {"f": obj("a", "b")}
    pre.process(cols, 2)
    assert cols["col"].tolist() == [0, 1]  # "a" sets 1, then "b" overwrites with 0


def test_one_hot_keeps_existing_values_on_rows_it_does_not_write():
    pre = one({"one_hot_encoding": {"field": "f", "hot_map": {"a": "g"}}})
    cols = {"f": obj("a", None, "b"), "g": np.array([7.0, 8.0, 9.0])}
    pre.process(cols, 3)
    assert same(cols["g"], [1, 8, 0])


def test_process_never_writes_into_input_arrays():
    source = np.array([5.0, 6.0])
    cols = {"f": obj("a", None), "g": source}
    one({"one_hot_encoding": {"field": "f", "hot_map": {"a": "g"}}}).process(cols, 2)
    assert source.tolist() == [5.0, 6.0]
    assert cols["g"] is not source


# -- target_mean / frequency -------------------------------------------------------------------

def test_target_mean_encoding():
    pre = one(TME)
    cols = {"cat": obj("foo", 3, 3.0, "zzz", None)}
    pre.process(cols, 5)
    assert same(cols["cat_tme"], [0.1, 0.3, 0.99, 0.99, np.nan])
    assert pre.input_fields() == ["cat"] and pre.output_fields() == ["cat_tme"]
    assert pre.reverse_map() == {"cat_tme": "cat"}


def test_frequency_encoding_unknown_is_zero():
    pre = one(FREQ)
    cols = {"cat": obj("foo", 2.5, "2.5", "nope", None)}
    pre.process(cols, 5)
    assert same(cols["cat_freq"], [0.25, 0.5, 0.5, 0.0, np.nan])
    assert pre.reverse_map() == {"cat_freq": "cat"}


def test_map_encodings_on_int_and_bool_columns():
    tme = one({"target_mean_encoding": {"field": "i", "feature_name": "t", "target_map": {"2": 1.0, "true": 5.0}, "default_value": -1}})
    cols = {"i": np.array([1, 2, 2])}
    tme.process(cols, 3)
    assert same(cols["t"], [-1, 1, 1])
    cols = {"i": np.array([True, False])}
    tme.process(cols, 2)
    assert same(cols["t"], [5, -1])


# -- n_gram_encoding -----------------------------------------------------------------------------

def test_ngram_spec_example():
    pre = one({"n_gram_encoding": {"field": "sku", "feature_prefix": "sku", "n_grams": [1, 2], "start": 0, "length": 3}})
    assert apply_to_doc([pre], {"sku": "AB9"}) == {
        "sku": "AB9", "sku.10": "A", "sku.11": "B", "sku.12": "9", "sku.20": "AB", "sku.21": "B9",
    }


def test_ngram_length_overrun():
    pre = one({"n_gram_encoding": {"field": "text", "n_grams": [1, 3], "start": 12, "length": 10, "feature_prefix": "f"}})
    out = apply_to_doc([pre], {"text": "this is the value"})
    assert {k: v for k, v in out.items() if k.startswith("f.")} == {
        "f.10": "v", "f.11": "a", "f.12": "l", "f.13": "u", "f.14": "e", "f.30": "val", "f.31": "alu", "f.32": "lue",
    }


def test_ngram_negative_start():
    pre = one({"n_gram_encoding": {"field": "t", "n_grams": [1, 2], "start": -3, "length": 3, "feature_prefix": "f"}})
    out = apply_to_doc([pre], {"t": "abcdef"})
    assert {k: v for k, v in out.items() if k != "t"} == {"f.10": "d", "f.11": "e", "f.12": "f", "f.20": "de", "f.21": "ef"}
    # too short for the negative start: nothing written
    assert apply_to_doc([pre], {"t": "ab"}) == {"t": "ab"}


def test_ngram_start_beyond_string_and_short_strings():
    pre = one({"n_gram_encoding": {"field": "t", "n_grams": [2], "start": 3, "length": 5, "feature_prefix": "f"}})
    assert apply_to_doc([pre], {"t": "ab"}) == {"t": "ab"}  # start > len
    assert apply_to_doc([pre], {"t": "abc"}) == {"t": "abc"}  # start == len: no 2-gram fits
    assert apply_to_doc([pre], {"t": "abcde"}) == {"t": "abcde", "f.20": "de"}


def test_ngram_non_string_values_use_java_strings():
    pre = one({"n_gram_encoding": {"field": "t", "n_grams": [1], "length": 3, "feature_prefix": "f"}})
    assert apply_to_doc([pre], {"t": 1.5}) == {"t": 1.5, "f.10": "1", "f.11": ".", "f.12": "5"}
    assert apply_to_doc([pre], {"t": True}) == {"t": True, "f.10": "t", "f.11": "r", "f.12": "u"}


def test_ngram_counts_utf16_units_like_java():
    pre = one({"n_gram_encoding": {"field": "t", "n_grams": [2], "length": 10, "feature_prefix": "f"}})
    out = apply_to_doc([pre], {"t": "a\U0001F600b"})  # the emoji is two Java chars
    assert [k for k in out if k != "t"] == ["f.20", "f.21", "f.22"]
    assert out["f.20"][0] == "a" and out["f.22"][-1] == "b"


def test_ngram_column_processing_mixed_lengths():
    pre = one({"n_gram_encoding": {"field": "t", "n_grams": [1, 2], "length": 3, "feature_prefix": "g"}})
    cols = {"t": obj("abc", None, "x", "abc")}
    pre.process(cols, 4)
    assert cols["g.10"].tolist() == ["a", None, "x", "a"]
    assert cols["g.12"].tolist() == ["c", None, None, "c"]
    assert cols["g.21"].tolist() == ["bc", None, None, "bc"]
    assert "g.22" not in cols
    # n-grams are text: a tree reading them directly sees missing values
    assert same(feature_matrix(cols, ["g.10"], 4)[:, 0], [np.nan] * 4)


def test_ngram_output_fields_and_defaults():
    pre = one({"n_gram_encoding": {"field": "text", "n_grams": [4, 1, 1], "length": 5}})
    assert pre.n_grams == [1, 4]  # de-duplicated, HashSet order
    assert pre.output_fields() == [f"ngram_0_5.1{i}" for i in range(5)] + ["ngram_0_5.40", "ngram_0_5.41"]
    assert pre.to_dict() == {
        "n_gram_encoding": {"field": "text", "feature_prefix": "ngram_0_5", "n_grams": [1, 4], "start": 0, "length": 5, "custom": False}
    }
    assert set(pre.reverse_map()) == set(pre.output_fields())
    default = one({"n_gram_encoding": {"field": "t", "n_grams": 2}})
    assert (default.start, default.length, default.feature_prefix) == (0, 50, "ngram_0_50")
    assert len(default.output_fields()) == 49


def test_ngram_concatenated_position_names():
    pre = one({"n_gram_encoding": {"field": "t", "n_grams": [2], "length": 20, "feature_prefix": "f"}})
    out = apply_to_doc([pre], {"t": "abcdefghijklmn"})
    assert out["f.211"] == "lm"  # n=2, i=11 -> "f." + "2" + "11"


# -- multi_encoding -------------------------------------------------------------------------------

MULTI = {
    "multi_encoding": {
        "processors": [
            {"n_gram_encoding": {"field": "text", "n_grams": [1], "start": 0, "length": 2, "feature_prefix": "f"}},
            {"one_hot_encoding": {"field": "f.10", "hot_map": {"a": "has_a", "b": "has_b"}}},
            {"one_hot_encoding": {"field": "f.11", "hot_map": {"a": "has_2_a", "b": "has_2_b"}}},
        ]
    }
}


def test_multi_chain():
    pre = one(MULTI)
    assert pre.input_fields() == ["text"]
    assert pre.output_fields() == ["has_a", "has_b", "has_2_a", "has_2_b"]
    assert pre.output_field_type("has_a") == "integer"
    out = apply_to_doc([pre], {"text": "cat"})
    assert {k: out[k] for k in pre.output_fields()} == {"has_a": 0, "has_b": 0, "has_2_a": 1, "has_2_b": 0}
    assert out["f.10"] == "c" and out["f.11"] == "a"  # intermediate outputs stay in the map
    assert pre.reverse_map() == {f: "text" for f in pre.output_fields()}


def test_multi_unconsumed_intermediate_outputs_are_outputs():
    pre = one({"multi_encoding": {"processors": [
        {"n_gram_encoding": {"field": "t", "n_grams": [1], "length": 2, "feature_prefix": "f"}},
        {"frequency_encoding": {"field": "f.10", "feature_name": "freq", "frequency_map": {"x": 0.5}}},
    ]}})
    assert pre.output_fields() == ["f.11", "freq"]
    assert pre.output_field_type("f.11") == "text" and pre.output_field_type("freq") == "double"


def test_multi_several_inputs_needs_custom():
    body = {"processors": [
        {"one_hot_encoding": {"field": "a", "hot_map": {"x": "ax"}}},
        {"one_hot_encoding": {"field": "b", "hot_map": {"y": "by"}}},
    ]}
    with pytest.raises(ApiError) as info:
        parse_preprocessors([{"multi_encoding": body}])
    root = info.value.root_causes()[0]
    assert root["type"] == "illegal_argument_exception"
    assert root["reason"] == (
        "[custom] cannot be false as [multi_encoding] is unable to accurately determine field reverse encoding "
        "for input fields [a,b] and output fields [ax, by]"
    )
    pre = one({"multi_encoding": {**body, "custom": True}})
    assert pre.input_fields() == ["a", "b"]
    assert pre.reverse_map() == {}  # custom: not decoded
    cols = {"a": obj("x", "z"), "b": obj(None, "y")}
    pre.process(cols, 2)
    assert same(cols["ax"], [1, 0]) and same(cols["by"], [np.nan, 1])


def test_multi_on_columns_from_a_frame():
    df = pd.DataFrame({"text": ["cat", None, "bat", "a"]})
    cols = columns_from_frame(df, ["text"])
    one(MULTI).process(cols, 4)
    x = feature_matrix(cols, ["has_b", "has_2_a"], 4)
    assert same(x[:, 0], [0, np.nan, 1, 0])
    assert same(x[:, 1], [1, np.nan, 1, np.nan])  # "a" has no second char: f.11 missing


# -- custom flag and reverse maps -------------------------------------------------------------

def test_custom_preprocessors_have_no_reverse_map():
    pre = one({"one_hot_encoding": {"field": "f", "hot_map": {"a": "fa"}, "custom": True}})
    assert pre.custom is True and pre.reverse_map() == {}
    assert pre.reverse_lookup() == {"fa": "f"}
    assert one({"frequency_encoding": {**FREQ["frequency_encoding"], "custom": "true"}}).custom is True


# -- round trip -------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", [OHE, TME, FREQ, MULTI, {"n_gram_encoding": {"field": "t", "n_grams": [2, 1], "start": -5, "length": 5}}])
def test_to_dict_round_trips(spec):
    pre = one(spec)
    body = pre.to_dict()
    again = one(json.loads(json.dumps(body)))
    assert again == pre and again.to_dict() == body
    assert type(again) is type(pre)


def test_to_dict_shapes():
    assert one(OHE).to_dict()["one_hot_encoding"]["custom"] is False
    assert list(one(OHE).to_dict()["one_hot_encoding"]["hot_map"]) == ["1", "1.0", "bar", "foo", "true"]
    assert one(TME).to_dict() == {"target_mean_encoding": {
        "field": "cat", "feature_name": "cat_tme", "target_map": {"foo": 0.1, "3": 0.3}, "default_value": 0.99, "custom": False,
    }}
    assert list(one(MULTI).to_dict()["multi_encoding"]) == ["processors", "custom"]


def test_constructors_validate_too():
    with pytest.raises(ApiError) as info:
        NGramEncoding("t", [])
    assert info.value.type == "status_exception" and info.value.reason == "[n_grams] must not be empty"
    with pytest.raises(ApiError):
        MultiEncoding([OneHotEncoding("a", {"x": "y"})])
    pre = MultiEncoding([NGramEncoding("t", [1], length=1, feature_prefix="p"), FrequencyEncoding("p.10", "pf", {"a": 1.0})])
    assert pre.input_fields() == ["t"] and pre.output_fields() == ["pf"]
    assert TargetMeanEncoding("a", "b", {"x": 1}, 2).default_value == 2.0


# -- apply_to_doc ---------------------------------------------------------------------------------

def test_apply_to_doc_chain_and_types():
    pres = parse_preprocessors([
        {"one_hot_encoding": {"field": "col1", "custom": False, "hot_map": {"male": "col1_male", "female": "col1_female"}}},
        {"target_mean_encoding": {"field": "col2", "feature_name": "col2_encoded", "target_map": {"S": 5.0, "M": 10.0, "L": 20}, "default_value": 5.0}},
        {"frequency_encoding": {"field": "col3", "feature_name": "col3_encoded", "frequency_map": {"none": 0.75, "true": 0.1, "false": 0.15}}},
    ])
    out = apply_to_doc(pres, {"col1": "female", "col2": "M", "col3": True, "col4": 10})
    assert out == {"col1": "female", "col2": "M", "col3": True, "col4": 10, "col1_male": 0, "col1_female": 1,
                   "col2_encoded": 10.0, "col3_encoded": 0.1}
    assert type(out["col1_male"]) is int and type(out["col2_encoded"]) is float


def test_apply_to_doc_missing_input_leaves_doc_unchanged():
    doc = {"abcdefghij": "klmnopqrst", "n": None}
    for spec in (OHE, TME, FREQ, MULTI):
        assert apply_to_doc([one(spec)], doc) == doc
    assert apply_to_doc([one(OHE)], {"cat": None}) == {"cat": None}


def test_apply_to_doc_does_not_mutate_input():
    doc = {"cat": "foo"}
    apply_to_doc([one(OHE)], doc)
    assert doc == {"cat": "foo"}


def test_process_on_docs_columns_end_to_end():
    docs = [{"cat": "foo"}, {"cat": 2.5}, {}, {"nested": {"cat": 1}}]
    cols = columns_from_docs(docs, ["cat"])
    for spec in (OHE, FREQ):
        one(spec).process(cols, 4)
    x = feature_matrix(cols, ["c_foo", "c_1", "cat_freq"], 4)
    assert same(x[:, 0], [1, 0, np.nan, np.nan])
    assert same(x[:, 2], [0.25, 0.5, np.nan, np.nan])


def test_large_batch_is_vectorised_and_consistent():
    rng = np.random.default_rng(0)
    values = obj(*rng.choice(np.array(["a", "b", "c", None], dtype=object), size=5000))
    pre = one({"one_hot_encoding": {"field": "v", "hot_map": {"a": "va", "b": "vb"}}})
    cols = {"v": values}
    pre.process(cols, 5000)
    expected = [np.nan if v is None else float(v == "a") for v in values]
    assert same(cols["va"], expected)


# -- parsing errors ---------------------------------------------------------------------------------

def chain(err: ApiError) -> list[tuple[str, str]]:
    out = []
    while err is not None:
        out.append((err.type, err.reason))
        err = err.caused_by
    return out


def parse_error(objs) -> ApiError:
    with pytest.raises(ApiError) as info:
        parse_preprocessors(objs)
    assert info.value.status == 400
    return info.value


WRAP = ("x_content_parse_exception", "[trained_model_definition] failed to parse field [preprocessors]")


def test_parse_accepts_none_empty_and_single_object():
    assert parse_preprocessors(None) == []
    assert parse_preprocessors([]) == []
    assert parse_preprocessors({}) == []
    (pre,) = parse_preprocessors(OHE)
    assert isinstance(pre, OneHotEncoding)


def test_parse_rejects_object_map_form():
    err = parse_error({**OHE, **TME})
    assert (err.type, err.reason) == ("illegal_argument_exception", "preprocessors must be an array of preprocessor objects")


def test_parse_rejects_non_array():
    err = parse_error("one_hot_encoding")
    assert chain(err) == [("x_content_parse_exception", "[trained_model_definition] preprocessors doesn't support values of type: VALUE_STRING")]


@pytest.mark.parametrize("item", [{}, {"one_hot_encoding": {}, "frequency_encoding": {}}, "x", 3])
def test_parse_rejects_entries_that_are_not_single_key_objects(item):
    err = parse_error([item])
    assert chain(err) == [WRAP, (
        "x_content_parse_exception",
        "[preprocessors] can be a single object with any number of fields or an array where each entry is an object with a single field",
    )]


def test_parse_unknown_preprocessor():
    err = parse_error([{"one_hot_encodingz": {"field": "a"}}])
    assert err.type == "x_content_parse_exception"
    assert chain(err) == [WRAP, ("named_object_not_found_exception", "unknown field [one_hot_encodingz]")]
    assert err.root_causes() == [{"type": "named_object_not_found_exception", "reason": "unknown field [one_hot_encodingz]"}]


def test_parse_custom_word_embedding_not_supported():
    err = parse_error([{"custom_word_embedding": {"field": "text", "dest_field": "emb"}}])
    assert err.type == "status_exception"
    assert "custom_word_embedding" in err.reason and "not supported" in err.reason
    nested = parse_error([{"multi_encoding": {"processors": [{"custom_word_embedding": {}}, OHE]}}])
    assert nested.type == "status_exception"


@pytest.mark.parametrize(
    "spec, missing",
    [
        ({"one_hot_encoding": {"field": "a"}}, "Required [hot_map]"),
        ({"one_hot_encoding": {}}, "Required [field, hot_map]"),
        ({"target_mean_encoding": {"field": "a", "target_map": {}}}, "Required [feature_name, default_value]"),
        ({"frequency_encoding": {"feature_name": "b", "frequency_map": {}}}, "Required [field]"),
        ({"n_gram_encoding": {"field": "a"}}, "Required [n_grams]"),
    ],
)
def test_parse_missing_required_fields(spec, missing):
    err = parse_error([spec])
    assert chain(err) == [WRAP, ("illegal_argument_exception", missing)]


@pytest.mark.parametrize(
    "spec, inner",
    [
        ({"one_hot_encoding": {"field": "a", "hot_map": {}, "bogus": 1}}, ("x_content_parse_exception", "[one_hot_encoding] unknown field [bogus]")),
        ({"one_hot_encoding": {"field": 5, "hot_map": {}}}, ("x_content_parse_exception", "[one_hot_encoding] field doesn't support values of type: VALUE_NUMBER")),
        ({"one_hot_encoding": {"field": "a", "hot_map": []}}, ("x_content_parse_exception", "[one_hot_encoding] hot_map doesn't support values of type: START_ARRAY")),
        ({"frequency_encoding": {"field": None, "feature_name": "b", "frequency_map": {}}}, ("x_content_parse_exception", "[frequency_encoding] field doesn't support values of type: VALUE_NULL")),
        ({"one_hot_encoding": 7}, ("x_content_parse_exception", "[one_hot_encoding] Expected START_OBJECT but was: VALUE_NUMBER")),
    ],
)
def test_parse_field_type_errors(spec, inner):
    assert chain(parse_error([spec])) == [WRAP, inner]


def test_parse_value_errors_are_wrapped_per_field():
    err = parse_error([{"one_hot_encoding": {"field": "a", "hot_map": {}, "custom": "yes"}}])
    assert chain(err) == [WRAP, ("x_content_parse_exception", "[one_hot_encoding] failed to parse field [custom]"),
                          ("illegal_argument_exception", "Failed to parse value [yes] as only [true] or [false] are allowed.")]
    err = parse_error([{"target_mean_encoding": {"field": "a", "feature_name": "b", "target_map": {"x": True}, "default_value": 1}}])
    assert chain(err)[1:] == [("x_content_parse_exception", "[target_mean_encoding] failed to parse field [target_map]"),
                              ("x_content_parse_exception", "Current token (VALUE_TRUE) not numeric, can not use numeric value accessors")]
    err = parse_error([{"n_gram_encoding": {"field": "a", "n_grams": [1], "start": "abc"}}])
    assert chain(err)[1:] == [("x_content_parse_exception", "[n_gram_encoding] failed to parse field [start]"),
                              ("number_format_exception", 'For input string: "abc"')]
    err = parse_error([{"target_mean_encoding": {"field": "a", "feature_name": "b", "target_map": {}, "default_value": ""}}])
    assert chain(err)[-1] == ("number_format_exception", "empty String")


def test_parse_numeric_coercion_like_es():
    pre = one({"n_gram_encoding": {"field": "a", "n_grams": ["2", 1.0], "start": "1", "length": 3.9}})
    assert (pre.n_grams, pre.start, pre.length) == ([1, 2], 1, 3)
    tme = one({"target_mean_encoding": {"field": "a", "feature_name": "b", "target_map": {"x": "0.5", "y": 2}, "default_value": "1e-1"}})
    assert tme.target_map == {"x": 0.5, "y": 2.0} and tme.default_value == 0.1
    ohe = one({"one_hot_encoding": {"field": "a", "hot_map": {"x": 1, "y": True}}})
    assert ohe.hot_map == {"x": "1", "y": "true"}


NGRAM_BUILD = ("x_content_parse_exception", "Failed to build [n_gram_encoding] after last required field arrived")


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"n_grams": []}, "[n_grams] must not be empty"),
        ({"n_grams": [1, 6, 0]}, "[n_grams] is invalid [0, 1, 6]; minimum supported value is [1]; maximum supported value is [5]"),
        ({"n_grams": [1], "start": -3, "length": 5}, "if [start] is negative, [length] + [start] must be less than 0"),
        ({"n_grams": [1], "length": 0}, "[length] must be a positive integer"),
        ({"n_grams": [1], "length": 101}, "[length] must be not be greater than [100]"),
        ({"n_grams": [4], "length": 3}, "[n_grams] and [length] are invalid; all ngrams must be shorter than or equal to length [3]"),
    ],
)
def test_parse_ngram_validation(body, reason):
    err = parse_error([{"n_gram_encoding": {"field": "t", **body}}])
    assert chain(err) == [WRAP, NGRAM_BUILD, ("status_exception", reason)]
    assert err.root_causes()[0] == {"type": "status_exception", "reason": reason}


def test_parse_ngram_validation_with_every_argument_given():
    # ES builds the object while parsing the last constructor argument: one more wrapper
    err = parse_error([{"n_gram_encoding": {"field": "t", "n_grams": [1], "start": 0, "length": 101, "custom": False, "feature_prefix": "f"}}])
    assert chain(err) == [WRAP, ("x_content_parse_exception", "[n_gram_encoding] failed to parse field [feature_prefix]"),
                          NGRAM_BUILD, ("status_exception", "[length] must be not be greater than [100]")]


def test_parse_ngram_negative_start_allowed_when_window_fits():
    pre = one({"n_gram_encoding": {"field": "t", "n_grams": [1], "start": -5, "length": 5}})
    assert pre.feature_prefix == "ngram_-5_5"


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"processors": [OHE]}, "processors must be an array of objects with at least length 2"),
        ({"processors": OHE}, "processors must be an array of objects"),
        ({"custom": True}, "processors must be an array of objects"),
    ],
)
def test_parse_multi_validation(body, reason):
    err = parse_error([{"multi_encoding": body}])
    assert chain(err) == [WRAP, ("illegal_argument_exception", reason)]


def test_parse_multi_inner_errors_are_wrapped_twice():
    err = parse_error([{"multi_encoding": {"processors": [{"one_hot_encoding": {"field": "a"}}, OHE]}}])
    assert chain(err) == [WRAP, ("x_content_parse_exception", "[multi_encoding] failed to parse field [processors]"),
                          ("illegal_argument_exception", "Required [hot_map]")]
    err = parse_error([{"multi_encoding": {"processors": [OHE, OHE], "what": 1}}])
    assert chain(err) == [WRAP, ("x_content_parse_exception", "[multi_encoding] unknown field [what]")]


def test_parse_preprocessor_single():
    pre = parse_preprocessor("frequency_encoding", FREQ["frequency_encoding"])
    assert isinstance(pre, FrequencyEncoding)
    with pytest.raises(ApiError) as info:
        parse_preprocessor("nope", {})
    assert info.value.reason == "unknown field [nope]"


def test_error_body_renders():
    err = parse_error([{"one_hot_encoding": {"field": "a"}}])
    body = err.body()
    assert body["status"] == 400
    assert body["error"]["type"] == "x_content_parse_exception"
    assert body["error"]["root_cause"] == [{"type": "illegal_argument_exception", "reason": "Required [hot_map]"}]
    assert body["error"]["caused_by"]["reason"] == "Required [hot_map]"


def test_multi_reverse_lookup_one_input_and_several_inputs():
    chain = [{"n_gram_encoding": {"field": "text", "n_grams": [1], "start": 0, "length": 2, "feature_prefix": "f"}},
             {"one_hot_encoding": {"field": "f.10", "hot_map": {"a": "has_a"}, "custom": True}}]
    multi = parse_preprocessors([{"multi_encoding": {"custom": True, "processors": chain}}])[0]
    assert multi.reverse_lookup() == {"f.11": "text", "has_a": "text"}
    chain.append({"one_hot_encoding": {"field": "other", "hot_map": {"a": "has_3_a"}, "custom": True}})
    multi = parse_preprocessors([{"multi_encoding": {"custom": True, "processors": chain}}])[0]
    with pytest.raises(ApiError) as err:
        multi.reverse_lookup()
    assert err.value.reason == ("[multi_encoding] is unable to accurately determine field reverse encoding for input "
                                "fields [text,other] and output fields [f.11, has_a, has_3_a]")
    assert multi.reverse_map() == {}  # custom: never decoded for feature importance


def test_dotted_input_reads_a_nested_object():
    pre = parse_preprocessors([{"frequency_encoding": {"field": "a.b", "feature_name": "enc",
                                                       "frequency_map": {"x": 0.5}}}])
    out = apply_to_doc(pre, {"a": {"b": "x"}})
    assert out == {"a": {"b": "x"}, "enc": 0.5}
