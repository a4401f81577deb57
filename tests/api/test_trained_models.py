"""Trained model CRUD, aliases, ids, paging and errors through Engine.request."""

from __future__ import annotations



from es_infer_nb import Engine
from es_infer_nb.models.config import compress_definition
from helpers import churn_model, error_of, stump_regression


def test_put_returns_config_without_definition(engine):
    resp = engine.request("PUT", "_ml/trained_models/churn-gbt", churn_model())
    assert resp.status == 200
    body = resp.body
    assert body["model_id"] == "churn-gbt"
    assert body["model_type"] == "tree_ensemble"
    assert body["created_by"] == "api_user"
    assert body["license_level"] == "platinum"
    assert body["version"] == "12.0.0"
    assert isinstance(body["create_time"], int)
    assert body["model_size_bytes"] > 0
    # ensemble of one depth-1 tree over 3 features: ceil(ln 3) + 3 = 5
    assert body["estimated_operations"] == 5
    assert "definition" not in body and "compressed_definition" not in body
    assert list(body)[:10] == [
        "model_id", "model_type", "created_by", "version", "create_time", "model_size_bytes",
        "estimated_operations", "license_level", "description", "tags",
    ]
    assert body["inference_config"] == {
        "classification": {
            "num_top_classes": 0, "top_classes_results_field": "top_classes", "results_field": "predicted_value",
            "num_top_feature_importance_values": 0, "prediction_field_type": "string",
        }
    }


def test_leading_slash_and_query_string_forms(engine):
    assert engine.request("PUT", "/_ml/trained_models/m1", stump_regression()).status == 200
    a = engine.request("GET", "/_ml/trained_models/m1?include=definition")
    b = engine.request("GET", "_ml/trained_models/m1", params={"include": "definition"})
    assert a.status == b.status == 200
    assert a.body == b.body
    assert a.body["trained_model_configs"][0]["definition"]["trained_model"]["tree"]["feature_names"] == ["x"]


def test_json_text_body_and_malformed_json(engine):
    import json

    assert engine.request("PUT", "_ml/trained_models/m1", json.dumps(stump_regression())).status == 200
    bad = engine.request("PUT", "_ml/trained_models/m2", '{"input": ')
    assert bad.status == 400
    assert error_of(bad)["type"] == "x_content_parse_exception"
    assert engine.request("GET", "_ml/trained_models/m2").status == 404


def test_duplicate_unknown_and_invalid_ids(engine):
    engine.request("PUT", "_ml/trained_models/m1", stump_regression())
    dup = engine.request("PUT", "_ml/trained_models/m1", stump_regression())
    assert dup.status == 400
    assert error_of(dup)["type"] == "resource_already_exists_exception"
    assert error_of(dup)["reason"] == "Trained machine learning model [m1] already exists"
    missing = engine.request("GET", "_ml/trained_models/nope")
    assert missing.status == 404
    assert error_of(missing) == {
        "root_cause": [{"type": "resource_not_found_exception", "reason": "Could not find trained model [nope]"}],
        "type": "resource_not_found_exception",
        "reason": "Could not find trained model [nope]",
    }
    assert missing.body["status"] == 404
    bad = engine.request("PUT", "_ml/trained_models/Bad_Id", stump_regression())
    assert bad.status == 400
    err = error_of(bad)
    assert err["type"] == "action_request_validation_exception"
    assert "Invalid model_id; 'Bad_Id'" in err["reason"]
    assert err["reason"].startswith("Validation Failed: 1: ")


def test_invalid_configs_name_the_field(engine):
    body = stump_regression()
    body["inference_config"] = None
    r = engine.request("PUT", "_ml/trained_models/m", body)
    assert r.status == 400 and "[inference_config] must not be null." in error_of(r)["reason"]

    body = stump_regression()
    body["colour"] = "red"
    r = engine.request("PUT", "_ml/trained_models/m", body)
    assert r.status == 400
    assert error_of(r) ["type"] == "x_content_parse_exception"
    assert "unknown field [colour]" in error_of(r)["reason"]

    body = stump_regression()
    body["definition"]["trained_model"]["tree"]["tree_structure"][0]["threshold"] = "high"
    r = engine.request("PUT", "_ml/trained_models/m", body)
    assert r.status == 400 and "[threshold]" in error_of(r)["reason"]

    body = stump_regression()
    body["create_time"] = 5
    r = engine.request("PUT", "_ml/trained_models/m", body)
    assert "illegal to set [create_time] at inference model creation" in error_of(r)["reason"]

    body = stump_regression()
    body["inference_config"] = {"classification": {}}
    r = engine.request("PUT", "_ml/trained_models/m", body)
    assert error_of(r)["reason"] == (
        "Model [m] inference config type [classification] does not support definition target type [regression]"
    )
    assert engine.request("GET", "_ml/trained_models/m").status == 404


def test_compressed_definition_round_trip(engine):
    body = stump_regression()
    definition = body.pop("definition")
    body["compressed_definition"] = compress_definition(definition)
    assert engine.request("PUT", "_ml/trained_models/c1", body).status == 200
    got = engine.request("GET", "_ml/trained_models/c1", params={"include": "definition"}).body
    assert got["trained_model_configs"][0]["definition"] == definition
    comp = engine.request(
        "GET", "_ml/trained_models/c1", params={"include": "definition", "decompress_definition": False}
    ).body["trained_model_configs"][0]
    assert "definition" not in comp and isinstance(comp["compressed_definition"], str)
    res = engine.infer("c1", [{"x": 0.1}, {"x": 0.9}])
    assert res == [{"predicted_value": 1.0}, {"predicted_value": 2.0}]
    both = stump_regression()
    both["compressed_definition"] = compress_definition(definition)
    r = engine.request("PUT", "_ml/trained_models/c2", both)
    assert "both [compressed_definition] and [definition] cannot be set." in error_of(r)["reason"]


def test_get_lists_wildcards_paging_and_allow_no_match(engine):
    for name in ["b-model", "a-model", "c-other"]:
        engine.request("PUT", f"_ml/trained_models/{name}", stump_regression())
    all_ = engine.request("GET", "_ml/trained_models").body
    ids = [c["model_id"] for c in all_["trained_model_configs"]]
    assert ids == ["a-model", "b-model", "c-other", "lang_ident_model_1"]
    assert engine.request("GET", "_ml/trained_models/_all").body == all_
    page = engine.request("GET", "_ml/trained_models/*", params={"from": 1, "size": 2}).body
    assert page["count"] == 4 and [c["model_id"] for c in page["trained_model_configs"]] == ["b-model", "c-other"]
    some = engine.request("GET", "_ml/trained_models/a-*,c-other").body
    assert [c["model_id"] for c in some["trained_model_configs"]] == ["a-model", "c-other"]
    none = engine.request("GET", "_ml/trained_models/zzz*")
    assert none.status == 200 and none.body == {"count": 0, "trained_model_configs": []}
    strict = engine.request("GET", "_ml/trained_models/zzz*", params={"allow_no_match": False})
    assert strict.status == 404
    bad_param = engine.request("GET", "_ml/trained_models", params={"colour": "red"})
    assert bad_param.status == 400 and "unrecognized parameter: [colour]" in error_of(bad_param)["reason"]


def test_include_metadata_parts(engine):
    body = stump_regression()
    body["metadata"] = {"feature_importance_baseline": {"baseline": 1.5}, "hyperparameters": [
        {"name": "eta", "value": 0.1, "supplied": True}], "other": 1}
    engine.request("PUT", "_ml/trained_models/m", body)
    plain = engine.request("GET", "_ml/trained_models/m").body["trained_model_configs"][0]
    assert plain["metadata"] == {"other": 1}
    full = engine.request(
        "GET", "_ml/trained_models/m", params={"include": "feature_importance_baseline,hyperparameters"}
    ).body["trained_model_configs"][0]
    assert full["metadata"]["feature_importance_baseline"] == {"baseline": 1.5}
    assert full["metadata"]["hyperparameters"][0]["name"] == "eta"
    assert "fully_defined" not in full
    # ES: definition status is a pytorch notion (400 for other model types, and for several models)
    status = engine.request("GET", "_ml/trained_models/m", params={"include": "definition_status"})
    assert status.status == 400
    assert status.body["error"]["reason"] == "Definition status is only relevant to PyTorch model types"
    several = engine.request("GET", "_ml/trained_models/_all", params={"include": "definition_status"})
    assert several.status == 400
    assert several.body["error"]["reason"] == ("Getting the model download status is not supported when getting "
                                               "more than one model")
    bad = engine.request("GET", "_ml/trained_models/m", params={"include": "everything"})
    assert bad.status == 400


def test_delete(engine):
    engine.request("PUT", "_ml/trained_models/m", stump_regression())
    assert engine.request("DELETE", "_ml/trained_models/m").body == {"acknowledged": True}
    assert engine.request("DELETE", "_ml/trained_models/m").status == 404


def test_aliases(engine):
    engine.request("PUT", "_ml/trained_models/m-a", stump_regression(left=10.0))
    engine.request("PUT", "_ml/trained_models/m-b", stump_regression(left=20.0))
    assert engine.request("PUT", "_ml/trained_models/m-a/model_aliases/current").body == {"acknowledged": True}
    assert engine.infer("current", [{"x": 0}]) == [{"predicted_value": 10.0}]
    cfg = engine.request("GET", "_ml/trained_models/current").body["trained_model_configs"][0]
    assert cfg["model_id"] == "m-a" and cfg["metadata"]["model_aliases"] == ["current"]
    r = engine.request("PUT", "_ml/trained_models/m-b/model_aliases/current")
    assert r.status == 400 and "reassign" in error_of(r)["reason"]
    engine.request("PUT", "_ml/trained_models/m-b/model_aliases/current", params={"reassign": True})
    assert engine.infer("current", [{"x": 0}]) == [{"predicted_value": 20.0}]
    r = engine.request("DELETE", "_ml/trained_models/m-a/model_aliases/current")
    assert r.status == 409
    assert engine.request("DELETE", "_ml/trained_models/m-b/model_aliases/current").status == 200
    assert engine.request("GET", "_ml/trained_models/current").status == 404
    bad = engine.request("PUT", "_ml/trained_models/m-a/model_aliases/alias-1")
    assert bad.status == 400 and "cannot end with numbers" in error_of(bad)["reason"]


def test_unknown_route_and_wrong_method(engine):
    r = engine.request("GET", "_nothing/here?x=1")
    assert r.status == 400
    assert r.body == {"error": "no handler found for uri [/_nothing/here?x=1] and method [GET]"}
    r = engine.request("PATCH", "_ml/trained_models/m")
    assert r.status == 405
    assert r.body == {
        "error": "Incorrect HTTP method for uri [/_ml/trained_models/m] and method [PATCH], allowed: [DELETE, GET, HEAD, PUT]",
        "status": 405,
    }
    assert r.headers["Allow"] == "DELETE,GET,HEAD,PUT"


def test_persistence_across_engines(tmp_path):
    first = Engine(tmp_path)
    first.request("PUT", "_ml/trained_models/m", stump_regression())
    first.request("PUT", "_ml/trained_models/m/model_aliases/latest")
    second = Engine(tmp_path)
    assert second.infer("latest", [{"x": 1.0}]) == [{"predicted_value": 2.0}]
    assert not list(tmp_path.rglob(".tmp-*"))
    second.request("DELETE", "_ml/trained_models/m")
    assert Engine(tmp_path).request("GET", "_ml/trained_models/m").status == 404


def test_failed_put_does_not_damage_existing(tmp_path):
    eng = Engine(tmp_path)
    eng.request("PUT", "_ml/trained_models/m", stump_regression())
    bad = stump_regression()
    bad["definition"]["trained_model"]["tree"]["tree_structure"][0]["left_child"] = 7
    assert eng.request("PUT", "_ml/trained_models/m", bad).status == 400
    assert eng.request("PUT", "_ml/trained_models/m2", bad).status == 400
    assert Engine(tmp_path).infer("m", [{"x": 0.0}]) == [{"predicted_value": 1.0}]


def test_default_engine_uses_home(tmp_path, monkeypatch):
    import es_infer_nb

    monkeypatch.setenv("ES_INFER_NB_HOME", str(tmp_path))
    es_infer_nb.set_default_engine(None)
    try:
        eng = es_infer_nb.default_engine()
        assert eng.home == tmp_path
        assert es_infer_nb.default_engine() is eng
    finally:
        es_infer_nb.set_default_engine(None)
    monkeypatch.delenv("ES_INFER_NB_HOME")
    try:
        assert es_infer_nb.default_engine().home is None
    finally:
        es_infer_nb.set_default_engine(None)


def _reason(engine, url_id, **changes):
    body = stump_regression()
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    r = engine.request("PUT", f"_ml/trained_models/{url_id}", body)
    assert r.status == 400, r.body
    return error_of(r)["type"], error_of(r)["reason"]


def test_put_validation_follows_trained_model_config_builder(engine):
    """TrainedModelConfig.Builder.validate(true) / the constructor / PutTrainedModelAction.Request, in ES's words."""
    vf = "action_request_validation_exception"
    assert _reason(engine, "m", tags=["Bad Tag", "ok", "x!"]) == (vf, (
        "Validation Failed: 1: Invalid tags [Bad Tag, x!]; must only can contain lowercase alphanumeric (a-z and 0-9), "
        "hyphens or underscores, must start and end with alphanumeric, and must be less than 64 characters.;"))
    assert _reason(engine, "m", tags=["m"]) == (vf, "Validation Failed: 1: none of the tags must equal the model_id;")
    assert _reason(engine, "m", input={"field_names": ["a..b"]}) == (
        vf, "Validation Failed: 1: [input.field_names] must only contain valid dot delimited field names;")
    assert _reason(engine, "m", model_package={"packaged_model_id": "x"}) == (
        vf, "Validation Failed: 1: illegal to set [model_package] at inference model creation;")
    assert _reason(engine, "m", input=None) == ("illegal_argument_exception", "[input] must not be null.")
    assert _reason(engine, "m", model_size_bytes=-1) == (
        "illegal_argument_exception", "[model_size_bytes] must be greater than or equal to 0")
    assert _reason(engine, "m", model_id="other") == (
        "illegal_argument_exception",
        "Inconsistent model_id; 'other' specified in the body differs from 'm' specified as a URL argument")
    # several problems: ES's order (type, config, id, tags, input, illegal settings)
    assert _reason(engine, "Bad", inference_config=None, tags=["Bad"], version="8.0.0") == (vf, (
        "Validation Failed: 1: [inference_config] must not be null.;2: Invalid model_id; 'Bad' can contain lowercase "
        "alphanumeric (a-z and 0-9), hyphens or underscores; must start and end with alphanumeric;3: Invalid tags [Bad]; "
        "must only can contain lowercase alphanumeric (a-z and 0-9), hyphens or underscores, must start and end with "
        "alphanumeric, and must be less than 64 characters.;4: none of the tags must equal the model_id;"
        "5: illegal to set [version] at inference model creation;"))
    assert engine.request("GET", "_ml/trained_models/m").status == 404  # nothing stored


def test_estimated_operations_may_be_set_without_a_definition(engine):
    r = engine.request("PUT", "_ml/trained_models/pt", {
        "model_type": "pytorch", "inference_config": {"pass_through": {}}, "estimated_operations": 7})
    assert r.status == 200, r.body
    assert r.body["estimated_operations"] == 7


def test_fill_mask_mask_token_defaults_to_the_tokenizers_and_must_match_it(engine):
    """FillMaskConfig: mask_token is the tokenization's ([MASK] for bert, <mask> for roberta)."""
    def put(model_id, kind, mask=None):
        inner = {"tokenization": {kind: {"with_special_tokens": False}}}
        if mask is not None:
            inner["mask_token"] = mask
        return engine.request("PUT", f"_ml/trained_models/{model_id}",
                              {"model_type": "pytorch", "inference_config": {"fill_mask": inner}})

    assert put("b", "bert").body["inference_config"]["fill_mask"]["mask_token"] == "[MASK]"
    assert put("r", "roberta").status == 200
    got = engine.request("GET", "_ml/trained_models/r").body["trained_model_configs"][0]
    assert got["inference_config"]["fill_mask"]["mask_token"] == "<mask>"
    bad = put("x", "bert", "<mask>")
    assert bad.status == 400
    assert (error_of(bad)["type"], error_of(bad)["reason"]) == (
        "illegal_argument_exception", "Mask token requested was [<mask>] but must be [[MASK]] for this model")
    assert engine.request("GET", "_ml/trained_models/x").status == 404
