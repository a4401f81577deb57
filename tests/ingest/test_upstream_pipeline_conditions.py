"""Upstream (elastic/elasticsearch) behaviours of pipeline parsing, ``if`` conditions, ``script`` config and
``_simulate`` answers, each through ``_ingest/pipeline/_simulate`` (or PUT) as the REST API answers them."""

from __future__ import annotations

from typing import Any

import pytest

from es_infer_nb import Engine

SIMULATE = "_ingest/pipeline/_simulate"


def simulate(pipeline: Any, docs: list[dict[str, Any]] | None = None, verbose: bool = False) -> Any:
    body = {"pipeline": pipeline, "docs": [{"_source": {"a": 1}}] if docs is None else docs}
    return Engine().request("POST", SIMULATE, body, params={"verbose": "true"} if verbose else None)


def error(resp: Any) -> dict[str, Any]:
    assert resp.status == 400, resp.body
    return resp.body["error"]


# -- PipelineFactoryTests / Pipeline.create -------------------------------------------------------------


def test_empty_pipeline_on_failure():
    # PipelineFactoryTests#testCreateWithPipelineEmptyOnFailure
    err = error(simulate({"processors": [{"set": {"field": "x", "value": 1}}], "on_failure": []}))
    assert err["type"] == "parse_exception"
    assert err["reason"] == "pipeline [_simulate_pipeline] cannot have an empty on_failure option defined"


def test_empty_processor_on_failure():
    # PipelineFactoryTests#testCreateWithPipelineEmptyOnFailureInProcessor
    err = error(simulate({"processors": [{"set": {"field": "x", "value": 1, "on_failure": []}}]}))
    assert err["reason"] == "[on_failure] processors list cannot be empty"


def test_unknown_pipeline_parameter_is_checked_before_the_empty_on_failure():
    # Pipeline.create: the leftover keys are refused before the empty on_failure list
    err = error(simulate({"processors": [], "on_failure": [], "zzz": 1}))
    assert err["reason"] == (
        "pipeline [_simulate_pipeline] doesn't support one or more provided configuration parameters [zzz]"
    )


@pytest.mark.parametrize(
    ("body", "reason", "prop"),
    [
        ({"description": 1}, "[description] property isn't a string, but of type [java.lang.Integer]", "description"),
        ({"version": "abc"}, "[version] property cannot be converted to an int [abc]", "version"),
        ({"version": 1.5}, "[version] property cannot be converted to an int [1.5]", "version"),
        ({"_meta": "x"}, "[_meta] property isn't a map, but of type [java.lang.String]", "_meta"),
        ({"deprecated": "true"}, "[deprecated] property isn't a boolean, but of type [java.lang.String]", "deprecated"),
        (
            {"processors": {"set": {}}},
            "[processors] property isn't a list, but of type [java.util.HashMap]",
            "processors",
        ),
    ],
)
def test_pipeline_properties_are_read_as_configuration_utils_does(body, reason, prop):
    # Pipeline.create: readOptionalStringProperty / readIntProperty / readOptionalMap /
    # readOptionalBooleanProperty / readList (PipelineFactoryTests#testCreate reads version "123" as 123)
    err = error(simulate({"processors": [], **body}))
    assert err["type"] == "parse_exception" and err["reason"] == reason and err["property_name"] == prop


def test_version_as_string_is_an_int():
    # PipelineFactoryTests#testCreate: the version is given as Integer.toString(version)
    assert simulate({"processors": [], "version": "-12", "_meta": {"a": {"b": 1}}, "deprecated": True}).status == 200


# -- ConditionalProcessorTests and the Painless of conditions -------------------------------------------

DOC = {"a": 1, "s": "hello", "tags": ["a", "b"], "a.b": 2, "n": {"x": 3}, "f": 1.5}


@pytest.mark.parametrize(
    ("condition", "hit"),
    [
        ("ctx.a instanceof Integer", True),
        ("ctx.f instanceof Double && !(ctx.s instanceof Number)", True),
        ("ctx.missing instanceof Object", False),
        ("ctx.b?.c ?: true", True),
        ("ctx.a > 0 ? ctx.s == 'hello' : false", True),
        ("['x', 'hello'].contains(ctx.s)", True),
        ("def m = ['k': 1]; return m.k == ctx.a", True),
        ("for (def t : ctx.tags) { if (t == 'b') { return true; } } return false;", True),
        ("ctx['a.b'] == 2", True),
        ("ctx.n.x == 3 && ctx.n?.y == null", True),
        ("ctx.s.toUpperCase() == 'HELLO' && ctx.s.length() == 5;", True),
        ("ctx.s.equals('bye')", False),
    ],
)
def test_painless_conditions(condition, hit):
    resp = simulate(
        {"processors": [{"set": {"field": "hit", "value": True, "if": condition}}]}, [{"_source": dict(DOC)}]
    )
    assert resp.status == 200, resp.body
    assert resp.body["docs"][0]["doc"]["_source"].get("hit", False) is hit


def test_condition_cannot_mutate_the_document():
    # ConditionalProcessorTests#testActsOnImmutableData
    resp = simulate({"processors": [{"set": {"field": "hit", "value": True, "if": "ctx.x = 1; return true"}}]})
    err = resp.body["docs"][0]["error"]
    assert err["type"] == "script_exception" and err["reason"] == "runtime error"
    assert err["caused_by"] == {
        "type": "unsupported_operation_exception",
        "reason": "Mutating ingest documents in conditionals is not supported",
    }


def test_condition_errors_are_their_own_root_cause():
    # a ScriptException wraps a plain Java exception: ES's root_cause is the script_exception
    resp = simulate({"processors": [{"set": {"field": "x", "value": 1, "if": "ctx.zz.y == 1"}}]})
    err = resp.body["docs"][0]["error"]
    assert err["root_cause"][0]["type"] == "script_exception" and err["root_cause"][0]["reason"] == "runtime error"
    assert err["caused_by"]["type"] == "null_pointer_exception"


# -- TrackingResultProcessor / SimulateProcessorResult ----------------------------------------------------


def test_verbose_condition_failure_has_no_if():
    # TrackingResultProcessor: a condition that throws is recorded without its {condition, result}
    resp = simulate(
        {"processors": [{"set": {"field": "x", "value": 1, "if": "ctx.zz.y == 1", "tag": "t"}}]}, verbose=True
    )
    (result,) = resp.body["docs"][0]["processor_results"]
    assert list(result) == ["processor_type", "status", "tag", "error"]
    assert result["status"] == "error"


def test_verbose_condition_failure_ignored_has_the_doc_and_no_if():
    resp = simulate(
        {"processors": [{"set": {"field": "x", "value": 1, "if": "ctx.zz.y == 1", "ignore_failure": True}}]},
        verbose=True,
    )
    (result,) = resp.body["docs"][0]["processor_results"]
    assert list(result) == ["processor_type", "status", "ignored_error", "doc"]
    assert result["status"] == "error_ignored"


def test_verbose_skipped_and_true_conditions():
    resp = simulate(
        {
            "processors": [
                {"set": {"field": "x", "value": 1, "if": "ctx.a == 2"}},
                {"fail": {"message": "m", "if": "ctx.a == 1"}},
            ]
        },
        verbose=True,
    )
    skipped, failed = resp.body["docs"][0]["processor_results"]
    assert skipped == {"processor_type": "set", "status": "skipped", "if": {"condition": "ctx.a == 2", "result": False}}
    assert failed["if"] == {"condition": "ctx.a == 1", "result": True} and failed["status"] == "error"


# -- ScriptProcessorFactoryTests --------------------------------------------------------------------------


def test_script_with_both_id_and_source():
    # ScriptProcessorFactoryTests#testFactoryValidationForMultipleScriptingTypes
    resp = Engine().request(
        "PUT",
        "_ingest/pipeline/p",
        {"processors": [{"script": {"id": "foo", "source": "bar", "lang": "mockscript", "tag": "t"}}]},
    )
    err = error(resp)
    assert "[script] failed to parse field [source]" in err["reason"]
    assert err["processor_type"] == "script" and err["processor_tag"] == "t"
    assert err["caused_by"]["type"] == "x_content_parse_exception"
    assert err["caused_by"]["caused_by"] == {
        "type": "illegal_argument_exception",
        "reason": "must only use one of [source, id] when specifying a script",
    }


def test_script_with_no_source_or_id():
    # ScriptProcessorFactoryTests#testFactoryValidationAtLeastOneScriptingType
    err = error(Engine().request("PUT", "_ingest/pipeline/p", {"processors": [{"script": {"lang": "painless"}}]}))
    assert err["reason"] == "must specify either [source] for an inline script or [id] for a stored script"


# -- SimulatePipelineRequest.parseDocs ----------------------------------------------------------------------


def test_document_metadata_is_answered_as_text():
    # SimulatePipelineRequestParsingTests#testParseWithProvidedPipeline: an int _routing is String.valueOf;
    # the answer writes each metadata value's toString
    resp = simulate(
        {"processors": []},
        [
            {
                "_index": 5,
                "_id": "i",
                "_routing": 7,
                "_version": 9,
                "_version_type": "external_gte",
                "_if_seq_no": 3,
                "_if_primary_term": 4,
                "_source": {"a": 1},
            }
        ],
    )
    doc = resp.body["docs"][0]["doc"]
    assert {
        k: doc[k] for k in ("_index", "_id", "_routing", "_version", "_version_type", "_if_seq_no", "_if_primary_term")
    } == {
        "_index": "5",
        "_id": "i",
        "_routing": "7",
        "_version": "9",
        "_version_type": "external_gte",
        "_if_seq_no": "3",
        "_if_primary_term": "4",
    }


@pytest.mark.parametrize(
    ("doc", "kind", "reason"),
    [
        ("x", "illegal_argument_exception", "malformed [docs] section, should include an inner object"),
        (
            {"_index": 1.5, "_source": {}},
            "parse_exception",
            "[_index] property isn't a string or int, but of type [java.lang.Double]",
        ),
        ({"_version": None, "_source": {}}, "illegal_argument_exception", "[_version] cannot be null"),
        ({"_version": "abc", "_source": {}}, "number_format_exception", 'For input string: "abc"'),
        ({"_version_type": "zzz", "_source": {}}, "illegal_argument_exception", "No version type match [zzz]"),
        ({"_if_primary_term": None, "_source": {}}, "illegal_argument_exception", "[_if_primary_term] cannot be null"),
    ],
)
def test_document_parse_errors(doc, kind, reason):
    err = error(simulate({"processors": []}, [doc]))
    assert (err["type"], err["reason"]) == (kind, reason)


def test_condition_params():
    # Script.parse of the `if` object: its params are the condition's `params`
    cond = {"source": "ctx.a == params.want", "params": {"want": 1}}
    resp = simulate({"processors": [{"set": {"field": "hit", "value": True, "if": cond}}]})
    assert resp.body["docs"][0]["doc"]["_source"]["hit"] is True


def test_script_instanceof():
    resp = simulate(
        {"processors": [{"script": {"source": "ctx.t = ctx.a instanceof Integer; ctx.u = ctx.a instanceof String"}}]}
    )
    source = resp.body["docs"][0]["doc"]["_source"]
    assert (source["t"], source["u"]) == (True, False)


@pytest.mark.parametrize(
    "condition",
    [
        "ctx.n instanceof Number",
        "ctx.s != null ? ctx.s.length() > 2 : false",
        "(ctx.n ?: 0) > 1",
        "['a', 'bcd'].contains(ctx.s)",
        "ctx.n = 1; return true",
    ],
)
def test_painless_conditions_in_frames_match_per_document(condition):
    # a condition the column form cannot read: its rows are evaluated one by one, with the same answers
    import pandas as pd

    from es_infer_nb.frames.pipeline import run_frame_pipeline

    df = pd.DataFrame({"n": [1, 2, None, 5], "s": ["a", "bcd", None, "xy"]})
    body = {"processors": [{"set": {"field": "hit", "value": True, "if": condition, "ignore_failure": True}}]}
    eng = Engine()
    slow = run_frame_pipeline(eng, df, body, columnar=False)
    fast = run_frame_pipeline(eng, df, body)
    pd.testing.assert_frame_equal(slow, fast, check_like=True)


BAD_IF = "ctx.zz.y == 1"


@pytest.mark.parametrize(
    "options", [{"ignore_failure": True}, {"on_failure": [{"set": {"field": "handled", "value": True}}]}]
)
def test_condition_failure_is_not_the_processors_to_ignore_or_handle(options):
    # ConfigurationUtils.readProcessor wraps ignore_failure / on_failure first, the ConditionalProcessor around them
    resp = simulate({"processors": [{"set": {"field": "x", "value": 1, "if": BAD_IF, **options}}]})
    assert resp.body["docs"][0]["error"]["type"] == "script_exception"


def test_condition_failure_reaches_the_pipeline_on_failure_as_the_conditional_processor():
    # CompoundProcessor.newCompoundProcessorException names the failing processor: ConditionalProcessor.TYPE
    pipeline = {
        "processors": [{"set": {"field": "x", "value": 1, "tag": "T", "if": BAD_IF}}],
        "on_failure": [
            {
                "set": {
                    "field": "h",
                    "value": "{{_ingest.on_failure_processor_type}}/{{_ingest.on_failure_processor_tag}}",
                }
            }
        ],
    }
    assert simulate(pipeline).body["docs"][0]["doc"]["_source"]["h"] == "conditional/T"
