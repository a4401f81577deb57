"""Vocabularies of ES's tokenizer tests, shared by the modules that replay them."""

#: BertTokenizerTests.TEST_CASED_VOCAB
BERT_VOCAB = [
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
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "[UNK]",
    "day",
    "Pancake",
    "with",
    "[PAD]",
    "?",
]
