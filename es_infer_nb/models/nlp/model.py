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

The network itself may fail on a batch (a torch ``RuntimeError``: an input longer than the model's
position embeddings, an out-of-range id...). Such a batch is split in halves and retried down to
single windows (:func:`isolate_failures`), so only the documents whose windows fail alone get an
error, ES's ``status_exception`` (500) ``"Error in inference process: [<message>]"``; every other
document of the batch gets its result. CUDA out-of-memory is left to :mod:`.batching`'s own split.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import ApiError
from ..doc_columns import DocsResult
from ..tree.features import dig
from .batching import cpu_streams, run_batches
from .network import Network
from .precision import resolve_precision
from .tasks import Task, parse_task
from .tokenization import NlpTokenizer, Window, build_tokenizer

LOCAL_MODEL_KEY = "_local_model"
DEFAULT_INPUT_FIELD = "text_field"

__all__ = ["LOCAL_MODEL_KEY", "ModelFailure", "NlpBatchResult", "NlpModel", "isolate_failures", "model_folder",
           "stored_precision"]


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


def stored_precision(stored: dict[str, Any]) -> str | None:
    """The precision an imported model was given (``import_hf_model(precision=...)``, or ``int8`` for
    eland's ``quantize``); ``None`` when it left the choice to the caller."""
    local = stored.get(LOCAL_MODEL_KEY) or {}
    if not isinstance(local, dict):
        return None
    if local.get("precision"):
        return str(local["precision"])
    return "int8" if local.get("quantize") == "int8" else None


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


class ModelFailure:
    """The output of a window the network failed on, alone: ``reason`` is the error's message."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"ModelFailure({self.reason!r})"


def _is_model_error(exc: BaseException) -> bool:
    """An error of the network on its input (torch raises RuntimeError / IndexError / ValueError),
    not a CUDA out-of-memory (split by :mod:`.batching`) nor one of our ES errors."""
    if isinstance(exc, ApiError) or not isinstance(exc, (RuntimeError, IndexError, ValueError)):
        return False
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is what raises these
        return True
    return not isinstance(exc, torch.cuda.OutOfMemoryError)


def model_error_reason(exc: BaseException) -> str:
    """The message of a model error, without any (TorchScript) traceback: the last
    ``SomeError: message`` line when the text has several lines, else its first line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if len(lines) > 1:
        for line in reversed(lines):
            head, sep, rest = line.partition(": ")
            if sep and rest and head.replace(".", "").isidentifier() and head.endswith(("Error", "Exception")):
                return rest
    return lines[0]


def isolate_failures(run: Callable[[list[int]], Sequence[Any]], indices: list[int]) -> list[Any]:
    """``run(indices)``; when the model fails on the batch, split it in halves and retry each, down to
    single items: an item that fails alone gets a :class:`ModelFailure`, the others their output."""
    try:
        return list(run(list(indices)))
    except Exception as exc:
        if not _is_model_error(exc):
            raise
        if len(indices) == 1:
            return [ModelFailure(model_error_reason(exc))]
    half = len(indices) // 2
    return isolate_failures(run, indices[:half]) + isolate_failures(run, indices[half:])


def inference_process_error(reason: str) -> ApiError:
    """ES's error for a document the model failed on (``AbstractPyTorchAction.onFailure``)."""
    return ApiError("status_exception", f"Error in inference process: [{reason}]", 500)


class NlpModel:
    """One pytorch model loaded for ``device`` (``cpu`` / ``cuda[:n]``) in a concrete ``precision``
    (``fp32`` / ``bf16`` / ``fp16`` / ``int8``; left out: what the import recorded, see
    :func:`stored_precision`, resolved for the device)."""

    def __init__(self, model_id: str, stored: dict[str, Any], device: str = "cpu", precision: str | None = None
                 ) -> None:
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


        self.precision = resolve_precision(precision or stored_precision(stored) or "fp32", device)
        self.network = Network(self.folder, self.task.HEAD, device, precision=self.precision,
                               tokenizer=self._hf_tokenizer)

    def _load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)

    def tokenizer_for(self, task: Task) -> NlpTokenizer:
        """The tokenizer with ``task``'s settings (a request may change truncate / span / max length)."""
        return build_tokenizer(task.tokenization, hf_tokenizer=self._hf_tokenizer)

    def __repr__(self) -> str:
        return f"<NlpModel {self.model_id} {self.task.NAME} on {self.device} ({self.precision})>"

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
                windows[i] = task.request_windows([texts[i]], tokenizer)
            except ApiError as err:
                errors[i] = err
        items = [(i, w) for i in range(n) if errors[i] is None for w in windows[i]]
        outputs = self._forward([w for _, w in items], tokenizer, progress)
        per_doc: list[list[np.ndarray]] = [[] for _ in range(n)]
        for (i, _w), out in zip(items, outputs):
            if isinstance(out, ModelFailure):
                if errors[i] is None:  # the document's first failing window names the error
                    errors[i] = inference_process_error(out.reason)
                continue
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
                raise ApiError("status_exception", f"Trained model [{self.model_id}] is configured for task "
                               f"[{self.task.NAME}] but called with task [{name}]", 403)  # TrainedModelDeploymentTask
            task = self.task.updated(options or {})
        task.check_request()
        return task

    def _forward(self, windows: list[Window], tokenizer: NlpTokenizer, progress: Any
                 ) -> list[np.ndarray | ModelFailure]:
        if not windows:
            return []
        lengths = [len(w.token_ids) for w in windows]

        def network(indices: list[int]) -> list[np.ndarray]:
            return self.network([windows[i] for i in indices], tokenizer.pad_id)

        def forward(indices: list[int]) -> list[np.ndarray | ModelFailure]:
            return isolate_failures(network, indices)


        streams = cpu_streams() if self.device == "cpu" else 1
        with self._lock:
            return run_batches(lengths, forward, progress=progress, desc=self.model_id, streams=streams,
                               packed=self.network.packs_tokens)
