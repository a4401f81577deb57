"""Engine.import_hf_model: eland's ids and configs from local folders, files kept under the home."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from es_infer_nb import Engine
from es_infer_nb.errors import ApiError
from es_infer_nb.models.native_definitions import native_definitions
from es_infer_nb.models.nlp.importer import default_name, elasticsearch_model_id
from es_infer_nb.models.nlp.model import LOCAL_MODEL_KEY, NlpModel
from tiny_models import VOCAB, build


@pytest.mark.parametrize("name, expected", [
    ("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers__all-minilm-l6-v2"),
    ("dslim/bert-base-NER", "dslim__bert-base-ner"),
    ("/tmp/models/My Model", "tmp__models__my__model"),
    ("/" + "x" * 70, "x" * 64),
])
def test_elasticsearch_model_id_as_eland(name, expected):
    assert elasticsearch_model_id(name) == expected


def test_default_name_from_folder_or_hub_cache(tmp_path):
    assert default_name(tmp_path / "my-model") == "my-model"
    cache = tmp_path / "models--sentence-transformers--all-MiniLM-L6-v2" / "snapshots" / "abc123"
    assert elasticsearch_model_id(default_name(cache)) == "sentence-transformers__all-minilm-l6-v2"


def test_config_filled_from_tokenizer_and_model(tiny_models):
    engine = Engine()
    answer = engine.import_hf_model(tiny_models["token"], "ner")
    assert answer["model_id"] == "token"
    assert answer["model_type"] == "pytorch"
    assert answer["description"] == "Model token for task type 'ner'"
    assert answer["input"] == {"field_names": ["text_field"]}
    ner = answer["inference_config"]["ner"]
    assert ner["tokenization"] == {"bert": {"do_lower_case": True, "max_sequence_length": 128}}
    assert ner["classification_labels"] == ["O", "B_PER", "I_PER", "B_LOC", "I_LOC", "B_ORG", "I_ORG"]
    qa = engine.import_hf_model(tiny_models["qa"], "question_answering", "qa")["inference_config"]
    assert qa["question_answering"]["tokenization"] == {"bert": {"do_lower_case": True, "max_sequence_length": 386,
                                                                 "span": 128, "truncate": "none"}}
    sim = engine.import_hf_model(tiny_models["similarity"], "text_similarity", "sim")["inference_config"]
    assert sim["text_similarity"]["tokenization"]["bert"]["truncate"] == "second"
    emb = engine.import_hf_model(tiny_models["base"], "text_embedding", "emb")["inference_config"]
    assert emb["text_embedding"]["embedding_size"] == 32


def test_labels_with_dashes_become_underscores(tmp_path):
    import transformers

    from tiny_models import bert_config, write_tokenizer

    labels = ["O", "B-PER", "I-PER"]
    model = transformers.BertForTokenClassification(bert_config(id2label=dict(enumerate(labels)),
                                                                label2id={l: i for i, l in enumerate(labels)}))
    model.save_pretrained(str(tmp_path / "dashes"))
    write_tokenizer(tmp_path / "dashes")
    answer = Engine().import_hf_model(tmp_path / "dashes", "ner", hub_model_id="Org/Dashes-NER")
    assert answer["model_id"] == "org__dashes-ner"
    assert answer["inference_config"]["ner"]["classification_labels"] == ["O", "B_PER", "I_PER"]


def test_vocabulary_kept_and_files_hidden_from_get(tiny_models):
    engine = Engine()
    engine.import_hf_model(tiny_models["base"], "text_embedding", "emb")
    assert native_definitions(engine).vocabulary("emb")["vocabulary"] == VOCAB
    got = engine.request("GET", "_ml/trained_models/emb").body["trained_model_configs"][0]
    assert LOCAL_MODEL_KEY not in got
    assert got["inference_config"]["text_embedding"]["vocabulary"] == {"index": ".ml-inference-native-000002"}
    status = engine.request("GET", "_ml/trained_models/emb", params={"include": "definition_status"}).body
    assert status["trained_model_configs"][0]["fully_defined"] is True


def test_files_copied_under_the_home_and_loaded_by_a_new_engine(tmp_path):
    source = build(tmp_path / "source-model", "sequence", seed=3)
    home = tmp_path / "home"
    Engine(home).import_hf_model(source, "text_classification")
    expected = NlpModel("source-model", Engine(home).models.config("source-model"), "cpu").infer(
        [{"text_field": "paris"}]).to_docs()
    shutil.rmtree(source)  # the engine's copy is what loads
    engine = Engine(home)
    stored = engine.models.config("source-model")
    assert Path(stored[LOCAL_MODEL_KEY]["path"]).is_relative_to(home)
    assert NlpModel("source-model", stored, "cpu").infer([{"text_field": "paris"}]).to_docs() == expected
    assert engine.request("POST", "_ml/trained_models/source-model/deployment/_start").status == 200
    answer = engine.request("POST", "_ml/trained_models/source-model/_infer", {"docs": [{"text_field": "paris"}]})
    assert answer.body["inference_results"] == expected


def test_import_errors(tiny_models, tmp_path):
    engine = Engine()
    with pytest.raises(ValueError, match="Task translation is not supported"):
        engine.import_hf_model(tiny_models["base"], "translation")
    with pytest.raises(FileNotFoundError, match="nothing is fetched from a hub"):
        engine.import_hf_model(tmp_path / "nope", "text_embedding")
    engine.import_hf_model(tiny_models["base"], "text_embedding", "twice")
    with pytest.raises(ApiError):
        engine.import_hf_model(tiny_models["base"], "text_embedding", "twice")
    with pytest.raises(ValueError, match="quantize"):
        engine.import_hf_model(tiny_models["base"], "text_embedding", "q", quantize="int4")


def test_int8_quantized_import_stays_close(tiny_models):
    engine = Engine()
    engine.import_hf_model(tiny_models["base"], "text_embedding", "fp32")
    engine.import_hf_model(tiny_models["base"], "text_embedding", "int8", quantize="int8")
    docs = [{"text_field": "the capital of france is paris"}]
    a = np.asarray(NlpModel("fp32", engine.models.config("fp32"), "cpu").infer(docs).to_docs()[0]["predicted_value"])
    b = np.asarray(NlpModel("int8", engine.models.config("int8"), "cpu").infer(docs).to_docs()[0]["predicted_value"])
    assert not np.array_equal(a, b)
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.95


def test_bundled_minilm_imported_embeds_as_sentence_transformers():
    from es_infer_nb.models.nlp.embedded import get_model, model_path

    engine = Engine()
    answer = engine.import_hf_model(model_path(), "text_embedding", hub_model_id="sentence-transformers/all-MiniLM-L6-v2")
    assert answer["model_id"] == "sentence-transformers__all-minilm-l6-v2"
    tokenization = answer["inference_config"]["text_embedding"]["tokenization"]["bert"]
    assert tokenization["do_lower_case"] is True
    assert answer["inference_config"]["text_embedding"]["embedding_size"] == 384
    texts = ["The quick brown fox jumps over the lazy dog.", "Elasticsearch runs NLP models, café déjà vu!"]
    docs = NlpModel(answer["model_id"], engine.models.config(answer["model_id"]), "cpu").infer(
        [{"text_field": t} for t in texts]).to_docs()
    reference = get_model("cpu").embed(texts)
    for doc, ref in zip(docs, reference):
        v = np.asarray(doc["predicted_value"])
        assert float(v @ ref / np.linalg.norm(v) / np.linalg.norm(ref)) > 0.9999
