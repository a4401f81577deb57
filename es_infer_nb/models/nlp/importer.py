"""Import a local Hugging Face model folder as a pytorch trained model, the way eland's
``eland_import_hub_model`` does (nothing is fetched from a hub).

* id: ``elasticsearch_model_id`` of the hub name (``sentence-transformers/all-MiniLM-L6-v2`` ->
  ``sentence-transformers__all-minilm-l6-v2``): white space, ``/`` and ``\\`` become ``__``,
  lower-cased, the last 64 characters, no leading ``__``. The name is ``hub_model_id`` when given
  (``hub_model_id="sentence-transformers/all-MiniLM-L6-v2"``), else the hub name of a Hugging Face
  cache folder (``models--org--name``), else the folder name.
* ``inference_config``: ``{task_type: {tokenization, classification_labels?, embedding_size?}}``
  with the tokenizer kind from the tokenizer class (bert, mpnet, roberta, xlm_roberta, deberta_v2,
  bert_ja), ``do_lower_case`` / ``add_prefix_space`` from the tokenizer, ``max_sequence_length`` =
  the tokenizer's ``model_max_length`` when reasonable (<= 8192), else the model's position
  embeddings; ``classification_labels`` from ``id2label`` (``-`` -> ``_``); eland's task defaults
  (question answering: 386 tokens, span 128, truncate none; text similarity: truncate second).
  Unlike eland, ``max_sequence_length`` never exceeds what the network takes: the config's
  ``max_position_embeddings`` (less ``padding_idx + 1`` for roberta-style models); question
  answering on a shorter model gets that limit and span ``limit // 3``; a ``max_model_input_length``
  above the limit is refused.
* the config is PUT through the REST layer (validated like any PUT), then the vocabulary
  (``PUT _ml/trained_models/<id>/vocabulary``, with BPE merges when the tokenizer has them).
* ``precision`` (:mod:`.precision`: auto, fp32, bf16, fp16, int8) is recorded with the model: its
  deployments run in it unless ``_start`` or the call names another; eland's ``quantize="int8"``
  is ``precision="int8"``. Left out, the deployment's (default ``auto``) applies.
* the files: an engine with a home gets a copy under ``<home>/nlp_models/<id>/`` (so a new Engine
  on the same home loads it); an in-memory engine refers to the folder itself.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .model import LOCAL_MODEL_KEY
from .precision import check_precision
from .tasks import TASKS

if TYPE_CHECKING:  # pragma: no cover
    from ...engine import Engine

REASONABLE_MAX_LENGTH = 8192
#: eland's question answering defaults (SQuAD): 386 tokens, windows overlapping by 128
QA_MAX_SEQUENCE_LENGTH, QA_SPAN = 386, 128
#: model types whose position ids start at ``padding_idx + 1`` (``create_position_ids_from_input_ids``)
OFFSET_POSITION_MODELS = frozenset({
    "roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "mpnet", "data2vec-text", "longformer", "ibert",
    "roberta-prelayernorm", "xmod", "markuplm", "luke", "mluke",
})
QUANTIZE = (None, "int8")
MODEL_DIR = "nlp_models"
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt")


def elasticsearch_model_id(name: str) -> str:
    """eland's id for a hub name or path."""
    out = re.sub(r"[\s\\/]", "__", name).lower()[-64:]
    return out.removeprefix("__")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def default_name(folder: Path) -> str:
    """The hub name of a Hugging Face cache folder (``models--org--name/snapshots/<rev>`` ->
    ``org/name``), else the folder's own name."""
    for part in reversed(folder.parts):
        if part.startswith("models--"):
            return part[len("models--"):].replace("--", "/")
    return folder.name


def tokenizer_kind(tokenizer: Any, model_type: str) -> str:
    names = {cls.__name__ for cls in type(tokenizer).__mro__}
    if names & {"MPNetTokenizer", "MPNetTokenizerFast"} or model_type == "mpnet":
        return "mpnet"
    if names & {"XLMRobertaTokenizer", "XLMRobertaTokenizerFast"} or model_type == "xlm-roberta":
        return "xlm_roberta"
    if names & {"RobertaTokenizer", "RobertaTokenizerFast", "BartTokenizer", "BartTokenizerFast"} \
            or model_type in ("roberta", "bart"):
        return "roberta"
    if names & {"DebertaV2Tokenizer", "DebertaV2TokenizerFast"} or model_type == "deberta-v2":
        return "deberta_v2"
    if getattr(tokenizer, "word_tokenizer_type", None) == "mecab":
        return "bert_ja"
    return "bert"


def max_sequence_length(tokenizer: Any, config: Any, kind: str) -> int:
    """eland's ``_find_max_sequence_length``: the tokenizer's ``model_max_length`` when reasonable,
    else the model's own limit (:func:`model_input_limit`), else 512 for BERT tokenizers."""
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value <= REASONABLE_MAX_LENGTH:
        return value
    limit = model_input_limit(config)
    if limit is not None and limit <= REASONABLE_MAX_LENGTH:
        return limit
    if kind == "bert":
        return 512
    raise ValueError("Cannot determine model max input length; pass max_model_input_length=")


def position_offset(config: Any) -> int:
    """Position ids of roberta-style models (RoBERTa, XLM-R, MPNet, CamemBERT...) start after the
    padding index (``padding_idx + 1``), so that many position embeddings are never usable."""
    if str(getattr(config, "model_type", "")) not in OFFSET_POSITION_MODELS:
        return 0
    pad = getattr(config, "pad_token_id", None)
    return int(pad) + 1 if isinstance(pad, int) and pad >= 0 else 2


def model_input_limit(config: Any) -> int | None:
    """The most tokens (special tokens included) the network can take: ``max_position_embeddings``,
    less the roberta-style offset; ``None`` when positions are relative or unknown (DeBERTa-v2 without
    absolute positions, models without the field)."""
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or isinstance(positions, bool) or positions <= 0:
        return None
    if getattr(config, "position_biased_input", True) is False:  # DeBERTa: relative positions only
        return None
    limit = positions - position_offset(config)
    return limit if limit > 0 else None


def _limit_reason(config: Any, limit: int) -> str:
    positions = getattr(config, "max_position_embeddings", None)
    offset = position_offset(config)
    if offset:
        return (f"max_position_embeddings [{positions}] of the model's config.json, less [{offset}] for its "
                f"roberta-style position ids")
    return f"max_position_embeddings [{limit}] of the model's config.json"


def _warn_capped(length: int, limit: int, config: Any) -> None:
    warnings.warn(f"max_sequence_length [{length}] (eland's value for this tokenizer/task) is more than the network "
                  f"can take: set to [{limit}] ({_limit_reason(config, limit)}); pass max_model_input_length= to choose "
                  "a smaller one", UserWarning, stacklevel=3)


def tokenization_config(tokenizer: Any, config: Any, task_type: str, max_length: int | None) -> dict[str, Any]:
    """eland's tokenization config, never longer than the network can take: eland's value (the
    tokenizer's length, or question answering's 386) is capped at :func:`model_input_limit`, and a
    capped question answering span keeps eland's ratio (386 tokens, span 128: ``max // 3``). A
    ``max_length`` given by the caller above that limit is refused (ValueError naming it)."""
    kind = tokenizer_kind(tokenizer, str(getattr(config, "model_type", "")))
    limit = model_input_limit(config)
    if max_length is not None:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_model_input_length must be a positive integer, got [{max_length!r}]")
        if limit is not None and max_length > limit:
            raise ValueError(f"max_model_input_length [{max_length}] is greater than the model's maximum input "
                             f"length [{limit}] ({_limit_reason(config, limit)}); pass a value <= {limit} or "
                             "leave it out")
    inner: dict[str, Any] = {}
    if kind in ("bert", "mpnet", "deberta_v2", "bert_ja"):
        lower = getattr(tokenizer, "do_lower_case", None)
        if lower is not None:
            inner["do_lower_case"] = bool(lower)
    if kind == "roberta" and getattr(tokenizer, "add_prefix_space", None) is not None:
        inner["add_prefix_space"] = bool(tokenizer.add_prefix_space)
    if task_type == "question_answering":
        length, span = QA_MAX_SEQUENCE_LENGTH, QA_SPAN
        if limit is not None and limit < length:
            _warn_capped(length, limit, config)
            length, span = limit, min(QA_SPAN, limit // 3)
        inner.update({"max_sequence_length": length, "span": span, "truncate": "none"})
    else:
        length = int(max_length or max_sequence_length(tokenizer, config, kind))
        if limit is not None and length > limit:
            _warn_capped(length, limit, config)
            length = limit
        inner["max_sequence_length"] = length
    if task_type == "text_similarity":
        inner["truncate"] = "second"
    return {kind: inner}


def classification_labels(config: Any) -> list[str] | None:
    id2label = getattr(config, "id2label", None) or {}
    labels = [str(v) for _k, v in sorted(((int(k), v) for k, v in id2label.items()), key=lambda kv: kv[0])]
    return [label.replace("-", "_") for label in labels] or None


def embedding_size(folder: Path, config: Any) -> int:
    modules = json.loads((folder / "modules.json").read_text()) if (folder / "modules.json").is_file() else []
    dense = [m for m in modules if str(m.get("type", "")).endswith("Dense")]
    if dense:
        dense_config = _read_json(folder / str(dense[-1].get("path")) / "config.json")
        if dense_config.get("out_features"):
            return int(dense_config["out_features"])
    pooling = next((m.get("path") for m in modules if str(m.get("type", "")).endswith("Pooling")), None)
    dim = _read_json(folder / (pooling or "1_Pooling") / "config.json").get("word_embedding_dimension")
    return int(dim or config.hidden_size)


def vocabulary_body(tokenizer: Any) -> dict[str, Any]:
    """``PUT _ml/trained_models/<id>/vocabulary``: tokens by id, plus BPE merges when present."""
    vocab = [token for token, _id in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    body: dict[str, Any] = {"vocabulary": vocab}
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        model = json.loads(backend.to_str()).get("model") or {}
        merges = model.get("merges")
        if model.get("type") == "BPE" and merges:
            body["merges"] = [m if isinstance(m, str) else " ".join(m) for m in merges]
    return body


def weights_bytes(folder: Path) -> int:
    for pattern in WEIGHT_FILES:
        files = list(folder.glob(pattern))
        if files:
            return sum(f.stat().st_size for f in files)
    return 0


def import_hf_model(engine: "Engine", path: str | Path, task_type: str, model_id: str | None = None, *,
                    hub_model_id: str | None = None, quantize: str | None = None, description: str | None = None,
                    ingest_prefix: str | None = None, search_prefix: str | None = None,
                    max_model_input_length: int | None = None, copy_files: bool | None = None,
                    precision: str | None = None) -> dict[str, Any]:
    """Import the Hugging Face model in ``path`` for ``task_type``; returns the PUT answer."""
    if task_type not in TASKS:
        raise ValueError(f"Task {task_type} is not supported, must be one of: {', '.join(sorted(TASKS))}")
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {list(QUANTIZE)}, got {quantize!r}")
    if precision is not None:
        precision = check_precision(precision)
        if quantize == "int8" and precision != "int8":
            raise ValueError(f"quantize='int8' and precision={precision!r} disagree; pass precision alone")
    folder = Path(path).expanduser().resolve()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a Hugging Face model folder (no config.json); nothing is fetched "
                                "from a hub")
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    name = hub_model_id or default_name(folder)
    model_id = model_id or elasticsearch_model_id(name)
    inner: dict[str, Any] = {"tokenization": tokenization_config(tokenizer, config, task_type, max_model_input_length)}
    if task_type in ("text_classification", "ner", "zero_shot_classification"):
        labels = classification_labels(config)
        if labels:
            inner["classification_labels"] = labels
    if task_type == "text_embedding":
        inner["embedding_size"] = embedding_size(folder, config)
    body: dict[str, Any] = {
        "description": description or f"Model {name} for task type '{task_type}'",
        "model_type": "pytorch",
        "inference_config": {task_type: inner},
        "input": {"field_names": ["text_field"]},
        "model_size_bytes": weights_bytes(folder),
    }
    if ingest_prefix or search_prefix:
        body["prefix_strings"] = {k: v for k, v in (("ingest", ingest_prefix), ("search", search_prefix)) if v}
    TASKS[task_type].parse(inner)  # ES's task validation before anything is stored
    answer = engine.request("PUT", f"_ml/trained_models/{model_id}", body).raise_for_status().body
    try:
        engine.request("PUT", f"_ml/trained_models/{model_id}/vocabulary",
                       vocabulary_body(tokenizer)).raise_for_status()
        files = _place_files(engine, folder, model_id, copy_files)
        with engine.lock:
            stored = dict(engine.models.config(model_id))
            stored[LOCAL_MODEL_KEY] = {"path": str(files), "quantize": quantize, "source": str(folder)}
            if precision is not None:
                stored[LOCAL_MODEL_KEY]["precision"] = precision
            engine.models.put(model_id, stored)
    except BaseException:
        engine.request("DELETE", f"_ml/trained_models/{model_id}")
        raise
    return answer


def _place_files(engine: "Engine", folder: Path, model_id: str, copy_files: bool | None) -> Path:
    """The folder the model loads from: a copy under the engine's home, or ``folder`` itself."""
    if engine.home is None or copy_files is False:
        return folder
    dest = engine.home / MODEL_DIR / model_id
    if dest.exists():
        shutil.rmtree(dest)
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(folder, tmp)
    tmp.rename(dest)
    return dest

