"""run_files / es-infer run: Parquet, CSV and JSONL in batches, same rows as the in-memory path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import es_infer_nb
from es_infer_nb import ApiError, Engine
from es_infer_nb.cli import main
from es_infer_nb.files import FilesInterrupted

from helpers import churn_model, stump_regression

PIPELINE = {"processors": [{"inference": {"model_id": "reg", "tag": "r"}},
                           {"inference": {"model_id": "churn-m", "target_field": "churn",
                                          "inference_config": {"classification": {"num_top_classes": 2}}}}]}


def _engine(home: Path | None = None) -> Engine:
    engine = Engine(home)
    engine.request("PUT", "_ml/trained_models/reg", stump_regression()).raise_for_status()
    engine.request("PUT", "_ml/trained_models/churn-m", churn_model()).raise_for_status()
    engine.request("PUT", "_ingest/pipeline/score", PIPELINE).raise_for_status()
    return engine


def _frame(n: int = 103) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.random(n)
    x[::10] = np.nan  # rows whose model input is missing: a warning in some batches only
    return pd.DataFrame({"x": x, "tenure": rng.integers(0, 30, n).astype(float),
                         "plan": rng.choice(["basic", "pro"], n)})


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pd.read_json(path, lines=True)


@pytest.mark.parametrize("src", ["in.parquet", "in.csv", "in.jsonl"])
@pytest.mark.parametrize("dst", ["out.parquet", "out.csv", "out.jsonl"])
def test_model_over_files_equals_in_memory(tmp_path, src, dst):
    engine = _engine()
    frame = _frame()
    summary = es_infer_nb.run_files(_write(frame, tmp_path / src), tmp_path / dst, model="reg", engine=engine,
                                    batch_size=10, progress=False)
    assert (summary.rows, summary.batches) == (103, 11)
    got = _read(tmp_path / dst)
    expected = frame.infer.run("reg", engine=_engine())
    assert len(got) == 103
    np.testing.assert_allclose(got["ml.inference.predicted_value"].to_numpy(dtype=float),
                               expected["ml.inference.predicted_value"].to_numpy(dtype=float))
    assert (got["ml.inference.warning"].notna() == frame["x"].isna()).all()
    stats = engine.request("GET", "_ml/trained_models/reg/_stats").body["trained_model_stats"][0]
    assert stats["inference_stats"]["inference_count"] == 103


def test_pipeline_parquet_row_groups_and_nested_columns(tmp_path):
    engine = _engine()
    frame = _frame()
    es_infer_nb.run_files(_write(frame, tmp_path / "in.parquet"), tmp_path / "out.parquet", pipeline="score",
                          engine=engine, batch_size=25, progress=False)
    fh = pq.ParquetFile(tmp_path / "out.parquet")
    assert fh.metadata.num_row_groups == 5  # one per batch, written as it finished
    got = pd.read_parquet(tmp_path / "out.parquet", dtype_backend="pyarrow")
    expected = frame.infer.pipeline(PIPELINE, engine=_engine())
    for name in ("ml.inference.r.predicted_value", "churn.predicted_value", "churn.prediction_probability"):
        assert got[name].astype(object).where(got[name].notna(), None).tolist() == \
            expected[name].astype(object).where(expected[name].notna(), None).tolist()
    assert got["churn.top_classes"].tolist() == expected["churn.top_classes"].tolist()
    answer = engine.request("GET", "_ml/trained_models/reg/_stats").body["trained_model_stats"][0]
    assert answer["ingest"]["pipelines"]["score"]["count"] == 103


def test_jsonl_nested_documents_become_fields(tmp_path):
    engine = _engine()
    src = tmp_path / "docs.jsonl"
    src.write_text("\n".join(json.dumps({"doc": {"x": v}}) for v in (0.2, 0.8, 0.9)) + "\n", encoding="utf-8")
    es_infer_nb.run_files(src, tmp_path / "out.jsonl", model="reg", engine=engine, progress=False,
                          field_map={"doc.x": "x"})
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["ml.inference.predicted_value"] for r in rows] == [1.0, 2.0, 2.0]
    assert rows[0]["doc.x"] == 0.2


def test_folder_of_files_in_order(tmp_path):
    engine = _engine()
    frame = _frame(30)
    folder = tmp_path / "parts"
    folder.mkdir()
    _write(frame.iloc[:10], folder / "a.parquet")
    _write(frame.iloc[10:], folder / "b.csv")
    summary = es_infer_nb.run_files(folder, tmp_path / "out.parquet", model="reg", engine=engine, progress=False)
    assert summary.rows == 30
    got = pd.read_parquet(tmp_path / "out.parquet")
    np.testing.assert_allclose(got["x"].to_numpy(), frame["x"].to_numpy())


def test_interrupt_keeps_finished_batches(tmp_path, monkeypatch):
    from es_infer_nb.files import run as run_module

    engine = _engine()
    calls = {"n": 0}
    original = run_module._apply

    def stop_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(run_module, "_apply", stop_on_third)
    with pytest.raises(FilesInterrupted) as err:
        es_infer_nb.run_files(_write(_frame(), tmp_path / "in.parquet"), tmp_path / "out.parquet", model="reg",
                              engine=engine, batch_size=20, progress=False)
    assert err.value.rows_done == 40
    assert "holds them" in str(err.value)
    assert pd.read_parquet(tmp_path / "out.parquet").shape[0] == 40  # a valid file with the finished batches


def test_bad_arguments_fail_before_any_output(tmp_path):
    engine = _engine()
    src = _write(_frame(5), tmp_path / "in.parquet")
    with pytest.raises(ApiError) as err:
        es_infer_nb.run_files(src, tmp_path / "o.parquet", model="nope", engine=engine)
    assert err.value.status == 404
    with pytest.raises(ApiError):
        es_infer_nb.run_files(src, tmp_path / "o.parquet", pipeline="missing", engine=engine)
    with pytest.raises(ValueError, match="exactly one"):
        es_infer_nb.run_files(src, tmp_path / "o.parquet", engine=engine)
    with pytest.raises(ValueError, match="unknown file type"):
        es_infer_nb.run_files(src, tmp_path / "o.xlsx", model="reg", engine=engine)
    with pytest.raises(FileNotFoundError):
        es_infer_nb.run_files(tmp_path / "none.csv", tmp_path / "o.parquet", model="reg", engine=engine)
    assert not (tmp_path / "o.parquet").exists()


def test_cli_run_model_and_pipeline_file(tmp_path, capsys):
    home = tmp_path / "home"
    _engine(home).stats.flush()
    src = _write(_frame(), tmp_path / "in.csv")
    assert main(["run", "--model", "reg", "--input", str(src), "--output", str(tmp_path / "o.parquet"),
                 "--home", str(home), "--batch-size", "50", "--quiet"]) == 0
    assert len(pd.read_parquet(tmp_path / "o.parquet")) == 103
    body = tmp_path / "p.json"
    body.write_text(json.dumps(PIPELINE), encoding="utf-8")
    assert main(["run", "--pipeline", str(body), "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
                 "--home", str(home)]) == 0
    assert "103 rows in 1 batches" in capsys.readouterr().err
    assert main(["run", "--model", "nope", "--input", str(src), "--output", str(tmp_path / "x.csv"),
                 "--home", str(home)]) == 1
    assert "Could not find trained model [nope]" in capsys.readouterr().err
    assert main(["run", "--pipeline", "nope", "--input", str(src), "--output", str(tmp_path / "x.csv")]) == 2


def test_cli_run_subprocess_is_listed(tmp_path):
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, "-m", "es_infer_nb.cli", "run", "--help"], capture_output=True, text=True,
                          env=env, check=False)
    assert proc.returncode == 0 and "--batch-size" in proc.stdout


# -- a text model on files with one text column (df.infer.run's rule, decided once) --------------------------------

EMBEDDED = "sentence-transformers__all-minilm-l6-v2"


def test_text_model_reads_the_one_text_column_of_every_batch(tmp_path):
    # batch 1: only [review] holds text; batch 2: only [note] does. The first batch decides: [review] for all.
    frame = pd.DataFrame({"review": ["the quick brown fox", "a lazy dog", None, None],
                          "note": [None, None, "not read", "nor this"], "n": [1, 2, 3, 4]})
    src = tmp_path / "in.parquet"
    frame.to_parquet(src, index=False)
    engine = Engine()
    out = es_infer_nb.run_files(src, tmp_path / "o.parquet", model=EMBEDDED, engine=engine, batch_size=2,
                                progress=False)
    assert out.batches == 2
    got = pd.read_parquet(tmp_path / "o.parquet")
    expected = frame.infer.run(EMBEDDED, engine=engine, progress=False, field_map={"review": "text_field"})
    vectors = got["ml.inference.predicted_value"]
    assert vectors[:2].notna().all() and vectors[2:].isna().all()  # rows 3-4 have no review: never [note]
    np.testing.assert_allclose(np.stack(vectors[:2].to_numpy()),
                               np.stack(expected["ml.inference.predicted_value"][:2].to_numpy()), atol=1e-6)


def test_text_model_on_files_with_several_text_columns_names_them(tmp_path, capsys):
    src = _write(pd.DataFrame({"title": ["a", "b"], "body": ["c", "d"]}), tmp_path / "in.csv")
    with pytest.raises(ValueError, match=r"2 text columns \(title, body\).*field_map=\{'title': 'text_field'\}"):
        es_infer_nb.run_files(src, tmp_path / "o.parquet", model=EMBEDDED, engine=Engine(), progress=False)
    assert not (tmp_path / "o.parquet").exists()  # decided before any output is written
    home = tmp_path / "home"
    assert main(["run", "--model", EMBEDDED, "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
                 "--home", str(home), "--quiet"]) == 2
    assert "2 text columns (title, body)" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()
    single = _write(pd.DataFrame({"title": ["a red car", None], "n": [1, 2]}), tmp_path / "one.jsonl")
    assert main(["run", "--model", EMBEDDED, "--input", str(single), "--output", str(tmp_path / "o.parquet"),
                 "--home", str(home), "--quiet"]) == 0
    got = pd.read_parquet(tmp_path / "o.parquet")
    assert got["ml.inference.predicted_value"].notna().tolist() == [True, False]
