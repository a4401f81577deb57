"""``%infer export ID [--console]``: the cluster-ready PUT of a model, pipeline or endpoint."""

from __future__ import annotations

import json

import pytest
from helpers import ipython_shell, stump_regression
from IPython.core.error import UsageError

from es_infer_nb import Engine, set_default_engine


@pytest.fixture(scope="module")
def shell():
    return ipython_shell()


@pytest.fixture
def ip(shell):
    if "infer" not in shell.magics_manager.magics["cell"]:
        shell.run_line_magic("load_ext", "es_infer_nb")
    engine = Engine()
    engine.request("PUT", "_ml/trained_models/stump", stump_regression())
    engine.request("PUT", "_ingest/pipeline/score", {"processors": [{"inference": {"model_id": "stump"}}]})
    engine.request("PUT", "_inference/text_embedding/oa", {"service": "openai", "service_settings": {
        "api_key": "sk-SECRET", "model_id": "m", "url": "http://127.0.0.1:9/v1/embeddings"}})
    set_default_engine(engine)
    yield shell
    set_default_engine(None)
    shell.user_ns.pop("body", None)


def test_export_json_and_out(ip):
    body = ip.run_line_magic("infer", "export stump")
    assert body["model_type"] == "tree_ensemble" and "create_time" not in body and "model_id" not in body
    shown = ip.display_formatter.format(body)[0]["text/plain"]
    assert json.loads(shown) == body  # shown as JSON, ready to paste
    assert ip.run_line_magic("infer", "export score --out body -q") is None
    assert ip.user_ns["body"] == {"processors": [{"inference": {"model_id": "stump"}}]}


def test_export_console_snippet_is_shown_as_text(ip):
    snippet = ip.run_line_magic("infer", "export oa --console")
    text = ip.display_formatter.format(snippet)[0]["text/plain"]
    assert text == str(snippet)  # shown as it is (no quotes, no escaped newlines), ready to copy
    assert "PUT _inference/text_embedding/oa\n{" in text and '"api_key": "<api_key>"' in text
    assert "SECRET" not in text
    body = text.split("PUT _inference/text_embedding/oa\n", 1)[1]
    assert json.loads(body)["service"] == "openai"


def test_export_errors_are_one_line(ip):
    with pytest.raises(UsageError, match="404 resource_not_found_exception"):
        ip.run_line_magic("infer", "export nope")
    with pytest.raises(UsageError, match="one model, pipeline or endpoint id"):
        ip.run_line_magic("infer", "export")
    with pytest.raises(UsageError, match="go with 'export ID'"):
        ip.run_line_magic("infer", "models --console")
