"""Tiny random-weight transformers models and tokenizers, built by the tests (nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "capital", "of", "france", "is", "paris", "london", "many", "use", "in", "el", "##astic", "##search",
    "fun", "with", "and", "my", "little", "red", "car", "god", "##zilla", "day", "pancake", "this", "example",
    "sports", "politics", "science", "where", "lives", "who", "ana", "new", "york", "from", "hi", "city",
    "a", "b", "c", "d", "e", "##s", "##ing", "run", "play", "big", "dog", "cat", ".", ",", "?", "!", "'",
    "-", "##.", "x.y", "word", "text",
]
NER_LABELS = ["O", "B_PER", "I_PER", "B_LOC", "I_LOC", "B_ORG", "I_ORG"]
CLASS_LABELS = ["negative", "neutral", "positive"]
NLI_LABELS = ["contradiction", "neutral", "entailment"]


def bert_config(**extra):
    """A tiny BertConfig; ``extra`` adds or overrides fields."""
    from transformers import BertConfig

    fields = dict(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=37, max_position_embeddings=128, type_vocab_size=2)
    return BertConfig(**{**fields, **extra})


def random_bert(seed: int, **config):
    """A random-weight ``BertModel`` (no pooler, eval mode) of :func:`bert_config` with ``config``."""
    import torch
    from transformers import BertModel

    torch.manual_seed(seed)
    return BertModel(bert_config(**config), add_pooling_layer=False).eval()


def write_tokenizer(folder: Path, *, lower: bool = True) -> None:
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab={t: i for i, t in enumerate(VOCAB)}, do_lower_case=lower,
                      model_max_length=128).save_pretrained(str(folder))


def build(folder: Path, kind: str, seed: int = 0) -> Path:
    """A folder holding a tiny BERT of ``kind`` (the transformers Auto class head) and its tokenizer."""
    import torch
    import transformers

    torch.manual_seed(seed)
    labels = {"token": NER_LABELS, "sequence": CLASS_LABELS, "nli": NLI_LABELS, "similarity": ["score"]}.get(kind)
    extra = {}
    if labels is not None:
        extra = {"id2label": dict(enumerate(labels)), "label2id": {label: i for i, label in enumerate(labels)}}
    cls = {"base": "BertModel", "token": "BertForTokenClassification", "sequence": "BertForSequenceClassification",
           "nli": "BertForSequenceClassification", "similarity": "BertForSequenceClassification",
           "masked_lm": "BertForMaskedLM", "qa": "BertForQuestionAnswering"}[kind]
    model = getattr(transformers, cls)(bert_config(**extra))
    model.eval()
    model.save_pretrained(str(folder))
    write_tokenizer(folder)
    return folder
