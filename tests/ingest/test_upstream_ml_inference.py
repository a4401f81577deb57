"""OpenSearch ``ml_inference`` against ml-commons' own code (MLInferenceIngestProcessor, ModelExecutor,
OutputTransformations, RemoteInferenceMLInput at 950f0560): the inputs of MLInferenceIngestProcessorTests'
methods varied where the processor's code decides the answer."""

from __future__ import annotations

import json
import struct

import pytest

from es_infer_nb.errors import ApiError
from es_infer_nb.ingest.document import Doc
from es_infer_nb.ingest.ml_inference import create, java_hash_order, parse_tensor_data, to_json, write_new_dot_path

KV = {"key1": "value1", "key2": "value2"}
DEFAULTS = {
    "model_id": "model1",
    "function_name": "remote",
    "ignore_missing": False,
    "ignore_failure": False,
    "override": False,
    "full_response_path": False,
}


def tensors(*items):
    return {"inference_results": [{"output": list(items)}]}


def run(config, source, output):
    """The processor over ``source`` with a model answering ``output`` (or raising it): (document, calls)."""
    calls = []

    def predict(params):
        calls.append(json.loads(json.dumps(params)))
        if isinstance(output, Exception):
            raise output
        return output(params) if callable(output) else json.loads(json.dumps(output))

    proc = create({"ml_inference": {**DEFAULTS, **config}})
    doc = Doc(data=json.loads(json.dumps(source)))
    proc.process(doc, predict)
    return doc.source(), calls


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


# -- ModelExecutor.getModelOutputValue ------------------------------------------------------------


def test_several_map_tensors_read_each():
    # testExecute_localSparseEncodingModelMultipleModelTensors / testExecute_MultipleTensorInDataOutputSuccess:
    # several tensors give a list, each tensor's dataAsMap read with the output path
    out = tensors({"dataAsMap": {"response": [1]}}, {"dataAsMap": {"response": [2]}})
    doc, _ = run({"output_map": [{"emb": "response"}]}, KV, out)
    assert doc["emb"] == [[1], [2]]
    mixed = tensors({"name": "t", "data_type": "INT32", "shape": [1], "data": [1]}, {"dataAsMap": {"response": [2]}})
    assert run({"output_map": [{"emb": "response"}]}, KV, mixed)[0]["emb"] == [[1], [2]]


def test_several_tensors_missing_field_message():
    # testExecute_AppendFieldValueExceptionOnResponse with several tensors: "Error accessing tensor data: "
    out = tensors({"dataAsMap": {"response": [1]}}, {"dataAsMap": {"response": [2]}})
    with pytest.raises(ApiError) as err:
        run({"output_map": [{"emb": "nope"}]}, KV, out)
    assert err.value.reason == (
        "An unexpected error occurred: Error accessing tensor data: model inference output cannot find field name: nope"
    )


def test_present_null_output_field_is_written():
    # testExecute_getModelOutputFieldWithFieldNameSuccess: getModelOutputField returns map.get(field) for a key
    # the map has, null included
    doc, _ = run({"output_map": [{"emb": "response"}]}, KV, tensors({"dataAsMap": {"response": None}}))
    assert "emb" in doc and doc["emb"] is None


def test_wildcard_output_path_skips_missing_leaves():
    # testExecute_getModelOutputFieldWithDotPathSuccess with a wildcard: Jayway's default configuration skips
    # missing leaves and an indefinite path that finds nothing is an empty list, not an error
    out = tensors({"dataAsMap": {"response": [{"x": 1}, {"y": 2}, {"x": 3}]}})
    assert run({"output_map": [{"emb": "response.*.x"}]}, KV, out)[0]["emb"] == [1, 3]
    assert run({"output_map": [{"emb": "response.*.z"}]}, KV, out)[0]["emb"] == []
    full = {"full_response_path": True, "output_map": [{"emb": "$.inference_results.*.output.*.dataAsMap.nope"}]}
    assert run(full, KV, tensors({"dataAsMap": {"response": [1]}}))[0]["emb"] == []


def test_parse_data_in_tensor_types():
    # testParseGetDataInTensor_FloatDataType / _IntegerDataType: every floating type is floatValue(), every
    # integer type intValue()
    assert parse_tensor_data({"data_type": "FLOAT64", "data": [1.1]}) == [f32(1.1)]
    assert parse_tensor_data({"data_type": "INT64", "data": [5000000000, 2.7]}) == [705032704, 2]
    assert parse_tensor_data({"data_type": "UINT8", "data": [3]}) == [3]
    with pytest.raises(ApiError, match="unsupported data type in prediction data."):
        parse_tensor_data({"data_type": "UNKNOWN", "data": [1]})


# -- OutputTransformations -------------------------------------------------------------------------


def test_pooling_errors_are_upstreams_unwrapped():
    # testExecute_MeanPoolingTransformation: the transformation runs after getModelOutputValue, outside its
    # "An unexpected error occurred" wrapping
    out = tensors({"dataAsMap": {"e": [1, 2], "m": [[1, 2], [3]], "s": "x"}})
    for path, message in (
        ("e.meanPooling()", "Mean pooling requires nested array structure"),
        ("s.maxPooling()", "Max pooling requires a list input"),
        ("m.meanPooling()", "All vectors must have the same dimension"),
    ):
        with pytest.raises(ApiError) as err:
            run({"output_map": [{"v": path}]}, KV, out)
        assert err.value.reason == message


def test_pooling_in_float32():
    # testExecute_MeanPoolingTransformation: float arithmetic, List<Float>
    out = tensors({"dataAsMap": {"e": [[0.1, 5], [0.2, 2]]}})
    doc, _ = run({"output_map": [{"mean": "e.meanPooling()", "max": "e.maxPooling()"}]}, KV, out)
    assert doc["mean"] == [f32(f32(f32(0.1) + f32(0.2)) / 2), 3.5]
    assert doc["max"] == [f32(0.2), 5.0]


# -- request building ---------------------------------------------------------------------------------


def test_remote_model_input_parameters_are_strings():
    # testExecute_InputMapAndOutputMapSuccess with a model_input of its own: RemoteInferenceMLInput keeps
    # parameters as StringUtils.getParameterMap does (non-strings as their JSON)
    config = {
        "input_map": [{"input": "key1"}],
        "model_config": {"model": "ada", "dim": 5},
        "model_input": '{"parameters": {"input": ${input_map.input}, "model": "${model_config.model}",'
        ' "dim": ${model_config.dim}}}',
        "output_map": [{"emb": "response"}],
    }
    _, calls = run(config, {"key1": ["a", "b"]}, tensors({"dataAsMap": {"response": [1]}}))
    assert calls == [{"input": '["a","b"]', "model": "ada", "dim": "5"}]


def test_object_inputs_in_java_hashmap_order():
    # testExecute_nestedObjectStringDocumentSuccess: a document object is serialized in HashMap order
    _, calls = run(
        {"input_map": [{"x": "obj"}]},
        {"obj": {"zeta": 1, "alpha": "q", "mid": [1.5, 1e-05]}},
        tensors({"dataAsMap": {"response": [1]}}),
    )
    assert calls[0]["x"] == '{"zeta":1,"alpha":"q","mid":[1.5,1.0E-5]}'
    assert list(java_hash_order({"context": 1, "chapter": 2})) == ["chapter", "context"]
    assert to_json("raw") == "raw"


# -- writing: writeNewDotPathForNestedObject and override ------------------------------------------------


def test_write_paths_under_a_missing_parent():
    # testWriteNewDotPathForNestedObject: the path before the last dot is a Jayway path list (a missing last
    # segment still counts, a missing segment above it gives nothing)
    assert write_new_dot_path(KV, "a.b") == ["a.b"]
    assert write_new_dot_path(KV, "a.b.c") == []
    assert write_new_dot_path({"books": [{"t": 1}]}, "books.0.title") == []
    assert write_new_dot_path({"books": [{"t": 1}, {}]}, "books[1].title") == ["books.1.title"]
    assert write_new_dot_path({"m": {"x": {}, "y": {}}}, "m.*.v") == ["m.x.v", "m.y.v"]


def test_no_path_to_write_skips_the_call_unless_override():
    # testExecute_getModelOutputFieldWithExistedFieldNameException: with override=false an output field whose
    # every path exists is dropped (none named counts as all existing); with override=true the write fails
    out = tensors({"dataAsMap": {"response": [1]}})
    doc, calls = run({"output_map": [{"a.b.c": "response"}]}, KV, out)
    assert doc == KV and calls == []
    with pytest.raises(ApiError) as err:
        run({"override": True, "output_map": [{"a.b.c": "response"}]}, KV, out)
    assert err.value.reason == (
        "the prediction field: response is an array in size of 1 but the document field "
        "array from field a.b.c is in size of 0"
    )


# -- several input maps -----------------------------------------------------------------------------------


def test_failing_entry_does_not_stop_the_others():
    # testExecute_getModelOutputFieldDifferentLengthIgnoreFailureSuccess with two entries: the
    # GroupedActionListener waits for every prediction; the first failure decides the document
    config = {"input_map": [{"inputs": "key1"}, {"inputs": "key2"}], "output_map": [{"o1": "nope"}, {"o2": "response"}]}
    out = tensors({"dataAsMap": {"response": [1]}})
    doc, calls = run({**config, "ignore_failure": True}, KV, out)
    assert doc == {**KV, "o2": [1]} and len(calls) == 2
    with pytest.raises(ApiError) as err:
        run(config, KV, out)
    assert err.value.reason == "An unexpected error occurred: model inference output cannot find field name: nope"


# -- MLInferenceIngestProcessor.Factory: ConfigurationUtils' readers ----------------------------------------


@pytest.mark.parametrize(
    "config, message",
    [
        ({"max_prediction_tasks": "abc"}, "[max_prediction_tasks] property cannot be converted to an int [abc]"),
        ({"max_prediction_tasks": 2.0}, "[max_prediction_tasks] property cannot be converted to an int [2.0]"),
        ({"input_map": {"inputs": "text"}}, "[input_map] property isn't a list, but of type [java.util.HashMap]"),
        ({"model_config": "x"}, "[model_config] property isn't a map, but of type [java.lang.String]"),
        ({"model_input": 5}, "[model_input] property isn't a string, but of type [java.lang.Integer]"),
    ],
)
def test_factory_property_errors(config, message):
    # testCreateOptionalFields / testExceedMaxPredictionTasks with values of the wrong type
    with pytest.raises(ApiError) as err:
        create({"ml_inference": {"model_id": "model2", **config}})
    assert err.value.reason == message


def test_factory_reads_int_text():
    # testExceedMaxPredictionTasks: readIntProperty parses the value's text
    with pytest.raises(ApiError) as err:
        create(
            {
                "ml_inference": {
                    "model_id": "model2",
                    "max_prediction_tasks": "2",
                    "input_map": [{"inputs": "text"}, {"inputs": "hashtag"}, {"inputs": "timestamp"}],
                }
            }
        )
    assert err.value.reason == (
        "The number of prediction task setting in this process is 3. It exceeds the "
        "max_prediction_tasks of 2. Please reduce the size of input_map or increase "
        "max_prediction_tasks."
    )


def test_empty_input_map_reads_every_field():
    # testExecute_getModelOutputFieldWithFieldNameSuccess with input_map []: inputMapSize 0 reads every field
    doc, calls = run({"input_map": []}, KV, tensors({"dataAsMap": {"r": 1}}))
    assert calls == [{"key1": "value1", "key2": "value2"}] and doc["inference_results"] == {"r": 1}
    with pytest.raises(ApiError) as err:  # output_map [] too: processOutputMap.get(0)
        run({"input_map": [], "output_map": []}, KV, tensors({"dataAsMap": {"r": 1}}))
    assert err.value.reason == "Index 0 out of bounds for length 0"
