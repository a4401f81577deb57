"""One home, several engines (a server and ``es-infer request --home``, or a notebook): no lost
counts, no deleted object served; counters saved on close, NLP ones too."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

from helpers import stump_regression

import es_infer_nb
from es_infer_nb import Engine
from es_infer_nb.models.nlp import EMBEDDED_MODEL_ID

REPO = str(Path(es_infer_nb.__file__).resolve().parents[1])


def _infer_many(home: str, n: int, start) -> None:
    """A second process: its own engine on ``home``, ``n`` single-document ``_infer`` calls."""
    engine = Engine(home)
    start.wait(60)
    for i in range(n):
        r = engine.request("POST", "_ml/trained_models/m/_infer", {"docs": [{"x": float(i % 2)}]})
        assert r.status == 200, r.body
    engine.close()


def _count(engine: Engine, model_id: str) -> int:
    r = engine.request("GET", f"_ml/trained_models/{model_id}/_stats")
    assert r.status == 200, r.body
    return r.body["trained_model_stats"][0]["inference_stats"]["inference_count"]


def test_two_processes_on_one_home_lose_no_count(tmp_path):
    home = str(tmp_path)
    watcher = Engine(home)  # a third engine, open the whole time (a notebook beside the two)
    assert watcher.request("PUT", "_ml/trained_models/m", stump_regression()).ok
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_infer_many, args=(home, n, start)) for n in (100, 50)]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(240)
        assert w.exitcode == 0
    assert _count(watcher, "m") == 150  # read through: what the others saved
    assert _count(Engine(home), "m") == 150
    saved = json.loads((tmp_path / "stats" / "inference_stats.json").read_text())
    assert saved["m"]["inference_count"] == 150


def test_counts_of_two_engines_in_one_process_add_up(tmp_path):
    first, second = Engine(tmp_path), Engine(tmp_path)
    assert first.request("PUT", "_ml/trained_models/m", stump_regression()).ok
    first.infer("m", [{"x": 1.0}] * 7)
    second.infer("m", [{"x": 0.0}] * 5)  # second sees the model first PUT (read through)
    first.close()
    second.close()
    assert _count(first, "m") == 12 and _count(second, "m") == 12
    first.infer("m", [{"x": 1.0}])
    first.close()
    assert _count(Engine(tmp_path), "m") == 13


def test_a_model_deleted_by_the_cli_is_gone_in_a_running_engine(tmp_path):
    server = Engine(tmp_path)
    for name in ("m", "keep"):
        assert server.request("PUT", f"_ml/trained_models/{name}", stump_regression()).ok
    assert server.request("PUT", "_ml/trained_models/m/model_aliases/a").ok
    assert server.infer("a", [{"x": 1.0}]) == [{"predicted_value": 2.0}]  # loaded and cached here
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = "import sys; from es_infer_nb.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, "request", "DELETE", "_ml/trained_models/m", "--home",
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert server.request("POST", "_ml/trained_models/m/_infer", {"docs": [{"x": 1.0}]}).status == 404
    assert server.request("POST", "_ml/trained_models/a/_infer", {"docs": [{"x": 1.0}]}).status == 404
    assert server.request("GET", "_ml/trained_models/m").status == 404
    assert server.infer("keep", [{"x": 1.0}]) == [{"predicted_value": 2.0}]


def test_objects_deleted_or_replaced_by_another_engine(tmp_path):
    a, b = Engine(tmp_path), Engine(tmp_path)
    assert a.request("PUT", "_ml/trained_models/m", stump_regression()).ok
    assert a.request("PUT", "_ingest/pipeline/p", {"processors": [{"inference": {"model_id": "m"}}]}).ok
    assert b.infer("m", [{"x": 1.0}]) == [{"predicted_value": 2.0}]
    # replaced in a: b answers with the new definition, not the one it had loaded
    assert a.request("DELETE", "_ml/trained_models/m", params={"force": True}).ok
    assert a.request("PUT", "_ml/trained_models/m", stump_regression(left=5.0, right=6.0)).ok
    assert b.infer("m", [{"x": 1.0}]) == [{"predicted_value": 6.0}]
    assert a.request("DELETE", "_ingest/pipeline/p").ok
    assert b.request("GET", "_ingest/pipeline/p").status == 404
    assert b.request("DELETE", "_ml/trained_models/m", params={"force": True}).ok
    assert a.request("GET", "_ml/trained_models/m").status == 404


def test_embedded_minilm_counters_persist_across_engines(tmp_path):
    texts = [{"text_field": t} for t in ("a cat sat", "dogs bark", "a cat sat")]
    with Engine(tmp_path) as first:
        r = first.request("POST", f"_ml/trained_models/{EMBEDDED_MODEL_ID}/_infer", {"docs": texts})
        assert r.status == 200, r.body
        before = first.request("GET", f"_ml/trained_models/{EMBEDDED_MODEL_ID}/_stats").body
    assert before["trained_model_stats"][0]["inference_stats"]["inference_count"] == 3
    again = Engine(tmp_path)
    stats = again.request("GET", f"_ml/trained_models/{EMBEDDED_MODEL_ID}/_stats").body["trained_model_stats"][0]
    assert stats["inference_stats"]["inference_count"] == 3
    node = stats["deployment_stats"]["nodes"][0]
    assert node["inference_count"] == 3 and node["inference_cache_hit_count"] == 1
    r = again.request("POST", f"_ml/trained_models/{EMBEDDED_MODEL_ID}/_infer", {"docs": texts[:1]})
    assert r.status == 200, r.body
    again.close()
    third = Engine(tmp_path)
    stats = third.request("GET", f"_ml/trained_models/{EMBEDDED_MODEL_ID}/_stats").body["trained_model_stats"][0]
    assert stats["inference_stats"]["inference_count"] == 4
    # a stopped deployment's counters go with it (a new start counts from zero, as in ES)
    assert third.request("POST", f"_ml/trained_models/{EMBEDDED_MODEL_ID}/deployment/_stop").ok
    stats = Engine(tmp_path).request("GET", f"_ml/trained_models/{EMBEDDED_MODEL_ID}/_stats").body
    assert stats["trained_model_stats"][0]["inference_stats"]["inference_count"] == 0
