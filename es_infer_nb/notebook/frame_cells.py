"""``%%infer --df NAME --model ID | --pipeline [ID]``: a model or pipeline over a notebook DataFrame.

::

    %%infer --df reviews --model sentiment --out scored
    {"inference_config": {"classification": {"num_top_classes": 2}}, "target_field": "pred"}

    %%infer --df reviews --pipeline enrich --out enriched      # a stored pipeline

    %%infer --df reviews --pipeline --out enriched             # a pipeline body in the cell
    {"processors": [{"inference": {"model_id": "sentiment"}}]}

With ``--model`` the cell may hold the ``inference`` processor's options, named as in its
JSON (``inference_config``, ``field_map``, ``target_field``, ``input_output``); the rows run
through ``frames.run.run_frame`` (as ``df.infer.run``). With ``--pipeline`` the rows run through
``frames.pipeline.run_frame_pipeline`` (as ``df.infer.pipeline``); the notebook's device, batch size
and progress (``%config InferMagic``) are their parameters.
Every mistake (unknown variable, not a DataFrame, a body that is not JSON, what
Elasticsearch would reject) is one line (an IPython ``UsageError``); the engine and the
notebook's variables are left as they were.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
from IPython.core.error import UsageError

from ..errors import ApiError, InferenceInterrupted
from .console import ConsoleError, parse_body
from .options import options

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["MODEL_OPTIONS", "frame_body", "lookup_frame", "run_frame_cell"]

#: the ``inference`` processor options a ``--model`` cell may set (ES JSON names)
MODEL_OPTIONS = ("inference_config", "field_map", "target_field", "input_output")


def lookup_frame(name: str, namespace: Mapping[str, Any]) -> pd.DataFrame:
    if not name.isidentifier():
        raise UsageError(f"--df needs the name of a DataFrame variable, got {name!r}")
    if name not in namespace:
        close = [n for n in namespace if isinstance(namespace[n], pd.DataFrame) and not n.startswith("_")]
        hint = f" (DataFrames in the notebook: {', '.join(sorted(close)[:8])})" if close else ""
        raise UsageError(f"--df {name}: no variable named {name!r} in the notebook{hint}")
    value = namespace[name]
    if isinstance(value, pd.Series):
        raise UsageError(f"--df {name}: {name} is a Series; pass a DataFrame, e.g. {name}.to_frame('text_field')")
    if not isinstance(value, pd.DataFrame):
        raise UsageError(f"--df {name}: {name} is a {type(value).__name__}, not a pandas DataFrame")
    return value


def frame_body(cell: str | None, namespace: Mapping[str, Any], *, substitute: bool) -> Any:
    if cell is None:
        return None
    try:
        return parse_body(cell, namespace, line_offset=1, substitute=substitute)
    except ConsoleError as exc:
        raise UsageError(str(exc)) from None


def _model_options(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise UsageError(f"the cell of a --model run holds an object of {', '.join(MODEL_OPTIONS)}; "
                         f"got a {type(body).__name__}")
    unknown = sorted(set(body) - set(MODEL_OPTIONS))
    if unknown:
        raise UsageError(f"unknown option(s) {', '.join(unknown)} in the cell; a --model run takes "
                         f"{', '.join(MODEL_OPTIONS)} (as in the ES inference processor)")
    return dict(body)


def _interrupted(exc: InferenceInterrupted, out: str | None, shell: Any) -> UsageError:
    where = "the finished rows are in exc.partial"
    if out:
        shell.user_ns[out] = exc.partial
        exc._out_name = out  # type: ignore[attr-defined]  # where %infer resume puts the full result
        where = f"{out} holds the finished rows"
    again = f"%infer resume --out {out}" if out else "%infer resume --out NAME"
    return UsageError(f"interrupted after {exc.rows_done} of {exc.rows_total} rows; {where}; "
                      f"{again} runs the remaining rows")


def _run_options() -> dict[str, Any]:
    """The notebook's defaults for a run (``%config InferMagic``): batch size, device, progress."""
    return {"batch_size": options.batch_size, "device": options.device, "progress": options.progress}


def call_frame(run: Any, out: str | None, shell: Any) -> Any:
    """``run()`` with user mistakes as one-line ``UsageError``s and warnings as one line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = run()
        except ApiError as exc:
            raise UsageError(f"{exc.status} {exc.type}: {exc.reason}") from None
        except InferenceInterrupted as exc:
            raise _interrupted(exc, out, shell) from None
        except (KeyError, ValueError) as exc:  # the accessors' messages for bad arguments
            text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise UsageError(str(text)) from None
        finally:
            for w in caught:
                print(f"{w.category.__name__}: {w.message}", file=sys.stderr)
    return result


def run_frame_cell(
    shell: Any,
    args: Any,
    cell: str | None,
    namespace: Mapping[str, Any],
    engine: "Engine",
    out: str | None,
) -> pd.DataFrame | None:
    """Run ``--model`` or ``--pipeline`` over the ``--df`` frame; store it in ``out``; return it."""
    if args.df is None:
        raise UsageError("--model / --pipeline run over a DataFrame: add --df NAME")
    if (args.model is None) == (args.pipeline is None):
        raise UsageError("give one of --model ID (a trained model or inference endpoint) or --pipeline [ID]")
    from ..frames import pipeline as frames_pipeline  # the model code loads on first use
    from ..frames import run as frames_run

    frame = lookup_frame(args.df, namespace)
    body = frame_body(cell, namespace, substitute=not args.no_vars)
    if args.model is not None:
        opts = _model_options(body)
        result = call_frame(lambda: frames_run.run_frame(engine, frame, args.model, **opts, **_run_options()), out, shell)
    elif args.pipeline:
        if body is not None:
            raise UsageError(f"--pipeline {args.pipeline} runs the stored pipeline; leave the cell empty, or give "
                             "--pipeline without an id to run the pipeline body written in the cell")
        result = call_frame(lambda: frames_pipeline.run_frame_pipeline(engine, frame, args.pipeline, device=options.device),
                            out, shell)
    else:
        if not isinstance(body, dict):
            raise UsageError("--pipeline without an id runs the pipeline body in the cell: "
                             '{"processors": [...]}; the cell is empty' if body is None else
                             f"a pipeline body is a JSON object, got a {type(body).__name__}")
        result = call_frame(lambda: frames_pipeline.run_frame_pipeline(engine, frame, body, device=options.device),
                            out, shell)
    if out:
        shell.user_ns[out] = result
    return None if args.quiet else result
