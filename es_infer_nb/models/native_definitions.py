"""Definition parts and vocabularies of pytorch models PUT through the REST API (ES's
``.ml-inference-native-*`` index): ``PUT _ml/trained_models/<id>/definition/<part>`` and
``PUT _ml/trained_models/<id>/vocabulary``.

Parts are kept as sent (base64 text) with their lengths; whether the model is fully defined is
answered as ``TransportStartTrainedModelDeploymentAction`` checks it (every part present, the
summed part lengths equal to ``total_definition_length``). The bytes are decoded only when a
deployment loads them.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import ApiError, already_exists, validation_failed
from ..storage import JsonStore, is_object, writing
from .builtin import is_builtin

MAX_NUM_NATIVE_DEFINITION_PARTS = 10_000


def decoded_length(text: str) -> int:
    """The byte length of base64 ``text`` (as ES stores ``definition_length``)."""
    stripped = text.strip()
    padding = len(stripped) - len(stripped.rstrip("="))
    return max(0, len(stripped) * 3 // 4 - padding)


def decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError("x_content_parse_exception", f"[definition] is not valid base64: {exc}", 400) from None


def part_problems(part: int, total_definition_length: int, total_parts: int) -> list[str]:
    """``PutTrainedModelDefinitionPartAction.Request.validate``."""
    out = []
    if part < 0:
        out.append("[part] must be greater or equal to 0")
    if total_parts <= 0:
        out.append("[total_parts] must be greater than 0")
    if total_parts > MAX_NUM_NATIVE_DEFINITION_PARTS:
        out.append(f"[total_parts] must be less than or equal to {MAX_NUM_NATIVE_DEFINITION_PARTS}")
    if total_definition_length <= 0:
        out.append("[total_definition_length] must be greater than 0")
    if part >= total_parts:
        out.append("[part] must be less than total_parts")
    return out


class PartPayloads:
    """The base64 text of each part: one file per part under ``<home>/native_definition_parts/<model>/``
    (written once, atomically), or in memory without a home."""

    def __init__(self, home: Path | None) -> None:
        self._home = home
        self._dir = home / "native_definition_parts" if home is not None else None
        self._memory: dict[tuple[str, int], str] = {}

    def _file(self, model_id: str, part: int) -> Path:
        assert self._dir is not None
        return self._dir / quote(model_id, safe="") / f"{part}.b64"

    def put(self, model_id: str, part: int, text: str) -> None:
        if self._dir is None:
            self._memory[(model_id, part)] = text
            return
        path = self._file(model_id, part)
        path.parent.mkdir(parents=True, exist_ok=True)
        with writing(self._home):  # a starting engine removes .tmp-* files only while it holds the home
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            with os.fdopen(fd, "w", encoding="ascii", errors="replace") as fh:
                fh.write(text)
            os.replace(tmp, path)

    def get(self, model_id: str, part: int) -> str:
        if self._dir is None:
            return self._memory[(model_id, part)]
        return self._file(model_id, part).read_text(encoding="ascii", errors="replace")

    def delete(self, model_id: str) -> None:
        if self._dir is None:
            for key in [k for k in self._memory if k[0] == model_id]:
                del self._memory[key]
            return
        shutil.rmtree(self._dir / quote(model_id, safe=""), ignore_errors=True)


class NativeDefinitions:
    """Per model id: ``{"parts": {n: lengths}, "vocabulary": {...}}`` (small JSON records) and the parts'
    payloads (:class:`PartPayloads`), persisted under the engine's home."""

    def __init__(self, home: Path | None) -> None:
        self._store = JsonStore(home, "native_definitions", check=is_object)
        self._payloads = PartPayloads(home)

    def _record(self, model_id: str) -> dict[str, Any]:
        return dict(self._store.get(model_id) or {"parts": {}})

    def _parts(self, model_id: str) -> dict[str, dict[str, int]]:
        return (self._store.get(model_id) or {}).get("parts") or {}

    def put_part(
        self, model_id: str, part: int, definition: str, total_definition_length: int, total_parts: int
    ) -> None:
        problems = part_problems(part, total_definition_length, total_parts)
        if problems:
            raise validation_failed(problems)
        record = self._record(model_id)
        parts = dict(record.get("parts") or {})
        if str(part) in parts:  # TrainedModelProvider.storeTrainedModelDefinitionDoc on a version conflict
            raise already_exists(f"Trained machine learning model chunked doc [{model_id}][{part}] already exists")
        self._payloads.put(model_id, part, definition)
        parts[str(part)] = {
            "definition_length": decoded_length(definition),
            "total_definition_length": total_definition_length,
            "total_parts": total_parts,
        }
        record["parts"] = parts
        self._store.put(model_id, record)

    def put_vocabulary(self, model_id: str, vocabulary: dict[str, Any]) -> None:
        record = self._record(model_id)
        record["vocabulary"] = vocabulary
        self._store.put(model_id, record)

    def vocabulary(self, model_id: str) -> dict[str, Any] | None:
        return (self._store.get(model_id) or {}).get("vocabulary")

    def has_parts(self, model_id: str) -> bool:
        return bool(self._parts(model_id))

    def total_length(self, model_id: str) -> int:
        parts = self._parts(model_id)
        first = parts.get(min(parts, key=int)) if parts else None
        return int(first["total_definition_length"]) if first else 0

    def fully_defined(self, model_id: str) -> bool:
        parts = self._parts(model_id)
        if not parts:
            return False
        totals = {p["total_definition_length"] for p in parts.values()}
        counts = {p["total_parts"] for p in parts.values()}
        if len(totals) != 1 or len(counts) != 1 or len(parts) != next(iter(counts)):
            return False
        return sum(p["definition_length"] for p in parts.values()) == next(iter(totals))

    def definition_bytes(self, model_id: str) -> bytes:
        parts = self._parts(model_id)
        return b"".join(decode(self._payloads.get(model_id, int(k))) for k in sorted(parts, key=int))

    def delete(self, model_id: str) -> None:
        self._payloads.delete(model_id)
        self._store.delete(model_id)


_CREATE_LOCK = threading.Lock()


def native_definitions(engine: Any) -> NativeDefinitions:
    found = getattr(engine, "_native_definitions", None)
    if found is None:
        with _CREATE_LOCK:  # not the engine's lock: deployment workers get here while loading a model
            found = getattr(engine, "_native_definitions", None)
            if found is None:
                found = engine._native_definitions = NativeDefinitions(engine.home)
    return found


def use_definitions(engine: Any, definitions: NativeDefinitions) -> None:
    """Make ``definitions`` the store :func:`native_definitions` answers for ``engine`` (a Dask worker's
    engine reads the definitions its job shipped)."""
    with _CREATE_LOCK:
        engine._native_definitions = definitions


#: set by the Hugging Face importer (``es_infer_nb.models.nlp.model.LOCAL_MODEL_KEY``): ``{"path": <folder>}``
LOCAL_SOURCE_KEY = "_local_model"


def pytorch_fully_defined(engine: Any, model_id: str) -> bool:
    """All definition parts uploaded; models imported from a local folder or bundled are complete."""
    if is_builtin(model_id) and model_id not in engine.models.configs:
        return True
    parts = native_definitions(engine)
    if parts.has_parts(model_id):
        return parts.fully_defined(model_id)
    local = engine.models.config(model_id).get(LOCAL_SOURCE_KEY)
    return isinstance(local, dict) and bool(local.get("path"))


def check_deployable(engine: Any, model_id: str) -> None:
    """``checkFullModelDefinitionIsPresent``: the error ``_start`` gives for partial parts."""
    parts = native_definitions(engine)
    if parts.has_parts(model_id) and not parts.fully_defined(model_id):
        raise ApiError(
            "status_exception",
            f"Model definition truncated. Unable to deserialize trained model definition [{model_id}]",
            400,
        )


def definition_missing(engine: Any, model_id: str) -> ApiError | None:
    """The 404 ``_start`` gives for a model with neither definition parts nor a local source."""
    if pytorch_fully_defined(engine, model_id) or native_definitions(engine).has_parts(model_id):
        return None
    return ApiError("resource_not_found_exception", f"Could not find trained model definition [{model_id}]", 404)
