"""``df.infer.run`` over a frame: the function mapping rows to their result columns, for the pandas
accessors (and through them ``files/`` and the Dask partitions).

:func:`compute` asks :func:`es_infer_nb.backends.resolve` which backend serves the id and returns the
function running it: ``_inference`` endpoints ``services.frames.CHUNK`` rows per step
(:func:`endpoint_chunks`, Ctrl-C keeps the finished steps), NLP models with or without
``input_output``, tree models. Each run makes the call's one progress bar
(:class:`~es_infer_nb.models.run_control.RunProgress`: shown after ~2 s, at once with
``progress=True``, never with ``progress=False``) that every backend feeds with its rows. Device,
batch size and progress are parameters (the notebook's defaults are the accessor's business);
:mod:`.resume` makes a run interruptible and resumable.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..backends import resolve
from ..errors import ApiError, InferenceInterrupted
from ..models.deployments import deployments
from ..models.results import target_prefix
from ..models.run_control import RunProgress, current_progress, reporting
from ..services import frames as endpoint_frames
from ..services.ingest_bridge import DEFAULT_INPUT_FIELD
from .resume import combine_results, run_resumable

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["ENDPOINT_PROGRESS_MIN_ROWS", "NOT_REACHED", "check_fields", "compute", "endpoint_chunks",
           "endpoint_field", "is_endpoint", "model_input_fields", "run_frame", "series_field", "task_and_fields", "text_columns",
           "text_field_map"]


def model_input_fields(engine: "Engine", model_id: str) -> list[str] | None:
    """The document fields a model (id, alias or deployment id) reads; ``None`` if it is unknown
    (the backend serving the trained model answers)."""
    return resolve(engine, model_id, endpoints=False).input_fields()


def _column_present(columns: set[str], name: str) -> bool:
    """Whether a document built from these columns has field ``name`` (a column of that name, a
    parent object column ``a`` for ``a.b``, or dotted columns below it)."""
    if name in columns:
        return True
    parts = name.split(".")
    if any(".".join(parts[:i]) in columns for i in range(1, len(parts))):
        return True
    return any(c.startswith(name + ".") for c in columns)


def check_fields(engine: "Engine", model_id: str, frame: pd.DataFrame, field_map: dict[str, str] | None,
                 stacklevel: int = 3) -> None:
    """Warn (one line) when no column of the frame is an input field of the model, or when some of
    the model's input fields are not columns (naming them and the closest column names). A Python
    warning only: the rows' results are Elasticsearch's, missing fields and all."""
    if frame.empty and len(frame.columns) == 0:
        return
    fields = model_input_fields(engine, model_id)
    if not fields:
        return
    columns = [str(c) for c in frame.columns]
    readable = set(fields) | set((field_map or {}).keys())
    if not readable & set(columns):
        shown = ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "")
        warnings.warn(
            f"none of model [{model_id}]'s input fields ({', '.join(fields)}) is a column of the frame "
            f"(columns: {shown or 'none'}); every row will carry a warning or an error. Rename a column "
            "or pass field_map={column: field}.",
            UserWarning,
            stacklevel=3,
        )
        return
    missing = _missing_fields(engine, model_id, set(columns), field_map)
    if not missing:
        return
    used = set(fields) | set((field_map or {}).keys())
    spare = [c for c in columns if c not in used]
    hints = []
    for name in missing[:10]:
        close = difflib.get_close_matches(name, spare, n=3, cutoff=0.5)
        hints.append(f"{name} (closest: {', '.join(close)})" if close else name)
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    warnings.warn(
        f"{len(missing)} of model [{model_id}]'s input fields are not columns of the frame: "
        f"{'; '.join(hints)}{more}. Those fields are missing from every row (the model treats them as "
        "missing values). Rename the columns or pass field_map={column: field}.",
        UserWarning,
        stacklevel=stacklevel,
    )


def _missing_fields(engine: "Engine", model_id: str, columns: set[str], field_map: dict[str, str] | None) -> list[str]:
    """The model's ``input.field_names`` that no column (directly or through a field map) provides."""
    if resolve(engine, model_id, endpoints=False).kind != "tree":
        return []  # a text model reads one text field: the "none" warning covers it
    try:
        stored = engine.models.config(deployments(engine).require_model_id(model_id))
    except (ApiError, AttributeError, TypeError):
        return []
    names = [str(f) for f in (stored.get("input") or {}).get("field_names") or []]
    maps = {**(stored.get("default_field_map") or {}), **(field_map or {})}
    missing = []
    for name in names:
        sources = [src for src, dest in maps.items() if dest == name]
        if not _column_present(columns, name) and not any(_column_present(columns, src) for src in sources):
            missing.append(name)
    return missing


def text_field_map(engine: "Engine", model_id: str, frame: pd.DataFrame,
                   field_map: dict[str, str] | None, *, from_dtypes: bool = False) -> dict[str, str] | None:
    """The ``field_map`` a text model's run uses: the given one; else, when the model's text field
    is not a column and the frame has exactly one text column, ``{that column: field}``. Several text
    columns raise a ValueError naming them; for other models the map is returned unchanged.

    The one rule of ``df.infer.run``, ``ddf.infer.run`` (decided once on the client from the Dask
    frame's ``_meta``, ``from_dtypes=True``: see :func:`text_columns`) and ``run_files`` /
    ``es-infer run`` (decided once from the first batch), so every partition and batch reads the
    same column."""
    if field_map is not None:
        return field_map
    field = resolve(engine, model_id).text_field()  # the backend names its one text field, if it reads one
    if field is None:
        return None
    columns = [str(c) for c in frame.columns]
    if _column_present(set(columns), field):
        return None
    texts = text_columns(frame, from_dtypes=from_dtypes)
    if len(texts) == 1:
        return {texts[0]: field}
    if len(texts) > 1:
        raise ValueError(
            f"model [{model_id}] reads the text field [{field}], which is not a column, and the frame has "
            f"{len(texts)} text columns ({', '.join(texts)}): pick one with field_map={{'{texts[0]}': '{field}'}}")
    return None


def text_columns(frame: pd.DataFrame, *, from_dtypes: bool = False) -> list[str]:
    """The frame's columns of strings. From the values (a sample of 1,000), or, ``from_dtypes=True``
    (an empty Dask ``_meta``), from the dtypes alone: the string-typed columns, else (no string
    dtype: dask's ``dataframe.convert-string`` off) the object columns."""
    if not from_dtypes:
        return [str(c) for c in frame.columns if _is_text(frame[c])]
    typed = [str(c) for c in frame.columns if _string_typed(frame[c])]
    if typed:
        return typed
    return [str(c) for c in frame.columns if not isinstance(frame[c], pd.DataFrame) and frame[c].dtype == object]


def _string_typed(column: pd.Series) -> bool:
    if isinstance(column, pd.DataFrame) or column.dtype == object:
        return False
    return bool(pd.api.types.is_string_dtype(column.dtype))


def _is_text(column: pd.Series) -> bool:
    """A column of strings (object / string dtype whose non-missing values are all str)."""
    if isinstance(column, pd.DataFrame):  # duplicated column names
        return False
    if not (pd.api.types.is_string_dtype(column.dtype) or column.dtype == object):
        return False
    values = column.dropna()
    sample = values.iloc[:1000]
    return len(sample) > 0 and all(isinstance(v, str) for v in sample)


def compute(
    engine: "Engine",
    model_id: str,
    *,
    inference_config: dict[str, Any] | None,
    field_map: dict[str, str] | None,
    target_field: str | None,
    batch_size: int | None,
    device: str | None,
    progress: bool | None,
    input_output: dict[str, str] | list[dict[str, str]] | None,
    precision: str | None = None,
) -> tuple[Callable[[pd.DataFrame], pd.DataFrame], bool]:
    """The function mapping rows to their result columns, and whether an interrupted run's
    finished rows are a prefix (so that a resume can skip them)."""
    if not isinstance(model_id, str) or not model_id:
        raise TypeError(f"model_id must be a non-empty str, found {type(model_id).__name__}")
    desc = f"infer {model_id}"
    if resolve(engine, model_id).kind == "endpoint":  # an _inference endpoint id
        def endpoint(frame: pd.DataFrame) -> pd.DataFrame:
            with reporting(RunProgress(len(frame), desc, show=progress)):
                return endpoint_chunks(engine, model_id, frame, input_output=input_output, field_map=field_map,
                                        target_field=target_field, progress=progress)

        return endpoint, True
    if input_output is not None:
        if target_field is not None or field_map is not None:
            raise ValueError("input_output cannot be combined with target_field or field_map; name the "
                             "result columns with output_field")

        def io(frame: pd.DataFrame) -> pd.DataFrame:
            with reporting(RunProgress(len(frame), desc, show=progress)):
                return resolve(engine, model_id).infer_frame(frame, input_output=input_output,
                                                             inference_config=inference_config, device=device,
                                                             progress=progress, precision=precision)

        return io, isinstance(input_output, dict) or len(input_output) == 1

    def model(frame: pd.DataFrame) -> pd.DataFrame:
        kwargs: dict[str, Any] = {"inference_config": inference_config, "field_map": field_map,
                                  "target_field": target_field, "batch_size": batch_size, "device": device}
        if progress is not None:
            kwargs["progress"] = progress
        if precision is not None:  # the backend's default otherwise
            kwargs["precision"] = precision
        with reporting(RunProgress(len(frame), desc, show=progress)):
            results = resolve(engine, model_id).infer_frame(frame, **kwargs)
        if len(results) != len(frame):  # pragma: no cover - a runner bug, never the user's
            raise RuntimeError(f"model [{model_id}] returned {len(results)} rows for {len(frame)} input rows")
        return results

    return model, True


def run_frame(
    engine: "Engine",
    frame: pd.DataFrame,
    model_id: str,
    *,
    inference_config: dict[str, Any] | None = None,
    field_map: dict[str, str] | None = None,
    target_field: str | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    progress: bool | None = None,
    input_output: dict[str, str] | list[dict[str, str]] | None = None,
    precision: str | None = None,
    inplace: bool = False,
    stacklevel: int = 2,
) -> pd.DataFrame | None:
    """``df.infer.run``: the frame with the model's result columns (``None`` with ``inplace``),
    interruptible and resumable (:mod:`.resume`). Warnings about the frame's columns point
    ``stacklevel`` frames up, as :func:`warnings.warn`'s (2: the caller)."""
    if input_output is None:
        field_map = text_field_map(engine, model_id, frame, field_map)
    rows_to_results, prefix = compute(engine, model_id, inference_config=inference_config, field_map=field_map,
                                      target_field=target_field, input_output=input_output, precision=precision,
                                      batch_size=batch_size, device=device, progress=progress)
    if input_output is None:
        check_fields(engine, model_id, frame, field_map, stacklevel=stacklevel + 1)

    def finish(results: pd.DataFrame, final: bool) -> pd.DataFrame | None:
        in_place = inplace and final  # an interrupted run's partial never touches the caller's frame
        target = frame if in_place else frame.copy(deep=not _PANDAS_COW)
        for name in results.columns:
            # positional: the runner keeps the caller's row order (duplicate labels allowed)
            target[name] = results[name].array
        return None if in_place else target

    return run_resumable(frame, rows_to_results, finish, prefix=prefix, what=f"model [{model_id}]",
                         key=(model_id, frame.index))


_PANDAS_COW = int(pd.__version__.split(".")[0]) >= 3
ENDPOINT_PROGRESS_MIN_ROWS = 10_000
NOT_REACHED = "not inferred: the run was interrupted"


def endpoint_chunks(engine: "Engine", inference_id: str, frame: pd.DataFrame, *, input_output: Any,
                     field_map: dict[str, str] | None, target_field: str | None,
                     progress: bool | None) -> pd.DataFrame:
    """An inference endpoint over the frame, ``CHUNK`` rows per step, with a rows/s bar; Ctrl-C
    keeps the finished steps (``InferenceInterrupted`` with the rows done)."""
    backend = resolve(engine, inference_id)
    n = len(frame)
    done: pd.DataFrame | None = None
    bar = current_progress() if progress is not False else None
    try:
        chunk = endpoint_frames.CHUNK
        for start in range(0, max(n, 1), chunk):
            part = backend.infer_frame(frame.iloc[start:start + chunk], input_output=input_output,
                                       field_map=field_map, target_field=target_field, progress=False)
            done = combine_results(done, part)
            if bar is not None:
                bar.advance(len(part))
    except KeyboardInterrupt:
        k = 0 if done is None else len(done)
        if isinstance(input_output, (dict, list)) and input_output:
            first = input_output if isinstance(input_output, dict) else input_output[0]
            error = f"{first['output_field']}.error"
        else:
            error = f"{target_prefix(target_field)}.predicted_value.error"
        rest = pd.DataFrame({error: pd.Series([NOT_REACHED] * (n - k), index=frame.index[k:], dtype=object)})
        raise InferenceInterrupted(k, n, combine_results(done, rest)) from None
    assert done is not None
    return done


def is_endpoint(engine: "Engine", model_id: Any) -> bool:
    return isinstance(model_id, str) and resolve(engine, model_id).kind == "endpoint"


def endpoint_field(field_map: dict[str, str] | None) -> str:
    return next((src for src, dest in (field_map or {}).items() if dest == DEFAULT_INPUT_FIELD), DEFAULT_INPUT_FIELD)


def task_and_fields(engine: "Engine", model_id: str) -> tuple[str, list[str]]:
    """A model's inference task (``regression`` / ``classification``) and its input fields."""
    stored = engine.models.config(deployments(engine).require_model_id(model_id))
    task = next(iter(stored.get("inference_config") or {}), None)
    if task not in ("regression", "classification"):
        raise ApiError("status_exception", f"Model [{model_id}] is a [{task}] model; feature importance needs a "
                       "regression or classification model", 400)
    return task, model_input_fields(engine, model_id) or []


def series_field(engine: "Engine", model_id: str) -> str:
    """The field a Series stands for in ``series.infer.run(model_id)``: the model's first input field."""
    dep = deployments(engine).get(model_id)  # a deployment id names its model's input field
    if dep is not None:
        model_id = dep.model_id
    resp = engine.request("GET", f"_ml/trained_models/{model_id}")
    resp.raise_for_status()
    configs = (resp.body or {}).get("trained_model_configs") or []
    if not configs:
        raise ApiError("resource_not_found_exception", f"Could not find trained model [{model_id}]", 404)
    fields = (configs[0].get("input") or {}).get("field_names") or []
    if not fields:
        raise ApiError(
            "illegal_argument_exception",
            f"Model [{model_id}] declares no input.field_names; pass field= to name the Series' field",
            400,
        )
    return str(fields[0])
