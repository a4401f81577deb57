"""A pytorch (NLP) trained model: tokenizer + transformers network + ES task post-processing.

THE interface deployments call::

    model = NlpModel(model_id, stored, device)          # stored: the trained model config
    result = model.infer(docs, update=None, field=None)  # -> NlpBatchResult
    result.to_docs()       # one ES ``inference_results`` entry per doc; ``{"error": reason}`` for a failed doc
    result.error_mask      # np.ndarray[bool]
    result.to_columns(target_field, index)  # ``<target>.<key>`` columns, Arrow-typed (embeddings
                                            # as fixed_size_list<float32>)

``stored`` is the config the model store keeps: ``inference_config`` (one task), ``input``
(``field_names[0]`` is read, default ``text_field``) and, for models imported from a Hugging Face
folder (:mod:`.importer`), :data:`LOCAL_MODEL_KEY` = ``{"path": <folder>}`` naming the files. Each
document's text goes through the task's tokenization (windows, truncation), the network in
length-sorted, token-budgeted batches, and the task's post-processing. A document that fails (no
input, not a string, too long with ``truncate: none``, no mask token...) gets its ES error alone;
the others are unaffected. A bad ``update`` (``inference_config`` of the request) fails the whole
request with :class:`~es_infer_nb.errors.ApiError`, as ES does.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import ApiError
from ..doc_columns import DocsResult
from ..tree.features import dig
from .tasks import Task, parse_task
from .tokenization import NlpTokenizer, Window, build_tokenizer

LOCAL_MODEL_KEY = "_local_model"
DEFAULT_INPUT_FIELD = "text_field"

__all__ = ["LOCAL_MODEL_KEY", "NlpBatchResult", "NlpModel", "model_folder"]


class NlpBatchResult(DocsResult):
    """Results of one batch: ES result objects per document; ``errors[i]`` keeps the ApiError of a
    failed document (its ``to_docs()`` entry is ``{"error": reason}``)."""

    def __init__(self, model_id: str, docs: list[dict[str, Any]], errors: list[ApiError | None]) -> None:
        super().__init__(model_id, docs)
        self.errors = errors


def model_folder(stored: dict[str, Any]) -> Path:
    local = stored.get(LOCAL_MODEL_KEY) or {}
    path = local.get("path") if isinstance(local, dict) else None
    if not path:
        raise ApiError("status_exception", f"Model [{stored.get('model_id')}] has no local model files: import it with "
                       "Engine.import_hf_model(<folder>, <task_type>)", 409)
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise ApiError("status_exception", f"Model [{stored.get('model_id')}] files are missing under [{folder}]", 409)
    return folder


def text_of(doc: dict[str, Any], field: str) -> str:
    """The document's input text, or the ES error (spec §3.5)."""
    value = dig(doc, field) if isinstance(doc, dict) else None
    if value is None:
        raise ApiError("status_exception", f"Input field [{field}] does not exist in the source document", 400)
    if not isinstance(value, str):
        raise ApiError("status_exception", f"Input value [{_java_str(value)}] for field [{field}] must be a string", 400)
    return value


def _java_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_java_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java_str(v)}" for k, v in value.items()) + "}"
    return str(value)


def _simple_batches(lengths: Sequence[int], forward: Callable[[list[int]], list[Any]], *, token_budget: int = 2048,
                    max_batch: int = 256, progress: Any = None, desc: str = "") -> list[Any]:
    """Length-sorted batches of at most ``token_budget`` padded tokens; outputs in input order."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[Any] = [None] * len(lengths)
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * lengths[i] > token_budget or len(batch) >= max_batch:
            for j, value in zip(batch, forward(batch)):
                out[j] = value
            batch = []
        batch.append(i)
    if batch:
        for j, value in zip(batch, forward(batch)):
            out[j] = value
    return out


def _run_batches() -> Callable[..., list[Any]]:
    try:
        from .batching import run_batches
    except ImportError:
        return _simple_batches
    return run_batches


class NlpModel:
    """One pytorch model loaded for ``device`` (``cpu`` / ``cuda[:n]``)."""

    def __init__(self, model_id: str, stored: dict[str, Any], device: str = "cpu") -> None:
        self.model_id = model_id
        self.stored = stored
        self.device = device
        self.task: Task = parse_task(stored.get("inference_config") or {})
        names = (stored.get("input") or {}).get("field_names") or [DEFAULT_INPUT_FIELD]
        self.input_field = str(names[0])
        self.folder = model_folder(stored)
        self._lock = threading.Lock()
        self._hf_tokenizer = self._load_tokenizer()
        self.tokenizer = self.tokenizer_for(self.task)
        from .network import Network

        quantize = (stored.get(LOCAL_MODEL_KEY) or {}).get("quantize")
        self.network = Network(self.folder, self.task.HEAD, device, quantize)

    def _load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)

    def tokenizer_for(self, task: Task) -> NlpTokenizer:
        """The tokenizer with ``task``'s settings (a request may change truncate / span / max length)."""
        return build_tokenizer(task.tokenization, hf_tokenizer=self._hf_tokenizer)

    def __repr__(self) -> str:
        return f"<NlpModel {self.model_id} {self.task.NAME} on {self.device}>"

    # -- inference ----------------------------------------------------------------------------------
    def infer(self, docs: list[dict[str, Any]], update: dict[str, Any] | None = None, *,
              field: str | None = None, progress: Any = None) -> NlpBatchResult:
        task = self._task_for(update)
        tokenizer = self.tokenizer if task.tokenization == self.task.tokenization else self.tokenizer_for(task)
        field = field or self.input_field
        n = len(docs)
        errors: list[ApiError | None] = [None] * n
        texts: list[str] = [""] * n
        windows: list[list[Window]] = [[] for _ in range(n)]
        for i, doc in enumerate(docs):
            try:
                texts[i] = text_of(doc, field)
                task.validate_input(texts[i], tokenizer)
                windows[i] = task.windows(texts[i], tokenizer)
            except ApiError as err:
                errors[i] = err
        items = [(i, w) for i in range(n) if errors[i] is None for w in windows[i]]
        outputs = self._forward([w for _, w in items], tokenizer, progress)
        per_doc: list[list[np.ndarray]] = [[] for _ in range(n)]
        for (i, _w), out in zip(items, outputs):
            per_doc[i].append(out)
        results: list[dict[str, Any]] = []
        for i in range(n):
            if errors[i] is None:
                try:
                    results.append(task.result(texts[i], windows[i], per_doc[i], tokenizer))
                    continue
                except ApiError as err:
                    errors[i] = err
                except (ArithmeticError, IndexError, KeyError, ValueError) as exc:  # one document's bad output
                    errors[i] = ApiError("status_exception", f"[{self.model_id}] failed to process the result of "
                                         f"[{task.NAME}] for this document: {exc}", 500)
            results.append({"error": errors[i].reason})  # type: ignore[union-attr]
        return NlpBatchResult(self.model_id, results, errors)

    def _task_for(self, update: dict[str, Any] | None) -> Task:
        if not update:
            task = self.task
        else:
            if not isinstance(update, dict) or len(update) != 1:
                raise ApiError("status_exception",
                               "inference_config must be an object with one inference type mapped to an object.", 400)
            ((name, options),) = update.items()
            if name != self.task.NAME:
                raise ApiError("status_exception", f"Model [{self.model_id}] has inference config of type "
                               f"[{self.task.NAME}] which is not supported by inference request of type [{name}]", 400)
            task = self.task.updated(options or {})
        task.check_request()
        return task

    def _forward(self, windows: list[Window], tokenizer: NlpTokenizer, progress: Any) -> list[np.ndarray]:
        if not windows:
            return []
        lengths = [len(w.token_ids) for w in windows]

        def forward(indices: list[int]) -> list[np.ndarray]:
            return self.network([windows[i] for i in indices], tokenizer.pad_id)

        with self._lock:
            return _run_batches()(lengths, forward, progress=progress, desc=self.model_id)
