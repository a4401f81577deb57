"""OpenSearch ml-commons local models registered from a local path (``_register`` with a ``url``).

``url`` is a ``file://`` URL or a plain path to a model zip (OpenSearch's layout: one ``*.pt`` or
``*.onnx`` file, ``tokenizer.json`` and for ``sparse_tokenize`` an optional ``idf.json``) or to a
folder holding the same files. Nothing is downloaded: a network URL is refused as OpenSearch refuses
an untrusted one, and the path must lie under a directory the operator configured
(``Engine(ml_model_paths=[...])`` or ``$ES_INFER_NB_ML_MODEL_PATHS``, separated by ``os.pathsep``),
symbolic links resolved, so a request cannot read files the operator did not offer.

TorchScript files pass the check every uploaded definition passes (:mod:`es_infer_nb.models.nlp.graph_check`,
through :class:`~es_infer_nb.models.torchscript.TorchScriptNetwork`) unless the engine trusts
TorchScript; ONNX files run with ``onnxruntime`` (the ``onnx`` extra). Outputs follow ml-commons'
translators: ``sentence_embedding`` tensors (text_embedding), ``output`` tensors with
``dataAsMap.response`` (sparse_encoding, sparse_tokenize), ``similarity`` tensors (text_similarity) and
a ``result`` string (question_answering).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import unquote, urlparse

import numpy as np

from ..errors import ApiError
from ..models.nlp.tasks.base import HEAD_HIDDEN
from ..models.parsing import json_token
from .ml_connector import iae, parameter_text
from .ml_results import embedding_params, embedding_results, present_docs, result_filter

MODEL_PATHS_ENV = "ES_INFER_NB_ML_MODEL_PATHS"
FUNCTIONS = ("TEXT_EMBEDDING", "SPARSE_ENCODING", "SPARSE_TOKENIZE", "TEXT_SIMILARITY", "QUESTION_ANSWERING")
FORMATS = ("TORCH_SCRIPT", "ONNX")
POOLING = ("MEAN", "MEAN_SQRT_LEN", "MAX", "WEIGHTED_MEAN", "CLS", "LAST_TOKEN", "NONE")
MAX_MEMBER_BYTES = 4 << 30
PATH_HINT = f"add its directory to Engine(ml_model_paths=[...]) or ${MODEL_PATHS_ENV}"


def paths_from_env() -> tuple[Path, ...]:
    raw = os.environ.get(MODEL_PATHS_ENV, "")
    return tuple(Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip())


def model_roots(paths: Iterable[str | os.PathLike[str]] | None) -> tuple[Path, ...]:
    """The directories local models may be read from (``None``: ``$ES_INFER_NB_ML_MODEL_PATHS``)."""
    if paths is None:
        return paths_from_env()
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return tuple(Path(p).expanduser() for p in paths)


def resolve_url(url: Any, roots: Sequence[Path]) -> Path:
    """The local file or folder ``url`` names, refused unless it lies under one of ``roots``."""
    if not isinstance(url, str) or not url.strip():
        raise iae("model url is null")
    parsed = urlparse(url)
    if parsed.scheme.lower() == "file":
        if parsed.netloc not in ("", "localhost"):
            raise iae("URL can't match trusted url regex: a file:// URL names a local path (file:///...)")
        raw = unquote(parsed.path)
    elif parsed.scheme and len(parsed.scheme) > 1:  # a network URL (a drive letter is one character)
        raise iae("URL can't match trusted url regex: es_infer_nb downloads nothing; register a local model "
                  f"from a file:// URL or a path under a directory of ml_model_paths ({PATH_HINT})")
    else:
        raw = url
    if not roots:
        raise iae(f"model url [{url}]: no directory is configured for local models: {PATH_HINT}")
    candidate = Path(raw).expanduser()
    tries = [candidate] if candidate.is_absolute() else [root / candidate for root in roots]
    inside = [path.resolve() for path in tries if _inside(path, roots)]
    for real in inside:
        if real.exists():
            return real
    if inside:
        raise iae(f"model url [{url}]: no such file or folder")
    raise iae(f"model url [{url}] is not under a directory es_infer_nb may read models from: {PATH_HINT}")


# -- the files of a model --------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelFiles:
    """The files a local model is built from (their bytes) and the hash of the model content."""

    model: bytes | None
    tokenizer: bytes | None
    idf: bytes | None
    sha256: str
    size: int


def _pick(names: Iterable[str], fmt: str) -> dict[str, str]:
    suffix = ".onnx" if fmt == "ONNX" else ".pt"
    found: dict[str, str] = {}
    models = [n for n in names if n.lower().endswith(suffix) and not Path(n).name.startswith(".")]
    if len(models) > 1:
        raise iae(f"found multiple models in the model content: {sorted(models)}")
    if models:
        found["model"] = models[0]
    for n in names:
        base = Path(n).name
        if base in ("tokenizer.json", "idf.json"):
            found.setdefault(base, n)
    return found


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    real = path.resolve()
    return any(real == r or real.is_relative_to(r) for r in (root.resolve() for root in roots))


def read_files(path: Path, fmt: str, roots: Sequence[Path]) -> ModelFiles:
    """The model file, ``tokenizer.json`` and ``idf.json`` of a zip or a folder (a single model file
    takes the tokenizer beside it); a file of a folder that links outside ``roots`` is refused."""
    try:
        return _read_files(path, fmt, roots)
    except OSError as exc:
        raise iae(f"cannot read the model content: {exc.strerror or exc}") from None
    except zipfile.BadZipFile as exc:
        raise iae(f"the model zip cannot be read: {exc}") from None


def _read_files(path: Path, fmt: str, roots: Sequence[Path]) -> ModelFiles:
    picked: dict[str, bytes] = {}
    digest = hashlib.sha256()
    if path.is_dir() or not zipfile.is_zipfile(path):
        folder = path if path.is_dir() else path.parent
        names = [p.name for p in folder.iterdir() if p.is_file()] if path.is_dir() else \
            [path.name] + [n for n in ("tokenizer.json", "idf.json") if (folder / n).is_file()]
        for key, name in _pick(names, fmt).items():
            if not _inside(folder / name, roots):
                raise iae(f"model file [{name}] links outside the directories of ml_model_paths")
            picked[key] = (folder / name).read_bytes()
        whole = picked.get("model", b"") + picked.get("tokenizer.json", b"") + picked.get("idf.json", b"")
        digest.update(whole)
        size = len(whole)
    else:
        data = path.read_bytes()
        digest.update(data)
        size = len(data)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = {i.filename: i for i in archive.infolist() if not i.is_dir()}
            for key, name in _pick(infos, fmt).items():
                if infos[name].file_size > MAX_MEMBER_BYTES:
                    raise iae(f"model content [{name}] is too large")
                picked[key] = archive.read(name)
    return ModelFiles(picked.get("model"), picked.get("tokenizer.json"),
                      picked.get("idf.json"), digest.hexdigest(), size)


# -- registration ------------------------------------------------------------------------------------

def registration(body: dict[str, Any], roots: Sequence[Path]) -> dict[str, Any]:
    """The model document fields of a local model registered from ``body['url']`` (checked now:
    the path, the files, the hash when given)."""
    function = str(body.get("function_name") or "TEXT_EMBEDDING").upper()
    if function not in FUNCTIONS:
        raise iae(f"Wrong function name [{function}]: a local model registered from a path is one of "
                  f"{[f.lower() for f in FUNCTIONS]}")
    fmt = str(body.get("model_format") or "").upper()
    if fmt not in FORMATS:
        raise iae(f"model_format [{body.get('model_format')}] must be TORCH_SCRIPT or ONNX")
    config = body.get("model_config")
    if config is None and function in ("TEXT_EMBEDDING",):
        raise iae("model config is null")
    if config is not None and not isinstance(config, dict):
        raise iae("[model_config] must be an object")
    config = dict(config or {})
    pooling = str(config.get("pooling_mode", "MEAN")).upper()
    if pooling not in POOLING:
        raise iae(f"[pooling_mode] must be one of {list(POOLING)}, found [{config.get('pooling_mode')}]")
    if "all_config" in config and not isinstance(config["all_config"], str):
        config["all_config"] = json.dumps(config["all_config"])
    files = read_files(resolve_url(body.get("url"), roots), fmt, roots)
    check_files(files, function, fmt, str(body.get("url")))
    wanted = body.get("model_content_hash_value")
    if wanted is not None and str(wanted).lower() != files.sha256:
        raise iae("model content changed")
    return {"function": function, "model_format": fmt, "model_config": config, "url": str(body["url"]),
            "model_content_hash_value": files.sha256, "model_content_size_in_bytes": files.size}


def check_files(files: ModelFiles, function: str, fmt: str, url: str) -> None:
    if files.tokenizer is None:
        raise iae(f"model url [{url}]: no tokenizer.json in the model content")
    if files.model is None and function != "SPARSE_TOKENIZE":
        raise iae(f"model url [{url}]: no {'.onnx' if fmt == 'ONNX' else '.pt'} model file in the model content")


# -- loading and running -----------------------------------------------------------------------------

Network = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


def _torchscript(files: ModelFiles, model_id: str, device: str, trusted: bool) -> Network:
    import torch

    from ..models.torchscript import TorchScriptNetwork  # the NLP model code (tqdm): loaded when one runs

    assert files.model is not None
    module = TorchScriptNetwork(files.model, HEAD_HIDDEN, device, trusted=trusted, model_id=model_id).module
    names = [a.name for a in module.forward.schema.arguments if a.name != "self"]
    order = ("input_ids", "attention_mask", "token_type_ids")

    def run(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        args = [torch.from_numpy(inputs[order[i]]).to(device) for i in range(min(max(len(names), 1), len(order)))]
        with torch.inference_mode():
            out = module(*args)
        if isinstance(out, dict):
            out = list(out.values())
        if not isinstance(out, (list, tuple)):
            out = [out]
        return [o.float().cpu().numpy() for o in out if isinstance(o, torch.Tensor)]

    return run


def _onnx(files: ModelFiles) -> Network:
    try:
        import onnxruntime
    except ImportError:
        raise ApiError("status_exception", "ONNX models need onnxruntime: pip install 'es-infer-nb[onnx]' (or "
                       "pip install onnxruntime)", 400) from None
    assert files.model is not None
    try:
        session = onnxruntime.InferenceSession(files.model, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - an unreadable file is the model's fault
        raise iae(f"the model content is not an ONNX model: {str(exc)[:500]}") from None
    wanted = [i.name for i in session.get_inputs()]

    def run(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        feed = {name: inputs[name] for name in wanted if name in inputs}
        return [np.asarray(o, dtype=np.float32) for o in session.run(None, feed)]

    return run


class LocalModel:
    """A deployed local model: its tokenizer, its network (none for ``sparse_tokenize``), its config."""

    def __init__(self, model_id: str, doc: dict[str, Any], roots: Sequence[Path], device: str | None,
                 trusted: bool) -> None:
        from tokenizers import Tokenizer

        self.function = str(doc["algorithm"])
        self.config = dict(doc.get("model_config") or {})
        fmt = str(doc.get("model_format") or "TORCH_SCRIPT")
        files = read_files(resolve_url(doc.get("url"), roots), fmt, roots)
        if files.sha256 != doc.get("model_content_hash_value"):
            raise iae(f"model content changed since model [{model_id}] was registered: register it again")
        check_files(files, self.function, fmt, str(doc.get("url")))
        assert files.tokenizer is not None
        try:
            self.tokenizer = Tokenizer.from_str(files.tokenizer.decode("utf-8"))
        except Exception:  # noqa: BLE001 - whatever the file holds, it is not a tokenizer
            raise iae(f"the tokenizer.json of model [{model_id}] is not a Hugging Face tokenizer") from None
        self.tokenizer.no_padding()
        if self.tokenizer.truncation is None:
            self.tokenizer.enable_truncation(self._max_length())
        try:
            self.idf: dict[str, float] = ({str(k): float(v) for k, v in json.loads(files.idf).items()}
                                          if files.idf else {})
        except (ValueError, TypeError, AttributeError):
            raise iae(f"the idf.json of model [{model_id}] must be an object of token weights") from None
        self.network: Network | None = None
        if self.function != "SPARSE_TOKENIZE":
            self.network = _onnx(files) if fmt == "ONNX" else _torchscript(files, model_id, device or "cpu", trusted)
        self._lock = threading.Lock()

    def _max_length(self) -> int:
        try:
            all_config = json.loads(self.config.get("all_config") or "{}")
        except ValueError:
            all_config = {}
        return int(all_config.get("max_position_embeddings", 512)) if isinstance(all_config, dict) else 512

    def _run(self, encodings: list[Any]) -> tuple[list[np.ndarray], np.ndarray]:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for i, e in enumerate(encodings):
            n = len(e.ids)
            ids[i, :n], mask[i, :n], types[i, :n] = e.ids, e.attention_mask, e.type_ids
        assert self.network is not None
        try:
            with self._lock:
                outputs = self.network({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        except ApiError:
            raise
        except Exception as exc:  # noqa: BLE001 - the model's own failure, named without a traceback
            raise ApiError("status_exception", f"the local model failed to run: {str(exc)[:500]}", 500) from None
        if not outputs:
            raise ApiError("status_exception", "the model returned no tensor", 500)
        return outputs, mask

    # -- functions ----------------------------------------------------------------------------------
    def predict(self, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise iae("The input of a local model must be an object")
        if self.function == "TEXT_SIMILARITY":
            return self._similarity(body)
        if self.function == "QUESTION_ANSWERING":
            return self._question_answering(body)
        docs = present_docs(body)
        if self.function == "TEXT_EMBEDDING":
            return self._embedding(docs, body)
        params = embedding_params(body)
        token_ids = params is not None and params.sparse_format == "TOKEN_ID"
        if self.function == "SPARSE_TOKENIZE":
            return {"inference_results": [{"output": [{"dataAsMap": {"response": [self._tokenize(d, token_ids)]}}]}
                                          for d in docs]}
        return self._sparse(docs, token_ids)

    def _embedding(self, docs: list[str], body: dict[str, Any]) -> dict[str, Any]:
        encodings = self.tokenizer.encode_batch(docs)
        outputs, mask = self._run(encodings)
        hidden = outputs[0]
        pooling = str(self.config.get("pooling_mode", "MEAN")).upper()
        if hidden.ndim == 3 and pooling != "NONE":
            hidden = pool(hidden, mask, pooling)
        elif hidden.ndim == 3:
            hidden = hidden[:, 0]
        if self.config.get("normalize_result") in (True, "true"):
            hidden = hidden / np.maximum(np.linalg.norm(hidden, axis=1, keepdims=True), 1e-12)
        return embedding_results(hidden.astype(np.float32), result_filter(body))

    def _decode(self, index: int) -> str:
        return self.tokenizer.decode([int(index)], skip_special_tokens=True)

    def _sparse(self, docs: list[str], token_ids: bool) -> dict[str, Any]:
        outputs, mask = self._run(self.tokenizer.encode_batch(docs))
        weights = outputs[0]
        if weights.ndim == 3:  # per token: the max over the document's tokens
            weights = np.where(mask[:, :, None] > 0, weights, -np.inf).max(axis=1)
        results = []
        for row in weights:
            found: dict[str, float] = {}
            for index in np.flatnonzero(row):
                key = str(int(index)) if token_ids else self._decode(index)
                if key:
                    found[key] = float(np.float32(row[index]))
            results.append({"output": [{"name": "output", "dataAsMap": {"response": [found]}}]})
        return {"inference_results": results}

    def _tokenize(self, doc: str, token_ids: bool) -> dict[str, float]:
        found: dict[str, float] = {}
        for index in dict.fromkeys(self.tokenizer.encode(doc).ids):
            token = self._decode(index)
            if token:
                found[str(index) if token_ids else token] = self.idf.get(token, 1.0)
        return found

    def _similarity(self, body: dict[str, Any]) -> dict[str, Any]:
        # TextSimilarityMLInput: the docs, then the query text (any text, an empty one too)
        docs = body.get("text_docs")
        if "text_docs" in body and not isinstance(docs, list):
            raise ApiError("parsing_exception", "Failed to parse object: expecting token of type [START_ARRAY] but "
                           f"found [{json_token(docs)}]", 400)
        if not docs:
            raise iae("No text documents were provided")
        if body.get("query_text") is None:
            raise iae("No query text was provided")
        query = parameter_text(body["query_text"])
        results = []
        for doc in docs:
            outputs, _ = self._run([self.tokenizer.encode(query, parameter_text(doc))])
            score = np.asarray(outputs[0], dtype=np.float32).reshape(-1)[:1]
            results.append({"output": [{
                "name": "similarity", "data_type": "FLOAT32", "shape": [1], "data": [float(score[0])],
                "byte_buffer": {"array": base64.b64encode(score.astype("<f4").tobytes()).decode("ascii"),
                                "order": "LITTLE_ENDIAN"}}]})
        return {"inference_results": results}

    def _question_answering(self, body: dict[str, Any]) -> dict[str, Any]:
        # QuestionAnsweringMLInput reads either field's text (a number's too); the data set refuses an empty one
        question, context = (None if body.get(k) is None else parameter_text(body[k]) for k in ("question", "context"))
        if not question:
            raise iae("Question is not provided")
        if not context:
            raise iae("Context is not provided")
        encoding = self.tokenizer.encode(question, context)
        outputs, _ = self._run([encoding])
        if len(outputs) >= 2:
            start_logits, end_logits = outputs[0].reshape(-1), outputs[1].reshape(-1)
        else:  # one stacked [2, 1, tokens] tensor
            start_logits, end_logits = outputs[0].reshape(2, -1)
        start, end = int(np.argmax(start_logits)), int(np.argmax(end_logits))
        if start >= end:
            start, end = end, start
        answer = self.tokenizer.decode(encoding.ids[start:end + 1], skip_special_tokens=False)
        return {"inference_results": [{"output": [{"result": answer}]}]}


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Sentence vectors from token vectors ``[batch, tokens, dim]`` (ml-commons' pooling modes)."""
    m = mask[:, :, None].astype(np.float32)
    if mode == "CLS":
        return hidden[:, 0]
    if mode == "LAST_TOKEN":
        return hidden[np.arange(hidden.shape[0]), mask.sum(axis=1) - 1]
    if mode == "MAX":
        return np.where(m > 0, hidden, -np.inf).max(axis=1)
    if mode == "WEIGHTED_MEAN":
        w = m * np.arange(1, hidden.shape[1] + 1, dtype=np.float32)[None, :, None]
        return (hidden * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-9)
    summed = (hidden * m).sum(axis=1)
    counts = np.maximum(m.sum(axis=1), 1e-9)
    return summed / (np.sqrt(counts) if mode == "MEAN_SQRT_LEN" else counts)

