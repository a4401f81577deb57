"""Session-wide tiny models (built once) for the NLP task tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .tiny_models import build


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_nlp")
    return {kind: build(root / kind, kind, seed=i)
            for i, kind in enumerate(("base", "token", "sequence", "nli", "similarity", "masked_lm", "qa"))}
