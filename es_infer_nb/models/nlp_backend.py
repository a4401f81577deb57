"""What a deployment runs: the NLP model behind a pytorch model id, loaded for one device.

User models (imported from Hugging Face folders or PUT with their definition) run through
:class:`es_infer_nb.models.nlp.model.NlpModel`; the bundled all-MiniLM-L6-v2 runs through
:func:`es_infer_nb.models.nlp.embedded.get_model` (exact sentence-transformers vectors).
Both answer ``infer(docs, update, field=...)`` with an object whose ``to_docs()`` gives one
ES result per document.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..errors import ApiError
from .builtin import builtin_config, is_builtin
from .doc_columns import DocsResult
from .native_definitions import LOCAL_SOURCE_KEY
from .nlp.model import NlpModel
from .nlp.precision import resolve_precision
from .nlp.tasks.base import unknown_field
from .parsing import as_object
from .torchscript import TorchScriptModel
from .tree.features import dig


class Backend(Protocol):
    def infer(self, docs: list[dict[str, Any]], update: dict[str, Any] | None = None, *,
              field: str | None = None) -> Any: ...


def resolve_device(device: str | None) -> str:
    """``cpu`` / ``cuda[:n]`` / ``auto`` (CUDA when present) -> the torch device name."""
    if device in (None, "", "cpu"):
        return "cpu"
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda"):
        if not torch.cuda.is_available():
            raise ApiError("status_exception", f"device [{device}] was requested but CUDA is not available", 400)
        return str(device)
    raise ApiError("illegal_argument_exception", f"unknown device [{device}]; use cpu, cuda, cuda:<n> or auto", 400)


def resolve_model_precision(precision: str | None, device: str) -> str:
    """:func:`.nlp.precision.resolve_precision` for a request: a bad value is ES's 400
    ``illegal_argument_exception`` naming ``precision`` and its valid values. ``None``: the default
    (``ES_INFER_NB_PRECISION``, else ``auto``)."""
    try:
        return resolve_precision(precision, device)
    except ValueError as exc:
        raise ApiError("illegal_argument_exception", str(exc), 400) from None


def input_field(stored: dict[str, Any]) -> str:
    names = (stored.get("input") or {}).get("field_names") or ["text_field"]
    return str(names[0])


def text_input(doc: dict[str, Any], field: str) -> str | ApiError:
    """The text a document gives an NLP model, or the ES error for it (spec §3.5)."""
    value = dig(doc, field)
    if value is None:
        return ApiError("status_exception", f"Input field [{field}] does not exist in the source document", 400)
    if not isinstance(value, str):
        return ApiError("status_exception", f"Input value [{value}] for field [{field}] must be a string", 400)
    return value


class EmbeddedBackend:
    """The bundled all-MiniLM-L6-v2 as a ``text_embedding`` model."""

    TASK = "text_embedding"

    def __init__(self, model_id: str, stored: dict[str, Any], device: str, precision: str | None = None) -> None:
        self.model_id = model_id
        self.stored = stored
        from .nlp.embedded import get_model  # imports torch: loaded when a deployment starts

        self.model = get_model(device, precision).load()  # ES loads the model when the deployment starts
        self.precision = self.model.precision
        self.max_tokens = int(stored["inference_config"][self.TASK]["tokenization"]["bert"]["max_sequence_length"])

    def _options(self, update: dict[str, Any] | None) -> tuple[str, str]:
        """``(results_field, truncate)`` after an update (``text_embedding`` with results_field / tokenization)."""
        if not update:
            return "predicted_value", "first"
        if not isinstance(update, dict) or len(update) != 1:
            raise ApiError("status_exception",
                           "inference_config must be an object with one inference type mapped to an object.", 400)
        ((name, options),) = update.items()
        if name != self.TASK:
            raise ApiError("status_exception", f"Trained model [{self.model_id}] is configured for task [{self.TASK}] "
                           f"but called with task [{name}]", 403)  # TrainedModelDeploymentTask.infer
        options = as_object(options if options is not None else {}, "text_embedding_config_update", self.TASK)
        unknown = sorted(set(options) - {"results_field", "tokenization"})
        if unknown:
            raise unknown_field("text_embedding", unknown[0], update=True)
        truncate = "first"
        tokenization = options.get("tokenization")
        if tokenization is not None:
            if not isinstance(tokenization, dict) or len(tokenization) != 1 or not isinstance(
                    next(iter(tokenization.values())), dict):
                raise ApiError("x_content_parse_exception",
                               "[text_embedding_config_update] failed to parse field [tokenization]", 400)
            ((_kind, settings),) = tokenization.items()
            truncate = str(settings.get("truncate") or "first").lower()
            if truncate not in ("first", "second", "none", "balanced"):
                raise ApiError("illegal_argument_exception", f"No enum constant "
                               f"org.elasticsearch.xpack.core.ml.inference.trainedmodel.Tokenization.Truncate."
                               f"{truncate.upper()}", 400)
        return str(options.get("results_field") or "predicted_value"), truncate

    def infer(self, docs: list[dict[str, Any]], update: dict[str, Any] | None = None, *,
              field: str | None = None) -> DocsResult:
        results_field, truncate = self._options(update)
        field = field or input_field(self.stored)
        inputs = [text_input(doc, field) for doc in docs]
        ok = [i for i, v in enumerate(inputs) if isinstance(v, str)]
        out: list[dict[str, Any]] = [{"error": v.reason} if isinstance(v, ApiError) else {} for v in inputs]
        if ok:
            full = self.model.tokenize([str(inputs[i]) for i in ok], truncation=False)  # once: lengths and ids
            vectors = self.model.embed_ids([self.model.truncate(ids) for ids in full], progress=False)
            for j, i in enumerate(ok):
                n = len(full[j])
                if n > self.max_tokens and truncate == "none":
                    out[i] = {"error": f"Input too large. The tokenized input length [{n}] exceeds the maximum "
                                       f"sequence length [{self.max_tokens}]"}
                    continue
                result: dict[str, Any] = {results_field: vectors[j].tolist()}
                if n > self.max_tokens:
                    result = {"is_truncated": True, **result}
                out[i] = result
        return DocsResult(self.model_id, out)


def load_backend(model_id: str, stored: dict[str, Any], device: str, definitions: Any = None, *,
                 trust_torchscript: bool = False, precision: str | None = None) -> Backend:
    """The model that serves ``model_id`` on ``device`` in ``precision`` (a concrete one, see
    :func:`resolve_model_precision`): the bundled MiniLM, a TorchScript definition uploaded in parts
    (``definitions``: :class:`~.native_definitions.NativeDefinitions`; checked before it runs unless
    ``trust_torchscript``; always float32, as traced), or the local folder the Hugging Face importer
    recorded. Every backend says what it runs in as ``.precision``."""
    if is_builtin(model_id) and stored == builtin_config(model_id):
        return EmbeddedBackend(model_id, stored, device, precision)
    if definitions is not None and definitions.has_parts(model_id) and not stored.get(LOCAL_SOURCE_KEY):
        return TorchScriptModel(model_id, stored, device, definitions.definition_bytes(model_id),
                                definitions.vocabulary(model_id), trusted=trust_torchscript)
    return NlpModel(model_id, stored, device, precision)
