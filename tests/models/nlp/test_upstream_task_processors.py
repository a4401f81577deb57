"""ES's NLP task processors as their unit tests drive them (elastic/elasticsearch
``x-pack/plugin/ml/src/test/.../inference/nlp/*ProcessorTests`` and ``NlpHelpersTests``): fixed logits and
token maps through each task's post-processing, compared value for value, and the errors the processors'
``processResult`` raise on a malformed model output."""

from __future__ import annotations

import numpy as np
import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.models.nlp.tasks import parse_task
from es_infer_nb.models.nlp.tasks.classification import zero_shot_scores
from es_infer_nb.models.nlp.tasks.fill_mask import fill_mask_result, validate_mask
from es_infer_nb.models.nlp.tasks.helpers import softmax, top_k
from es_infer_nb.models.nlp.tasks.qa import Answer, TopK, qa_answers, top_scores
from es_infer_nb.models.nlp.tasks.similarity import combine_span_scores
from es_infer_nb.models.nlp.tokenization import Window, build_tokenizer
from upstream_vocab import BERT_VOCAB

NER_VOCAB = ["el", "##astic", "##search", "many", "use", "in", "london", "[PAD]", "[UNK]", "[SEP]", "[CLS]"]
#: QuestionAnsweringProcessorTests.START_TOKEN_SCORES / END_TOKEN_SCORES
QA_START = [
    1.6665655, -7.988514, -8.249796, 0.529973, -8.46703, -8.345977, -8.459701, -8.260341, 0.071103, -7.339133,
    -7.647086, -8.165343, -8.277936, -8.156116, -8.104215, -8.45849, -8.249917, -2.0896196, -0.67172474,
]  # fmt: skip
QA_END = [
    1.0593028, -8.276232, -7.9352865, -8.340191, -8.326643, -8.225507, -8.548992, -8.50256, -8.716394, -8.0558195,
    -8.4110565, -6.564298, -8.570332, 0.01, -7.2465587, 0.6000237, -8.045577, -6.3548584, -3.5642238,
]  # fmt: skip


def _ner(inner: dict, text: str, logits: list[list[float]], vocab: list[str] = NER_VOCAB) -> dict:
    task = parse_task({"ner": inner})
    tok = build_tokenizer(task.tokenization, vocab=vocab)
    return task.result(text, task.windows(text, tok), [np.asarray(logits, dtype=np.float64)], tok)


# -- NerProcessorTests -----------------------------------------------------------------------------------


def test_ner_word_pieces_average_and_special_tokens_are_skipped():
    # NerProcessorTests.testProcessResultsWithSpecialTokens
    inner = {"tokenization": {"bert": {"do_lower_case": True, "with_special_tokens": True, "truncate": "none"}}}
    logits = [
        [7, 0, 0, 0, 0, 0, 0, 0, 0],  # cls
        [7, 0, 0, 0, 0, 0, 0, 0, 0],  # many
        [7, 0, 0, 0, 0, 0, 0, 0, 0],  # use
        [0.01, 0.01, 0, 0.01, 0, 7, 0, 3, 0],  # el
        [0.01, 0.01, 0, 0, 0, 0, 0, 0, 0],  # ##astic
        [0, 0, 0, 0, 0, 0, 0, 0, 0],  # ##search
        [0, 0, 0, 0, 0, 0, 0, 0, 0],  # in
        [0, 0, 0, 0, 0, 0, 0, 6, 0],  # london
        [7, 0, 0, 0, 0, 0, 0, 0, 0],  # sep
    ]
    out = _ner(inner, "Many use Elasticsearch in London", logits)
    assert list(out) == ["predicted_value", "entities"]
    assert out["predicted_value"] == "Many use [Elasticsearch](ORG&Elasticsearch) in [London](LOC&London)"
    assert [(e["entity"], e["class_name"], e["start_pos"], e["end_pos"]) for e in out["entities"]] == [
        ("elasticsearch", "ORG", 9, 22),
        ("london", "LOC", 26, 32),
    ]
    # the word's score: the mean of its pieces' softmax rows at the argmax tag
    pieces = softmax(np.asarray(logits[3:6], dtype=np.float64))
    assert out["entities"][0]["class_probability"] == pytest.approx(pieces.mean(axis=0)[5], abs=1e-15)


def test_ner_custom_iob_map():
    # NerProcessorTests.testProcessResults_withCustomIobMap
    inner = {
        "classification_labels": ["B_LOC", "I_LOC", "B_SOFTWARE", "I_SOFTWARE", "O"],
        "tokenization": {"bert": {"do_lower_case": True, "with_special_tokens": False, "truncate": "none"}},
    }
    logits = [[0.01, 0.01, 7, 3, 0], [0.01, 0.01, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 5], [6, 0, 0, 0, 0]]
    out = _ner(inner, "Elasticsearch in London", logits)
    assert out["predicted_value"] == "[Elasticsearch](SOFTWARE&Elasticsearch) in [London](LOC&London)"
    assert [(e["entity"], e["class_name"]) for e in out["entities"]] == [
        ("elasticsearch", "SOFTWARE"),
        ("london", "LOC"),
    ]


def test_ner_duplicate_and_non_iob_labels_are_all_listed():
    # NerProcessorTests.testValidate_DuplicateLabels; NerProcessor.validate collects every problem
    with pytest.raises(ApiError) as err:
        parse_task({"ner": {"classification_labels": ["I_MISC", "B_MISC", "B_MISC", "O", "foo"]}})
    assert (err.value.type, err.value.status) == ("validation_exception", 400)
    assert err.value.reason == (
        "Validation Failed: 1: the classification label [B_MISC] is duplicated in the list "
        "[I_MISC, B_MISC, B_MISC, O, foo];2: classification label [foo] is not an entity I-O-B tag.;"
    )


# -- FillMaskProcessorTests ------------------------------------------------------------------------------


def test_fill_mask_process_results():
    # FillMaskProcessorTests.testProcessResults
    vocab = ["The", "capital", "of", "is", "Paris", "France", "[MASK]"]
    logits = np.zeros((6, 7))
    logits[3] = [0.01, 0.01, 0.3, 0.01, 0.2, 1.2, 0.1]
    out = fill_mask_result("res", "The capital of [MASK] is Paris", [0, 1, 2, 6, 4, 5], logits, 6, "[MASK]", vocab, 4)
    assert list(out) == ["res", "top_classes", "prediction_probability", "res_sequence"]
    assert out["res"] == "France"
    assert [c["class_name"] for c in out["top_classes"]] == ["France", "of", "Paris", "[MASK]"]
    assert out["res_sequence"] == "The capital of France is Paris"


def test_fill_mask_all_classes_keep_java_heap_order_for_ties():
    # FillMaskProcessor.processResult: NlpHelpers.topK(Integer.MAX_VALUE, ...) polls a java.util.PriorityQueue,
    # so the three equal 0.01 logits (ids 0, 1, 3) come out as 3, 1, 0
    vocab = ["The", "capital", "of", "is", "Paris", "France", "[MASK]"]
    logits = np.zeros((6, 7))
    logits[3] = [0.01, 0.01, 0.3, 0.01, 0.2, 1.2, 0.1]
    out = fill_mask_result("res", "The capital of [MASK] is Paris", [0, 1, 2, 6, 4, 5], logits, 6, "[MASK]", vocab, -1)
    assert [c["class_name"] for c in out["top_classes"]] == ["France", "of", "Paris", "[MASK]", "is", "capital", "The"]


def test_fill_mask_second_mask_is_searched_after_the_first():
    # FillMaskProcessorTests.testProcessResults_GivenMultipleMaskTokens / testValidate_GivenMissingMaskToken
    with pytest.raises(ApiError) as err:
        validate_mask("The capital of [MASK] is [MASK]", "[MASK]")
    assert (err.value.type, err.value.status, err.value.reason) == (
        "status_exception",
        400,
        "only one [MASK] token should exist in the input",
    )
    with pytest.raises(ApiError) as err:
        validate_mask("The capital of France is Paris", "[MASK]")
    assert err.value.reason == "Validation Failed: 1: no [MASK] token could be found in the input;"
    validate_mask("a <mask>mask> b", "<mask>")  # indexOf(mask, first + mask.length()): no overlapping second mask


# -- QuestionAnsweringProcessorTests ---------------------------------------------------------------------


def test_question_answering_processor():
    # QuestionAnsweringProcessorTests.testProcessor
    task = parse_task(
        {
            "question_answering": {
                "question": "is Elasticsearch fun?",
                "num_top_classes": 1,
                "max_answer_length": 10,
                "results_field": "prediction",
                "tokenization": {
                    "bert": {
                        "do_lower_case": False,
                        "with_special_tokens": True,
                        "max_sequence_length": 384,
                        "truncate": "none",
                        "span": 128,
                    }
                },
            }
        }
    )
    text = "Pancake day is fun with Elasticsearch and little red car"
    tok = build_tokenizer(task.tokenization, vocab=BERT_VOCAB)
    windows = task.windows(text, tok)
    assert (len(windows), len(windows[0].token_ids), windows[0].seq_pair_offset) == (1, 19, 7)
    out = task.result(text, windows, [np.asarray([QA_START, QA_END])], tok)
    assert list(out) == ["prediction", "start_offset", "end_offset", "top_classes", "prediction_probability"]
    assert (out["start_offset"], out["end_offset"]) == (8, 48)
    assert out["prediction"] == text[8:48]
    assert out["prediction_probability"] == pytest.approx(0.05264939, abs=1e-6)


@pytest.mark.parametrize(("max_length", "score", "end"), [(10, 0.05265336, 7), (6, 0.0291865, 5)])
def test_question_answering_top_scores_respects_answer_length(max_length, score, end):
    # QuestionAnsweringProcessorTests.testTopScoresRespectsAnswerLength
    (best,) = top_scores(np.asarray(QA_START), np.asarray(QA_END), 1, 8, len(QA_START), max_length, 0)
    assert (best.start_token, best.end_token) == (0, end)
    assert best.score == pytest.approx(score, abs=1e-6)


def test_question_answering_top_scores_more_than_one():
    # QuestionAnsweringProcessorTests.testTopScoresMoreThanOne
    queue = TopK(2)
    for answer in top_scores(np.asarray(QA_START), np.asarray(QA_END), 2, 8, len(QA_START), 10, 0):
        queue.offer(answer)
    best = queue.best_first()
    assert [(a.start_token, a.end_token) for a in best] == [(0, 7), (0, 5)]
    assert [a.score for a in best] == pytest.approx([0.05265336, 0.0291865], abs=1e-6)


def test_question_answering_queue_is_lucenes_heap():
    # ScoreAndIndicesPriorityQueue (Lucene's PriorityQueue): an equal score never evicts, and equal scores are
    # popped in the heap's order (0, 3, 2, 1 for four equal answers) into the answer list from its end
    queue = TopK(4)
    for i in range(6):
        queue.offer(Answer(i, i, 0.5, 0))
    assert [a.start_token for a in queue.best_first()] == [1, 2, 3, 0]


def test_question_answering_malformed_output():
    # QuestionAnsweringProcessor.ResultProcessor.processResult / topScores
    window = Window([12, 2, 13, 17, 13], [-1, 0, -1, 0, -1], False, [], seq_pair_offset=3)
    with pytest.raises(ApiError) as err:
        qa_answers([window], [], 0, 15)
    assert (err.value.status, err.value.reason) == (500, "question answering result has no data")
    with pytest.raises(ApiError) as err:
        qa_answers([window], [np.zeros((2, 5)), np.zeros((2, 5))], 0, 15)
    assert (err.value.status, err.value.reason) == (
        409,
        "question answering result has invalid dimensions; the number of spans [2] does not match batched token "
        "size [1]",
    )
    with pytest.raises(ApiError) as err:
        top_scores(np.zeros(5), np.zeros(4), 1, 3, 5, 15, 0)
    assert (err.value.status, err.value.reason) == (
        409,
        "question answering result has invalid dimensions; possible start tokens [5] must equal possible end "
        "tokens [4]",
    )


# -- TextSimilarityProcessorTests ------------------------------------------------------------------------


def test_text_similarity_result_functions():
    # TextSimilarityProcessorTests.testResultFunctions: max and mean over { {42}, {12}, {100} }
    windows = [np.asarray([42.0]), np.asarray([12.0]), np.asarray([100.0])]
    assert combine_span_scores(windows, "max") == 100.0
    assert combine_span_scores(windows, "mean") == pytest.approx(51.333333333333, abs=1e-12)
    task = parse_task(
        {"text_similarity": {"text": "x", "results_field": "result", "span_score_combination_function": "MEAN"}}
    )
    assert task.result("", [], windows, None) == {"result": (42.0 + 12.0 + 100.0) / 3}


def test_text_similarity_malformed_output():
    # TextSimilarityProcessor.ResultProcessor.processResult
    with pytest.raises(ApiError) as err:
        combine_span_scores([], "max")
    assert (err.value.type, err.value.status, err.value.reason) == (
        "status_exception",
        500,
        "text_similarity result has no data",
    )
    with pytest.raises(ApiError) as err:
        combine_span_scores([np.asarray([1.0]), np.asarray([0.5, 0.5])], "mean")
    assert (err.value.status, err.value.reason) == (
        409,
        "Expected exactly [1] value in text_similarity result; got [2]",
    )


# -- ZeroShotClassificationProcessor ---------------------------------------------------------------------


def test_zero_shot_mis_sized_results_are_conflicts():
    # ZeroShotClassificationProcessor.ResultProcessor.processResult: RestStatus.CONFLICT for both size checks
    labels = ["entailment", "neutral", "contradiction"]
    with pytest.raises(ApiError) as err:
        zero_shot_scores([np.zeros(3), np.zeros(3)], labels, False, 3)
    assert (err.value.status, err.value.reason) == (
        409,
        "Expected exactly [3] values in zero shot classification result; got [1]",
    )
    for multi in (False, True):
        with pytest.raises(ApiError) as err:
            zero_shot_scores([np.zeros(2), np.zeros(2)], labels, multi, 2)
        assert (err.value.status, err.value.reason) == (
            409,
            "Expected exactly [3] values in inner zero shot classification result; got [2]",
        )
    with pytest.raises(ApiError) as err:
        zero_shot_scores([], labels, False, 2)
    assert (err.value.status, err.value.reason) == (500, "Zero shot classification result has no data")


# -- NlpHelpersTests -------------------------------------------------------------------------------------


def test_softmax_concrete_example():
    # NlpHelpersTests.testConvertToProbabilitiesBySoftMax_GivenConcreteExample / _OneDimension
    out = softmax([[0.1, 0.2, 3], [6, 0.2, 0.1]])
    expected = [[0.04931133, 0.05449744, 0.89619123], [0.99426607, 0.00301019, 0.00272374]]
    assert out.tolist() == pytest.approx(np.asarray(expected), abs=1e-8)
    assert softmax([0.1, 0.2, 3]).tolist() == pytest.approx(expected[0], abs=1e-8)


def test_softmax_sums_in_order():
    # NlpHelpers.convertToProbabilitiesBySoftMax adds the exponentials one after the other
    row = np.linspace(-3.0, 2.0, 1000) ** 3
    exps = np.exp(row - row.max())
    total = 0.0
    for v in exps:
        total += float(v)
    assert softmax(row).tolist() == (exps / total).tolist()


@pytest.mark.parametrize(
    ("k", "data", "indices"),
    [
        (3, [1.0, 0.0, 2.0, 8.0, 9.0, 4.2, 4.2, 3.0], [4, 3, 5]),  # NlpHelpersTests.testTopK_SimpleCase
        (6, [1.0, 0.0, 2.0, 8.0], [3, 2, 0, 1]),  # NlpHelpersTests.testTopK_KGreaterThanArrayLength
        (3, [1.0, 1.0, 1.0], [1, 2, 0]),  # java.util.PriorityQueue's poll order for equal scores
        (2, [0.5, 0.5, 0.9, 0.5], [2, 1]),  # the tie left in the heap after the first 0.5 is polled
    ],
)
def test_top_k_as_nlp_helpers(k, data, indices):
    assert [i for _s, i in top_k(k, data)] == indices
