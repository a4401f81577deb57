"""``df.infer`` / ``series.infer`` on pytorch models: the bundled all-MiniLM-L6-v2 with no set-up,
input_output, deployment ids, per-row errors, Arrow columns that survive Parquet."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import es_infer_nb  # noqa: F401  (registers the accessors)
from es_infer_nb.models.nlp.embedded import get_model
from helpers import vectors

EMBEDDED = "sentence-transformers__all-minilm-l6-v2"
TEXTS = ["The quick brown fox", "", None, "jumps over the lazy dog", "The quick brown fox"]


@pytest.fixture(scope="module")
def reference():
    return {t: v for t, v in zip([t for t in TEXTS if t is not None],
                                 get_model("cpu").embed([t for t in TEXTS if t is not None]))}


def test_series_run_embeds_with_no_setup(engine, reference):
    s = pd.Series(TEXTS, index=[10, 11, 12, 13, 14])
    out = s.infer.run(EMBEDDED, engine=engine)
    assert list(out.index) == [10, 11, 12, 13, 14]
    vec = out["ml.inference.predicted_value"]
    assert vec.dtype == pd.ArrowDtype(pa.list_(pa.float32(), 384))
    for i, text in zip(out.index, TEXTS):
        if text is None:
            assert vec[i] is None or pd.isna(vec[i])
            assert out.loc[i, "ml.inference.error"] == "Input field [text_field] does not exist in the source document"
        else:
            np.testing.assert_allclose(np.asarray(vec[i]), reference[text], rtol=0, atol=1e-6)
            assert pd.isna(out.loc[i, "ml.inference.error"])
    assert set(out["ml.inference.model_id"]) == {EMBEDDED}
    # the repeated text came from the cache
    node = engine.request("GET", f"_ml/trained_models/{EMBEDDED}/_stats").body[
        "trained_model_stats"][0]["deployment_stats"]["nodes"][0]
    assert node["inference_count"] == 5 and node["inference_cache_hit_count"] == 1 and node["error_count"] == 1


def test_parquet_round_trip(engine, tmp_path):
    out = pd.DataFrame({"text_field": ["a sentence", "another one"]}).infer.run(EMBEDDED, engine=engine)
    path = tmp_path / "out.parquet"
    out.to_parquet(path)
    back = pd.read_parquet(path, dtype_backend="pyarrow")
    assert back["ml.inference.predicted_value"].dtype == pd.ArrowDtype(pa.list_(pa.float32(), 384))
    np.testing.assert_array_equal(np.stack(back["ml.inference.predicted_value"].to_numpy()),
                                  np.stack(out["ml.inference.predicted_value"].to_numpy()))


def test_frame_input_output(engine, reference):
    df = pd.DataFrame({"title": ["The quick brown fox", None], "body": ["", "jumps over the lazy dog"]})
    out = df.infer.run(EMBEDDED, engine=engine, input_output=[
        {"input_field": "title", "output_field": "title_vec"},
        {"input_field": "body", "output_field": "ml.body_vec"}])
    assert list(out.columns)[:2] == ["title", "body"]
    np.testing.assert_allclose(np.asarray(out.loc[0, "title_vec"]), reference["The quick brown fox"], atol=1e-6)
    np.testing.assert_allclose(np.asarray(out.loc[1, "ml.body_vec"]), reference["jumps over the lazy dog"], atol=1e-6)
    assert out.loc[1, "title_vec.error"].startswith("Input field")
    assert set(out["model_id"]) == {EMBEDDED} and "ml.model_id" not in out.columns
    assert list(out.columns)[2:] == ["title_vec", "title_vec.error", "model_id", "ml.body_vec"]  # "" embeds: no error
    assert out["title_vec"].dtype == out["ml.body_vec"].dtype == pd.ArrowDtype(pa.list_(pa.float32(), 384))
    with pytest.raises(ValueError, match="input_output cannot be combined"):
        df.infer.run(EMBEDDED, engine=engine, input_output={"input_field": "title", "output_field": "v"},
                     target_field="x")


def test_deployment_id_and_field_map(engine, reference):
    r = engine.request("POST", f"_ml/trained_models/{EMBEDDED}/deployment/_start",
                       params={"deployment_id": "minilm-search", "cache_size": "0b"})
    assert r.status == 200, r.body
    out = pd.Series(["jumps over the lazy dog"]).infer.run("minilm-search", engine=engine, target_field="emb")
    np.testing.assert_allclose(np.asarray(out.loc[0, "emb.predicted_value"]), reference["jumps over the lazy dog"],
                               atol=1e-6)
    df = pd.DataFrame({"text": ["The quick brown fox"]})
    out = df.infer.run("minilm-search", engine=engine, field_map={"text": "text_field"})
    np.testing.assert_allclose(np.asarray(out.loc[0, "ml.inference.predicted_value"]),
                               reference["The quick brown fox"], atol=1e-6)
    stats = engine.request("GET", "_ml/trained_models/minilm-search/_stats").body["trained_model_stats"]
    assert [s["deployment_stats"]["nodes"][0]["inference_count"] for s in stats] == [2]


def test_user_pytorch_model_without_deployment_raises_es_error(engine):
    engine.request("PUT", "_ml/trained_models/tiny", {"model_type": "pytorch", "inference_config": {"ner": {}}})
    with pytest.raises(es_infer_nb.ApiError) as err:
        pd.Series(["x"]).infer.run("tiny", engine=engine)
    assert err.value.status == 409 and "must be deployed to use" in err.value.reason


def test_wrong_inference_config_update_raises(engine):
    with pytest.raises(es_infer_nb.ApiError) as err:
        pd.Series(["x"]).infer.run(EMBEDDED, engine=engine, inference_config={"ner": {}})
    assert err.value.status == 403 and "is configured for task [text_embedding] but called with task [ner]" in \
        err.value.reason  # TrainedModelDeploymentTask.infer


def test_interrupted_embedding_run_resumes(engine, monkeypatch):
    from es_infer_nb import InferenceInterrupted
    from es_infer_nb.models.deployments import Deployment

    texts = pd.Series([f"sentence number {i}" for i in range(7)], index=list("abcdefg"))
    expected = texts.infer.run(EMBEDDED, engine=engine)
    real_submit, real_result = Deployment.submit, Deployment.result
    calls = {"waits": 0, "docs": []}

    def submit(self, docs, *args, **kwargs):
        calls["docs"] += docs
        return real_submit(self, docs, *args, **kwargs)

    def flaky(self, *args, **kwargs):  # Ctrl-C while waiting for the third chunk (the fourth is queued)
        calls["waits"] += 1
        if calls["waits"] == 3:
            raise KeyboardInterrupt
        return real_result(self, *args, **kwargs)

    monkeypatch.setattr(Deployment, "submit", submit)
    monkeypatch.setattr(Deployment, "result", flaky)
    with pytest.raises(InferenceInterrupted) as info:
        texts.infer.run(EMBEDDED, engine=engine, batch_size=2)
    assert (info.value.rows_done, info.value.rows_total) == (4, 7)
    calls["docs"] = []
    out = info.value.resume()
    assert [d["text_field"] for d in calls["docs"]] == [f"sentence number {i}" for i in range(4, 7)]
    pd.testing.assert_frame_equal(out, expected)


def test_frame_chunks_overlap_on_the_streams_and_answer_as_run_one_at_a_time(engine, monkeypatch):
    """A frame keeps its next chunk queued; once the running chunk's last batches are on the CPU
    streams, the deployment starts the next one beside it. The answers are exactly those of chunks
    run one at a time, row for row."""
    import threading
    import time

    from es_infer_nb.models.deployments import deployments
    from es_infer_nb.models.nlp.embedded import EmbeddedMiniLM

    real_forward = EmbeddedMiniLM._forward

    def steady_forward(self, batch_ids, normalize):  # every batch lasts long enough for the queue to see
        time.sleep(0.03)  # the last ones on the streams (it looks every 3 ms), however loaded the machine
        return real_forward(self, batch_ids, normalize)

    monkeypatch.setattr(EmbeddedMiniLM, "_forward", steady_forward)

    texts = pd.Series([f"sentence {i} " + "about the weather and the sea " * (1 + i % 5) for i in range(600)])
    texts[:4].infer.run(EMBEDDED, engine=engine, progress=False)  # deploys the model
    dep = deployments(engine).for_inference(EMBEDDED)
    dep.cache.clear()
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()
    real = dep._infer

    def timed(*args, **kwargs):
        started = time.monotonic()
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                spans.append((started, time.monotonic()))

    dep._infer = timed
    try:
        pipelined = texts.infer.run(EMBEDDED, engine=engine, batch_size=300, progress=False)
        overlapped = sum(1 for (s1, e1), (s2, e2) in zip(spans, spans[1:]) if s2 < e1)
        spans.clear()
        dep.cache.clear()
        overlap, dep.queue.overlap = dep.queue.overlap, None
        serial = texts.infer.run(EMBEDDED, engine=engine, batch_size=300, progress=False)
        dep.queue.overlap = overlap
    finally:
        del dep._infer
    assert len(spans) == 2 and spans[1][0] >= spans[0][1]  # one at a time (two chunks: too big to merge)
    assert overlapped == 1  # chunks of ~8 batches each: the second started beside the first
    assert np.array_equal(vectors(pipelined), vectors(serial))


def test_concurrent_callers_and_a_frame_on_overlapping_model_calls_each_get_their_own_vectors(engine):
    """``_infer`` calls from threads of several sizes, and a frame run, at once: model calls gather
    them and overlap on the CPU streams; every caller's vectors equal those of the same texts run
    alone, row for row (float32's level: the batches differ)."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"text {i}: " + "words about rivers and mountains " * (1 + i % 7) for i in range(900)]
    frame = pd.Series(texts[:600])
    calls = [texts[600 + 10 * c: 600 + 10 * c + 1 + c % 10] for c in range(30)]
    alone = vectors(frame.infer.run(EMBEDDED, engine=engine, progress=False))

    def infer(batch: list[str]) -> np.ndarray:
        r = engine.request("POST", f"_ml/trained_models/{EMBEDDED}/_infer", {"docs": [{"text_field": t} for t in batch]})
        assert r.status == 200, r.body
        return np.array([d["predicted_value"] for d in r.body["inference_results"]], dtype=np.float32)

    expected = [infer(batch) for batch in calls]
    deployment = engine_deployment(engine)
    deployment.cache.clear()  # every text through the model again
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(infer, batch) for batch in calls]
        together = vectors(frame.infer.run(EMBEDDED, engine=engine, progress=False, batch_size=200))
        got = [f.result(60) for f in futures]
    assert np.allclose(together, alone, atol=1e-5)
    for want, have in zip(expected, got):
        assert have.shape == want.shape and np.allclose(have, want, atol=1e-5)
    assert deployment.queue.pending == 0


def engine_deployment(engine):
    from es_infer_nb.models.deployments import deployments

    return deployments(engine).for_inference(EMBEDDED)
