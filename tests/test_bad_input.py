"""Bad input gets an ES-shaped error or the ES result, never a traceback; nothing stored is damaged."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import es_infer_nb
from es_infer_nb import ApiError
from helpers import churn_model, error_of, stump_regression

BAD_BODIES = [
    ("PUT", "_ml/trained_models/m", "{not json"),
    ("PUT", "_ml/trained_models/m", "[1, 2]"),
    ("PUT", "_ml/trained_models/m", {"input": "x"}),
    ("PUT", "_ml/trained_models/m", {"input": {"field_names": ["x"]}, "inference_config": "regression"}),
    ("PUT", "_ml/trained_models/m", {"input": {"field_names": ["x"]}, "inference_config": {"regression": {}},
                                     "definition": {"trained_model": {"tree": {"tree_structure": "nodes"}}}}),
    ("PUT", "_ml/trained_models/m", {"input": {"field_names": ["x"]}, "inference_config": {"regression": {}},
                                     "definition": {"trained_model": {"forest": {}}}}),
    ("PUT", "_ml/trained_models/m", {"input": {"field_names": ["x"]}, "inference_config": {"regression": {}},
                                     "definition": {"trained_model": {"tree": {"feature_names": ["x"], "tree_structure": [
                                         {"node_index": 0, "leaf_value": [1.0, None]}]}}}}),
    ("PUT", "_ml/trained_models/m", {"input": {"field_names": ["x"]}, "inference_config": {"regression": {}},
                                     "definition": {"trained_model": {"tree": {"feature_names": ["x"], "tree_structure": [
                                         {"node_index": 0, "split_feature": 0, "threshold": 1.0, "left_child": 1,
                                          "right_child": 2}, {"node_index": 1, "leaf_value": [1.0, 2.0]},
                                         {"node_index": 2, "leaf_value": 1.0}], "target_type": "classification"}}}}),
    ("PUT", "_ml/trained_models/m", {"input": {"field_names": ["x"]}, "inference_config": {"regression": {}},
                                     "compressed_definition": "not-base64-gzip"}),
    ("POST", "_ml/trained_models/m/_infer", {"docs": "x"}),
    ("POST", "_ml/trained_models/m/_infer", {"docs": [{"x": 1}], "inference_config": {"regression": {"results_field": 5, "bogus": 1}}}),
    ("GET", "_ml/trained_models", None),
]


@pytest.mark.parametrize("method,path,body", BAD_BODIES)
def test_bad_bodies_answer_es_errors_and_keep_state(tmp_path, method, path, body):
    eng = es_infer_nb.Engine(tmp_path)
    assert eng.request("PUT", "_ml/trained_models/keep", stump_regression()).status == 200
    params = {"size": "ten"} if method == "GET" else None
    resp = eng.request(method, path, body, params=params)
    assert 400 <= resp.status < 500, resp.body
    err = error_of(resp)
    assert isinstance(err["type"], str) and err["type"].endswith("exception")
    assert isinstance(err["reason"], str) and err["reason"]
    assert "Traceback" not in json.dumps(resp.body)
    assert es_infer_nb.Engine(tmp_path).infer("keep", [{"x": 0.0}]) == [{"predicted_value": 1.0}]


def test_unexpected_exception_is_an_es_500_body(engine, monkeypatch):
    from es_infer_nb.api import trained_models

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(trained_models, "emit", boom)
    engine.request("PUT", "_ml/trained_models/m", stump_regression())
    r = engine.request("GET", "_ml/trained_models/m")
    assert r.status == 500
    assert r.body["error"]["type"] == "runtime_error_exception"
    assert r.body["error"]["reason"] == "disk on fire"


def test_dataframe_rows_never_dropped_or_reordered(engine):
    engine.request("PUT", "_ml/trained_models/churn-gbt", churn_model())
    df = pd.DataFrame(
        {"tenure": [3, None, 40.0, np.nan, 5], "plan": ["pro", None, "basic", np.nan, "x"], "id": list("abcde")},
        index=[10, 3, 7, 1, 99],
    )
    out = df.infer.run("churn-gbt", engine=engine, inference_config={"classification": {"num_top_classes": 2}})
    assert list(out.index) == [10, 3, 7, 1, 99]
    assert list(out["id"]) == list("abcde")
    pv = out["ml.inference.predicted_value"]
    assert pv.iloc[0] == "churn" and pv.iloc[2] == "stay" and pv.iloc[4] == "churn"
    assert pd.isna(pv.iloc[1]) and pd.isna(pv.iloc[3])
    warn = out["ml.inference.warning"]
    assert warn.iloc[1] == "Model [churn-gbt] could not be inferred as all fields were missing"
    assert pd.isna(warn.iloc[0])
    assert isinstance(out["ml.inference.top_classes"].dtype, pd.ArrowDtype)
    assert out["ml.inference.top_classes"].iloc[0][0]["class_name"] == "churn"
    assert set(out["ml.inference.model_id"]) == {"churn-gbt"}


def test_empty_dataframe_and_missing_columns(engine):
    engine.request("PUT", "_ml/trained_models/m", stump_regression())
    empty = pd.DataFrame({"x": pd.Series([], dtype=float)})
    out = empty.infer.run("m", engine=engine)
    assert len(out) == 0 and "ml.inference.predicted_value" in out.columns
    other = pd.DataFrame({"y": [1, 2]})
    out = other.infer.run("m", engine=engine)
    assert out["ml.inference.warning"].notna().all()
    assert out["ml.inference.predicted_value"].isna().all()


def test_dataframe_errors_raise_api_error(engine):
    df = pd.DataFrame({"x": [1.0]})
    with pytest.raises(ApiError) as info:
        df.infer.run("nope", engine=engine)
    assert info.value.status == 404 and info.value.type == "resource_not_found_exception"
    engine.request("PUT", "_ml/trained_models/m", stump_regression())
    with pytest.raises(ApiError) as info:
        df.infer.run("m", engine=engine, inference_config={"classification": {}})
    assert info.value.status == 400


def test_dtypes_strings_nullable_and_categorical(engine):
    engine.request("PUT", "_ml/trained_models/churn-gbt", churn_model())
    df = pd.DataFrame({
        "tenure": pd.array([3, None, 20], dtype="Int64"),
        "plan": pd.Categorical(["pro", "basic", None]),
    })
    out = df.infer.run("churn-gbt", engine=engine)
    docs = engine.infer("churn-gbt", [{"tenure": 3, "plan": "pro"}, {"plan": "basic"}, {"tenure": 20}])
    for i, doc in enumerate(docs):
        assert out["ml.inference.predicted_value"].iloc[i] == doc["predicted_value"]
        assert out["ml.inference.prediction_probability"].iloc[i] == pytest.approx(doc["prediction_probability"])


def test_field_map_and_target_field(engine):
    engine.request("PUT", "_ml/trained_models/m", stump_regression())
    df = pd.DataFrame({"value": [0.1, 0.9], "x": [None, None]})
    out = df.infer.run("m", engine=engine, field_map={"value": "x"}, target_field="pred")
    assert list(out["pred.predicted_value"]) == [1.0, 2.0]
    assert out["x"].isna().all()  # originals are kept


def test_inplace_and_series(engine):
    engine.request("PUT", "_ml/trained_models/m", stump_regression())
    df = pd.DataFrame({"x": [0.1, 0.9]})
    assert df.infer.run("m", engine=engine, inplace=True) is None
    assert list(df["ml.inference.predicted_value"]) == [1.0, 2.0]
    s = pd.Series([0.2, 0.8, None], index=list("abc"))
    res = s.infer.run("m", engine=engine)
    assert list(res.index) == list("abc")
    assert list(res["ml.inference.predicted_value"])[:2] == [1.0, 2.0]


def test_parquet_round_trip_of_nested_columns(engine, tmp_path):
    engine.request("PUT", "_ml/trained_models/churn-gbt", churn_model())
    df = pd.DataFrame({"tenure": [3, 20], "plan": ["pro", "basic"]})
    out = df.infer.run("churn-gbt", engine=engine, inference_config={
        "classification": {"num_top_classes": -1, "num_top_feature_importance_values": 2}})
    path = tmp_path / "out.parquet"
    out.to_parquet(path)
    back = pd.read_parquet(path, dtype_backend="pyarrow")
    assert back["ml.inference.top_classes"].iloc[0][0]["class_name"] == "churn"
    assert back["ml.inference.feature_importance"].iloc[0][0]["feature_name"] == "tenure"


def test_interrupt_keeps_finished_batches(engine, monkeypatch):
    from es_infer_nb import InferenceInterrupted
    from es_infer_nb.models.tree.evaluate import CompiledModel

    engine.request("PUT", "_ml/trained_models/m", stump_regression())
    real = CompiledModel.run
    calls = {"n": 0}

    def flaky(self, x):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, x)

    monkeypatch.setattr(CompiledModel, "run", flaky)
    df = pd.DataFrame({"x": [0.1, 0.9] * 5})
    with pytest.raises(InferenceInterrupted) as info:
        df.infer.run("m", engine=engine, batch_size=2)
    stop = info.value
    assert stop.rows_done == 4 and stop.rows_total == 10
    partial = stop.partial
    assert list(partial["ml.inference.predicted_value"][:4]) == [1.0, 2.0, 1.0, 2.0]
    assert partial["ml.inference.predicted_value"][4:].isna().all()
    assert partial["ml.inference.error"][4:].str.contains("interrupted").all()
    st = engine.request("GET", "_ml/trained_models/m/_stats").body["trained_model_stats"][0]["inference_stats"]
    assert st["inference_count"] == 4


def test_progress_bar_for_long_runs(engine, capsys):
    engine.request("PUT", "_ml/trained_models/m", stump_regression())
    df = pd.DataFrame({"x": np.linspace(0, 1, 1000)})
    df.infer.run("m", engine=engine, batch_size=100, progress=True)
    err = capsys.readouterr().err
    assert "infer m" in err and "/1000" in err and "rows/s" in err
    df.infer.run("m", engine=engine, batch_size=100)  # short runs stay quiet by default
    assert "infer m" not in capsys.readouterr().err
