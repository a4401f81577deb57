"""ddf.infer.pipeline without meta=: the columns and dtypes come from the pipeline definition and the model
configs (inference processors on pytorch, tree and endpoint models, ml_inference, nested pipelines,
set/convert/rename...), no model runs while the graph is built, and on a two-process LocalCluster the
result equals the pandas df.infer.pipeline row for row, with the pandas path's dtypes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from es_infer_nb import ApiError, Engine

dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("transformers")

from helpers import churn_model, stump_regression  # noqa: E402

TEXTS = ["the capital of france is paris", None, "my little red car", " ".join(["paris"] * 200),
         "many use elasticsearch", "who lives in new york", "the dog and the cat", "hi"]


def _frame(n: int = 32) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.random(n)
    x[::5] = np.nan
    return pd.DataFrame({"text_field": [TEXTS[i % len(TEXTS)] for i in range(n)], "k": np.arange(n), "x": x,
                         "tenure": rng.integers(0, 30, n).astype(float),
                         "plan": rng.choice(["basic", "pro"], n)}, index=np.arange(n) * 2)


INNER = {"processors": [{"inference": {"model_id": "cls", "target_field": "inner",
                                       "inference_config": {"text_classification": {"num_top_classes": 2}}}}]}


@pytest.fixture
def make_engine(nlp_engine):
    """Makes an engine with the tiny BERTs started, two tree models and the pipeline ``inner``."""
    return lambda: _engine(nlp_engine())


def _engine(engine: Engine) -> Engine:
    engine.request("PUT", "_ml/trained_models/reg", stump_regression()).raise_for_status()
    engine.request("PUT", "_ml/trained_models/churn-m", churn_model()).raise_for_status()
    engine.request("PUT", "_ingest/pipeline/inner", INNER).raise_for_status()
    return engine


@pytest.fixture
def no_model_call(monkeypatch) -> list[str]:
    """Records every NLP and tree model call made in this (the client's) process."""
    from es_infer_nb.models.nlp.model import NlpModel
    from es_infer_nb.models.tree.model import TreeModel

    calls: list[str] = []
    nlp, tree = NlpModel.infer, TreeModel.infer_columns
    monkeypatch.setattr(NlpModel, "infer", lambda self, *a, **k: calls.append(self.model_id) or nlp(self, *a, **k))
    monkeypatch.setattr(TreeModel, "infer_columns", lambda self, *a, **k: calls.append("tree") or tree(self, *a, **k))
    return calls


def _inference_count(engine: Engine, model_id: str) -> int:
    body = engine.request("GET", f"_ml/trained_models/{model_id}/_stats").raise_for_status().body
    stats = body["trained_model_stats"][0]
    if "deployment_stats" in stats:
        return stats["deployment_stats"]["nodes"][0]["inference_count"]
    return stats["inference_stats"]["inference_count"]


PIPELINES = {
    "embedding": {"processors": [{"inference": {"model_id": "emb", "target_field": "doc.vec"}}]},
    "classification": {"processors": [{"inference": {
        "model_id": "cls", "tag": "c", "inference_config": {"text_classification": {"num_top_classes": 2}}}}]},
    "input_output": {"processors": [{"inference": {
        "model_id": "emb", "input_output": [{"input_field": "text_field", "output_field": "title.vector"}]}}]},
    "nested": {"processors": [{"pipeline": {"name": "inner"}},
                              {"uppercase": {"field": "inner.predicted_value", "target_field": "label"}},
                              {"set": {"field": "stage", "value": "classified"}}]},
    "ml_inference": {"processors": [{"ml_inference": {
        "model_id": "emb", "input_map": [{"text_field": "text_field"}], "output_map": [{"ml_vec": "predicted_value"}],
        "ignore_failure": True}}]},
    "mixed": {"processors": [
        {"set": {"field": "n", "value": 1}},
        {"set": {"field": "greeting", "value": "{{text_field}}!"}},
        {"set": {"field": "flags.short", "value": True}},
        {"convert": {"field": "k", "type": "string", "target_field": "k_text"}},
        {"convert": {"field": "x", "type": "string", "ignore_missing": True}},
        {"rename": {"field": "text_field", "target_field": "text"}},  # fails the rows without a text
        {"uppercase": {"field": "text"}},
        {"split": {"field": "text", "separator": " ", "target_field": "words"}}]},
    "tabular": {"processors": [
        {"inference": {"model_id": "reg", "tag": "r"}},
        {"inference": {"model_id": "churn-m", "target_field": "churn", "inference_config": {
            "classification": {"num_top_classes": 2, "num_top_feature_importance_values": 1}}}},
        {"ml_inference": {"model_id": "reg", "input_map": [{"x": "x"}], "output_map": [{"ml_y": "predicted_value"}],
                          "ignore_missing": True}},
        {"fail": {"message": "no plan", "tag": "f", "if": "ctx.plan == 'basic'"}}]},
}

#: the models each pipeline runs
MODELS = {"embedding": ["emb"], "classification": ["cls"], "input_output": ["emb"], "nested": ["cls"],
          "ml_inference": ["emb"], "tabular": ["reg", "churn-m"]}

@pytest.mark.parametrize("name", list(PIPELINES))
def test_pipeline_declares_columns_from_configs_and_equals_pandas(client, make_engine, no_model_call, name):
    body = PIPELINES[name]
    engine = make_engine()
    engine.request("PUT", f"_ingest/pipeline/{name}", body).raise_for_status()
    ddf = dd.from_pandas(_frame(), npartitions=4)
    out = ddf.infer.pipeline(name, engine=engine)
    assert no_model_call == []  # the columns came from the configs
    assert all(_inference_count(engine, m) == 0 for m in ("emb", "cls", "reg"))
    got = out.compute()
    assert no_model_call == []  # the partitions ran on the workers
    expected = ddf.compute().infer.pipeline(body, engine=make_engine())
    assert list(got.index) == list(expected.index)
    assert list(got.columns) == list(out.columns)
    assert (got.dtypes == out.dtypes).all(), got.dtypes[got.dtypes != out.dtypes]
    # every column the pandas path makes is declared, with the dtype the pandas path gives it
    assert {c: str(out[c].dtype) for c in expected.columns} == {c: str(expected[c].dtype) for c in expected.columns}
    pd.testing.assert_frame_equal(got[expected.columns], expected)
    # what the pandas frame lacks (no row failed or was truncated there; an input renamed away) is all null
    assert got[[c for c in got.columns if c not in expected.columns]].isna().all().all()
    for model_id in MODELS.get(name, ()):  # stats came home
        assert _inference_count(engine, model_id) > 0


def test_pipeline_dtypes_are_the_pipeline_path_types(make_engine):
    engine = make_engine()
    ddf = dd.from_pandas(_frame(8), npartitions=2)
    emb = ddf.infer.pipeline(PIPELINES["embedding"], engine=engine)
    # an embedding the pipeline writes is a list of doubles (Python floats), not the run path's float32 vectors
    assert emb["doc.vec.predicted_value"].dtype == pd.ArrowDtype(pa.list_(pa.float64()))
    assert emb["doc.vec.is_truncated"].dtype == object  # only truncated rows have it: True or missing
    assert str(emb["doc.vec.model_id"].dtype) == "str"
    cls = ddf.infer.pipeline(PIPELINES["classification"], engine=engine)
    names = [c for c in cls.columns if c.startswith("ml.inference.c.")]
    assert names == [f"ml.inference.c.{k}" for k in ("predicted_value", "top_classes", "prediction_probability",
                                                     "model_id", "is_truncated")]
    top = cls["ml.inference.c.top_classes"].dtype.pyarrow_dtype
    assert [f.name for f in top.value_type] == ["class_name", "class_probability", "class_score"]
    assert cls["_ingest.dropped"].dtype == bool
    assert str(cls["_ingest.error.processor_tag"].dtype) == "str"  # a processor has a tag: failures name it
    mixed = ddf.infer.pipeline(PIPELINES["mixed"], engine=engine)
    assert mixed["n"].dtype == np.float64 and mixed["flags.short"].dtype == object  # rows may lack them
    assert str(mixed["k_text"].dtype) == "str"
    assert mixed["x"].dtype == object  # converted in place to text, but a row that fails keeps its number
    assert mixed["words"].dtype == pd.ArrowDtype(pa.list_(pa.string()))
    assert mixed["text_field"].dtype == ddf["text_field"].dtype  # renamed away: declared, null where it went


MORE = {
    "foreach": [{"split": {"field": "text_field", "separator": " ", "target_field": "words", "ignore_missing": True}},
                {"foreach": {"field": "words", "ignore_missing": True, "processor": {"uppercase": {
                    "field": "_ingest._value"}}}}],
    "foreach_convert": [{"set": {"field": "nums", "value": ["1", "2"]}},
                        {"foreach": {"field": "nums", "processor": {"convert": {"field": "_ingest._value",
                                                                                "type": "integer"}}}}],
    "append": [{"append": {"field": "tags", "value": ["a", "{{k}}"]}}, {"append": {"field": "tags", "value": "z"}}],
    "remove": [{"remove": {"field": ["x"]}}, {"set": {"field": "obj", "value": {"a": 1, "b": "s"}}},
               {"remove": {"field": "obj.a"}}],
    "copy_from": [{"set": {"field": "k2", "copy_from": "k"}}, {"set": {"field": "t", "copy_from": "text_field"}},
                  {"lowercase": {"field": "t", "ignore_missing": True}}],
    "on_failure": [{"inference": {"model_id": "cls", "on_failure": [
        {"set": {"field": "err", "value": "{{_ingest.on_failure_message}}"}}]}}],
    "input_output_classification": [{"inference": {"model_id": "cls", "input_output": {
        "input_field": "text_field", "output_field": "o.c"}}}],
    "ml_inference_whole_result": [{"ml_inference": {"model_id": "emb", "input_map": [{"text_field": "text_field"}],
                                                    "ignore_failure": True}}],
}


@pytest.mark.parametrize("name", list(MORE))
def test_declared_dtypes_are_the_pandas_path_dtypes(make_engine, name):
    from es_infer_nb.frames.meta import pipeline_meta

    engine = make_engine()
    ddf = dd.from_pandas(_frame(16), npartitions=2)
    body = {"processors": MORE[name]}
    declared = pipeline_meta(engine, ddf._meta, body).dtypes
    expected = ddf.compute().infer.pipeline(body, engine=engine).dtypes
    assert {c: str(declared[c]) for c in expected.index} == {c: str(t) for c, t in expected.items()}


def test_values_the_configs_do_not_type_and_names_they_do_not_give(make_engine):
    engine = make_engine()
    ddf = dd.from_pandas(_frame(8), npartitions=2)
    body = {"processors": [{"json": {"field": "text_field", "target_field": "parsed", "ignore_failure": True}},
                           {"convert": {"field": "plan", "type": "auto", "target_field": "plan_auto"}},
                           {"set": {"field": "{{plan}}_seen", "value": True}}]}
    out = ddf.infer.pipeline(body, engine=engine)
    assert out["parsed"].dtype == object and out["plan_auto"].dtype == object  # the dtype of mixed Python values
    assert not any(c.endswith("_seen") for c in out.columns)  # a name from the data: not declared
    with pytest.raises(ValueError, match="meta="):
        out.compute(scheduler="sync")
    declared = ddf.infer.pipeline(body, engine=engine, meta={"basic_seen": object, "pro_seen": object})
    got = declared.compute(scheduler="sync")
    expected = ddf.compute().infer.pipeline(body, engine=engine)
    for name in ("basic_seen", "pro_seen", "plan_auto"):
        assert list(got[name]) == list(expected[name])
    # meta= still declares a column over what the configs give
    assert ddf.infer.pipeline(PIPELINES["embedding"], engine=engine, meta={"doc.vec.predicted_value": object}
                              )["doc.vec.predicted_value"].dtype == object


def test_a_bad_pipeline_fails_while_the_graph_is_built(make_engine):
    engine = make_engine()
    ddf = dd.from_pandas(_frame(8), npartitions=2)
    with pytest.raises(ApiError) as err:
        ddf.infer.pipeline({"processors": [{"set": {"field": "a"}}]}, engine=engine)
    assert err.value.type == "parse_exception"  # as df.infer.pipeline answers it
    # a pipeline processor naming itself: the walk stops, the run reports the cycle per document
    engine.request("PUT", "_ingest/pipeline/loop", {"processors": [{"pipeline": {"name": "loop"}}]}
                   ).raise_for_status()
    got = ddf.infer.pipeline("loop", engine=engine).compute(scheduler="sync")
    assert set(got["_ingest.error.type"]) == {"graph_structure_exception"}


# -- _inference endpoints in inference and ml_inference processors ------------------------------------------------

@pytest.mark.parametrize("body", [
    {"processors": [{"inference": {"model_id": "emb-ep", "target_field": "v"}},
                    {"inference": {"model_id": "chat-ep",
                                   "input_output": {"input_field": "text_field", "output_field": "answer.text"}}}]},
    {"processors": [{"ml_inference": {"model_id": "emb-ep", "input_map": [{"input": "text_field"}],
                                      "output_map": [{"vec": "text_embedding[0].embedding"}], "ignore_failure": True}}]},
])
def test_endpoint_pipeline_declares_columns_and_equals_pandas(client, service, endpoint_engine, body):
    engine = endpoint_engine()
    ddf = dd.from_pandas(_frame(24), npartitions=3)
    calls = len(service.received)
    out = ddf.infer.pipeline(body, engine=engine)
    assert len(service.received) == calls  # nothing sent while the graph was built
    got = out.compute()
    expected = ddf.compute().infer.pipeline(body, engine=endpoint_engine())
    assert (got.dtypes == out.dtypes).all()
    assert {c: str(out[c].dtype) for c in expected.columns} == {c: str(expected[c].dtype) for c in expected.columns}
    pd.testing.assert_frame_equal(got[expected.columns], expected)
    assert got[[c for c in got.columns if c not in expected.columns]].isna().all().all()
