"""What an NLP result writes in the ``input_output`` style (``InferenceResults.asMap(outputField)``, spec §3.3).

Every key returned is written under the base path of ``output_field`` (the text before its last
``.``); ``is_truncated`` comes first when truncation happened. Per task, as ES's result classes do:
``text_embedding`` / ``text_expansion`` / ``pass_through`` / ``text_similarity`` write the value at
the output leaf; ``question_answering`` the answer at the leaf plus ``start_offset``, ``end_offset``,
``top_classes`` and ``prediction_probability``; ``fill_mask`` only ``<leaf>_sequence``; ``ner``,
``text_classification`` and ``zero_shot_classification`` nothing but ``is_truncated``.
"""

from __future__ import annotations

from typing import Any

from ..errors import ApiError

VALUE_AT_LEAF = ("text_embedding", "text_expansion", "pass_through", "text_similarity")


def split_output(output_field: str) -> tuple[str | None, str]:
    """``(base path or None for the document root, leaf)``."""
    base, dot, leaf = output_field.rpartition(".")
    return (base if dot else None), leaf


def beside(output_field: str, key: str) -> str:
    """The path of ``key`` next to ``output_field``: under its base path, or at the document root."""
    base, _ = split_output(output_field)
    return f"{base}.{key}" if base else key


def io_pairs(input_output: Any) -> list[dict[str, str]]:
    """``input_output`` (one entry or a list) as a list, each entry checked (ValueError naming the shape)."""
    pairs = [input_output] if isinstance(input_output, dict) else list(input_output)
    for pair in pairs:
        if not isinstance(pair, dict) or set(pair) != {"input_field", "output_field"}:
            raise ValueError(f"each input_output entry must be {{'input_field': ..., 'output_field': ...}}, got {pair!r}")
    return pairs


def not_an_nlp_model(model_id: str) -> Any:
    """The error for ``input_output`` on a model that is not a pytorch (NLP) model."""
    return ApiError("status_exception", f"[input_output] is only supported for NLP models, but model [{model_id}] "
                    "is not a pytorch model", 400)


def as_map(task: str, result: dict[str, Any], output_field: str, results_field: str = "predicted_value"
           ) -> dict[str, Any]:
    _base, leaf = split_output(output_field)
    out: dict[str, Any] = {}
    if result.get("is_truncated"):
        out["is_truncated"] = True
    if task in VALUE_AT_LEAF:
        out[leaf] = result.get(results_field)
    elif task == "question_answering":
        out[leaf] = result.get(results_field)
        for key in ("start_offset", "end_offset", "top_classes", "prediction_probability"):
            if key in result:
                out[key] = result[key]
    elif task == "fill_mask":  # the result carries it as ``<results_field>_sequence``
        sequence = f"{results_field}_sequence"
        if sequence in result:
            out[f"{leaf}_sequence"] = result[sequence]
    return out


def task_of(stored: dict[str, Any]) -> tuple[str, str]:
    """The model's task name and results field."""
    ((task, options),) = (stored.get("inference_config") or {"pass_through": {}}).items()
    return task, str((options or {}).get("results_field") or "predicted_value")
