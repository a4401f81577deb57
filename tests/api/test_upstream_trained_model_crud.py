"""Trained model CRUD and model aliases as Elasticsearch's transport actions and request classes check
them (x-pack/plugin/ml ``Transport{Get,Put,Delete}TrainedModel*Action``, ``TrainedModelProvider``,
x-pack/plugin/core ``PutTrainedModelAliasAction.Request``, ``PutTrainedModel{DefinitionPart,Vocabulary}Action``)."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import error_of, stump_regression


def _classification() -> dict[str, Any]:
    return {
        "input": {"field_names": ["x"]},
        "inference_config": {"classification": {}},
        "definition": {
            "trained_model": {
                "tree": {
                    "feature_names": ["x"],
                    "tree_structure": [{"node_index": 0, "leaf_value": 1}],
                    "target_type": "classification",
                    "classification_labels": ["no", "yes"],
                }
            }
        },
    }


def _put(engine, model_id: str, body: dict[str, Any] | None = None) -> None:
    resp = engine.request("PUT", f"_ml/trained_models/{model_id}", body or stump_regression())
    assert resp.status == 200, resp.body


def _error(resp) -> tuple[int, str, str]:
    err = error_of(resp)
    return resp.status, err["type"], err["reason"]


def _alias(engine, model_id: str, alias: str, **params: str):
    return engine.request("PUT", f"_ml/trained_models/{model_id}/model_aliases/{alias}", params=params or None)


# -- PutTrainedModelAliasActionRequestTests --------------------------------------------------------


def test_alias_validate_accepts_the_upstream_valid_aliases(engine):
    # testValidate: "a", "1", "2b", "c-3d", "e_4f", "g.5h" are valid model aliases
    _put(engine, "foo")
    for alias in ("a", "1", "2b", "c-3d", "e_4f", "g.5h"):
        resp = _alias(engine, "foo", alias)
        assert resp.status == 200, (alias, resp.body)


def test_alias_equal_to_model_id(engine):
    # testValidate_modelAliasEqualToModelId
    assert _error(_alias(engine, "foo", "foo")) == (
        400,
        "action_request_validation_exception",
        "Validation Failed: 1: model_alias [foo] cannot equal model_id [foo];",
    )


def test_alias_equal_to_model_id_with_invalid_character(engine):
    # testValidate_modelAliasEqualToModelIdWithInvalidCharacter: both errors, the equality one first
    status, kind, reason = _error(_alias(engine, "foo!", "foo!"))
    assert (status, kind) == (400, "action_request_validation_exception")
    assert reason == (
        "Validation Failed: 1: model_alias [foo!] cannot equal model_id [foo!];2: Invalid model_alias; 'foo!' can "
        "contain lowercase alphanumeric (a-z and 0-9), hyphens or underscores; must start with alphanumeric and "
        "cannot end with numbers;"
    )


@pytest.mark.parametrize(
    "alias",
    # testValidate_modelAliasContainsUppercase, _EndsWithNumber, _StartsWithInvalidCharacter,
    # _ContainsInvalidCharacter, _EndsWithInvalidCharacter
    ["Start", "midDle", "enD", "abcdefghij123", "-abc", "_abc", ".abc", "abc$def", "abc-", "abc_", "abc."],
)
def test_invalid_aliases(engine, alias):
    _put(engine, "foo")
    status, kind, reason = _error(_alias(engine, "foo", alias))
    assert (status, kind) == (400, "action_request_validation_exception")
    assert reason == (
        f"Validation Failed: 1: Invalid model_alias; '{alias}' can contain lowercase alphanumeric (a-z and 0-9), "
        "hyphens or underscores; must start with alphanumeric and cannot end with numbers;"
    )


# -- TransportPutTrainedModelAliasAction -------------------------------------------------------------


def test_existing_alias_without_reassign_is_refused_even_for_the_same_model(engine):
    # masterOperation: oldModelId != null && reassign == false -> badRequestException (status_exception)
    _put(engine, "m-one")
    assert _alias(engine, "m-one", "my-alias").status == 200
    assert _error(_alias(engine, "m-one", "my-alias")) == (
        400,
        "status_exception",
        "cannot assign model_alias [my-alias] to model_id [m-one] as model_alias already refers to [m-one]. "
        "Set parameter [reassign] to [true] if model_alias should be reassigned.",
    )
    assert _alias(engine, "m-one", "my-alias", reassign="true").status == 200


def test_alias_equal_to_an_existing_model_id(engine):
    # masterOperation: "model_alias cannot be the same as an existing trained model_id"
    _put(engine, "m-one")
    _put(engine, "m-two")
    assert _error(_alias(engine, "m-one", "m-two")) == (
        400,
        "status_exception",
        "model_alias cannot be the same as an existing trained model_id",
    )


def test_reassign_across_inference_config_kinds(engine):
    # masterOperation: inference config names differ -> badRequestException
    _put(engine, "reg")
    _put(engine, "cls", _classification())
    assert _alias(engine, "reg", "my-alias").status == 200
    assert _error(_alias(engine, "cls", "my-alias", reassign="true")) == (
        400,
        "status_exception",
        "cannot reassign model_alias [my-alias] to model [cls] with inference config type [classification] "
        "from model [reg] with type [regression]",
    )


def test_reassign_across_model_types(engine):
    # masterOperation: same inference config kind, different model_type -> badRequestException
    # (lang_ident_model_1: model_type lang_ident, a classification config)
    _put(engine, "cls", _classification())
    assert _alias(engine, "lang_ident_model_1", "my-alias").status == 200
    assert _error(_alias(engine, "cls", "my-alias", reassign="true")) == (
        400,
        "status_exception",
        "cannot reassign model_alias [my-alias] to model [cls] with type [tree_ensemble] "
        "from model [lang_ident_model_1] with type [lang_ident]",
    )


def test_alias_of_the_builtin_lang_ident_model(engine):
    # ES stores lang_ident_model_1 as a resource; getTrainedModels finds it, an alias may name it
    assert _alias(engine, "lang_ident_model_1", "lang-ident").status == 200
    got = engine.request("GET", "_ml/trained_models/lang-ident").body
    assert [c["model_id"] for c in got["trained_model_configs"]] == ["lang_ident_model_1"]


# -- TransportDeleteTrainedModelAliasAction ------------------------------------------------------------


def test_delete_alias_errors_are_status_exceptions(engine):
    # deleteModelAlias: ElasticsearchStatusException NOT_FOUND / CONFLICT
    _put(engine, "m-one")
    assert _error(engine.request("DELETE", "_ml/trained_models/m-one/model_aliases/nope")) == (
        404,
        "status_exception",
        "model_alias [nope] could not be found",
    )
    assert _alias(engine, "m-one", "my-alias").status == 200
    pipeline = {"processors": [{"inference": {"model_id": "my-alias"}}]}
    assert engine.request("PUT", "_ingest/pipeline/p", pipeline).status == 200
    assert _error(engine.request("DELETE", "_ml/trained_models/m-one/model_aliases/my-alias")) == (
        409,
        "status_exception",
        "Cannot delete model_alias [my-alias] as it is still referenced by ingest processors",
    )


# -- TransportDeleteTrainedModelAction / InferenceProcessorInfoExtractor --------------------------------


def test_delete_lang_ident_is_refused(engine):
    # TrainedModelProvider.deleteTrainedModel: INFERENCE_CANNOT_DELETE_ML_MANAGED_MODEL
    assert _error(engine.request("DELETE", "_ml/trained_models/lang_ident_model_1")) == (
        400,
        "status_exception",
        "Unable to delete model [lang_ident_model_1] as it is required by machine learning",
    )


@pytest.mark.parametrize(
    "processors",
    [
        [{"foreach": {"field": "f", "processor": {"inference": {"model_id": "m-one"}}}}],
        [{"set": {"field": "a", "value": 1, "on_failure": [{"inference": {"model_id": "m-one"}}]}}],
    ],
)
def test_delete_model_referenced_inside_foreach_or_on_failure(engine, processors):
    # InferenceProcessorInfoExtractor.getModelIdsFromInferenceProcessors: foreach and on_failure nesting
    _put(engine, "m-one")
    assert engine.request("PUT", "_ingest/pipeline/p", {"processors": processors}).status == 200
    assert _error(engine.request("DELETE", "_ml/trained_models/m-one")) == (
        409,
        "status_exception",
        "Cannot delete model [m-one] as it is still referenced by ingest processors; use force to delete the model",
    )


def test_pipeline_level_on_failure_is_no_reference(engine):
    # InferenceProcessorInfoExtractor reads the pipeline's "processors" only
    _put(engine, "m-one")
    pipeline = {
        "processors": [{"set": {"field": "a", "value": 1}}],
        "on_failure": [{"inference": {"model_id": "m-one"}}],
    }
    assert engine.request("PUT", "_ingest/pipeline/p", pipeline).status == 200
    assert engine.request("DELETE", "_ml/trained_models/m-one").status == 200


# -- TransportPutTrainedModelAction ---------------------------------------------------------------------


def test_put_model_id_equal_to_an_alias(engine):
    # masterOperation: the id is an existing model_alias -> badRequestException
    _put(engine, "m-one")
    assert _alias(engine, "m-one", "my-alias").status == 200
    assert _error(engine.request("PUT", "_ml/trained_models/my-alias", stump_regression())) == (
        400,
        "status_exception",
        "requested model_id [my-alias] is the same as an existing model_alias. Model model_aliases and ids must be "
        "unique",
    )


def test_put_model_id_and_tags_unique(engine):
    # checkModelIdAgainstTags / checkTagsAgainstModelIds: INFERENCE_MODEL_ID_AND_TAGS_UNIQUE and
    # INFERENCE_TAGS_AND_MODEL_IDS_UNIQUE
    _put(engine, "m-one", {**stump_regression(), "tags": ["shared"]})
    assert _error(engine.request("PUT", "_ml/trained_models/shared", stump_regression())) == (
        400,
        "status_exception",
        "The provided model_id shared must not match existing tags.",
    )
    body = {**stump_regression(), "tags": ["other", "m-one"]}
    assert _error(engine.request("PUT", "_ml/trained_models/m-two", body)) == (
        400,
        "status_exception",
        "The provided tags [other, m-one] must not match existing model_ids.",
    )


# -- TransportGetTrainedModelsAction / RestGetTrainedModelsAction / TrainedModelProvider.expandIds ---------


def test_definition_of_one_model_page(engine):
    # the "more than one model" rule applies to the expanded page (totalAndIds.v2()), a badRequestException
    _put(engine, "m-one")
    _put(engine, "m-two")
    one = engine.request("GET", "_ml/trained_models/m-*", params={"include": "definition", "size": "1"})
    assert one.status == 200, one.body
    assert one.body["count"] == 2
    assert [c["model_id"] for c in one.body["trained_model_configs"]] == ["m-one"]
    assert "definition" in one.body["trained_model_configs"][0]
    assert _error(engine.request("GET", "_ml/trained_models/m-*", params={"include": "definition"})) == (
        400,
        "status_exception",
        "Getting model definition is not supported when getting more than one model",
    )


def test_unknown_include(engine):
    # GetTrainedModelsAction.Includes: unknown values, KNOWN_INCLUDES in its HashSet order
    assert _error(engine.request("GET", "_ml/trained_models", params={"include": "foo"})) == (
        400,
        "status_exception",
        "unknown [include] parameters [foo]. Valid options are [hyperparameters, definition, "
        "feature_importance_baseline, definition_status, total_feature_importance]",
    )


def test_include_model_definition_replaces_include(engine):
    # RestGetTrainedModelsAction: with include_model_definition the include values are not checked
    _put(engine, "m-one")
    resp = engine.request(
        "GET", "_ml/trained_models/m-one", params={"include_model_definition": "true", "include": "foo"}
    )
    assert resp.status == 200, resp.body
    assert "definition" in resp.body["trained_model_configs"][0]


def test_tags_filter_before_the_ids_are_matched(engine):
    # expandIds: the tags are a filter of the search, ExpandedIdsMatcher then finds the explicit id unmatched
    _put(engine, "m-one", {**stump_regression(), "tags": ["a"]})
    assert _error(engine.request("GET", "_ml/trained_models/m-one", params={"tags": "b"})) == (
        404,
        "resource_not_found_exception",
        "Could not find trained model [m-one]",
    )
    wild = engine.request("GET", "_ml/trained_models/m-*", params={"tags": "b"})
    assert wild.status == 200 and wild.body == {"count": 0, "trained_model_configs": []}
    # ExpandedIdsMatcher: "*" is required when "_all" / "*" matches nothing and allow_no_match is false
    assert _error(
        engine.request("GET", "_ml/trained_models/_all", params={"tags": "b", "allow_no_match": "false"})
    ) == (
        404,
        "resource_not_found_exception",
        "Could not find trained model [*]",
    )


# -- PutTrainedModelDefinitionPartAction / PutTrainedModelVocabularyAction ----------------------------------


def test_definition_part_validated_before_the_model_is_read(engine):
    # Request.validate runs before the transport action looks the model up
    body = {"definition": "AAAA", "total_definition_length": 0, "total_parts": 1}
    assert _error(engine.request("PUT", "_ml/trained_models/missing/definition/0", body)) == (
        400,
        "action_request_validation_exception",
        "Validation Failed: 1: [total_definition_length] must be greater than 0;",
    )


def test_definition_part_for_a_model_without_location(engine):
    # TransportPutTrainedModelDefinitionPartAction: "cannot put definition for model [{}] as location is null"
    _put(engine, "tree")
    body = {"definition": "AAAA", "total_definition_length": 3, "total_parts": 1}
    assert _error(engine.request("PUT", "_ml/trained_models/tree/definition/0", body)) == (
        400,
        "status_exception",
        "cannot put definition for model [tree] as location is null",
    )


def test_definition_part_stored_twice(engine):
    # TrainedModelProvider.storeTrainedModelDefinitionDoc: a version conflict -> INFERENCE_TRAINED_MODEL_DOC_EXISTS
    _put(engine, "pt", {"model_type": "pytorch", "inference_config": {"pass_through": {}}})
    body = {"definition": "AAAA", "total_definition_length": 6, "total_parts": 2}
    assert engine.request("PUT", "_ml/trained_models/pt/definition/0", body).status == 200
    assert _error(engine.request("PUT", "_ml/trained_models/pt/definition/0", body)) == (
        400,
        "resource_already_exists_exception",
        "Trained machine learning model chunked doc [pt][0] already exists",
    )


def test_vocabulary_request_validation(engine):
    # PutTrainedModelVocabularyAction.Request: requireNonNull(vocabulary), then validate()
    _put(engine, "pt", {"model_type": "pytorch", "inference_config": {"pass_through": {}}})
    assert _error(engine.request("PUT", "_ml/trained_models/pt/vocabulary", {"merges": []})) == (
        400,
        "illegal_argument_exception",
        "[vocabulary] must not be null.",
    )
    assert _error(engine.request("PUT", "_ml/trained_models/missing/vocabulary", {"vocabulary": []})) == (
        400,
        "action_request_validation_exception",
        "Validation Failed: 1: [vocabulary] must not be empty;",
    )
    body = {"vocabulary": ["a", "b"], "scores": [1.0]}
    assert _error(engine.request("PUT", "_ml/trained_models/pt/vocabulary", body)) == (
        400,
        "action_request_validation_exception",
        "Validation Failed: 1: [scores] must have same length as [vocabulary];",
    )


def test_vocabulary_for_a_tree_model(engine):
    # TransportPutTrainedModelVocabularyAction: the config is no NlpConfig
    _put(engine, "tree")
    assert _error(engine.request("PUT", "_ml/trained_models/tree/vocabulary", {"vocabulary": ["a"]})) == (
        400,
        "status_exception",
        "cannot put vocabulary for model [tree] as it is not an NLP model",
    )
