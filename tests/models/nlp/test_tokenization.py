"""ES tokenization details beyond the conformance cases: the analyzer's character handling, offsets,
windows, pair truncation, settings, and the Hugging Face backed kinds."""

from __future__ import annotations

import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.models.nlp.tokenization import apply_update, build_tokenizer, parse
from es_infer_nb.models.nlp.tokenization.wordpiece import BasicTokenizer, WordPieceTokenizer, whitespace_words
from tiny_models import VOCAB


def bert(**settings):
    return build_tokenizer(parse({"bert": {"do_lower_case": True, **settings}}), vocab=VOCAB)


def test_control_characters_removed_and_offsets_kept():
    text = "par\u200bis\x00 big\u00a0dog \U0001F600"  # Cf and NUL removed, no-break space is not white, emoji gone
    assert whitespace_words(text) == [("paris", 0, 6), ("big\u00a0dog", 8, 15)]
    inner = WordPieceTokenizer(VOCAB, do_lower_case=True)(text)
    assert [p.text for p in inner.pieces] == ["paris", "[UNK]"]
    assert [(p.start, p.end) for p in inner.pieces] == [(0, 6), (8, 15)]


def test_punctuation_cjk_and_accents():
    basic = BasicTokenizer(strip_accents=True)
    assert [t for t, _s, _e in basic.tokenize("Café,déjà-vu 東京!")] == ["Cafe", ",", "deja", "-", "vu", "東", "京", "!"]
    assert [(s, e) for _t, s, e in basic.tokenize("Café,déjà")] == [(0, 4), (4, 5), (5, 9)]
    assert [t for t, _s, _e in BasicTokenizer().tokenize("déjà")] == ["déjà"]  # no stripping without lower case


def test_case_insensitive_lookup_keeps_the_text():
    inner = WordPieceTokenizer(VOCAB, do_lower_case=True)("Paris GODZILLA")
    assert [p.text for p in inner.pieces] == ["Paris", "GOD", "##ZILLA"]
    assert inner.ids == [VOCAB.index("paris"), VOCAB.index("god"), VOCAB.index("##zilla")]
    assert inner.positions == [0, 1, 1]


def test_mask_never_split_even_inside_punctuation_and_lower_case():
    tok = bert()
    window = tok.tokenize("paris,[MASK].", "first", -1)[0]
    assert window.tokens == ["paris", ",", "[MASK]", "."]
    assert window.token_ids[3] == VOCAB.index("[MASK]")


def test_long_words_are_unknown_and_whitespace_runs_split_at_512():
    tok = bert(max_sequence_length=512)
    assert tok.tokenize("a" * 101, "first", -1)[0].tokens == ["[UNK]"]
    assert len(whitespace_words("b" * 1100)) == 3


def test_truncation_first_and_windows_cover_every_token():
    tok = bert(max_sequence_length=6)
    text = "the capital of france is paris and london"
    (cut,) = tok.tokenize(text, "first", -1)
    assert cut.truncated and len(cut.token_ids) == 6 and cut.token_ids[0] == VOCAB.index("[CLS]")
    windows = tok.tokenize(text, "none", 1)
    assert all(len(w.token_ids) <= 6 and not w.truncated for w in windows)
    covered = [t for w in windows for t in w.tokens]
    assert set(covered) == set(text.split())
    assert [w.tokens[0] for w in windows[1:]] == [w.tokens[-1] for w in windows[:-1]]  # overlap of 1
    with pytest.raises(ApiError, match=r"Input too large. The tokenized input length \[10\] exceeds the maximum "
                                       r"sequence length \[6\]"):
        tok.tokenize(text, "none", -1)


def test_pair_truncation_modes():
    tok = bert(max_sequence_length=9)
    a, b = "the capital of france is paris", "many use london"
    first = tok.tokenize_pair(a, b, "first")
    assert first.truncated and len(first.token_ids) == 9 and first.tokens == ["many", "use", "london"]
    second = tok.tokenize_pair("the capital", "of france is paris and london", "second")
    assert second.tokens == ["of", "france", "is", "paris"]
    balanced = tok.tokenize_pair(a, "of france is paris and london", "balanced")
    assert len(balanced.first_pieces) == 3 and len(balanced.tokens) == 3
    assert balanced.seq_pair_offset == 5
    with pytest.raises(ApiError, match="Input too large"):
        tok.tokenize_pair(a, b, "none")
    with pytest.raises(ApiError, match=r"Attempting truncation \[first\] but input is too large for the second"):
        tok.tokenize_pair("paris", "the capital of france is paris and london", "first")


def test_settings_parse_defaults_and_updates():
    settings = parse({"bert": {}})
    assert settings.to_dict() == {"bert": {"do_lower_case": False, "with_special_tokens": True,
                                           "max_sequence_length": 512, "truncate": "first", "span": -1}}
    assert apply_update(settings, {"bert": {"truncate": "none", "span": 16}}).span == 16
    with pytest.raises(ApiError, match=r"\[span\] must not be provided when \[truncate\] is \[first\]"):
        parse({"bert": {"span": 10}})
    with pytest.raises(ApiError, match="cannot be greater than the model's max sequence length"):
        apply_update(settings, {"bert": {"max_sequence_length": 1024}})
    with pytest.raises(ApiError, match=r"unknown field \[do_lower_case\]"):
        apply_update(settings, {"bert": {"do_lower_case": True}})
    with pytest.raises(ApiError, match=r"Tokenization config of type \[bert\] can not be updated with a request "
                                       r"of type \[roberta\]"):
        apply_update(settings, {"roberta": {"truncate": "first"}})
    with pytest.raises(ApiError, match="Truncate.SIDEWAYS"):
        parse({"bert": {"truncate": "sideways"}})


def test_missing_special_tokens_are_ES_errors():
    with pytest.raises(ApiError, match=r"stored vocabulary is missing required \[\[PAD\]\] token"):
        build_tokenizer(parse({"bert": {}}), vocab=["a", "[UNK]"])
    with pytest.raises(ApiError, match="missing required"):
        build_tokenizer(parse({"bert": {"with_special_tokens": True}}), vocab=["a", "[UNK]", "[PAD]"])


@pytest.fixture(scope="module")
def roberta_tokenizer():
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["the capital of france is paris", "many use elasticsearch in london"] * 20,
                            vocab_size=300, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    return RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")


def test_roberta_kind_uses_the_hf_pieces_with_es_specials(roberta_tokenizer):
    tok = build_tokenizer(parse({"roberta": {"max_sequence_length": 32}}), hf_tokenizer=roberta_tokenizer)
    text = "the capital of paris"
    (window,) = tok.tokenize(text, "first", -1)
    hf_ids = roberta_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert window.token_ids == [roberta_tokenizer.cls_token_id, *hf_ids, roberta_tokenizer.sep_token_id]
    assert window.token_map[0] == -1 and window.token_map[-1] == -1
    assert sorted(set(window.token_map[1:-1])) == [0, 1, 2, 3]
    assert [text[p.start:p.end].strip() for p in window.pieces][:1] == ["the"]
    pair = tok.tokenize_pair("the capital", "of paris", "first")
    sep = roberta_tokenizer.sep_token_id
    assert pair.token_ids.count(sep) == 3 and pair.seq_pair_offset == 1 + len(
        roberta_tokenizer("the capital", add_special_tokens=False)["input_ids"]) + 2
    assert tok.mask_token == "<mask>" and tok.mask_id == roberta_tokenizer.mask_token_id


def test_mpnet_is_wordpiece_with_its_own_specials():
    vocab = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>", "the", "capital", "paris", "."]
    tok = build_tokenizer(parse({"mpnet": {"do_lower_case": True}}), vocab=vocab)
    (window,) = tok.tokenize("The capital <mask>.", "first", -1)
    assert window.token_ids == [0, 5, 6, 4, 8, 2]
    assert tok.mask_token == "<mask>" and tok.mask_id == 4 and tok.pad_id == 1
    pair = tok.tokenize_pair("the", "paris", "first")
    assert pair.token_ids == [0, 5, 2, 2, 7, 2] and pair.seq_pair_offset == 4


def test_roberta_add_prefix_space_from_the_settings(roberta_tokenizer):
    plain = build_tokenizer(parse({"roberta": {}}), hf_tokenizer=roberta_tokenizer)
    spaced = build_tokenizer(parse({"roberta": {"add_prefix_space": True}}), hf_tokenizer=roberta_tokenizer)
    text = "paris is the capital"
    assert plain.inner(text).ids == roberta_tokenizer(text, add_special_tokens=False)["input_ids"]
    inner = spaced.inner(text)
    assert inner.ids == roberta_tokenizer(" " + text, add_special_tokens=False)["input_ids"]
    assert text[inner.pieces[0].start:inner.pieces[0].end] == "paris"


def test_deberta_pairs_need_two_non_empty_sequences():
    from es_infer_nb.models.nlp.tokenization.windows import Specials, WindowedTokenizer

    tok = WindowedTokenizer(WordPieceTokenizer(VOCAB), Specials(2, 3, 1, non_empty_pairs=True), 16)
    assert tok.tokenize_pair("paris", "london", "first").token_ids == [2, 10, 3, 11, 3]
    with pytest.raises(ApiError, match="Both sequences must have at least one token"):
        tok.tokenize_pair("paris", "", "first")


def test_span_windows_that_cannot_move_forward_fail_instead_of_looping():
    """A span so close to the window that, after backing off split words, the next window would start
    where the last one did: the error ES's pair loop raises, for single sequences as well."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "God", "##zilla", "Elastic", "##search", "day"]
    tok = build_tokenizer(parse({"bert": {"max_sequence_length": 5, "truncate": "none", "span": 0}}), vocab=vocab)
    text = "Godzilla Elasticsearch day"
    assert [w.token_ids for w in tok.tokenize(text, "none", 1)][:2] == [[2, 5, 6, 3], [2, 6, 7, 8, 3]]
    with pytest.raises(ApiError) as err:
        tok.tokenize(text, "none", 2)
    assert (err.value.status, err.value.type) == (500, "illegal_state_exception")
    assert err.value.reason.startswith("Tokenization cannot be satisfied with the current span setting")


#: the vocabulary and scores of ES's XLMRobertaTokenizerTests / DebertaV2TokenizerTests (first 16 pieces)
UNIGRAM_PIECES = ["▁Ela", "stic", "search", "▁is", "▁fun", "▁God", "z", "illa", "▁my", "▁little", "▁red", "▁car"]
UNIGRAM_SCORES = [-12.535264015197754, -12.300995826721191, -13.255199432373047, -7.402246475219727,
                  -11.201482772827148, -10.576351165771484, -7.898513317108154, -10.230172157287598,
                  -9.18289566040039, -11.451579093933105, -10.858806610107422, -10.214239120483398]


def _unigram_tokenizer(specials):
    """A SentencePiece-style Unigram HF tokenizer over the upstream tests' vocabulary: ids 0-3 the
    specials, then the pieces (``▁Ela`` = 4, ``▁fun`` = 8), as in those tests."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = [(name, 0.0) for name in specials[:4]] + list(zip(UNIGRAM_PIECES, UNIGRAM_SCORES)) + [(specials[4], 0.0)]
    tk = Tokenizer(models.Unigram(vocab, unk_id=3))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tk.decoder = decoders.Metaspace()
    tk.add_special_tokens([AddedToken(name, special=True, normalized=False) for name in specials])
    cls, pad, sep, unk, mask = specials
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=cls, eos_token=sep, sep_token=sep, cls_token=cls,
                                   unk_token=unk, pad_token=pad, mask_token=mask)


@pytest.mark.parametrize(("kind", "specials"), [("xlm_roberta", ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]),
                                                ("deberta_v2", ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"])])
def test_sentencepiece_kinds_give_every_piece_its_own_position(kind, specials):
    """ES's Unigram tokenizer emits each piece as its own token (XLMRobertaTokenizerTests /
    DebertaV2TokenizerTests.testTokenize: "Elasticsearch fun" -> ids [4, 5, 6, 8], token map
    [0, 1, 2, 3]), each with its own offsets; span windows may then cut between any two pieces."""
    hf = _unigram_tokenizer(specials)
    tok = build_tokenizer(parse({kind: {"with_special_tokens": False, "truncate": "none", "do_lower_case": False}}),
                          hf_tokenizer=hf)
    (window,) = tok.tokenize("Elasticsearch fun", "none", -1)
    assert window.token_ids == [4, 5, 6, 8]
    assert window.token_map == [0, 1, 2, 3]
    inner = tok.inner("Elasticsearch fun")
    assert [(p.start, p.end) for p in inner.pieces][:3] == [(0, 3), (3, 7), (7, 13)]
    spanned = build_tokenizer(parse({kind: {"with_special_tokens": False, "truncate": "none", "max_sequence_length": 2,
                                            "span": 1, "do_lower_case": False}}), hf_tokenizer=hf)
    assert [w.token_ids for w in spanned.tokenize("Elasticsearch fun", "none", 1)] == [[4, 5], [5, 6], [6, 8]]


def test_bpe_roberta_keeps_word_positions(roberta_tokenizer):
    """RoBERTa (BPE) pieces of one word share its position, as ES's BPE tokenizer gives them."""
    tok = build_tokenizer(parse({"roberta": {"with_special_tokens": False}}), hf_tokenizer=roberta_tokenizer)
    inner = tok.inner("elasticsearch london")
    assert len(inner.ids) > 2 and inner.positions[0] == 0 and inner.positions[-1] == 1
    assert sorted(set(inner.positions)) == [0, 1]


def test_tokenization_constructor_messages():
    """Tokenization's constructor: a span below -1 and a max_sequence_length that is not positive."""
    for value, reason in (({"bert": {"truncate": "none", "span": -5}},
                           "[span] must be non-negative to indicate span length or [-1] to indicate no windowing "
                           "should occur"),
                          ({"bert": {"max_sequence_length": 0}}, "[max_sequence_length] must be positive")):
        with pytest.raises(ApiError) as err:
            parse(value)
        assert (err.value.type, err.value.reason) == ("illegal_argument_exception", reason)
