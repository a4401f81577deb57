"""ES's NLP tokenizers as its unit tests assert them (elastic/elasticsearch
``x-pack/plugin/ml/src/test/java/org/elasticsearch/xpack/ml/inference/nlp/tokenizers``): BERT / MPNet
WordPiece, the basic and word-piece token filters, RoBERTa / byte-level BPE, XLM-RoBERTa and DeBERTa-v2
(SentencePiece Unigram), each on the upstream test's own vocabulary."""

from __future__ import annotations

import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.models.nlp.tokenization import build_tokenizer, parse
from es_infer_nb.models.nlp.tokenization.wordpiece import BasicTokenizer, WordPieceTokenizer
from upstream_vocab import BERT_VOCAB

#: MPNetTokenizerTests.TEST_CASED_VOCAB: MPNetTokenizer.UNKNOWN_TOKEN is BERT's [UNK]
MPNET_VOCAB = [
    "Elastic",
    "##search",
    "is",
    "fun",
    "my",
    "little",
    "red",
    "car",
    "God",
    "##zilla",
    ".",
    ",",
    "<s>",
    "</s>",
    "<mask>",
    "[UNK]",
    "day",
    "Pancake",
    "with",
    "<pad>",
]


def _bert(vocab, kind="bert", never_split=(), **settings):
    return build_tokenizer(parse({kind: settings}), vocab=vocab, never_split=never_split)


def _one(tok, text, truncate="none", span=-1):
    (window,) = tok.tokenize(text, truncate, span)
    return window


# -- MPNet ----------------------------------------------------------------------------------------------


def test_mpnet_tokenize():
    # MPNetTokenizerTests.testTokenize
    window = _one(_bert(MPNET_VOCAB, "mpnet", with_special_tokens=False, truncate="none"), "Elasticsearch fun")
    assert window.tokens == ["Elastic", "##search", "fun"]
    assert (window.token_ids, window.token_map) == ([0, 1, 3], [0, 0, 1])


def test_mpnet_multi_seq_has_two_separators():
    # MPNetTokenizerTests.testMultiSeqTokenization
    tok = _bert(MPNET_VOCAB, "mpnet", do_lower_case=False, with_special_tokens=True, truncate="none")
    pair = tok.tokenize_pair("Elasticsearch is fun", "Godzilla my little red car", "none")
    assert pair.token_ids == [12, 0, 1, 2, 3, 13, 13, 8, 9, 4, 5, 6, 7, 13]


def test_mpnet_unknown_token_is_bert_unk():
    # MPNetTokenizer.UNKNOWN_TOKEN = "[UNK]": unknown words get [UNK]'s id; a vocabulary without it is refused
    window = _one(_bert(MPNET_VOCAB, "mpnet", with_special_tokens=False), "Elasticsearch banana")
    assert window.token_ids == [0, 1, 15] and window.tokens[-1] == "[UNK]"
    with pytest.raises(ApiError) as err:
        _bert(["<s>", "</s>", "<pad>", "<unk>", "<mask>"], "mpnet")
    assert (err.value.type, err.value.status, err.value.reason) == (
        "status_exception",
        409,
        "stored vocabulary is missing required [[UNK]] token",
    )


def test_build_tokenizer_with_required_vocabularies():
    # NlpTokenizerTests.testBuildTokenizer: BERT_REQUIRED_VOCAB / MPNET_REQUIRED_VOCAB are enough
    bert = _bert(["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]"], truncate="none")
    assert (bert.pad_id, bert.mask_id) == (4, 2)
    mpnet = _bert(["[UNK]", "</s>", "<pad>", "<s>", "<mask>"], "mpnet", truncate="none")
    assert (mpnet.pad_id, mpnet.mask_id, mpnet.specials.cls_id, mpnet.specials.sep_id) == (2, 4, 3, 1)


# -- BERT -----------------------------------------------------------------------------------------------


def test_bert_do_lower_case():
    # BertTokenizerTests.testDoLowerCase
    vocab = ["elastic", "##search", "fun", "[UNK]", "[PAD]"]
    cased = _bert(vocab, do_lower_case=False, with_special_tokens=False)
    assert (_one(cased, "Elasticsearch fun").token_ids, _one(cased, "Elasticsearch fun").token_map) == ([3, 2], [0, 1])
    assert _one(cased, "elasticsearch fun").token_map == [0, 0, 1]
    lower = _bert(vocab, do_lower_case=True, with_special_tokens=False)
    assert (_one(lower, "Elasticsearch fun").token_ids, _one(lower, "Elasticsearch fun").token_map) == (
        [0, 1, 2],
        [0, 0, 1],
    )


def test_bert_never_split_token_missing_from_vocab_is_unknown():
    # BertTokenizerTests.testNeverSplitTokens
    tok = _bert(BERT_VOCAB, never_split=["SP001"], with_special_tokens=False)
    window = _one(tok, "Elasticsearch SP001 fun")
    assert window.tokens == ["Elastic", "##search", "SP001", "fun"]
    assert (window.token_ids, window.token_map) == ([0, 1, 15, 3], [0, 0, 1, 2])


def test_bert_punctuation_with_mask():
    # BertTokenizerTests.testPunctuationWithMask
    vocab = ["[CLS]", "This", "is", "[MASK]", "-", "~", "ta", "##stic", "!", "[SEP]", "sub", ",", ".", "[UNK]", "[PAD]"]
    tok = _bert(vocab, never_split=["[MASK]"])
    cases = {
        "This is [MASK]-tastic!": ([0, 1, 2, 3, 4, 6, 7, 8, 9], [-1, 0, 1, 2, 3, 4, 4, 5, -1]),
        "This is sub~[MASK]!": ([0, 1, 2, 10, 5, 3, 8, 9], [-1, 0, 1, 2, 3, 4, 5, -1]),
        "This is sub,[MASK].tastic!": ([0, 1, 2, 10, 11, 3, 12, 6, 7, 8, 9], [-1, 0, 1, 2, 3, 4, 5, 6, 6, 7, -1]),
    }
    for text, (ids, token_map) in cases.items():
        window = _one(tok, text)
        assert (window.token_ids, window.token_map) == (ids, token_map), text


def test_bert_large_input_no_truncation():
    # BertTokenizerTests.testTokenizeLargeInputNoTruncation
    plain = _bert(BERT_VOCAB, with_special_tokens=False, max_sequence_length=5, truncate="none")
    assert len(_one(plain, "Elasticsearch fun with Pancake").token_ids) == 5
    special = _bert(BERT_VOCAB, with_special_tokens=True, max_sequence_length=5, truncate="none")
    with pytest.raises(ApiError) as err:
        special.tokenize("Elasticsearch fun with Pancake", "none", -1)
    assert (err.value.type, err.value.status) == ("status_exception", 400)
    assert err.value.reason == (
        "Input too large. The tokenized input length [7] exceeds the maximum sequence length [5]"
    )


def test_bert_windows_without_special_tokens():
    # BertTokenizerTests.testTokenizeLargeInputNoTruncationWithWindowing (second tokenizer)
    tok = _bert(BERT_VOCAB, with_special_tokens=False, max_sequence_length=5, truncate="none", span=0)
    windows = tok.tokenize("Godzilla Elasticsearch day with Pancake and my little red car.", "none", 1)
    assert [(w.token_ids, w.token_map) for w in windows] == [
        ([8, 9, 0, 1, 16], [0, 0, 1, 1, 2]),
        ([16, 18, 17, 15, 4], [2, 3, 4, 5, 6]),
        ([4, 5, 6, 7, 10], [6, 7, 8, 9, 10]),
    ]
    adverse = _bert(BERT_VOCAB, with_special_tokens=True, max_sequence_length=5, truncate="none", span=0)
    windows = adverse.tokenize("Godzilla Elasticsearch day with Pancake and my little red car.", "none", 1)
    assert len(windows) == 7
    assert [(w.token_ids, w.token_map) for w in windows[:2]] == [
        ([12, 8, 9, 13], [-1, 0, 0, -1]),
        ([12, 9, 0, 1, 13], [-1, 0, 1, 1, -1]),
    ]


def test_bert_multi_seq_span_and_long_input():
    # BertTokenizerTests.testMultiSeqTokenizationWithSpan / testMultiSeqTokenizationWithSpanOnLongInput
    tok = _bert(BERT_VOCAB, do_lower_case=False)
    (window,) = tok.tokenize_pair_span("Elasticsearch is fun", "Godzilla my little red car", "none", 1)
    assert window.token_ids == [12, 0, 1, 2, 3, 13, 8, 9, 4, 5, 6, 7, 13]
    short = _bert(BERT_VOCAB, do_lower_case=False, max_sequence_length=8)
    windows = short.tokenize_pair_span("Elasticsearch is fun", "Godzilla my little red car", "none", 0)
    seventh = ["God", "##zilla", "my", "little", "red", "car"]
    assert [[BERT_VOCAB[i] for i in w.token_ids] for w in windows] == [
        ["[CLS]", "Elastic", "##search", "is", "fun", "[SEP]", t, "[SEP]"] for t in seventh
    ]


def test_bert_multi_seq_requires_special_tokens():
    # BertTokenizerTests.testMultiSeqRequiresSpecialTokens
    tok = _bert(["foo", "[UNK]", "[PAD]", "[CLS]", "[SEP]"], do_lower_case=False, with_special_tokens=False)
    with pytest.raises(ApiError, match="Unable to do sequence pair tokenization without special tokens"):
        tok.tokenize_pair("foo", "foo", "none")


def test_bert_hangul_accent_filter_without_suffix():
    # BertTokenizerTests.testTokenizeFailureCaseAccentFilter
    vocab = ["[CLS]", "br", "##\u110e", "##\u1161", "##\u11bc", "##n", "'", "s", "[SEP]", "[MASK]", "[UNK]", "[PAD]"]
    tok = _bert(vocab, do_lower_case=True, max_sequence_length=512, truncate="first")
    assert _one(tok, "Br\ucc3dn").token_ids == [0, 1, 2, 3, 4, 5, 8]


# -- BasicTokenFilter / WordPieceTokenFilter ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 (return) [ Patois ", ["1", "(", "return", ")", "[", "Patois"]),
        ("Hello [UNK].", ["Hello", "[UNK]", "."]),
        ("Hello-[UNK]", ["Hello", "-", "[UNK]"]),
        (" \tHeLLo!how  \n Are yoU? [UNK]", ["HeLLo", "!", "how", "Are", "yoU", "?", "[UNK]"]),
        ("Hello [UNK]?", ["Hello", "[UNK]", "?"]),
        ("Hello [UNK]!!", ["Hello", "[UNK]", "!", "!"]),
        ("Hello~[UNK][UNK]", ["Hello", "~", "[UNK]", "[UNK]"]),
        ("Hello-[unk]", ["Hello", "-", "[", "unk", "]"]),
    ],
)
def test_basic_filter_never_split(text, expected):
    # BasicTokenFilterTests.testNeverSplit_GivenNoLowerCase / testNeverSplit_GivenLowerCase
    basic = BasicTokenizer(tokenize_cjk=False, strip_accents=False, never_split=["[UNK]"])
    assert [t for t, _s, _e in basic.tokenize(text)] == expected


def test_basic_filter_cjk_and_accents():
    # BasicTokenFilterTests.testSplitCJK / testStripAccents
    cjk = BasicTokenizer(tokenize_cjk=True, strip_accents=False, never_split=["[UNK]"])
    assert [t for t, _s, _e in cjk.tokenize("hello ah\u535a\u63a8zz")] == ["hello", "ah", "\u535a", "\u63a8", "zz"]
    strip = BasicTokenizer(tokenize_cjk=True, strip_accents=True, never_split=["[UNK]"])
    assert [t for t, _s, _e in strip.tokenize("HäLLo how are you")] == ["HaLLo", "how", "are", "you"]
    assert [t for t, _s, _e in strip.tokenize("ÎÎÎÏÎ½ÎÎÎÎ±Î¿Ï")] == ["IIIII½IIII±I", "¿", "I"]


def test_word_piece_filter():
    # WordPieceTokenFilterTests.testTokenize / testMaxCharLength
    vocab = ["[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing", "become"]
    tok = WordPieceTokenizer(vocab, never_split=[])
    assert tok("").pieces == []
    assert [p.text for p in tok("unwanted").pieces] == ["un", "##want", "##ed"]
    assert tok("unwanted").positions == [0, 0, 0]
    assert [p.text for p in tok("running").pieces] == ["runn", "##ing"]
    assert [p.text for p in tok("unwantedX").pieces] == ["[UNK]"]
    assert [p.text for p in WordPieceTokenizer(vocab, max_input_chars_per_word=4)("become").pieces] == ["[UNK]"]


# -- RoBERTa / byte-level BPE (BpeTokenizerTests' vocabulary and merges) ------------------------------

BPE_MERGES = [
    "a r",
    "i t",
    "l a",
    "G o",
    "a n",
    "d z",
    "f u",
    "i l",
    "w it",
    "Ġ Go",
    "Ġ fu",
    "Ġ wit",
    "dz il",
    "ĠGo dzil",
    "Ġfu n",
    "Ġwit h",
    "ĠGodzil la",
    "E la",
    "a k",
    "c h",
    "c s",
    "c ar",
    "c ak",
    "e d",
    "e ar",
    "i cs",
    "l e",
    "l it",
    "r ed",
    "s t",
    "t le",
    "Ġ a",
    "Ġ car",
    "Ġ lit",
    "Ġ red",
    "an cak",
    "Ela st",
    "ear ch",
    "ics earch",
    "Ġlit tle",
    "ancak e",
]


def _byte_alphabet() -> list[str]:
    """GPT-2's byte-to-unicode alphabet in its order (the 256 entries after the specials of the vocab)."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    rest = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + n) for n in range(len(rest))]


#: BpeTokenizerTests.TEST_CASED_VOCAB
BPE_VOCAB = [
    "<s>",
    "<pad>",
    "</s>",
    "<unk>",
    "<mask>",
    *_byte_alphabet(),
    *[m.replace(" ", "") for m in BPE_MERGES[:17]],
    "Ela",
    "ak",
    "ch",
    "cs",
    "car",
    "cak",
    "ed",
    "ear",
    "ics",
    "le",
    "lit",
    "red",
    "st",
    "tle",
    "Ġa",
    "Ġcar",
    "Ġlit",
    "Ġred",
    "ancak",
    "Elast",
    "earch",
    "icsearch",
    "Ġlittle",
    "ancake",
    "Elasticsearch",
]


def _bpe(prefix: bool = False):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import RobertaTokenizerFast

    tk = Tokenizer(
        models.BPE(
            {t: i for i, t in enumerate(BPE_VOCAB)}, [tuple(m.split(" ")) for m in BPE_MERGES], unk_token="<unk>"
        )
    )
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix)
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.RobertaProcessing(
        ("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=prefix
    )
    return RobertaTokenizerFast(
        tokenizer_object=tk,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token=AddedToken("<mask>", lstrip=True, special=True),
        add_prefix_space=prefix,
    )


@pytest.fixture(scope="module")
def bpe():
    return _bpe()


@pytest.mark.parametrize("kind", ["roberta", "byte_level_bpe"])
def test_bpe_tokenize_and_pairs(bpe, kind):
    # RobertaTokenizerTests.testTokenize / testMultiSeqTokenization,
    # ByteLevelBpeTokenizerTests.testTokenizeMatchesRobertaStyleDefaults / testMultiSeqTokenization
    tok = build_tokenizer(parse({kind: {"with_special_tokens": True, "truncate": "none"}}), hf_tokenizer=bpe)
    window = _one(tok, "Elasticsearch fun")
    assert window.tokens == ["Elast", "icsearch", "Ġfun"]
    assert (window.token_ids, window.token_map) == ([0, 297, 299, 275, 2], [-1, 0, 0, 1, -1])
    pair = tok.tokenize_pair("Elasticsearch is fun", " Godzilla my little red car", "none")
    assert [BPE_VOCAB[i] for i in pair.token_ids] == [
        "<s>",
        "Elast",
        "icsearch",
        "Ġ",
        "i",
        "s",
        "Ġfun",
        "</s>",
        "</s>",
        "ĠGodzilla",
        "Ġ",
        "m",
        "y",
        "Ġlittle",
        "Ġred",
        "Ġcar",
        "</s>",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Elasticsearch <<mask>.", ["Elast", "icsearch", "Ġ", "<", "<mask>", "."]),
        ("Elasticsearch < red", ["Elast", "icsearch", "Ġ", "<", "Ġred"]),
        ("Elasticsearch <mask>.", ["Elast", "icsearch", "<mask>", "."]),
        (
            "Elasticsearch<mask><mask>~redElasticsearch",
            ["Elast", "icsearch", "<mask>", "<mask>", "~", "red", "Elast", "icsearch"],
        ),
        ("Elasticsearch red~<mask>.", ["Elast", "icsearch", "Ġred", "~", "<mask>", "."]),
        ("Elasticsearch red~<mask><mask>.", ["Elast", "icsearch", "Ġred", "~", "<mask>", "<mask>", "."]),
        ("Elasticsearch <mask>!!", ["Elast", "icsearch", "<mask>", "!", "!"]),
    ],
)
def test_bpe_never_split_mask(bpe, text, expected):
    # BpeTokenizerTests.testNeverSplit
    tok = build_tokenizer(parse({"roberta": {"with_special_tokens": False}}), hf_tokenizer=bpe)
    assert [p.text for p in tok.inner(text).pieces] == expected


def test_bpe_ids_positions_offsets_and_empty(bpe):
    # BpeTokenizerTests.testTokenization / testTokenizationOffsetsWithPrefixWhitespace / testTokenizationEmpty
    tok = build_tokenizer(parse({"roberta": {"with_special_tokens": False}}), hf_tokenizer=bpe)
    text = "Elasticsearch Godzilla car"
    inner = tok.inner(text)
    assert (inner.ids, inner.positions) == ([297, 299, 277, 293], [0, 0, 1, 2])
    assert [p.text for p in inner.pieces] == ["Elast", "icsearch", "ĠGodzilla", "Ġcar"]
    assert [text[p.start : p.end] for p in inner.pieces] == ["Elasticsearch", "Elasticsearch", "Godzilla", "car"]
    spaced = build_tokenizer(parse({"roberta": {"add_prefix_space": True}}), hf_tokenizer=bpe)
    assert [("Godzilla car")[p.start : p.end] for p in spaced.inner("Godzilla car").pieces] == ["Godzilla", "car"]
    empty = tok.inner("")
    assert (empty.pieces, empty.positions) == ([], [])


def test_byte_level_bpe_special_tokens_come_from_the_settings(bpe):
    # ByteLevelBpeTokenizerTests.testIdenticalBosAndEosSpecialTokensBuild: bos and eos may be the same token
    same = build_tokenizer(parse({"byte_level_bpe": {"bos_token": "</s>", "eos_token": "</s>"}}), hf_tokenizer=bpe)
    assert same.specials.cls_id == same.specials.sep_id == 2
    # ByteLevelBpeTokenizer's constructor: a configured pad / unknown token missing from the vocabulary is a 409
    with pytest.raises(ApiError) as err:
        build_tokenizer(parse({"byte_level_bpe": {"pad_token": "[PAD]"}}), hf_tokenizer=bpe)
    assert (err.value.status, err.value.reason) == (409, "stored vocabulary is missing required [[PAD]] token")
    with pytest.raises(ApiError) as err:
        build_tokenizer(parse({"byte_level_bpe": {"bos_token": "[CLS]", "eos_token": "[SEP]"}}), hf_tokenizer=bpe)
    assert (err.value.status, err.value.reason) == (
        409,
        "stored vocabulary is missing required [[SEP], [CLS]] token(s)",
    )


# -- XLM-RoBERTa / DeBERTa-v2 (SentencePiece Unigram, the tests' vocabulary and scores) ---------------

UNIGRAM_PIECES = [
    "▁Ela",
    "stic",
    "search",
    "▁is",
    "▁fun",
    "▁God",
    "z",
    "illa",
    "▁my",
    "▁little",
    "▁red",
    "▁car",
    "▁😀",
    "▁🇸🇴",
]
UNIGRAM_SCORES = [
    -12.535264015197754,
    -12.300995826721191,
    -13.255199432373047,
    -7.402246475219727,
    -11.201482772827148,
    -10.576351165771484,
    -7.898513317108154,
    -10.230172157287598,
    -9.18289566040039,
    -11.451579093933105,
    -10.858806610107422,
    -10.214239120483398,
    -10.230172157287598,
    -9.451579093933105,
]


def _unigram(specials):
    """TEST_CASE_VOCAB of XLMRobertaTokenizerTests / DebertaV2TokenizerTests: four specials, the pieces,
    the mask token (18) and "." (19)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    cls, pad, sep, unk, mask = specials
    vocab = [(name, 0.0) for name in (cls, pad, sep, unk)] + list(zip(UNIGRAM_PIECES, UNIGRAM_SCORES))
    vocab += [(mask, 0.0), (".", -3.0)]
    tk = Tokenizer(models.Unigram(vocab, unk_id=3))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tk.decoder = decoders.Metaspace()
    tk.add_special_tokens([AddedToken(name, special=True, normalized=False) for name in specials])
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token=cls,
        eos_token=sep,
        sep_token=sep,
        cls_token=cls,
        unk_token=unk,
        pad_token=pad,
        mask_token=mask,
    )


SENTENCEPIECE_KINDS = [
    ("xlm_roberta", ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]),
    ("deberta_v2", ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"]),
]


@pytest.mark.parametrize(("kind", "specials"), SENTENCEPIECE_KINDS)
def test_sentencepiece_surrogates_emoji_never_split_and_pairs(kind, specials):
    # XLMRobertaTokenizerTests / DebertaV2TokenizerTests: testSurrogatePair, testMultiByteEmoji,
    # testTokenizeWithNeverSplit, testMultiSeqTokenization
    hf = _unigram(specials)
    tok = build_tokenizer(
        parse({kind: {"with_special_tokens": False, "truncate": "none", "do_lower_case": False}}), hf_tokenizer=hf
    )
    assert _one(tok, "😀").token_ids == [16]
    assert _one(tok, "Elasticsearch 😀").token_ids == [4, 5, 6, 16]
    assert _one(tok, "Elasticsearch 😀 fun").token_ids == [4, 5, 6, 16, 8]
    assert _one(tok, "🇸🇴").token_ids == [17]
    assert _one(tok, "🏁").token_ids == [3]  # the unknown token
    # "▁Ela", "stic", "search", "▁" (not in the vocabulary), ".", mask, "▁", "."
    assert _one(tok, f"Elasticsearch .{specials[4]}.").token_ids == [4, 5, 6, 3, 19, 18, 3, 19]
    paired = build_tokenizer(parse({kind: {"truncate": "none", "do_lower_case": False}}), hf_tokenizer=hf)
    pair = paired.tokenize_pair("Elasticsearch is fun", "Godzilla my little red car", "none")
    cls, _pad, sep, _unk, _mask = specials
    seps = [sep, sep] if kind == "xlm_roberta" else [sep]
    vocab = hf.convert_ids_to_tokens(pair.token_ids)
    assert vocab == [
        cls,
        "▁Ela",
        "stic",
        "search",
        "▁is",
        "▁fun",
        *seps,
        "▁God",
        "z",
        "illa",
        "▁my",
        "▁little",
        "▁red",
        "▁car",
        sep,
    ]
