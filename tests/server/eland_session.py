"""Drive an es_infer_nb server with eland itself; run by test_eland.py in a separate venv (pandas 2).

``python eland_session.py URL WORKDIR`` prints one JSON object with what eland did and saw. It
compares nothing against es_infer_nb's code: predictions are set beside the libraries' own
``predict`` and the traced model's own output, computed here, and the test asserts on them.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = ["f0", "f1", "f2", "f3"]
TEXTS = ["hello world", "the quick brown fox jumps over the lazy dog", "stock markets fell sharply"]


def _data(classification: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(400, 4)).astype(np.float32).astype(np.float64)
    y = x[:, 0] * 2 + np.sin(x[:, 1]) - x[:, 2] * x[:, 3]
    return x, ((y > 0).astype(int) + (y > 1.5).astype(int)) if classification else y


def _tree_models() -> list[tuple[str, Any, bool]]:
    from lightgbm import LGBMClassifier, LGBMRegressor
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
    from xgboost import XGBClassifier, XGBRegressor

    xc, yc = _data(True)
    xr, yr = _data(False)
    models = [
        ("sklearn-tree-classifier", DecisionTreeClassifier(max_depth=5, random_state=0).fit(xc, yc), True),
        ("sklearn-tree-regressor", DecisionTreeRegressor(max_depth=5, random_state=0).fit(xr, yr), False),
        ("sklearn-forest-classifier", RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0).fit(xc, yc), True),
        ("sklearn-forest-regressor", RandomForestRegressor(n_estimators=6, max_depth=4, random_state=0).fit(xr, yr), False),
        ("xgboost-classifier", XGBClassifier(n_estimators=8, max_depth=3).fit(xc, yc), True),
        ("xgboost-regressor", XGBRegressor(n_estimators=8, max_depth=3).fit(xr, yr), False),
        ("lightgbm-classifier", LGBMClassifier(n_estimators=8, num_leaves=8, verbose=-1).fit(xc, yc), True),
        ("lightgbm-regressor", LGBMRegressor(n_estimators=8, num_leaves=8, verbose=-1).fit(xr, yr), False),
    ]
    return models


def trees(es: Any) -> dict[str, Any]:
    """MLModel.import_model (compressed definitions), exists_model, predict, delete_model."""
    from eland.ml import MLModel

    out: dict[str, Any] = {}
    x, _ = _data(False)
    sample = x[:60]
    for model_id, model, classification in _tree_models():
        ml = MLModel.import_model(es, model_id, model, FEATURES, es_if_exists="replace",
                                  es_compress_model_definition=True)
        exists = ml.exists_model()
        ours = np.asarray(ml.predict(sample))
        theirs = np.asarray(model.predict(sample))
        if classification:
            diff = float(np.mean(ours.astype(int) != theirs.astype(int)))
        else:
            diff = float(np.max(np.abs(ours.astype(float) - theirs.astype(float))))
        replaced = MLModel.import_model(es, model_id, model, FEATURES, es_if_exists="replace")
        refused = ""
        try:
            MLModel.import_model(es, model_id, model, FEATURES, es_if_exists="fail")
        except ValueError as exc:  # eland refuses before sending when the model exists
            refused = str(exc)
        replaced.delete_model()
        out[model_id] = {
            "exists": exists,
            "rows": int(len(ours)),
            "classification": classification,
            "diff": diff,
            "refused_existing": refused,
            "exists_after_delete": MLModel(es, model_id).exists_model(),
        }
    return out


def _tiny_bert_folder(folder: Path, task_type: str) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = "the quick brown fox jumps over lazy dog stock markets fell sharply hello world".split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *(f"tok{i}" for i in range(3000))]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True, model_max_length=64)
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=64)
    if task_type == "text_classification":
        config.id2label = {0: "negative", 1: "neutral", 2: "positive"}
        config.label2id = {v: k for k, v in config.id2label.items()}
        model = BertForSequenceClassification(config)
    else:
        model = BertModel(config)
    model.eval().save_pretrained(str(folder))


def _expected(model_path: str, folder: Path, text: str) -> Any:
    """The traced file's own output on the tokens ES's bert tokenization gives this text."""
    import torch
    from transformers import BertTokenizerFast

    tokenizer = BertTokenizerFast.from_pretrained(str(folder))
    enc = tokenizer([text], return_tensors="pt")
    ids = enc["input_ids"]
    positions = torch.arange(ids.shape[1]).unsqueeze(0)
    traced = torch.jit.load(model_path)
    with torch.no_grad():
        out = traced(ids, enc["attention_mask"], torch.zeros_like(ids), positions)
    return out[0] if isinstance(out, (tuple, list)) else out  # classifiers trace to (logits,)


def pytorch(es: Any, workdir: Path, task_type: str) -> dict[str, Any]:
    """eland's upload path: TransformerModel traces, PyTorchModel puts config, parts, vocabulary, starts, infers."""
    from eland.ml.pytorch import PyTorchModel
    from eland.ml.pytorch.transformers import TransformerModel

    folder = workdir / f"hf-{task_type}"
    _tiny_bert_folder(folder, task_type)
    tm = TransformerModel(model_id=str(folder), task_type=task_type, es_version=(9, 1, 0), max_model_input_size=64)
    (workdir / f"traced-{task_type}").mkdir(parents=True, exist_ok=True)
    model_path, config, vocab_path = tm.save(str(workdir / f"traced-{task_type}"))
    model_id = "eland-" + task_type.replace("_", "-")
    ptm = PyTorchModel(es, model_id)
    size = Path(model_path).stat().st_size
    chunk = 64 * 1024
    ptm.import_model(model_path=model_path, config_path=None, vocab_path=vocab_path, config=config, chunk_size=chunk)
    listed = PyTorchModel.list(es)
    ptm.start()
    options = {"text_classification": {"num_top_classes": 3}} if task_type == "text_classification" else None
    answers = [ptm.infer(docs=[{"text_field": text}], inference_config=options)["inference_results"][0] for text in TEXTS]
    stats = es.ml.get_trained_models_stats(model_id=model_id)["trained_model_stats"][0]
    expected = [_expected(model_path, folder, text) for text in TEXTS]
    out: dict[str, Any] = {
        "model_id": model_id,
        "parts": -(-size // chunk),
        "listed": model_id in listed,
        "config_model_type": es.ml.get_trained_models(model_id=model_id)["trained_model_configs"][0]["model_type"],
        "deployment_state": stats["deployment_stats"]["state"],
        "inference_count": stats["deployment_stats"]["nodes"][0]["inference_count"],
    }
    if task_type == "text_embedding":
        cosines = []
        for answer, want in zip(answers, expected):
            got = np.asarray(answer["predicted_value"], dtype=np.float64)
            ref = want.reshape(-1).numpy().astype(np.float64)
            cosines.append(float(got @ ref / (np.linalg.norm(got) * np.linalg.norm(ref))))
        out["min_cosine"] = min(cosines)
        out["dims"] = [len(a["predicted_value"]) for a in answers]
    else:
        labels = ["negative", "neutral", "positive"]
        out["predicted"] = [a["predicted_value"] for a in answers]
        out["expected"] = [labels[int(w.reshape(-1).argmax())] for w in expected]
        diffs = []
        for answer, want in zip(answers, expected):
            logits = want.reshape(-1).numpy().astype(np.float64)
            probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
            diffs.append(abs(answer["prediction_probability"] - probs.max()))
            diffs += [abs(top["class_probability"] - probs[labels.index(top["class_name"])]) for top in answer["top_classes"]]
            out.setdefault("top_classes", []).append(len(answer["top_classes"]))
        out["probability_diff"] = float(max(diffs))
    ptm.stop()
    ptm.delete()
    out["listed_after_delete"] = model_id in PyTorchModel.list(es)
    return out


def main() -> None:
    from elasticsearch import Elasticsearch

    import eland

    warnings.simplefilter("ignore")
    url, workdir = sys.argv[1], Path(sys.argv[2])
    es = Elasticsearch(url, request_timeout=60)
    result = {
        "eland": eland.__version__,
        "info": es.info()["version"]["number"],
        "trees": trees(es),
        "text_embedding": pytorch(es, workdir, "text_embedding"),
        "text_classification": pytorch(es, workdir, "text_classification"),
    }
    print("ELAND-RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
