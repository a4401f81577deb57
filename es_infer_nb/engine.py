"""The Engine: owns the state and answers every REST request.

``Engine.request(method, path, body=None, params=None)`` is the one entry point
below the notebook layer; magics, accessors, the CLI and any server call it, so
behaviour is identical everywhere. It never raises for an API error: the error
comes back as the Elasticsearch error body with its HTTP status.
"""

from __future__ import annotations

import atexit
import html
import json
import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from .errors import ApiError, without_paths
from .indices import IndexStore
from .models.inference_config import parse_config
from .models.nlp.graph_check import trusted_from_env
from .models.store import ModelStore
from .services.ml_local import model_roots
from .services.secrets import ML_SECRETS_FILE, prune_secrets
from .stats import StatsRegistry
from .storage import JsonStore, clean_home, is_endpoint_config, is_object


#: Renders a :class:`Response` as notebook HTML. The engine sits below the widgets, so the package
#: (``es_infer_nb/__init__.py``) hands it the widgets' renderer with :func:`set_html_renderer`.
_html_renderer: "Callable[[Response], str] | None" = None


def set_html_renderer(render: "Callable[[Response], str]") -> None:
    """Install the function ``Response._repr_html_`` calls (the widgets' ``response_html``)."""
    global _html_renderer
    _html_renderer = render


@dataclass
class Response:
    """What Elasticsearch would answer: an HTTP status and a JSON body."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def raise_for_status(self) -> "Response":
        """Raise :class:`ApiError` when this is an error answer, else return self."""
        if not self.ok:
            err = (self.body or {}).get("error") if isinstance(self.body, dict) else None
            if isinstance(err, dict):
                raise ApiError(str(err.get("type")), str(err.get("reason")), self.status)
            raise ApiError("exception", str(err if err is not None else self.body), self.status)
        return self

    def __getitem__(self, key: str) -> Any:
        return self.body[key]

    def _repr_html_(self) -> str:
        if _html_renderer is None:  # pragma: no cover - the package always installs one
            return f"<pre>{html.escape(repr(self))}</pre>"
        return _html_renderer(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # text/html and text/plain only: JupyterLab would rank an application/json tree above the HTML
        bundle: dict[str, Any] = {"text/plain": repr(self), "text/html": self._repr_html_()}
        if include and "application/json" in include:
            bundle["application/json"] = self.body
        return bundle

    def __repr__(self) -> str:
        if isinstance(self.body, str):  # a cat table, shown as ES prints it
            return f"Response(status={self.status})\n{self.body}"
        text = json.dumps(self.body, indent=2, ensure_ascii=False, default=_plain)
        return f"Response(status={self.status})\n{text}"


def _plain(value: Any) -> Any:
    """JSON for what slipped into a body: numpy scalars / arrays as numbers and lists, else str."""
    return value.tolist() if hasattr(value, "tolist") and not isinstance(value, str) else str(value)


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class Engine:
    """A local Elasticsearch ML inference node.

    ``Engine()`` keeps everything in memory; ``Engine(path)`` persists models,
    aliases and pipelines under ``path`` (atomic writes), so a new Engine on the
    same path sees the same state. Engines may share a path (other processes
    included): they read through each other's writes and add up their counters
    (:mod:`es_infer_nb.storage`). ``close()`` (or ``with Engine(path) as e:``)
    saves the counters now. ``env_secrets_allow`` (names or ``fnmatch``
    patterns such as ``"OPENAI_*"``) lists the environment variables that
    ``{"env": ...}`` secrets of requests arriving over HTTP may name.

    ``trust_torchscript=True`` (default: ``$ES_INFER_NB_TRUST_TORCHSCRIPT``) runs TorchScript definitions
    uploaded in parts without checking their operations first: only for homes whose uploads you trust.

    ``ml_model_paths`` (default: ``$ES_INFER_NB_ML_MODEL_PATHS``, ``os.pathsep``-separated) lists the
    directories OpenSearch ml-commons local models may be registered from (``POST
    _plugins/_ml/models/_register`` with a ``url``); a path outside them is refused.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, device: str | None = None,
                 env_secrets_allow: Iterable[str] = (), trust_torchscript: bool | None = None,
                 ml_model_paths: Iterable[str | os.PathLike[str]] | None = None) -> None:
        self.home: Path | None = Path(path).expanduser() if path is not None else None
        #: variables (names or fnmatch patterns) that ``{"env": ...}`` secrets of requests arriving
        #: over HTTP may name; the Python API may name any (see es_infer_nb.services.secrets)
        self.env_secrets_allow: tuple[str, ...] = tuple(env_secrets_allow)
        if self.home is not None:
            self.home.mkdir(parents=True, exist_ok=True)
        self.device = device
        self.trust_torchscript = trusted_from_env() if trust_torchscript is None else bool(trust_torchscript)
        #: directories OpenSearch local models may be read from (es_infer_nb.services.ml_local)
        self.ml_model_paths: tuple[Path, ...] = model_roots(ml_model_paths)
        #: guards the state (models, aliases, pipelines, endpoints, deployments) and its persistence:
        #: held for short reads and writes only, never around inference, pipelines or remote calls
        self.lock = threading.RLock()
        if self.home is not None:
            clean_home(self.home)
        self.stats = StatsRegistry(self.home)
        if self.home is not None:
            atexit.register(_flush_stats, weakref.ref(self))
        self.models = ModelStore(self.home, self.stats)
        self.pipelines = JsonStore(self.home, "pipelines", check=is_object)
        #: ``PUT _cluster/settings`` persistent values (key ``persistent``); see api.cluster_settings
        self.cluster_settings = JsonStore(self.home, "cluster_settings", check=is_object)
        #: data frame analytics job configs (stored only; see api.data_frame_analytics)
        self.dfa_jobs = JsonStore(self.home, "data_frame_analytics", check=is_object)
        self.inference_endpoints = JsonStore(self.home, "inference_endpoints",  # secrets: services.secrets
                                             check=is_endpoint_config)
        #: OpenSearch ml-commons objects (es_infer_nb.services.ml_commons); credentials kept apart
        self.ml_connectors = JsonStore(self.home, "ml_connectors", check=is_object)
        self.ml_model_groups = JsonStore(self.home, "ml_model_groups", check=is_object)
        self.ml_models = JsonStore(self.home, "ml_models", check=is_object)
        self.ml_tasks = JsonStore(self.home, "ml_tasks", check=is_object)
        #: indices for ``_bulk`` / ``_search``: documents in memory only, never written under the home
        self.indices = IndexStore()
        if self.home is not None:
            prune_secrets(self.home, self.inference_endpoints)
            prune_secrets(self.home, [*self.ml_connectors, *(f"model:{m}" for m in self.ml_models)], ML_SECRETS_FILE)

    def close(self) -> None:
        """Save the counters to the home now (they are also saved every second and at exit)."""
        self.stats.flush()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self.home) if self.home is not None else "memory"
        return f"<es_infer_nb.Engine {where}: {len(self.models)} models, {len(self.pipelines)} pipelines>"

    # -- Python-friendly wrappers (raise ApiError) ------------------------------------------
    def import_model(
        self,
        model_id: str,
        model: Any,
        feature_names: list[str] | None = None,
        classification_labels: list[str] | None = None,
        classification_weights: list[float] | None = None,
        *,
        description: str | None = None,
        data: Any = None,
    ) -> dict[str, Any]:
        """Import a fitted scikit-learn / XGBoost / LightGBM model the way eland does.

        The stored JSON is an ordinary Elasticsearch ``tree_ensemble`` config, so it can be
        PUT to a cluster unchanged (``GET _ml/trained_models/<id>?include=definition``).
        ``feature_names`` defaults to the estimator's ``feature_names_in_`` and
        ``classification_labels`` to its ``classes_`` (integer / boolean classes keep their type,
        through ``prediction_field_type``), so ``predicted_value`` equals ``model.predict``;
        explicit arguments win.
        ``metadata.feature_importance_baseline`` is filled from the trees; pass ``data`` (a
        DataFrame or array of training rows, columns in ``feature_names`` order) to fill
        ``metadata.total_feature_importance`` as well.
        """
        from .models.tree.importers import to_es_model  # the converters: loaded when a model is imported

        body = to_es_model(model, feature_names, classification_labels, classification_weights)
        if description is not None:
            body["description"] = description
        answer = self.request("PUT", f"_ml/trained_models/{model_id}", body).raise_for_status().body
        self._fill_importance_metadata(model_id, list(body["input"]["field_names"]), data)
        return answer

    def import_hf_model(self, path: str | os.PathLike[str], task_type: str, model_id: str | None = None,
                        **options: Any) -> dict[str, Any]:
        """Import a local Hugging Face model folder as a pytorch model, as eland's
        ``eland_import_hub_model`` would (id ``sentence-transformers__all-minilm-l6-v2``-style);
        see :func:`es_infer_nb.models.nlp.importer.import_hf_model` for the options."""
        from .models.nlp.importer import import_hf_model  # the NLP model code (tqdm): loaded when used

        return import_hf_model(self, path, task_type, model_id, **options)

    def _fill_importance_metadata(self, model_id: str, feature_names: list[str], data: Any) -> None:
        from .models.runner import load_model
        from .models.tree.metadata import baseline, total_importance

        stored = self.models.config(model_id)
        config = parse_config(stored["inference_config"])
        model = load_model(self, model_id)  # the model work runs outside the state lock
        extra: dict[str, Any] = {"feature_importance_baseline": baseline(model, config)}
        if data is not None:
            frame = data.to_numpy(dtype=np.float64) if hasattr(data, "to_numpy") else np.asarray(data, dtype=np.float64)
            index = {f: i for i, f in enumerate(feature_names)}
            x = np.full((frame.shape[0], len(model.compiled.features)), np.nan)
            for j, f in enumerate(model.compiled.features):
                if f in index:
                    x[:, j] = frame[:, index[f]]
            extra["total_feature_importance"] = total_importance(model, config, x)
        with self.lock:
            current = dict(self.models.config(model_id))
            current["metadata"] = {**(current.get("metadata") or {}), **extra}
            self.models.put(model_id, current)

    def infer(self, model_id: str, docs: list[dict[str, Any]], inference_config: dict[str, Any] | None = None, *,
              device: str | None = None) -> list[dict[str, Any]]:
        """``POST _ml/trained_models/<id>/_infer``; returns ``inference_results``. ``device``: where the
        model runs when the engine's device would apply (see :meth:`request`)."""
        body: dict[str, Any] = {"docs": docs}
        if inference_config is not None:
            body["inference_config"] = inference_config
        try:
            resp = self.request("POST", f"_ml/trained_models/{model_id}/_infer", body,
                                device=device).raise_for_status()
        except ApiError as exc:
            raise exc.suggest(model_id, self.known_ids()) from None
        return resp.body["inference_results"]

    def export(self, resource_id: str, *, console: bool = False, kind: str | None = None) -> Any:
        """A model, pipeline or ``_inference`` endpoint as a cluster takes it: the ``PUT`` body (a
        dict; ``.path`` is where it goes), the ``exclude_generated`` form of GET without what a PUT
        rejects, secrets as placeholders such as ``"<api_key>"``; with ``console=True``, a Kibana
        Dev Tools snippet (``PUT _ml/trained_models/<id>`` and the JSON). ``kind`` (``"model"``,
        ``"pipeline"``, ``"endpoint"``) picks one when several share the id. See
        :mod:`es_infer_nb.api.export`."""
        from .api.export import export

        found = export(self, resource_id, kind)
        return found.console() if console else found

    def known_ids(self) -> list[str]:
        """Every id a model call can name: trained models, their aliases, ``_inference`` endpoints."""
        return sorted({*self.models.all_ids(), *self.models.aliases, *self.inference_endpoints})

    # -- the REST entry point --------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        *,
        remote: bool = False,
        device: str | None = None,
    ) -> Response:
        """One REST call. ``remote=True`` marks a call that arrived over HTTP (the server sets it):
        such calls may not name environment variables as secrets unless allowlisted. ``device``
        (``"cpu"``, ``"cuda:1"``...) stands for the engine's device in this call only: a model the
        call loads, a deployment it starts without naming a device, a pipeline's models, an
        endpoint's local model run there (``None``: the engine's). The engine's own device is
        never changed, so calls with different devices may run side by side."""
        from .api import dispatch  # the api package registers every route on import
        from .api.deferred import Deferred

        try:
            req = self._parse(method, path, body, params)
            req.remote = remote
            req.device = device
            status, answer, headers = dispatch(self, req)  # takes the state lock where the route needs it
            if isinstance(answer, Deferred):  # e.g. a queued _infer: waits for the deployment's queue
                answer = answer.resolve()
            return Response(status, answer, headers)
        except ApiError as err:
            return Response(err.status, without_paths(err.body(), self.home), dict(err.headers))
        except Exception as exc:  # noqa: BLE001 - never a raw traceback for a request
            err = ApiError(_snake(type(exc).__name__) + ("" if type(exc).__name__.endswith("Exception") else "_exception"), str(exc) or type(exc).__name__, 500)
            return Response(500, without_paths(err.body(), self.home))

    def _parse(self, method: str, path: str, body: Any, params: dict[str, Any] | None):
        from .api.request import Request
        from .api.xcontent import check_object, decode_utf8

        split = urlsplit(path if path.startswith("/") else "/" + path)
        merged = dict(parse_qsl(split.query, keep_blank_values=True))
        merged.update(Request.normalise_params(params))
        if isinstance(body, (bytes, bytearray)):
            body = decode_utf8(bytes(body))
        if isinstance(body, str) and split.path.rstrip("/").rsplit("/", 1)[-1] == "_bulk":
            from .api.bulk import parse_ndjson

            body = parse_ndjson(body)  # NDJSON: one action or document per line
        elif isinstance(body, str):
            body = parse_json_body(body)
        else:
            check_object(body)
        uri = split.path + (f"?{split.query}" if split.query else "")
        return Request(method=method.upper(), path=split.path, params=merged, body=body, uri=uri)


def _flush_stats(ref: "weakref.ref[Engine]") -> None:
    engine = ref()
    if engine is not None:
        engine.stats.flush()


def parse_json_body(text: str) -> Any:
    """Parse a request body the way ES does: its XContent limits and its 400s (api.xcontent)."""
    from .api.xcontent import parse_json

    return parse_json(text)


_default: Engine | None = None
_default_lock = threading.Lock()


def default_engine() -> Engine:
    """The engine the magics and accessors use unless given ``engine=``.

    Its home is ``$ES_INFER_NB_HOME`` when set (persisted), memory otherwise.
    """
    global _default
    with _default_lock:
        if _default is None:
            home = os.environ.get("ES_INFER_NB_HOME")
            _default = Engine(home or None)
        return _default


def current_default_engine() -> Engine | None:
    """The default engine if one was made or set, else None (this makes none)."""
    with _default_lock:
        return _default


def set_default_engine(engine: Engine | None) -> None:
    """Replace (or with ``None`` forget) the default engine."""
    global _default
    with _default_lock:
        _default = engine
