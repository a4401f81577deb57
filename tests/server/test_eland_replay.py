"""eland's wire calls, replayed through the official client.

eland 9.x pins ``pandas<3`` and this environment runs pandas 3, so eland itself runs in a venv of
its own (test_eland.py). These tests, in this process, make exactly the requests eland's ``MLModel`` makes (read
from eland/ml/ml_model.py): the version check through ``info()``, ``exists_model`` (a GET that
raises NotFoundError), ``import_model`` (PUT with a gzip+base64 ``compressed_definition``,
``input.field_names`` and ``inference_config: {<type>: {}}``), ``predict`` (an inline
``_ingest/pipeline/_simulate`` with an ``inference`` processor and an empty ``field_map``) and
``delete_model`` (DELETE with ``ignore_status=404``). The definitions come from our importer
with ``exact_thresholds=False``, i.e. the raw thresholds eland's transformers emit.
"""

from __future__ import annotations

import base64
import gzip
import json

import numpy as np
import pytest
from elasticsearch import Elasticsearch, NotFoundError

from es_infer_nb.models.tree.importers import to_es_model

FEATURES = ["f0", "f1", "f2", "f3"]


def _data(classification: bool):
    rng = np.random.default_rng(7)
    # float32-representable inputs: eland sends the libraries' raw float32 thresholds
    x = rng.normal(size=(300, 4)).astype(np.float32).astype(np.float64)
    y = x[:, 0] * 2 + np.sin(x[:, 1]) - x[:, 2] * x[:, 3]
    return x, (y > 0).astype(int) if classification else y


def _fit(kind: str):
    if kind == "sklearn-tree-classifier":
        from sklearn.tree import DecisionTreeClassifier

        x, y = _data(True)
        return DecisionTreeClassifier(max_depth=5, random_state=0).fit(x, y), x, "classification"
    if kind == "sklearn-forest-regressor":
        from sklearn.ensemble import RandomForestRegressor

        x, y = _data(False)
        return RandomForestRegressor(n_estimators=8, max_depth=5, random_state=0).fit(x, y), x, "regression"
    if kind == "xgboost-regressor":
        from xgboost import XGBRegressor

        x, y = _data(False)
        return XGBRegressor(n_estimators=10, max_depth=3).fit(x, y), x, "regression"
    if kind == "lightgbm-classifier":
        from lightgbm import LGBMClassifier

        x, y = _data(True)
        return LGBMClassifier(n_estimators=10, num_leaves=8, verbose=-1).fit(x, y), x, "classification"
    raise AssertionError(kind)


# -- eland's MLModel, call for call -------------------------------------------------------------

def eland_es_version(es: Elasticsearch) -> tuple[int, ...]:
    number = es.info()["version"]["number"]
    return tuple(int(p) for p in number.split("-")[0].split(".")[:3])


def eland_is_serverless(es: Elasticsearch) -> bool:
    info = es.info()
    return "build_flavor" in info["version"] and info["version"]["build_flavor"] == "serverless"


def eland_exists_model(es: Elasticsearch, model_id: str) -> bool:
    try:
        es.ml.get_trained_models(model_id=model_id)
    except NotFoundError:
        return False
    return True


def eland_delete_model(es: Elasticsearch, model_id: str) -> None:
    try:
        es.options(ignore_status=404).ml.delete_trained_model(model_id=model_id)
    except NotFoundError:
        pass


def eland_import_model(es: Elasticsearch, model_id: str, model, model_type: str) -> None:
    body = to_es_model(model, FEATURES, exact_thresholds=False)
    if eland_exists_model(es, model_id):
        raise ValueError(f"Trained machine learning model {model_id} already exists")
    assert eland_es_version(es) >= (8, 15) and not eland_is_serverless(es)
    serialized = json.dumps(body["definition"], separators=(",", ":"))
    es.ml.put_trained_model(
        model_id=model_id,
        inference_config={model_type: {}},
        input={"field_names": FEATURES},
        compressed_definition=base64.b64encode(gzip.compress(serialized.encode("utf-8"))).decode("ascii"),
    )


def eland_predict(es: Elasticsearch, model_id: str, model_type: str, x: np.ndarray) -> list:
    field_map_name = "field_map" if eland_es_version(es) >= (7, 7) else "field_mappings"
    docs = [{"_source": dict(zip(FEATURES, row))} for row in x.tolist()]
    results = es.ingest.simulate(
        pipeline={"processors": [{"inference": {"model_id": model_id, "inference_config": {model_type: {}}, field_map_name: {}}}]},
        docs=docs,
    )
    out = []
    for res in results["docs"]:
        if "error" in res:
            raise RuntimeError(f"Failed to run prediction for model ID {model_id!r}", res["error"])
        out.append(res["doc"]["_source"]["ml"]["inference"]["predicted_value"])
    return out


@pytest.mark.parametrize(
    "kind", ["sklearn-tree-classifier", "sklearn-forest-regressor", "xgboost-regressor", "lightgbm-classifier"]
)
def test_eland_import_predict_delete(es, kind):
    model, x, model_type = _fit(kind)
    model_id = kind
    assert eland_exists_model(es, model_id) is False
    eland_import_model(es, model_id, model, model_type)
    assert eland_exists_model(es, model_id) is True
    with pytest.raises(ValueError, match="already exists"):
        eland_import_model(es, model_id, model, model_type)

    got = eland_predict(es, model_id, model_type, x[:50])
    want = model.predict(x[:50])
    if model_type == "classification":
        assert [str(v) for v in got] == [str(v) for v in want]
    else:
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=1e-5, atol=1e-5)

    eland_delete_model(es, model_id)
    assert eland_exists_model(es, model_id) is False
    eland_delete_model(es, model_id)  # deleting again is ignored, as eland does
