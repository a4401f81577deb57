"""ddf.infer.run without meta= for pytorch models (imported, or uploaded in definition parts), input_output
and _inference endpoints, on a two-process LocalCluster: the columns come from the configs (no model runs
while the graph is built) and the result equals the pandas path row for row."""

from __future__ import annotations

import base64
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from es_infer_nb import Engine

dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).parents[1] / "models" / "nlp"))
from helpers import stump_regression  # noqa: E402
from tiny_models import VOCAB, bert_config  # noqa: E402

TEXTS = ["the capital of france is paris", None, "my little red car", " ".join(["paris"] * 200),
         "many use elasticsearch", "who lives in new york", "the dog and the cat", "hi"]


def _frame(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame({"text_field": [TEXTS[i % len(TEXTS)] for i in range(n)], "k": np.arange(n)},
                        index=np.arange(n) * 2)


@pytest.fixture
def no_inference_here(monkeypatch) -> list[str]:
    """Records every NLP model call made in this (the client's) process."""
    from es_infer_nb.models.nlp.model import NlpModel

    calls: list[str] = []
    original = NlpModel.infer
    monkeypatch.setattr(NlpModel, "infer", lambda self, *a, **k: calls.append(self.model_id) or original(self, *a, **k))
    return calls


def _deployment_count(engine: Engine, model_id: str) -> int:
    body = engine.request("GET", f"_ml/trained_models/{model_id}/_stats").raise_for_status().body
    return body["trained_model_stats"][0]["deployment_stats"]["nodes"][0]["inference_count"]


def _check(out, got: pd.DataFrame, expected: pd.DataFrame, cast: dict[str, object] | None = None) -> None:
    """Every row, as declared, equal to the pandas path (declared columns it lacks all null)."""
    assert list(got.index) == list(expected.index)
    assert list(got.columns) == list(out.columns)
    assert (got.dtypes == out.dtypes).all(), got.dtypes[got.dtypes != out.dtypes]
    mine = got[expected.columns]
    for name, dtype in (cast or {}).items():
        mine[name] = mine[name].astype(dtype)
    pd.testing.assert_frame_equal(mine, expected)
    assert got[[c for c in got.columns if c not in expected.columns]].isna().all().all()


CASES = [
    ("emb", {}),
    ("emb", {"target_field": "doc", "inference_config": {"text_embedding": {"results_field": "vec"}}}),
    ("cls", {"inference_config": {"text_classification": {"num_top_classes": 2}}}),
    ("cls", {}),
    ("emb", {"input_output": [{"input_field": "text_field", "output_field": "title.vector"}]}),
]


@pytest.mark.parametrize("model_id,kwargs", CASES)
def test_pytorch_run_declares_columns_from_config_and_equals_pandas(client, nlp_engine, no_inference_here,
                                                                     model_id, kwargs):
    engine = nlp_engine()
    ddf = dd.from_pandas(_frame(), npartitions=4)
    out = ddf.infer.run(model_id, engine=engine, **kwargs)
    assert no_inference_here == []  # the columns came from the config
    assert _deployment_count(engine, model_id) == 0
    if model_id == "emb":
        vector = [c for c in out.columns if c.endswith(("predicted_value", "vec", "vector"))]
        assert [str(out[c].dtype) for c in vector] == ["fixed_size_list<item: float>[32][pyarrow]"]
    got = out.compute()
    assert no_inference_here == []  # the partitions ran on the workers
    reference = nlp_engine()
    expected = ddf.compute().infer.run(model_id, engine=reference, **kwargs)
    _check(out, got, expected)
    assert _deployment_count(engine, model_id) == _deployment_count(reference, model_id) > 0  # stats came home


def test_text_classification_meta_lists_every_result_column(nlp_engine):
    engine = nlp_engine()
    ddf = dd.from_pandas(_frame(8), npartitions=2)
    out = ddf.infer.run("cls", engine=engine, inference_config={"text_classification": {"num_top_classes": 2}})
    names = [c for c in out.columns if c.startswith("ml.inference.")]
    assert names == [f"ml.inference.{k}" for k in ("predicted_value", "top_classes", "prediction_probability",
                                                   "is_truncated", "error", "model_id")]
    assert out["ml.inference.prediction_probability"].dtype == np.float64
    top = out["ml.inference.top_classes"].dtype.pyarrow_dtype
    assert pa.types.is_list(top) and [f.name for f in top.value_type] == ["class_name", "class_probability",
                                                                          "class_score"]
    # meta= still overrides what the config declares
    given = ddf.infer.run("cls", engine=engine, meta={"ml.inference.predicted_value": object})
    assert list(given.columns) == ["text_field", "k", "ml.inference.predicted_value"]


# -- a pytorch model uploaded in definition parts -----------------------------------------------------------------

PART_SIZE = 64 * 1024


def _traced_bert(seed: int = 3) -> object:
    """A tiny random BERT's [CLS] vector, traced as a module called with the token ids and attention mask."""
    import torch
    from transformers import BertModel

    class ClsVector(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):  # type: ignore[no-untyped-def]
            return self.bert(input_ids=input_ids, attention_mask=attention_mask)[0][:, 0]

    torch.manual_seed(seed)
    ids = torch.tensor([[2, 5, 6, 3], [2, 10, 3, 0]])
    with torch.no_grad():
        return torch.jit.trace(ClsVector(BertModel(bert_config()).eval()).eval(), (ids, (ids != 0).long()))


def _upload_traced_bert(engine: Engine, model_id: str, folder: Path) -> None:
    """A tiny traced BERT PUT the eland way: config, base64 definition parts, vocabulary; then started."""
    import torch

    traced = _traced_bert()
    path = folder / "traced.pt"
    torch.jit.save(traced, str(path))
    engine.request("PUT", f"_ml/trained_models/{model_id}", {
        "model_type": "pytorch", "input": {"field_names": ["text_field"]},
        "inference_config": {"text_embedding": {"tokenization": {"bert": {"do_lower_case": True,
                                                                          "max_sequence_length": 64}}}},
    }).raise_for_status()
    data = path.read_bytes()
    total = math.ceil(len(data) / PART_SIZE)
    assert total >= 2
    for part in range(total):
        engine.request("PUT", f"_ml/trained_models/{model_id}/definition/{part}", {
            "definition": base64.b64encode(data[part * PART_SIZE:(part + 1) * PART_SIZE]).decode(),
            "total_definition_length": len(data), "total_parts": total}).raise_for_status()
    engine.request("PUT", f"_ml/trained_models/{model_id}/vocabulary", {"vocabulary": VOCAB}).raise_for_status()
    engine.request("POST", f"_ml/trained_models/{model_id}/deployment/_start").raise_for_status()


def test_model_uploaded_in_parts_runs_on_workers(client, tmp_path, no_inference_here):
    from es_infer_nb.dask import accessor

    engine = Engine()  # in memory: the workers cannot read its parts, they get them shipped
    _upload_traced_bert(engine, "parts-bert", tmp_path)
    ddf = dd.from_pandas(_frame(), npartitions=4)
    out = ddf.infer.run("parts-bert", engine=engine)
    # no embedding_size in the config: a variable-size list of the same float32 values
    assert out["ml.inference.predicted_value"].dtype == pd.ArrowDtype(pa.list_(pa.float32()))
    got = out.compute()
    assert no_inference_here == []  # neither the graph nor the partitions ran the model in this process
    reference = Engine()
    _upload_traced_bert(reference, "parts-bert", tmp_path)
    expected = ddf.compute().infer.run("parts-bert", engine=reference)
    vector = expected["ml.inference.predicted_value"].dtype
    _check(out, got, expected, cast={"ml.inference.predicted_value": vector})
    assert _deployment_count(engine, "parts-bert") == _deployment_count(reference, "parts-bert") > 0
    # shipped once per client: a second job over the same model sends nothing new
    shipped = dict(accessor._scattered)
    again = ddf.infer.run("parts-bert", engine=engine).compute()
    assert dict(accessor._scattered) == shipped and len(shipped) == 1
    pd.testing.assert_frame_equal(again, got)


def test_pipeline_over_a_model_uploaded_in_parts_ships_it(client, tmp_path):
    engine = Engine()
    _upload_traced_bert(engine, "parts-bert", tmp_path)
    body = {"processors": [{"inference": {"model_id": "parts-bert", "target_field": "emb"}}]}
    engine.request("PUT", "_ingest/pipeline/embed", body).raise_for_status()
    ddf = dd.from_pandas(_frame(), npartitions=3)
    out = ddf.infer.pipeline("embed", engine=engine)  # the columns from the configs: no meta= needed
    assert out["emb.predicted_value"].dtype == pd.ArrowDtype(pa.list_(pa.float64()))
    got = out.compute()
    expected = ddf.compute().infer.pipeline(body, engine=engine)
    pd.testing.assert_frame_equal(got[expected.columns], expected)
    assert list(got["_ingest.error.type"].notna()) == list(expected["_ingest.error.type"].notna())


def test_model_uploaded_in_parts_on_a_local_scheduler(tmp_path, monkeypatch):
    import distributed

    def no_client():
        raise ValueError("No clients found")

    monkeypatch.setattr(distributed, "default_client", no_client)  # as without a distributed client
    engine = Engine()
    _upload_traced_bert(engine, "parts-bert", tmp_path)
    ddf = dd.from_pandas(_frame(12), npartitions=3)
    got = ddf.infer.run("parts-bert", engine=engine).compute(scheduler="sync")
    expected = ddf.compute().infer.run("parts-bert", engine=engine)
    vector = expected["ml.inference.predicted_value"]
    pd.testing.assert_series_equal(got["ml.inference.predicted_value"].astype(vector.dtype), vector)


def test_shipped_definitions_must_match_the_state(tmp_path):
    from es_infer_nb.dask.config import (Definition, definitions, job_config, make_predict_fn, referenced_models,
                                         state_key)

    engine = Engine()
    _upload_traced_bert(engine, "parts-bert", tmp_path)
    parts = definitions(engine)
    assert list(parts) == ["parts-bert"] and len(parts["parts-bert"].sha256) == 64
    # only what the call may run is shipped: not for a tree model, yes through a pipeline that names it
    engine.request("PUT", "_ml/trained_models/reg", stump_regression()).raise_for_status()
    engine.request("PUT", "_ingest/pipeline/inner", {"processors": [{"inference": {"model_id": "parts-bert"}}]}
                   ).raise_for_status()
    assert definitions(engine, referenced_models(engine, {"model_id": "reg", "field_map": {"a": "b"}})) == {}
    assert referenced_models(engine, {"pipeline": {"processors": [{"pipeline": {"name": "inner"}}]}}) == {
        "parts-bert"}
    assert referenced_models(engine, {"pipeline": {"processors": [{"pipeline": {"name": "{{which}}"}}]}}) == {
        "parts-bert"}  # a templated pipeline name: every stored pipeline's models
    config = job_config(engine, "run", {"model_id": "parts-bert"}, shipped=parts)
    assert config["state"]["definitions"] == {"parts-bert": parts["parts-bert"].sha256}
    frame = _frame(6)
    predict = make_predict_fn(config, definitions=parts)
    pd.testing.assert_frame_equal(predict(frame), frame.infer.run("parts-bert", engine=engine))
    other = {"parts-bert": Definition("parts-bert", "0" * 64, b"", None)}
    changed = job_config(engine, "run", {"model_id": "parts-bert"}, shipped=other)
    assert state_key(changed) != state_key(config)  # another definition: another worker engine
    with pytest.raises(ValueError, match="parts-bert"):
        make_predict_fn(changed, definitions=parts)


# -- _inference endpoints -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("inference_id,kwargs", [
    ("emb-ep", {}),
    ("chat-ep", {"target_field": "answer"}),
    ("emb-ep", {"input_output": [{"input_field": "text_field", "output_field": "vec.v"},
                                 {"input_field": "word", "output_field": "w"}]}),
])
def test_endpoint_run_declares_columns_from_config_and_equals_pandas(client, service, endpoint_engine, inference_id,
                                                                      kwargs):
    engine = endpoint_engine()
    frame = _frame(30).assign(word=lambda f: [f"w{i}" for i in range(len(f))])
    ddf = dd.from_pandas(frame, npartitions=3)
    calls = len(service.received)
    out = ddf.infer.run(inference_id, engine=engine, **kwargs)
    assert len(service.received) == calls  # nothing sent to the service while the graph was built
    got = out.compute()
    assert len(service.received) > calls
    expected = ddf.compute().infer.run(inference_id, engine=endpoint_engine(), **kwargs)
    _check(out, got, expected)


# -- the one-text-column rule of df.infer.run, decided once for every partition -------------------------------------

def test_text_model_reads_the_one_string_column_in_every_partition(client, nlp_engine):
    frame = pd.DataFrame({"review": [None] * 10 + [TEXTS[i % len(TEXTS)] for i in range(30)], "k": np.arange(40)},
                         index=np.arange(40) * 2)
    ddf = dd.from_pandas(frame, npartitions=4)  # the first partition has no review text at all
    out = ddf.infer.run("emb", engine=nlp_engine())
    got = out.compute()
    expected = frame.infer.run("emb", engine=nlp_engine(), field_map={"review": "text_field"})
    vectors = got["ml.inference.predicted_value"]
    assert vectors.notna().tolist() == frame["review"].notna().tolist()
    np.testing.assert_allclose(np.stack(vectors.dropna().to_numpy()),
                               np.stack(expected["ml.inference.predicted_value"].dropna().to_numpy()), atol=1e-6)


def test_text_model_on_several_string_columns_names_them_before_computing(nlp_engine):
    ddf = dd.from_pandas(pd.DataFrame({"title": ["a", "b"], "body": ["c", "d"], "k": [1, 2]}), npartitions=1)
    with pytest.raises(ValueError, match=r"2 text columns \(title, body\).*field_map=\{'title': 'text_field'\}"):
        ddf.infer.run("emb", engine=nlp_engine())
    out = ddf.infer.run("emb", engine=nlp_engine(), field_map={"body": "text_field"}).compute()
    assert out["ml.inference.predicted_value"].notna().all()
