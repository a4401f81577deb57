"""OpenSearch's ``ml_inference`` ingest processor (ml-commons ``MLInferenceIngestProcessor``).

One model call per ``input_map`` entry (or one call with every top-level source field when there is
no ``input_map``); the request is built from the ``model_input`` template, the model output
(a ModelTensorOutput-like dict ``{"inference_results": [{"output": [tensor, ...]}]}``) is read with
the ``output_map`` paths and written back, wildcard paths fanning out over document arrays.

The model is a pluggable *predictor*: ``predictor(parameters) -> ModelTensorOutput dict``. Without
one, ``model_id`` names a trained model of the engine (tree models): the request's ``docs`` (or its
parameters as one document) are inferred and the ES results returned as one ``response`` tensor.
"""

from __future__ import annotations

import json
import re
import struct
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from jsonpath_ng.ext import parse

from ..backends import OpenSearchBackend, call_concurrency, resolve
from ..errors import ApiError
from ..models.run_control import ctrl_c_flag, result_or_interrupt
from ..models.java_hash import hashmap_order
from ..models.tree.features import java_string
from ..services.ingest_bridge import endpoint_prediction
from ..services.ml_process import gson_json, parameter_strings
from ..services.templates import json_placeholders
from .config import Conf
from .declared import UNKNOWN, SymbolicDocument, templated
from .declared_models import stand_in_answers
from .document import Doc, clone, java_type
from .pipeline import Processor, Run
from .regexes import bound_json_path

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

TYPE = "ml_inference"
DEFAULT_OUTPUT_FIELD_NAME = "inference_results"
DEFAULT_MAX_PREDICTION_TASKS = 10
DEFAULT_REMOTE_MODEL_INPUT = '{ "parameters": ${ml_inference.parameters} }'
Predictor = Callable[[dict[str, Any]], Any]

MISSING = object()


def _iae(message: str) -> ApiError:
    return ApiError("illegal_argument_exception", message, 400)


# -- JSON helpers --------------------------------------------------------------------------------

def java_hash_order(value: Any) -> Any:
    """A JSON-like value with every object's keys in ``java.util.HashMap`` iteration order: the order in
    which ml-commons serializes the maps of a document (OpenSearch parses a ``_source`` and a pipeline's
    config into HashMaps)."""
    if isinstance(value, list):
        return [java_hash_order(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: java_hash_order(value[k]) for k in hashmap_order(value)}


def to_json(value: Any) -> str:
    """``StringUtils.toJson``: a string as it is, anything else as compact JSON with Java's number text and
    HashMap key order (as ml-commons serializes a document value or a ``model_config`` value). A non-finite
    number (a data frame's, never a JSON document's) is written bare (``Infinity``, ``NaN``)."""
    if isinstance(value, str):
        return value
    ordered = java_hash_order(value)
    try:
        return gson_json(ordered)
    except ApiError:  # a non-finite number
        return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)


def to_param_string(value: Any) -> str:
    """Strings are used raw; everything else is serialized to JSON."""
    return to_json(value)


# -- JSON paths ----------------------------------------------------------------------------------

_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[(\*|-?\d+|'[^']*'|\"[^\"]*\")\]")


def _tokens(path: str) -> list[str | int] | None:
    """Tokens of a simple path (``a.b``, ``$.a[0].*``, ``a[*].b``); None for anything richer."""
    p = path.strip()
    if p.startswith("$"):
        p = p[1:]
    if not p:
        return []
    out: list[str | int] = []
    pos = 0
    while pos < len(p):
        m = _TOKEN.match(p, pos)
        if not m or m.end() == pos:
            return None
        if m.group(1) is not None:
            name = m.group(1)
            if any(c in name for c in "()?@=<>!"):
                return None
            out.append(name)
        else:
            g = m.group(2)
            if g == "*":
                out.append("*")
            elif g[0] in "'\"":
                out.append(g[1:-1])
            else:
                out.append(int(g))
        pos = m.end()
    return out


def _definite(tokens: list[str | int]) -> bool:
    return "*" not in tokens


def json_path_read(root: Any, path: str, *, leaf_to_null: bool = True) -> Any:
    """Jayway-like read with DEFAULT_PATH_LEAF_TO_NULL + SUPPRESS_EXCEPTIONS (how ml-commons reads a document).

    A definite path yields the value (None when missing); a wildcard path yields the flattened list
    of matches, a missing *leaf* giving None in its position. ``leaf_to_null=False`` reads as Jayway's
    default configuration (how ``ModelExecutor`` reads a model output): a definite path that finds
    nothing yields ``MISSING`` (Jayway's PathNotFoundException), a wildcard path skips missing leaves.
    """
    tokens = _tokens(path)
    if tokens is None:
        value = _jsonpath_ng_read(root, path)
        return MISSING if value is None and not leaf_to_null else value
    definite = _definite(tokens)
    results: list[Any] = []

    def walk(node: Any, i: int) -> None:
        if i == len(tokens):
            results.append(node)
            return
        tok = tokens[i]
        last = i == len(tokens) - 1
        if tok == "*":
            if isinstance(node, list):
                for item in node:
                    walk(item, i + 1)
            elif isinstance(node, dict):
                for item in node.values():
                    walk(item, i + 1)
            return
        if isinstance(tok, int):
            if isinstance(node, list) and -len(node) <= tok < len(node):
                walk(node[tok], i + 1)
            elif last and not definite and leaf_to_null:
                results.append(None)
            return
        if isinstance(node, dict):
            if tok in node:
                walk(node[tok], i + 1)
            elif last and leaf_to_null:
                results.append(None)
        elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
            walk(node[int(tok)], i + 1)

    walk(root, 0)
    if definite:
        return results[0] if results else (None if leaf_to_null else MISSING)
    return results


def _jsonpath_ng_read(root: Any, path: str) -> Any:
    expr = path if path.startswith("$") else "$." + path
    try:
        matches = [m.value for m in bound_json_path(parse(expr), "ml_inference").find(root)]
    except ApiError:
        raise  # a =~ filter over the regex time limit: this document's error
    except Exception:  # noqa: BLE001 - an invalid path reads as missing
        return None
    if not matches:
        return None
    return matches[0] if len(matches) == 1 and "[" not in expr and "*" not in expr and ".." not in expr else matches


def write_new_dot_path(source: dict[str, Any], path: str) -> list[str]:
    """``ModelExecutor.writeNewDotPathForNestedObject``: the concrete dot paths a write path names. The part
    before the last dot is read as a Jayway path list (SUPPRESS_EXCEPTIONS, DEFAULT_PATH_LEAF_TO_NULL) over
    ``source``: a ``*`` fans out over an array's positions or an object's keys, a missing last segment still
    names its path, and a missing segment before it (or a name over an array) names no path at all."""
    if "." not in path:
        return [path]
    prefix, leaf = path.rsplit(".", 1)
    tokens = _tokens(prefix)
    if not tokens:
        return [path]
    out: list[str] = []

    def walk(node: Any, i: int, acc: list[str]) -> None:
        if i == len(tokens):
            out.append(".".join(acc + [leaf]))
            return
        tok = tokens[i]
        if tok == "*":
            items = enumerate(node) if isinstance(node, list) else node.items() if isinstance(node, dict) else ()
            for key, item in items:
                walk(item, i + 1, acc + [str(key)])
        elif isinstance(tok, int):
            if isinstance(node, list) and -len(node) <= tok < len(node):
                walk(node[tok], i + 1, acc + [str(tok)])
        elif isinstance(node, dict):
            if tok in node:
                walk(node[tok], i + 1, acc + [tok])
            elif i == len(tokens) - 1:
                out.append(".".join(acc + [tok, leaf]))

    walk(source, 0, [])
    return out


# -- model_input templates ----------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$\{(model_config|input_map|ml_inference)\.([^}]*)\}")
_PARTS_CACHE: dict[str, list[tuple[str, str | None, str, bool]]] = {}
MAX_REASON_PAYLOAD = 2000


def _template_parts(template: str) -> list[tuple[str, str | None, str, bool]]:
    """``(literal before, placeholder kind or None, key, inside a JSON string?)`` for each placeholder of
    a ``model_input`` template, then the trailing literal (cached: templates are few)."""
    parts = _PARTS_CACHE.get(template)
    if parts is not None:
        return parts
    parts = [(literal, m.group(1) if m else None, m.group(2) if m else "", in_string)
             for literal, m, in_string in json_placeholders(template, _PLACEHOLDER)]
    if len(_PARTS_CACHE) < 256:
        _PARTS_CACHE[template] = parts
    return parts


def _fits(value: str, in_string: bool) -> bool:
    """Whether a raw value keeps the template's JSON structure where it is inserted."""
    try:
        if in_string:
            return isinstance(json.loads('"' + value + '"'), str)
        json.loads(value)
        return True
    except ValueError:
        return False


def _clip(text: str) -> str:
    if len(text) <= MAX_REASON_PAYLOAD:
        return text
    return f"{text[:MAX_REASON_PAYLOAD]}... [{len(text) - MAX_REASON_PAYLOAD} more characters]"


# -- tensors -------------------------------------------------------------------------------------

_FLOATING = ("FLOAT32", "FLOAT64", "FLOAT16")
_INTEGER = ("INT8", "INT16", "INT32", "INT64", "UINT8")
_UNSUPPORTED = ("UNKNOWN", "BINARY", "UBINARY")


def _float32(value: Any) -> float:
    return float(struct.unpack("f", struct.pack("f", float(value)))[0])


def _int32(value: Any) -> int:
    """``Number.intValue()``: truncated toward zero, wrapped to 32 bits."""
    n = int(value) & 0xFFFFFFFF
    return n - (1 << 32) if n >= 1 << 31 else n


def parse_tensor_data(tensor: dict[str, Any]) -> list[Any] | None:
    """``ModelExecutor.parseDataInTensor``: a tensor's ``data`` typed by ``data_type``: every floating type as
    ``floatValue()`` (float32), every integer type as ``intValue()``, booleans as ``intValue() != 0``."""
    data = tensor.get("data")
    if data is None:
        return None
    dtype = str(tensor.get("data_type") or "").upper()
    if dtype in _FLOATING:
        return [None if v is None else _float32(v) for v in data]
    if dtype in _INTEGER:
        return [None if v is None else _int32(v) for v in data]
    if dtype == "BOOLEAN":
        return [None if v is None else _int32(v) != 0 for v in data]
    if dtype in _UNSUPPORTED:
        raise ApiError("exception", "unsupported data type in prediction data.", 500)
    return list(data)


def _pooling(field: str | None) -> tuple[str | None, str | None]:
    """``OutputTransformations``: an output path without its ``.meanPooling()`` / ``.maxPooling()`` suffix."""
    if field is None:
        return None, None
    for suffix, kind in ((".meanPooling()", "Mean"), (".maxPooling()", "Max")):
        if field.endswith(suffix):
            return field[: -len(suffix)], kind
    return field, None


def _pool(value: Any, kind: str) -> list[float]:
    """``OutputTransformations.applyMeanPooling`` / ``applyMaxPooling``, in float32 as upstream (a non-number
    element counts as 0 for the mean, as -infinity for the max)."""
    if not isinstance(value, list):
        raise _iae(f"{kind} pooling requires a list input")
    if not value or not isinstance(value[0], list):
        raise _iae(f"{kind} pooling requires nested array structure")
    width = len(value[0])
    neutral = 0.0 if kind == "Mean" else float("-inf")
    acc = [_float32(v) if _is_number(v) else neutral for v in value[0]] if kind == "Max" else [0.0] * width
    for vector in value:
        if not isinstance(vector, list):
            raise _iae("All elements must be vectors (lists)")
        if len(vector) != width:
            raise _iae("All vectors must have the same dimension")
        for i, element in enumerate(vector):
            number = _float32(element) if _is_number(element) else neutral
            acc[i] = _float32(acc[i] + number) if kind == "Mean" else max(acc[i], number)
    return [_float32(a / len(value)) for a in acc] if kind == "Mean" else acc


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def get_model_output_value(output: Any, field: str | None, ignore_missing: bool, full_response_path: bool) -> Any:
    """The value an output-map entry writes: :func:`read_model_output` of the path without its pooling
    suffix, then the pooling (``MLInferenceIngestProcessor.appendFieldValue``)."""
    base, pool = _pooling(field)
    value = read_model_output(output, base, ignore_missing, full_response_path)
    return value if pool is None or value is MISSING else _pool(value, pool)


def read_model_output(output: Any, field: str | None, ignore_missing: bool, full_response_path: bool) -> Any:
    """``ModelExecutor.getModelOutputValue``: with ``full_response_path`` the path is read on the whole
    output; else on the tensors of the first result (a tensor's ``dataAsMap`` read with the path, a data
    tensor parsed whole, several tensors giving a list). A path that finds nothing is an error; with
    ``ignore_missing`` it is skipped (``MISSING``: the field is not written), as OpenSearch documents
    ``ignore_missing`` and as ``testExecute_getModelOutputFieldWithInvalidDotPathSuccess`` (conformance case
    ``mlinf-output-invalid-dot-path-ignored``) expects, where ``getModelOutputField`` itself returns the
    tensor's whole map; with ``full_response_path`` the whole output is returned, as
    ``testExecute_localModelSuccess`` asserts."""
    if not isinstance(output, dict):
        raise _iae("model inference output is null")
    if full_response_path:
        if field is None:
            return output
        value = json_path_read(output, field, leaf_to_null=False)
        if value is MISSING or value is None:
            if ignore_missing:  # ModelExecutor.getModelOutputValue: the whole output instead
                return output
            raise _iae(f"model inference output cannot find such json path: {field}")
        return value
    results = output.get("inference_results")
    if not results:
        raise _iae("Model outputs are null or empty.")
    tensors = results[0].get("output") if isinstance(results[0], dict) else None
    if not tensors:
        raise _iae("Output tensors are null or empty.")
    if len(tensors) == 1:
        return _tensor_value(tensors[0], field, ignore_missing)
    values = []
    for tensor in tensors:
        if tensor is None:
            continue
        try:
            values.append(_tensor_value(tensor, field, ignore_missing))
        except ApiError as err:
            raise ApiError(err.type, f"Error accessing tensor data: {err.reason}", err.status) from err
    return MISSING if any(v is MISSING for v in values) else values


def _tensor_value(tensor: dict[str, Any], field: str | None, ignore_missing: bool) -> Any:
    """One tensor's value: its ``dataAsMap`` read with ``field`` (``getModelOutputField``), else its data."""
    data_as_map = tensor.get("dataAsMap")
    if data_as_map is None:
        return parse_tensor_data(tensor)
    if field is None or not isinstance(data_as_map, dict):
        return data_as_map
    if field in data_as_map:
        return data_as_map[field]
    value = json_path_read(data_as_map, field, leaf_to_null=False)
    if value is not MISSING:
        return value
    if ignore_missing:
        return MISSING
    raise _iae(f"model inference output cannot find field name: {field}")


# -- the processor -------------------------------------------------------------------------------

def _read_maps(c: Conf, key: str) -> list[dict[str, str]] | None:
    """``ConfigurationUtils.readOptionalList`` (its message for a value that is not a list); an element that
    is not a map is refused here rather than when a document runs."""
    raw = c.raw(key)
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise c.error(key, f"property isn't a list, but of type [{java_type(raw)}]")
    if not all(isinstance(m, dict) for m in raw):
        raise c.error(key, "property isn't a list of maps")
    if key == "output_map" and not all(v is None or isinstance(v, str) for m in raw for v in m.values()):
        raise c.error(key, "property isn't a list of maps of strings")  # a model output path is text
    return [{str(k): v for k, v in m.items()} for m in raw]


def _read_int(c: Conf, key: str, default: int) -> int:
    """``ConfigurationUtils.readIntProperty``: ``Integer.parseInt`` of the value's text."""
    raw = c.raw(key)
    if raw is None:
        return default
    text = java_string(raw)
    if re.fullmatch(r"[+-]?[0-9]+", text) and -(1 << 31) <= int(text) < 1 << 31:
        return int(text)
    raise c.error(key, f"property cannot be converted to an int [{text}]")


def _root(path: Any) -> str | None:
    """The top-level field a read or write path starts at (``a`` for ``a.b``, ``$.a[0]``, ``_source.a``,
    ``books.*.title``); None when a path cannot be told (wildcards or filters at the top)."""
    if not isinstance(path, str):
        return None
    tokens = _tokens(path)
    if not tokens or not isinstance(tokens[0], str) or tokens[0] == "*":
        return None
    first = tokens[0]
    if first == "_source" and len(tokens) > 1:
        if not isinstance(tokens[1], str) or tokens[1] == "*":
            return None
        first = tokens[1]
    return first.split(".")[0] or None


def entries_independent(input_maps: list[dict[str, Any]] | None, output_maps: list[dict[str, Any]] | None) -> bool:
    """Whether no ``input_map`` entry reads (or checks before writing) a field that an earlier entry writes:
    then every entry's request can be built before any answer is written, and the entries' calls run
    side by side with the same document coming out as when they run one after the other."""
    n = len(input_maps or [])
    if n <= 1:
        return True
    written: set[str] = set()
    for i in range(n):
        outputs = list(output_maps[i]) if output_maps is not None else [DEFAULT_OUTPUT_FIELD_NAME]
        reads = [str(v) for v in (input_maps or [])[i].values() if v is not None and str(v)] + outputs
        roots = [_root(p) for p in reads]
        if any(r is None for r in roots) or written.intersection(roots):  # type: ignore[arg-type]
            return False
        for field_path in outputs:
            root = _root(field_path)
            if root is None:
                return False
            written.add(root)
    return True


@dataclass
class _Call:
    """One model call of a document: the rendered request and the output entries it fills."""

    request: Any
    out_entries: list[tuple[str, Any, list[str]]] | None


class MLInferenceProcessor(Processor):
    """See the module docstring. A batch (:meth:`run_batch`) keeps the calls of a remote model in flight
    side by side: every ``input_map`` entry of a document (at most ``max_prediction_tasks``) and the
    documents of the batch together, up to the service's connection count; answers are written back in
    document order and a failing call fails only its document."""

    type = TYPE

    def __init__(self, c: Conf, predictor: Predictor | None = None) -> None:
        super().__init__()
        # read in the order of MLInferenceIngestProcessor.Factory.create (the first bad property is reported)
        self.model_id = c.string("model_id")
        cfg = c.mapping("model_config")
        self.input_maps = _read_maps(c, "input_map")
        self.output_maps = _read_maps(c, "output_map")
        self.max_prediction_tasks = _read_int(c, "max_prediction_tasks", DEFAULT_MAX_PREDICTION_TASKS)
        self.ignore_missing = c.boolean("ignore_missing", False)
        self.override = c.boolean("override", False)
        self.function_name = str(c.string("function_name", "remote"))
        self.is_remote = self.function_name.lower() == "remote"
        self.model_input = c.string("model_input", None)
        if self.model_input is None:
            if not self.is_remote:
                raise _iae("Please provide model input when using a local model in ML Inference Processor")
            self.model_input = DEFAULT_REMOTE_MODEL_INPUT
        self.full_response_path = c.boolean("full_response_path", not self.is_remote)
        self.own_ignore_failure = c.boolean("ignore_failure", False)
        self.model_config = {str(k): to_param_string(v) for k, v in (cfg or {}).items()}
        n_in = len(self.input_maps or [])
        if n_in > self.max_prediction_tasks:
            raise _iae(f"The number of prediction task setting in this process is {n_in}. It exceeds the "
                       f"max_prediction_tasks of {self.max_prediction_tasks}. Please reduce the size of input_map "
                       "or increase max_prediction_tasks.")
        if self.output_maps is not None and self.input_maps is not None and len(self.output_maps) != n_in:
            raise _iae("The length of output_map and the length of input_map do no match.")
        self.predictor = predictor
        self.independent_entries = entries_independent(self.input_maps, self.output_maps)

    # -- declared columns ------------------------------------------------------------------
    def declare_columns(self, doc: SymbolicDocument, partial: bool) -> None:
        """Each ``output_map`` path read by :func:`get_model_output_value` from the stand-in answers of
        the model (:func:`.declared_models.stand_in_answers`) wrapped as the engine predictor wraps them;
        a path the stand-in answer lacks is ``object``, a wildcard or templated field is not declared."""
        answers = stand_in_answers(doc.engine, self.model_id, endpoints=self.function_name.lower() == "remote",
                                   as_infer=lambda docs: self._as_infer(doc, docs))
        outputs = [{"inference_results": [{"output": [{"name": "response", "dataAsMap": a}]}]} for a in answers]
        partial = partial or self.ignore_missing or not self.override or self.own_ignore_failure

        def read(model_field: str | None) -> list[Any]:
            values = []
            for output in outputs:
                try:
                    value = get_model_output_value(output, model_field, True, self.full_response_path)
                except Exception:  # noqa: BLE001 - the stand-in answer lacks the path: the type is unknown
                    continue
                if value is not MISSING:
                    values.append(value)
            return values or [UNKNOWN]

        for i in range(max(len(self.input_maps or []), 1)):
            if self.output_maps is None:
                doc.write(DEFAULT_OUTPUT_FIELD_NAME, read(None), partial)
                continue
            for new_field, model_field in (self.output_maps[i] if i < len(self.output_maps) else {}).items():
                if "*" in new_field or templated(new_field):
                    continue  # written into the document's arrays: the shape depends on the data
                doc.write(new_field, read(model_field), partial)

    def _as_infer(self, doc: SymbolicDocument, results: list[dict[str, Any]]) -> list[Any]:
        """What the engine predictor hands back for each stand-in result: the result itself for a request
        of one document, else ``{"response": [...]}`` (the number of documents from the rendered request)."""
        n = 1
        names = list(self.input_maps[0]) if self.input_maps else list(dict.fromkeys(c.split(".")[0]
                                                                                     for c in doc.fields()))
        try:
            request = self._render_request({**self.model_config, **{k: "0" for k in names}})
            if isinstance(request, dict) and isinstance(request.get("docs"), list):
                n = len(request["docs"])
        except Exception:  # noqa: BLE001 - a template the stand-in cannot fill: one document
            pass
        return [d if n == 1 else {"response": [d] * n} for d in results]

    # -- execution -------------------------------------------------------------------------
    def execute(self, doc: Doc, run: Run, pipeline_id: str | None) -> None:
        self.process(doc, self.predictor or _engine_predictor(run.engine, self.model_id, self.function_name, run.device))

    def run_batch(self, docs: list[Doc], run: Run, pipeline_id: str | None) -> list[BaseException | None]:
        """The batch's calls side by side when the model is a remote service (an OpenSearch remote model,
        an ``_inference`` endpoint that calls out); one at a time for everything else (a predictor given
        to :func:`create`, local models, entries that read what an earlier entry writes)."""
        predict, width = self._batch_predictor(run)
        n = max(len(self.input_maps or []), 1)
        if width <= 1 or len(docs) * n <= 1 or not self.independent_entries:
            return super().run_batch(docs, run, pipeline_id)
        # threads start as calls are submitted: each document's calls go out as soon as its plan is made
        pool = ThreadPoolExecutor(max_workers=min(width, len(docs) * n),
                                  thread_name_prefix=f"ml_inference-{self.model_id}")
        try:
            with ctrl_c_flag() as interrupted:
                plans = []
                for doc in docs:
                    plan = self._plan(doc, n)
                    plans.append((plan, [pool.submit(predict, step.request) if isinstance(step, _Call) else None
                                         for step in plan]))
                out = [self._finish(doc, plan, futures, interrupted) for doc, (plan, futures) in zip(docs, plans)]
        except BaseException:  # Ctrl-C: the calls not started are dropped, those in flight end at their deadline
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return out

    def _batch_predictor(self, run: Run) -> tuple[Predictor, int]:
        """The batch's predictor and how many of its calls may be in flight at once."""
        if self.predictor is not None:
            return self.predictor, 1
        if run.engine is None:
            return _engine_predictor(None, self.model_id, self.function_name, run.device), 1
        width = call_concurrency(resolve(run.engine, self.model_id, opensearch=True, endpoints=self.is_remote))
        return _engine_predictor(run.engine, self.model_id, self.function_name, run.device), width

    def _plan(self, doc: Doc, n: int) -> list["_Call | None | Exception"]:
        """Every entry's call (None: nothing to predict), or the error that building its request raised: the
        other entries still run, as one at a time."""
        plan: list[_Call | None | Exception] = []
        for i in range(n):
            try:
                plan.append(self._prepare(doc, i))
            except Exception as exc:  # noqa: BLE001 - the entry's own failure
                plan.append(exc)
        return plan

    def _finish(self, doc: Doc, plan: list["_Call | None | Exception"],
                futures: list["Future[Any] | None"], interrupted: "threading.Event") -> BaseException | None:
        """Write the document's answers in entry order; its outcome as :meth:`process` would end."""
        first: Exception | None = None
        for step, future in zip(plan, futures):
            try:
                if isinstance(step, Exception):
                    raise step
                if step is not None and future is not None:
                    self._apply(doc, step, result_or_interrupt(future, interrupted))
            except Exception as exc:  # noqa: BLE001 - one failing entry or document never stops the others
                first = first or exc
        return None if self.own_ignore_failure else first

    def process(self, doc: Doc, predict: Predictor) -> None:
        """Every entry in turn; one that fails does not stop the others (upstream's GroupedActionListener
        waits for all of them), and the first failure fails the document unless ``ignore_failure``."""
        first: Exception | None = None
        for i in range(max(len(self.input_maps or []), 1)):
            try:
                self._predict_one(doc, predict, i)
            except Exception as exc:  # noqa: BLE001 - reported once every entry has run
                first = first or exc
        if first is not None and not self.own_ignore_failure:
            raise first

    def _read_input(self, doc: Doc, path: str) -> Any:
        if not path:
            if self.ignore_missing:
                return MISSING
            raise _iae(f"field name in input_map [ {path}] cannot be null nor empty")
        if doc.has(path):
            return doc.get(path)
        view = doc.ctx()
        value = json_path_read(view, path)
        if value is None or value == []:
            if self.ignore_missing:
                return MISSING
            raise _iae(f"Cannot find field name defined from input map: {path}")
        return value

    def _predict_one(self, doc: Doc, predict: Predictor, index: int) -> None:
        call = self._prepare(doc, index)
        if call is not None:
            self._apply(doc, call, predict(call.request))

    def _prepare(self, doc: Doc, index: int) -> "_Call | None":
        """Entry ``index``'s request and where its answer goes (None: nothing to predict for it)."""
        params: dict[str, str] = dict(self.model_config)
        out_entries: list[tuple[str, Any, list[str]]] | None = None
        if self.output_maps is not None:
            if index >= len(self.output_maps):  # output_map [] without input_map: processOutputMap.get(0)
                raise ApiError("index_out_of_bounds_exception",
                               f"Index {index} out of bounds for length {len(self.output_maps)}", 500)
            mapping = self.output_maps[index]
            out_entries = []
            for new_field, model_field in mapping.items():
                paths = write_new_dot_path(doc.ctx(), new_field)
                if not self.override and all(doc.has(p) for p in paths):
                    continue  # every path exists (or none is named): the entry is left out, as upstream
                out_entries.append((new_field, model_field, paths))
            if not out_entries:
                return None
        if not self.input_maps:  # none, or an empty list: every field of the document
            keys = list(doc.source().keys())
            if not keys:  # ModelExecutor.getMLModelInferenceRequest: nothing to send
                raise _iae("wrong input. The model input cannot be empty.")
            for key in keys:
                params[key] = to_param_string(doc.get(key))
        else:
            entry = self.input_maps[index]
            found = 0
            for model_key, doc_path in entry.items():
                value = self._read_input(doc, str(doc_path) if doc_path is not None else "")
                if value is MISSING:
                    continue
                found += 1
                params[model_key] = to_param_string(value)
            if entry and not found:
                return None  # ignore_missing and no input of this entry is present: nothing to predict
        return _Call(self._render_request(params), out_entries)

    def _apply(self, doc: Doc, call: "_Call", output: Any) -> None:
        """Write a model answer into the document as the entry's output map says."""
        out_entries = call.out_entries
        if out_entries is None:
            value = _output_value(output, None, self.ignore_missing, self.full_response_path)
            self._write(doc, DEFAULT_OUTPUT_FIELD_NAME, None, value, [DEFAULT_OUTPUT_FIELD_NAME])
        else:
            for new_field, model_field, paths in out_entries:
                value = _output_value(output, model_field, self.ignore_missing, self.full_response_path)
                if value is MISSING:
                    continue
                self._write(doc, new_field, model_field, value, paths)

    def _render_request(self, params: dict[str, str]) -> dict[str, Any]:
        """``model_input`` with its placeholders filled, in one pass (a value is never scanned for more
        placeholders). A value fills its placeholder raw, as ml-commons does, so it must fit where the
        placeholder stands: inside a JSON string, a string's content; elsewhere, one JSON value. A value
        that does not (a quote, a brace, ``", "x": "`` ...) fails its document with ``Invalid payload``
        instead of changing the request's structure."""
        values = {"model_config": self.model_config,
                  "input_map": {k: v for k, v in params.items() if k not in self.model_config}}
        if self.is_remote:
            values["ml_inference"] = {"parameters": to_json(params)}
        else:
            values["ml_inference"] = params
        pieces: list[str] = []
        bad: str | None = None
        for literal, kind, key, in_string in _template_parts(str(self.model_input)):
            pieces.append(literal)
            if kind is None:
                continue
            value = values[kind].get(key)
            if value is None:  # unknown placeholders are left as they are
                pieces.append("${" + kind + "." + key + "}")
                continue
            if bad is None and not _fits(value, in_string):
                bad = "${" + kind + "." + key + "}"
            pieces.append(value)
        text = "".join(pieces)
        try:
            if bad is not None:
                raise ValueError(bad)
            parsed = json.loads(text)
        except ValueError as exc:
            raise _iae(f"Invalid payload: {_clip(text)}") from exc
        if self.is_remote and isinstance(parsed, dict) and isinstance(parsed.get("parameters"), dict):
            return parameter_strings(parsed["parameters"])  # RemoteInferenceMLInput: getParameterMap
        return parsed

    def _write(self, doc: Doc, new_field: str, model_field: str | None, value: Any, paths: list[str]) -> None:
        if len(paths) == 1:
            doc.set(paths[0], clone(value))
            return
        if not isinstance(value, list):
            raise _iae("Model output is not an array, cannot assign to array in documents.")
        if len(value) != len(paths):
            raise _iae(f"the prediction field: {model_field} is an array in size of {len(value)} but the document "
                       f"field array from field {new_field} is in size of {len(paths)}")
        for path, item in zip(paths, value):
            doc.set(path, clone(item))


def _output_value(output: Any, field: str | None, ignore_missing: bool, full_response_path: bool) -> Any:
    """What ``appendFieldValue`` writes for an output-map entry: :func:`read_model_output` with ml-commons'
    wrapping of every error of that phase (``An unexpected error occurred: ...``), then the path's pooling,
    whose errors are not wrapped, as upstream (writing the value is outside it too)."""
    if output is None:
        raise _iae("model inference output is null")
    base, pool = _pooling(field)
    try:
        value = read_model_output(output, base, ignore_missing, full_response_path)
    except ApiError as err:
        raise ApiError(err.type, f"An unexpected error occurred: {err.reason}", err.status) from err
    except Exception as err:  # noqa: BLE001 - upstream wraps every error of reading the output
        raise ApiError("exception", f"An unexpected error occurred: {err}", 500) from err
    return value if pool is None or value is MISSING else _pool(value, pool)


def _engine_predictor(engine: "Engine | None", model_id: str, function_name: str,
                      device: str | None = None) -> Predictor:
    """A predictor backed by the engine: an OpenSearch ml-commons model (remote or local), an
    ``_inference`` endpoint, or a trained model (through ``_infer``). ``device``: the run's device,
    where a trained model, an endpoint's local model or an ml-commons local model runs when the
    engine's device would apply."""

    def predict(request: Any) -> dict[str, Any]:
        if engine is None:
            raise ApiError("illegal_state_exception", "no engine to run models", 500)
        backend = resolve(engine, model_id, opensearch=True, endpoints=function_name.lower() == "remote")
        if isinstance(backend, OpenSearchBackend):  # a model registered under _plugins/_ml
            return backend.predict(request, device=device)
        if backend.kind == "endpoint":  # an _inference endpoint
            return endpoint_prediction(engine, model_id, request, device=device)
        if isinstance(request, dict) and isinstance(request.get("docs"), list):
            docs = request["docs"]
        elif isinstance(request, dict):
            params = request.get("parameters", request) if isinstance(request.get("parameters"), dict) else request
            docs = [{k: _decode(v) for k, v in params.items()}]
        else:
            raise _iae(f"Invalid payload: {request!r}")
        results = engine.infer(model_id, docs, device=device)
        data = results[0] if len(results) == 1 else {"response": results}
        return {"inference_results": [{"output": [{"name": "response", "dataAsMap": data}]}]}

    return predict


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def create(processor: dict[str, Any], predictor: Predictor | None = None) -> MLInferenceProcessor:
    """Build the processor from ``{"ml_inference": {...}}`` or its inner config."""
    config = processor.get(TYPE, processor) if isinstance(processor, dict) else processor
    conf = dict(config or {})
    conf.pop("tag", None)
    conf.pop("description", None)
    conf.pop("if", None)
    conf.pop("on_failure", None)
    c = Conf(TYPE, None, conf)
    proc = MLInferenceProcessor(c, predictor)
    return proc
