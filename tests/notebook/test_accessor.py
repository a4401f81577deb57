"""``df.infer`` / ``series.infer`` against a real engine (and a fake runner for argument plumbing)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import es_infer_nb
from es_infer_nb import ApiError, set_default_engine
from es_infer_nb.notebook.options import options


@pytest.fixture(autouse=True)
def _clean_options():
    options.reset()
    yield
    options.reset()


def test_results_aligned_to_a_non_default_index(eng):
    df = pd.DataFrame({"x": [3.0, 0.1, np.nan, 0.5], "other": list("abcd")}, index=[40, 10, 30, 20])
    out = df.infer.run("stump", engine=eng)
    assert list(out.index) == [40, 10, 30, 20]
    assert list(out.columns[:2]) == ["x", "other"]
    assert out["ml.inference.predicted_value"].tolist()[:2] == [2.0, 1.0]
    assert np.isnan(out["ml.inference.predicted_value"].iloc[2])  # all fields missing → warning, no value
    assert out["ml.inference.predicted_value"].iloc[3] == 1.0  # lte threshold goes left
    assert out["ml.inference.warning"].iloc[2].startswith("Model [stump] could not be inferred")
    assert (out["ml.inference.model_id"] == "stump").all()
    # the input frame is untouched
    assert list(df.columns) == ["x", "other"]


def test_duplicate_and_string_index_keep_every_row(eng):
    df = pd.DataFrame({"x": [0.0, 1.0, 0.0]}, index=["b", "a", "b"])
    out = df.infer.run("stump", engine=eng)
    assert list(out.index) == ["b", "a", "b"]
    assert out["ml.inference.predicted_value"].tolist() == [1.0, 2.0, 1.0]


def test_empty_frame(eng):
    df = pd.DataFrame({"x": pd.Series([], dtype=float)})
    out = df.infer.run("stump", engine=eng)
    assert len(out) == 0 and "ml.inference.predicted_value" in out.columns


def test_inplace_adds_columns_and_returns_none(eng):
    df = pd.DataFrame({"x": [0.2, 0.9]}, index=pd.Index([7, 3], name="id"))
    assert df.infer.run("stump", engine=eng, target_field="pred", inplace=True) is None
    assert df["pred.predicted_value"].tolist() == [1.0, 2.0]
    assert df.index.name == "id" and list(df.index) == [7, 3]


def test_existing_result_columns_are_replaced_in_place(eng):
    df = pd.DataFrame({"x": [0.2, 0.9]})
    first = df.infer.run("stump", engine=eng)
    first["x"] = [0.9, 0.2]
    second = first.infer.run("stump", engine=eng)
    assert list(second.columns) == list(first.columns)  # no duplicate columns
    assert second["ml.inference.predicted_value"].tolist() == [2.0, 1.0]
    assert first["ml.inference.predicted_value"].tolist() == [1.0, 2.0]  # the caller's frame is unchanged


def test_inference_config_field_map_and_arrow_columns(eng):
    df = pd.DataFrame({"months": [3, 20], "plan": ["pro", "basic"]}, index=[9, 8])
    out = df.infer.run(
        "churner",
        engine=eng,
        field_map={"months": "tenure"},
        inference_config={"classification": {"num_top_classes": 2}},
    )
    assert out["ml.inference.predicted_value"].tolist() == ["churn", "stay"]
    top = out["ml.inference.top_classes"]
    assert isinstance(top.dtype, pd.ArrowDtype)
    assert [c["class_name"] for c in top.iloc[0]] == ["churn", "stay"]
    assert list(out.index) == [9, 8]


def test_default_engine_is_used_without_engine_argument(eng):
    set_default_engine(eng)
    try:
        out = pd.DataFrame({"x": [1.0]}).infer.run("stump")
    finally:
        set_default_engine(None)
    assert out["ml.inference.predicted_value"].tolist() == [2.0]


def test_unknown_model_raises_api_error(eng):
    df = pd.DataFrame({"x": [1.0]})
    with pytest.raises(ApiError) as info:
        df.infer.run("nope", engine=eng)
    assert info.value.status == 404
    assert info.value.type == "resource_not_found_exception"
    assert "nope" in info.value.reason


def test_wrong_inference_config_raises_api_error(eng):
    df = pd.DataFrame({"x": [1.0]})
    with pytest.raises(ApiError) as info:
        df.infer.run("stump", engine=eng, inference_config={"classification": {}})
    assert info.value.status == 400
    assert "regression" in info.value.reason


def test_series_accessor_uses_the_model_input_field(eng):
    s = pd.Series([0.1, 0.9, np.nan], index=["p", "q", "r"], name="whatever")
    out = s.infer.run("stump", engine=eng)
    assert list(out.index) == ["p", "q", "r"]
    assert "whatever" not in out.columns and "x" not in out.columns  # only result columns
    assert out["ml.inference.predicted_value"].tolist()[:2] == [1.0, 2.0]


def test_series_accessor_with_field_and_field_map(eng):
    s = pd.Series([0.9, 0.1])
    out = s.infer.run("stump", engine=eng, field="v", field_map={"v": "x"}, target_field="t")
    assert out["t.predicted_value"].tolist() == [2.0, 1.0]


def test_series_accessor_unknown_model(eng):
    with pytest.raises(ApiError) as info:
        pd.Series([1.0]).infer.run("nope", engine=eng)
    assert info.value.status == 404 and info.value.type == "resource_not_found_exception"


def test_accessors_are_registered_on_import():
    assert hasattr(pd.DataFrame, "infer") and hasattr(pd.Series, "infer")
    assert es_infer_nb.notebook.accessor.InferFrameAccessor.run.__doc__
    assert "rows" in repr(pd.DataFrame({"x": [1]}).infer)


def test_arguments_and_notebook_options_reach_the_runner(monkeypatch):
    import es_infer_nb.models.runner as runner

    calls = []

    def fake_infer_frame(engine, model_id, df, **kwargs):
        calls.append((engine, model_id, df.copy(), kwargs))
        return pd.DataFrame({"ml.inference.predicted_value": np.arange(len(df), dtype=float)}, index=df.index)

    monkeypatch.setattr(runner, "infer_frame", fake_infer_frame)
    sentinel = object()
    df = pd.DataFrame({"x": [1, 2]}, index=[5, 6])

    df.infer.run("m", engine=sentinel, inference_config={"regression": {}}, field_map={"x": "y"},
                 target_field="t", batch_size=7, device="cpu", progress=False)
    engine, model_id, _, kwargs = calls[-1]
    assert engine is sentinel and model_id == "m"
    assert dict(kwargs).pop("precision", None) is None  # no precision asked: the backend's default
    kwargs = {k: v for k, v in kwargs.items() if k != "precision"}
    assert kwargs == {"inference_config": {"regression": {}}, "field_map": {"x": "y"}, "target_field": "t",
                      "batch_size": 7, "device": "cpu", "progress": False}

    options.batch_size, options.device, options.progress = 1000, "cuda:1", True
    out = df.infer.run("m", engine=sentinel)
    kwargs = calls[-1][3]
    assert (kwargs["batch_size"], kwargs["device"], kwargs["progress"]) == (1000, "cuda:1", True)
    assert out["ml.inference.predicted_value"].tolist() == [0.0, 1.0]
    # an explicit argument beats the notebook option
    df.infer.run("m", engine=sentinel, batch_size=3)
    assert calls[-1][3]["batch_size"] == 3


def test_series_frame_is_named_after_field(monkeypatch, eng):
    import es_infer_nb.models.runner as runner

    seen = []

    def fake_infer_frame(engine, model_id, df, **kwargs):
        seen.append(list(df.columns))
        return pd.DataFrame(index=df.index)

    monkeypatch.setattr(runner, "infer_frame", fake_infer_frame)
    pd.Series([1.0]).infer.run("stump", engine=eng)
    pd.Series([1.0]).infer.run("stump", engine=eng, field="other")
    assert seen == [["x"], ["other"]]


def test_model_id_must_be_a_string(eng):
    with pytest.raises(TypeError, match="model_id"):
        pd.DataFrame({"x": [1]}).infer.run(None, engine=eng)
