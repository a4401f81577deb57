"""The ES ``inference`` processor on pytorch (NLP) models (spec §3.2, §3.3, §3.5): target-field style
for every task, ``input_output`` (one or many entries), ``ignore_missing``, the config errors, per-document
failures, one batched model call per processor, through ``_simulate`` and ``df.infer.pipeline``; an
``_inference`` endpoint id as ``model_id``. Tiny random-weight models (tests/models/nlp/tiny_models.py)."""

from __future__ import annotations

import pandas as pd
import pytest

import es_infer_nb  # noqa: F401

MODELS = {  # tiny model kind -> (task, model id)
    "base": [("text_embedding", "emb")],
    "token": [("ner", "ner")],
    "sequence": [("text_classification", "cls")],
    "masked_lm": [("fill_mask", "fm"), ("text_expansion", "elser")],
    "qa": [("question_answering", "qa")],
    "nli": [("zero_shot_classification", "zs")],
    "similarity": [("text_similarity", "sim")],
}


@pytest.fixture(scope="module")
def eng(tmp_path_factory):
    from models.nlp.tiny_models import build

    from es_infer_nb import Engine

    root = tmp_path_factory.mktemp("tiny_ingest")
    engine = Engine()
    for seed, (kind, tasks) in enumerate(MODELS.items()):
        folder = build(root / kind, kind, seed=seed)
        for task, model_id in tasks:
            engine.import_hf_model(folder, task, model_id)
            r = engine.request("POST", f"_ml/trained_models/{model_id}/deployment/_start")
            assert r.status == 200, r.body
    return engine


def simulate(engine, processors, docs, verbose=False):
    r = engine.request("POST", "_ingest/pipeline/_simulate",
                       {"pipeline": {"processors": processors}, "docs": [{"_source": d} for d in docs]},
                       params={"verbose": "true"} if verbose else None)
    assert r.status == 200, r.body
    assert len(r.body["docs"]) == len(docs)
    return r.body["docs"]


def source(entry):
    return entry["doc"]["_source"]


def error(entry):
    err = entry["error"]
    assert err["root_cause"][0]["type"] == err["type"]
    return err["type"], err["reason"]


def direct(engine, model_id, texts, update=None):
    """What ``_infer`` answers for the texts (the processor must write the same results)."""
    body = {"docs": [{"text_field": t} for t in texts]}
    if update is not None:
        body["inference_config"] = update
    r = engine.request("POST", f"_ml/trained_models/{model_id}/_infer", body)
    assert r.status == 200, r.body
    return r.body["inference_results"]


TEXT = "ana lives in new york"


# -- target-field style: every task writes its _infer result + model_id ---------------------------------

@pytest.mark.parametrize("model_id,update", [
    ("emb", None), ("ner", None), ("cls", {"text_classification": {"num_top_classes": 2}}),
    ("fm", {"fill_mask": {"num_top_classes": 2}}), ("elser", None),
    ("qa", {"question_answering": {"question": "who lives in new york?"}}),
    ("zs", {"zero_shot_classification": {"labels": ["sports", "politics"]}}),
    ("sim", {"text_similarity": {"text": "a city"}}),
])
def test_target_field_style_writes_the_infer_result(eng, model_id, update):
    text = "ana [MASK] in new york" if model_id == "fm" else TEXT
    proc = {"model_id": model_id, "tag": "t", "field_map": {"body": "text_field"}}
    if update is not None:
        proc["inference_config"] = update
    docs = simulate(eng, [{"inference": proc}], [{"body": text}])
    expected = dict(direct(eng, model_id, [text], update)[0])
    written = source(docs[0])["ml"]["inference"]["t"]
    assert written.pop("model_id") == model_id
    assert written.keys() == expected.keys()
    if model_id in ("emb", "elser"):  # floats: the same within float32 rounding
        value, ref = written["predicted_value"], expected["predicted_value"]
        pairs = zip(value, ref) if model_id == "emb" else ((value[k], ref[k]) for k in ref)
        assert all(a == pytest.approx(b, abs=1e-5) for a, b in pairs)
    else:
        assert written == pytest.approx(expected) if model_id == "sim" else written["predicted_value"] == \
            expected["predicted_value"]


def test_target_field_input_errors_fail_their_document_only(eng):
    docs = simulate(eng, [{"inference": {"model_id": "cls"}}],
                    [{"text_field": TEXT}, {"other": 1}, {"text_field": 5}, {"text_field": ["a", "b"]},
                     {"text_field": None}, {"text_field": "my little red car"}])
    assert source(docs[0])["ml"]["inference"]["model_id"] == "cls"
    assert source(docs[5])["ml"]["inference"]["predicted_value"] in ("negative", "neutral", "positive")
    missing = ("status_exception", "Input field [text_field] does not exist in the source document")
    assert error(docs[1]) == missing and error(docs[4]) == missing
    assert error(docs[2]) == ("status_exception", "Input value [5] for field [text_field] must be a string")
    assert error(docs[3]) == ("status_exception", "Input value [[a, b]] for field [text_field] must be a string")


def test_a_model_error_fails_only_its_document(eng):
    """fill_mask without a [MASK] token, truncate none over the limit: that document alone fails."""
    docs = simulate(eng, [{"inference": {"model_id": "fm"}}],
                    [{"text_field": "the [MASK] of france"}, {"text_field": "no mask here"}])
    assert "predicted_value" in source(docs[0])["ml"]["inference"]
    assert error(docs[1]) == ("status_exception", "Validation Failed: 1: no [MASK] token could be found in the input;")
    long_text = " ".join(["word"] * 200)
    docs = simulate(eng, [{"inference": {"model_id": "emb", "inference_config": {"text_embedding": {
        "tokenization": {"bert": {"truncate": "none"}}}}}}], [{"text_field": long_text}, {"text_field": "hi"}])
    kind, reason = error(docs[0])
    assert kind == "status_exception" and reason.startswith("Input too large. The tokenized input length [202]")
    assert len(source(docs[1])["ml"]["inference"]["predicted_value"]) == 32


def test_update_of_another_task_fails_each_document(eng):
    docs = simulate(eng, [{"inference": {"model_id": "emb", "inference_config": {"ner": {}}}}],
                    [{"text_field": "a"}, {"text_field": "b"}])
    for entry in docs:
        assert error(entry) == ("status_exception", "Trained model [emb] is configured for task [text_embedding] but "
                                "called with task [ner]")


def test_missing_required_update_fields(eng):
    docs = simulate(eng, [{"inference": {"model_id": "qa"}}], [{"text_field": TEXT}])
    assert error(docs[0]) == ("status_exception", "please provide configuration update for question_answering task "
                              "including the desired [question]")


def test_one_batched_model_call_per_processor(eng, monkeypatch):
    from es_infer_nb.models.nlp.model import NlpModel

    calls: list[int] = []
    real = NlpModel.infer

    def counting(self, batch, update=None, **kw):
        calls.append(len(batch))
        return real(self, batch, update, **kw)

    monkeypatch.setattr(NlpModel, "infer", counting)
    texts = [f"the little red car {i}" for i in range(7)]
    docs = simulate(eng, [{"inference": {"model_id": "cls", "if": "ctx.skip != true"}},
                          {"inference": {"model_id": "emb", "input_output": [
                              {"input_field": "text_field", "output_field": "v1"},
                              {"input_field": "b", "output_field": "v2"}], "ignore_missing": True}}],
                    [{"text_field": t, "b": "new york"} for t in texts] + [{"text_field": "x", "skip": True}])
    assert len(calls) == 2 and calls[0] == 7  # 7 eligible documents, then every input of the 8 in one call
    assert all("v1" in source(d) and "v2" in source(d) for d in docs)


# -- input_output style --------------------------------------------------------------------------------

def test_input_output_one_and_many_entries(eng):
    one = simulate(eng, [{"inference": {"model_id": "emb", "input_output": {"input_field": "title",
                                                                            "output_field": "title_vec"}}}],
                   [{"title": "the capital of france"}])
    src = source(one[0])
    assert src["model_id"] == "emb" and len(src["title_vec"]) == 32
    many = simulate(eng, [{"inference": {"model_id": "emb", "input_output": [
        {"input_field": "title", "output_field": "title_vec"},
        {"input_field": "body.text", "output_field": "ml.body_vec"}]}}],
        [{"title": "the capital of france", "body": {"text": "paris"}}])
    src = source(many[0])
    assert list(src) == ["title", "body", "title_vec", "model_id", "ml"]
    assert src["ml"] == {"body_vec": pytest.approx(direct(eng, "emb", ["paris"])[0]["predicted_value"], abs=1e-5)}
    assert src["title_vec"] == pytest.approx(one[0]["doc"]["_source"]["title_vec"], abs=1e-6)


def test_input_output_per_task_keys(eng):
    """§3.3: value at the leaf for embeddings/expansion; fill_mask only ``<leaf>_sequence``; ner and
    text_classification nothing but model_id (as the source read by the spec does)."""
    def out(model_id, text, update=None):
        proc = {"model_id": model_id, "input_output": {"input_field": "t", "output_field": "res.value"}}
        if update:
            proc["inference_config"] = update
        return source(simulate(eng, [{"inference": proc}], [{"t": text}])[0])["res"]

    assert set(out("elser", TEXT)) == {"value", "model_id"} and isinstance(out("elser", TEXT)["value"], dict)
    fill = out("fm", "the [MASK] of france")
    assert set(fill) == {"value_sequence", "model_id"}
    assert fill["value_sequence"] == direct(eng, "fm", ["the [MASK] of france"])[0]["predicted_value_sequence"]
    renamed = out("fm", "the [MASK] of france", {"fill_mask": {"num_top_classes": 1}})
    assert renamed["value_sequence"] == fill["value_sequence"]
    assert out("ner", TEXT) == {"model_id": "ner"}
    assert out("cls", TEXT) == {"model_id": "cls"}
    qa = out("qa", TEXT, {"question_answering": {"question": "who?"}})
    assert {"value", "start_offset", "end_offset", "prediction_probability", "model_id"} <= set(qa)


def test_input_output_ignore_missing_and_nulls(eng):
    pipe = [{"inference": {"model_id": "emb", "ignore_missing": True, "input_output": [
        {"input_field": "a", "output_field": "va"}, {"input_field": "b", "output_field": "vb"}]}}]
    docs = simulate(eng, pipe, [{"a": "paris", "b": "london"}, {"b": "london"}, {"a": "paris"}, {"a": None, "b": "x"},
                                {"a": "paris", "b": None}])
    assert set(source(docs[0])) == {"a", "b", "va", "vb", "model_id"}
    assert source(docs[1]) == {"b": "london"}  # the first input missing: no inference at all (ES)
    assert source(docs[3]) == {"a": None, "b": "x"}
    empty = direct(eng, "emb", [""])[0]["predicted_value"]
    assert source(docs[2])["vb"] == pytest.approx(empty, abs=1e-5)  # a later missing input is sent as ""
    assert source(docs[4])["vb"] == pytest.approx(empty, abs=1e-5)
    strict = simulate(eng, [{"inference": {"model_id": "emb", "input_output": [
        {"input_field": "a", "output_field": "va"}, {"input_field": "x.y.z", "output_field": "vz"}]}}],
        [{"a": "paris"}, {"a": "paris", "x": {}}, {"a": None}, {"a": "paris", "x": {"y": {"z": "new york"}}}])
    assert error(strict[0]) == ("illegal_argument_exception", "field [x] not present as part of path [x.y.z]")
    assert error(strict[1]) == ("illegal_argument_exception", "field [y] not present as part of path [x.y.z]")
    assert source(strict[2]) == {"a": None}  # present but null: ES reads null, skips the document
    assert set(source(strict[3])) == {"a", "x", "va", "vz", "model_id"}


def test_input_output_non_text_inputs(eng):
    docs = simulate(eng, [{"inference": {"model_id": "emb", "input_output": {"input_field": "t",
                                                                              "output_field": "v"}}}],
                    [{"t": ["a", "b"]}, {"t": 7}, {"t": {"x": "y"}}, {"t": "ok"}])
    for entry in docs[:3]:
        assert error(entry) == ("illegal_argument_exception",
                                "input field [t] cannot be processed because it is not a text field")
    assert len(source(docs[3])["v"]) == 32


def test_input_output_appends_to_existing_output(eng):
    pipe = [{"inference": {"model_id": "emb", "input_output": {"input_field": "t", "output_field": "o.v"}}}] * 2
    src = source(simulate(eng, pipe, [{"t": "paris"}])[0])
    assert src["o"]["model_id"] == ["emb", "emb"] and len(src["o"]["v"]) == 64


# -- config errors (ES's parse_exception, with the processor metadata) ----------------------------------

@pytest.mark.parametrize("extra,prop,reason", [
    ({"target_field": "x"}, "target_field", "[target_field] option is incompatible with [input_output]. Use the "
                                            "[output_field] option to specify where to write the inference results to."),
    ({"field_map": {"a": "b"}}, None, "processor [inference] doesn't support one or more provided configuration "
                                      "parameters [field_map]"),
    ({"inference_config": {"text_embedding": {"results_field": "r"}}}, None,
     "The [inference_config.results_field] setting is incompatible with using [input_output]. Prefer to use the "
     "[input_output.output_field] option to specify where to write the inference results to."),
])
def test_input_output_config_errors(eng, extra, prop, reason):
    proc = {"model_id": "emb", "tag": "tg", "input_output": {"input_field": "a", "output_field": "b"}, **extra}
    for r in (eng.request("PUT", "_ingest/pipeline/bad", {"processors": [{"inference": proc}]}),
              eng.request("POST", "_ingest/pipeline/_simulate", {"pipeline": {"processors": [{"inference": proc}]},
                                                                 "docs": [{"_source": {"a": "x"}}]})):
        assert r.status == 400
        err = r.body["error"]
        assert (err["type"], err["reason"]) == ("parse_exception", reason)
        assert err["processor_type"] == "inference" and err["processor_tag"] == "tg"
        assert err.get("property_name") == prop


def test_input_output_entries_keep_unknown_keys_and_check_duplicates_in_order(eng):
    ok = {"processors": [{"inference": {"model_id": "emb", "input_output": [
        {"input_field": "a", "output_field": "b", "comment": "kept by ES, unused"}]}}]}
    assert eng.request("PUT", "_ingest/pipeline/io-extra", ok).status == 200
    dup = {"processors": [{"inference": {"model_id": "emb", "input_output": [
        {"input_field": "a", "output_field": "o"}, {"input_field": "b", "output_field": "o"},
        {"input_field": "a", "output_field": "p"}]}}]}
    r = eng.request("PUT", "_ingest/pipeline/io-dup", dup)
    assert r.status == 400 and r.body["error"]["reason"] == "[output_field] names must be unique but [o] is repeated"


# -- from a notebook --------------------------------------------------------------------------------------

def test_frame_pipeline_with_nlp_models(eng):
    frame = pd.DataFrame({"title": ["the capital of france", None, 5, "my little red car"],
                          "body": ["paris", "london", "x", None]}, index=list("abcd"))
    pipe = {"processors": [
        {"inference": {"model_id": "cls", "tag": "cls", "field_map": {"title": "text_field"},
                       "on_failure": [{"set": {"field": "cls_error", "value": "{{_ingest.on_failure_message}}"}}]}},
        {"inference": {"model_id": "emb", "ignore_missing": True, "input_output": [
            {"input_field": "title", "output_field": "vec.title"}, {"input_field": "body", "output_field": "vec.body"}]}}]}
    out = frame.infer.pipeline(pipe, engine=eng)
    assert list(out.index) == list("abcd")
    assert out.loc["a", "ml.inference.cls.model_id"] == "cls" and len(out.loc["a", "vec.title"]) == 32
    assert out.loc["b", "cls_error"] == "Input field [text_field] does not exist in the source document"
    assert pd.isna(out.loc["b", "vec.model_id"])  # the first input missing: skipped, not failed
    assert out.loc["c", "_ingest.error.reason"] == "input field [title] cannot be processed because it is not a text field"
    assert out.loc["c", "_ingest.error.processor_type"] == "inference" and out.loc["c", "title"] == 5
    assert len(out.loc["d", "vec.body"]) == 32 and out.loc["d", "vec.model_id"] == "emb"


# -- an _inference endpoint id as model_id -----------------------------------------------------------

@pytest.fixture(scope="module")
def endpoint(eng):
    r = eng.request("PUT", "_inference/text_embedding/tiny-ep", {"service": "elasticsearch", "service_settings": {
        "model_id": "emb", "num_allocations": 1, "num_threads": 1}})
    assert r.status == 200, r.body
    return "tiny-ep"


def test_endpoint_id_as_model_id(eng, endpoint):
    vec = direct(eng, "emb", ["paris"])[0]["predicted_value"]
    docs = simulate(eng, [{"inference": {"model_id": endpoint, "input_output": [
        {"input_field": "a", "output_field": "out.a"}, {"input_field": "b", "output_field": "b_vec"}],
        "ignore_missing": True}}], [{"a": "paris", "b": "paris"}, {"a": 5}, {"b": "x"}])
    src = source(docs[0])
    assert src["out"]["model_id"] == endpoint
    assert src["out"]["a"] == pytest.approx(vec, abs=1e-5) and src["b_vec"] == pytest.approx(vec, abs=1e-5)
    assert error(docs[1]) == ("illegal_argument_exception",
                              "input field [a] cannot be processed because it is not a text field")
    assert source(docs[2]) == {"b": "x"}
    target = simulate(eng, [{"inference": {"model_id": endpoint, "field_map": {"a": "text_field"}}}], [{"a": "paris"}])
    assert source(target[0])["ml"]["inference"]["model_id"] == endpoint
    assert source(target[0])["ml"]["inference"]["predicted_value"] == pytest.approx(vec, abs=1e-5)


# -- the bundled MiniLM (auto-deployed) ------------------------------------------------------------------

def test_bundled_minilm_input_output(engine):
    from es_infer_nb.models.nlp import EMBEDDED_MODEL_ID

    docs = simulate(engine, [{"inference": {"model_id": EMBEDDED_MODEL_ID, "input_output": [
        {"input_field": "title", "output_field": "title_embedding"}]}}],
        [{"title": "a sentence about cats"}, {"title": ["not", "text"]}])
    src = source(docs[0])
    assert len(src["title_embedding"]) == 384 and src["model_id"] == EMBEDDED_MODEL_ID
    assert error(docs[1])[1] == "input field [title] cannot be processed because it is not a text field"


def test_deployment_id_and_alias_as_model_id(eng):
    r = eng.request("POST", "_ml/trained_models/emb/deployment/_start", params={"deployment_id": "emb-search"})
    assert r.status == 200, r.body
    assert eng.request("PUT", "_ml/trained_models/emb/model_aliases/emb-current").status == 200
    docs = simulate(eng, [{"inference": {"model_id": "emb-search", "tag": "dep"}},
                          {"inference": {"model_id": "emb-current", "tag": "alias"}},
                          {"inference": {"model_id": "emb-current", "input_output": {"input_field": "text_field",
                                                                                     "output_field": "io.v"}}}],
                    [{"text_field": "paris"}])
    src = source(docs[0])
    assert src["ml"]["inference"]["dep"]["model_id"] == "emb-search"  # a deployment id is reported as given
    assert src["ml"]["inference"]["alias"]["model_id"] == "emb"  # an alias resolves to its model
    assert src["io"]["model_id"] == "emb"
    assert src["ml"]["inference"]["dep"]["predicted_value"] == pytest.approx(src["io"]["v"], abs=1e-6)


def test_output_path_through_a_non_object_fails_its_document_only(eng):
    docs = simulate(eng, [{"inference": {"model_id": "emb", "input_output": {"input_field": "t",
                                                                              "output_field": "out.vec"}}}],
                    [{"t": "paris", "out": "a string"}, {"t": "london"}])
    assert error(docs[0]) == ("illegal_argument_exception",
                              "cannot set [vec] with parent object of type [java.lang.String] as part of path [out.vec]")
    assert len(source(docs[1])["out"]["vec"]) == 32
    docs = simulate(eng, [{"inference": {"model_id": "emb", "target_field": "out.ml"}}],
                    [{"text_field": "paris", "out": 3}, {"text_field": "london"}])
    assert error(docs[0])[1] == "cannot set [ml] with parent object of type [java.lang.Integer] as part of path [out.ml]"
    assert source(docs[1])["out"]["ml"]["model_id"] == "emb"


def test_unexpected_model_errors_fail_the_documents_not_the_request(eng, monkeypatch):
    from es_infer_nb.models.nlp.model import NlpModel

    def broken(self, batch, update=None, **kw):
        raise RuntimeError("device lost")

    monkeypatch.setattr(NlpModel, "infer", broken)
    docs = simulate(eng, [{"inference": {"model_id": "cls", "on_failure": [
        {"set": {"field": "why", "value": "{{_ingest.on_failure_message}}"}}]}}],
        [{"text_field": "a new text"}, {"text_field": "another new text"}])
    assert [source(d)["why"] for d in docs] == ["RuntimeError: device lost"] * 2


def test_update_fields_are_checked_when_the_pipeline_is_made(eng):
    """InferenceProcessor.Factory reads the update with <Task>ConfigUpdate.fromMap: an unknown field, or an
    update without its question / text, fails the pipeline's PUT (zero-shot, QA and similarity name the whole map)."""
    for update, reason in (({"text_classification": {"foo": 1}}, "Unrecognized fields [foo]."),
                           ({"zero_shot_classification": {"labels": ["a"], "foo": 1}}, "Unrecognized fields [labels, foo]."),
                           ({"question_answering": {"max_answer_length": 3}}, "[question] must not be null.")):
        r = eng.request("PUT", "_ingest/pipeline/bad-update", {"processors": [{"inference": {
            "model_id": "emb", "inference_config": update}}]})
        assert r.status == 400 and r.body["error"]["reason"] == reason, (update, r.body)
    ok = eng.request("PUT", "_ingest/pipeline/good-update", {"processors": [{"inference": {
        "model_id": "emb", "inference_config": {"text_embedding": {"results_field": "v"}}}}]})
    assert ok.status == 200, ok.body
