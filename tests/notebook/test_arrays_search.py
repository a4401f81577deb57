"""``.infer.vectors()`` / ``.proba()`` / ``.importance_frame()`` (plain arrays from result columns,
null rows as NaN rows) and ``.infer.knn()`` / ``.infer.rerank()`` (search over a result frame)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import es_infer_nb  # noqa: F401  (registers the accessors)
from es_infer_nb import ApiError
from es_infer_nb.models.nlp.embedded import get_model
from es_infer_nb.services.loopback import LoopbackServer, Received

EMBEDDED = "sentence-transformers__all-minilm-l6-v2"
TEXTS = ["I forgot my password", None, "My parcel was never delivered", "How do I get a refund?",
         "I cannot log in to my account"]


# -- vectors ---------------------------------------------------------------------------------------
def test_vectors_of_an_embedding_run_with_null_rows(engine):
    df = pd.DataFrame({"text": TEXTS}, index=list("abcde"))
    out = df.infer.run(EMBEDDED, engine=engine, field_map={"text": "text_field"})
    v = out.infer.vectors()
    assert v.shape == (5, 384) and v.dtype == np.float32
    assert np.isnan(v[1]).all() and not np.isnan(v[[0, 2, 3, 4]]).any()
    ref = get_model("cpu").embed([t for t in TEXTS if t is not None])
    np.testing.assert_allclose(v[[0, 2, 3, 4]], np.asarray(ref), atol=1e-6)
    # the Series form, and the same through Parquet-typed / object columns
    np.testing.assert_array_equal(out["ml.inference.predicted_value"].infer.vectors(), v)
    as_objects = out["ml.inference.predicted_value"].astype(object)
    np.testing.assert_array_equal(as_objects.infer.vectors(), v)


def test_vectors_pick_the_input_output_column_and_say_which_when_ambiguous(engine):
    df = pd.DataFrame({"title": ["a title", None], "body": ["a body", "another body"]})
    out = df.infer.run(EMBEDDED, engine=engine, input_output=[
        {"input_field": "title", "output_field": "title_vec"}, {"input_field": "body", "output_field": "body_vec"}])
    with pytest.raises(ValueError, match="2 embedding columns.*column="):
        out.infer.vectors()
    v = out.infer.vectors("title_vec")
    assert v.shape == (2, 384) and np.isnan(v[1]).all()
    with pytest.raises(KeyError, match="nope"):
        out.infer.vectors("nope")


def test_vectors_of_variable_lists_and_wrong_columns():
    s = pd.Series([[1.0, 2.0], None, [3.0, 4.0]], dtype=pd.ArrowDtype(pa.list_(pa.float64())))
    np.testing.assert_array_equal(s.infer.vectors(), np.array([[1, 2], [np.nan, np.nan], [3, 4]], dtype=np.float32))
    with pytest.raises(ValueError, match="different lengths"):
        pd.Series([[1.0], [1.0, 2.0]]).infer.vectors()
    with pytest.raises(TypeError, match="not embeddings"):
        pd.Series(["text", "more"]).infer.vectors()
    with pytest.raises(KeyError, match="ml.inference.predicted_value"):
        pd.DataFrame({"x": [1]}).infer.vectors()


# -- proba -----------------------------------------------------------------------------------------
def test_proba_is_a_frame_per_class_aligned_with_nan_rows(eng):
    df = pd.DataFrame({"tenure": [3.0, 20.0, None], "plan": ["basic", "pro", None]}, index=[10, 20, 30])
    out = df.infer.run("churner", engine=eng, inference_config={"classification": {"num_top_classes": -1}})
    p = out.infer.proba()
    assert list(p.columns) == ["churn", "stay"] and list(p.index) == [10, 20, 30]
    assert p.loc[30].isna().all()
    np.testing.assert_allclose(p.loc[[10, 20]].sum(axis=1), 1.0)
    # the predicted class is the column with the largest probability, as ES's predicted_value
    assert list(p.loc[[10, 20]].idxmax(axis=1)) == list(out.loc[[10, 20], "ml.inference.predicted_value"])
    assert p.loc[10, "churn"] == pytest.approx(out.loc[10, "ml.inference.prediction_probability"])


def test_proba_with_fewer_top_classes_and_without_top_classes(eng):
    df = pd.DataFrame({"tenure": [3.0, 20.0], "plan": ["basic", "pro"]})
    one = df.infer.run("churner", engine=eng, inference_config={"classification": {"num_top_classes": 1}},
                       target_field="r").infer.proba(target_field="r")
    assert (one.notna().sum(axis=1) == 1).all()  # the class a row did not list is NaN, not 0
    with pytest.raises(KeyError, match="ml.inference.top_classes"):
        df.infer.run("churner", engine=eng).infer.proba()


# -- importance_frame ------------------------------------------------------------------------------
def test_importance_frame_regression(eng):
    df = pd.DataFrame({"x": [0.1, None, 0.9]})
    out = df.infer.run("stump", engine=eng, inference_config={"regression": {"num_top_feature_importance_values": 1}})
    imp = out.infer.importance_frame()
    assert list(imp.columns) == ["x"] and imp.index.equals(df.index)
    assert imp.loc[0, "x"] == pytest.approx(out.loc[0, "ml.inference.feature_importance"][0]["importance"])
    assert np.isnan(imp.loc[1, "x"])
    # baseline + sum of importances is the prediction (every feature listed)
    base = 1.0 * 0.6 + 2.0 * 0.4
    np.testing.assert_allclose(base + imp.loc[[0, 2], "x"], out.loc[[0, 2], "ml.inference.predicted_value"])


def test_importance_frame_classification_predicted_class_or_chosen(eng):
    df = pd.DataFrame({"tenure": [3.0, 20.0, None], "plan": ["basic", "pro", None]})
    out = df.infer.run("churner", engine=eng,
                       inference_config={"classification": {"num_top_feature_importance_values": 2}})
    predicted = out["ml.inference.predicted_value"]
    imp = out.infer.importance_frame()
    assert set(imp.columns) == {"tenure", "plan"} and imp.loc[2].isna().all()
    for row in (0, 1):
        by_class = {e["feature_name"]: {c["class_name"]: c["importance"] for c in e["classes"]}
                    for e in out.loc[row, "ml.inference.feature_importance"]}
        assert imp.loc[row, "tenure"] == pytest.approx(by_class["tenure"][predicted[row]])
    churn = out.infer.importance_frame(class_name="churn")
    stay = out.infer.importance_frame(class_name="stay")
    np.testing.assert_allclose(churn.loc[[0, 1], "tenure"], -stay.loc[[0, 1], "tenure"])
    with pytest.raises(KeyError, match="class \\[maybe\\]"):
        out.infer.importance_frame(class_name="maybe")


# -- knn -------------------------------------------------------------------------------------------
@pytest.fixture
def embedded(engine):
    df = pd.DataFrame({"topic": ["account", "none", "shipping", "billing", "account"], "text": TEXTS})
    return engine, df.infer.run(EMBEDDED, engine=engine, field_map={"text": "text_field"})


def test_knn_text_query_embeds_with_the_column_model(embedded):
    engine, out = embedded
    top = out.infer.knn("I am locked out, my login fails", k=2, engine=engine)
    assert list(top["topic"]) == ["account", "account"] and list(top.index) in ([4, 0], [0, 4])
    assert top["score"].is_monotonic_decreasing
    q = get_model("cpu").embed(["I am locked out, my login fails"])[0]
    v = out.infer.vectors()
    expected = v[top.index] @ (q / np.linalg.norm(q)) / np.linalg.norm(v[top.index], axis=1)
    np.testing.assert_allclose(top["score"], expected, atol=1e-5)
    # every row with an embedding at most: the null row is never a neighbour
    every = out.infer.knn("refund", k=50, engine=engine)
    assert len(every) == 4 and 1 not in every.index


def test_knn_vector_query_dot_and_cosine():
    vecs = [[1.0, 0.0], [0.0, 3.0], None, [2.0, 2.0]]
    df = pd.DataFrame({"id": list("abcd"), "v": pd.Series(vecs, dtype=pd.ArrowDtype(pa.list_(pa.float32(), 2)))})
    cos = df.infer.knn([0.0, 1.0], k=3, column="v")
    assert list(cos["id"]) == ["b", "d", "a"]
    np.testing.assert_allclose(cos["score"], [1.0, np.sqrt(0.5), 0.0], atol=1e-6)
    dot = df.infer.knn(np.array([1.0, 1.0]), k=2, column="v", metric="dot", score_column="s")
    assert list(dot["id"]) == ["d", "b"] and list(dot["s"]) == [4.0, 3.0]
    with pytest.raises(ValueError, match="metric"):
        df.infer.knn([0.0, 1.0], column="v", metric="l2")
    with pytest.raises(ValueError, match="3 dimensions"):
        df.infer.knn([0.0, 1.0, 2.0], column="v")
    with pytest.raises(ValueError, match="model_id="):
        df.infer.knn("a text", column="v")


# -- rerank ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rerank_server():
    def handle(req: Received):
        body = req.json()
        query = set(body["query"].lower().split())
        scores = [{"index": i, "score": len(query & set(t.lower().split())) + len(t) / 1000}
                  for i, t in enumerate(body["texts"])]
        return 200, sorted(scores, key=lambda e: -e["score"])

    with LoopbackServer(handle) as server:
        yield server


def test_rerank_orders_rows_by_the_endpoint(engine, rerank_server):
    assert engine.request("PUT", "_inference/rerank/rr", {"service": "hugging_face", "service_settings": {
        "url": f"{rerank_server.url}/rerank"}}).ok
    df = pd.DataFrame({"n": [1, 2, 3, 4], "text": ["my account login", None, "login", "parcel delivered"]})
    out = df.infer.rerank("account login help", "rr", engine=engine)
    assert list(out["n"]) == [1, 3, 4, 2]
    assert out["relevance_score"].iloc[0] == pytest.approx(2 + len("my account login") / 1000)
    assert np.isnan(out["relevance_score"].iloc[-1])
    assert list(df.infer.rerank("login", "rr", "text", top_n=2, engine=engine)["n"]) == [1, 3]
    with pytest.raises(ApiError) as info:
        df.infer.rerank("login", "missing-endpoint", engine=engine)
    assert info.value.status == 404


def test_knn_then_rerank_chain(embedded, rerank_server):
    engine, out = embedded
    assert engine.request("PUT", "_inference/rerank/rr2", {"service": "hugging_face", "service_settings": {
        "url": f"{rerank_server.url}/rerank"}}).ok
    top = out.infer.knn("log in to my account", k=3, engine=engine).infer.rerank(
        "log in to my account", "rr2", "text", engine=engine)
    assert top.iloc[0]["text"] == "I cannot log in to my account"
    assert {"score", "relevance_score"} <= set(top.columns)


def test_knn_scores_on_the_requested_device(engine):
    torch = pytest.importorskip("torch")
    vecs = pd.Series([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=pd.ArrowDtype(pa.list_(pa.float32(), 2)))
    df = pd.DataFrame({"v": vecs})
    cpu = df.infer.knn([0.0, 1.0], k=3, column="v", engine=engine, device="cpu")
    assert list(cpu.index) == [2, 1, 0]
    if torch.cuda.is_available():
        gpu = df.infer.knn([0.0, 1.0], k=3, column="v", engine=engine, device="cuda")
        assert list(gpu.index) == [2, 1, 0]
        np.testing.assert_allclose(gpu["score"], cpu["score"], atol=1e-6)
    else:
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            df.infer.knn([0.0, 1.0], k=3, column="v", engine=engine, device="cuda")
    engine.device = "cpu"  # the engine's device is the default
    np.testing.assert_array_equal(df.infer.knn([0.0, 1.0], k=3, column="v", engine=engine)["score"], cpu["score"])


def test_knn_on_a_series_of_embeddings_equals_the_frame_column(embedded):
    engine, out = embedded
    column = out["ml.inference.predicted_value"]
    by_series = column.infer.knn("I am locked out, my login fails", k=3, model_id=EMBEDDED, engine=engine)
    by_frame = out.infer.knn("I am locked out, my login fails", k=3, engine=engine)
    assert list(by_series.index) == list(by_frame.index)
    np.testing.assert_allclose(by_series["score"], by_frame["score"], atol=1e-6)
    assert list(by_series.columns) == ["ml.inference.predicted_value", "score"]
    with pytest.raises(ValueError, match="model_id="):
        column.infer.knn("a text", engine=engine)


def test_knn_on_a_series_vector_query_dot_and_cosine_against_numpy(engine):
    rng = np.random.default_rng(5)
    matrix = rng.standard_normal((30, 8)).astype(np.float32)
    rows = [list(r) for r in matrix]
    rows[4] = None
    series = pd.Series(rows, index=[f"r{i}" for i in range(30)], name="vec")  # an object column of lists
    q = rng.standard_normal(8).astype(np.float32)
    valid = np.array([i != 4 for i in range(30)])
    cos = matrix @ q / np.linalg.norm(matrix, axis=1) / np.linalg.norm(q)
    dot = matrix @ q
    for metric, expected in (("cosine", cos), ("dot", dot)):
        got = series.infer.knn(q, k=5, metric=metric, engine=engine, device="cpu")
        order = [i for i in np.argsort(-np.where(valid, expected, -np.inf), kind="stable")[:5]]
        assert list(got.index) == [f"r{i}" for i in order]
        np.testing.assert_allclose(got["score"], expected[order], rtol=1e-5, atol=1e-5)
    every = series.infer.knn(q, k=100, engine=engine)
    assert len(every) == 29 and "r4" not in every.index
    with pytest.raises(ValueError, match="query vector has 3 dimensions, the column's vectors 8"):
        series.infer.knn(np.zeros(3), engine=engine)
