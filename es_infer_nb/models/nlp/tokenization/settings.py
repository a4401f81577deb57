"""``inference_config.<task>.tokenization`` as Elasticsearch parses it (spec §4).

A single-key object naming the tokenizer (``bert``, ``mpnet``, ``roberta``, ``xlm_roberta``,
``bert_ja``, ``deberta_v2``, ``byte_level_bpe``) with the common fields ``do_lower_case``,
``with_special_tokens``, ``max_sequence_length``, ``truncate`` and ``span`` (plus ``add_prefix_space``
for roberta, and ``add_prefix_space`` and its special token strings for byte_level_bpe).
Updates (``_infer`` / processors) may only set ``truncate`` and ``span`` (and lower
``max_sequence_length``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ....errors import ApiError

KINDS = ("bert", "mpnet", "roberta", "xlm_roberta", "bert_ja", "deberta_v2", "byte_level_bpe")
TRUNCATE = ("first", "second", "none", "balanced")
DEFAULT_MAX_SEQUENCE_LENGTH = 512
#: mask token text per tokenizer kind
MASK_TOKENS = {"bert": "[MASK]", "bert_ja": "[MASK]", "deberta_v2": "[MASK]",
               "mpnet": "<mask>", "roberta": "<mask>", "xlm_roberta": "<mask>", "byte_level_bpe": "<mask>"}
COMMON_FIELDS = {"do_lower_case", "with_special_tokens", "max_sequence_length", "truncate", "span"}
#: ByteLevelBpeTokenization's configurable special token strings and their defaults, in its output order
BPE_TOKENS = {"unk_token": "<unk>", "pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>",
              "mask_token": "<mask>"}
EXTRA_FIELDS = {"roberta": {"add_prefix_space"}, "byte_level_bpe": {"add_prefix_space", *BPE_TOKENS}}


def _bad(reason: str, status: int = 400, type_: str = "x_content_parse_exception") -> ApiError:
    return ApiError(type_, reason, status)


@dataclass(frozen=True)
class Tokenization:
    kind: str = "bert"
    do_lower_case: bool = False
    with_special_tokens: bool = True
    max_sequence_length: int = DEFAULT_MAX_SEQUENCE_LENGTH
    truncate: str = "first"
    span: int = -1
    add_prefix_space: bool | None = None
    #: byte_level_bpe's special token strings (unk, pad, bos, eos, mask: :data:`BPE_TOKENS`' order)
    special_tokens: tuple[str, ...] | None = None

    @property
    def mask_token(self) -> str:
        if self.special_tokens is not None:
            return self.special_tokens[-1]
        return MASK_TOKENS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        inner: dict[str, Any] = {
            "do_lower_case": self.do_lower_case,
            "with_special_tokens": self.with_special_tokens,
            "max_sequence_length": self.max_sequence_length,
            "truncate": self.truncate,
            "span": self.span,
        }
        if self.kind in EXTRA_FIELDS:
            inner["add_prefix_space"] = bool(self.add_prefix_space)
        if self.special_tokens is not None:
            inner.update(zip(BPE_TOKENS, self.special_tokens))
        return {self.kind: inner}

    def with_call(self, truncate: str | None = None, span: int | None = None) -> "Tokenization":
        """These settings with a request's ``truncate`` / ``span`` applied."""
        out = self
        if truncate is not None:
            out = replace(out, truncate=_truncate(truncate))
        if span is not None:
            out = replace(out, span=int(span))
        return out


def _truncate(value: Any) -> str:
    text = str(value).lower()
    if text not in TRUNCATE:
        raise _bad(f"No enum constant org.elasticsearch.xpack.core.ml.inference.trainedmodel.Tokenization.Truncate."
                   f"{str(value).upper()}", type_="illegal_argument_exception")
    return text


def _single(value: Any, what: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(value, dict) or len(value) != 1:
        raise _bad(f"[{what}] must be an object with a single tokenization type, one of {list(KINDS)}")
    ((kind, inner),) = value.items()
    if kind not in KINDS:
        raise _bad(f"[{what}] unknown tokenization type [{kind}]; expected one of {list(KINDS)}")
    if inner is None:
        inner = {}
    if not isinstance(inner, dict):
        raise _bad(f"[{kind}] must be an object")
    return kind, inner


def _bool(inner: dict[str, Any], key: str, default: bool, kind: str) -> bool:
    value = inner.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(f"[{kind}] failed to parse field [{key}]")
    return value


def _int(inner: dict[str, Any], key: str, default: int, kind: str) -> int:
    value = inner.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"[{kind}] failed to parse field [{key}]")
    return value


def _special_tokens(inner: dict[str, Any], kind: str) -> tuple[str, ...] | None:
    """ByteLevelBpeTokenization's special token strings: a blank or missing one is its default."""
    if kind != "byte_level_bpe":
        return None
    out = []
    for key, default in BPE_TOKENS.items():
        value = inner.get(key)
        if value is not None and not isinstance(value, str):
            raise _bad(f"[{kind}_tokenization] failed to parse field [{key}]")
        out.append(value if value and value.strip() else default)
    return tuple(out)


def validate_span(truncate: str, span: int, max_sequence_length: int) -> None:
    if span < -1:  # Tokenization's constructor
        raise ApiError("illegal_argument_exception", "[span] must be non-negative to indicate span length or [-1] to "
                       "indicate no windowing should occur", 400)
    if span > -1 and truncate != "none":
        raise ApiError("illegal_argument_exception", f"[span] must not be provided when [truncate] is [{truncate}]", 400)
    if span > max_sequence_length:
        raise ApiError("illegal_argument_exception",
                       f"[span] provided [{span}] must not be greater than [max_sequence_length] provided "
                       f"[{max_sequence_length}]", 400)


def parse(value: Any) -> Tokenization:
    """A stored (create-time) tokenization object, defaults filled as ES fills them."""
    if value is None:
        return Tokenization()
    kind, inner = _single(value, "tokenization")
    unknown = sorted(set(inner) - COMMON_FIELDS - EXTRA_FIELDS.get(kind, set()))
    if unknown:
        raise _bad(f"[{kind}_tokenization] unknown field [{unknown[0]}]")
    truncate = _truncate(inner["truncate"]) if inner.get("truncate") is not None else "first"
    span = _int(inner, "span", -1, kind)
    max_len = _int(inner, "max_sequence_length", DEFAULT_MAX_SEQUENCE_LENGTH, kind)
    if max_len <= 0:
        raise _bad("[max_sequence_length] must be positive", type_="illegal_argument_exception")
    validate_span(truncate, span, max_len)
    if kind == "byte_level_bpe" and _bool(inner, "do_lower_case", False, kind):
        raise ApiError("illegal_argument_exception",
                       "unable to set [do_lower_case] to [true] for byte_level_bpe tokenizer", 400)
    return Tokenization(
        kind=kind,
        do_lower_case=_bool(inner, "do_lower_case", False, kind),
        with_special_tokens=_bool(inner, "with_special_tokens", True, kind),
        max_sequence_length=max_len,
        truncate=truncate,
        span=span,
        add_prefix_space=_bool(inner, "add_prefix_space", False, kind) if kind in EXTRA_FIELDS else None,
        special_tokens=_special_tokens(inner, kind),
    )


def apply_update(base: Tokenization, value: Any) -> Tokenization:
    """A request's tokenization update (``truncate``, ``span``, a lower ``max_sequence_length``)."""
    if value is None:
        return base
    kind, inner = _single(value, "tokenization")
    if kind != base.kind:
        raise ApiError("status_exception", f"Tokenization config of type [{base.kind}] can not be updated with a "
                       f"request of type [{kind}]", 400)  # BertTokenizationUpdate.apply
    unknown = sorted(set(inner) - {"truncate", "span", "max_sequence_length"})
    if unknown:
        raise _bad(f"[{kind}_tokenization_update] unknown field [{unknown[0]}]")
    out = base
    if inner.get("max_sequence_length") is not None:
        max_len = _int(inner, "max_sequence_length", base.max_sequence_length, kind)
        if max_len > base.max_sequence_length:
            raise ApiError("illegal_argument_exception",
                           f"Updated max sequence length [{max_len}] cannot be greater than the model's max sequence "
                           f"length [{base.max_sequence_length}]", 400)
        out = replace(out, max_sequence_length=max_len)
    truncate = _truncate(inner["truncate"]) if inner.get("truncate") is not None else None
    span = _int(inner, "span", out.span, kind) if inner.get("span") is not None else None
    if truncate is not None and truncate != "none" and span is None:
        span = -1  # a truncating update resets the stored span window
    out = out.with_call(truncate, span)
    validate_span(out.truncate, out.span, out.max_sequence_length)
    return out
