"""Steps of Elasticsearch's ML YAML REST tests (x-pack/plugin/src/yamlRestTest/.../test/ml/) that
es_infer_nb answers through its routing table, with the exact upstream assertions."""

from __future__ import annotations

from typing import Any

from helpers import error_of

LTR_FEATURE_EXTRACTORS = [
    {
        "query_extractor": {
            "feature_name": "cost",
            "query": {"script_score": {"query": {"match_all": {}}, "script": {"source": "return doc['cost'].value;"}}},
        }
    },
    {"query_extractor": {"feature_name": "type_tv", "query": {"term": {"product": "TV"}}}},
]


def _split(node: int, feature: int, threshold: float) -> dict[str, Any]:
    return {
        "node_index": node,
        "split_feature": feature,
        "split_gain": 12,
        "threshold": threshold,
        "decision_type": "lte",
        "default_left": True,
        "left_child": 1,
        "right_child": 2,
    }


def _ltr_ensemble(feature_names: list[str]) -> dict[str, Any]:
    trees = [
        {
            "tree": {
                "feature_names": [name],
                "tree_structure": [
                    _split(0, 0, 400),
                    {"node_index": 1, "leaf_value": 5.0},
                    {"node_index": 2, "leaf_value": 2.0},
                ],
                "target_type": "regression",
            }
        }
        for name in feature_names
    ]
    return {
        "trained_model": {
            "ensemble": {"feature_names": feature_names, "target_type": "regression", "trained_models": trees}
        }
    }


def test_learning_to_rank_model_put_without_input(engine):
    # learning_to_rank_rescorer.yml setup: a tree ensemble with a learning_to_rank config and no
    # input (LearningToRankConfig.getDefaultInput: no field names) is created
    body = {
        "description": "super complex model for tests",
        "inference_config": {"learning_to_rank": {"feature_extractors": LTR_FEATURE_EXTRACTORS}},
        "definition": _ltr_ensemble(["cost", "type_tv"]),
    }
    r = engine.request("PUT", "_ml/trained_models/ltr-model", body)
    assert r.status == 200, r.body
    config = engine.request("GET", "_ml/trained_models/ltr-model").body["trained_model_configs"][0]
    assert config["model_type"] == "tree_ensemble"
    assert config["input"] == {"field_names": []}
    assert config["inference_config"] == {
        "learning_to_rank": {"num_top_feature_importance_values": 0, "feature_extractors": LTR_FEATURE_EXTRACTORS}
    }
    # LearningToRankConfig extends RegressionConfig: _infer answers, it does not fail
    assert engine.request("POST", "_ml/trained_models/ltr-model/_infer", {"docs": [{"cost": 1}]}).status == 200


def test_learning_to_rank_model_refuses_input_field_names(engine):
    # learning_to_rank_rescorer.yml "Test model input validation"
    body = {
        "description": "a bad model",
        "input": {"field_names": ["cost"]},
        "inference_config": {"learning_to_rank": {}},
        "definition": _ltr_ensemble(["cost"]),
    }
    r = engine.request("PUT", "_ml/trained_models/bad-model", body)
    assert r.status == 400
    assert r.body["status"] == 400
    assert r.body["error"]["root_cause"][0]["type"] == "action_request_validation_exception"
    assert r.body["error"]["root_cause"][0]["reason"] == (
        "Validation Failed: 1: cannot specify [input.field_names] for a model of type [learning_to_rank];"
    )


def test_learning_to_rank_model_duplicate_feature_names(engine):
    # LearningToRankConfig's constructor
    extractors = [LTR_FEATURE_EXTRACTORS[1], LTR_FEATURE_EXTRACTORS[1]]
    body = {
        "inference_config": {"learning_to_rank": {"feature_extractors": extractors}},
        "definition": _ltr_ensemble(["type_tv"]),
    }
    err = error_of(engine.request("PUT", "_ml/trained_models/dup-ltr", body))
    assert err["type"] == "illegal_argument_exception"
    assert err["reason"] == "[feature_extractors] contains duplicate [feature_name] values"


def test_byte_level_bpe_tokenization_round_trip(engine):
    # byte_level_bpe_inference_config.yml "Put and get trained model with byte_level_bpe text embedding
    # tokenization"
    tokenization = {
        "with_special_tokens": False,
        "add_prefix_space": True,
        "max_sequence_length": 256,
        "truncate": "first",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
    }
    body = {
        "description": "byte_level_bpe tokenization XContent REST coverage",
        "model_type": "pytorch",
        "inference_config": {"text_embedding": {"tokenization": {"byte_level_bpe": tokenization}}},
    }
    r = engine.request("PUT", "_ml/trained_models/byte_level_bpe_rest_config_model", body)
    assert r.status == 200, r.body
    got = engine.request("GET", "_ml/trained_models/byte_level_bpe_rest_config_model").body
    config = got["trained_model_configs"][0]
    assert config["model_id"] == "byte_level_bpe_rest_config_model"
    bpe = config["inference_config"]["text_embedding"]["tokenization"]["byte_level_bpe"]
    for key, value in tokenization.items():
        assert bpe[key] == value


def test_byte_level_bpe_settings_defaults_and_lower_case():
    # ByteLevelBpeTokenization: default special tokens (blank means default), do_lower_case refused
    import pytest

    from es_infer_nb.errors import ApiError
    from es_infer_nb.models.nlp.tokenization import parse

    settings = parse({"byte_level_bpe": {"mask_token": " ", "bos_token": "<bos>"}})
    assert settings.mask_token == "<mask>"
    assert settings.to_dict() == {
        "byte_level_bpe": {
            "do_lower_case": False,
            "with_special_tokens": True,
            "max_sequence_length": 512,
            "truncate": "first",
            "span": -1,
            "add_prefix_space": False,
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "bos_token": "<bos>",
            "eos_token": "</s>",
            "mask_token": "<mask>",
        }
    }
    with pytest.raises(ApiError) as info:
        parse({"byte_level_bpe": {"do_lower_case": True}})
    assert info.value.reason == "unable to set [do_lower_case] to [true] for byte_level_bpe tokenizer"


def test_bpe_vocabulary_requires_merges(engine):
    # RobertaTokenization / ByteLevelBpeTokenization.validateVocabulary
    for model_id, kind in (("rob", "roberta"), ("bpe", "byte_level_bpe")):
        config = {"model_type": "pytorch", "inference_config": {"text_embedding": {"tokenization": {kind: {}}}}}
        assert engine.request("PUT", f"_ml/trained_models/{model_id}", config).status == 200
        err = error_of(
            engine.request(
                "PUT", f"_ml/trained_models/{model_id}/vocabulary", {"vocabulary": ["<s>", "</s>", "<pad>", "<unk>"]}
            )
        )
        assert err["type"] == "status_exception"
        assert err["reason"] == (
            f"cannot put vocabulary for model [{model_id}] as tokenizer type [{kind}] requires "
            "[merges] to be provided and non-empty"
        )
        ok = engine.request(
            "PUT",
            f"_ml/trained_models/{model_id}/vocabulary",
            {"vocabulary": ["<s>", "</s>", "<pad>", "<unk>"], "merges": ["a b"]},
        )
        assert ok.status == 200, ok.body


def _ltr_store(engine) -> None:
    body = {
        "inference_config": {"learning_to_rank": {"feature_extractors": LTR_FEATURE_EXTRACTORS}},
        "definition": _ltr_ensemble(["cost", "type_tv"]),
    }
    assert engine.request("PUT", "_ml/trained_models/ltr-model", body).status == 200
    mappings = {"properties": {"product": {"type": "keyword"}, "cost": {"type": "integer"}}}
    assert engine.request("PUT", "store", {"mappings": mappings}).status == 200
    lines: list[dict[str, Any]] = []
    for product, cost in (("TV", 300), ("VCR", 15), ("Laptop", 100), ("Laptop", 500)):
        lines += [{"index": {}}, {"product": product, "cost": cost}]
    assert engine.request("POST", "store/_bulk", lines, params={"refresh": "true"}).status == 200


def test_rescore_with_missing_model(engine):
    # learning_to_rank_rescorer.yml "Test rescore with missing model": catch missing
    _ltr_store(engine)
    body = {"rescore": {"window_size": 10, "learning_to_rank": {"model_id": "ltr-missing"}}}
    r = engine.request("POST", "store/_search", body)
    assert r.status == 404
    assert error_of(r)["reason"] == "Could not find trained model [ltr-missing]"


def test_rescore_with_no_hits(engine):
    # learning_to_rank_rescorer.yml "Test rescore with no hits model": length hits.hits 0
    _ltr_store(engine)
    body = {
        "query": {"term": {"product": "Speaker"}},
        "rescore": {"window_size": 10, "learning_to_rank": {"model_id": "ltr-model"}},
    }
    r = engine.request("POST", "store/_search", body)
    assert r.status == 200, r.body
    assert r.body["hits"]["hits"] == []


def test_term_query_filters_hits(engine):
    _ltr_store(engine)
    laptops = engine.request("POST", "store/_search", {"query": {"term": {"product": "Laptop"}}}).body
    assert laptops["hits"]["total"] == {"value": 2, "relation": "eq"}
    assert sorted(h["_source"]["cost"] for h in laptops["hits"]["hits"]) == [100, 500]
    by_value = engine.request("POST", "store/_search", {"query": {"term": {"cost": {"value": 300}}}}).body
    assert [h["_source"]["product"] for h in by_value["hits"]["hits"]] == ["TV"]
