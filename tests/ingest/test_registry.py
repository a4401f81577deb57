"""One registry of ingest processors: the parser, the column forms and the declared columns read it."""

from __future__ import annotations

import pytest

import numpy as np
import pandas as pd

from es_infer_nb import ApiError, Engine
from es_infer_nb.frames import pipeline_meta
from es_infer_nb.frames.meta import pipeline_meta as pipeline_meta_frame
from es_infer_nb.frames.pipeline import run_frame_pipeline
from es_infer_nb.frames.pipeline_meta import pipeline_columns
from es_infer_nb.ingest import columnar
from es_infer_nb.ingest.column_steps import mask
from es_infer_nb.ingest.declared import TEXT
from es_infer_nb.ingest.pipeline import Processor, parse_processor
from es_infer_nb.ingest.registry import PROCESSORS, column_form_types

BODIES = {
    "append": {"field": "a", "value": "v"}, "trim": {"field": "a"}, "split": {"field": "a", "separator": ","},
    "join": {"field": "a", "separator": ","}, "gsub": {"field": "a", "pattern": "x", "replacement": "y"},
    "json": {"field": "a"}, "set": {"field": "a", "value": 1}, "rename": {"field": "a", "target_field": "b"},
    "remove": {"field": "a"}, "uppercase": {"field": "a"}, "lowercase": {"field": "a"},
    "convert": {"field": "a", "type": "integer"}, "fail": {"message": "m"}, "drop": {},
    "pipeline": {"name": "p"}, "inference": {"model_id": "m"},
    "foreach": {"field": "a", "processor": {"uppercase": {"field": "_ingest._value"}}},
    "ml_inference": {"model_id": "m"}, "script": {"source": "ctx.a = 1"},
}


def test_each_type_is_one_class_and_parses_to_it():
    assert set(BODIES) == set(PROCESSORS)
    for name, cls in PROCESSORS.items():
        assert cls.type == name
        assert type(parse_processor({name: BODIES[name]})) is cls


def test_an_unknown_type_is_refused_as_before():
    with pytest.raises(ApiError, match=r"No processor type exists with name \[nope\]"):
        parse_processor({"nope": {}})


def test_the_classes_with_a_column_form():
    assert set(column_form_types()) == {"set", "rename", "remove", "convert", "uppercase", "lowercase", "trim",
                                        "gsub", "drop", "inference"}
    for name, cls in PROCESSORS.items():
        assert cls.has_column_form() == (cls.run_columns is not Processor.run_columns), name


def test_every_registered_processor_declares_its_columns_or_is_marked_as_writing_none():
    for name, cls in PROCESSORS.items():
        own = cls.declare_columns is not Processor.declare_columns
        assert own != cls.writes_no_columns, f"{name}: declares its columns, or is marked writes_no_columns"
        assert cls.declares_columns(), name
    assert {n for n, c in PROCESSORS.items() if c.writes_no_columns} == {"fail", "drop"}


def test_frames_and_the_columnar_executor_keep_no_table_of_processors():
    """The columnar executor and the declared columns ask the processor's class; neither holds a table
    keyed by type or class (issue 18: one registry)."""
    for module in (columnar, pipeline_meta):
        tables = [name for name, value in vars(module).items()
                  if isinstance(value, dict) and value and all(callable(v) for v in value.values())]
        assert tables == [], f"{module.__name__}: {tables}"


class ShoutProcessor(Processor):
    """A processor only this test registers: its config, per-document form, column form and declared columns."""

    type = "shout"
    column_calls: list[int] = []

    def __init__(self, c):
        super().__init__()
        self.field = c.string("field")
        self.target_field = c.string("target_field")

    def execute(self, doc, run, pipeline_id):
        doc.set(self.target_field, str(doc.get(self.field)).upper() + "!")

    def columns_take(self):
        return True

    def run_columns(self, batch, rows, k):
        ShoutProcessor.column_calls.append(k)
        t = batch.table
        present = t.exists(self.field)
        batch.hand_off(k, rows & ~present)  # the per-document form answers (fails) a missing field
        idx = np.flatnonzero(rows & batch.alive & present)
        values = np.empty(idx.size, dtype=object)
        values[:] = [str(v).upper() + "!" for v in t.cols[self.field].values[idx].tolist()]
        t.write(self.target_field, mask(t.n, idx), values)

    def declare_columns(self, doc, partial):
        doc.write(self.target_field, [TEXT], partial)


def test_a_newly_registered_processor_is_run_by_columns_and_declared_with_no_other_edit(monkeypatch):
    monkeypatch.setitem(PROCESSORS, "shout", ShoutProcessor)
    ShoutProcessor.column_calls.clear()
    engine = Engine()
    frame = pd.DataFrame({"a": ["x", "y", None]})
    body = {"processors": [{"shout": {"field": "a", "target_field": "b"}}]}
    out = run_frame_pipeline(engine, frame, body, columnar=True)
    assert ShoutProcessor.column_calls == [0]  # the columnar executor ran its column form
    assert out["b"].tolist()[:2] == ["X!", "Y!"]
    assert out["_ingest.error.type"].tolist()[2] == "illegal_argument_exception"  # row 3, per document
    per_document = run_frame_pipeline(engine, frame, body, columnar=False)
    assert per_document["b"].tolist()[:2] == ["X!", "Y!"]
    declared = pipeline_columns(engine, frame.iloc[:0], body)
    assert "b" in declared and declared["b"] == out["b"].dtype
    dask_meta = pipeline_meta_frame(engine, frame.iloc[:0], body)  # the empty frame ddf.infer.pipeline declares
    assert dask_meta["b"].dtype == out["b"].dtype


def test_a_class_with_a_column_form_says_which_configs_its_form_takes():
    from es_infer_nb.ingest.columnar import supported

    for name, cls in PROCESSORS.items():
        parsed = parse_processor({name: BODIES[name]})
        if not cls.has_column_form():
            assert not supported(parsed), name
            continue
        assert cls.columns_take is not Processor.columns_take, f"{name}: a column form without columns_take"
        assert supported(parsed) == parsed.columns_take(), name
        assert supported(parsed), name  # the plain configs above all run column-at-a-time
    # a templated field goes to the per-document path
    assert not supported(parse_processor({"set": {"field": "{{f}}", "value": 1}}))
    assert not supported(parse_processor({"rename": {"field": "a", "target_field": "a.b"}}))
    assert not supported(parse_processor({"inference": {"model_id": "m", "input_output": {"input_field": "a",
                                                                                          "output_field": "b"}}}))
