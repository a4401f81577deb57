"""``df.infer.explain / top_classes / stats``: what they hand to ``es_infer_nb.widgets`` (a recording stand-in
here; the widgets themselves are tested with the widgets package)."""

from __future__ import annotations

import sys
import types

import pandas as pd
import pytest

from es_infer_nb import ApiError


@pytest.fixture
def widgets(monkeypatch):
    calls = []
    module = types.ModuleType("es_infer_nb.widgets")

    def record(name):
        def widget(*args, **kwargs):
            calls.append((name, args, kwargs))
            return f"<{name}>"

        return widget

    for name in ("feature_importance", "top_classes", "model_stats"):
        setattr(module, name, record(name))
    monkeypatch.setitem(sys.modules, "es_infer_nb.widgets", module)
    return calls


def _churn():
    return pd.DataFrame({"tenure": [3, 20, 7], "plan": ["pro", "basic", "basic"]}, index=["a", "b", "c"])


def test_explain_runs_the_model_on_the_row_when_the_frame_has_no_importance(eng, widgets):
    df = _churn()
    assert df.infer.explain("b", "churner", engine=eng) == "<feature_importance>"
    (name, (result,), kwargs) = widgets[-1]
    assert name == "feature_importance" and kwargs == {"row": "b", "engine": eng}
    assert list(result.index) == ["b"]  # only that row ran
    importance = result.loc["b", "ml.inference.feature_importance"]
    assert {f["feature_name"] for f in importance} == {"tenure", "plan"}  # every input field by default
    assert result.loc["b", "ml.inference.predicted_value"] == "stay"
    stats = eng.request("GET", "_ml/trained_models/churner/_stats").body["trained_model_stats"][0]
    assert stats["inference_stats"]["inference_count"] == 1


def test_explain_uses_the_model_id_column_and_existing_importance(eng, widgets):
    scored = _churn().infer.run("stump", engine=eng, field_map={"tenure": "x"})
    # the model comes from the ml.inference.model_id column
    scored.infer.explain("c", engine=eng, field_map={"tenure": "x"}, num_top_feature_importance_values=1)
    (_, (result,), _) = widgets[-1]
    assert len(result.loc["c", "ml.inference.feature_importance"]) == 1
    assert "tenure" in result.columns and result.loc["c", "ml.inference.predicted_value"] == 2.0
    explained = _churn().infer.run("churner", engine=eng,
                                   inference_config={"classification": {"num_top_feature_importance_values": 2}})
    explained.infer.explain("a")
    (_, (frame,), kwargs) = widgets[-1]
    assert frame is explained and kwargs == {"row": "a", "engine": None}  # shown from the frame, nothing re-run


def test_explain_errors(eng, widgets):
    df = _churn()
    with pytest.raises(KeyError, match="not in the frame's index"):
        df.infer.explain("zz", "churner", engine=eng)
    with pytest.raises(ValueError, match="model_id="):
        df.infer.explain("a", engine=eng)
    with pytest.raises(ApiError) as info:
        df.infer.explain("a", "nope", engine=eng)
    assert info.value.status == 404


def test_top_classes_and_stats(eng, widgets):
    scored = _churn().infer.run("churner", engine=eng, inference_config={"classification": {"num_top_classes": 2}})
    assert scored.infer.top_classes() == "<top_classes>"
    assert scored.infer.top_classes(row="b") == "<top_classes>"
    assert [c[2] for c in widgets] == [{"row": None}, {"row": "b"}]
    assert widgets[0][1][0] is scored
    assert scored.infer.stats(engine=eng) == "<model_stats>"
    assert widgets[-1][1] == (["churner"],) and widgets[-1][2] == {"engine": eng}
    _churn().infer.stats(engine=eng)
    assert widgets[-1][1] == (None,)  # no results in the frame: every model
