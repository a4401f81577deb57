"""Engine.import_hf_model: eland's ids and configs from local folders, files kept under the home."""

from __future__ import annotations

import inspect
import json
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
    # eland's 386 / span 128, capped at the tiny model's 128 position embeddings (span keeps the 1/3 ratio)
    assert qa["question_answering"]["tokenization"] == {"bert": {"do_lower_case": True, "max_sequence_length": 128,
                                                                 "span": 42, "truncate": "none"}}
    sim = engine.import_hf_model(tiny_models["similarity"], "text_similarity", "sim")["inference_config"]
    assert sim["text_similarity"]["tokenization"]["bert"]["truncate"] == "second"
    emb = engine.import_hf_model(tiny_models["base"], "text_embedding", "emb")["inference_config"]
    assert emb["text_embedding"]["embedding_size"] == 32


def test_labels_with_dashes_become_underscores(tmp_path):
    import transformers

    from tiny_models import bert_config, write_tokenizer

    labels = ["O", "B-PER", "I-PER"]
    model = transformers.BertForTokenClassification(bert_config(id2label=dict(enumerate(labels)),
                                                                label2id={label: i for i, label in enumerate(labels)}))
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


# -- max_sequence_length never above what the network takes --------------------------------------------------


def write_roberta(folder: Path, *, positions: int, model_max_length: int | None) -> Path:
    """A tiny RoBERTa (byte-level BPE trained here on a few sentences) with ``positions`` position
    embeddings (``padding_idx`` 1: position ids start at 2)."""
    import transformers
    from tokenizers import ByteLevelBPETokenizer

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["the capital of france is paris", "my little red car", "ana lives in new york"] * 5,
                            vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                            show_progress=False)
    bpe.save_model(str(folder))
    extra = {} if model_max_length is None else {"model_max_length": model_max_length}
    if "vocab_file" in inspect.signature(transformers.RobertaTokenizerFast.__init__).parameters:  # transformers 4
        tokenizer = transformers.RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"),
                                                      merges_file=str(folder / "merges.txt"), **extra)
    else:  # transformers 5 takes the vocabulary and the merges themselves
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        merges = [tuple(line.split(" ")) for line in (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
                  if line and not line.startswith("#")]
        tokenizer = transformers.RobertaTokenizerFast(vocab=vocab, merges=merges, **extra)
    assert len(tokenizer) > 256, "the byte-level vocabulary was not loaded"
    tokenizer.save_pretrained(str(folder))
    config = transformers.RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=37,
                                        max_position_embeddings=positions, type_vocab_size=1, pad_token_id=1,
                                        bos_token_id=0, eos_token_id=2)
    transformers.RobertaModel(config).eval().save_pretrained(str(folder))
    return folder


def tokenization(answer, task):
    ((kind, inner),) = answer["inference_config"][task]["tokenization"].items()
    return kind, inner


@pytest.mark.parametrize("task", ["text_embedding", "pass_through", "fill_mask", "question_answering"])
def test_bert_max_sequence_length_capped_at_its_position_embeddings(tmp_path, task):
    """The tokenizer says 512 (eland's value) but the network has 128 position embeddings."""
    import transformers

    from tiny_models import bert_config, write_tokenizer

    folder = tmp_path / "bert512"
    transformers.BertForMaskedLM(bert_config()).save_pretrained(str(folder))
    write_tokenizer(folder)
    tok = transformers.BertTokenizerFast.from_pretrained(str(folder))
    tok.model_max_length = 512
    tok.save_pretrained(str(folder))
    engine = Engine()
    with pytest.warns(UserWarning, match=r"max_sequence_length \[(512|386)\] .* set to \[128\] \(max_position_embeddings \[128\]"):
        stored = engine.import_hf_model(folder, task, "m")
    kind, inner = tokenization(stored, task)
    assert kind == "bert" and inner["max_sequence_length"] == 128
    if task == "question_answering":
        assert inner["span"] == 128 // 3 and inner["truncate"] == "none"
    text = " ".join(["word"] * 300)
    update = {"question_answering": {"question": "who lives in paris"}} if task == "question_answering" else None
    doc = "the [MASK] of france" if task == "fill_mask" else text
    (out,) = NlpModel("m", engine.models.config("m"), "cpu").infer([{"text_field": doc}], update).to_docs()
    assert "error" not in out and "predicted_value" in out


def test_question_answering_keeps_elands_default_when_the_model_takes_it(tmp_path, tiny_models):
    import transformers

    from tiny_models import bert_config, write_tokenizer

    config = bert_config()
    config.max_position_embeddings = 512
    folder = tmp_path / "qa512"
    transformers.BertForQuestionAnswering(config).save_pretrained(str(folder))
    write_tokenizer(folder)
    engine = Engine()
    _kind, inner = tokenization(engine.import_hf_model(folder, "question_answering", "qa512"), "question_answering")
    assert inner == {"do_lower_case": True, "max_sequence_length": 386, "span": 128, "truncate": "none"}
    # the tiny QA model (128 positions) answers a context far longer than its limit, in windows
    _kind, inner = tokenization(engine.import_hf_model(tiny_models["qa"], "question_answering", "qa"),
                                "question_answering")
    assert inner == {"do_lower_case": True, "max_sequence_length": 128, "span": 42, "truncate": "none"}
    context = " ".join(["ana lives in paris and the dog lives in london"] * 40)
    (doc,) = NlpModel("qa", engine.models.config("qa"), "cpu").infer(
        [{"text_field": context}], {"question_answering": {"question": "who lives in paris"}}).to_docs()
    assert "error" not in doc and doc["predicted_value"] == context[doc["start_offset"]:doc["end_offset"]]


@pytest.mark.parametrize("model_max_length, expected", [(None, 128), (512, 128), (100, 100)])
def test_roberta_style_limit_is_positions_less_the_padding_offset(tmp_path, model_max_length, expected):
    """RoBERTa position ids start at padding_idx + 1 = 2: 130 position embeddings take 128 tokens."""
    folder = write_roberta(tmp_path / "rob", positions=130, model_max_length=model_max_length)
    engine = Engine()
    kind, inner = tokenization(engine.import_hf_model(folder, "text_embedding", "rob"), "text_embedding")
    assert kind == "roberta" and inner["max_sequence_length"] == expected
    long_text = " ".join(["the capital of france is paris"] * 60)
    (doc,) = NlpModel("rob", engine.models.config("rob"), "cpu").infer([{"text_field": long_text}]).to_docs()
    assert doc["is_truncated"] is True and len(doc["predicted_value"]) == 32
    _kind, qa = tokenization(engine.import_hf_model(folder, "question_answering", "rob-qa"), "question_answering")
    assert (qa["max_sequence_length"], qa["span"]) == (128, 42)  # eland's 386 capped at the network's limit


def test_model_input_limit_of_configs():
    import transformers

    from es_infer_nb.models.nlp.importer import model_input_limit

    assert model_input_limit(transformers.BertConfig(max_position_embeddings=512)) == 512
    assert model_input_limit(transformers.RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert model_input_limit(transformers.XLMRobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert model_input_limit(transformers.MPNetConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    # DeBERTa-v2 without absolute positions: relative attention, no position limit
    assert model_input_limit(transformers.DebertaV2Config(max_position_embeddings=512,
                                                          position_biased_input=False)) is None
    assert model_input_limit(transformers.DebertaV2Config(max_position_embeddings=512,
                                                          position_biased_input=True)) == 512


def test_user_max_model_input_length_above_the_limit_is_refused(tiny_models, tmp_path):
    engine = Engine()
    with pytest.raises(ValueError, match=r"max_model_input_length \[300\] is greater than the model's maximum input "
                                         r"length \[128\] \(max_position_embeddings \[128\]"):
        engine.import_hf_model(tiny_models["base"], "text_embedding", "too-long", max_model_input_length=300)
    assert engine.request("GET", "_ml/trained_models/too-long").status == 404  # nothing stored
    rob = write_roberta(tmp_path / "rob", positions=130, model_max_length=None)
    with pytest.raises(ValueError, match=r"\[129\] is greater than the model's maximum input length \[128\] "
                                         r"\(max_position_embeddings \[130\] of the model's config.json, less \[2\]"):
        engine.import_hf_model(rob, "text_embedding", "rob", max_model_input_length=129)
    for value in (0, -5, "64"):
        with pytest.raises(ValueError, match="max_model_input_length must be a positive integer"):
            engine.import_hf_model(tiny_models["base"], "text_embedding", "bad", max_model_input_length=value)
    answer = engine.import_hf_model(tiny_models["base"], "text_embedding", "ok", max_model_input_length=64)
    assert tokenization(answer, "text_embedding")[1]["max_sequence_length"] == 64
