"""df.infer.run: a Python warning when a frame lacks some of a model's input fields (the closest column
names suggested), and a text model on a frame with one text column uses it."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import es_infer_nb  # noqa: F401  (registers the accessors)

EMBEDDED = "sentence-transformers__all-minilm-l6-v2"


def _caught(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_some_fields_missing_warns_with_closest_columns(eng):
    frame = pd.DataFrame({"tenure": [3.0, 30.0], "plan_name": ["basic", "pro"]})
    out, messages = _caught(lambda: frame.infer.run("churner", engine=eng, progress=False))
    (message,) = [m for m in messages if "input fields are not columns" in m]
    assert message.startswith("1 of model [churner]'s input fields are not columns of the frame: plan (closest: plan_name)")
    assert "field_map" in message
    # ES's JSON is unchanged: the rows are inferred as ES would with the field missing
    with pytest.warns(UserWarning, match="plan"):
        plain = pd.DataFrame({"tenure": [3.0, 30.0]}).infer.run("churner", engine=eng, progress=False)
    assert list(out["ml.inference.predicted_value"]) == list(plain["ml.inference.predicted_value"])


def test_field_map_or_all_fields_present_is_silent(eng):
    frame = pd.DataFrame({"tenure": [3.0], "plan_name": ["basic"]})
    _, messages = _caught(lambda: frame.infer.run("churner", engine=eng, progress=False,
                                                 field_map={"plan_name": "plan"}))
    assert messages == []
    _, messages = _caught(lambda: pd.DataFrame({"tenure": [1.0], "plan": ["pro"]}).infer.run(
        "churner", engine=eng, progress=False))
    assert messages == []


def test_no_field_at_all_keeps_the_none_warning(eng):
    _, messages = _caught(lambda: pd.DataFrame({"y": [1.0]}).infer.run("stump", engine=eng, progress=False))
    assert any(m.startswith("none of model [stump]'s input fields (x)") for m in messages)


def test_one_text_column_is_used(engine):
    frame = pd.DataFrame({"id": [1, 2], "review": ["The quick brown fox", "a lazy dog"]})
    out = frame.infer.run(EMBEDDED, engine=engine, progress=False)
    assert out["ml.inference.predicted_value"].notna().all()
    assert "ml.inference.error" not in out.columns or out["ml.inference.error"].isna().all()
    series = frame["review"].infer.run(EMBEDDED, engine=engine, progress=False)
    np.testing.assert_allclose(np.stack(out["ml.inference.predicted_value"].to_numpy()),
                               np.stack(series["ml.inference.predicted_value"].to_numpy()), atol=1e-6)


def test_several_text_columns_name_them(engine):
    frame = pd.DataFrame({"title": ["a"], "body": ["b"], "n": [1]})
    with pytest.raises(ValueError, match=r"2 text columns \(title, body\).*field_map=\{'title': 'text_field'\}"):
        frame.infer.run(EMBEDDED, engine=engine, progress=False)
    out = frame.infer.run(EMBEDDED, engine=engine, progress=False, field_map={"body": "text_field"})
    assert out["ml.inference.predicted_value"].notna().all()


def test_unknown_model_suggests_the_closest_ids_in_python_only(eng):
    from es_infer_nb.errors import ApiError
    from es_infer_nb.notebook.short_errors import one_line

    frame = pd.DataFrame({"tenure": [1.0], "plan": ["pro"]})
    with pytest.raises(ApiError) as info:
        frame.infer.run("churnr", engine=eng, progress=False)
    exc = info.value
    assert exc.status == 404 and exc.reason == "Could not find trained model [churnr]"
    assert exc.hint == "did you mean [churner]?"
    assert "did you mean [churner]?" in str(exc) and "did you mean [churner]?" in one_line(exc)
    assert exc.body()["error"]["reason"] == "Could not find trained model [churnr]"  # ES's JSON untouched
    with pytest.raises(ApiError, match=r"did you mean \[stump\]"):
        pd.Series([1.0]).infer.run("stmp", engine=eng, progress=False)
    with pytest.raises(ApiError, match=r"did you mean \[stump\]"):
        eng.infer("stum", [{"x": 1.0}])
    # the REST answer keeps Elasticsearch's exact reason
    resp = eng.request("POST", "_ml/trained_models/churnr/_infer", {"docs": [{"tenure": 1.0}]})
    assert resp.status == 404 and resp.body["error"]["reason"] == "Could not find trained model [churnr]"
    # nothing close: no hint
    with pytest.raises(ApiError) as info:
        frame.infer.run("zzzzzz", engine=eng, progress=False)
    assert info.value.hint is None and str(info.value).endswith("[zzzzzz]")
