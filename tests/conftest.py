from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# The suite compares NLP outputs with float32 references (sentence-transformers, traced models) to
# 1e-6: its default precision is float32 wherever it runs. "auto" (the library's default, bf16 on
# AMX CPUs) is tested explicitly in tests/models/nlp/test_precision.py.
os.environ.setdefault("ES_INFER_NB_PRECISION", "fp32")


@pytest.fixture
def engine():
    from es_infer_nb import Engine

    return Engine()
