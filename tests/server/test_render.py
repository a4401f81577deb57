"""filter_path and pretty as ES renders them (unit tests, no server)."""

from __future__ import annotations

from es_infer_nb.server.render import filter_path, to_json_bytes

BODY = {
    "count": 2,
    "trained_model_configs": [
        {"model_id": "a", "input": {"field_names": ["x", "y"]}, "tags": []},
        {"model_id": "b", "input": {"field_names": ["z"]}, "tags": ["t"]},
    ],
    "nested": {"deep": {"deeper": {"model_id": "c", "other": 1}}},
}


def test_includes_through_arrays_and_wildcards():
    assert filter_path(BODY, "trained_model_configs.model_id") == {"trained_model_configs": [{"model_id": "a"}, {"model_id": "b"}]}
    assert filter_path(BODY, "trained_model_configs.inp*.field_names") == {
        "trained_model_configs": [{"input": {"field_names": ["x", "y"]}}, {"input": {"field_names": ["z"]}}]
    }
    assert filter_path(BODY, "*.model_id") == {"trained_model_configs": [{"model_id": "a"}, {"model_id": "b"}]}
    assert filter_path(BODY, "count,nested.deep.deeper.other") == {"count": 2, "nested": {"deep": {"deeper": {"other": 1}}}}


def test_double_star_matches_any_depth():
    assert filter_path(BODY, "**.model_id") == {
        "trained_model_configs": [{"model_id": "a"}, {"model_id": "b"}],
        "nested": {"deep": {"deeper": {"model_id": "c"}}},
    }


def test_nothing_matching_is_an_empty_object_and_empty_containers_are_dropped():
    assert filter_path(BODY, "missing") == {}
    assert filter_path(BODY, "trained_model_configs.tags") == {"trained_model_configs": [{"tags": []}, {"tags": ["t"]}]}
    assert filter_path({"a": [1, 2]}, "a.b") == {}


def test_excludes():
    out = filter_path(BODY, "-trained_model_configs.input,-nested")
    assert out == {"count": 2, "trained_model_configs": [{"model_id": "a", "tags": []}, {"model_id": "b", "tags": ["t"]}]}
    assert filter_path(BODY, "trained_model_configs,-**.tags") == {
        "trained_model_configs": [
            {"model_id": "a", "input": {"field_names": ["x", "y"]}},
            {"model_id": "b", "input": {"field_names": ["z"]}},
        ]
    }


def test_no_filter_is_identity():
    assert filter_path(BODY, None) is BODY
    assert filter_path(BODY, "") is BODY


def test_pretty_matches_jacksons_printer():
    text = to_json_bytes({"a": 1, "b": [], "c": {}, "d": [{"e": "é"}], "f": None, "g": True}, pretty=True).decode()
    assert text == (
        "{\n"
        '  "a" : 1,\n'
        '  "b" : [ ],\n'
        '  "c" : { },\n'
        '  "d" : [\n'
        "    {\n"
        '      "e" : "é"\n'
        "    }\n"
        "  ],\n"
        '  "f" : null,\n'
        '  "g" : true\n'
        "}\n"
    )


def test_compact_and_numpy_values():
    import numpy as np

    assert to_json_bytes({"a": [1, 2], "b": "x"}) == b'{"a":[1,2],"b":"x"}'
    assert to_json_bytes({"v": np.float32(0.5), "w": np.arange(2)}) == b'{"v":0.5,"w":[0,1]}'
    assert to_json_bytes({"v": np.float32(0.5)}, pretty=True) == b'{\n  "v" : 0.5\n}\n'


def test_json_bytes_mean_what_the_standard_library_writes():
    """orjson writes the common answers; where it could change a meaning (NaN, non-string keys,
    huge integers, lone surrogates) the standard library writes them, as before."""
    import json

    import numpy as np

    from es_infer_nb.server.render import _fast_json, to_json_bytes

    vectors = {"inference_results": [{"predicted_value": [float(x) for x in np.random.default_rng(0).random(384, dtype=np.float32)]}
                                     for _ in range(4)]}
    assert _fast_json(vectors) is not None
    odd = [{"a": [1e-05, 1e16, -0.0, 3.0]}, {"a": float("nan")}, {"x": float("inf")}, {1: 2}, {"x": 2**70},
           {"n": None}, {"v": np.float32(0.5), "w": np.arange(3)}, {"u": "héllo ✓"}]
    for body in [vectors, *odd]:
        std = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=lambda v: v.tolist() if hasattr(v, "tolist") else v.item())
        assert json.loads(to_json_bytes(body)) == json.loads(std) or body is odd[1] or body is odd[2], body
    # Jackson's WRITE_NAN_AS_STRINGS: an answer stays JSON (issue 19: never a body that is not JSON)
    assert to_json_bytes({"a": float("nan")}) == b'{"a":"NaN"}'
    assert to_json_bytes({"x": [float("inf"), -float("inf")]}) == b'{"x":["Infinity","-Infinity"]}'
    assert to_json_bytes({"a": np.float32("nan")}, pretty=True) == b'{\n  "a" : "NaN"\n}\n'
    assert to_json_bytes({1: 2}) == b'{"1":2}'
    assert to_json_bytes({"s": "\ud800"}) == b'{"s":"\\ud800"}'


def test_lone_surrogate_and_nan_together_stay_json():
    # found by the request fuzzer: an answer holding a lone surrogate and a NaN (a document indexed from Python)
    # was written by the fallback path with a bare NaN token
    import json

    def refuse(token):
        raise ValueError(token)

    body = {"t": "a\ud800", "n": float("nan"), "l": [float("inf")]}
    for pretty in (False, True):
        assert json.loads(to_json_bytes(body, pretty=pretty), parse_constant=refuse) == {
            "t": "a\ud800", "n": "NaN", "l": ["Infinity"]}
