"""The widgets reached from the magics (real IPython shell) and big frames (slider instead of dropdown)."""

from __future__ import annotations

import ipywidgets as w
import pandas as pd
import pytest
from conftest import training_frame

from es_infer_nb.engine import set_default_engine
from es_infer_nb.widgets import FeatureImportanceWidget, ModelStatsWidget, TopClassesWidget, feature_importance


@pytest.fixture
def ip(eng):
    from IPython.testing import globalipapp

    globalipapp.start_ipython()
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "es_infer_nb")
    set_default_engine(eng)
    yield shell
    set_default_engine(None)


def test_infer_stats_widget_magic(ip):
    training_frame().head(2).infer.run("reg", progress=False)  # the default engine is `eng`
    widget = ip.run_line_magic("infer", "stats reg --widget")
    try:
        assert isinstance(widget, ModelStatsWidget) and widget.model_ids == ["reg"] and widget.running
        assert [s["model_id"] for s in widget.stats] == ["reg"]
        assert widget.stats[0]["inference_stats"]["inference_count"] >= 2
    finally:
        widget.stop()
    assert not widget.running


def test_default_engine_feeds_the_baseline(ip, reg_result, cls_result):
    widget = feature_importance(reg_result, row="r0")  # no engine=: the default one knows the model
    assert widget.waterfall().baseline is not None
    assert isinstance(cls_result.infer.explain("r0"), FeatureImportanceWidget)
    assert isinstance(cls_result.infer.top_classes(), TopClassesWidget)


def test_more_rows_than_a_dropdown_holds_get_a_slider(eng):
    many = pd.concat([training_frame()] * 9, ignore_index=True)  # 1080 rows
    scored = many.infer.run("reg", engine=eng, progress=False,
                            inference_config={"regression": {"num_top_feature_importance_values": 2}})
    widget = feature_importance(scored, engine=eng)
    assert isinstance(widget.row_selector, w.IntSlider) and widget.row_selector.max == len(many) - 1
    widget.row_selector.value = 1079
    assert widget.row == 1079 and 'data-row="1079"' in widget.row_view.value
