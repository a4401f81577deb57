"""The ``inference`` processor as Elasticsearch's ``InferenceProcessor.Factory`` creates it and as
``InferenceProcessor.mutateDocument`` writes results (InferenceProcessorFactoryTests,
InferenceProcessorTests and the main code they test)."""

from __future__ import annotations

from typing import Any

import pytest

from es_infer_nb.ingest.document import Doc
from es_infer_nb.ingest.inference import InferenceProcessor
from es_infer_nb.ingest.pipeline import parse_processor
from helpers import error_of

MAX = "xpack.ml.max_inference_processors"


def put(engine, processor: dict[str, Any], pid: str = "p"):
    return engine.request("PUT", f"_ingest/pipeline/{pid}", {"processors": [processor]})


def reason(resp) -> tuple[str, str, int]:
    err = error_of(resp)
    return err["type"], err["reason"], resp.status


def inference(**conf: Any) -> dict[str, Any]:
    return {"inference": conf}


IO = {"input_field": "in", "output_field": "out"}


# testCreateProcessorWithInvalidInferenceConfig: the type must map to an object (null is not one)
@pytest.mark.parametrize("config", [{"regression": "boom"}, {"regression": None}, {}])
def test_inference_config_must_map_one_type_to_an_object(engine, config):
    resp = put(engine, inference(model_id="m", target_field="result", field_map={}, inference_config=config))
    assert reason(resp) == (
        "status_exception",
        "inference_config must be an object with one inference type mapped to an object.",
        400,
    )


# testCreateProcessorWithDuplicateFields / InferenceConfigUpdate.checkFieldUniqueness: always a status_exception
@pytest.mark.parametrize(
    "update, dup",
    [
        ({"regression": {"results_field": "warning"}}, "warning"),
        ({"classification": {"results_field": "a", "top_classes_results_field": "a"}}, "a"),
        ({"classification": {"top_classes_results_field": "model_id"}}, "model_id"),
    ],
)
def test_duplicate_result_fields(engine, update, dup):
    resp = put(engine, inference(model_id="m", target_field="ml", inference_config=update))
    assert reason(resp) == (
        "status_exception",
        f"Invalid inference config. More than one field is configured as [{dup}]",
        400,
    )


# ClassificationConfigUpdate.fromMap / RegressionConfigUpdate.fromMap (called by the factory): unknown keys
@pytest.mark.parametrize(
    "update, shown",
    [
        ({"classification": {"num_top_classes": 2, "foo": 1}}, "foo"),
        ({"regression": {"results_field": "r", "foo": 1}}, "results_field, foo"),
    ],
)
def test_unknown_tree_update_fields(engine, update, shown):
    resp = put(engine, inference(model_id="m", inference_config=update))
    assert reason(resp) == ("status_exception", f"Unrecognized fields [{shown}].", 400)


# the factory reads ignore_missing in the input_output style only; with target_field it is left over
def test_ignore_missing_is_an_input_output_option(engine):
    resp = put(engine, inference(model_id="m", target_field="result", ignore_missing=True))
    assert reason(resp) == (
        "parse_exception",
        "processor [inference] doesn't support one or more provided configuration parameters [ignore_missing]",
        400,
    )
    assert put(engine, inference(model_id="m", ignore_missing=True, input_output=[IO])).status == 200


# field_mappings (deprecated) is read only when field_map is absent
def test_field_mappings_is_read_only_without_field_map(engine):
    proc = parse_processor(inference(model_id="m", field_mappings={"a": "b"}))
    assert isinstance(proc, InferenceProcessor) and proc.field_map == {"a": "b"}
    resp = put(engine, inference(model_id="m", field_map={"a": "b"}, field_mappings={"c": "d"}))
    assert reason(resp) == (
        "parse_exception",
        "processor [inference] doesn't support one or more provided configuration parameters [field_mappings]",
        400,
    )


# testCreateProcessorWithIncompatibleTargetFieldSetting: readOptionalStringProperty (a null target_field is absent)
def test_null_target_field_with_input_output(engine):
    assert put(engine, inference(model_id="m", target_field=None, input_output=[IO])).status == 200
    resp = put(engine, inference(model_id="m", target_field="ml", input_output=[IO]))
    assert reason(resp)[1] == (
        "[target_field] option is incompatible with [input_output]. Use the [output_field] "
        "option to specify where to write the inference results to."
    )


def _limit(engine, n: int) -> None:
    assert engine.request("PUT", "_cluster/settings", {"persistent": {MAX: n}}).status == 200


TOO_MANY = (
    "status_exception",
    "Max number of inference processors reached, total inference processors [1]. "
    f"Adjust the setting [{MAX}]: [1] if a greater number is desired.",
    409,
)


# testCreateProcessorWithTooManyExisting + InferenceProcessorInfoExtractor.countInferenceProcessors: only the
# pipelines' processors lists count (foreach and processor on_failure searched), not a pipeline's on_failure
def test_stored_inference_processors_count_as_es_counts_them(engine):
    _limit(engine, 1)
    inner = inference(model_id="m1", target_field="x")
    ok = engine.request(
        "PUT", "_ingest/pipeline/a", {"processors": [{"set": {"field": "a", "value": 1}}], "on_failure": [inner]}
    )
    assert ok.status == 200  # nothing counted yet
    resp = engine.request(
        "PUT", "_ingest/pipeline/b", {"processors": [{"set": {"field": "a", "value": 1, "on_failure": [inner]}}]}
    )
    assert resp.status == 200  # still nothing: pipeline a's on_failure does not count
    assert reason(put(engine, inner, "c")) == TOO_MANY  # b's processor on_failure counts


# the factory's limit applies whenever it creates a processor, an inline _simulate pipeline too
def test_limit_applies_to_inline_simulate(engine):
    _limit(engine, 1)
    assert put(engine, inference(model_id="m1", target_field="x"), "a").status == 200
    resp = engine.request(
        "POST",
        "_ingest/pipeline/_simulate",
        {"pipeline": {"processors": [inference(model_id="m1")]}, "docs": [{"_source": {}}]},
    )
    assert reason(resp) == TOO_MANY


# InferenceResults.writeResultToField, as mutateDocument calls it for each input_output entry
def test_write_outputs_under_base_paths_with_model_id_first_only():
    proc = parse_processor(
        inference(
            model_id="alias",
            input_output=[{"input_field": "a", "output_field": "x.out1"}, {"input_field": "b", "output_field": "out2"}],
        )
    )
    assert isinstance(proc, InferenceProcessor)
    doc = Doc({"x": {"k": 1}, "out2": "old"})
    proc.write_outputs(doc, [{"out1": {"t": 0.5}, "is_truncated": True}, {"out2": [1.0]}], "model-1")
    assert doc.source() == {
        "x": {"k": 1, "out1": {"t": 0.5}, "is_truncated": True, "model_id": "model-1"},
        "out2": ["old", 1.0],
    }  # appendFieldValue adds a list's elements
