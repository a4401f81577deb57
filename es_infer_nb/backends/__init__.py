"""Which backend serves an id: :func:`resolve` is the one place that decides.

A model id, alias, deployment id or ``_inference`` endpoint id becomes one backend object per kind,
each with the same small protocol (:class:`Backend`):

* :class:`EndpointBackend`: an ``_inference`` endpoint (a remote service or a local model behind one);
* :class:`NlpBackend`: a pytorch model, through its deployment (a deployment id names it too);
* :class:`OpenSearchBackend`: an OpenSearch ml-commons model (``_plugins/_ml``, remote or local),
  for the callers that take one (``resolve(..., opensearch=True)``: the ``ml_inference`` processor);
* :class:`TreeBackend`: every other trained model (tree ensembles, and the types that cannot run,
  which fail as they do today when run).

An id nothing serves goes to the tree runner, whose model store answers it with ES's 404 when it
runs, as it always did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pandas as pd

from ..errors import ApiError
from ..models import runner
from ..models.deployments import Deployment, deployments, model_field
from ..models.input_output import not_an_nlp_model
from ..models.nlp_backend import input_field
from ..models.runner import needed_fields
from ..models.nlp_frames import infer_frame_input_output, infer_frame_nlp
from ..models.tree.features import dig
from ..services.frames import infer_frame_endpoint
from ..services.ingest_bridge import DEFAULT_INPUT_FIELD
from ..services.ml_commons import call_concurrency as ml_commons_concurrency
from ..services.ml_commons import is_model as is_ml_commons_model
from ..services.ml_commons import predictor as ml_commons_predictor
from ..services.runner import call_concurrency as endpoint_concurrency
from ..services.runner import infer_endpoint, is_endpoint
from .columns import (
    endpoint_columns,
    input_output_columns,
    model_columns,
    nlp_columns,
    stored_config,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["Backend", "EndpointBackend", "Kind", "NlpBackend", "OpenSearchBackend", "TreeBackend", "call_concurrency",
           "resolve"]

Kind = Literal["tree", "nlp", "endpoint", "opensearch"]


class Backend(Protocol):
    """What every backend answers: documents in -> results, columns in -> columns, and the columns a
    run declares for a config before it runs."""

    kind: Kind
    engine: "Engine"
    id: str  # as the caller gave it (alias, deployment id, endpoint id...)

    def infer_docs(self, docs: list[dict[str, Any]], update: Any = None, *, device: str | None = None) -> Any:
        """One ES result per document (an object with ``to_docs()``, or the endpoint's entries)."""
        ...

    def infer_frame(self, frame: pd.DataFrame, **options: Any) -> pd.DataFrame:
        """The result columns of ``df.infer.run(id, **options)``, indexed like ``frame``."""
        ...

    def declared_columns(self, args: dict[str, Any]) -> dict[str, Any]:
        """``{column: dtype}`` that :meth:`infer_frame` writes with ``args``, from the configs only."""
        ...

    def input_fields(self) -> list[str] | None:
        """The document fields a run reads (``None``: not known here, e.g. an unknown id)."""
        ...

    def text_field(self) -> str | None:
        """The one text field a text model reads (``None``: the backend does not read one text field)."""
        ...


def _stored(engine: "Engine", id: str) -> dict[str, Any] | None:
    """The stored config of the model ``id`` names; ``None`` for an unknown id or a stand-in engine."""
    try:
        return stored_config(engine, id)[1]
    except (ApiError, AttributeError, TypeError):
        return None


@dataclass(frozen=True)
class TreeBackend:
    """A trained model run by the tree runner (tree ensembles; other non-pytorch types fail there)."""

    engine: "Engine"
    id: str
    kind: Kind = "tree"

    def infer_docs(self, docs: list[dict[str, Any]], update: Any = None, *, device: str | None = None) -> Any:
        return runner.infer_tree_docs(self.engine, self.id, docs, update, device=device)

    def infer_frame(self, frame: pd.DataFrame, *, input_output: Any = None, **options: Any) -> pd.DataFrame:
        if input_output is not None:  # checks the pairs and the frame, then fails: not an NLP model
            return infer_frame_input_output(self.engine, self.id, frame, input_output,
                                            inference_config=options.get("inference_config"),
                                            device=options.get("device"), progress=options.get("progress"))
        return runner.infer_frame(self.engine, self.id, frame, **options)

    def declared_columns(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("input_output") is not None:
            stored_config(self.engine, self.id)  # an unknown id: the 404 first
            raise not_an_nlp_model(self.id)
        return model_columns(self.engine, self.id, args.get("inference_config"), args.get("target_field"))

    def input_fields(self) -> list[str] | None:
        stored = _stored(self.engine, self.id)
        return None if stored is None else needed_fields(stored)

    def text_field(self) -> str | None:
        return None


@dataclass(frozen=True)
class NlpBackend:
    """A pytorch model, run by the deployment that serves the id (ES's 409 when there is none)."""

    engine: "Engine"
    id: str
    kind: Kind = "nlp"

    def deployment(self, engine_device: str | None = None) -> Deployment:
        """The deployment serving the id; ``engine_device``: where one started on first use runs
        (``None``: the engine's device)."""
        dep = deployments(self.engine).for_inference(self.id, device=engine_device)
        assert dep is not None  # resolve() chose this backend for a deployment or a pytorch model
        return dep

    def infer_docs(self, docs: list[dict[str, Any]], update: Any = None, *, device: str | None = None) -> Any:
        dep = self.deployment()
        return dep.infer(docs, update, model_field(self.engine, dep.model_id), device=device)

    def infer_frame(self, frame: pd.DataFrame, *, input_output: Any = None, inference_config: Any = None,
                    field_map: dict[str, str] | None = None, target_field: str | None = None,
                    batch_size: int | None = None, device: str | None = None,
                    progress: bool | None = None, precision: str | None = None) -> pd.DataFrame:
        if input_output is not None:
            return infer_frame_input_output(self.engine, self.id, frame, input_output,
                                            inference_config=inference_config, device=device, progress=progress,
                                            precision=precision)
        return infer_frame_nlp(self.engine, self.deployment(), frame, inference_config=inference_config,
                               field_map=field_map, target_field=target_field, batch_size=batch_size,
                               device=device, progress=progress, precision=precision)

    def declared_columns(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("input_output") is not None:
            return input_output_columns(self.engine, self.id, args["input_output"], args.get("inference_config"))
        return nlp_columns(self.engine, self.id, args.get("inference_config"), args.get("target_field"))

    def input_fields(self) -> list[str] | None:
        field = self.text_field()
        return None if field is None else [field]

    def text_field(self) -> str | None:
        stored = _stored(self.engine, self.id)
        return None if stored is None else input_field(stored)


@dataclass(frozen=True)
class EndpointBackend:
    """An ``_inference`` endpoint where a model id is expected."""

    engine: "Engine"
    id: str
    kind: Kind = "endpoint"

    def infer_docs(self, docs: list[dict[str, Any]], update: Any = None, *, device: str | None = None) -> Any:
        """One result entry per document, from its ``text_field`` (an ``ApiError`` for a failed input)."""
        return infer_endpoint(self.engine, self.id, [dig(doc, DEFAULT_INPUT_FIELD) for doc in docs])

    def infer_frame(self, frame: pd.DataFrame, *, input_output: Any = None, field_map: dict[str, str] | None = None,
                    target_field: str | None = None, progress: bool | None = None, **_: Any) -> pd.DataFrame:
        return infer_frame_endpoint(self.engine, self.id, frame, input_output=input_output, field_map=field_map,
                                    target_field=target_field, progress=progress)

    def declared_columns(self, args: dict[str, Any]) -> dict[str, Any]:
        return endpoint_columns(self.engine, self.id, args.get("input_output"), args.get("target_field"))

    def input_fields(self) -> list[str] | None:
        return None  # an endpoint takes texts, not trained-model documents

    def text_field(self) -> str | None:
        return DEFAULT_INPUT_FIELD


@dataclass(frozen=True)
class OpenSearchBackend:
    """An OpenSearch ml-commons model: it answers Predict requests (the ``ml_inference`` processor's
    calls); ES's trained-model paths (documents, frames) do not take it."""

    engine: "Engine"
    id: str
    kind: Kind = "opensearch"

    def predict(self, request: Any, *, device: str | None = None) -> dict[str, Any]:
        """One Predict call; a local model runs on ``device`` (``None``: the engine's device)."""
        predict = ml_commons_predictor(self.engine, self.id, device)
        assert predict is not None  # resolve() chose this backend for a registered model
        return predict(request)

    def _unsupported(self) -> ApiError:
        return ApiError("illegal_argument_exception", f"[{self.id}] is an OpenSearch ml-commons model: it runs in "
                        "ml_inference processors and the _plugins/_ml Predict API, not as a trained model", 400)

    def infer_docs(self, docs: list[dict[str, Any]], update: Any = None, *, device: str | None = None) -> Any:
        raise self._unsupported()

    def infer_frame(self, frame: pd.DataFrame, **options: Any) -> pd.DataFrame:
        raise self._unsupported()

    def declared_columns(self, args: dict[str, Any]) -> dict[str, Any]:
        raise self._unsupported()

    def input_fields(self) -> list[str] | None:
        return None

    def text_field(self) -> str | None:
        return None


def resolve(engine: "Engine", id: str, *, endpoints: bool = True, opensearch: bool = False) -> Backend:
    """The backend serving ``id``: an ``_inference`` endpoint (unless ``endpoints=False``: ``_infer`` and
    OpenSearch's non-remote ``ml_inference`` name trained models only), a deployment or pytorch model,
    else the tree runner, which answers an unknown id with the model store's 404 when it runs (so
    every caller fails an unknown id exactly where and as it always did). ``opensearch=True``: an
    OpenSearch ml-commons model id comes first (the ``ml_inference`` processor). Never raises; an
    engine without a model store (a stand-in of a test) can only hand the id on to the tree runner."""
    if opensearch and is_ml_commons_model(engine, id):
        return OpenSearchBackend(engine, id)
    if endpoints and is_endpoint(engine, id):
        return EndpointBackend(engine, id)
    models = getattr(engine, "models", None)
    if models is None:
        return TreeBackend(engine, id)
    if deployments(engine).get(id) is not None:
        return NlpBackend(engine, id)
    model_id = models.resolve(id)
    if model_id is not None and models.config(model_id).get("model_type") == "pytorch":
        return NlpBackend(engine, id)
    return TreeBackend(engine, id)


def call_concurrency(backend: Backend) -> int:
    """How many single calls of ``backend`` may run side by side: a remote service's connection count
    (an OpenSearch remote model's ``max_connection``, an endpoint's ``max_concurrent_requests``); 1 for
    everything that runs here (local models gain nothing from it and are called one at a time)."""
    if isinstance(backend, OpenSearchBackend):
        return ml_commons_concurrency(backend.engine, backend.id)
    if isinstance(backend, EndpointBackend):
        return endpoint_concurrency(backend.engine, backend.id)
    return 1
