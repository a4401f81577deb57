"""Ctrl-C during ``df.infer.run`` keeps the finished batches, and ``resume()`` finishes the run with the
same answer an uninterrupted run gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from es_infer_nb import Engine, InferenceInterrupted
from es_infer_nb.models.tree.evaluate import CompiledModel
from es_infer_nb.frames import resume as resume_module
from es_infer_nb.frames.resume import combine_results, last_interrupted

CHURN_CONFIG = {"classification": {"num_top_classes": 2, "num_top_feature_importance_values": 2}}


@pytest.fixture
def interrupt(monkeypatch):
    """``interrupt(at={3})``: the model's 3rd batch call (counted over the test) raises KeyboardInterrupt."""
    real = CompiledModel.run
    state = {"n": 0, "at": set()}

    def flaky(self, x):
        state["n"] += 1
        if state["n"] in state["at"]:
            raise KeyboardInterrupt
        return real(self, x)

    monkeypatch.setattr(CompiledModel, "run", flaky)

    def arm(*calls: int) -> None:
        state["n"] = 0
        state["at"] = set(calls)

    yield arm
    resume_module.forget()


def _inference_count(engine, model_id):
    body = engine.request("GET", f"_ml/trained_models/{model_id}/_stats").body
    return body["trained_model_stats"][0]["inference_stats"]["inference_count"]


def _churn_frame():
    return pd.DataFrame(
        {"tenure": [3, 20, None, 7, 30, 1, 15, 2, 40, 9],
         "plan": ["pro", "basic", None, "basic", "pro", "pro", None, "basic", "basic", "pro"],
         "note": list("abcdefghij")},
        index=[f"r{i}" for i in range(10)][::-1],
    )


def test_interrupt_then_resume_equals_an_uninterrupted_run(eng, interrupt):
    df = pd.DataFrame({"x": np.linspace(0, 1, 10)}, index=range(100, 110))
    expected = df.infer.run("stump", engine=eng)
    interrupt(3)
    with pytest.raises(InferenceInterrupted) as info:
        df.infer.run("stump", engine=eng, batch_size=2)
    stop = info.value
    assert (stop.rows_done, stop.rows_total) == (4, 10) and stop.resumable
    assert "resume()" in str(stop)
    partial = stop.partial
    assert list(partial.index) == list(df.index) and list(partial.columns[:1]) == ["x"]  # input columns kept
    assert partial["ml.inference.predicted_value"].iloc[:4].tolist() == expected["ml.inference.predicted_value"].iloc[
        :4].tolist()
    assert partial["ml.inference.predicted_value"].iloc[4:].isna().all()
    assert partial["ml.inference.error"].iloc[4:].str.contains("interrupted").all()
    assert last_interrupted() is stop
    before = _inference_count(eng, "stump")
    out = stop.resume()
    pd.testing.assert_frame_equal(out, expected)
    assert _inference_count(eng, "stump") == before + 6  # only the rows not reached ran
    assert last_interrupted() is None
    assert list(df.columns) == ["x"]  # the caller's frame is untouched


def test_classification_with_arrow_columns_and_warnings_resumes_exactly(eng, interrupt):
    df = _churn_frame()
    expected = df.infer.run("churner", engine=eng, inference_config=CHURN_CONFIG)
    assert "ml.inference.warning" in expected.columns  # the row with no fields
    interrupt(2, 4)  # interrupted twice: after rows 0-2, then (resumed) after rows 3-5
    with pytest.raises(InferenceInterrupted) as first:
        df.infer.run("churner", engine=eng, inference_config=CHURN_CONFIG, batch_size=3)
    assert first.value.rows_done == 3
    with pytest.raises(InferenceInterrupted) as second:
        first.value.resume()
    assert (second.value.rows_done, second.value.rows_total) == (6, 10)
    assert last_interrupted() is second.value
    assert second.value.partial["ml.inference.top_classes"].iloc[:6].notna().sum() == 5  # 1 row had no fields
    out = second.value.resume()
    pd.testing.assert_frame_equal(out, expected)
    assert isinstance(out["ml.inference.top_classes"].dtype, pd.ArrowDtype)
    assert isinstance(out["ml.inference.feature_importance"].dtype, pd.ArrowDtype)
    assert "ml.inference.error" not in out.columns  # only the interruption had made one


def test_inplace_run_leaves_the_frame_alone_until_it_finishes(eng, interrupt):
    df = pd.DataFrame({"x": np.linspace(0, 1, 6)})
    expected = df.infer.run("stump", engine=eng, target_field="pred")
    interrupt(2)
    with pytest.raises(InferenceInterrupted) as info:
        df.infer.run("stump", engine=eng, target_field="pred", batch_size=2, inplace=True)
    assert list(df.columns) == ["x"]
    assert "pred.predicted_value" in info.value.partial.columns
    assert info.value.resume() is None
    pd.testing.assert_frame_equal(df, expected)


def test_resume_keyword(eng, interrupt):
    df = pd.DataFrame({"x": np.linspace(0, 1, 8)})
    expected = df.infer.run("stump", engine=eng)
    interrupt(1)
    with pytest.raises(InferenceInterrupted) as info:
        df.infer.run("stump", engine=eng, batch_size=4)
    assert info.value.rows_done == 0
    with pytest.raises(ValueError, match="not over these rows"):
        df.iloc[::-1].infer.run("stump", resume=info.value)
    with pytest.raises(ValueError, match="not over these rows"):
        df.infer.run("churner", resume=info.value)
    with pytest.raises(TypeError, match="InferenceInterrupted"):
        df.infer.run("stump", resume=info.value.partial)
    pd.testing.assert_frame_equal(df.infer.run("stump", resume=info.value), expected)


def test_series_run_resumes(eng, interrupt):
    s = pd.Series(np.linspace(0, 1, 9), index=list("abcdefghi"), name="anything")
    expected = s.infer.run("stump", engine=eng)
    interrupt(2)
    with pytest.raises(InferenceInterrupted) as info:
        s.infer.run("stump", engine=eng, batch_size=3)
    assert info.value.rows_done == 3
    assert set(info.value.partial.columns) == {"ml.inference.predicted_value", "ml.inference.model_id",
                                               "ml.inference.error"}
    pd.testing.assert_frame_equal(s.copy().infer.run("stump", resume=info.value), expected)


def test_a_plain_interrupted_exception_is_not_resumable():
    exc = InferenceInterrupted(1, 2, None)
    assert not exc.resumable
    with pytest.raises(RuntimeError, match="run it again"):
        exc.resume()


def test_combine_results_keeps_dtypes_and_column_order():
    first = pd.DataFrame({"a": [1.0], "w": pd.array(["warn"], dtype="string[pyarrow]"),
                          "e": pd.Series([None], dtype=object)}, index=[0])
    second = pd.DataFrame({"a": [2.0], "e": ["boom"]}, index=[1])
    out = combine_results(first, second)
    assert list(out.columns) == ["a", "w", "e"]
    assert out["w"].dtype == first["w"].dtype and out["w"].isna().tolist() == [False, True]
    assert out["a"].tolist() == [1.0, 2.0]
    empty_error = pd.DataFrame({"a": [1.0], "e": [None]}, index=[0])
    assert list(combine_results(empty_error, pd.DataFrame({"a": [2.0]}, index=[1])).columns) == ["a"]


def test_inference_endpoint_runs_resume_too(monkeypatch):
    import es_infer_nb.services.frames as frames

    engine = Engine()
    body = {"service": "openai", "service_settings": {"api_key": "sk-x", "model_id": "emb",
                                                      "url": "http://127.0.0.1:9/v1/embeddings"}}
    assert engine.request("PUT", "_inference/text_embedding/emb", body).ok
    calls = {"n": 0, "stop": None, "texts": []}

    def fake_infer_endpoint(engine, inference_id, texts, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["stop"]:
            raise KeyboardInterrupt
        calls["texts"] += texts
        return [{"embedding": [float(len(t)), 1.0]} for t in texts]

    monkeypatch.setattr(frames, "infer_endpoint", fake_infer_endpoint)
    monkeypatch.setattr(frames, "CHUNK", 2)
    df = pd.DataFrame({"text_field": ["a", "bb", None, "dddd", "eeeee", "ff", "g"]}, index=list("pqrstuv"))
    expected = df.infer.run("emb", engine=engine)
    assert expected["ml.inference.predicted_value.error"].notna().tolist() == [False, False, True] + [False] * 4
    calls.update(n=0, stop=3, texts=[])
    with pytest.raises(InferenceInterrupted) as info:
        df.infer.run("emb", engine=engine)
    assert (info.value.rows_done, info.value.rows_total) == (4, 7)
    assert info.value.partial["ml.inference.predicted_value.error"].iloc[4:].str.contains("interrupted").all()
    calls["texts"] = []
    out = info.value.resume()
    assert calls["texts"] == ["eeeee", "ff", "g"]  # only the rows not reached
    pd.testing.assert_frame_equal(out, expected)
    s = df["text_field"]
    pd.testing.assert_frame_equal(s.infer.run("emb", engine=engine), expected.drop(columns="text_field"))
