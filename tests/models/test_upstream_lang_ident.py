"""lang_ident_model_1 against the upstream tests of ES's CLD3 port.

Upstream: ``LangIdentNeuralNetworkInferenceTests`` (x-pack/plugin/ml), ``FeatureUtilsTests``,
``ScriptDetectorTests``, ``RelevantScriptFeatureExtractorTests`` and ``ScriptFeatureExtractorTests``
(x-pack/plugin/core, ``preprocessing/customwordembedding``), and the main classes
``LangIdentNeuralNetwork`` / ``InferenceDefinition``.
"""

from __future__ import annotations

from typing import Any

import pytest

from es_infer_nb import Engine
from es_infer_nb.models.lang_ident.features import (
    clean_and_lower,
    detector_script,
    relevant_script_features,
    script_feature,
    truncate_utf8,
)

MODEL = "lang_ident_model_1"
NOT_A_STRING = (
    "[lang_ident_neural_network] model could not find non-null collection of embeddings separated by unicode "
    "script type [embedding]. Please verify that the input is a string."
)
NO_IMPORTANCE = "Feature importance is not supported for the configured model of type [lang_ident_neural_network]"


@pytest.fixture(scope="module")
def eng() -> Engine:
    return Engine()


def _infer(eng: Engine, texts: list[Any], config: dict[str, Any]) -> Any:
    return eng.request(
        "POST",
        f"_ml/trained_models/{MODEL}/_infer",
        {"docs": [{"text": t} for t in texts], "inference_config": {"classification": config}},
    )


def _results(eng: Engine, texts: list[Any], top: int = 5) -> list[dict[str, Any]]:
    resp = _infer(eng, texts, {"num_top_classes": top})
    assert resp.status == 200, resp.body
    return resp.body["inference_results"]


def test_adverse_scenarios(eng: Engine) -> None:
    # LangIdentNeuralNetworkInferenceTests#testAdverseScenarios
    texts = [
        "",
        "     ",
        "!@#$%^&*()",
        "1234567890",
        "-----=-=--=-=+__+_+__==-=-!@#$%^&*()",
        "A",
        "„ÍÎÏ◊˝ÏÎ´„€‹›ﬁﬂ‡°·‚∏ØÒÚÒ˘ÚÆ’ÆÚ”∏Ø\uf8ffÔÓ˝ÏÎ´„‹›ﬁˇﬂÁ¨ˆØ",
    ]
    predicted = [r["predicted_value"] for r in _results(eng, texts)]
    assert predicted == ["zxx"] * 5 + ["lb", "vi"]
    # "should not throw"
    assert len(_results(eng, ["행 A A", "행 A성 xx", "행 A성 성x", "행A A성 x성", "행A 성 x"])) == 5


def test_mixed_language_sections_are_weighted_by_squared_length(eng: Engine) -> None:
    # LangIdentNeuralNetworkInferenceTests#testMixedLangInference
    texts = [
        "행 레이블 this is english text obviously and 생성 tom said to test it ",
        "행 레이블 Dashboard ISSUE Qual. Plan Qual. Report Qual. 현황 Risk Task생성 개발과제지정 개발모델 개발목표 개발비 개발팀별 현황 과제이슈",
        "이Q현",
        "매트 스미스는 BBC äôs Doctor Who를 그만둔다.",
        "@#$%^&*(행 레이블 Dashboard ISSUE Qual. Plan Qual. !@#$%^&*() Report Qual."
        " 현황 Risk Task생성 개발과제지정 개발모델 개발목표 개발비 개발팀별 현황 과제이슈",
    ]
    assert [r["predicted_value"] for r in _results(eng, texts)] == ["en", "ko", "ko", "ko", "ko"]
    half = (
        "김걸도혁(金乞都革) 김공소(金公疎) 김교합(金咬哈) 김다롱합(金多弄哈) 김마상개(金麻尙介) 김우리개(金于里介) 김상미(金尙美) "
        "김아도을치(金阿都乙赤) 김아라(金阿喇) 김아랑합(金阿郞哈) 김아을가(金阿乙加) 김역류(金易留) 김우두(金于豆) 김우허내(金右虛乃) "
        "김유리가(金留里加) 김윤적(金允績) 김이랑합(金伊郞哈) 김인을개(金引乙介) 김입성(金入成) 김주창개(金主昌介) 김지하리(金之下里) "
        "김차독(金箚禿) 김지칭가(金只稱哥) 김자라노(金者羅老)."
    )
    thai = (
        "[ Republic of Korea ],\nวันนี้ - ตัวอย่างนี้เป็นภาษาไทย\nวันนี้ - ตัวอย่างนี้เป็นภาษาไทย\n"
        "        !대한민국(, 영어: Republic of Korea, KOR)은 동아시아의 한반도 남부에 자리한 민주공화국이다. "
        "서쪽으로 중화인민공화국과 황해를 사이에 두고"
    )
    ko_zh, th_ko = _results(eng, [half, thai])
    assert ko_zh["predicted_value"] == "ko" and ko_zh["prediction_score"] == pytest.approx(0.5, abs=0.1)
    assert ko_zh["top_classes"][1]["class_name"] == "zh"
    assert ko_zh["top_classes"][1]["class_score"] == pytest.approx(0.5, abs=0.1)
    assert th_ko["predicted_value"] == "th" and th_ko["prediction_score"] == pytest.approx(0.6, abs=0.1)
    assert th_ko["top_classes"][1]["class_name"] == "ko"
    assert th_ko["top_classes"][1]["class_score"] == pytest.approx(0.4, abs=0.1)


@pytest.mark.parametrize("value", [5, 1.5, True, ["some text"], {"a": "b"}])
def test_non_string_text_is_the_upstream_bad_request(eng: Engine, value: Any) -> None:
    # LangIdentNeuralNetwork#infer: CustomWordEmbedding writes no [embedding] for a non-string input
    resp = _infer(eng, [value], {})
    assert resp.status == 400
    assert resp.body["error"]["type"] == "status_exception"
    assert resp.body["error"]["reason"] == NOT_A_STRING


def test_feature_importance_is_refused_by_the_inference_definition(eng: Engine) -> None:
    # InferenceDefinition#infer checks supportsFeatureImportance() before the model runs
    for text in ["some english text", 5]:
        resp = _infer(eng, [text], {"num_top_feature_importance_values": 1})
        assert resp.status == 400
        assert resp.body["error"] == {
            "root_cause": [{"type": "status_exception", "reason": NO_IMPORTANCE}],
            "type": "status_exception",
            "reason": NO_IMPORTANCE,
        }


def test_feature_importance_error_is_per_document_after_the_missing_fields_warning(eng: Engine) -> None:
    # LocalModel answers the all-fields-missing warning before InferenceDefinition#infer runs
    pipeline = {
        "processors": [
            {
                "inference": {
                    "model_id": MODEL,
                    "inference_config": {"classification": {"num_top_feature_importance_values": 2}},
                }
            }
        ]
    }
    docs = [{"_source": {"other": 1}}, {"_source": {"text": "some english text"}}]
    resp = eng.request("POST", "_ingest/pipeline/_simulate", {"pipeline": pipeline, "docs": docs})
    assert resp.status == 200, resp.body
    missing, failed = resp.body["docs"]
    assert missing["doc"]["_source"]["ml"]["inference"]["warning"] == (
        f"Model [{MODEL}] could not be inferred as all fields were missing"
    )
    assert failed["error"]["reason"] == NO_IMPORTANCE


def test_top_classes_keep_language_names_whatever_the_prediction_field_type(eng: Engine) -> None:
    # LangIdentNeuralNetwork#infer ranks top classes with PredictionFieldType.STRING; only the predicted
    # value goes through the config's prediction_field_type (ClassificationInferenceResults)
    resp = _infer(
        eng, ["This is a short piece of English text"], {"num_top_classes": 2, "prediction_field_type": "number"}
    )
    assert resp.status == 200, resp.body
    (result,) = resp.body["inference_results"]
    assert result["predicted_value"] == 98.0  # "en" is LANGUAGE_NAMES[98]
    assert [c["class_name"] for c in result["top_classes"]][0] == "en"
    assert all(isinstance(c["class_name"], str) for c in result["top_classes"])


def test_clean_and_lower_text() -> None:
    # FeatureUtilsTests#testCleanText
    cases = {
        "This has a tag in <br> it <ssss>&..///1/2@@3winter": " this has a tag in br it ssss winter ",
        " This has a tag in <br> it <ssss>&..///1/2@@3winter ": " this has a tag in br it ssss winter ",
        " This has a tag in <p> it </p><ssss>&..///1/2@@3winter ": " this has a tag in p it p ssss winter ",
        "  This has a tag in \n<p> it \r\n</p><ssss>&..///1/2@@3winter ": " this has a tag in p it p ssss winter ",
        " !This has    a tag.in\n+|iW£#   <p> hello\nit </p><ssss>&..///1/2@@3winter ": " this has a tag in iw p hello it p ssss winter ",
        "北京——。": " 北京 ",
        "北京——中国共产党已为国家主席习近平或许无限期地继续执政扫清了道路。": " 北京 中国共产党已为国家主席习近平或许无限期地继续执政扫清了道路 ",
    }
    for text, cleaned in cases.items():
        assert clean_and_lower(text) == cleaned


def test_truncate_to_num_valid_bytes() -> None:
    # FeatureUtilsTests#testValidUTF8Length
    az = (
        "\u0020a az qalıb breyn rinq intellektual oyunu üzrə yarışın zona mərhələləri "
        "keçirilib miq un qalıqlarının dənizdən çıxarılması davam edir məhəmməd peyğəmbərin karikaturalarını"
    )
    assert truncate_utf8(az, 200) == az
    be = (
        " а друкаваць іх не было тэхнічна магчыма бліжэй за вільню тым самым часам "
        "нямецкае кіраўніцтва прапаноўвала апроч ўвядзення лацінкі яе"
    )
    assert truncate_utf8(be, 200) == (
        " а друкаваць іх не было тэхнічна магчыма бліжэй за вільню тым самым часам нямецкае кіраўніцтва прапаноўвала "
    )
    assert truncate_utf8("احتيالية بيع أي حساب", 200) == "احتيالية بيع أي حساب"
    zh = (
        "产品的简报和公告 提交该申请后无法进行更改 请确认您的选择是正确的 对于要提交的图书 我确认 我是版权所有者或已得到版权所有者的授权 "
        "要更改您的国家 地区 请在此表的最上端更改您的"
    )
    assert truncate_utf8(zh, 200) == (
        "产品的简报和公告 提交该申请后无法进行更改 请确认您的选择是正确的 "
        "对于要提交的图书 我确认 我是版权所有者或已得到版权所有者的授权 要更改"
    )


def test_script_detector_classes() -> None:
    # ScriptDetectorTests: Greek 5, Cyrillic 6, Hebrew 7, Arabic 8, Hangul Jamo 9, Hiragana 10, Katakana 11,
    # else the UTF-8 length (1..4)
    expected = {
        "ͰϿδΘΔ": 5,
        "ЀӿшБӰ": 6,
        "\u0591״דהצ": 7,
        "مخ": 8,
        "ᄀᇿᄡᆅᅘ": 9,
        "ぁゟこやぜ": 10,
        "゠ヿヂザヸ": 11,
        "^$": 1,
        "Ձܔށ": 2,
        "万両": 3,
        "𪩘𫢸𫫇": 4,
    }
    for chars, code in expected.items():
        assert [detector_script(ord(c)) for c in chars] == [code] * len(chars)


def test_relevant_script_features() -> None:
    # RelevantScriptFeatureExtractorTests: (ScriptDetector class, share of the letters / non-ASCII chars)
    assert relevant_script_features("just some plain text") == ([1], [1.0])
    assert relevant_script_features("ヸヂ゠ヂ") == ([11], [1.0])
    assert relevant_script_features("ヸtヂe゠xtヂ") == ([1, 11], [0.5, 0.5])
    assert relevant_script_features("just some 121212%^^( ヸヂ゠ヂ   text") == ([1, 11], [0.75, 0.25])
    for empty in ["", "   ", "12----)(", "12--- - ) ( "]:
        assert relevant_script_features(empty) == ([], [])
    for one in ["ゟ", "1234ゟ", "ゟ12-(", "8*1ゟ12----"]:
        assert relevant_script_features(one) == ([10], [1.0])


def test_script_feature() -> None:
    # ScriptFeatureExtractorTests#testBasicExamples / #testSimpleJa: Latin 1, Hani 24, Hangul majority 102
    for text, code in [
        ("food", 1),
        ("字", 24),
        ("워드", 102),
        ("オリンピック大会", 24),
        ("にほんごの クラスは かようびと もくようびで", 24),
    ]:
        assert script_feature(text) == ([code], [1.0])
