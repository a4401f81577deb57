"""ml-commons' connector pre- and post-process functions: what a Predict call's input becomes in the
request's parameters, and what the remote answer becomes in model tensors.

An input is one of ml-commons' datasets: :class:`TextDocs` (``text_docs``, a text embedding call),
:class:`TextSimilarity` (``query_text`` + ``text_docs``, a rerank call) or :class:`RemoteParams` (the
``parameters`` of a remote model's call, an ``ml_inference`` document's). A ``pre_process_function`` is a
built-in one by name (:data:`PRE_PROCESS`: one class per kind, each registered once under the names
ml-commons gives it) or a painless script; a ``post_process_function`` likewise (:data:`POST_PROCESS`,
each with the JSON path it reads, which a ``response_filter`` parameter replaces). Scripts run on
:mod:`es_infer_nb.painless` as ml-commons runs them (template scripts; pre-process scripts return
``{"parameters": {...}}`` as JSON text, post-process ones model tensor JSON). Tensors are dicts in
``ModelTensor``'s key order (name, data_type, shape, data, result, dataAsMap).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

from ..errors import ApiError
from ..models.parsing import json_token
from ..models.tree.features import java_double_string
from ..painless import compile_script
from . import jayway

__all__ = [
    "POST_PROCESS", "PRE_PROCESS", "DEFAULT_PRE", "RemoteParams", "TextDocs", "TextSimilarity",
    "data_type_of", "gson_json", "iae", "ml_exception", "parameter_strings", "parse_tensors", "pre_process",
    "post_process", "response_tensors", "run_script",
]

DEFAULT_PRE = "connector.pre_process.default.embedding"
#: the parameters that switch on ml-commons' pre-process options
PROCESS_REMOTE_INFERENCE_INPUT = "pre_process_function.process_remote_inference_input"
CONVERT_INPUT_TO_JSON_STRING = "pre_process_function.convert_input_to_json_string"
CONVERT_REMOTE_PARAMS_TO_OBJECT = "pre_process_function.convert_remote_inference_param_to_object"
#: MLResultDataType, in its declaration order (a response filter's ``.int8`` / ``.binary`` ... picks one)
DATA_TYPES = ("FLOAT32", "FLOAT64", "FLOAT16", "UINT8", "INT32", "INT8", "INT64", "BOOLEAN", "UNKNOWN", "STRING",
              "BINARY", "UBINARY")
#: ml-commons' StringUtils.DEFAULT_ESCAPE_FUNCTION: put before a script that calls escape() without defining it
ESCAPE_FUNCTION = (
    '\n'
    '    String escape(def input) { \n'
    '      if (input.contains("\\\\")) {\n'
    '        input = input.replace("\\\\", "\\\\\\\\");\n'
    '      }\n'
    '      if (input.contains("\\"")) {\n'
    '        input = input.replace("\\"", "\\\\\\"");\n'
    '      }\n'
    "      if (input.contains('\r"
    "')) {\n"
    "        input = input = input.replace('\r"
    "', '\\\\r');\n"
    '      }\n'
    '      if (input.contains("\\\\t")) {\n'
    '        input = input.replace("\\\\t", "\\\\\\\\\\\\t");\n'
    '      }\n'
    "      if (input.contains('\n"
    "')) {\n"
    "        input = input.replace('\n"
    "', '\\\\n');\n"
    '      }\n'
    "      if (input.contains('\x08')) {\n"
    "        input = input.replace('\x08', '\\\\b');\n"
    '      }\n'
    "      if (input.contains('\x0c"
    "')) {\n"
    "        input = input.replace('\x0c"
    "', '\\\\f');\n"
    '      }\n'
    '      return input;\n'
    '    }\n'
)
_ESCAPE_USED = re.compile(r"(?<!\bString\s)\bescape\s*\(")
_ESCAPE_DEFINED = re.compile(r"String\s+escape\s*\(\s*(def|String)\s+.*?\)\s*\{?")


def iae(reason: str) -> ApiError:
    return ApiError("illegal_argument_exception", reason, 400)


def ml_exception(action: str, cause: ApiError) -> ApiError:
    """What ml-commons answers when reading a remote answer fails with anything but an
    IllegalArgumentException (a JSON path that finds nothing, a value of the wrong class): an ``MLException``."""
    return ApiError("m_l_exception", f"Fail to execute {action.upper()} in aws connector", 500, caused_by=cause)


# -- the inputs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextDocs:
    docs: tuple[str | None, ...]
    algorithm: str = "TEXT_EMBEDDING"


@dataclass(frozen=True)
class TextSimilarity:
    query: str
    docs: tuple[str | None, ...]
    algorithm: str = "TEXT_SIMILARITY"


@dataclass(frozen=True)
class RemoteParams:
    parameters: Mapping[str, str]


MLInput = Union[TextDocs, TextSimilarity, RemoteParams]


# -- Gson's text of a value --------------------------------------------------------------------------------


def gson_json(value: Any) -> str:
    """``gson.toJson(value)`` as ml-commons' Gson writes it (nulls kept, no HTML escaping, doubles as Java
    writes them: ``3.0``, ``1.0E-5``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise iae(f"{java_double_string(value)} is not a valid double value as per JSON specification. To "
                      "override this behavior, use GsonBuilder.serializeSpecialFloatingPointValues() method.")
        return java_double_string(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if isinstance(value, dict):
        return "{" + ",".join(f"{gson_json(str(k))}:{gson_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(gson_json(v) for v in value) + "]"
    return gson_json(str(value))


def parameter_strings(parameters: Mapping[str, Any]) -> dict[str, str]:
    """``convertScriptStringToJsonString``: strings as they are, anything else as its Gson JSON."""
    return {str(k): v if isinstance(v, str) else gson_json(v) for k, v in parameters.items()}


def _gson_numbers(value: Any) -> Any:
    """A value as ``gson.fromJson(text, Map.class)`` gives it: every number a Double."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {k: _gson_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_gson_numbers(v) for v in value]
    return value


def _is_json(text: Any) -> bool:
    """ml-commons' ``StringUtils.isJson``: an object or an array."""
    if not isinstance(text, str) or not text.strip():
        return False
    try:
        return isinstance(json.loads(text), (dict, list))
    except ValueError:
        return False


# -- painless scripts ----------------------------------------------------------------------------------


def with_escape(script: str) -> str:
    """``StringUtils.addDefaultMethod``: the default ``escape`` before a script that calls it undefined."""
    if _ESCAPE_USED.search(script) and not _ESCAPE_DEFINED.search(script):
        return ESCAPE_FUNCTION + script
    return script


def run_script(script: str, params: Mapping[str, Any]) -> str | None:
    """A process function's painless script as a template script: what it returns, as a String (or None)."""
    returned = compile_script(with_escape(script)).evaluate(dict(params))
    if returned is None or isinstance(returned, str):
        return returned
    raise ApiError("class_cast_exception", f"Cannot cast {jayway.java_class(returned)} to java.lang.String", 400)


def fill_function(function: str | None, parameters: Mapping[str, str]) -> str | None:
    """``${parameters.x}`` in a process function's text replaced by ``gson.toJson(x)`` (a quoted JSON string)."""
    if function is None or "${parameters." not in function:
        return function
    return re.sub(r"\$\{parameters\.([^}]+)\}",
                  lambda m: gson_json(parameters[m.group(1)]) if m.group(1) in parameters else m.group(0), function)


# -- pre-process ----------------------------------------------------------------------------------------


class PreProcess:
    """A built-in pre-process function: ``parameters(data)`` for the input kinds it takes."""

    #: a ``parameters`` input goes through untouched (``returnDirectlyForRemoteInferenceInput``)
    passes_remote_params = True

    def __call__(self, data: MLInput) -> RemoteParams:
        if self.passes_remote_params and isinstance(data, RemoteParams):
            return data
        self.validate(data)
        return RemoteParams(parameter_strings(self.parameters(data)))

    def validate(self, data: MLInput) -> None:
        if not isinstance(data, TextDocs):
            raise iae("This pre_process_function can only support TextDocsInputDataSet which including a list of "
                      "string with key 'text_docs'")

    def parameters(self, data: Any) -> dict[str, Any]:
        raise NotImplementedError


class EmbeddingDocs(PreProcess):
    """Every doc in one list parameter (OpenAI ``input``, Cohere ``texts``, Cohere multimodal ``images``)."""

    def __init__(self, key: str, empty_error: str | None = None) -> None:
        self.key, self.empty_error = key, empty_error

    def validate(self, data: MLInput) -> None:
        super().validate(data)
        if self.empty_error and (not data.docs or data.docs[0] is None):  # type: ignore[union-attr]
            raise iae(self.empty_error)

    def parameters(self, data: TextDocs) -> dict[str, Any]:
        return {self.key: list(data.docs)}


class FirstDoc(PreProcess):
    """The first doc as one parameter (Bedrock ``inputText``; Nova's image / video / audio)."""

    def __init__(self, key: str, empty_error: str | None = None) -> None:
        self.key, self.empty_error = key, empty_error

    def validate(self, data: MLInput) -> None:
        super().validate(data)
        if not data.docs:  # type: ignore[union-attr]
            if self.empty_error:
                raise iae(self.empty_error)
            raise ApiError("index_out_of_bounds_exception", "Index 0 out of bounds for length 0", 500)

    def parameters(self, data: TextDocs) -> dict[str, Any]:
        return {self.key: data.docs[0]}


class TextAndImage(PreProcess):
    """Bedrock multimodal: ``inputText`` = the first doc, ``inputImage`` = the second."""

    def validate(self, data: MLInput) -> None:
        super().validate(data)
        docs = data.docs  # type: ignore[union-attr]
        if not docs or (len(docs) == 1 and docs[0] is None):
            raise iae("No input text or image provided")

    def parameters(self, data: TextDocs) -> dict[str, Any]:
        found: dict[str, Any] = {"inputText": data.docs[0]}
        if len(data.docs) > 1:
            found["inputImage"] = data.docs[1]
        return found


class NovaModality(PreProcess):
    """Bedrock Nova multimodal: the first doc's modality (a JSON object with ``text`` / ``image`` /
    ``video`` / ``audio``, else text) as the parameter of that name."""

    def validate(self, data: MLInput) -> None:
        super().validate(data)
        docs = data.docs  # type: ignore[union-attr]
        if not docs or (len(docs) == 1 and docs[0] is None):
            raise iae("No input provided")

    def parameters(self, data: TextDocs) -> dict[str, Any]:
        doc = data.docs[0]
        parsed: Any = None
        try:
            parsed = json.loads(doc) if doc is not None else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return {"text": doc}
        name = next((k for k in ("text", "image", "video", "audio") if k in parsed), "text")
        content = doc
        if doc.startswith("{"):  # type: ignore[union-attr]
            value = next((parsed[k] for k in ("text", "image", "audio", "video") if k in parsed), None)
            if isinstance(value, str):
                content = value
            elif value is not None:  # Jackson's asString(): "" for a container, a scalar's text
                content = "" if isinstance(value, (dict, list)) else gson_json(value)
        return {name: content}


class Rerank(PreProcess):
    """Cohere / default rerank: ``query``, ``documents`` and ``top_n`` (the number of docs)."""

    def validate(self, data: MLInput) -> None:
        if not isinstance(data, TextSimilarity):
            raise iae("This pre_process_function can only support TextSimilarityInputDataSet")

    def parameters(self, data: TextSimilarity) -> dict[str, Any]:
        return {"query": data.query, "documents": list(data.docs), "top_n": len(data.docs)}


class BedrockRerank(Rerank):
    """Bedrock rerank: ``queries``, ``sources`` and ``numberOfResults``."""

    def parameters(self, data: TextSimilarity) -> dict[str, Any]:
        return {"queries": [{"textQuery": {"text": data.query}, "type": "TEXT"}],
                "sources": [{"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": d}}}
                            for d in data.docs],
                "numberOfResults": len(data.docs)}


_OPENAI = EmbeddingDocs("input")
_BEDROCK = FirstDoc("inputText")
_RERANK = Rerank()
#: ml-commons' MLPreProcessFunction, by name
PRE_PROCESS: dict[str, PreProcess] = {
    "connector.pre_process.cohere.embedding": EmbeddingDocs("texts"),
    "connector.pre_process.cohere.multimodal_embedding": EmbeddingDocs("images", "No image provided"),
    "connector.pre_process.bedrock.multimodal_embedding": TextAndImage(),
    "connector.pre_process.bedrock.nova.embedding": NovaModality(),
    "connector.pre_process.bedrock.nova.text_embedding": _BEDROCK,
    "connector.pre_process.bedrock.nova.image_embedding": FirstDoc("inputImage", "No input image provided"),
    "connector.pre_process.bedrock.nova.video_embedding": FirstDoc("inputVideo", "No input video provided"),
    "connector.pre_process.bedrock.nova.audio_embedding": FirstDoc("inputAudio", "No input audio provided"),
    "connector.pre_process.openai.embedding": _OPENAI,
    DEFAULT_PRE: _OPENAI,
    "connector.pre_process.bedrock.embedding": _BEDROCK,
    "connector.pre_process.default.rerank": _RERANK,
    "connector.pre_process.cohere.rerank": _RERANK,
    "connector.pre_process.bedrock.rerank": BedrockRerank(),
}
#: the pre-process functions that take one doc a request (a painless script does too)
ONE_DOC_A_REQUEST = frozenset({"connector.pre_process.bedrock.embedding"})


def _true(parameters: Mapping[str, str], key: str) -> bool:
    return str(parameters.get(key, "")).strip().lower() == "true"


def pre_process(function: str | None, data: MLInput, parameters: Mapping[str, str],
                connector_parameters: Mapping[str, str]) -> RemoteParams:
    """``ConnectorUtils.processInput``: the input as the parameters of one request. ``function``: the
    action's pre_process_function; ``parameters``: the call's merged parameters (connector's, then the
    call's)."""
    if function is None and isinstance(data, TextDocs):
        function = DEFAULT_PRE
    if function is None:
        if isinstance(data, RemoteParams):
            return data
        raise iae("pre_process_function not defined in connector")
    function = fill_function(function, parameters) or ""
    builtin = PRE_PROCESS.get(function)
    if builtin is not None:
        return builtin(data)
    if isinstance(data, RemoteParams):
        if not _true(parameters, PROCESS_REMOTE_INFERENCE_INPUT):
            return data
        merged = {**connector_parameters, **parameters}
        params: dict[str, Any] = dict(data.parameters)
        if _true(merged, CONVERT_REMOTE_PARAMS_TO_OBJECT):
            params = {k: json.loads(v) if _is_json(v) else v for k, v in params.items()}
        return _script_parameters(function, params)
    params = _input_map(data)
    if _true(parameters, CONVERT_INPUT_TO_JSON_STRING):
        params = parameter_strings(params)
    return _script_parameters(function, params)


def _input_map(data: TextDocs | TextSimilarity) -> dict[str, Any]:
    """``MLInput.toXContent`` read back by Gson: the algorithm, the query and the docs, each text escaped
    for a JSON string (``processTextDoc``) as ml-commons does before a script sees it."""
    out: dict[str, Any] = {"algorithm": data.algorithm}
    if isinstance(data, TextSimilarity):
        out["query_text"] = _escaped(data.query)
    if data.docs:
        out["text_docs"] = [_escaped(d) for d in data.docs]
    return out


def _escaped(text: str | None) -> str | None:
    return None if text is None else gson_json(text)[1:-1]


def _script_parameters(script: str, params: Mapping[str, Any]) -> RemoteParams:
    out = run_script(script, params)
    if out is None:
        raise iae("Preprocess function output is null")
    try:
        parsed = json.loads(out)
    except ValueError:
        raise ApiError("json_syntax_exception", f"the pre_process_function returned text that is not JSON: "
                       f"{out[:200]}", 400) from None
    if not isinstance(parsed, dict):
        raise iae("the pre_process_function must return a JSON object: {\"parameters\": {...}}")
    inner = _gson_numbers(parsed.get("parameters") or {})
    if not isinstance(inner, dict):
        raise iae("[parameters] of the pre_process_function's output must be an object")
    return RemoteParams(parameter_strings(inner))


# -- post-process ---------------------------------------------------------------------------------------


def data_type_of(path: str) -> str | None:
    """``parseMLResultDataTypeFromResponseFilter``: the first MLResultDataType whose ``.NAME`` the path has."""
    lowered = path.lower()
    return next((t for t in DATA_TYPES if "." + t.lower() in lowered), None)


def _tensor(name: str | None, data_type: str | None, shape: list[int] | None = None, data: list[Any] | None = None,
            result: str | None = None, data_as_map: Any = None) -> dict[str, Any]:
    """A ModelTensor's JSON: its fields in ModelTensor's order, null ones left out."""
    out: dict[str, Any] = {}
    for key, value in (("name", name), ("data_type", data_type), ("shape", shape), ("data", data), ("result", result),
                       ("dataAsMap", data_as_map)):
        if value is not None:
            out[key] = value
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class PostProcess:
    """A built-in post-process function: the JSON path it reads and the tensors it makes of what it found."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, found: Any, data_type: str | None) -> list[dict[str, Any]]:
        if found is None:
            raise iae("Can't run post process function as model output is null")
        self.validate(found)
        return self.tensors(found, data_type)

    def validate(self, found: Any) -> None:
        if not isinstance(found, list):
            raise iae("Post process function input is not a List.")

    def tensors(self, found: Any, data_type: str | None) -> list[dict[str, Any]]:
        raise NotImplementedError


def _cast_error(value: Any, target: str) -> ApiError:
    kind = jayway.java_class(value)
    return ApiError("class_cast_exception", f"class {kind} cannot be cast to class {target}", 500)


class Embeddings(PostProcess):
    """A list of vectors: one ``sentence_embedding`` tensor each."""

    def validate(self, found: Any) -> None:
        super().validate(found)
        if found:
            if not isinstance(found[0], list):
                raise iae("The embedding should be a non-empty List containing List of Float values.")
            if not found[0] or not _is_number(found[0][0]):
                raise iae("The embedding should be a non-empty List containing Float values.")

    def tensors(self, found: list[Any], data_type: str | None) -> list[dict[str, Any]]:
        out = []
        for vector in found:
            if not isinstance(vector, list):
                raise _cast_error(vector, "java.util.List")
            if not all(_is_number(x) for x in vector):
                raise ApiError("array_store_exception", "arraycopy: element type mismatch", 500)
            out.append(_tensor("sentence_embedding", data_type or "FLOAT32", [len(vector)], list(vector)))
        return out


class Embedding(PostProcess):
    """One vector: one ``sentence_embedding`` tensor (Bedrock)."""

    def validate(self, found: Any) -> None:
        super().validate(found)
        if found and not _is_number(found[0]):
            raise iae("The embedding should be a non-empty List containing Float values.")

    def tensors(self, found: list[Any], data_type: str | None) -> list[dict[str, Any]]:
        if not all(_is_number(x) for x in found):
            raise ApiError("array_store_exception", "arraycopy: element type mismatch", 500)
        return [_tensor("sentence_embedding", data_type or "FLOAT32", [len(found)], list(found))]


def _scores_in_order(found: list[dict[str, Any]], score_key: str) -> list[dict[str, Any]]:
    """One ``similarity`` tensor per document, in the documents' order (the answer's ``index``)."""
    scores: list[Any] = [None] * len(found)
    for item in found:
        index = item.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise _cast_error(index, "java.lang.Integer")
        if not 0 <= index < len(scores):
            raise ApiError("array_index_out_of_bounds_exception",
                           f"Index {index} out of bounds for length {len(scores)}", 500)
        scores[index] = item.get(score_key)
    return [_tensor("similarity", "FLOAT32", [1], [s]) for s in scores]


class CohereRerankScores(PostProcess):
    """Cohere's rerank answer (``index``, ``relevance_score``)."""

    def validate(self, found: Any) -> None:
        super().validate(found)
        if found:
            if not isinstance(found[0], dict):
                raise iae("Post process function input is not a List of Map.")
            if not found[0] or "index" not in found[0] or "relevance_score" not in found[0]:
                raise iae("The rerank result should contain index and relevance_score.")

    def tensors(self, found: list[Any], data_type: str | None) -> list[dict[str, Any]]:
        for item in found:
            if not isinstance(item, dict):
                raise _cast_error(item, "java.util.Map")
            score = item.get("relevance_score")
            if score is not None and not isinstance(score, float):
                raise _cast_error(score, "java.lang.Double")
        return _scores_in_order(found, "relevance_score")


class BedrockRerankScores(PostProcess):
    """Bedrock's rerank answer (``index``, ``relevanceScore``), every item checked."""

    def validate(self, found: Any) -> None:
        super().validate(found)
        if not found:
            raise iae("Post process function input is empty.")
        for item in found:
            if not isinstance(item, dict):
                raise iae("Rerank result is not a Map.")
            if not item:
                raise iae("Rerank result is empty.")
            if "index" not in item or "relevanceScore" not in item:
                raise iae("Rerank result should have both index and relevanceScore.")
            if not isinstance(item["relevanceScore"], float):
                raise iae("relevanceScore is not BigDecimal or Double.")

    def tensors(self, found: list[Any], data_type: str | None) -> list[dict[str, Any]]:
        return _scores_in_order(found, "relevanceScore")


class BatchJobArn(PostProcess):
    """Bedrock's batch job answer: the answer, with ``processedJobArn`` (its ``/`` as ``%2F``)."""

    def validate(self, found: Any) -> None:
        if not isinstance(found, dict):
            raise iae("Post process function input is not a Map.")
        if "jobArn" not in found:
            raise iae("job arn is missing.")

    def tensors(self, found: dict[str, Any], data_type: str | None) -> list[dict[str, Any]]:
        arn = found["jobArn"]
        if not isinstance(arn, str):
            raise _cast_error(arn, "java.lang.String")
        return [_tensor("response", None, data_as_map={**found, "processedJobArn": arn.replace("/", "%2F")})]


class Passthrough(PostProcess):
    """Another ml-commons' answer: its ``inference_results[*].output[*]`` tensors, else the answer whole."""

    def validate(self, found: Any) -> None:
        if not isinstance(found, (dict, list)):
            raise iae("Post process function input must be a Map or List")

    def tensors(self, found: Any, data_type: str | None) -> list[dict[str, Any]]:
        if not isinstance(found, dict):
            raise _cast_error(found, "java.util.Map")
        results = found.get("inference_results")
        if not isinstance(results, list):
            return [_tensor("response", None, data_as_map=found)]
        out = []
        for result in results:
            outputs = result.get("output") if isinstance(result, dict) else None
            if not isinstance(outputs, list):
                continue
            for item in outputs:
                if isinstance(item, dict) and item:
                    out.append(_passed_tensor(item))
        return out


def _passed_tensor(item: dict[str, Any]) -> dict[str, Any]:
    name = item.get("name") if isinstance(item.get("name"), str) else "output"
    data_type = item.get("data_type") if item.get("data_type") in DATA_TYPES else None

    def numbers(key: str) -> list[Any] | None:
        value = item.get(key)
        return [x if _is_number(x) else None for x in value] if isinstance(value, list) else None

    shape = numbers("shape")
    result = item.get("result")
    if result is not None and not isinstance(result, str):
        raise _cast_error(result, "java.lang.String")
    data_as_map = item.get("dataAsMap")
    if data_as_map is not None and not isinstance(data_as_map, dict):
        raise _cast_error(data_as_map, "java.util.Map")
    return _tensor(name, data_type, None if shape is None else [int(x or 0) for x in shape], numbers("data"),
                   result, data_as_map)


_EMBEDDINGS = Embeddings("$[*]")
#: ml-commons' MLPostProcessFunction, by name
POST_PROCESS: dict[str, PostProcess] = {
    "connector.post_process.openai.embedding": Embeddings("$.data[*].embedding"),
    "connector.post_process.cohere.embedding": Embeddings("$.embeddings"),
    "connector.post_process.cohere_v2.embedding.float": Embeddings("$.embeddings.float"),
    "connector.post_process.cohere_v2.embedding.int8": Embeddings("$.embeddings.int8"),
    "connector.post_process.cohere_v2.embedding.uint8": Embeddings("$.embeddings.uint8"),
    "connector.post_process.cohere_v2.embedding.binary": Embeddings("$.embeddings.binary"),
    "connector.post_process.cohere_v2.embedding.ubinary": Embeddings("$.embeddings.ubinary"),
    "connector.post_process.default.embedding": _EMBEDDINGS,
    "connector.post_process.bedrock.embedding": Embedding("$.embedding"),
    "connector.post_process.bedrock_v2.embedding.float": Embedding("$.embeddingsByType.float"),
    "connector.post_process.bedrock_v2.embedding.binary": Embedding("$.embeddingsByType.binary"),
    "connector.post_process.bedrock.nova.embedding": Embeddings("$.embeddings[*].embedding"),
    "connector.post_process.bedrock.batch_job_arn": BatchJobArn("$"),
    "connector.post_process.cohere.rerank": CohereRerankScores("$.results"),
    "connector.post_process.bedrock.rerank": BedrockRerankScores("$.results"),
    "connector.post_process.default.rerank": CohereRerankScores("$[*]"),
    "connector.post_process.mlcommons.passthrough": Passthrough("$"),
}


def _jayway(action: str, call: Callable[[], Any]) -> Any:
    """Jayway's reading of an answer: a miss or an answer that is not JSON is an MLException (500)."""
    try:
        return call()
    except jayway.PathNotFound as miss:
        raise ml_exception(action, ApiError("path_not_found_exception", str(miss), 500)) from None
    except ValueError as bad:
        raise ml_exception(action, ApiError("invalid_json_exception", str(bad)[:500], 500)) from None


def post_process(action: str, function: str | None, answer: str, parameters: Mapping[str, str],
                 strict_json: Callable[[str], Any]) -> list[dict[str, Any]]:
    """``ConnectorUtils.processOutput``: the tensors of a remote answer. ``strict_json``: how ml-commons'
    Jackson reads the answer (its errors are the caller's, as ``IllegalArgumentException``s)."""
    function = fill_function(function, parameters)
    response_filter = parameters.get("response_filter")
    builtin = POST_PROCESS.get(function or "")
    if builtin is not None:
        path = response_filter if response_filter and response_filter.strip() else builtin.path
        found = _jayway(action, lambda: jayway.read(json.loads(answer), path))
        return builtin(found, data_type_of(path))
    parsed = strict_json(answer)
    if isinstance(parsed, list):
        params: dict[str, Any] = {"result": parsed}
    elif isinstance(parsed, dict):
        params = parsed
    else:
        raise iae("Unsupported response type")
    returned = run_script(function, params) if function is not None else None
    response = returned if returned is not None else answer
    tensor_json = function is not None and returned is not None and _is_json(response)
    target: Any = response
    if response_filter is not None:
        try:
            target = jayway.read(json.loads(response), response_filter)
        except (jayway.PathNotFound, ValueError):
            target = response
    return response_tensors(target, tensor_json, strict_json)


def response_tensors(response: Any, tensor_json: bool, strict_json: Callable[[str], Any]) -> list[dict[str, Any]]:
    """``AbstractConnector.parseResponse``: model tensor JSON as tensors, else one ``response`` tensor."""
    if tensor_json:
        if not isinstance(response, str):
            raise _cast_error(response, "java.lang.String")
        return parse_tensors(json.loads(response))
    if isinstance(response, str) and _is_json(response):
        data = strict_json(response)
        return [_tensor("response", None, data_as_map=data if isinstance(data, dict) else {"response": data})]
    if isinstance(response, dict):
        return [_tensor("response", None, data_as_map=response)]
    return [_tensor("response", None, data_as_map={"response": response})]


def parse_tensors(value: Any) -> list[dict[str, Any]]:
    """``ModelTensor.parser`` over a script's answer: an object is one tensor, an array one per item."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise ApiError("parsing_exception", f"Failed to parse object: expecting token of type [START_OBJECT] "
                           f"but found [{json_token(item)}]", 400)
        data_type = item.get("data_type")
        if data_type is not None and data_type not in DATA_TYPES:
            raise iae(f"No enum constant org.opensearch.ml.common.output.model.MLResultDataType.{data_type}")
        shape = item.get("shape")
        if shape is not None and (not isinstance(shape, list) or not all(_is_number(x) for x in shape)):
            raise ApiError("parsing_exception", "[shape] must be an array of numbers", 400)
        data = item.get("data")
        if data is not None and (not isinstance(data, list) or not all(_is_number(x) for x in data)):
            raise _cast_error(next((x for x in data if not _is_number(x)), data) if isinstance(data, list) else data,
                              "java.lang.Number")
        name, result, data_as_map = item.get("name"), item.get("result"), item.get("dataAsMap")
        out.append(_tensor(
            name if name is None or isinstance(name, str) else gson_json(name),
            data_type, None if shape is None else [int(x) for x in shape],
            data if data_type is not None and data else None,
            result if result is None or isinstance(result, str) else gson_json(result),
            data_as_map if isinstance(data_as_map, dict) else None))
    return out

