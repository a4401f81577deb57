"""ddf.infer on a two-process LocalCluster: same rows as the pandas path, meta from configs, stats home."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import es_infer_nb
from es_infer_nb import ApiError, Engine

dd = pytest.importorskip("dask.dataframe")

from helpers import churn_model, stump_regression  # noqa: E402


def _engine() -> Engine:
    engine = Engine()
    engine.request("PUT", "_ml/trained_models/reg", stump_regression()).raise_for_status()
    engine.request("PUT", "_ml/trained_models/churn-m", churn_model()).raise_for_status()
    return engine


def _frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    x = rng.random(n)
    x[::17] = np.nan
    return pd.DataFrame({"x": x, "tenure": rng.integers(0, 30, n).astype(float),
                         "plan": rng.choice(["basic", "pro", None], n)}, index=np.arange(n) * 3)


def _inference_count(engine: Engine, model_id: str) -> dict:
    body = engine.request("GET", f"_ml/trained_models/{model_id}/_stats").raise_for_status().body
    return body["trained_model_stats"][0]["inference_stats"]


CASES = [
    ("reg", None),
    ("reg", {"regression": {"num_top_feature_importance_values": 1, "results_field": "y"}}),
    ("churn-m", {"classification": {"num_top_classes": 2, "num_top_feature_importance_values": 2}}),
]


@pytest.mark.parametrize("model_id,update", CASES)
def test_run_equals_pandas_row_for_row(client, model_id, update):
    engine = _engine()
    ddf = dd.from_pandas(_frame(), npartitions=5)
    out = ddf.infer.run(model_id, engine=engine, inference_config=update)
    got = out.compute()
    expected = ddf.compute().infer.run(model_id, engine=_engine(), inference_config=update)
    assert list(got.index) == list(expected.index)
    assert list(got.columns) == list(out.columns)
    assert (got.dtypes == out.dtypes).all()  # every partition as declared
    pd.testing.assert_frame_equal(got[expected.columns], expected)
    # declared columns the pandas frame did not produce (no row had an error) are all null
    assert got[[c for c in got.columns if c not in expected.columns]].isna().all().all()


def test_stats_of_workers_reach_the_engine(client):
    engine = _engine()
    ddf = dd.from_pandas(_frame(), npartitions=8)
    before = _inference_count(engine, "reg")
    ddf.infer.run("reg", engine=engine).compute()
    stats = _inference_count(engine, "reg")
    assert stats["inference_count"] - before["inference_count"] == 400
    assert stats["missing_all_fields_count"] == int(_frame()["x"].isna().sum())
    # each worker process loaded the model once, whatever the number of partitions
    assert 1 <= stats["cache_miss_count"] <= 2
    ddf.infer.run("reg", engine=engine).compute()  # a second job over the same state: no new load
    again = _inference_count(engine, "reg")
    assert again["inference_count"] == 800
    assert again["cache_miss_count"] == stats["cache_miss_count"]


def test_no_model_runs_while_the_graph_is_built(client, monkeypatch):
    from es_infer_nb.models.tree.model import TreeModel

    calls = []
    original = TreeModel.infer_columns
    monkeypatch.setattr(TreeModel, "infer_columns", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    engine = _engine()
    ddf = dd.from_pandas(_frame(), npartitions=4)
    out = ddf.infer.run("churn-m", engine=engine, inference_config={"classification": {"num_top_classes": 1}})
    piped = ddf.infer.pipeline({"processors": [{"inference": {"model_id": "reg", "tag": "t"}}]}, engine=engine)
    assert "ml.inference.top_classes" in out.columns and "ml.inference.t.predicted_value" in piped.columns
    assert calls == []  # no model call in this process: meta came from the configs
    assert engine.models.loaded("churn-m", "cpu") is None and engine.models.loaded("reg", "cpu") is None
    assert _inference_count(engine, "churn-m")["cache_miss_count"] == 0
    assert len(out.compute()) == 400
    assert calls == []  # the partitions ran in the worker processes


def test_pipeline_equals_pandas_and_moves_ingest_stats(client):
    engine = _engine()
    body = {"processors": [{"inference": {"model_id": "reg", "tag": "r"}},
                           {"inference": {"model_id": "churn-m", "target_field": "churn",
                                          "inference_config": {"classification": {"num_top_classes": 2}}}},
                           {"set": {"field": "stage", "value": "scored"}}]}
    engine.request("PUT", "_ingest/pipeline/score", body).raise_for_status()
    ddf = dd.from_pandas(_frame(), npartitions=4)
    got = ddf.infer.pipeline("score", engine=engine).compute()
    expected = ddf.compute().infer.pipeline(body, engine=_engine())
    assert list(got.index) == list(expected.index)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_dtype=False)
    answer = engine.request("GET", "_ml/trained_models/reg/_stats").raise_for_status().body
    ingest = answer["trained_model_stats"][0]["ingest"]
    assert ingest["total"]["count"] == 400
    assert ingest["pipelines"]["score"]["count"] == 400


def test_unknown_model_and_pipeline_fail_while_building(client):
    engine = _engine()
    ddf = dd.from_pandas(_frame(20), npartitions=2)
    with pytest.raises(ApiError) as err:
        ddf.infer.run("nope", engine=engine)
    assert err.value.status == 404
    with pytest.raises(ApiError):
        ddf.infer.pipeline("missing", engine=engine)


def test_accessor_registered_on_import():
    assert hasattr(dd.DataFrame, "infer")
    assert "dask" in repr(dd.from_pandas(_frame(10), npartitions=2).infer).lower()
    assert es_infer_nb.__name__ == "es_infer_nb"


def test_make_predict_fn_is_the_pandas_path():
    from es_infer_nb.dask.config import job_config, make_predict_fn

    engine = _engine()
    frame = _frame(50)
    predict = make_predict_fn(job_config(engine, "run", {"model_id": "reg"}))
    pd.testing.assert_frame_equal(predict(frame), frame.infer.run("reg", engine=engine))


def test_local_scheduler_merges_stats_and_meta_declares_dynamic_fields():
    engine = _engine()
    ddf = dd.from_pandas(_frame(60), npartitions=3)
    out = ddf.infer.run("reg", engine=engine).compute(scheduler="sync")
    assert len(out) == 60
    assert _inference_count(engine, "reg")["inference_count"] == 60  # merged in this process, no cluster
    body = {"processors": [{"set": {"field": "{{plan}}_seen", "value": True}}]}
    with pytest.raises(ValueError, match="meta="):
        ddf.infer.pipeline(body, engine=engine).compute(scheduler="sync")
    declared = ddf.infer.pipeline(body, engine=engine, meta={"basic_seen": object, "pro_seen": object,
                                                              "_seen": object})
    got = declared.compute(scheduler="sync")
    assert got["basic_seen"].notna().sum() == (ddf["plan"] == "basic").sum().compute()
