"""OpenSearch ml-commons state of one engine: connectors, model groups, models, tasks, predictions.

Documents live in the engine's stores (``<home>/ml_connectors``, ``ml_model_groups``, ``ml_models``,
``ml_tasks``; atomic JSON files, read through by other engines on the home) in the shape GET answers
with; connector credentials live apart, in ``<home>/ml_connector_secrets.json`` (mode 0600), keyed by
connector id (``model:<id>`` for a model's inline connector), and are never shown.

Remote models call their connector's predict action (:mod:`.ml_connector`) through a pooled
:class:`~.transport.Transport`; local models are OpenSearch's pretrained names that es_infer_nb
carries: ``huggingface/sentence-transformers/all-MiniLM-L6-v2`` is the bundled MiniLM
(:mod:`es_infer_nb.models.nlp.embedded`), or TorchScript / ONNX files registered from a local path
(:mod:`.ml_local`). Registration and deployment finish at once (tasks are
``COMPLETED``); a model that is not deployed is deployed by its first prediction, as ml-commons'
``model_auto_deploy`` does. :func:`predictor` is what the ``ml_inference`` processor calls for an
OpenSearch model id.
"""

from __future__ import annotations

import threading
import time
import weakref
from secrets import token_urlsafe
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ApiError
from ..models.parsing import json_token
from ..storage import JsonStore, writing
from .ml_connector import UPDATABLE_CONNECTOR_FIELDS, Connector, iae, parameter_text, validate_create
from .ml_interface import check_input, check_output, interface_of
from .ml_process import MLInput, RemoteParams, TextDocs, TextSimilarity
from .ml_results import embedding_params, embedding_results, present_docs, result_filter, text_docs
from .ml_local import LocalModel, registration
from .per_engine import PerEngine
from .secrets import LOCAL, ML_SECRETS_FILE, EnvPolicy, Secret, SecretStore
from .transport import Transport

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

SECRETS_FILE = ML_SECRETS_FILE
NODE_ID = "es-infer-nb-local-node"
CONNECTOR_INDEX = ".plugins-ml-connector"
MODEL_INDEX = ".plugins-ml-model"
MODEL_GROUP_INDEX = ".plugins-ml-model-group"
TASK_INDEX = ".plugins-ml-task"
MINILM = "huggingface/sentence-transformers/all-MiniLM-L6-v2"
#: pretrained names es_infer_nb carries -> (function name, model_config)
PRETRAINED: dict[str, tuple[str, dict[str, Any]]] = {
    MINILM: ("TEXT_EMBEDDING", {"model_type": "bert", "embedding_dimension": 384,
                                "framework_type": "SENTENCE_TRANSFORMERS"}),
}
LOCAL_FUNCTIONS = ("TEXT_EMBEDDING",)
#: ml-commons' FunctionName values (a name outside them is "Wrong function name")
FUNCTION_NAMES = ("LINEAR_REGRESSION", "KMEANS", "AD_LIBSVM", "SAMPLE_ALGO", "LOCAL_SAMPLE_CALCULATOR", "FIT_RCF",
                  "BATCH_RCF", "ANOMALY_LOCALIZATION", "RCF_SUMMARIZE", "LOGISTIC_REGRESSION", "TEXT_EMBEDDING",
                  "METRICS_CORRELATION", "REMOTE", "SPARSE_ENCODING", "SPARSE_TOKENIZE", "TEXT_SIMILARITY",
                  "QUESTION_ANSWERING", "AGENT", "CONNECTOR", "TOOL")
MODEL_FORMATS = ("TORCH_SCRIPT", "ONNX")
ACCESS_MODES = ("public", "private", "restricted")
Predictor = Callable[[Any], dict[str, Any]]


def new_id() -> str:
    """A 20-character id like OpenSearch's auto-generated document ids."""
    return token_urlsafe(15)


def now_ms() -> int:
    return int(time.time() * 1000)


def not_found(what: str) -> ApiError:
    return ApiError("status_exception", f"Failed to find {what}", 404)


def shown(store: JsonStore, doc_id: str, what: str, index_missing: str) -> dict[str, Any]:
    """A GET's document: ml-commons' 404 names the id, or says ``index_missing`` while nothing of the kind
    was ever stored (its index does not exist yet)."""
    store.refresh()
    doc = store.get(doc_id)
    if doc is None:
        if not store.ever_written():
            raise ApiError("status_exception", index_missing, 404)
        raise ApiError("status_exception", f"Failed to find {what} with the provided {what} id: {doc_id}", 404)
    return doc


def java_list(items: list[str]) -> str:
    """``Arrays.toString``: ``[a, b]``."""
    return "[" + ", ".join(items) + "]"


def stored(store: JsonStore, doc_id: str, what: str) -> dict[str, Any]:
    """Document ``doc_id`` of ``store`` as it is now on disk, or ml-commons' 404 ``Failed to find <what>``."""
    store.refresh()
    doc = store.get(doc_id)
    if doc is None:
        raise not_found(what)
    return doc


def _text(value: Any, field: str) -> str | None:
    """A string field as ml-commons' parsers read it (``parser.text()``): a number or a boolean as its text; an
    object or an array OpenSearch's ``Can't get text on a START_OBJECT``, here a 400 naming the field."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        raise ApiError("illegal_state_exception", f"[{field}] Can't get text on a {json_token(value)}", 400)
    return parameter_text(value)


class MlCommons:
    """One engine's ml-commons objects (see the module docstring)."""

    def __init__(self, engine: "Engine") -> None:
        self._engine = weakref.ref(engine)
        self.state_lock = engine.lock  # the engine's state lock (a predict call holds it only to read state)
        self.home = engine.home
        self.connectors = engine.ml_connectors
        self.groups = engine.ml_model_groups
        self.models = engine.ml_models
        self.tasks = engine.ml_tasks
        self.secrets = SecretStore(engine.home, SECRETS_FILE)
        self.model_roots = tuple(getattr(engine, "ml_model_paths", ()))
        self.trust_torchscript = bool(getattr(engine, "trust_torchscript", False))
        # (model id, device) -> (content hash, deployed model): a model runs where each call names
        self._local: dict[tuple[str, str | None], tuple[str, LocalModel]] = {}
        self._transports: dict[str, tuple[Transport, tuple[Any, ...]]] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<MlCommons {len(self.connectors)} connectors, {len(self.models)} models (credentials hidden)>"

    # -- connectors ------------------------------------------------------------------------
    def create_connector(self, body: dict[str, Any], policy: EnvPolicy = LOCAL) -> str:
        validate_create(body)
        connector = Connector.parse(body, policy=policy)
        connector_id = new_id()
        doc = connector.public()
        doc["created_time"] = doc["last_updated_time"] = now_ms()
        with writing(self.home):
            self.secrets.put(connector_id, connector.credential)
            self.connectors.put(connector_id, doc)
        return connector_id

    def connector_doc(self, connector_id: str) -> dict[str, Any]:
        return stored(self.connectors, connector_id, "connector")

    def get_connector(self, connector_id: str) -> dict[str, Any]:
        """GET ``connectors/<id>``."""
        return shown(self.connectors, connector_id, "connector", "Failed to find connector")

    def update_connector(self, connector_id: str, body: dict[str, Any], policy: EnvPolicy = LOCAL) -> dict[str, Any]:
        """PUT ``connectors/<id>``: the fields given replace the connector's (``MLCreateConnectorInput`` read for
        an update: nothing is required); refused while a deployed model uses the connector."""
        doc = shown(self.connectors, connector_id, "connector", "Failed to find connector")
        if not body:
            raise ApiError("parse_exception", "Failed to update connector: Request body is empty", 400)
        users = [mid for mid, m in self.models.items()
                 if m.get("connector_id") == connector_id and m.get("model_state") == "DEPLOYED"]
        if users:
            raise ApiError("status_exception", f"{len(users)} models are still using this connector, please undeploy "
                           f"the models first: {java_list(users)}", 400)
        merged = {**doc, **{k: v for k, v in body.items() if k in UPDATABLE_CONNECTOR_FIELDS}}
        merged.pop("credential", None)
        credential = self.secrets.get(connector_id)
        if "credential" in body:
            merged["credential"] = body["credential"]
            credential = None
        connector = Connector.parse(merged, credential, policy=policy)
        new_doc = connector.public()
        new_doc["created_time"] = doc.get("created_time", now_ms())
        new_doc["last_updated_time"] = now_ms()
        with writing(self.home):
            self.secrets.put(connector_id, connector.credential)
            self.connectors.put(connector_id, new_doc)
        self._forget(connector_id)
        return updated(CONNECTOR_INDEX, connector_id)

    def connector(self, key: str, doc: dict[str, Any]) -> Connector:
        return Connector.parse(doc, self.secrets.get(key))

    def delete_connector(self, connector_id: str) -> dict[str, Any]:
        if not self._exists(self.connectors, connector_id, "Failed to find connector"):
            return missing(CONNECTOR_INDEX, connector_id)
        users = [mid for mid, m in self.models.items() if m.get("connector_id") == connector_id]
        if users:
            raise ApiError("status_exception", f"{len(users)} models are still using this connector, please delete or "
                           f"update the models first: {java_list(users)}", 409)
        with writing(self.home):
            self.connectors.delete(connector_id)
            self.secrets.delete(connector_id)
        self._forget(connector_id)
        return deleted(CONNECTOR_INDEX, connector_id)

    # -- model groups ----------------------------------------------------------------------
    @staticmethod
    def _exists(store: JsonStore, doc_id: str, index_missing: str) -> bool:
        """Whether ``doc_id`` is stored; ml-commons' 404 while nothing of the kind ever was (no index)."""
        store.refresh()
        if store.get(doc_id) is not None:
            return True
        if not store.ever_written():
            raise ApiError("status_exception", index_missing, 404)
        return False

    def register_group(self, body: dict[str, Any]) -> str:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise iae("model group name is required")
        access = str(body.get("access_mode") or "public").lower()
        if access not in ACCESS_MODES:
            raise iae("Wrong access value")
        for gid, group in self.groups.items():
            if group.get("name") == name:
                raise iae(f"The name you provided is already being used by a model group with ID: {gid}.")
        group_id = new_id()
        stamp = now_ms()
        doc: dict[str, Any] = {"name": name, "latest_version": 0}
        if body.get("description") is not None:
            doc["description"] = str(body["description"])
        doc["access"] = access
        doc.update({"created_time": stamp, "last_updated_time": stamp})
        self.groups.put(group_id, doc)
        return group_id

    def group_doc(self, group_id: str) -> dict[str, Any]:
        return stored(self.groups, group_id, "model group")

    def get_group(self, group_id: str) -> dict[str, Any]:
        """GET ``model_groups/<id>``."""
        return shown(self.groups, group_id, "model group", "Failed to find model group index")

    def update_group(self, group_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT ``model_groups/<id>``: a new name (unique among groups) or description."""
        if not body:
            raise ApiError("i_o_exception", "Model group request has empty body", 500)
        doc = dict(shown(self.groups, group_id, "model group", "Failed to find model group"))
        name = body.get("name")
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise iae("model group name is required")
            other = next((gid for gid, g in self.groups.items() if g.get("name") == name and gid != group_id), None)
            if other is not None:
                raise iae(f"The name you provided is already being used by another model with ID: {other}. Please "
                          "provide a different name")
            doc["name"] = name
        if body.get("description") is not None:
            doc["description"] = str(body["description"])
        doc["last_updated_time"] = now_ms()
        self.groups.put(group_id, doc)
        return {"status": "Updated"}

    def delete_group(self, group_id: str) -> dict[str, Any]:
        if not self._exists(self.groups, group_id, "Failed to find model group"):
            return missing(MODEL_GROUP_INDEX, group_id)
        if any(m.get("model_group_id") == group_id for _, m in self.models.items()):
            raise ApiError("status_exception", "Cannot delete the model group when it has associated model versions",
                           409)
        self.groups.delete(group_id)
        return deleted(MODEL_GROUP_INDEX, group_id)

    def _next_version(self, group_id: str | None, name: str, description: Any) -> tuple[str, str]:
        if group_id is None:  # ml-commons creates a group named after the model
            existing = next((gid for gid, g in self.groups.items() if g.get("name") == name), None)
            group_id = existing or self.register_group({"name": name, "description": description})
        group = dict(self.group_doc(group_id))
        group["latest_version"] = int(group.get("latest_version", 0)) + 1
        group["last_updated_time"] = now_ms()
        self.groups.put(group_id, group)
        return group_id, str(group["latest_version"])

    # -- models ----------------------------------------------------------------------------
    def register_model(self, body: dict[str, Any], deploy: bool, policy: EnvPolicy = LOCAL) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise iae("model name is null")
        group_id = _text(body.get("model_group_id"), "model_group_id")
        function = str(body.get("function_name") or "").upper()
        if function and function not in FUNCTION_NAMES:
            raise iae("Wrong function name")
        if function != "REMOTE":  # MLRegisterModelInput: a model that is not remote names its format
            model_format = body.get("model_format")
            if model_format is None:
                raise iae("model format is null")
            if str(model_format).upper() not in MODEL_FORMATS:
                raise iae("Wrong model format")
        interface = interface_of(body.get("interface"))
        inline: Connector | None = None
        local: dict[str, Any] | None = None
        if function == "REMOTE":
            connector_id = body.get("connector_id")
            if connector_id is not None:
                self.connectors.refresh()
                if self.connectors.get(str(connector_id)) is None:
                    raise ApiError("status_exception", f"Failed to find connector:{connector_id}", 404)
            elif isinstance(body.get("connector"), dict):
                inline = Connector.parse(body["connector"], policy=policy)
            else:
                raise iae("You must provide connector content when creating a remote model without connector id!")
        elif body.get("url") is not None:  # a TorchScript / ONNX model from a local path (services.ml_local)
            prefixes(body.get("model_config"))  # checked as for a pretrained model
            local = registration(body, self.model_roots)
            function = local.pop("function")
        else:
            pretrained = PRETRAINED.get(name)
            if pretrained is None:
                raise iae(f"Model [{name}] is not one es_infer_nb can run: register a remote model (function_name "
                          f"remote with a connector), a TorchScript or ONNX model from a local path (url), or "
                          f"the bundled pretrained model [{MINILM}]")
            if function and function != pretrained[0]:
                raise iae(f"Wrong function name [{function}] for the pretrained model [{name}]: {pretrained[0]}")
            function = pretrained[0]
        model_id = new_id()
        group_id, version = self._next_version(group_id, name, body.get("description"))
        stamp = now_ms()
        doc: dict[str, Any] = {"name": name, "model_group_id": group_id, "algorithm": function,
                               "model_version": version}
        if body.get("description") is not None:
            doc["description"] = str(body["description"])
        if interface is not None:
            doc["interface"] = interface
        if function == "REMOTE":
            if inline is not None:
                doc["connector"] = inline.public()
            else:
                doc["connector_id"] = str(body["connector_id"])
        elif local is not None:
            doc.update(local)
        else:
            doc["model_format"] = str(body["model_format"]).upper()
            doc["model_config"] = dict(PRETRAINED[name][1])
            doc["model_config"].update(prefixes(body.get("model_config")))
        doc.update({"model_state": "REGISTERED", "created_time": stamp, "last_updated_time": stamp,
                    "last_registered_time": stamp, "is_hidden": False})
        with writing(self.home):
            if inline is not None:
                self.secrets.put(f"model:{model_id}", inline.credential)
            self.models.put(model_id, doc)
        task_id = self._task("REGISTER_MODEL", model_id, function)
        if deploy:
            self.deploy(model_id)
        answer: dict[str, Any] = {"task_id": task_id, "status": "CREATED"}
        if function == "REMOTE":
            answer["model_id"] = model_id
        return answer

    def model_doc(self, model_id: str) -> dict[str, Any]:
        return stored(self.models, model_id, "model")

    def get_model(self, model_id: str) -> dict[str, Any]:
        """GET ``models/<id>``."""
        return shown(self.models, model_id, "model", "Fail to find model")

    def update_model(self, model_id: str, body: dict[str, Any], policy: EnvPolicy = LOCAL) -> dict[str, Any]:
        """PUT ``models/<id>``: name, description, model group, interface; a remote model's ``connector_id`` or
        its inline ``connector``'s fields (``MLUpdateModelInput``)."""
        if not body:
            raise ApiError("parse_exception", "Update model request has empty body", 400)
        if body.get("connector") is not None and body.get("connector_id") is not None:
            raise ApiError("parse_exception", "Model cannot have both stand-alone connector and internal connector. "
                           "Please check your update input body.", 400)
        self.models.refresh()
        found = self.models.get(model_id)
        if found is None:
            raise ApiError("status_exception", f"Failed to find model to update with the provided model id: {model_id}",
                           404)
        doc = dict(found)
        remote = doc.get("algorithm") == "REMOTE"
        if (body.get("connector") is not None or body.get("connector_id") is not None) and not remote:
            raise iae("Trying to update the connector or connector_id field on a local model.")
        secrets: dict[str, Secret] | None = None
        if body.get("connector_id") is not None:
            if "connector" in doc:
                raise iae("This remote does not have a connector_id field, maybe it uses an internal connector.")
            self.connectors.refresh()
            if self.connectors.get(str(body["connector_id"])) is None:
                raise ApiError("status_exception", f"Failed to find connector:{body['connector_id']}", 404)
            doc["connector_id"] = str(body["connector_id"])
        if body.get("connector") is not None:
            if "connector" not in doc:
                raise iae("Cannot update connector settings for this model. The model was created with a connector_id "
                          "and does not have an inline connector.")
            change = body["connector"]
            if not isinstance(change, dict):
                raise iae("[connector] must be an object")
            merged = {**doc["connector"], **{k: v for k, v in change.items() if k in UPDATABLE_CONNECTOR_FIELDS}}
            merged.pop("credential", None)
            credential = self.secrets.get(f"model:{model_id}")
            if "credential" in change:
                merged["credential"] = change["credential"]
                credential = None
            connector = Connector.parse(merged, credential, policy=policy)
            doc["connector"], secrets = connector.public(), connector.credential
        if body.get("model_group_id") is not None:
            group_id = str(body["model_group_id"])
            self.groups.refresh()
            if self.groups.get(group_id) is None:
                raise ApiError("status_exception", "Failed to find the model group with the provided model group id "
                               f"in the update model input, MODEL_GROUP_ID: {group_id}", 404)
            doc["model_group_id"] = group_id
        for key in ("name", "description"):
            if body.get(key) is not None:
                doc[key] = str(body[key])
        if "interface" in body:
            interface = interface_of(body["interface"])
            if interface:
                doc["interface"] = interface
            else:
                doc.pop("interface", None)
        doc["last_updated_time"] = now_ms()
        with writing(self.home):
            if secrets is not None:
                self.secrets.put(f"model:{model_id}", secrets)
            self.models.put(model_id, doc)
        self._forget(f"model:{model_id}")
        return updated(MODEL_INDEX, model_id)

    def deploy(self, model_id: str, *, device: str | None = None) -> dict[str, Any]:
        """Deploys ``model_id``; a local one is loaded on ``device`` (``None``: the engine's device)."""
        doc = dict(self.model_doc(model_id))
        if doc["algorithm"] != "REMOTE":
            self._local_model(model_id, doc, self.device(device))
        stamp = now_ms()
        doc.update({"model_state": "DEPLOYED", "last_updated_time": stamp, "last_deployed_time": stamp,
                    "planning_worker_node_count": 1, "current_worker_node_count": 1,
                    "planning_worker_nodes": [NODE_ID], "deploy_to_all_nodes": True})
        self.models.put(model_id, doc)
        task_id = self._task("DEPLOY_MODEL", model_id, doc["algorithm"])
        # ml-commons answers a remote model's deploy COMPLETED, a local one's CREATED (it loads in the background)
        return {"task_id": task_id, "task_type": "DEPLOY_MODEL",
                "status": "COMPLETED" if doc["algorithm"] == "REMOTE" else "CREATED"}

    def undeploy(self, model_id: str) -> dict[str, Any]:
        doc = dict(self.model_doc(model_id))
        if doc.get("model_state") != "DEPLOYED":
            return {NODE_ID: {"stats": {model_id: "not_found"}}}
        doc["model_state"] = "UNDEPLOYED"
        doc["last_updated_time"] = doc["last_undeployed_time"] = now_ms()
        doc["current_worker_node_count"] = 0
        doc.pop("planning_worker_nodes", None)
        doc["planning_worker_node_count"] = 0
        self.models.put(model_id, doc)
        self._forget(f"model:{model_id}")
        return {NODE_ID: {"stats": {model_id: "undeployed"}}}

    def delete_model(self, model_id: str) -> dict[str, Any]:
        doc = self.model_doc(model_id)
        if doc.get("model_state") in ("DEPLOYED", "DEPLOYING", "PARTIALLY_DEPLOYED"):
            raise ApiError("status_exception", "Model cannot be deleted in deploying or deployed state. Try undeploy "
                           "model first then delete", 400)
        with writing(self.home):
            self.models.delete(model_id)
            self.secrets.delete(f"model:{model_id}")
        self._forget(f"model:{model_id}")
        return deleted(MODEL_INDEX, model_id)

    def task_doc(self, task_id: str) -> dict[str, Any]:
        return stored(self.tasks, task_id, "task")

    def delete_task(self, task_id: str) -> dict[str, Any]:
        """DELETE ``tasks/<id>`` (tasks here finish at once: none is running)."""
        self.task_doc(task_id)
        self.tasks.delete(task_id)
        return deleted(TASK_INDEX, task_id)

    def _task(self, task_type: str, model_id: str, function: str) -> str:
        task_id = new_id()
        stamp = now_ms()
        self.tasks.put(task_id, {"model_id": model_id, "task_type": task_type, "function_name": function,
                                 "state": "COMPLETED", "worker_node": [NODE_ID], "create_time": stamp,
                                 "last_update_time": stamp,
                                 # ml-commons: a register task is async unless remote, a deploy task always
                                 "is_async": task_type == "DEPLOY_MODEL" or function != "REMOTE"})
        return task_id

    # -- prediction ------------------------------------------------------------------------
    def device(self, device: str | None = None) -> str | None:
        """Where a local model runs: the call's ``device``, else the engine's (read at call time)."""
        if device is not None:
            return device
        engine = self._engine()
        return getattr(engine, "device", None) if engine is not None else None

    def predict(self, model_id: str, body: dict[str, Any], algorithm: str | None = None,
                timeout_s: float | None = None, *, device: str | None = None) -> dict[str, Any]:
        """The Predict API: ``parameters`` for a remote model, ``text_docs`` (and ``return_number``,
        ``target_response``) for a text embedding model or a remote one with an embedding pre-process.
        ``device``: where a local model runs in this call (``None``: the engine's device)."""
        with self.state_lock:  # the state this call reads (and an auto-deploy) under the state lock only
            doc = self.model_doc(model_id)
            deployed = doc.get("model_state") == "DEPLOYED"
            if algorithm is not None:
                check_algorithm(algorithm, deployed)
            if not deployed:
                self.deploy(model_id, device=device)  # ml-commons' model_auto_deploy
            connector = self._model_connector(model_id, doc) if doc["algorithm"] == "REMOTE" else None
        check_input(doc.get("interface"), doc["algorithm"], body)
        if connector is not None:  # the remote call runs outside the lock: a slow service stops no one else
            data = remote_input(body, algorithm)
            answer = connector.predict(self._transport(connector, model_id, doc), data, timeout_s)
        else:
            answer = self._local_predict(model_id, doc, body, device)
        check_output(doc.get("interface"), answer)
        return answer

    def _local_predict(self, model_id: str, doc: dict[str, Any], body: dict[str, Any],
                       device: str | None) -> dict[str, Any]:
        model = self._local_model(model_id, doc, self.device(device))
        if isinstance(model, LocalModel):
            if model.function == "TEXT_EMBEDDING" and isinstance(body, dict):
                parse_text_docs_input(body)
                prefix = _asymmetric_prefix(body, doc.get("model_config"), model_id)
                if prefix:
                    body = {**body, "text_docs": [prefix + d for d in present_docs(body)]}
            return model.predict(body)
        return local_predict(model, body, doc.get("model_config"), model_id)

    def _local_model(self, model_id: str, doc: dict[str, Any], device: str | None) -> Any:
        """The loaded local model of ``doc`` on ``device``: one registered from a path (kept per device
        until undeployed), or a pretrained one es_infer_nb carries."""
        if doc.get("url") is None:
            model = local_model(doc, device)
            model.load()
            return model
        key = str(doc.get("model_content_hash_value"))
        with self._lock:
            found = self._local.get((model_id, device))
        if found is not None and found[0] == key:
            return found[1]
        loaded = LocalModel(model_id, doc, self.model_roots, device, self.trust_torchscript)
        with self._lock:
            self._local[(model_id, device)] = (key, loaded)
        return loaded

    def call_concurrency(self, model_id: str) -> int:
        """How many Predict calls of ``model_id`` may be in flight at once: its connector's
        ``max_connection`` for a remote model, 1 for a local one (or an id that is not a model)."""
        try:
            with self.state_lock:
                doc = self.model_doc(model_id)
                if doc.get("algorithm") != "REMOTE":
                    return 1
                connector = self._model_connector(model_id, doc)
        except ApiError:
            return 1
        return max(1, connector.transport_settings().max_concurrent_requests)

    def _model_connector(self, model_id: str, doc: dict[str, Any]) -> Connector:
        if "connector" in doc:
            return self.connector(f"model:{model_id}", doc["connector"])
        connector_id = doc.get("connector_id")
        return self.connector(str(connector_id), self.connector_doc(str(connector_id)))

    def _transport(self, connector: Connector, model_id: str, doc: dict[str, Any]) -> Transport:
        key = f"model:{model_id}" if "connector" in doc else str(doc.get("connector_id"))
        settings = connector.transport_settings()
        shape = (settings, tuple(sorted(connector.credential.items(), key=lambda kv: kv[0])))
        with self._lock:
            found = self._transports.get(key)
            if found is None or found[1] != shape:
                if found is not None:
                    found[0].close()
                transport = Transport(settings, key, tuple(connector.credential.values()), _no_answer)
                self._transports[key] = (transport, shape)
                return transport
            return found[0]

    def _forget(self, key: str) -> None:
        model_id = key.removeprefix("model:")
        with self._lock:
            for cached in [k for k in self._local if k[0] == model_id]:
                del self._local[cached]
            found = self._transports.pop(key, None)
        if found is not None:
            found[0].close()


def deleted(index: str, doc_id: str) -> dict[str, Any]:
    """OpenSearch's answer to a deleted document."""
    return {"_index": index, "_id": doc_id, "_version": 2, "result": "deleted", "forced_refresh": True,
            "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": 1, "_primary_term": 1}


def missing(index: str, doc_id: str) -> dict[str, Any]:
    """OpenSearch's delete answer for a document its index does not hold (a 404 with this body)."""
    return {"_index": index, "_id": doc_id, "_version": 1, "result": "not_found", "forced_refresh": True,
            "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": 1, "_primary_term": 1}


def updated(index: str, doc_id: str) -> dict[str, Any]:
    """OpenSearch's answer to an updated document."""
    return {"_index": index, "_id": doc_id, "_version": 2, "result": "updated", "forced_refresh": True,
            "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": 1, "_primary_term": 1}


# -- local models ------------------------------------------------------------------------------

def local_model(doc: dict[str, Any], device: str | None) -> Any:
    from ..models.nlp.embedded import get_model

    if doc.get("name") != MINILM:  # only the bundled model can be registered today
        raise iae(f"Model [{doc.get('name')}] cannot run locally")
    return get_model(device)


def check_algorithm(algorithm: str, deployed: bool) -> None:
    """``FunctionName.from`` on the path's algorithm (``_predict/<algorithm>/<id>``). ``RestMLPredictionAction``
    reads the request at once for a model its node holds (deployed): a 400; for another it reads it in the
    model lookup's listener, which answers every failure 404."""
    if algorithm.upper() not in FUNCTION_NAMES:
        raise ApiError("illegal_argument_exception", "Wrong function name", 400 if deployed else 404)


def remote_input(body: dict[str, Any], algorithm: str | None) -> MLInput:
    """A remote model's Predict input as ml-commons parses it for the call's algorithm: ``parameters``
    (``models/<id>/_predict``, ``_predict/remote/<id>``), ``text_docs`` (``_predict/text_embedding/<id>`` ...),
    ``query_text`` + ``text_docs`` (``_predict/text_similarity/<id>``)."""
    kind = (algorithm or "remote").upper()
    if kind == "TEXT_SIMILARITY":
        docs = body.get("text_docs")
        if not isinstance(docs, list) or not docs:
            raise iae("No text documents were provided")
        query = body.get("query_text")
        if query is None:
            raise iae("No query text was provided")
        return TextSimilarity(parameter_text(query), tuple(None if d is None else parameter_text(d) for d in docs))
    if kind != "REMOTE" and "text_docs" in body:
        return TextDocs(tuple(text_docs(body)), kind)
    raw = body.get("parameters")
    if raw is not None and not isinstance(raw, dict):
        raise iae("Input data set should be a map of parameters: [parameters] must be an object")
    return RemoteParams({str(k): parameter_text(v) for k, v in (raw or {}).items()})


def _no_answer(what: str, status: int) -> ApiError:
    """A remote model's request that got no answer (``MLSdkAsyncHttpResponseHandler.onError``): a 500."""
    return ApiError("status_exception", f"Error communicating with remote model: {what}", 500)


PREFIX_KEYS = ("query_prefix", "passage_prefix")


def prefixes(model_config: Any) -> dict[str, str]:
    """The asymmetric prefixes (``query_prefix``, ``passage_prefix``) of a registration's ``model_config``."""
    if model_config is None:
        return {}
    if not isinstance(model_config, dict):
        raise iae("[model_config] must be an object")
    found: dict[str, str] = {}
    for key in PREFIX_KEYS:
        value = model_config.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise iae(f"[model_config.{key}] must be a string")
            found[key] = value
    return found


def parse_text_docs_input(body: dict[str, Any]) -> None:
    """``TextDocsMLInput``'s parse: what it refuses is refused before the model runs."""
    text_docs(body)
    result_filter(body)
    embedding_params(body)


def inference_failure(model_id: str, cause: ApiError, function: str = "TEXT_EMBEDDING") -> ApiError:
    """``DLModel.predict``'s failure: an ``MLException`` (500) naming the model, around the Java exception
    (which ``root_cause`` does not list: it is no OpenSearch exception)."""
    cause.es_exception = False
    return ApiError("m_l_exception", f"Failed to inference {function} model: {model_id}", 500, caused_by=cause)


def _asymmetric_prefix(body: dict[str, Any], model_config: dict[str, Any] | None, model_id: str) -> str:
    """The prefix ml-commons' ``TextEmbeddingModel`` puts before each text (``isAsymmetricModel``,
    ``addPrefixesToData``): a ``parameters`` object makes the call asymmetric and needs a model registered
    with a prefix (``content_type`` PASSAGE picks its ``passage_prefix``, anything else, none included, its
    ``query_prefix``); a model with a prefix needs one. Either failure is the model's ``MLException``."""
    config = model_config or {}
    has_prefix = any(config.get(k) is not None for k in PREFIX_KEYS)
    params = embedding_params(body)
    if params is None:
        if has_prefix:
            raise inference_failure(model_id, iae(
                "The embedding model chosen is asymmetric. To use it, you must declare whether the input is of type "
                "`QUERY` or of type `PASSAGE`."))
        return ""
    if not has_prefix:
        raise inference_failure(model_id, iae(
            "When passing AsymmetricTextEmbeddingParameters, the model requires to be registered with at least one "
            "of `query_prefix` or `passage_prefix`."))
    return str(config.get("passage_prefix" if params.content_type == "PASSAGE" else "query_prefix") or "")


def local_predict(model: Any, body: dict[str, Any], model_config: dict[str, Any] | None = None,
                  model_id: str = "") -> dict[str, Any]:
    """``text_docs`` through the local text embedding model: one ``sentence_embedding`` per doc (each
    text after the asymmetric prefix that ``parameters.content_type`` picks, as ml-commons)."""
    if not isinstance(body, dict):
        raise iae("The input of a local model must be an object")
    parse_text_docs_input(body)
    prefix = _asymmetric_prefix(body, model_config, model_id)
    docs = [prefix + d for d in present_docs(body)]
    keep = result_filter(body)
    return embedding_results(model.embed(docs), keep)


# -- per engine --------------------------------------------------------------------------------

_BY_ENGINE: PerEngine[MlCommons] = PerEngine(MlCommons)


def ml_commons(engine: "Engine") -> MlCommons:
    return _BY_ENGINE.get(engine)


def is_model(engine: "Engine", model_id: str) -> bool:
    """Whether ``model_id`` names an OpenSearch ml-commons model of the engine."""
    store = getattr(engine, "ml_models", None)
    if store is None:
        return False
    store.refresh()
    return model_id in store


def predictor(engine: "Engine", model_id: str, device: str | None = None) -> Predictor | None:
    """The ``ml_inference`` processor's call for an OpenSearch model id (None when it is not one):
    a remote model takes the rendered ``parameters``, a local one the rendered ``model_input`` and
    runs on ``device`` (``None``: the engine's device)."""
    if not is_model(engine, model_id):
        return None
    state = ml_commons(engine)

    def predict(request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            raise iae(f"Invalid payload: {request!r}"[:2000])
        doc = state.model_doc(model_id)
        if doc["algorithm"] == "REMOTE":
            body = request if isinstance(request.get("parameters"), dict) else {"parameters": request}
            return state.predict(model_id, body, "remote")
        return state.predict(model_id, request, doc["algorithm"], device=device)

    return predict


def call_concurrency(engine: "Engine", model_id: str) -> int:
    """How many ``ml_inference`` calls of an OpenSearch model may run side by side (1: one at a time)."""
    return ml_commons(engine).call_concurrency(model_id) if is_model(engine, model_id) else 1


def secret_values(engine: "Engine") -> list[Secret]:
    """Every connector credential of the engine (for tests and redaction)."""
    state = ml_commons(engine)
    keys = list(state.connectors) + [f"model:{m}" for m in state.models]
    return [s for k in keys for s in state.secrets.get(k).values()]
