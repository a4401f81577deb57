"""Upstream (elastic/elasticsearch) ``_ingest/pipeline/_simulate`` behaviours: ``90_simulate.yml``,
``TrackingResultProcessorTests`` / ``TrackingResultProcessor`` (verbose ``processor_results``),
``SimulateExecutionServiceTests``, ``CompoundProcessor`` (``on_failure`` metadata) and
``SimulatePipelineRequest.parseDocs`` / ``WriteableIngestDocument`` (documents in and out)."""

from __future__ import annotations

from typing import Any

import pytest

from es_infer_nb import Engine

SIMULATE = "_ingest/pipeline/_simulate"
DOC = [{"_index": "index", "_id": "id", "_source": {"field1": "123.42 400 <foo>"}}]


def put(eng: Engine, pid: str, processors: list[dict[str, Any]]) -> None:
    assert eng.request("PUT", f"_ingest/pipeline/{pid}", {"processors": processors}).status == 200


def simulate(eng: Engine, pipeline: Any, docs: list[dict[str, Any]] | None = None, verbose: bool = False) -> Any:
    body = {"pipeline": pipeline, "docs": DOC if docs is None else docs}
    resp = eng.request("POST", SIMULATE, body, params={"verbose": "true"} if verbose else None)
    assert resp.status == 200, resp.body
    return resp.body["docs"]


def results(eng: Engine, pipeline: Any, docs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    (doc,) = simulate(eng, pipeline, docs, verbose=True)
    return doc["processor_results"]


# -- cycles and nesting ------------------------------------------------------------------------------------


def test_verbose_circular_pipelines_are_one_error():
    # 90_simulate.yml "Test verbose simulate with Pipeline Processor with Circular Pipelines"
    eng = Engine()
    put(eng, "outer", [{"pipeline": {"name": "inner"}}])
    put(eng, "inner", [{"pipeline": {"name": "outer"}}])
    out = results(eng, {"processors": [{"pipeline": {"name": "outer"}}]})
    assert len(out) == 1
    assert out[0]["processor_type"] == "pipeline" and out[0]["status"] == "error"
    assert out[0]["error"]["type"] == "graph_structure_exception"
    assert out[0]["error"]["reason"] == "Cycle detected for pipeline: outer"
    assert "doc" not in out[0]


def test_cycle_found_below_a_stored_pipeline_simulated_by_id():
    # TrackingResultProcessorTests#testActualPipelineProcessorWithCycle
    eng = Engine()
    put(eng, "pipeline1", [{"set": {"field": "touched", "value": True}}, {"pipeline": {"name": "pipeline2"}}])
    put(eng, "pipeline2", [{"pipeline": {"name": "pipeline1"}}])
    put(eng, "top", [{"pipeline": {"name": "pipeline1", "tag": "t"}}])
    resp = eng.request("POST", "_ingest/pipeline/top/_simulate", {"docs": DOC}, params={"verbose": "true"})
    (entry,) = resp.body["docs"][0]["processor_results"]
    assert entry["tag"] == "t" and entry["error"]["reason"] == "Cycle detected for pipeline: pipeline1"
    plain = eng.request("POST", "_ingest/pipeline/top/_simulate", {"docs": DOC}).body["docs"][0]
    assert plain["error"]["type"] == "graph_structure_exception"
    assert plain["error"]["reason"] == "Cycle detected for pipeline: pipeline1"


def test_cycle_with_ignore_failure_shows_the_untouched_document():
    # TrackingResultProcessor#execute: a cycle found by the check on a copy, ignore_failure -> the document
    eng = Engine()
    put(eng, "a", [{"set": {"field": "from_a", "value": 1}}, {"pipeline": {"name": "a"}}])
    out = results(
        eng,
        {"processors": [{"pipeline": {"name": "a", "ignore_failure": True}}, {"set": {"field": "after", "value": 2}}]},
    )
    assert [e["status"] for e in out] == ["error_ignored", "success"]
    assert out[0]["ignored_error"]["error"]["reason"] == "Cycle detected for pipeline: a"
    assert "from_a" not in out[0]["doc"]["_source"]
    assert out[1]["doc"]["_source"]["after"] == 2


def _chain(eng: Engine, count: int) -> None:
    for i in range(count - 1):
        put(eng, f"pipeline{i}", [{"pipeline": {"name": f"pipeline{i + 1}"}}])
    put(eng, f"pipeline{count - 1}", [{"set": {"field": "count", "value": 1}}])


def test_nested_pipelines():
    # TrackingResultProcessorTests#testActualPipelineProcessorNested: one entry per pipeline, then the last processor
    eng = Engine()
    _chain(eng, 50)
    out = results(eng, {"processors": [{"pipeline": {"name": "pipeline0"}}]})
    assert len(out) == 51
    assert {e["processor_type"] for e in out[:-1]} == {"pipeline"} and out[-1]["processor_type"] == "set"
    assert out[-1]["doc"]["_source"]["count"] == 1


def test_too_many_nested_pipelines():
    # TrackingResultProcessorTests#testActualPipelineProcessorNestedTooManyPipelines (IngestDocument.MAX_PIPELINES)
    eng = Engine()
    _chain(eng, 105)
    reason = "Too many nested pipelines. Cannot have more than 100 nested pipelines"
    (entry,) = results(eng, {"processors": [{"pipeline": {"name": "pipeline0"}}]})
    assert entry["status"] == "error" and entry["error"]["reason"] == reason
    (plain,) = simulate(eng, {"processors": [{"pipeline": {"name": "pipeline0"}}]})
    assert plain["error"]["type"] == "graph_structure_exception" and plain["error"]["reason"] == reason


def test_pipeline_called_twice():
    # TrackingResultProcessorTests#testActualPipelineProcessorRepeatedInvocation
    eng = Engine()
    put(eng, "pipeline1", [{"set": {"field": "key1", "value": "{{_ingest.pipeline}}"}}])
    out = results(eng, {"processors": [{"pipeline": {"name": "pipeline1"}}, {"pipeline": {"name": "pipeline1"}}]})
    assert [e["processor_type"] for e in out] == ["pipeline", "set", "pipeline", "set"]
    assert "doc" not in out[0] and out[0]["status"] == "success"
    assert out[3]["doc"]["_ingest"]["pipeline"] == "pipeline1"


def test_pipeline_with_handled_failure_inside():
    # TrackingResultProcessorTests#testActualPipelineProcessorWithHandledFailure
    eng = Engine()
    put(
        eng,
        "pipeline1",
        [
            {"set": {"field": "key1", "value": 1}},
            {"fail": {"message": "processor failed", "on_failure": [{"set": {"field": "key2", "value": 2}}]}},
            {"set": {"field": "key3", "value": 3}},
        ],
    )
    out = results(eng, {"processors": [{"pipeline": {"name": "pipeline1"}}]})
    assert [e["status"] for e in out] == ["success", "success", "error", "success", "success"]
    assert out[2]["error"]["reason"] == "processor failed" and "doc" not in out[2]
    assert sorted(out[3]["doc"]["_source"]) == ["field1", "key1", "key2"]
    assert sorted(out[4]["doc"]["_source"]) == ["field1", "key1", "key2", "key3"]


def test_empty_called_pipeline_is_not_entered():
    # IngestDocument#executePipeline: a pipeline without processors returns at once (no cycle to detect)
    eng = Engine()
    put(eng, "empty", [])
    out = results(eng, {"processors": [{"pipeline": {"name": "empty"}}, {"set": {"field": "x", "value": 1}}]})
    assert [(e["processor_type"], e["status"]) for e in out] == [("pipeline", "success"), ("set", "success")]


# -- missing pipelines -------------------------------------------------------------------------------------


MISSING = "Pipeline processor configured for non-existent pipeline [nope]"


def test_verbose_ignore_missing_pipeline_is_an_ignored_error():
    # TrackingResultProcessor#execute: ignore_missing_pipeline -> the error with the document (error_ignored)
    eng = Engine()
    (entry,) = results(eng, {"processors": [{"pipeline": {"name": "nope", "ignore_missing_pipeline": True}}]})
    assert entry["status"] == "error_ignored"
    assert entry["ignored_error"]["error"]["type"] == "illegal_argument_exception"
    assert entry["ignored_error"]["error"]["reason"] == MISSING
    assert entry["doc"]["_source"] == {"field1": "123.42 400 <foo>"}
    (plain,) = simulate(eng, {"processors": [{"pipeline": {"name": "nope", "ignore_missing_pipeline": True}}]})
    assert plain["doc"]["_source"] == {"field1": "123.42 400 <foo>"}


def test_verbose_missing_pipeline_with_ignore_failure_is_an_error():
    # TrackingResultProcessor#execute: a missing pipeline is recorded without the document, ignore_failure or not
    eng = Engine()
    out = results(
        eng,
        {"processors": [{"pipeline": {"name": "nope", "ignore_failure": True}}, {"set": {"field": "x", "value": 1}}]},
    )
    assert [e["status"] for e in out] == ["error", "success"]
    assert out[0]["error"]["reason"] == MISSING and "doc" not in out[0]


# -- on_failure metadata -----------------------------------------------------------------------------------


def test_failure_metadata_is_removed_after_an_inner_on_failure():
    # CompoundProcessor#executeOnFailure / removeFailureMetadata; SimulateExecutionServiceTests#testExecuteVerboseItemWithOnFailure
    eng = Engine()
    pipeline = {
        "processors": [
            {
                "fail": {
                    "message": "outer",
                    "tag": "t0",
                    "on_failure": [
                        {
                            "fail": {
                                "message": "inner",
                                "tag": "t1",
                                "on_failure": [{"set": {"field": "x", "value": "{{_ingest.on_failure_message}}"}}],
                            }
                        },
                        {"set": {"field": "y", "value": "{{_ingest.on_failure_message}}"}},
                    ],
                }
            }
        ]
    }
    out = results(eng, pipeline)
    assert [e["status"] for e in out] == ["error", "error", "success", "success"]
    assert out[2]["doc"]["_ingest"]["on_failure_processor_tag"] == "t1"
    assert not any(k.startswith("on_failure") for k in out[3]["doc"]["_ingest"])
    (plain,) = simulate(eng, pipeline)
    assert plain["doc"]["_source"] == {"field1": "123.42 400 <foo>", "x": "inner", "y": ""}
    assert list(plain["doc"]["_ingest"]) == ["timestamp"]


# -- foreach -----------------------------------------------------------------------------------------------


def test_verbose_foreach_is_one_entry():
    # TrackingResultProcessor#decorate wraps the foreach processor, never the processor it runs per element
    eng = Engine()
    pipeline = {"processors": [{"foreach": {"field": "v", "processor": {"uppercase": {"field": "_ingest._value"}}}}]}
    (entry,) = results(eng, pipeline, [{"_source": {"v": ["a", "b"]}}])
    assert entry["processor_type"] == "foreach" and entry["status"] == "success"
    assert entry["doc"]["_source"]["v"] == ["A", "B"]
    (failed,) = results(eng, pipeline, [{"_source": {"v": ["a", 1]}}])
    assert failed["processor_type"] == "foreach" and failed["status"] == "error"
    assert failed["error"]["reason"] == (
        "field [_ingest._value] of type [java.lang.Integer] cannot be cast to [java.lang.String]"
    )


def test_foreach_failure_is_the_foreach_processors():
    # ForEachProcessor#innerExecuteList hands the inner processor's exception up as it is: the foreach's
    # CompoundProcessor names the foreach in the on_failure metadata
    eng = Engine()
    pipeline = {
        "processors": [
            {
                "foreach": {
                    "field": "v",
                    "tag": "fe",
                    "processor": {"uppercase": {"field": "_ingest._value", "tag": "up"}},
                    "on_failure": [
                        {
                            "set": {
                                "field": "t",
                                "value": "{{_ingest.on_failure_processor_type}}/{{_ingest.on_failure_processor_tag}}",
                            }
                        }
                    ],
                }
            }
        ]
    }
    (plain,) = simulate(eng, pipeline, [{"_source": {"v": ["a", 1]}}])
    assert plain["doc"]["_source"]["t"] == "foreach/fe"


# -- documents in and out ----------------------------------------------------------------------------------


def test_dynamic_templates_are_read_and_written_as_text():
    # SimulatePipelineRequest#parseDocs (_dynamic_templates: readMap) and WriteableIngestDocument#toXContent
    # (each metadata value's toString)
    eng = Engine()
    pipeline = {"processors": [{"set": {"field": "a", "value": 2}}]}
    (doc,) = simulate(eng, pipeline, [{"_source": {}, "_dynamic_templates": {"a": "keyword"}}])
    assert doc["doc"]["_dynamic_templates"] == "{a=keyword}"
    assert doc["doc"]["_source"] == {"a": 2}
    (two,) = simulate(eng, pipeline, [{"_source": {}, "_dynamic_templates": {"b": "x", "a": "y"}}])
    assert two["doc"]["_dynamic_templates"] == "{a=y, b=x}"  # a java.util.HashMap's toString


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("x", "[_dynamic_templates] property isn't a map, but of type [java.lang.String]"),
        (None, "[_dynamic_templates] required property is missing"),
    ],
)
def test_dynamic_templates_must_be_a_map(value, reason):
    # SimulatePipelineRequest#parseDocs: ConfigurationUtils.readMap
    body = {
        "pipeline": {"processors": [{"set": {"field": "a", "value": 2}}]},
        "docs": [{"_source": {}, "_dynamic_templates": value}],
    }
    resp = Engine().request("POST", SIMULATE, body)
    assert resp.status == 400
    assert resp.body["error"]["type"] == "parse_exception" and resp.body["error"]["reason"] == reason
    assert resp.body["error"]["property_name"] == "_dynamic_templates"
