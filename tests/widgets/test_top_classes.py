"""top_classes: a row's probabilities and the frame's summary, by widget state."""

from __future__ import annotations

import re

import ipywidgets as w
import pytest
from conftest import CLASSES

from es_infer_nb.widgets import TopClassesWidget, top_classes


def _rows(html: str, cls: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', tag)) for tag in re.findall(rf'<tr class="{cls}"[^>]*>', html)]


def test_row_probabilities_and_summary(cls_result):
    widget = top_classes(cls_result, row="r2")
    assert isinstance(widget, TopClassesWidget) and widget.row_selector is None
    assert widget.children == (widget.row_view, widget.summary_view)
    bars = _rows(widget.row_view.value, "esinb-tc-bar")
    expected = cls_result.loc["r2", "ml.inference.top_classes"]
    assert [b["data-class"] for b in bars] == [c["class_name"] for c in expected]
    assert [float(b["data-probability"]) for b in bars] == pytest.approx([c["class_probability"] for c in expected])
    assert sum(float(b["data-probability"]) for b in bars) == pytest.approx(1.0)
    assert f'data-predicted="{cls_result.loc["r2", "ml.inference.predicted_value"]}"' in widget.row_view.value

    summary = {r["data-class"]: r for r in _rows(widget.summary_view.value, "esinb-tc-summary-row")}
    assert set(summary) == set(CLASSES)
    counts = cls_result["ml.inference.predicted_value"].value_counts()
    for klass in CLASSES:
        assert int(summary[klass]["data-count"]) == int(counts.get(klass, 0))
        mean = sum(c["class_probability"] for tc in cls_result["ml.inference.top_classes"] for c in tc
                   if c["class_name"] == klass) / len(cls_result)
        assert float(summary[klass]["data-mean-probability"]) == pytest.approx(mean)
    assert widget.summary["count"].sum() == len(cls_result)


def test_row_selector(cls_result):
    widget = top_classes(cls_result)
    assert isinstance(widget.row_selector, w.Dropdown) and widget.children[0] is widget.row_selector
    widget.row_selector.value = 4
    assert widget.row == "r4" and 'data-row="r4"' in widget.row_view.value
    assert [c["class_name"] for c in widget.classes()] == \
        [c["class_name"] for c in cls_result.loc["r4", "ml.inference.top_classes"]]


def test_reprs(cls_result):
    widget = top_classes(cls_result, row="r0")
    text = repr(widget)
    assert text.startswith("top classes of row 'r0'") and "over 5 rows" in text
    assert all(k in text for k in CLASSES)
    assert "esinb-tc-summary" in widget._repr_html_()


def test_predicted_value_only_and_bad_input(eng, rows, reg_result):
    plain = rows.infer.run("cls", engine=eng, progress=False)  # no top_classes: summary from predicted_value
    widget = top_classes(plain, row="r0")
    assert widget.classes() == [] and "no top_classes" in widget.row_view.value
    assert int(widget.summary["count"].sum()) == len(rows)
    with pytest.raises(ValueError, match="num_top_classes"):
        top_classes(rows)
    with pytest.raises(KeyError):
        top_classes(plain, row="zz")


def test_accessor_top_classes(cls_result):
    widget = cls_result.infer.top_classes(row="r3")
    assert isinstance(widget, TopClassesWidget) and widget.row == "r3"


def test_summary_of_arrow_and_object_columns_agree(eng, rows):
    from es_infer_nb.widgets.top_classes import class_summary

    big = rows.sample(200, replace=True, random_state=1).reset_index(drop=True)
    two = big.infer.run("cls", engine=eng, progress=False, inference_config={"classification": {"num_top_classes": 2}})
    arrow = class_summary(two, "ml.inference")
    plain = class_summary(two.astype({"ml.inference.top_classes": object}), "ml.inference")
    import pandas as pd

    pd.testing.assert_frame_equal(arrow, plain)
    assert int(arrow["count"].sum()) == 200
    listed = [c for tc in two["ml.inference.top_classes"] for c in tc]
    for r in arrow.itertuples():
        probs = [c["class_probability"] for c in listed if c["class_name"] == r.class_name]
        assert r.mean_probability == pytest.approx(sum(probs) / len(probs))  # over the rows listing the class
