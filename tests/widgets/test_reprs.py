"""Rich HTML reprs of responses, models, pipelines and endpoints; secrets masked."""

from __future__ import annotations

import pytest

from es_infer_nb.engine import Response
from es_infer_nb.widgets.reprs import MASK, endpoint_html, redact, response_html


def test_models_and_stats(eng):
    html = eng.request("GET", "_ml/trained_models/reg,cls")._repr_html_()
    assert 'data-status="200"' in html
    assert 'class="esinb-model" data-model-id="cls" data-task="classification"' in html
    assert 'data-model-id="reg" data-task="regression"' in html
    stats = eng.request("GET", "_ml/trained_models/reg/_stats")._repr_html_()
    assert 'class="esinb-stats-row" data-model-id="reg"' in stats


def test_pipelines_and_errors(eng):
    assert eng.request("PUT", "_ingest/pipeline/p1", {"description": "score <it>", "processors": [
        {"inference": {"model_id": "reg", "tag": "t1"}}, {"set": {"field": "x", "value": 1}}]}).ok
    html = response_html(eng.request("GET", "_ingest/pipeline/p1"))
    assert 'class="esinb-pipeline" data-pipeline="p1"' in html and "score &lt;it&gt;" in html
    assert 'data-processor="inference" data-position="0"' in html and 'data-processor="set" data-position="1"' in html
    err = eng.request("GET", "_ml/trained_models/missing")._repr_html_()
    assert 'data-status="404"' in err and 'class="esinb-error" data-type="resource_not_found_exception"' in err


@pytest.mark.parametrize("secret_key", ["api_key", "secret_parameters", "Authorization", "client_secret", "password"])
def test_secrets_are_masked(secret_key):
    endpoint = {"inference_id": "e1", "task_type": "text_embedding", "service": "custom",
                "service_settings": {"url": "http://127.0.0.1:1/x", secret_key: {"k": "sk-SECRET"},
                                     "headers": {"Authorization": "Bearer sk-SECRET"}, "with_special_tokens": True}}
    for html in (endpoint_html(endpoint), response_html(Response(200, {"endpoints": [endpoint]}))):
        assert "sk-SECRET" not in html and MASK in html
        assert 'class="esinb-endpoint" data-inference-id="e1"' in html and "with_special_tokens" in html
    assert redact({"a": [{"token": "t0k", "max_tokens": 3}]}) == {"a": [{"token": MASK, "max_tokens": 3}]}


def test_other_bodies_are_json():
    html = Response(200, {"acknowledged": True})._repr_html_()
    assert 'class="esinb-json"' in html and "acknowledged" in html


def test_response_bundle_prefers_html_over_a_json_tree(eng):
    from IPython.core.formatters import DisplayFormatter

    resp = eng.request("GET", "_ml/trained_models/reg")
    data, _ = DisplayFormatter().format(resp)
    assert set(data) == {"text/plain", "text/html"}  # JupyterLab would rank application/json first
    assert 'class="esinb-model" data-model-id="reg"' in data["text/html"]
    assert data["text/plain"].startswith("Response(status=200)")
    assert resp._repr_mimebundle_(include=["application/json"])["application/json"] == resp.body


def test_numpy_scalars_print_as_plain_numbers(eng, rows):
    import numpy as np

    from es_infer_nb.widgets import feature_importance, top_classes
    from es_infer_nb.widgets.reprs import response_text

    frame = rows.reset_index(drop=True).set_axis(np.arange(360, 365, dtype=np.int64))
    result = frame.infer.run("cls", engine=eng, progress=False, inference_config={
        "classification": {"num_top_classes": -1, "num_top_feature_importance_values": 2}})
    label = result.index[2]
    assert isinstance(label, np.integer)
    for text in (repr(feature_importance(result, row=label, engine=eng)), repr(top_classes(result, row=label))):
        assert "np.int64" not in text and " 362" in text
    with pytest.raises(KeyError) as info:
        feature_importance(result, row=np.int64(999), engine=eng)
    assert "np.int64" not in str(info.value) and "row 999 is not" in str(info.value)
    body = {"count": np.int64(123456), "score": np.float32(0.5), "vec": np.arange(2)}
    for text in (response_text(Response(200, body)), repr(Response(200, body))):
        assert '"count": 123456' in text and '"score": 0.5' in text and "np." not in text
