"""pytorch models uploaded the Elasticsearch way: a TorchScript definition in base64 parts plus a
vocabulary (``PUT _ml/trained_models/<id>/definition/<part>``, ``.../vocabulary``), as eland's
``PyTorchModel.put_model`` / ``put_vocab`` send them.

Like ES's ``pytorch_inference`` process, the traced module is called with the padded token ids, the
attention mask, the token types and the positions (as many of these as its ``forward`` takes) and its
output is read per task: ``[batch, hidden]`` for embeddings / classification / expansion,
``[batch, tokens, x]`` for pass_through / NER / fill_mask, the stacked start and end logits for
question answering. Tokenization is ES's WordPiece (``bert``) over the uploaded vocabulary; the task
post-processing is the one every NLP model uses (:class:`es_infer_nb.models.nlp.model.NlpModel`).

Unless the engine trusts TorchScript (``Engine(trust_torchscript=True)``), the definition is checked
before it is loaded and again once loaded, before it runs (:mod:`es_infer_nb.models.nlp.graph_check`):
only the operations a text model needs, nothing run at load time.
"""

from __future__ import annotations

import io
import threading
import warnings
from typing import Any, Sequence

import numpy as np

from ..errors import ApiError
from .nlp.graph_check import check_module, scan_archive
from .nlp.model import DEFAULT_INPUT_FIELD, NlpModel
from .nlp.network import pad_batch
from .nlp.tasks import parse_task
from .nlp.tasks.base import HEAD_HIDDEN, HEAD_MASKED_LM, HEAD_SPAN, HEAD_TOKEN
from .nlp.tokenization import Window, build_tokenizer

ARG_ORDER = ("tokens", "arg_1", "arg_2", "arg_3")


class TorchScriptNetwork:
    """A traced module loaded from the definition bytes, called as ES's native process calls it.
    ``trusted``: skip the check of :mod:`.nlp.graph_check` (``model_id`` names the model in its errors)."""

    def __init__(self, definition: bytes, head: str, device: str = "cpu", *, trusted: bool = False,
                 model_id: str = "") -> None:
        import torch

        if not trusted:
            scan_archive(model_id, definition)  # before torch.jit.load, which runs __setstate__
        try:
            with warnings.catch_warnings():  # torch's TorchScript deprecation notice is not the user's concern
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(io.BytesIO(definition), map_location=device)
        except Exception as exc:  # noqa: BLE001 - any unreadable definition is the model's fault
            raise ApiError("status_exception", f"the model definition is not a TorchScript module: {exc}", 400) \
                from None
        if not trusted:
            check_module(model_id, self.module)
        self.module.eval()
        self.head = head
        self.device = device
        inputs = [i for i in self.module.forward.schema.arguments if i.name != "self"]
        self.n_args = max(1, min(len(inputs), len(ARG_ORDER)))
        #: a traced module computes its padded batches whole (see :attr:`.nlp.network.Network.packs_tokens`)
        self.packs_tokens = False

    def __call__(self, windows: Sequence[Window], pad_id: int) -> list[np.ndarray]:
        import torch

        batch = pad_batch(windows, pad_id)
        args = [torch.from_numpy(batch[name]).to(self.device) for name in ARG_ORDER[: self.n_args]]
        with torch.inference_mode():
            out = self.module(*args)
        if isinstance(out, (tuple, list)):
            out = out[0]
        elif isinstance(out, dict):
            out = next(iter(out.values()))
        arr = out.float().cpu().numpy()
        n = len(windows)
        if self.head == HEAD_SPAN and arr.ndim == 3 and arr.shape[0] == 2 and arr.shape[1] == n:
            arr = arr.transpose(1, 0, 2)  # eland stacks [start, end] first
        lengths = [len(w.token_ids) for w in windows]
        if self.head in (HEAD_HIDDEN, HEAD_TOKEN, HEAD_MASKED_LM):
            return [arr[i, : lengths[i]] for i in range(n)]
        if self.head == HEAD_SPAN:
            return [arr[i, :, : lengths[i]] for i in range(n)]
        return [arr[i].reshape(-1) for i in range(n)]


class TorchScriptModel(NlpModel):
    """An :class:`NlpModel` whose network is an uploaded TorchScript definition and whose tokenizer
    is built from the uploaded vocabulary. ``trusted``: load the definition unchecked. It runs the
    traced graph as uploaded: float32 whatever precision was asked for."""

    precision = "fp32"

    def __init__(self, model_id: str, stored: dict[str, Any], device: str, definition: bytes,
                 vocabulary: dict[str, Any] | None, *, trusted: bool = False) -> None:
        if not vocabulary or not vocabulary.get("vocabulary"):
            raise ApiError("status_exception", f"Model [{model_id}] has no vocabulary: PUT _ml/trained_models/"
                           f"{model_id}/vocabulary before starting it", 400)
        self.model_id = model_id
        self.stored = stored
        self.vocabulary = [str(v) for v in vocabulary["vocabulary"]]
        self.device = device
        self.task = parse_task(stored.get("inference_config") or {})
        names = (stored.get("input") or {}).get("field_names") or [DEFAULT_INPUT_FIELD]
        self.input_field = str(names[0])
        self.folder = None
        self._lock = threading.Lock()
        self._hf_tokenizer = None
        self.tokenizer = self.tokenizer_for(self.task)
        self.network = TorchScriptNetwork(definition, self.task.HEAD, device, trusted=trusted, model_id=model_id)

    def tokenizer_for(self, task: Any) -> Any:
        """ES's tokenizer over the uploaded vocabulary (``bert`` WordPiece; other kinds need their files)."""
        try:
            return build_tokenizer(task.tokenization, vocab=self.vocabulary)
        except ValueError as exc:
            raise ApiError("status_exception", f"Model [{self.model_id}]: {exc}", 400) from None

    def __repr__(self) -> str:
        return f"<TorchScriptModel {self.model_id} {self.task.NAME} on {self.device}>"
