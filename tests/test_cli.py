"""``es-infer``: every subcommand in-process, plus the real console script once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from es_infer_nb.cli import format_table, main
from helpers import stump_regression

MODEL_ID = "sentence-transformers__all-minilm-l6-v2"
FIELD = "ml.inference.predicted_value"


@pytest.fixture(autouse=True)
def _no_env_home(monkeypatch):
    monkeypatch.delenv("ES_INFER_NB_HOME", raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def reference(texts: list[str]) -> np.ndarray:
    from es_infer_nb.models.nlp.embedded import get_model

    return get_model("cpu").embed(texts)


# -- embed ------------------------------------------------------------------------------------


def test_embed_prints_vectors_and_similarity(capsys):
    texts = ["The quick brown fox", "A fast auburn fox", "Stock markets fell sharply"]
    code, out, err = run(capsys, "embed", *texts)
    assert code == 0, err
    assert MODEL_ID in out and "384 dims" in out
    for i, text in enumerate(texts, 1):
        assert f'[{i}] "{text}"' in out
    first5 = reference(texts[:1])[0][:5]
    assert ", ".join(f"{x:+.4f}" for x in first5) in out
    assert "cosine similarity" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("[") and "dims" not in line and '"' not in line]
    sims = np.array([[float(x) for x in r[1:]] for r in rows])
    assert sims.shape == (3, 3)
    np.testing.assert_allclose(np.diag(sims), 1.0, atol=1e-3)
    assert sims[0, 1] > sims[0, 2]  # the two foxes are closer than fox / stocks
    assert "embedded 3 texts" in err


def test_embed_single_text_has_no_matrix(capsys):
    code, out, _ = run(capsys, "embed", "hello world", "--quiet")
    assert code == 0
    assert "cosine similarity" not in out and '[1] "hello world"' in out


def test_embed_txt_to_jsonl(capsys, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("first line\n\nsecond line, a little longer than the first\nthird\n", encoding="utf-8")
    dest = tmp_path / "out.jsonl"
    code, out, err = run(capsys, "embed", "--input", str(src), "--output", str(dest), "--batch-size", "2")
    assert code == 0, err
    assert out == ""
    rows = [json.loads(line) for line in dest.read_text(encoding="utf-8").splitlines()]
    texts = ["first line", "second line, a little longer than the first", "third"]
    assert [r["text"] for r in rows] == texts
    assert all(r["ml.inference.model_id"] == MODEL_ID for r in rows)
    got = np.array([r[FIELD] for r in rows], dtype=np.float32)
    np.testing.assert_allclose(got, reference(texts), atol=1e-6)


def test_embed_jsonl_field_to_parquet(capsys, tmp_path):
    import pandas as pd

    src = tmp_path / "docs.jsonl"
    docs = [{"id": 1, "body": "hello world"}, {"id": 2, "body": "good morning"}, {"id": 3, "meta": {"title": "x"}, "body": "third"}]
    src.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    dest = tmp_path / "out.parquet"
    code, _, err = run(capsys, "embed", "extra text", "--input", str(src), "--field", "body", "--output", str(dest), "-q")
    assert code == 0, err
    df = pd.read_parquet(dest)
    texts = ["extra text", "hello world", "good morning", "third"]
    assert list(df.columns) == ["text", FIELD, "ml.inference.model_id"]
    assert df["text"].tolist() == texts
    got = np.stack(df[FIELD].to_numpy())
    assert got.shape == (4, 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference(texts), atol=1e-6)


def test_embed_csv_and_dotted_jsonl_field(capsys, tmp_path):
    csv_file = tmp_path / "in.csv"
    csv_file.write_text('id,text\n1,"hello, world"\n2,second\n', encoding="utf-8")
    code, out, err = run(capsys, "embed", "--input", str(csv_file), "-q")
    assert code == 0, err
    assert '"hello, world"' in out and '"second"' in out

    nested = tmp_path / "nested.jsonl"
    nested.write_text(json.dumps({"doc": {"title": "nested title"}}) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "embed", "--input", str(nested), "--field", "doc.title", "-q")
    assert code == 0, err
    assert '"nested title"' in out


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda p: ["embed"], "nothing to embed"),
        (lambda p: ["embed", "--input", str(p / "missing.txt")], "does not exist"),
        (lambda p: ["embed", "--input", str(p / "in.xml")], "must end in"),
        (lambda p: ["embed", "x", "--output", str(p / "out.csv")], "must end in .jsonl or .parquet"),
        (lambda p: ["embed", "x", "--output", str(p / "nowhere" / "out.jsonl")], "does not exist"),
        (lambda p: ["embed", "--input", str(p / "docs.jsonl"), "--field", "nope"], "unknown field [nope]"),
        (lambda p: ["embed", "--input", str(p / "docs.csv"), "--field", "nope"], "unknown field [nope]"),
        (lambda p: ["embed", "--input", str(p / "bad.jsonl")], "not valid JSON"),
        (lambda p: ["embed", "x", "--field", "body"], "--field needs --input"),
        (lambda p: ["embed", "x", "--batch-size", "0"], "--batch-size"),
        (lambda p: ["embed", "x", "--device", "tpu"], "invalid choice"),
        (lambda p: ["nosuchcommand"], "invalid choice"),
        (lambda p: [], ""),
    ],
)
def test_embed_usage_errors_exit_2(capsys, tmp_path, make_args, message):
    (tmp_path / "in.xml").write_text("<x/>")
    (tmp_path / "docs.jsonl").write_text('{"body": "a"}\n')
    (tmp_path / "docs.csv").write_text("body\na\n")
    (tmp_path / "bad.jsonl").write_text('{"text": "a"}\n{not json\n')
    code, out, err = run(capsys, *make_args(tmp_path))
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    if message:
        assert len(err.strip().splitlines()) == 1


def test_embed_cuda_without_cuda_exit_2(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    code, _, err = run(capsys, "embed", "x", "--device", "cuda")
    assert code == 2 and "CUDA is not available" in err


def test_help_exits_0(capsys):
    code, out, _ = run(capsys, "embed", "--help")
    assert code == 0 and "--batch-size" in out


# -- request / models / stats -----------------------------------------------------------------


def test_request_put_then_get_with_home(capsys, tmp_path):
    body_file = tmp_path / "model.json"
    model = stump_regression()
    model["description"] = "a stump"
    body_file.write_text(json.dumps(model), encoding="utf-8")
    home = tmp_path / "home"

    code, out, err = run(capsys, "request", "PUT", "_ml/trained_models/stump", f"@{body_file}", "--home", str(home))
    assert code == 0, out + err
    assert json.loads(out)["model_id"] == "stump"

    # a new process-equivalent engine on the same home sees the model
    code, out, err = run(capsys, "request", "get", "_ml/trained_models/stump", "--home", str(home))
    assert code == 0, out + err
    answer = json.loads(out)
    assert answer["count"] == 1
    assert answer["trained_model_configs"][0]["model_id"] == "stump"
    assert out.startswith("{\n  ")  # pretty-printed

    code, out, err = run(capsys, "request", "POST", "_ml/trained_models/stump/_infer", '{"docs": [{"x": 1.0}]}', "--home", str(home))
    assert code == 0, out + err
    assert json.loads(out)["inference_results"][0]["predicted_value"] == 2.0


def test_request_uses_env_home(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ES_INFER_NB_HOME", str(tmp_path))
    code, out, err = run(capsys, "request", "PUT", "_ml/trained_models/envmodel", json.dumps(stump_regression()))
    assert code == 0, out + err
    code, out, _ = run(capsys, "request", "GET", "_ml/trained_models/envmodel")
    assert code == 0 and json.loads(out)["count"] == 1


def test_request_api_errors_exit_1(capsys, tmp_path):
    code, out, err = run(capsys, "request", "GET", "_ml/trained_models/missing", "--home", str(tmp_path))
    assert code == 1
    assert json.loads(out)["status"] == 404
    assert "resource_not_found_exception" in err and len(err.strip().splitlines()) == 1

    code, out, err = run(capsys, "request", "PUT", "_ml/trained_models/broken", "{not json", "--home", str(tmp_path))
    assert code == 1
    assert json.loads(out)["status"] == 400
    assert "Traceback" not in err


def test_request_missing_body_file_exit_2(capsys, tmp_path):
    code, out, err = run(capsys, "request", "PUT", "_ml/trained_models/x", f"@{tmp_path / 'nope.json'}")
    assert code == 2 and out == ""
    assert "does not exist" in err


def test_models_and_stats_tables(capsys, tmp_path):
    home = str(tmp_path)
    model = stump_regression()
    model["description"] = "a stump"
    assert run(capsys, "request", "PUT", "_ml/trained_models/stump", json.dumps(model), "--home", home)[0] == 0
    assert run(capsys, "request", "POST", "_ml/trained_models/stump/_infer", '{"docs": [{"x": 0}, {"y": 1}]}', "--home", home)[0] == 0

    code, out, err = run(capsys, "models", "--home", home)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["model_id", "model_type", "inference_config", "description"]
    stump = next(line for line in lines if line.startswith("stump"))
    assert stump.split()[:3] == ["stump", "tree_ensemble", "regression"] and "a stump" in stump

    code, out, err = run(capsys, "stats", "--home", home)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["model_id", "inference_count", "failure_count", "missing_all_fields_count", "pipeline_count",
                                "deployment", "avg_ms"]
    assert any(line.startswith("stump") for line in lines)

    code, out, err = run(capsys, "stats", "stump", "--home", home)
    assert code == 0, err
    row = next(line.split() for line in out.splitlines() if line.startswith("stump"))
    assert row == ["stump", "2", "0", "1", "0", "-", "-"]  # {"y": 1} misses every input field; a tree model is not deployed

    code, out, err = run(capsys, "stats", "nope", "--home", home)
    assert code == 1 and "resource_not_found_exception" in err and "Traceback" not in err
    code, out, err = run(capsys, "models", "nope*,missing", "--home", home)
    assert code == 1 and err.startswith("es-infer: error: [404]")


def test_format_table_aligns_numbers_right():
    text = format_table(["name", "n"], [["a", 1], ["bbb", 100]])
    assert text.splitlines() == ["name    n", "----  ---", "a       1", "bbb   100"]
    text = format_table(["name", "ms"], [["a", None], ["b", 12.345]])
    assert text.splitlines() == ["name    ms", "----  ----", "a        -", "b     12.3"]


def test_stats_of_a_deployed_model_shows_state_and_latency(capsys, tmp_path):
    home = str(tmp_path)
    body = json.dumps({"docs": [{"text_field": "hello world"}]})
    code, out, err = run(capsys, "request", "POST", f"_ml/trained_models/{MODEL_ID}/_infer", body, "--home", home)
    assert code == 0, err
    assert len(json.loads(out)["inference_results"][0]["predicted_value"]) == 384
    # the bundled model deploys on first use, in this process's engine; a new engine on the home
    # starts it again when asked
    code, out, err = run(capsys, "stats", MODEL_ID, "--home", home)
    assert code == 0, err
    row = next(line.split() for line in out.splitlines() if line.startswith(MODEL_ID))
    assert row[0] == MODEL_ID and row[1].isdigit() and row[4] == "0"


def test_request_body_from_stdin(capsys, tmp_path, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(stump_regression())))
    code, out, err = run(capsys, "request", "PUT", "_ml/trained_models/from-stdin", "-", "--home", str(tmp_path))
    assert code == 0, err
    assert json.loads(out)["model_id"] == "from-stdin"
    code, out, err = run(capsys, "request", "HEAD", "_ml/trained_models/from-stdin", "--home", str(tmp_path))
    assert (code, out, err) == (0, "", "")  # HEAD: a status, no body


def test_subcommand_table_is_extensible(capsys):
    import argparse

    from es_infer_nb import cli

    def add_hello(sub):
        p = sub.add_parser("hello", help="say hello")
        p.add_argument("name")
        p.set_defaults(func=lambda args: print(f"hello {args.name}") or 0)

    parser = cli.build_parser({**cli.SUBCOMMANDS, "hello": add_hello})
    args = parser.parse_args(["hello", "world"])
    assert args.func(args) == 0 and capsys.readouterr().out == "hello world\n"
    lazy = cli.build_parser({"models": "es_infer_nb.cli:_add_models"})  # "module:function", imported when built
    assert lazy.parse_args(["models"]).func is cli.cmd_models
    assert isinstance(parser, argparse.ArgumentParser)
    with pytest.raises(ValueError, match="module:function"):
        cli.build_parser({"bad": "no-colon"})
    help_text = cli.build_parser().format_help()
    for name in cli.SUBCOMMANDS:
        assert name in help_text


# -- the real console script --------------------------------------------------------------------


def test_console_script_embed():
    script = Path(sys.executable).parent / "es-infer"
    if not script.exists():
        pytest.skip(f"{script} is not installed (pip install -e .)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("ES_INFER_NB_HOME", None)
    proc = subprocess.run([str(script), "embed", "hello world"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert '[1] "hello world"' in proc.stdout
    assert "384 dims" in proc.stdout and MODEL_ID in proc.stdout
    assert "Traceback" not in proc.stderr
