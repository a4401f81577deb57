"""Tokenization as Elasticsearch does it, for every tokenizer kind of spec §4.

:func:`build_tokenizer` gives an :class:`NlpTokenizer`: ``bert`` and ``mpnet`` are ES's own WordPiece
analyzer (:mod:`.wordpiece`, exact); ``roberta``, ``xlm_roberta``, ``deberta_v2`` and ``bert_ja``
run the Hugging Face tokenizer of the model folder for the word pieces, with ES's special tokens,
truncation and windows (:mod:`.windows`) applied on top.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Sequence

from ....errors import ApiError
from .settings import Tokenization, apply_update, parse
from .windows import Specials, Window, WindowedTokenizer
from .wordpiece import InnerTokens, Piece, WordPieceTokenizer, java_lower

__all__ = ["NlpTokenizer", "Tokenization", "Window", "build_tokenizer", "apply_update", "parse"]

WORDPIECE_KINDS = ("bert", "mpnet")
PAIR_SEPARATORS = {"bert": 1, "bert_ja": 1, "deberta_v2": 1, "mpnet": 2, "roberta": 2, "xlm_roberta": 2,
                   "byte_level_bpe": 2}
#: kinds whose pieces ES tokenizes with its SentencePiece Unigram tokenizer: a Lucene tokenizer that emits
#: every piece as its own token (position increment 1, the piece's own offsets), so each piece has its own
#: position (``XLMRobertaTokenizerTests`` / ``DebertaV2TokenizerTests.testTokenize``: "Elasticsearch fun"
#: -> ``▁Ela stic search ▁fun``, token map ``[0, 1, 2, 3]``); BPE (roberta) keeps word positions
PIECE_POSITION_KINDS = ("deberta_v2", "xlm_roberta")
#: (class, separator, pad, unknown) token strings; ES's ``MPNetTokenizer.UNKNOWN_TOKEN`` is BERT's ``[UNK]``
#: (MPNet vocabularies carry both, and ES maps unknown words to ``[UNK]``'s id, not ``<unk>``'s)
SPECIAL_NAMES = {
    "bert": ("[CLS]", "[SEP]", "[PAD]", "[UNK]"), "bert_ja": ("[CLS]", "[SEP]", "[PAD]", "[UNK]"),
    "deberta_v2": ("[CLS]", "[SEP]", "[PAD]", "[UNK]"),
    "mpnet": ("<s>", "</s>", "<pad>", "[UNK]"), "roberta": ("<s>", "</s>", "<pad>", "<unk>"),
    "xlm_roberta": ("<s>", "</s>", "<pad>", "<unk>"), "byte_level_bpe": ("<s>", "</s>", "<pad>", "<unk>"),
}


def _missing_token(token: str) -> ApiError:
    return ApiError("status_exception", f"stored vocabulary is missing required [{token}] token", 409)


class NlpTokenizer(WindowedTokenizer):
    """A tokenizer with ES's settings: ``tokenize`` / ``tokenize_pair`` / ``tokenize_pair_span`` plus
    the vocabulary facts the tasks need (pad and mask ids, token text)."""

    def __init__(self, settings: Tokenization, vocab: Sequence[str], inner: Any, specials: Specials | None,
                 pad_id: int, mask_id: int | None) -> None:
        super().__init__(inner, specials, settings.max_sequence_length, settings.with_special_tokens)
        self.settings = settings
        self.vocab = list(vocab)
        self.pad_id = pad_id
        self.mask_id = mask_id

    @property
    def mask_token(self) -> str:
        return self.settings.mask_token

    def with_settings(self, settings: Tokenization) -> "NlpTokenizer":
        """The same vocabulary with a request's settings (truncate / span / shorter max length)."""
        return NlpTokenizer(settings, self.vocab, self.inner, self.specials, self.pad_id, self.mask_id)


def _vocab_specials(settings: Tokenization, vocab: Sequence[str], names: Sequence[str]
                    ) -> tuple[Specials | None, int]:
    """The special token ids ES's tokenizer constructors look up by name (``BertTokenizer``,
    ``ByteLevelBpeTokenizer``): ``names`` = (class, separator, pad, unknown); a missing unknown or pad token,
    or (with special tokens) a missing separator / class token, is their 409."""
    cls, sep, pad, unk = names
    index = {t: i for i, t in enumerate(vocab)}
    if unk not in index:
        raise _missing_token(unk)
    if pad not in index:
        raise _missing_token(pad)
    specials = None
    if settings.with_special_tokens:
        missing = [t for t in dict.fromkeys((sep, cls)) if t not in index]  # a HashSet: sep's hash sorts first
        if missing:
            raise ApiError("status_exception", f"stored vocabulary is missing required [{', '.join(missing)}] token(s)",
                           409)
        specials = Specials(index[cls], index[sep], PAIR_SEPARATORS[settings.kind])
    return specials, index[pad]


def _wordpiece(settings: Tokenization, vocab: Sequence[str], never_split: Iterable[str]) -> NlpTokenizer:
    """ES's WordPiece analyzer: ``bert``, and ``mpnet`` (ES's ``MPNetTokenizer`` is the BERT tokenizer
    with ``<s>`` / ``</s>`` / ``<pad>`` / ``<mask>``, BERT's ``[UNK]``, and ``</s></s>`` between pairs)."""
    names = SPECIAL_NAMES[settings.kind]
    specials, pad_id = _vocab_specials(settings, vocab, names)
    inner = WordPieceTokenizer(vocab, do_lower_case=settings.do_lower_case,
                               never_split=[*never_split, settings.mask_token], unknown_token=names[3])
    mask_id = {t: i for i, t in enumerate(vocab)}.get(settings.mask_token)
    return NlpTokenizer(settings, vocab, inner, specials, pad_id, mask_id)


class HfInner:
    """Word pieces from a Hugging Face fast tokenizer; a piece's position is its word index and its
    offsets are those of the whole word (as ES's ``DelimitedToken`` offsets are), or, with
    ``piece_positions`` (:data:`PIECE_POSITION_KINDS`), each piece its own position and offsets."""

    def __init__(self, hf: Any, lower: bool, prefix_space: bool = False, piece_positions: bool = False) -> None:
        self.hf = hf
        self.lower = lower
        self.prefix_space = prefix_space  # roberta ``add_prefix_space`` the HF tokenizer does not do itself
        self.piece_positions = piece_positions
        self._lock = threading.Lock()  # a Rust tokenizer object must not be entered by two threads at once

    def __call__(self, text: str) -> InnerTokens:
        source = java_lower(text) if self.lower else text
        shift = 0
        if self.prefix_space and source and not source[0].isspace():
            source, shift = " " + source, 1
        with self._lock:
            enc = self.hf(source, add_special_tokens=False, return_offsets_mapping=True)
            tokens = self.hf.convert_ids_to_tokens(list(enc["input_ids"]))
        ids: list[int] = list(enc["input_ids"])
        offsets = list(enc["offset_mapping"])
        words: list[int | None] = list(range(len(ids)))
        if not self.piece_positions:
            try:
                words = enc.word_ids()
            except (AttributeError, ValueError):
                pass
        positions: list[int] = []
        spans: dict[int, tuple[int, int]] = {}
        last = -1
        for i, word in enumerate(words):
            pos = last if word is None else int(word)
            pos = max(pos, 0)
            positions.append(pos)
            last = pos
            s, e = max(offsets[i][0] - shift, 0), max(offsets[i][1] - shift, 0)
            lo, hi = spans.get(pos, (s, e))
            spans[pos] = (min(lo, s), max(hi, e))
        pieces = [Piece(int(i), str(t), *spans[p]) for i, t, p in zip(ids, tokens, positions)]
        return InnerTokens(pieces, positions)


def _hf_vocab(hf: Any) -> list[str]:
    """Tokens by id (eland's ``_load_vocab``); ids with no token (never in practice) become ``""``."""
    by_id = {int(i): str(t) for t, i in hf.get_vocab().items()}
    return [by_id.get(i, "") for i in range(max(by_id, default=-1) + 1)]


def _configured(settings: Tokenization, vocab: list[str], hf: Any) -> NlpTokenizer:
    """``byte_level_bpe``: ES's ``ByteLevelBpeTokenizer`` takes its unknown / pad / bos (class) / eos
    (separator) / mask tokens from the settings' strings, looked up in the vocabulary (bos and eos may be
    the same token), not from the tokenizer's own special tokens."""
    assert settings.special_tokens is not None
    unk, pad, bos, eos, mask = settings.special_tokens
    specials, pad_id = _vocab_specials(settings, vocab, (bos, eos, pad, unk))
    prefix = bool(settings.add_prefix_space) and not bool(getattr(hf, "add_prefix_space", False))
    mask_id = {t: i for i, t in enumerate(vocab)}.get(mask)
    return NlpTokenizer(settings, vocab, HfInner(hf, False, prefix), specials, pad_id, mask_id)


def _hf(settings: Tokenization, hf: Any) -> NlpTokenizer:
    vocab = _hf_vocab(hf)
    if settings.special_tokens is not None:
        return _configured(settings, vocab, hf)
    cls = hf.cls_token_id if hf.cls_token_id is not None else hf.bos_token_id
    sep = hf.sep_token_id if hf.sep_token_id is not None else hf.eos_token_id
    specials = Specials(int(cls), int(sep), PAIR_SEPARATORS[settings.kind], settings.kind == "deberta_v2") if (
        settings.with_special_tokens and cls is not None and sep is not None) else None
    pad = hf.pad_token_id if hf.pad_token_id is not None else 0
    lower = settings.do_lower_case and not bool(getattr(hf, "do_lower_case", False))
    prefix = bool(settings.add_prefix_space) and not bool(getattr(hf, "add_prefix_space", False))
    inner = HfInner(hf, lower, prefix, piece_positions=settings.kind in PIECE_POSITION_KINDS)
    return NlpTokenizer(settings, vocab, inner, specials, int(pad), hf.mask_token_id)


def build_tokenizer(settings: Tokenization, *, vocab: Sequence[str] | None = None, hf_tokenizer: Any = None,
                    never_split: Iterable[str] = ()) -> NlpTokenizer:
    """The tokenizer for ``settings``: ES's WordPiece for ``bert`` (from ``vocab``, or the HF
    tokenizer's vocabulary), the model folder's HF tokenizer for the other kinds."""
    if settings.kind in WORDPIECE_KINDS:
        if vocab is None:
            if hf_tokenizer is None:
                raise ValueError("a bert tokenizer needs a vocabulary or a Hugging Face tokenizer")
            vocab = _hf_vocab(hf_tokenizer)
        return _wordpiece(settings, vocab, never_split)
    if hf_tokenizer is None:
        raise ApiError("status_exception", f"tokenization [{settings.kind}] needs the model's Hugging Face tokenizer "
                       "files (tokenizer.json / vocabulary) next to the model", 400)
    return _hf(settings, hf_tokenizer)
