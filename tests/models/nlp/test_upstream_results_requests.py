"""ES's NLP requests and results as its unit tests assert them (elastic/elasticsearch
``x-pack/plugin/ml/src/test/.../inference/nlp/*Tests`` and ``x-pack/plugin/core/src/test/.../inference/results``):
the request document sent to the model per tokenizer kind, and the result maps."""

from __future__ import annotations

import numpy as np
import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.models.nlp.network import build_request
from es_infer_nb.models.nlp.tasks import parse_task
from es_infer_nb.models.nlp.tasks.classification import format_hypothesis, text_classification_scores
from es_infer_nb.models.nlp.tasks.fill_mask import decode, fill_mask_result
from es_infer_nb.models.nlp.tasks.helpers import softmax
from es_infer_nb.models.nlp.tasks.qa import Answer, qa_result
from es_infer_nb.models.nlp.tokenization import Window, build_tokenizer, parse
from es_infer_nb.models.nlp.tokenization.wordpiece import Piece
from upstream_vocab import BERT_VOCAB

#: MPNetTokenizerTests.TEST_CASED_VOCAB: the same ids with MPNet's special tokens (its unknown token is [UNK])
MPNET_VOCAB = [{"[CLS]": "<s>", "[SEP]": "</s>", "[MASK]": "<mask>", "[PAD]": "<pad>"}.get(t, t) for t in BERT_VOCAB]
BATCH = ["Elasticsearch", "my little red car", "Godzilla day"]


def _request(vocab: list[str], tokenization: dict, texts: list[str], task: dict | None = None) -> dict:
    ((kind, inner),) = tokenization.items()
    config = task or {"pass_through": {}}
    parsed = parse_task({name: {**(body or {}), "tokenization": tokenization} for name, body in config.items()})
    tok = build_tokenizer(parse(tokenization), vocab=vocab)
    windows = parsed.request_windows(texts, tok)
    return build_request(windows, kind, tok.pad_id, "request1")


def test_bert_batch_pads_ids_and_attention_mask_with_the_pad_id():
    # BertTokenizationResultTests.testBatchWithPadding
    doc = _request(BERT_VOCAB, {"bert": {"max_sequence_length": 512, "truncate": "none"}}, BATCH)
    assert list(doc) == ["request_id", "tokens", "arg_1", "arg_2", "arg_3"]
    assert doc["request_id"] == "request1"
    assert doc["tokens"] == [[12, 0, 1, 13, 19, 19], [12, 4, 5, 6, 7, 13], [12, 8, 9, 16, 13, 19]]
    assert doc["arg_1"] == [[1, 1, 1, 1, 19, 19], [1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 19]]
    assert doc["arg_2"] == [[0] * 6] * 3
    assert doc["arg_3"] == [list(range(6))] * 3


def test_bert_single_request():
    # BertTokenizationResultTests.testBuildRequest
    doc = _request(BERT_VOCAB, {"bert": {"max_sequence_length": 512, "truncate": "none"}}, ["Elasticsearch fun"])
    assert doc == {
        "request_id": "request1",
        "tokens": [[12, 0, 1, 3, 13]],
        "arg_1": [[1, 1, 1, 1, 1]],
        "arg_2": [[0, 0, 0, 0, 0]],
        "arg_3": [[0, 1, 2, 3, 4]],
    }


def test_mpnet_request_has_only_ids_and_attention_mask():
    # MPNetTokenizationResultTests.testBuildRequest / testBatchWithPadding
    doc = _request(MPNET_VOCAB, {"mpnet": {"max_sequence_length": 512, "truncate": "none"}}, BATCH)
    assert list(doc) == ["request_id", "tokens", "arg_1"]
    assert doc["tokens"] == [[12, 0, 1, 13, 19, 19], [12, 4, 5, 6, 7, 13], [12, 8, 9, 16, 13, 19]]
    assert doc["arg_1"] == [[1, 1, 1, 1, 19, 19], [1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 19]]
    single = _request(MPNET_VOCAB, {"mpnet": {"truncate": "none"}}, ["Elasticsearch fun"])
    assert single == {"request_id": "request1", "tokens": [[12, 0, 1, 3, 13]], "arg_1": [[1, 1, 1, 1, 1]]}


def test_input_too_large_for_the_request():
    # BertTokenizationResultTests.testInputTooLarge / MPNetTokenizationResultTests.testInputTooLarge
    for vocab, kind in ((BERT_VOCAB, "bert"), (MPNET_VOCAB, "mpnet")):
        tokenization = {kind: {"max_sequence_length": 5, "truncate": "none"}}
        with pytest.raises(ApiError) as err:
            _request(vocab, tokenization, ["Elasticsearch fun Elasticsearch fun Elasticsearch fun"])
        assert err.value.reason == (
            "Input too large. The tokenized input length [11] exceeds the maximum sequence length [5]"
        )
        assert _request(vocab, tokenization, ["Elasticsearch fun"])["tokens"] == [[12, 0, 1, 3, 13]]


def test_zero_shot_request_pairs_have_zero_token_types():
    # ZeroShotClassificationProcessorTests.testBuildRequest (5 keys); TokenizationResult.writeTokenTypeIds
    # writes 0 for every token, the hypothesis included
    doc = _request(
        BERT_VOCAB,
        {"bert": {"max_sequence_length": 512, "truncate": "none"}},
        ["Elasticsearch fun"],
        {
            "zero_shot_classification": {
                "classification_labels": ["entailment", "neutral", "contradiction"],
                "labels": ["new", "stuff"],
            }
        },
    )
    assert len(doc) == 5 and doc["request_id"] == "request1"
    assert doc["tokens"] == [[12, 0, 1, 3, 13, 15, 15, 2, 15, 10, 13]] * 2
    assert doc["arg_1"] == [[1] * 11] * 2
    assert doc["arg_2"] == [[0] * 11] * 2


@pytest.mark.parametrize(
    ("kind", "keys"),
    [
        ("roberta", ["request_id", "tokens", "arg_1"]),
        ("xlm_roberta", ["request_id", "tokens", "arg_1"]),
        ("byte_level_bpe", ["request_id", "tokens", "arg_1"]),
        ("deberta_v2", ["request_id", "tokens", "arg_1", "arg_2"]),
        ("bert_ja", ["request_id", "tokens", "arg_1", "arg_2", "arg_3"]),
    ],
)
def test_request_arguments_per_tokenizer_kind(kind, keys):
    # RobertaTokenizationResult / DebertaTokenizationResult / BertTokenizationResult.buildRequest
    windows = [Window([0, 5, 2], [-1, 0, -1], False, []), Window([0, 2], [-1, -1], False, [])]
    doc = build_request(windows, kind, 1, "r")
    assert list(doc) == keys
    assert doc["tokens"] == [[0, 5, 2], [0, 2, 1]]
    assert doc["arg_1"] == [[1, 1, 1], [1, 1, 1]]  # the pad id (1) pads the mask too


def test_fill_mask_keeps_wordpiece_entries_as_is():
    # FillMaskProcessor.processResult: BertTokenizationResult.decode is the identity, "##" kept
    vocab = ["The", "capital", "of", "is", "Paris", "##ance", "[MASK]"]
    logits = np.zeros((6, 7))
    logits[3] = [0.01, 0.01, 0.3, 0.01, 0.2, 1.2, 0.1]
    out = fill_mask_result(
        "predicted_value", "The capital of [MASK] is Paris", [0, 1, 2, 6, 4, 5], logits, 6, "[MASK]", vocab, 2
    )
    assert out["predicted_value"] == "##ance"
    assert [c["class_name"] for c in out["top_classes"]] == ["##ance", "of"]
    assert out["predicted_value_sequence"] == "The capital of ##ance is Paris"


def test_fill_mask_decodes_per_tokenizer():
    # XLMRobertaTokenizationResult.decode drops one "▁"; RobertaTokenizationResult.decode reads the byte-level
    # characters back as UTF-8 and trims; DeBERTa and MPNet keep the entry
    assert decode("▁Paris", "xlm_roberta") == "Paris"
    assert decode("▁▁x", "xlm_roberta") == "▁x"
    assert decode("Ġparis", "roberta") == "paris"
    assert decode("Ã©t", "roberta") == "ét"
    assert decode("Ċ", "byte_level_bpe") == ""
    assert decode("▁x", "deberta_v2") == "▁x"
    assert decode("##s", "mpnet") == "##s"


def test_question_answering_top_classes_field_order():
    # QuestionAnsweringInferenceResults.TopAnswerEntry.toXContent: answer, start_offset, end_offset, score
    context = "Pancake day"
    window = Window([0, 1, 2], [-1, 0, 1], False, [Piece(1, "Pancake", 0, 7), Piece(2, "day", 8, 11)])
    out = qa_result("predicted_value", context, [window], [Answer(0, 1, 0.5, 0), Answer(1, 1, 0.25, 0)], 2)
    assert list(out) == ["predicted_value", "start_offset", "end_offset", "top_classes", "prediction_probability"]
    assert out["top_classes"] == [
        {"answer": "Pancake day", "start_offset": 0, "end_offset": 11, "score": 0.5},
        {"answer": "day", "start_offset": 8, "end_offset": 11, "score": 0.25},
    ]
    assert [list(e) for e in out["top_classes"]] == [["answer", "start_offset", "end_offset", "score"]] * 2


def test_text_classification_checks_every_window():
    # TextClassificationProcessor.processResult checks each window's row against the labels (409)
    with pytest.raises(ApiError) as err:
        text_classification_scores([np.array([1.0, 2.0]), np.array([1.0])], ["a", "b"])
    assert (err.value.status, err.value.reason) == (
        409,
        "Expected exactly [2] values in text classification result; got [1]",
    )


def test_softmax_of_empty_rows():
    # NlpHelpers.convertToProbabilitiesBySoftMax gives empty rows back
    assert softmax([]).tolist() == []
    assert softmax(np.zeros((2, 0))).shape == (2, 0)


def test_fill_mask_negative_top_classes_other_than_minus_one_give_one():
    # FillMaskProcessor.processResult: topK(numResults == -1 ? Integer.MAX_VALUE : Math.max(numResults, 1))
    vocab = ["The", "capital", "of", "is", "Paris", "France", "[MASK]"]
    logits = np.zeros((6, 7))
    logits[3] = [0.01, 0.01, 0.3, 0.01, 0.2, 1.2, 0.1]
    args = ("predicted_value", "The capital of [MASK] is Paris", [0, 1, 2, 6, 4, 5], logits, 6, "[MASK]", vocab)
    assert [c["class_name"] for c in fill_mask_result(*args, -2)["top_classes"]] == ["France"]
    assert len(fill_mask_result(*args, -1)["top_classes"]) == 7


@pytest.mark.parametrize(
    ("task", "words"),
    [
        (
            {
                "zero_shot_classification": {
                    "classification_labels": ["entailment", "neutral", "contradiction"],
                    "labels": ["new"],
                }
            },
            "zero-shot classification",
        ),
        ({"question_answering": {"question": "is Elasticsearch fun?"}}, "question answering"),
        ({"text_similarity": {"text": "is Elasticsearch fun?"}}, "text_similarity"),
    ],
)
def test_pair_tasks_build_a_request_for_one_text_only(task, words):
    # ZeroShotClassificationProcessor / QuestionAnsweringProcessor / TextSimilarityProcessor RequestBuilder.buildRequest
    with pytest.raises(ApiError) as err:
        _request(BERT_VOCAB, {"bert": {"truncate": "none"}}, ["Elasticsearch fun", "my little red car"], task)
    assert (err.value.type, err.value.status) == ("status_exception", 400)
    assert err.value.reason == f"Unable to do {words} on more than one text input at a time"
    assert _request(BERT_VOCAB, {"bert": {"truncate": "none"}}, ["Elasticsearch fun"], task)["tokens"]


@pytest.mark.parametrize(
    ("template", "hypothesis"),
    [
        ("This example is {}.", "This example is new."),
        ("{} and {}", "new and {}"),
        ("no placeholder", "no placeholder"),
        ("a \\{} b {}", "a {} b new"),
        ("a \\\\{} b", "a \\new b"),
    ],
)
def test_zero_shot_hypothesis_is_formatted_as_a_log_message(template, hypothesis):
    # ZeroShotClassificationProcessor.RequestBuilder: LoggerMessageFormat.format(null, hypothesisTemplate, label)
    assert format_hypothesis(template, "new") == hypothesis
