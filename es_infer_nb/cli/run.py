"""``es-infer run``: a model or pipeline over data files, streamed (listed in ``es_infer_nb.cli.SUBCOMMANDS``)::

    es-infer run --model my-regressor --input rows.parquet --output scored.parquet
    es-infer run --pipeline pipeline.json --input docs.jsonl --output out.jsonl --batch-size 20000
    es-infer run --pipeline my-stored-pipeline --input part-*.csv --output out.parquet --home ~/models
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ApiError
from ..files.run import FilesInterrupted, run_files
from . import RunError, UsageError, _engine, _one_line


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run a model or an ingest pipeline over Parquet / CSV / JSONL files, in bounded memory",
        description="Stream the rows of --input (files or folders; .parquet, .csv, .jsonl) through a trained "
        "model (--model, as df.infer.run) or an ingest pipeline (--pipeline, as df.infer.pipeline) and write "
        "each batch's results to --output (.parquet, .csv or .jsonl) as it finishes. Ctrl-C keeps the "
        "finished batches in --output (exit 130).",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", "-m", metavar="ID", help="trained model id, alias, deployment or _inference endpoint id")
    what.add_argument("--pipeline", "-p", metavar="FILE|ID", help="a pipeline body (.json file) or a stored pipeline id")
    p.add_argument("--input", "-i", required=True, nargs="+", metavar="FILE", help="input files or folders")
    p.add_argument("--output", "-o", required=True, metavar="FILE", help="output file (.parquet, .csv or .jsonl)")
    p.add_argument("--batch-size", "-b", type=int, default=100_000, metavar="N", help="rows per batch (default 100000)")
    p.add_argument("--inference-config", metavar="JSON", help="--model only: an inference_config update (JSON)")
    p.add_argument("--target-field", metavar="FIELD", help="--model only: prefix of the result columns")
    p.add_argument("--device", metavar="DEVICE", help="cpu, cuda, cuda:1... (default: the engine's)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary on stderr")
    p.add_argument("--home", metavar="DIR", help="the engine's state folder (default: $ES_INFER_NB_HOME, else memory)")
    p.set_defaults(func=cmd_run)


def _pipeline(value: str, engine: Any) -> Any:
    path = Path(value)
    if value in engine.pipelines and not path.is_file():
        return value
    if path.suffix.lower() == ".json" or path.is_file():
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise UsageError(f"--pipeline: cannot read [{value}]: {err.strerror}") from None
        except json.JSONDecodeError as err:
            raise UsageError(f"--pipeline: [{value}] is not JSON ({err.msg}, line {err.lineno})") from None
        if not isinstance(body, dict):
            raise UsageError(f"--pipeline: [{value}] must hold a pipeline object ({{\"processors\": [...]}})")
        return body
    raise UsageError(f"--pipeline: [{value}] is neither a .json file nor a stored pipeline id")


def cmd_run(args: argparse.Namespace) -> int:
    engine = _engine(args.home)
    options: dict[str, Any] = {}
    if args.pipeline is not None and (args.inference_config or args.target_field):
        raise UsageError("--inference-config and --target-field go with --model")
    if args.inference_config:
        try:
            options["inference_config"] = json.loads(args.inference_config)
        except json.JSONDecodeError as err:
            raise UsageError(f"--inference-config is not JSON ({err.msg})") from None
    if args.target_field is not None:
        options["target_field"] = args.target_field
    pipeline = _pipeline(args.pipeline, engine) if args.pipeline is not None else None
    try:
        summary = run_files(args.input, args.output, model=args.model, pipeline=pipeline, engine=engine,
                            batch_size=args.batch_size, progress=not args.quiet, device=args.device, **options)
    except FilesInterrupted as err:
        print(f"{'es-infer'}: {err.args[0]}", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(_one_line(str(err))) from None
    except Exception as err:  # noqa: BLE001 - ApiError and model failures: one line, exit 1
        if isinstance(err, ApiError):
            raise RunError(_one_line(str(err))) from None
        raise
    if not args.quiet:
        print(f"es-infer run: {summary.rows} rows in {summary.batches} batches, {summary.seconds:.1f} s "
              f"({summary.rows_per_second:,.0f} rows/s) -> {summary.output}", file=sys.stderr)
    return 0
