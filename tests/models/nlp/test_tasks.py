"""Every NLP task on tiny random-weight models: post-processing checked against the model's raw
outputs, computed here by running the Hugging Face model directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from es_infer_nb.errors import ApiError
from es_infer_nb.models.nlp.tasks.classification import TextClassification, ZeroShotClassification

TEXTS = ["the capital of france is paris", "many use elasticsearch in london", "hi ana from new york"]


def hf(folder, cls: str):
    model = getattr(transformers, cls).from_pretrained(str(folder))
    model.eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    return model, tok


def run(model, tok, *args):
    """The reference forward pass on ES's inputs: transformers' ids, token types all 0 (ES writes zeros
    for a pair's second sequence too, TokenizationResult.writeTokenTypeIds)."""
    enc = tok(*args, return_tensors="pt")
    enc["token_type_ids"] = torch.zeros_like(enc["input_ids"])
    with torch.inference_mode():
        return model(**enc)


def softmax(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_text_embedding_is_mean_pooled_hidden_state(nlp_model, tiny_models):
    model, tok = hf(tiny_models["base"], "BertModel")
    docs = nlp_model("text_embedding").infer([{"text_field": t} for t in TEXTS]).to_docs()
    for text, doc in zip(TEXTS, docs):
        hidden = run(model, tok, text).last_hidden_state[0].numpy()
        assert np.allclose(doc["predicted_value"], hidden.mean(axis=0), atol=1e-5)
        assert "is_truncated" not in doc


def test_pass_through_is_the_raw_hidden_state(nlp_model, tiny_models):
    model, tok = hf(tiny_models["base"], "BertModel")
    doc = nlp_model("pass_through").infer([{"text_field": TEXTS[0]}]).to_docs()[0]
    hidden = run(model, tok, TEXTS[0]).last_hidden_state[0].numpy()
    assert np.asarray(doc["predicted_value"]).shape == hidden.shape
    assert np.allclose(doc["predicted_value"], hidden, atol=1e-5)


def test_text_classification_softmax_and_top_classes(nlp_model, tiny_models):
    model, tok = hf(tiny_models["sequence"], "BertForSequenceClassification")
    labels = ["negative", "neutral", "positive"]
    m = nlp_model("text_classification")
    default = m.infer([{"text_field": TEXTS[1]}]).to_docs()[0]
    assert "top_classes" not in default  # num_top_classes defaults to 0
    doc = m.infer([{"text_field": TEXTS[1]}], {"text_classification": {"num_top_classes": -1}}).to_docs()[0]
    probs = softmax(run(model, tok, TEXTS[1]).logits[0].numpy())
    order = np.argsort(-probs, kind="stable")
    assert doc["predicted_value"] == labels[order[0]]
    assert doc["prediction_probability"] == pytest.approx(probs[order[0]], abs=1e-6)
    assert [c["class_name"] for c in doc["top_classes"]] == [labels[i] for i in order]
    assert [c["class_probability"] for c in doc["top_classes"]] == pytest.approx(probs[order], abs=1e-6)
    assert "prediction_score" not in doc
    two = m.infer([{"text_field": TEXTS[1]}], {"text_classification": {"num_top_classes": 2}}).to_docs()[0]
    assert len(two["top_classes"]) == 2


def test_text_classification_span_windows_average_softmaxes(nlp_model, tiny_models):
    model, tok = hf(tiny_models["sequence"], "BertForSequenceClassification")
    m = nlp_model("text_classification", num_top_classes=-1)
    text = "the capital of france is paris and many use elasticsearch in london"
    update = {"text_classification": {"tokenization": {"bert": {"truncate": "none", "span": 2,
                                                                "max_sequence_length": 8}}}}
    doc = m.infer([{"text_field": text}], update).to_docs()[0]
    windows = m.tokenizer_for(m.task.updated(update["text_classification"])).tokenize(text, "none", 2)
    assert len(windows) > 1
    with torch.inference_mode():
        probs = [softmax(model(input_ids=torch.tensor([w.token_ids]),
                               token_type_ids=torch.zeros(1, len(w.token_ids), dtype=torch.long)).logits[0].numpy())
                 for w in windows]
    mean = np.mean(probs, axis=0)
    assert doc["prediction_probability"] == pytest.approx(mean.max(), abs=1e-6)
    assert "is_truncated" not in doc  # windowed, not truncated


def test_ner_entities_from_averaged_word_piece_probabilities(nlp_model, tiny_models):
    model, tok = hf(tiny_models["token"], "BertForTokenClassification")
    labels = ["O", "B_PER", "I_PER", "B_LOC", "I_LOC", "B_ORG", "I_ORG"]
    text = "Hi Ana, many use Elasticsearch in London"
    doc = nlp_model("ner").infer([{"text_field": text}]).to_docs()[0]
    enc = tok(text, return_offsets_mapping=True)
    probs = softmax(run(model, tok, text).logits[0].numpy())
    words = enc.word_ids()
    tags, spans = [], []
    for w in sorted({w for w in words if w is not None}):
        rows = [i for i, x in enumerate(words) if x == w]
        avg = probs[rows].mean(axis=0)
        tags.append((labels[int(avg.argmax())], float(avg.max())))
        spans.append((enc["offset_mapping"][rows[0]][0], enc["offset_mapping"][rows[-1]][1]))
    expected = []
    i = 0
    while i < len(tags):
        tag, score = tags[i]
        if tag == "O":
            i += 1
            continue
        j, total = i + 1, score
        while j < len(tags) and not tags[j][0].startswith("B") and tags[j][0][2:] == tag[2:]:
            total += tags[j][1]
            j += 1
        start, end = spans[i][0], spans[j - 1][1]
        expected.append({"entity": text[start:end].lower(), "class_name": tag[2:], "class_probability": total / (j - i),
                         "start_pos": start, "end_pos": end})
        i = j
    assert len(doc["entities"]) == len(expected)
    for got, want in zip(doc["entities"], expected):
        assert got == {**want, "class_probability": pytest.approx(want["class_probability"], abs=1e-6)}
    annotated = doc["predicted_value"]
    for e in expected:
        assert f"]({e['class_name']}&" in annotated
    assert annotated.replace("[", "").count("](") == len(expected)


def test_fill_mask_top_classes_and_sequence(nlp_model, tiny_models):
    model, tok = hf(tiny_models["masked_lm"], "BertForMaskedLM")
    text = "the capital of france is [MASK] ."
    doc = nlp_model("fill_mask").infer([{"text_field": text}], {"fill_mask": {"num_top_classes": 3}}).to_docs()[0]
    enc = tok(text, return_tensors="pt")
    pos = int((enc["input_ids"][0] == tok.mask_token_id).nonzero()[0, 0])
    probs = softmax(run(model, tok, text).logits[0, pos].numpy())
    order = np.argsort(-probs, kind="stable")[:3]
    vocab = tok.convert_ids_to_tokens(order.tolist())
    names = list(vocab)  # BertTokenizationResult.decode keeps a vocabulary entry as is, "##" included
    assert [c["class_name"] for c in doc["top_classes"]] == names
    assert doc["predicted_value"] == names[0]
    assert doc["prediction_probability"] == pytest.approx(probs[order[0]], abs=1e-6)
    assert doc["predicted_value_sequence"] == text.replace("[MASK]", names[0])


def test_fill_mask_needs_exactly_one_mask(nlp_model):
    docs = nlp_model("fill_mask").infer([{"text_field": "no mask here"}, {"text_field": "[MASK] and [MASK]"},
                                         {"text_field": "one [MASK] here"}]).to_docs()
    assert docs[0] == {"error": "Validation Failed: 1: no [MASK] token could be found in the input;"}
    assert docs[1] == {"error": "only one [MASK] token should exist in the input"}
    assert "predicted_value" in docs[2]


def test_text_expansion_is_splade_pooling_with_sanitized_tokens(nlp_model, tiny_models):
    model, tok = hf(tiny_models["masked_lm"], "BertForMaskedLM")
    text = "x.y is a word"
    doc = nlp_model("text_expansion").infer([{"text_field": text}]).to_docs()[0]
    logits = run(model, tok, text).logits[0].numpy()
    weights = np.log1p(np.maximum(logits, 0)).max(axis=0).astype(np.float32)
    vocab = tok.convert_ids_to_tokens(list(range(len(weights))))
    expected = {vocab[i].replace(".", "__"): float(weights[i]) for i in np.nonzero(weights > 0)[0]}
    got = doc["predicted_value"]
    assert set(got) == set(expected)
    assert list(got.values()) == sorted(got.values(), reverse=True)
    for token, weight in expected.items():
        assert got[token] == pytest.approx(weight, rel=1e-5)
    assert not any("." in t for t in got)


def test_zero_shot_entailment_math(nlp_model, tiny_models):
    model, tok = hf(tiny_models["nli"], "BertForSequenceClassification")
    labels = ["sports", "politics", "science"]
    text = "the dog is a big cat"
    logits = np.stack([run(model, tok, text, f"This example is {label}.").logits[0].numpy() for label in labels])
    # model labels: contradiction, neutral, entailment
    single = nlp_model("zero_shot_classification").infer(
        [{"text_field": text}], {"zero_shot_classification": {"labels": labels}}).to_docs()[0]
    probs = softmax(logits[:, 2])
    order = np.argsort(-probs, kind="stable")
    assert [c["class_name"] for c in single["top_classes"]] == [labels[i] for i in order]
    assert single["prediction_probability"] == pytest.approx(probs[order[0]], abs=1e-6)
    multi = nlp_model("zero_shot_classification").infer(
        [{"text_field": text}], {"zero_shot_classification": {"labels": labels, "multi_label": True}}).to_docs()[0]
    each = [softmax([row[2], row[0]])[0] for row in logits]
    assert {c["class_name"]: c["class_probability"] for c in multi["top_classes"]} == pytest.approx(
        dict(zip(labels, each)), abs=1e-6)


def test_zero_shot_needs_labels(nlp_model):
    with pytest.raises(ApiError, match=r"stored configuration has no \[labels\] defined, supplied inference_config "
                                       r"update must supply \[labels\]"):
        nlp_model("zero_shot_classification").infer([{"text_field": "x"}])


def test_question_answering_best_span(nlp_model, tiny_models):
    model, tok = hf(tiny_models["qa"], "BertForQuestionAnswering")
    question, context = "who lives in paris", "ana lives in paris and the dog lives in london"
    doc = nlp_model("question_answering").infer(
        [{"text_field": context}],
        {"question_answering": {"question": question, "num_top_classes": 3, "max_answer_length": 4}}).to_docs()[0]
    out = run(model, tok, question, context)
    enc = tok(question, context, return_offsets_mapping=True)
    seq2 = enc.token_type_ids.index(1)
    n = len(enc["input_ids"])
    keep = [0] + list(range(seq2, n - 1))

    def norm(x):
        y = np.full(n, -10000.0)
        y[keep] = np.asarray(x, dtype=np.float64)[keep]
        p = softmax(y)
        p[0] = 0.0
        return p

    s, e = norm(out.start_logits[0].numpy()), norm(out.end_logits[0].numpy())
    spans = sorted(((s[i] * e[j], i, j) for i in range(seq2, n) for j in range(i, min(i + 4, n))),
                   key=lambda t: -t[0])[:3]
    offsets = enc["offset_mapping"]
    words = enc.word_ids()

    def word_span(i):
        rows = [k for k in range(seq2, n - 1) if words[k] == words[i]]
        return offsets[rows[0]][0], offsets[rows[-1]][1]

    assert [t["score"] for t in doc["top_classes"]] == pytest.approx([t[0] for t in spans], abs=1e-9)
    best_score, i, j = spans[0]
    start, end = word_span(i)[0], word_span(j)[1]
    assert (doc["start_offset"], doc["end_offset"]) == (start, end)
    assert doc["predicted_value"] == context[start:end]
    assert doc["prediction_probability"] == pytest.approx(best_score, abs=1e-9)


def test_question_answering_needs_a_question(nlp_model):
    with pytest.raises(ApiError, match=r"including the desired \[question\]"):
        nlp_model("question_answering").infer([{"text_field": "ana lives in paris"}])


def test_text_similarity_raw_logit_max_and_mean(nlp_model, tiny_models):
    model, tok = hf(tiny_models["similarity"], "BertForSequenceClassification")
    text, doc_text = "the dog", "a big dog lives in london"
    doc = nlp_model("text_similarity").infer([{"text_field": doc_text}],
                                             {"text_similarity": {"text": text}}).to_docs()[0]
    assert doc["predicted_value"] == pytest.approx(float(run(model, tok, text, doc_text).logits[0, 0]), abs=1e-5)
    long_doc = " ".join(["the capital of france is paris"] * 3)
    update = {"text_similarity": {"text": text, "tokenization": {"bert": {"truncate": "none", "span": 2}},
                                  "span_score_combination_function": "mean"}}
    m = nlp_model("text_similarity", tokenization={"bert": {"do_lower_case": True, "max_sequence_length": 12,
                                                            "truncate": "second"}})
    windows = m.tokenizer.tokenize_pair_span(text, long_doc, "none", 2)
    assert len(windows) > 1
    scores = []
    for w in windows:
        types = torch.zeros(1, len(w.token_ids), dtype=torch.long)  # ES sends type 0 everywhere
        with torch.inference_mode():
            scores.append(float(model(input_ids=torch.tensor([w.token_ids]), token_type_ids=types).logits[0, 0]))
    got = m.infer([{"text_field": long_doc}], update).to_docs()[0]
    assert got["predicted_value"] == pytest.approx(np.mean(scores), abs=1e-5)


def test_truncation_is_reported_and_none_errors_per_document(nlp_model):
    m = nlp_model("text_classification", tokenization={"bert": {"do_lower_case": True, "max_sequence_length": 6}})
    long = "the capital of france is paris"
    docs = m.infer([{"text_field": long}, {"text_field": "paris"}]).to_docs()
    assert docs[0]["is_truncated"] is True and "is_truncated" not in docs[1]
    none = m.infer([{"text_field": long}, {"text_field": "paris"}],
                   {"text_classification": {"tokenization": {"bert": {"truncate": "none"}}}}).to_docs()
    assert none[0] == {"error": "Input too large. The tokenized input length [8] exceeds the maximum sequence "
                                "length [6]"}
    assert "predicted_value" in none[1]


def test_results_field_and_update_errors(nlp_model):
    m = nlp_model("text_embedding")
    doc = m.infer([{"text_field": "paris"}], {"text_embedding": {"results_field": "vec"}}).to_docs()[0]
    assert list(doc) == ["vec"]
    with pytest.raises(ApiError, match=r"is configured for task \[text_embedding\] but called with task \[ner\]"):
        m.infer([{"text_field": "paris"}], {"ner": {}})
    with pytest.raises(ApiError, match=r"failed to parse field \[inference_config\]") as err:
        m.infer([{"text_field": "paris"}], {"text_embedding": {"bogus": 1}})
    assert err.value.caused_by.reason == "[text_embedding] unknown field [bogus]"  # the task parser's, as the cause
    with pytest.raises(ApiError, match="cannot be greater than the model's max sequence length"):
        m.infer([{"text_field": "paris"}], {"text_embedding": {"tokenization": {"bert": {"max_sequence_length": 999}}}})


@pytest.mark.parametrize(("task", "inner", "reason"), [
    (TextClassification, {"classification_labels": ["too few"]},
     "[text_classification] requires at least 2 [classification_labels]; provided [too few]"),
    (ZeroShotClassification, {"classification_labels": ["entailment", "neutral"]},
     "[classification_labels] must contain exactly the three values [contradiction, entailment, neutral]"),
    (ZeroShotClassification, {"classification_labels": ["entailment", "neutral", "Foo"]},
     "[classification_labels] must contain exactly the three values [contradiction, entailment, neutral]. "
     "Invalid labels [foo]"),
    (ZeroShotClassification, {"classification_labels": ["entailment", "contradiction", "neutral"], "labels": []},
     "[labels] must not be empty"),
    (ZeroShotClassification, {"classification_labels": ["entailment", "Entailment", "neutral"]},
     "zero_shot_classification requires [entailment] and [contradiction] in classification_labels"),
])
def test_classification_configs_are_bad_requests_in_es_words(task, inner, reason):
    with pytest.raises(ApiError) as err:
        task.parse(inner)
    assert (err.value.status, err.value.type, err.value.reason) == (400, "status_exception", reason)


def test_text_classification_accepts_zero_top_classes():
    task = TextClassification.parse({"classification_labels": ["a", "b"], "num_top_classes": 0})
    assert task.options["num_top_classes"] == 0


def test_ner_and_qa_positions_count_utf16_units_as_es_does():
    """ES reports offsets into the Java string: a character past U+FFFF (an emoji) counts twice
    before the entity; the entity text and the annotated text are the same."""
    from es_infer_nb.models.nlp.tasks.helpers import java_offset
    from es_infer_nb.models.nlp.tasks.ner import ner_result
    from es_infer_nb.models.nlp.tasks.qa import Answer, qa_result
    from es_infer_nb.models.nlp.tokenization import build_tokenizer, parse
    from tiny_models import VOCAB

    assert [java_offset("a😀b")(i) for i in range(4)] == [0, 1, 3, 4]
    assert java_offset("plain")(3) == 3
    tok = build_tokenizer(parse({"bert": {"with_special_tokens": True}}), vocab=VOCAB)
    text = "😀 paris"
    (window,) = tok.tokenize(text, "first", -1)
    logits = np.zeros((len(window.token_ids), 3))
    logits[:, 0] = 5.0
    paris = window.token_map.index(0)
    logits[paris] = [0.0, 9.0, 0.0]
    doc = ner_result("predicted_value", text, window, logits, ["O", "B_LOC", "I_LOC"], False)
    (entity,) = doc["entities"]
    assert (entity["entity"], entity["start_pos"], entity["end_pos"]) == ("paris", 3, 8)
    assert doc["predicted_value"] == "😀 [paris](LOC&paris)"
    answer = qa_result("predicted_value", text, [window], [Answer(paris - 1, paris - 1, 0.9, 0)], 0)
    assert (answer["predicted_value"], answer["start_offset"], answer["end_offset"]) == ("paris", 3, 8)


@pytest.mark.parametrize(("config", "reason"), [
    ({"question_answering": {"num_top_classes": -1}}, "[num_top_classes] must be greater than or equal to [0]; provided [-1]"),
    ({"question_answering": {"max_answer_length": 0}}, "[max_answer_length] must be greater than [0]; provided [0]"),
    ({"fill_mask": {"tokenization": {"bert": {"span": 64, "truncate": "none"}}}},
     "[fill_mask] does not support windowing long text sequences; configured span [64]"),
])
def test_task_configs_es_rejects_at_creation(config, reason):
    """QuestionAnsweringConfig's and FillMaskConfig's constructor checks."""
    from es_infer_nb.models.nlp.tasks import parse_task

    with pytest.raises(ApiError) as err:
        parse_task(config)
    assert (err.value.status, err.value.type, err.value.reason) == (400, "status_exception", reason)


def test_ner_without_tokens_is_es_status_error():
    """NerProcessorTests.testProcessResults_GivenNoTokens: no tokenization, no result."""
    from es_infer_nb.models.nlp.tasks import parse_task

    task = parse_task({"ner": {}})
    with pytest.raises(ApiError) as err:
        task.result("", [], [], None)
    assert (err.value.status, err.value.type, err.value.reason) == (500, "status_exception",
                                                                    "no valid tokenization to build result")


def test_updates_are_checked_as_the_configs_they_build(nlp_model):
    """*ConfigUpdate.apply builds the task's config, so its constructor's checks apply to a request's update
    (QuestionAnsweringConfig's ranges, FillMaskConfig's span); an update must give the question / text it needs."""
    qa = nlp_model("question_answering")
    for update, reason in ((({"question": "who?", "num_top_classes": -1}),
                            "[num_top_classes] must be greater than or equal to [0]; provided [-1]"),
                           (({"question": "who?", "max_answer_length": 0}),
                            "[max_answer_length] must be greater than [0]; provided [0]"),
                           (({"num_top_classes": 2}), "[question] must not be null.")):
        with pytest.raises(ApiError) as err:
            qa.infer([{"text_field": "x"}], {"question_answering": update})
        assert err.value.reason == reason
    with pytest.raises(ApiError) as err:
        nlp_model("fill_mask").infer([{"text_field": "a [MASK]"}], {"fill_mask": {
            "tokenization": {"bert": {"truncate": "none", "span": 10}}}})
    assert err.value.reason == "[fill_mask] does not support windowing long text sequences; configured span [10]"
    with pytest.raises(ApiError) as err:
        nlp_model("text_similarity").infer([{"text_field": "x"}], {"text_similarity": {"results_field": "r"}})
    assert (err.value.type, err.value.reason) == ("illegal_argument_exception", "[text] must not be null.")
