"""One registry of ingest processors: the parser, the column forms and the declared columns read it."""

from __future__ import annotations

import pytest

from es_infer_nb import ApiError
from es_infer_nb.frames.pipeline_meta import DECLARED_COLUMNS
from es_infer_nb.ingest.columnar import COLUMN_STEPS
from es_infer_nb.ingest.pipeline import parse_processor
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


def test_every_column_form_is_a_step_of_the_columnar_executor():
    forms = {PROCESSORS[name].column_form for name in column_form_types()}
    assert forms == set(COLUMN_STEPS)
    assert set(column_form_types()) == {"set", "rename", "remove", "convert", "uppercase", "lowercase", "trim",
                                        "gsub", "drop", "inference"}


def test_every_registered_processor_declares_its_columns():
    assert set(DECLARED_COLUMNS) == set(PROCESSORS)


def test_a_class_with_a_column_form_says_which_configs_its_form_takes():
    from es_infer_nb.ingest.columnar import supported
    from es_infer_nb.ingest.pipeline import Processor

    for name, cls in PROCESSORS.items():
        parsed = parse_processor({name: BODIES[name]})
        if cls.column_form is None:
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
