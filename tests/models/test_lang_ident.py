"""lang_ident_model_1: ES's CLD3 port on the CLD3 network of cld3-py, through every entry point."""

from __future__ import annotations

import gcld3
import numpy as np
import pandas as pd
import pytest

from es_infer_nb import ApiError, Engine
from es_infer_nb.models.lang_ident import LABELS, LANGUAGE_NAMES, LangIdentModel
from es_infer_nb.models.lang_ident import weights
from es_infer_nb.models.lang_ident.features import clean_and_lower, script_sections

MODEL = "lang_ident_model_1"
SAMPLES = {
    "en": "This is a short piece of English text that is used to test the language detector.",
    "ko": "개별적으로 리포트 액세스 권한을 부여할 수 있습니다 액세스 권한 부여사용자에게 프로필 리포트에",
    "de": "Dies ist ein kurzer deutscher Text, mit dem die Spracherkennung geprüft wird.",
    "zh": "产品的简报和公告 提交该申请后无法进行更改 请确认您的选择是正确的",
}


@pytest.fixture(scope="module")
def model() -> LangIdentModel:
    return LangIdentModel(MODEL)


@pytest.fixture()
def eng() -> Engine:
    return Engine()


def _infer(eng: Engine, texts: list[str], top: int = 5) -> list[dict]:
    resp = eng.request("POST", f"_ml/trained_models/{MODEL}/_infer",
                       {"docs": [{"text": t} for t in texts],
                        "inference_config": {"classification": {"num_top_classes": top}}})
    assert resp.status == 200, resp.body
    return resp.body["inference_results"]


def test_network_matches_cld3_on_single_script_text(model: LangIdentModel) -> None:
    # one script section = CLD3's FindLanguage on the same text: same language, same probability
    detector = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)
    for text in SAMPLES.values():
        probs = model.probabilities(text)
        expected = detector.FindLanguage(text=text)
        assert LABELS[int(np.argmax(probs))] == expected.language
        assert probs.max() == pytest.approx(expected.probability, abs=1e-5)


def test_probabilities_are_a_distribution(model: LangIdentModel) -> None:
    for text in [*SAMPLES.values(), "행 레이블 this is english text obviously and 생성 tom said to test it "]:
        probs = model.probabilities(text)
        assert probs.shape == (len(LANGUAGE_NAMES) + 1,)
        assert np.all((probs >= 0) & (probs <= 1))
        assert probs.sum() == pytest.approx(1.0, abs=1e-9)
        assert probs[-1] == 0.0  # zxx only for text without letters


def test_text_without_letters_is_zxx(model: LangIdentModel) -> None:
    for text in ["", "     ", "!@#$%^&*()", "1234567890"]:
        probs = model.probabilities(text)
        assert LABELS[int(np.argmax(probs))] == "zxx"
        assert probs.max() == 1.0


def test_cleaning_and_sections_follow_es() -> None:
    assert clean_and_lower("Hello, World! 123 İstanbul") == " hello world istanbul "
    # Hangul and Han are separate sections although CLD3 files both under Hani
    assert [s for s, _ in script_sections(clean_and_lower("김걸도혁(金乞都革)"))] == [" 김걸도혁 ", " 金乞都革 "]
    # a single letter of another script between letters of the run stays in the run
    assert script_sections(clean_and_lower("이Q현")) == [(" 이q현 ", 7)]
    assert script_sections(clean_and_lower("!!!")) == []


def test_sections_split_as_custom_word_embedding_process() -> None:
    """ES's CustomWordEmbedding.process, traced by hand: a run ends before a letter of another script
    only when the code point after it confirms the switch (neither Common nor the run's script)."""
    assert script_sections(clean_and_lower("abc 한국어")) == [(" abc ", 3), (" 한국어 ", 9)]
    # the lone Hangul letter is followed by a space (Common): no switch, one section
    assert script_sections(clean_and_lower("ab 한")) == [(" ab 한 ", 6)]
    # marks only: the last code point starts a section of its own (ES's loop stops at length - 1)
    assert script_sections(clean_and_lower("\u0301")) == [(" ", 0)]


def test_infer_predicts_iso_codes_with_ranked_top_classes(eng: Engine) -> None:
    results = _infer(eng, list(SAMPLES.values()))
    assert [r["predicted_value"] for r in results] == list(SAMPLES)
    for r in results:
        top = r["top_classes"]
        assert len(top) == 5
        probs = [c["class_probability"] for c in top]
        assert probs == sorted(probs, reverse=True)
        assert all(0.0 <= p <= 1.0 for p in probs)
        assert top[0]["class_name"] == r["predicted_value"]
        assert r["prediction_probability"] == top[0]["class_probability"] == r["prediction_score"]
        assert all(c["class_score"] == c["class_probability"] for c in top)
        assert all(c["class_name"] in LANGUAGE_NAMES for c in top)


def test_infer_all_top_classes_and_default_config(eng: Engine) -> None:
    everything = _infer(eng, [SAMPLES["de"]], top=-1)[0]["top_classes"]
    assert len(everything) == len(LANGUAGE_NAMES)
    assert sum(c["class_probability"] for c in everything) == pytest.approx(1.0, abs=1e-9)
    resp = eng.request("POST", f"_ml/trained_models/{MODEL}/_infer", {"docs": [{"text": SAMPLES["de"]}, {"x": 1}]})
    plain, missing = resp.body["inference_results"]
    assert set(plain) == {"predicted_value", "prediction_probability", "prediction_score"}
    assert plain["predicted_value"] == "de"
    assert missing == {"warning": f"Model [{MODEL}] could not be inferred as all fields were missing"}


def test_infer_rejects_what_es_rejects(eng: Engine) -> None:
    resp = eng.request("POST", f"_ml/trained_models/{MODEL}/_infer",
                       {"docs": [{"text": SAMPLES["en"]}], "inference_config": {"regression": {}}})
    assert resp.status == 400
    resp = eng.request("POST", f"_ml/trained_models/{MODEL}/_infer", {"docs": [{"text": 5}]})
    assert resp.status == 400
    assert "lang_ident_neural_network" in resp.body["error"]["reason"]


def test_simulate_foreach_with_field_map(eng: Engine) -> None:
    pipeline = {"processors": [{"foreach": {"field": "greetings", "processor": {"inference": {
        "model_id": MODEL, "inference_config": {"classification": {"num_top_classes": 5}},
        "field_map": {"_ingest._value.text": "text"}}}}}]}
    docs = [{"_source": {"greetings": [{"text": SAMPLES["en"]}, {"text": SAMPLES["ko"]}, {"text": SAMPLES["zh"]}]}}]
    resp = eng.request("POST", "_ingest/pipeline/_simulate", {"pipeline": pipeline, "docs": docs})
    assert resp.status == 200, resp.body
    written = resp.body["docs"][0]["doc"]["_source"]["ml"]["inference"]
    assert [w["predicted_value"] for w in written] == ["en", "ko", "zh"]
    assert all(len(w["top_classes"]) == 5 and w["model_id"] == MODEL for w in written)


def test_dataframe_run(eng: Engine) -> None:
    df = pd.DataFrame({"text": [SAMPLES["de"], SAMPLES["zh"], None]})
    out = df.infer.run(MODEL, engine=eng, inference_config={"classification": {"num_top_classes": 3}})
    assert list(out["ml.inference.predicted_value"][:2]) == ["de", "zh"]
    assert pd.isna(out["ml.inference.predicted_value"].iloc[2])
    assert out["ml.inference.warning"].iloc[2].startswith(f"Model [{MODEL}]")
    tops = out["ml.inference.top_classes"].iloc[0]
    assert [t["class_name"] for t in tops][0] == "de" and len(tops) == 3
    assert 0.9 < out["ml.inference.prediction_probability"].iloc[0] <= 1.0
    stats = eng.request("GET", f"_ml/trained_models/{MODEL}/_stats").body["trained_model_stats"][0]
    assert stats["inference_stats"]["inference_count"] == 3
    assert stats["inference_stats"]["missing_all_fields_count"] == 1


def test_other_cld3_builds_fail_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    fake = tmp_path / "pybind_ext.so"
    fake.write_bytes(b"\0" * 4096)
    monkeypatch.setattr(weights, "extension_path", lambda: fake)
    weights.load_params.cache_clear()
    try:
        with pytest.raises(ApiError) as err:
            weights.load_params()
        assert "cld3-py" in err.value.reason
    finally:
        weights.load_params.cache_clear()
