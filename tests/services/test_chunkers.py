"""ES's chunkers (WordBoundaryChunkerTests, SentenceBoundaryChunkerTests, RecursiveChunkerTests) and their
settings (*ChunkingSettingsTests, ChunkingSettingsBuilderTests): the offsets and messages those tests assert,
checked against ES's own chunkers on ICU (expected offsets below)."""

from __future__ import annotations

import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.services.chunking import ChunkingSettings, parse_chunking_settings
from es_infer_nb.services.text_breaks import sentence_breaks, word_spans


def word(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    return ChunkingSettings("word", size, overlap, None).chunks(text)


def sentence(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    return ChunkingSettings("sentence", size, None, overlap).chunks(text)


def texts(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[s:e] for s, e in spans]


def test_words_and_sentences_as_icu_breaks_them():
    text = "Pi is 3.14 and 1,000 people in the U.S.A visit example.com, can't they?"
    assert texts(text, word_spans(text)) == ["Pi", "is", "3.14", "and", "1,000", "people", "in", "the", "U.S.A", "visit",
                                             "example.com", "can't", "they"]
    for text, expected in [("Mr. Smith went home. He slept.", ["Mr. ", "Smith went home. ", "He slept."]),
                           ("line one\nline two", ["line one\n", "line two"]),
                           ("句子一。句子二。", ["句子一。", "句子二。"]),
                           ("u 12. i 13. stoljeću", ["u 12. i 13. stoljeću"]),
                           ('He said "Stop." Then left.', ['He said "Stop." ', "Then left."])]:
        bounds = [0, *sentence_breaks(text)]
        assert [text[a:b] for a, b in zip(bounds, bounds[1:])] == expected


@pytest.mark.parametrize("text, size, expected", [  # WordBoundaryChunkerTests.testPunctuation
    ("Comma, separated", 1, ["Comma", ", separated"]),
    ("Mme. Thénardier", 1, ["Mme", ". Thénardier"]),
    ("Won't you chunk", 1, ["Won't", " you", " chunk"]),
    ("Won't you chunk", 10, ["Won't you chunk"]),
])
def test_word_chunks_keep_the_separator_with_the_next_chunk(text, size, expected):
    assert texts(text, word(text, size, 0)) == expected


def test_word_windows():
    numbers = " ".join(str(i) for i in range(11))
    assert texts(numbers, word(numbers, 10, 4)) == ["0 1 2 3 4 5 6 7 8 9", " 6 7 8 9 10"]  # testWindowSpanningWords
    assert word("0 1 2 3 4 5 6 7 8 9 ", 10, 4) == [(0, 19)]  # a full last window ends at its last word
    assert word("0 1 2 3 4 5 6 7 8 9 ", 20, 10) == [(0, 20)]  # shorter than the window: to the end
    assert word("", 10, 5) == [] and word(" ", 10, 5) == [(0, 1)]  # testEmptyString / testWhitespace


LONG = ("Word segmentation is the problem of dividing a string of written language into its component words. "
        "In English and many other languages using some form of the Latin alphabet, the space is a good "
        "approximation of a word divider (word delimiter), although this concept has limits because of the "
        "variability with which languages emically regard collocations and compounds.")


def test_long_sentences_split_in_overlapping_windows():
    """SentenceBoundaryChunker: a sentence over the limit is cut into windows overlapping by
    min(20, (max - 1) / 2) words, the last window left open for the following sentences."""
    chunks = sentence(LONG, 10, 0)
    assert chunks[:4] == [(0, 56), (35, 100), (100, 154), (135, 187)]
    assert LONG[35:100] == " dividing a string of written language into its component words. "


def test_sentence_overlap_keeps_the_preceding_sentence():
    """testShortLongShortSentences_WithOverlap: sentences of 15 / 30 / 20 / 5 words, max 40."""
    parts = [" ".join([f"SStart{i}", *(str(n) for n in range(1, count))]) + "." for i, count in
             enumerate((15, 30, 20, 5))]
    text = " ".join(parts)
    assert sentence(text, 40, 1) == [(0, 42), (0, 112), (59, 129), (68, 186), (129, len(text))]
    assert text[68:].startswith("10 11") and text[129:].startswith("SStart2")


@pytest.mark.parametrize("separators, text, size, expected", [  # RecursiveChunkerTests
    (("\f", "\t", "#"), "x", 100, [(0, 1)]),
    (("\f", "\t", "#"), "This is a test sentence that has ten total words. \f" * 1 +
     "This is a test sentence that has ten total words. ", 10, [(0, 50), (50, 101)]),
    ((r"(?<!\n)\n(?!\n)", r"(?<!\n)\n\n(?!\n)"),
     "This is a test sentence that has ten total words. \nThis is a test sentence that has ten total words. \n"
     "This is a test sentence that has ten total words. \n\nThis is a test sentence that has ten total words. ",
     10, [(0, 50), (50, 101), (101, 152), (152, 204)]),
])
def test_recursive_chunks(separators, text, size, expected):
    assert ChunkingSettings("recursive", size, None, None, separators).chunks(text) == expected


def test_recursive_falls_back_to_sentences():
    text = ("This is a test sentence that has ten total words. " * 2 + "\f"
            + "This is a test sentence that has ten total words. " * 2)
    assert ChunkingSettings("recursive", 10, None, None, ("\f", "\t", "#")).chunks(text) == [
        (0, 50), (50, 100), (100, 151), (151, 201)]


@pytest.mark.parametrize("raw, reason", [
    ({"strategy": "word", "max_chunk_size": 100, "overlap": 0},
     "Validation Failed: 1: [chunking_settings] Invalid value [0]. [overlap] must be a positive integer;"),
    ({"strategy": "word", "max_chunk_size": 100, "overlap": 51},
     "Validation Failed: 1: [chunking_settings] Invalid value [51.0]. [overlap] must be a less than or equal to [50.0];"),
    ({"strategy": "sentence", "max_chunk_size": 19},
     "Validation Failed: 1: [chunking_settings] Invalid value [19.0]. [max_chunk_size] must be a greater than or equal "
     "to [20.0];"),
    ({"strategy": "word", "max_chunk_size": "100", "overlap": 1},
     "Validation Failed: 1: field [max_chunk_size] is not of the expected type. The value [100] cannot be converted to "
     "a [Integer];"),
    ({"strategy": "sentence", "max_chunk_size": 100, "sentence_overlap": 2},
     "Validation Failed: 1: sentence_overlap[2] must be either 0 or 1;"),
    ({"strategy": "word", "max_chunk_size": 100, "overlap": 0, "sentence_overlap": 1},
     "Validation Failed: 1: Word based chunking settings can not have the following settings: [sentence_overlap];"
     "2: [chunking_settings] Invalid value [0]. [overlap] must be a positive integer;"),
    ({"strategy": "sentence", "max_chunk_size": 100, "overlap": 1},
     "Validation Failed: 1: Sentence based chunking settings can not have the following settings: [overlap];"),
    ({"strategy": "none", "max_chunk_size": 100},
     "Validation Failed: 1: When chunking is disabled (none), settings can not have the following: [max_chunk_size];"),
    ({"strategy": "recursive", "max_chunk_size": 100, "separators": []},
     "Validation Failed: 1: Recursive chunking settings can not have an empty list of separators;"),
    ({"strategy": "recursive", "max_chunk_size": 100, "separators": ["x"], "separator_group": "markdown"},
     "Validation Failed: 1: Recursive chunking settings can not have both separators and separator_set;"),
])
def test_settings_validation(raw, reason):
    with pytest.raises(ApiError) as err:
        parse_chunking_settings(raw)
    assert (err.value.type, err.value.reason) == ("validation_exception", reason)


def test_strategy_errors_and_defaults():
    for raw, reason in (({"max_chunk_size": 100}, "Can't generate Chunker without ChunkingStrategy provided"),
                        ({"strategy": "foo"}, "Invalid chunkingStrategy foo")):
        with pytest.raises(ApiError) as err:
            parse_chunking_settings(raw)
        assert (err.value.type, err.value.reason) == ("illegal_argument_exception", reason)
    assert parse_chunking_settings({"strategy": "sentence", "max_chunk_size": 100, "sentence_overlap": None}).to_dict() \
        == {"strategy": "sentence", "max_chunk_size": 100, "sentence_overlap": 1}
    assert parse_chunking_settings({"strategy": "recursive", "max_chunk_size": 100}).to_dict() == {
        "strategy": "recursive", "max_chunk_size": 100, "separators": [r"(?<!\n)\n\n(?!\n)", r"(?<!\n)\n(?!\n)"]}
