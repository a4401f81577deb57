"""Ids as Elasticsearch validates them, per kind, before anything is looked up or stored.

- trained model ids, deployment ids, tags: ``MlStrings.isValidId`` (lowercase alphanumerics,
  ``-``, ``_``, ``.``; starting and ending alphanumeric) and at most 64 characters
  (``models.config.id_error``, shared here);
- inference endpoint ids: ``MlStrings.isValidId`` (``PutInferenceModelAction.Request.validate``);
  ES sets no length limit, this engine keeps one file per endpoint and refuses ids longer than
  a file name can hold, with ES's ``ID_TOO_LONG`` message;
- pipeline ids: ES (``IngestService.validatePipeline``) logs a deprecation for the characters an
  index name may not hold (``Strings.INVALID_FILENAME_CHARS``) and says they will be refused;
  this engine refuses them now, with control characters, ``.`` / ``..`` and over-long ids (255
  bytes, ES's index-name limit), so that no id can name a path.
"""

from __future__ import annotations

import re

from ..errors import ApiError, validation_failed
from ..models.config import id_error

#: ``Strings.INVALID_FILENAME_CHARS``, in ES's order and spelling
INVALID_FILENAME_CHARS = (" ", '"', "*", ",", "/", "<", ">", "?", "\\", "|")
_INVALID_FILENAME_TEXT = "[" + ",".join(f"'{c}'" for c in INVALID_FILENAME_CHARS) + "]"
#: ``MetadataCreateIndexService.MAX_INDEX_NAME_BYTES``
MAX_NAME_BYTES = 255
#: longest inference endpoint id this engine stores (a file name of its own, ``<id>.json``)
MAX_ENDPOINT_ID_LENGTH = 250
_VALID_ID = re.compile(r"[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def require_model_id(model_id: str, kind: str = "model_id") -> None:
    """ES's 400 ``action_request_validation_exception`` for an invalid trained model / deployment id."""
    if (err := id_error(kind, model_id)) is not None:
        raise validation_failed([err])


def inference_id_problem(inference_id: str) -> str | None:
    if not _VALID_ID.fullmatch(inference_id):
        return (f"Invalid inference_id; '{inference_id}' can contain lowercase alphanumeric (a-z and 0-9), hyphens "
                "or underscores; must start and end with alphanumeric")
    if len(inference_id) > MAX_ENDPOINT_ID_LENGTH:
        return f"Invalid inference_id; '{inference_id}' cannot contain more than {MAX_ENDPOINT_ID_LENGTH} characters."
    return None


def require_inference_id(inference_id: str) -> None:
    if (err := inference_id_problem(inference_id)) is not None:
        raise validation_failed([err])


def pipeline_id_problem(pipeline_id: str) -> str | None:
    """Why ``pipeline_id`` cannot name a stored pipeline (``None`` when it can)."""
    if not pipeline_id:
        return "pipeline id must not be empty"
    if pipeline_id in (".", ".."):
        return f"Invalid pipeline id [{pipeline_id}]: must not be '.' or '..'"
    if any(c in pipeline_id for c in INVALID_FILENAME_CHARS):
        return f"Invalid pipeline id [{pipeline_id}]: must not contain the following characters {_INVALID_FILENAME_TEXT}"
    if _CONTROL.search(pipeline_id):
        return f"Invalid pipeline id [{pipeline_id!r}]: must not contain control characters"
    size = len(pipeline_id.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        return f"Invalid pipeline id [{pipeline_id}]: pipeline id is too long, ({size} > {MAX_NAME_BYTES})"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in pipeline_id):
        return f"Invalid pipeline id [{pipeline_id!r}]: must be valid Unicode text"
    return None


def require_pipeline_id(pipeline_id: str) -> None:
    if (err := pipeline_id_problem(pipeline_id)) is not None:
        raise ApiError("illegal_argument_exception", err, 400)
