"""``timeout`` / ``master_timeout``: ES time values (``TimeValue.parseTimeValue``) on every route."""

from __future__ import annotations

import pytest

from es_infer_nb.api.request import parse_time_value
from es_infer_nb.errors import ApiError
from helpers import stump_regression


@pytest.mark.parametrize("text,seconds", [
    ("30s", 30.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), ("1d", 86400.0), ("7nanos", 7e-9),
    ("3micros", 3e-6), (" 10S ", 10.0), ("-1", -1.0), ("0", 0.0), ("000", 0.0), ("-1s", -1.0),
])
def test_valid_time_values(text, seconds):
    assert parse_time_value(text, "timeout") == pytest.approx(seconds)


@pytest.mark.parametrize("text,kind,reason", [
    ("abc", "illegal_argument_exception",
     "failed to parse setting [timeout] with value [abc] as a time value: unit is missing or unrecognized"),
    ("10", "illegal_argument_exception",
     "failed to parse setting [timeout] with value [10] as a time value: unit is missing or unrecognized"),
    ("", "illegal_argument_exception",
     "failed to parse setting [timeout] with value [] as a time value: unit is missing or unrecognized"),
    ("1.5s", "parse_exception", "failed to parse [1.5s], fractional time values are not supported"),
    ("xs", "parse_exception", "failed to parse [xs]"),
    ("-5s", "illegal_argument_exception",
     "failed to parse setting [timeout] with value [-5s] as a time value: negative durations are not supported"),
])
def test_invalid_time_values(text, kind, reason):
    with pytest.raises(ApiError) as caught:
        parse_time_value(text, "timeout")
    assert (caught.value.status, caught.value.type, caught.value.reason) == (400, kind, reason)


def test_every_route_checks_its_time_parameters(engine):
    engine.request("PUT", "_ml/trained_models/reg", stump_regression())
    ok = engine.request("POST", "_ml/trained_models/reg/_infer?timeout=5s", {"docs": [{"x": 1.0}]})
    assert ok.status == 200
    for method, path in (("GET", "_ml/trained_models?timeout=abc"), ("GET", "_ml/trained_models/_stats?timeout=abc"),
                         ("GET", "_ingest/pipeline?master_timeout=soon"), ("DELETE", "_ingest/pipeline/p?timeout=1.5s")):
        bad = engine.request(method, path)
        assert bad.status == 400, (path, bad.body)
        assert bad.body["error"]["type"] in ("illegal_argument_exception", "parse_exception")
    bad = engine.request("GET", "_ingest/pipeline?master_timeout=soon")
    assert "setting [master_timeout] with value [soon]" in bad.body["error"]["reason"]
