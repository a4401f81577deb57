"""OpenSearch ml-commons local models registered from a local path: TorchScript (through the graph
check) and ONNX files, the five local functions' Predict API outputs, and the path policy (only
directories the operator configured; no network URL)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
import zipfile
from typing import Any

import numpy as np
import pytest

from es_infer_nb import Engine
from es_infer_nb.services.ml_local import MODEL_PATHS_ENV

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from ml_local_models import build, mean_embedding, outputs, tokenizer  # noqa: E402

ML = "_plugins/_ml"
EMBEDDING_CONFIG = {"model_type": "bert", "embedding_dimension": 32, "framework_type": "huggingface_transformers",
                    "pooling_mode": "mean", "normalize_result": False, "all_config": '{"max_position_embeddings": 128}'}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ml_models")
    found: dict[str, Any] = {"root": root}
    for kind in ("embedding", "sparse", "similarity", "qa"):
        found[kind] = build(root, kind)
    folder = found["embedding"][0]
    with zipfile.ZipFile(root / "embedding.zip", "w") as archive:  # OpenSearch's model zip
        for name in ("model.pt", "tokenizer.json"):
            archive.write(folder / name, name)
    return found


@pytest.fixture(scope="module")
def onnx_embedding(built) -> Any:
    pytest.importorskip("onnx")  # the exporter's (the `test` extra installs both)
    pytest.importorskip("onnxruntime")
    return build(built["root"], "embedding", "ONNX")


@pytest.fixture()
def engine(built) -> Engine:
    return Engine(ml_model_paths=[built["root"]])


def ok(engine: Engine, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
    resp = engine.request(method, path, body, params)
    assert resp.status == 200, resp
    return resp.body


def error(engine: Engine, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
          ) -> tuple[int, dict[str, Any]]:
    resp = engine.request(method, path, body, params)
    assert resp.status >= 400, resp
    return resp.status, resp.body["error"]


def register(engine: Engine, url: str, function: str, fmt: str = "TORCH_SCRIPT", deploy: bool = True,
             **extra: Any) -> str:
    body = {"name": f"tiny-{function}", "version": "1.0.0", "function_name": function, "model_format": fmt,
            "model_config": EMBEDDING_CONFIG, "url": url, **extra}
    registered = ok(engine, "POST", f"{ML}/models/_register", body, {"deploy": str(deploy).lower()})
    assert set(registered) == {"task_id", "status"}
    task = ok(engine, "GET", f"{ML}/tasks/{registered['task_id']}")
    assert task["state"] == "COMPLETED" and task["function_name"] == function.upper()
    return str(task["model_id"])


def cos(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


TEXTS = ["the capital of france is paris", "my little red car"]


@pytest.mark.parametrize("source", ["file_url", "plain_path", "zip", "onnx"])
def test_text_embedding_from_a_local_path(engine, built, source, request):
    folder, module = built["embedding"]
    url = {"file_url": folder.as_uri(), "plain_path": str(folder), "zip": str(built["root"] / "embedding.zip")}.get(
        source) or str(request.getfixturevalue("onnx_embedding")[0])
    fmt = "ONNX" if source == "onnx" else "TORCH_SCRIPT"
    model_id = register(engine, url, "text_embedding", fmt)
    model = ok(engine, "GET", f"{ML}/models/{model_id}")
    assert (model["algorithm"], model["model_format"], model["model_state"], model["url"]) == (
        "TEXT_EMBEDDING", fmt, "DEPLOYED", url)
    assert model["model_config"]["embedding_dimension"] == 32 and len(model["model_content_hash_value"]) == 64
    answer = ok(engine, "POST", f"{ML}/_predict/text_embedding/{model_id}", {"text_docs": TEXTS})
    assert len(answer["inference_results"]) == 2
    for result, text in zip(answer["inference_results"], TEXTS):
        (tensor,) = result["output"]
        assert (tensor["name"], tensor["data_type"], tensor["shape"]) == ("sentence_embedding", "FLOAT32", [32])
        expected = mean_embedding(module, folder, text)
        assert cos(tensor["data"], expected) >= 0.9999
        np.testing.assert_allclose(tensor["data"], expected, rtol=1e-4, atol=1e-4)


def test_normalize_and_cls_pooling(engine, built):
    folder, module = built["embedding"]
    config = {**EMBEDDING_CONFIG, "pooling_mode": "CLS", "normalize_result": True}
    model_id = register(engine, str(folder), "TEXT_EMBEDDING", model_config=config)
    vector = ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": TEXTS[:1]})[
        "inference_results"][0]["output"][0]["data"]
    hidden = outputs(module, folder, TEXTS[0])[0]
    expected = hidden[0] / np.linalg.norm(hidden[0])
    np.testing.assert_allclose(vector, expected, rtol=1e-4, atol=1e-5)
    assert abs(np.linalg.norm(vector) - 1) < 1e-5


def test_sparse_encoding(engine, built):
    folder, module = built["sparse"]
    model_id = register(engine, folder.as_uri(), "SPARSE_ENCODING")
    answer = ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": TEXTS})
    tok = tokenizer(folder)
    for result, text in zip(answer["inference_results"], TEXTS):
        (tensor,) = result["output"]
        assert tensor["name"] == "output" and list(tensor["dataAsMap"]) == ["response"]
        (weights,) = tensor["dataAsMap"]["response"]
        row = outputs(module, folder, text)[0]
        expected = {tok.decode([int(i)], skip_special_tokens=True): float(row[i]) for i in np.flatnonzero(row)}
        expected.pop("", None)
        assert weights.keys() == expected.keys() and weights
        assert all(abs(weights[k] - expected[k]) < 1e-5 for k in expected)
    by_id = ok(engine, "POST", f"{ML}/_predict/sparse_encoding/{model_id}",
               {"text_docs": TEXTS[:1], "parameters": {"sparse_embedding_format": "TOKEN_ID"}})
    (ids,) = by_id["inference_results"][0]["output"][0]["dataAsMap"]["response"]
    (words,) = answer["inference_results"][0]["output"][0]["dataAsMap"]["response"]
    decoded = {tok.decode([int(key)], skip_special_tokens=True): weight for key, weight in ids.items()}
    decoded.pop("", None)  # special tokens: kept by id, dropped by word (as ml-commons does)
    assert decoded == pytest.approx(words, abs=1e-6) and len(ids) >= len(words)


def test_sparse_tokenize_with_idf(engine, built, tmp_path):
    folder = built["root"] / "tokenizer-only"
    folder.mkdir(exist_ok=True)
    shutil.copy(built["sparse"][0] / "tokenizer.json", folder / "tokenizer.json")
    (folder / "idf.json").write_text(json.dumps({"paris": 3.5, "capital": 2.0}))
    model_id = register(engine, str(folder), "SPARSE_TOKENIZE")
    answer = ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": ["the capital of paris, paris"]})
    assert answer == {"inference_results": [{"output": [{"dataAsMap": {"response": [
        {"the": 1.0, "capital": 2.0, "of": 1.0, "paris": 3.5, ",": 1.0}]}}]}]}


def test_text_similarity(engine, built):
    folder, module = built["similarity"]
    model_id = register(engine, str(folder), "TEXT_SIMILARITY")
    docs = ["paris is the capital", "my little red car"]
    answer = ok(engine, "POST", f"{ML}/_predict/text_similarity/{model_id}",
                {"query_text": "the capital of france", "text_docs": docs})
    assert len(answer["inference_results"]) == 2
    for result, doc in zip(answer["inference_results"], docs):
        (tensor,) = result["output"]
        assert (tensor["name"], tensor["data_type"], tensor["shape"]) == ("similarity", "FLOAT32", [1])
        expected = float(outputs(module, folder, "the capital of france", doc)[0][0])
        assert tensor["data"][0] == pytest.approx(expected, abs=1e-5)
        assert np.frombuffer(base64.b64decode(tensor["byte_buffer"]["array"]), "<f4")[0] == \
            pytest.approx(expected, abs=1e-5)
    status, err = error(engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": docs})
    assert (status, err["reason"]) == (400, "No query text was provided")


def test_text_similarity_input_is_read_as_text_similarity_ml_input(engine, built):
    # TextSimilarityMLInput(parser): "No text documents were provided" before "No query text was provided";
    # TextSimilarityInputDataSet takes any non-null query text, an empty one too
    model_id = register(engine, str(built["similarity"][0]), "TEXT_SIMILARITY")
    path = f"{ML}/_predict/text_similarity/{model_id}"
    for body, reason in (({}, "No text documents were provided"), ({"text_docs": []}, "No text documents were provided"),
                         ({"text_docs": ["a"]}, "No query text was provided")):
        status, err = error(engine, "POST", path, body)
        assert (status, err["type"], err["reason"]) == (400, "illegal_argument_exception", reason)
    for docs, token in (("a", "VALUE_STRING"), (None, "VALUE_NULL")):
        status, err = error(engine, "POST", path, {"query_text": "q", "text_docs": docs})
        assert (status, err["type"], err["reason"]) == (
            400, "parsing_exception", f"Failed to parse object: expecting token of type [START_ARRAY] but found [{token}]")
    answer = ok(engine, "POST", path, {"query_text": "", "text_docs": ["a"]})
    assert answer["inference_results"][0]["output"][0]["name"] == "similarity"


def test_question_answering(engine, built):
    folder, module = built["qa"]
    model_id = register(engine, str(folder), "QUESTION_ANSWERING")
    question, context = "where lives ana", "ana lives in new york city"
    answer = ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"question": question, "context": context})
    start_logits, end_logits = outputs(module, folder, question, context)
    start, end = sorted((int(np.argmax(start_logits)), int(np.argmax(end_logits))))
    ids = tokenizer(folder).encode(question, context).ids
    expected = tokenizer(folder).decode(ids[start:end + 1], skip_special_tokens=False)
    assert answer == {"inference_results": [{"output": [{"result": expected}]}]}
    status, err = error(engine, "POST", f"{ML}/models/{model_id}/_predict", {"question": question})
    assert (status, err["reason"]) == (400, "Context is not provided")


def test_network_urls_and_unconfigured_paths_are_refused(engine, built, tmp_path):
    folder = built["embedding"][0]
    for url in ("https://artifacts.opensearch.org/models/model.zip", "http://127.0.0.1:1/model.zip"):
        status, err = error(engine, "POST", f"{ML}/models/_register",
                            {"name": "x", "function_name": "text_embedding", "model_format": "TORCH_SCRIPT",
                             "model_config": EMBEDDING_CONFIG, "url": url})
        assert status == 400 and err["reason"].startswith("URL can't match trusted url regex")
    outside = tmp_path / "outside"
    shutil.copytree(folder, outside)
    link = built["root"] / "link-outside"
    if not link.exists():
        link.symlink_to(outside)
    for url in (str(outside), outside.as_uri(), str(link), str(built["root"] / ".." / outside.name),
                "file://otherhost" + str(folder), "/etc/passwd"):
        status, err = error(engine, "POST", f"{ML}/models/_register",
                            {"name": "x", "function_name": "text_embedding", "model_format": "TORCH_SCRIPT",
                             "model_config": EMBEDDING_CONFIG, "url": url})
        assert status == 400, url
        assert "ml_model_paths" in err["reason"] or "URL can't match" in err["reason"], err
    status, err = error(Engine(ml_model_paths=[]), "POST", f"{ML}/models/_register",
                        {"name": "x", "function_name": "text_embedding", "model_format": "TORCH_SCRIPT",
                         "model_config": EMBEDDING_CONFIG, "url": str(folder)})
    assert status == 400 and "no directory is configured" in err["reason"]
    assert not ok(engine, "POST", f"{ML}/models/_search", {})["hits"]["hits"]


def test_model_paths_from_the_environment(monkeypatch, built):
    monkeypatch.setenv(MODEL_PATHS_ENV, f"/nonexistent-dir:{built['root']}")
    engine = Engine()
    model_id = register(engine, "embedding-torch_script", "text_embedding")  # relative: under a configured dir
    assert ok(engine, "GET", f"{ML}/models/{model_id}")["model_state"] == "DEPLOYED"


def test_uploaded_torchscript_goes_through_the_graph_check(built, tmp_path):
    import torch

    class Strided(torch.nn.Module):
        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return torch.as_strided(input_ids.float(), (1, 2), (1, 1))

    folder = built["root"] / "unsafe"
    folder.mkdir(exist_ok=True)
    shutil.copy(built["embedding"][0] / "tokenizer.json", folder / "tokenizer.json")
    example = torch.tensor([[2, 5, 3]])
    torch.jit.trace(Strided(), (example, torch.ones_like(example))).save(str(folder / "model.pt"))
    checked = Engine(ml_model_paths=[built["root"]], trust_torchscript=False)
    status, err = error(checked, "POST", f"{ML}/models/_register",
                        {"name": "unsafe", "function_name": "text_embedding", "model_format": "TORCH_SCRIPT",
                         "model_config": EMBEDDING_CONFIG, "url": str(folder)}, {"deploy": "true"})
    assert status == 400 and "forbidden operations" in err["reason"] and "aten::as_strided" in err["reason"]
    trusted = Engine(ml_model_paths=[built["root"]], trust_torchscript=True)
    model_id = register(trusted, str(folder), "text_embedding")
    answer = ok(trusted, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": ["the"]})
    assert answer["inference_results"][0]["output"][0]["shape"] == [2]


def test_changed_content_and_bad_registrations(engine, built, tmp_path):
    folder = built["root"] / "changing"
    shutil.copytree(built["embedding"][0], folder, dirs_exist_ok=True)
    model_id = register(engine, str(folder), "text_embedding", deploy=False)
    digest = ok(engine, "GET", f"{ML}/models/{model_id}")["model_content_hash_value"]
    whole = (folder / "model.pt").read_bytes() + (folder / "tokenizer.json").read_bytes()
    assert digest == hashlib.sha256(whole).hexdigest()
    shutil.copy(built["similarity"][0] / "model.pt", folder / "model.pt")
    status, err = error(engine, "POST", f"{ML}/models/{model_id}/_deploy")
    assert status == 400 and err["reason"].startswith("model content changed")
    base = {"name": "x", "function_name": "text_embedding", "model_format": "TORCH_SCRIPT",
            "model_config": EMBEDDING_CONFIG, "url": str(built["embedding"][0])}
    for change, reason in [({"model_format": "PMML"}, "Wrong model format"),
                           ({"function_name": "kmeans"}, "Wrong function name [KMEANS]"),
                           ({"model_content_hash_value": "0" * 64}, "model content changed"),
                           ({"model_format": "ONNX"}, "no .onnx model file"),
                           ({"url": str(built["root"] / "missing")}, "no such file or folder")]:
        status, err = error(engine, "POST", f"{ML}/models/_register", {**base, **change})
        assert status == 400 and reason in err["reason"], (change, err)


def test_onnx_without_onnxruntime_is_a_clear_error(engine, onnx_embedding, monkeypatch):
    model_id = register(engine, str(onnx_embedding[0]), "text_embedding", "ONNX", deploy=False)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    status, err = error(engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": ["x"]})
    assert status == 400 and "pip install" in err["reason"] and "onnxruntime" in err["reason"]


def test_undeploy_forgets_the_loaded_model(engine, built):
    model_id = register(engine, str(built["embedding"][0]), "text_embedding")
    first = ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": TEXTS[:1]})
    ok(engine, "POST", f"{ML}/models/{model_id}/_undeploy")
    assert ok(engine, "GET", f"{ML}/models/{model_id}")["model_state"] == "UNDEPLOYED"
    again = ok(engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": TEXTS[:1]})  # auto-deployed
    assert again == first
    ok(engine, "POST", f"{ML}/models/{model_id}/_undeploy")
    assert ok(engine, "DELETE", f"{ML}/models/{model_id}")["result"] == "deleted"



def test_a_linked_file_outside_the_paths_and_a_bad_tokenizer_are_refused(engine, built, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"not": "a tokenizer"}')
    linked = built["root"] / "linked-tokenizer"
    linked.mkdir(exist_ok=True)
    shutil.copy(built["embedding"][0] / "model.pt", linked / "model.pt")
    if not (linked / "tokenizer.json").exists():
        (linked / "tokenizer.json").symlink_to(secret)
    body = {"name": "x", "function_name": "text_embedding", "model_format": "TORCH_SCRIPT",
            "model_config": EMBEDDING_CONFIG, "url": str(linked)}
    status, err = error(engine, "POST", f"{ML}/models/_register", body)
    assert status == 400 and "links outside the directories of ml_model_paths" in err["reason"]
    bad = built["root"] / "bad-tokenizer"
    bad.mkdir(exist_ok=True)
    shutil.copy(built["embedding"][0] / "model.pt", bad / "model.pt")
    (bad / "tokenizer.json").write_text('{"not": "a tokenizer"}')
    status, err = error(engine, "POST", f"{ML}/models/_register", {**body, "url": str(bad)}, {"deploy": "true"})
    assert status == 400 and err["reason"].endswith("is not a Hugging Face tokenizer")


def test_asymmetric_prefixes_of_a_path_model(engine, built):
    folder, module = built["embedding"]
    config = {**EMBEDDING_CONFIG, "query_prefix": "the ", "passage_prefix": "my "}
    model_id = register(engine, str(folder), "text_embedding", model_config=config)
    for kind, prefix in (("query", "the "), ("passage", "my ")):
        answer = ok(engine, "POST", f"{ML}/models/{model_id}/_predict",
                    {"text_docs": ["paris"], "parameters": {"content_type": kind}})
        vector = answer["inference_results"][0]["output"][0]["data"]
        np.testing.assert_allclose(vector, mean_embedding(module, folder, prefix + "paris"), rtol=1e-4, atol=1e-4)
    status, err = error(engine, "POST", f"{ML}/models/{model_id}/_predict", {"text_docs": ["paris"]})
    assert (status, err["type"]) == (500, "m_l_exception") and "asymmetric" in err["caused_by"]["reason"]
