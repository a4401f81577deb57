"""A damaged engine home costs only the damaged object; crashes leave nothing behind."""

from __future__ import annotations

import json
import logging
import os
import stat
import warnings

import pytest
from helpers import stump_regression

from es_infer_nb import Engine
from es_infer_nb.services.registry import endpoints
from es_infer_nb.services.secrets import SECRETS_FILE
from es_infer_nb.storage import CorruptStateWarning

ENDPOINT = {"service": "custom", "service_settings": {
    "url": "http://127.0.0.1:9/embed", "headers": {"Authorization": "Bearer ${api_key}"},
    "secret_parameters": {"api_key": "sek-123456"}, "request": '{"input": ${input}}',
    "response": {"json_parser": {"text_embeddings": "$.result.embeddings[*].embedding"}}}}
PLAIN = {"service": "custom", "service_settings": {
    "url": "http://127.0.0.1:9/embed", "request": '{"input": ${input}}',
    "response": {"json_parser": {"text_embeddings": "$.result.embeddings[*].embedding"}}}}


def _home_with_state(home) -> None:
    eng = Engine(home)
    for name in ("good", "bad"):
        assert eng.request("PUT", f"_ml/trained_models/{name}", stump_regression()).ok
    assert eng.request("PUT", "_ml/trained_models/good/model_aliases/fine").ok
    assert eng.request("PUT", "_ml/trained_models/bad/model_aliases/broken").ok
    for name in ("p_good", "p_bad"):
        assert eng.request("PUT", f"_ingest/pipeline/{name}", {"processors": [{"inference": {"model_id": "good"}}]}).ok
    assert eng.request("PUT", "_inference/text_embedding/ep", ENDPOINT).ok
    assert eng.request("PUT", "_inference/text_embedding/plain", PLAIN).ok
    eng.infer("good", [{"x": 1.0}])
    eng.close()


def _open(home, caplog) -> tuple[Engine, list[str]]:
    """A new engine on ``home``; the corrupt-state warnings it gave."""
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, "es_infer_nb"):
        warnings.simplefilter("always")
        eng = Engine(home)
        eng.request("GET", "_ml/trained_models/_stats")
        eng.request("GET", "_inference/_all")
    return eng, [str(w.message) for w in caught if issubclass(w.category, CorruptStateWarning)]


def _assert_named(relative: str, messages: list[str], caplog, home) -> None:
    assert any(f"[{relative}]" in m for m in messages), messages
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("es_infer_nb")]
    assert any(f"[{relative}]" in m for m in logged), logged
    assert all(str(home) not in m for m in messages + logged)  # relative to the home, never absolute


def _serves_the_rest(eng: Engine) -> None:
    assert eng.infer("good", [{"x": 1.0}]) == [{"predicted_value": 2.0}]
    assert eng.infer("fine", [{"x": 0.0}]) == [{"predicted_value": 1.0}]
    assert eng.request("GET", "_ingest/pipeline/p_good").ok
    assert eng.request("GET", "_inference/text_embedding/plain").ok


@pytest.mark.parametrize("relative, damage", [
    ("models/bad.json", lambda t: t[: len(t) // 2]),  # truncated
    ("pipelines/p_bad.json", lambda t: "{processors: nope"),  # invalid JSON
    ("aliases/broken.json", lambda t: ""),  # 0 bytes
    ("models/bad.json", lambda t: "\udcff garbage"),  # not UTF-8
    ("aliases/broken.json", lambda t: "[1, 2]"),  # JSON, but not an alias
])
def test_a_corrupt_object_file_costs_only_its_object(tmp_path, caplog, relative, damage):
    _home_with_state(tmp_path)
    path = tmp_path / relative
    path.write_bytes(damage(path.read_text()).encode("utf-8", "surrogateescape"))
    eng, messages = _open(tmp_path, caplog)
    _assert_named(relative, messages, caplog, tmp_path)
    assert (tmp_path / (relative + ".corrupt")).is_file() and not path.exists()
    _serves_the_rest(eng)
    if relative.startswith("models/"):
        assert eng.request("GET", "_ml/trained_models/bad").status == 404
    if relative.startswith("pipelines/"):
        assert eng.request("GET", "_ingest/pipeline/p_bad").status == 404


def test_garbage_stats_start_fresh(tmp_path, caplog):
    _home_with_state(tmp_path)
    (tmp_path / "stats" / "inference_stats.json").write_text('{"good": {"inference_count": 3')
    eng, messages = _open(tmp_path, caplog)
    _assert_named("stats/inference_stats.json", messages, caplog, tmp_path)
    assert (tmp_path / "stats" / "inference_stats.json.corrupt").is_file()
    _serves_the_rest(eng)
    eng.close()
    assert json.loads((tmp_path / "stats" / "inference_stats.json").read_text())["good"]["inference_count"] == 2


def test_wrongly_shaped_stats_entries_are_dropped_not_fatal(tmp_path):
    _home_with_state(tmp_path)
    (tmp_path / "stats" / "inference_stats.json").write_text(
        '{"good": {"inference_count": "many"}, "bad": {"inference_count": 4}}')
    eng = Engine(tmp_path)
    stats = {s["model_id"]: s for s in eng.request("GET", "_ml/trained_models/_stats").body["trained_model_stats"]}
    assert stats["good"]["inference_stats"]["inference_count"] == 0
    assert stats["bad"]["inference_stats"]["inference_count"] == 4


def test_garbage_secrets_file_costs_the_secrets_only(tmp_path, caplog):
    _home_with_state(tmp_path)
    (tmp_path / SECRETS_FILE).write_bytes(b"\x00\x01 not json")
    eng, messages = _open(tmp_path, caplog)
    _assert_named(SECRETS_FILE, messages, caplog, tmp_path)
    assert (tmp_path / (SECRETS_FILE + ".corrupt")).is_file()
    _serves_the_rest(eng)
    # the endpoint whose secret was lost answers its own 400 (the placeholder has no value), not a 500
    assert eng.request("GET", "_inference/text_embedding/ep").status == 400
    listed = eng.request("GET", "_inference/_all")
    assert listed.status == 200 and [e["inference_id"] for e in listed.body["endpoints"]] == ["plain"]
    # deleted and PUT again, it has its secret again, in a fresh 0600 file
    assert eng.request("DELETE", "_inference/text_embedding/ep").ok
    assert eng.request("PUT", "_inference/text_embedding/ep", ENDPOINT).ok
    assert endpoints(eng).get("ep").secrets["api_key"].reveal() == "sek-123456"
    assert stat.S_IMODE(os.stat(tmp_path / SECRETS_FILE).st_mode) == 0o600


def test_garbage_deployment_file(tmp_path, caplog):
    _home_with_state(tmp_path)
    (tmp_path / "deployments").mkdir()
    (tmp_path / "deployments" / "d1.json").write_text('{"model_id": ')
    (tmp_path / "deployments" / "d2.json").write_text('{"model_id": "good", "deployment_id": "d2", "queue_capacity": "x"}')
    eng, messages = _open(tmp_path, caplog)
    _assert_named("deployments/d1.json", messages, caplog, tmp_path)
    assert (tmp_path / "deployments" / "d1.json.corrupt").is_file()
    r = eng.request("GET", "_ml/trained_models/_stats")
    assert r.status == 200, r.body
    assert eng.request("GET", "_ml/trained_models/d1/_stats").status == 404
    _serves_the_rest(eng)


def test_garbage_cluster_uuid_is_replaced(tmp_path, caplog):
    from es_infer_nb.server.info import cluster_uuid

    _home_with_state(tmp_path)
    (tmp_path / "cluster_uuid").write_bytes(b"\xff\xfe")
    eng, _ = _open(tmp_path, caplog)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, "es_infer_nb"):
        warnings.simplefilter("always")
        uuid = cluster_uuid(eng)
    _assert_named("cluster_uuid", [str(w.message) for w in caught], caplog, tmp_path)
    assert (tmp_path / "cluster_uuid.corrupt").is_file()
    assert len(uuid) == 22 and (tmp_path / "cluster_uuid").read_text() == uuid
    assert cluster_uuid(Engine(tmp_path)) == uuid
    _serves_the_rest(eng)


def test_an_earlier_corrupt_file_is_kept(tmp_path, caplog):
    _home_with_state(tmp_path)
    bad = tmp_path / "models" / "bad.json"
    (tmp_path / "models" / "bad.json.corrupt").write_text("first")
    bad.write_text("second")
    _, messages = _open(tmp_path, caplog)
    assert (tmp_path / "models" / "bad.json.corrupt").read_text() == "first"
    assert (tmp_path / "models" / "bad.json.corrupt.1").read_text() == "second"
    assert any("models/bad.json.corrupt.1" in m for m in messages)


def test_crash_leftovers_are_cleaned_at_start(tmp_path):
    _home_with_state(tmp_path)
    orphans = [tmp_path / "models" / ".tmp-abc123.json", tmp_path / ".tmp-secrets-xyz",
               tmp_path / "stats" / ".tmp-q.json"]
    for path in orphans:
        path.write_text('{"half": ')
    # a crash between the secret's write and its config's: the secret of an endpoint that does not exist
    secrets = json.loads((tmp_path / SECRETS_FILE).read_text())
    secrets["gone"] = {"api_key": "orphan-secret-value"}
    (tmp_path / SECRETS_FILE).write_text(json.dumps(secrets))
    eng = Engine(tmp_path)
    assert not [p for p in orphans if p.exists()]
    assert not list(tmp_path.rglob(".tmp-*"))
    kept = json.loads((tmp_path / SECRETS_FILE).read_text())
    assert set(kept) == {"ep"} and "orphan-secret-value" not in (tmp_path / SECRETS_FILE).read_text()
    assert stat.S_IMODE(os.stat(tmp_path / SECRETS_FILE).st_mode) == 0o600
    _serves_the_rest(eng)


def test_counters_are_saved_periodically_without_a_flush(tmp_path):
    eng = Engine(tmp_path)
    eng.stats.SAVE_INTERVAL_S = 0.05
    eng.request("PUT", "_ml/trained_models/m", stump_regression())
    eng.infer("m", [{"x": 1.0}, {"x": 0.0}, {"x": 2.0}])
    import time

    deadline = time.monotonic() + 10
    path = tmp_path / "stats" / "inference_stats.json"
    while time.monotonic() < deadline:
        if path.is_file() and json.loads(path.read_text()).get("m", {}).get("inference_count") == 3:
            break
        time.sleep(0.02)
    assert json.loads(path.read_text())["m"]["inference_count"] == 3


def test_a_writer_stuck_holding_the_home_is_named(tmp_path, monkeypatch):
    import fcntl

    from es_infer_nb import storage

    eng = Engine(tmp_path)
    monkeypatch.setattr(storage, "LOCK_TIMEOUT_S", 0.2)
    with open(tmp_path / ".lock", "r+b") as other:  # another open file: as another process would hold it
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(storage.HomeLockTimeout, match=rf"locked by process \[{os.getpid()}\]"):
            eng.pipelines.put("p", {"processors": []})
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    eng.pipelines.put("p", {"processors": []})
    assert Engine(tmp_path).request("GET", "_ingest/pipeline/p").ok
