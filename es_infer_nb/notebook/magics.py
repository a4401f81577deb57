"""``%%infer`` / ``%infer``: Kibana Dev Tools console requests in a notebook cell.

``%load_ext es_infer_nb`` registers one :class:`InferMagic` (a ``Magics`` class that is
also a traitlets ``Configurable``, built the way jupysql builds ``%sql``)::

    %%infer --out model
    PUT _ml/trained_models/{{model_id}}
    {"input": {"field_names": ["x"]}, "inference_config": {"regression": {}}, ...}

    POST _ml/trained_models/{{model_id}}/_infer
    {"docs": [{"x": 0.2}]}

Every request goes through the engine's ``request()`` and its answer is displayed as a
status-coloured header (2xx green, 4xx amber, 5xx red) over the body as a collapsed JSON tree
(HTML, big objects and arrays closed, a row limit with "… N more"), indented text elsewhere. A
failing request shows ``status type: reason`` and its error body, never a traceback, and the
cell goes on with the next request (``--stop-on-error`` stops instead). ``--out NAME`` (or
``NAME <<`` on the magic line or the cell's first line) stores the last response body, and
``_`` holds it after the cell (the displays cut long bodies; ``_`` never does).

Line mode summarises the engine's state as DataFrames: ``%infer models [ids]``,
``%infer stats [ids]`` (``--widget``: the live model-stats dashboard of
``es_infer_nb.widgets``), ``%infer pipelines [ids]``, ``%infer endpoints [ids]``;
``%infer GET <path>`` runs one request; ``%infer resume`` continues the last interrupted
``df.infer`` run; ``%infer export ID [--console]`` gives the PUT body (or Kibana console snippet) that
takes a model, pipeline or endpoint to a cluster, secrets as placeholders.

DataFrames (:mod:`es_infer_nb.notebook.frame_cells`)::

    %%infer --df reviews --model sentiment --out scored
    {"inference_config": {"classification": {"num_top_classes": 2}}}

    %%infer --df reviews --pipeline enrich --out enriched

Options (``%config InferMagic.<name> = value``; ``%config InferMagic`` lists them):
``home`` (engine home directory; ``None`` = :func:`es_infer_nb.default_engine`),
``device``, ``batch_size``, ``progress`` (defaults for ``df.infer.run`` in this notebook;
``device`` also applies to the models the magic's requests run), ``short_errors``
(``ApiError`` / ``InferenceInterrupted`` raised in any cell shown as one line).
"""

from __future__ import annotations

import difflib
import http
import json
import re
import warnings
from collections import ChainMap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, needs_local_scope, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import Bool, Integer, TraitError, Unicode, observe, validate
from traitlets.config.configurable import Configurable

from .. import engine as engine_module
from ..engine import default_engine
from ..errors import ApiError
from ..frames.resume import last_interrupted
from ..widgets.json_view import console_html, console_text
from . import short_errors as _short_errors
from .console import METHODS, ConsoleError, ConsoleRequest, parse_console
from .frame_cells import call_frame, run_frame_cell
from .options import options

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine, Response

__all__ = ["ConsoleResult", "InferMagic", "load_ipython_extension", "unload_ipython_extension", "short_error"]

_ASSIGN = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*<<\s*(?P<rest>.*)$", re.DOTALL)
#: the most lines of a body's plain-text display / rows of its HTML tree (the rest: "… N more")
TEXT_LINES = 60
TREE_ROWS = 400


def short_error(status: int, body: Any) -> str:
    """``404 resource_not_found_exception: Could not find trained model [x]`` for an ES error body."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        causes = err.get("root_cause") or []
        etype, reason = err.get("type"), err.get("reason")
        if (etype is None or reason is None) and causes and isinstance(causes[0], dict):
            etype, reason = causes[0].get("type"), causes[0].get("reason")
        return f"{status} {etype}: {reason}"
    if isinstance(err, str):
        return f"{status} {err}"
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    return f"{status} {phrase}"


class ConsoleResult:
    """One answered console request, shown like Kibana: a status-coloured header and the JSON body.

    Displays as ``text/html`` (:func:`es_infer_nb.widgets.json_view.console_html`: the header
    coloured by status class, 2xx green / 4xx amber / 5xx red, and the body as a collapsed tree,
    big objects and arrays closed, at most :data:`TREE_ROWS` rows drawn) and ``text/plain``
    (``# GET path  200 OK`` then the indented JSON, cut after :data:`TEXT_LINES` lines). The full
    body stays whole in :attr:`body`, in ``_`` after the cell, and in ``--out NAME``.
    ``application/json`` (JupyterLab's own tree) only when a front-end asks for it by name.
    """

    def __init__(self, request: ConsoleRequest, response: "Response") -> None:
        self.request = request
        self.status = response.status
        self.body = response.body
        self.ok = response.ok

    @property
    def header(self) -> str:
        what = f"{self.request.method} {self.request.path}"
        return f"{what}  {self.status_text}".rstrip()

    @property
    def status_text(self) -> str:
        """``200 OK`` / ``404 resource_not_found_exception: ...``."""
        if self.ok:
            try:
                phrase = http.HTTPStatus(self.status).phrase
            except ValueError:
                phrase = ""
            return f"{self.status} {phrase}".rstrip()
        return short_error(self.status, self.body)

    def text(self) -> str:
        return console_text(self.header, self.body, max_lines=TEXT_LINES,
                            more_hint=" (the whole body: _ after the cell, or --out NAME)")

    def html(self) -> str:
        note = self.status_text.split(" ", 1)[1] if " " in self.status_text else ""
        return console_html(f"{self.request.method} {self.request.path}", self.status, self.body, note=note,
                            max_rows=TREE_ROWS)

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": self.text(), "text/html": self.html()}
        if include and "application/json" in include and isinstance(self.body, (dict, list)):
            bundle["application/json"] = self.body
        return bundle

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def __repr__(self) -> str:
        return self.text()


def _joined_ids(words: list[str]) -> str | None:
    ids = [part for word in words for part in word.split(",") if part]
    return ",".join(ids) if ids else None


def _ms_to_time(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return pd.Timestamp(int(value), unit="ms", tz="UTC")
    return pd.NaT


def _processor_models(processors: list[Any]) -> list[str]:
    """Model ids named by ``inference`` / ``ml_inference`` processors, including nested ``on_failure``."""
    found: list[str] = []
    for proc in processors or []:
        if not isinstance(proc, dict):
            continue
        for ptype, conf in proc.items():
            if not isinstance(conf, dict):
                continue
            if ptype in ("inference", "ml_inference") and isinstance(conf.get("model_id"), str):
                found.append(conf["model_id"])
            found += _processor_models(conf.get("on_failure") or [])
            if ptype == "foreach" and isinstance(conf.get("processor"), dict):
                found += _processor_models([conf["processor"]])
    return list(dict.fromkeys(found))


@magics_class
class InferMagic(Magics, Configurable):
    """Run Elasticsearch ML requests (Kibana console syntax) against the local engine."""

    home = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Engine home directory (models and pipelines persist there). Setting it makes that engine "
        "the default one (also for df.infer); None: es_infer_nb.default_engine().",
    )
    device = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Device models run on ('cpu', 'cuda', 'cuda:1', ...) for the magic's requests and df.infer; "
        "None: the engine's device.",
    )
    batch_size = Integer(
        None, allow_none=True, config=True, help="Rows per model call for df.infer (None: the model's choice)."
    )
    progress = Bool(
        None, allow_none=True, config=True, help="The progress bar of df.infer calls (None: shown after ~2 s; False: never)."
    )
    short_errors = Bool(
        True,
        config=True,
        help="Show an es_infer_nb.ApiError or InferenceInterrupted raised in any cell as one line, without a "
        "traceback (as jupysql's short_errors).",
    )

    _home_engine: "Engine | None" = None  # the engine built for ``home`` (class default: none)

    def __init__(self, shell: Any) -> None:
        # As jupysql: Configurable, then Magics, then make sure %config can reach us. Our own
        # section of the shell's config is applied key by key, so that one bad value (left in
        # the shell's config by an earlier `%config InferMagic.batch_size = -5`, or written in
        # ipython_config.py) is reported and skipped instead of breaking %load_ext.
        config = shell.config.copy()
        wanted = dict(config.pop(type(self).__name__, None) or {})
        Configurable.__init__(self, config=config)
        Magics.__init__(self, shell=shell, config=config)
        if not any(c is self for c in self.shell.configurables):
            self.shell.configurables.append(self)
        for name, value in wanted.items():
            if name not in self._option_names():
                warnings.warn(f"InferMagic has no option {name!r} (options: {', '.join(self._option_names())})",
                              stacklevel=2)
                continue
            try:
                setattr(self, name, value)
            except TraitError as exc:
                warnings.warn(f"ignoring InferMagic.{name} = {value!r}: {exc}", stacklevel=2)
        self._commands: dict[str, Callable[..., pd.DataFrame]] = {
            "models": self.models_frame,
            "stats": self.stats_frame,
            "pipelines": self.pipelines_frame,
            "endpoints": self.endpoints_frame,
        }
        self._sync_options()
        self._install_home()
        self._sync_short_errors()

    # -- configuration -------------------------------------------------------------------
    def _option_names(self) -> list[str]:
        return sorted(self.class_trait_names(config=True))

    @validate("batch_size")
    def _valid_batch_size(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and value <= 0:
            raise TraitError(f"batch_size must be a positive integer or None, got {value}")
        return value

    @validate("device")
    def _valid_device(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is None:
            return None
        value = value.strip()
        try:
            import torch

            torch.device(value)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise TraitError(
                f"device must be a torch device such as 'cpu' or 'cuda:0', got {value!r} ({exc})"
            ) from None
        return value

    @validate("home")
    def _valid_home(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and not value.strip():
            raise TraitError("home must be a directory path or None")
        return value

    @observe("device", "batch_size", "progress")
    def _options_changed(self, change: Any) -> None:
        self._sync_options()

    @observe("home")
    def _home_changed(self, change: Any) -> None:
        self._install_home()

    @observe("short_errors")
    def _short_errors_changed(self, change: Any) -> None:
        self._sync_short_errors()

    def _sync_short_errors(self) -> None:
        if self.short_errors:
            _short_errors.install()
        else:
            _short_errors.uninstall()

    def _sync_options(self) -> None:
        options.device = self.device
        options.batch_size = self.batch_size
        options.progress = self.progress

    def _install_home(self) -> None:
        if self.home is None:
            if self._home_engine is not None and engine_module.current_default_engine() is self._home_engine:
                engine_module.set_default_engine(None)
            self._home_engine = None
            return
        if self._home_engine is not None and str(self._home_engine.home) == str(_expand(self.home)):
            return
        self._home_engine = engine_module.Engine(self.home)
        engine_module.set_default_engine(self._home_engine)

    @property
    def engine(self) -> "Engine":
        """The engine the magic talks to: the ``home`` one, else the default engine."""
        if self._home_engine is not None:
            return self._home_engine

        return default_engine()

    def _send(self, engine: "Engine", req: ConsoleRequest) -> "Response":
        """One console request, with the magic's device as the call's (the engine's own is never changed);
        an engine passed with ``--engine`` gets no ``device`` argument when the magic names none."""
        if self.device is None:
            return engine.request(req.method, req.path, req.body)
        return engine.request(req.method, req.path, req.body, device=self.device)

    # -- the magic -----------------------------------------------------------------------
    @needs_local_scope
    @no_var_expand
    @line_cell_magic("infer")
    @magic_arguments()
    @argument(
        "command",
        nargs="*",
        help="Line mode only: 'models [ids]', 'stats [ids]', 'pipelines [ids]', 'endpoints [ids]' (a DataFrame "
        "summary), 'resume' (finish the last interrupted df.infer run), 'export ID' (the PUT that takes a model, "
        "pipeline or endpoint to a cluster; --console: as a Kibana console snippet), or one request 'METHOD path'.",
    )
    @argument("-o", "--out", metavar="NAME", help="Store the last response body (line mode: the result) in NAME.")
    @argument("--df", metavar="NAME", help="Run --model or --pipeline over the DataFrame in notebook variable NAME.")
    @argument(
        "--model",
        metavar="ID",
        help="With --df: the trained model, deployment or inference endpoint to run (df.infer.run); the cell may "
        "hold {\"inference_config\": ..., \"field_map\": ..., \"target_field\": ..., \"input_output\": ...}.",
    )
    @argument(
        "--pipeline",
        metavar="ID",
        nargs="?",
        const="",
        help="With --df: the stored ingest pipeline to run (df.infer.pipeline); without ID, the pipeline body "
        "written in the cell.",
    )
    @argument("--widget", action="store_true", help="With 'stats': the live model-stats dashboard (ipywidgets).")
    @argument("--console", action="store_true",
              help="With 'export ID': a Kibana Dev Tools console snippet instead of the JSON body.")
    @argument("--kind", choices=("model", "pipeline", "endpoint"),
              help="With 'export ID': which one, when a model, pipeline or endpoint share the id.")
    @argument("-q", "--quiet", action="store_true", help="Do not display the responses.")
    @argument(
        "--stop-on-error",
        action="store_true",
        help="Stop at the first failing request and fail the cell (default: show the error, go on).",
    )
    @argument("--no-vars", action="store_true", help="Do not replace {{name}} / ${name} placeholders.")
    @argument("-e", "--engine", metavar="VAR", help="Use the es_infer_nb.Engine in notebook variable VAR.")
    def infer(self, line: str = "", cell: str | None = None, local_ns: dict[str, Any] | None = None) -> Any:
        """Run Elasticsearch ML requests written in Kibana Dev Tools console syntax.

        Cell mode: each request is a ``METHOD path`` line followed by an optional JSON
        body; ``#`` and ``//`` comments, triple-quoted strings and ndjson bodies (``_bulk``)
        work as in Kibana; ``{{name}}`` / ``${name}`` insert notebook variables. Every
        response is displayed; ``--out NAME`` (or ``NAME <<``) keeps the last body.

        DataFrames: ``%%infer --df NAME --model ID`` runs a model or inference endpoint over
        the frame (the cell may hold ``inference_config`` / ``field_map`` / ``target_field`` /
        ``input_output``), ``--pipeline ID`` a stored pipeline, ``--pipeline`` alone the
        pipeline body in the cell; ``--out NAME`` keeps the resulting frame.

        Line mode: ``%infer models [ids]``, ``%infer stats [ids]`` (``--widget``: live
        dashboard), ``%infer pipelines [ids]``, ``%infer endpoints [ids]`` return a
        DataFrame summary; ``%infer resume`` finishes the last interrupted ``df.infer`` run;
        ``%infer export ID [--console]`` the cluster-ready PUT of a model, pipeline or endpoint;
        ``%infer GET path`` runs one request.
        """
        namespace = ChainMap(local_ns or {}, self.shell.user_ns)
        line, assign = self._split_assignment(line)
        if cell is not None and assign is None:
            cell, assign = self._cell_assignment(cell)
        args = parse_argstring(self.infer, line)
        out = args.out or assign
        if args.out and assign and args.out != assign:
            raise UsageError(f"two result names given: --out {args.out} and {assign} <<")
        if out is not None and not out.isidentifier():
            raise UsageError(f"--out needs a Python variable name, got {out!r}")
        engine = self._pick_engine(args.engine, namespace)
        if args.df is not None or args.model is not None or args.pipeline is not None:
            if args.command:
                raise UsageError(f"unexpected argument(s) with --df: {' '.join(args.command)!r}")
            # the device, batch size and progress reach frames/ as parameters (the notebook options)
            return run_frame_cell(self.shell, args, cell, namespace, engine, out)
        if cell is None:
            return self._line(args, out, engine, namespace)
        if args.command:
            raise UsageError(
                f"unexpected argument(s) on the %%infer line: {' '.join(args.command)!r}; "
                "requests go in the cell body, options are listed by %%infer?"
            )
        try:
            requests = parse_console(cell, namespace, line_offset=1, substitute=not args.no_vars)
        except ConsoleError as exc:
            raise UsageError(str(exc)) from None
        results = self._run_requests(requests, engine, out, quiet=args.quiet, stop_on_error=args.stop_on_error)
        self._keep_last(results)
        return None

    @staticmethod
    def _split_assignment(line: str) -> tuple[str, str | None]:
        m = _ASSIGN.match(line or "")
        if m is None:
            return line or "", None
        return m.group("rest"), m.group("name")

    @staticmethod
    def _cell_assignment(cell: str) -> tuple[str, str | None]:
        first, sep, rest = cell.partition("\n")
        m = _ASSIGN.match(first)
        if m is None:
            return cell, None
        # keep the line (blank or the request written after <<) so line numbers stay right
        return m.group("rest") + sep + rest, m.group("name")

    def _pick_engine(self, name: str | None, namespace: Any) -> "Engine":
        if name is None:
            return self.engine
        if name not in namespace:
            raise UsageError(f"--engine {name}: no such variable in the notebook")
        engine = namespace[name]
        if not callable(getattr(engine, "request", None)):
            raise UsageError(f"--engine {name}: {type(engine).__name__} is not an es_infer_nb.Engine")
        return engine

    def _run_requests(
        self, requests: list[ConsoleRequest], engine: "Engine", out: str | None, *, quiet: bool, stop_on_error: bool
    ) -> list[ConsoleResult]:
        results: list[ConsoleResult] = []
        for req in requests:
            response = self._send(engine, req)
            result = ConsoleResult(req, response)
            results.append(result)
            if out:
                self.shell.user_ns[out] = response.body
            if not quiet or (stop_on_error and not result.ok):
                display(result)
            if stop_on_error and not result.ok:
                skipped = len(requests) - len(results)
                raise UsageError(
                    f"line {req.line}: {req.method} {req.path} failed: {short_error(response.status, response.body)}"
                    + (f" ({skipped} request(s) not run)" if skipped else "")
                )
        return results

    def _keep_last(self, results: list[ConsoleResult]) -> None:
        """The last answer's whole body as ``_`` (what the displays cut stays at hand), as if the cell returned it."""
        hook = getattr(self.shell, "displayhook", None)
        if results and hook is not None and hasattr(hook, "update_user_ns"):
            hook.update_user_ns(results[-1].body)

    # -- line mode -----------------------------------------------------------------------
    def _line(self, args: Any, out: str | None, engine: "Engine", namespace: Any) -> Any:
        if not args.command:
            raise UsageError(self._usage("%infer needs a command"))
        name, *rest = args.command
        if name.upper() in METHODS:
            if len(rest) != 1:
                raise UsageError("a one-line request is '%infer METHOD path'; use %%infer for a request with a body")
            try:
                (req,) = parse_console(f"{name} {rest[0]}", namespace, substitute=not args.no_vars)
            except ConsoleError as exc:
                raise UsageError(str(exc)) from None
            self._keep_last(self._run_requests([req], engine, out, quiet=args.quiet, stop_on_error=args.stop_on_error))
            return None
        if name.lower() == "export":
            return self._export(rest, args, out, engine)
        if args.console or args.kind:
            raise UsageError("--console and --kind go with 'export ID'")
        if name.lower() == "resume":
            if rest:
                raise UsageError("%infer resume takes no ids; it finishes the last interrupted df.infer run")
            return self._resume(out, args.quiet)
        command = self._commands.get(name.lower())
        if command is None:
            close = difflib.get_close_matches(name.lower(), [*self._commands, "resume", "export"], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UsageError(self._usage(f"unknown %infer command {name!r}.{hint}"))
        if args.widget:
            if name.lower() != "stats":
                raise UsageError(f"--widget goes with 'stats' (the model-stats dashboard), not {name!r}")
            return self._stats_widget(rest, engine)
        frame = command(_joined_ids(rest), engine=engine)  # GET listings: no model runs, no device
        if out:
            self.shell.user_ns[out] = frame
        return None if args.quiet else frame

    def _export(self, words: list[str], args: Any, out: str | None, engine: "Engine") -> Any:
        """``%infer export ID [--console] [--kind K]``: the cluster-ready PUT of a model, pipeline or
        endpoint (:meth:`es_infer_nb.Engine.export`)."""
        if len(words) != 1:
            raise UsageError("%infer export takes one model, pipeline or endpoint id: %infer export ID [--console]")
        try:
            found = engine.export(words[0], console=args.console, kind=args.kind)
        except ApiError as exc:
            raise UsageError(f"export {words[0]}: {short_error(exc.status, exc.body())}") from None
        except ValueError as exc:
            raise UsageError(f"export {words[0]}: {exc}") from None
        if out:
            self.shell.user_ns[out] = found
        return None if args.quiet else found

    def _resume(self, out: str | None, quiet: bool) -> Any:
        stopped = last_interrupted()
        if stopped is None:
            raise UsageError("nothing to resume: no df.infer run was interrupted (or it was resumed to the end)")
        out = out or getattr(stopped, "_out_name", None)  # an interrupted `%infer --df ... --out r`: r
        result = call_frame(stopped.resume, out, self.shell)
        if out:
            self.shell.user_ns[out] = result
        return None if quiet else result

    @staticmethod
    def _stats_widget(words: list[str], engine: "Engine") -> Any:
        try:
            from ..widgets import model_stats  # ipywidgets: loaded when a widget is asked for
        except ImportError as exc:
            raise UsageError(f"--widget needs es_infer_nb.widgets and ipywidgets ({exc})") from None
        ids = _joined_ids(words)
        missing = [i for i in (ids.split(",") if ids else []) if "*" not in i and
                   not engine.request("GET", f"_ml/trained_models/{i}").ok]
        if missing:
            raise UsageError(f"404 resource_not_found_exception: Could not find trained model [{missing[0]}]")
        return model_stats(ids.split(",") if ids else None, engine=engine)

    def _usage(self, message: str) -> str:
        valid = ", ".join([*self._commands, "resume", "export"])
        return (
            f"{message} Valid commands: {valid} (each takes optional model or pipeline ids), "
            "or one request such as 'GET _ml/trained_models'; see %infer? for options."
        )

    @staticmethod
    def _get(engine: "Engine", path: str, params: dict[str, Any] | None = None) -> Any:
        response = engine.request("GET", path, params=params)
        if not response.ok:
            raise UsageError(f"GET {path}: {short_error(response.status, response.body)}")
        return response.body

    def models_frame(self, ids: str | None = None, *, engine: "Engine | None" = None) -> pd.DataFrame:
        """One row per trained model: id, type, task, input fields, description, tags, created, size."""
        engine = engine or self.engine
        body = self._get(engine, f"_ml/trained_models/{ids or '_all'}", {"size": 10000})
        rows = []
        for conf in body.get("trained_model_configs", []):
            inference = conf.get("inference_config") or {}
            rows.append(
                {
                    "model_id": conf.get("model_id"),
                    "model_type": conf.get("model_type"),
                    "task": next(iter(inference), None),
                    "input_fields": ", ".join(map(str, (conf.get("input") or {}).get("field_names", []))),
                    "description": conf.get("description"),
                    "tags": ", ".join(map(str, conf.get("tags") or [])),
                    "created": _ms_to_time(conf.get("create_time")),
                    "model_size_bytes": conf.get("model_size_bytes"),
                }
            )
        columns = [
            "model_id", "model_type", "task", "input_fields", "description", "tags", "created", "model_size_bytes",
        ]
        return pd.DataFrame(rows, columns=columns)

    def stats_frame(self, ids: str | None = None, *, engine: "Engine | None" = None) -> pd.DataFrame:
        """One row per model from ``_stats``: pipelines, inference counters, last access, deployment state."""
        engine = engine or self.engine
        body = self._get(engine, f"_ml/trained_models/{ids or '_all'}/_stats", {"size": 10000})
        rows = []
        for stat in body.get("trained_model_stats", []):
            inf = stat.get("inference_stats") or {}
            deployment = stat.get("deployment_stats") or {}
            rows.append(
                {
                    "model_id": stat.get("model_id"),
                    "pipeline_count": stat.get("pipeline_count"),
                    "inference_count": inf.get("inference_count"),
                    "failure_count": inf.get("failure_count"),
                    "missing_all_fields_count": inf.get("missing_all_fields_count"),
                    "cache_miss_count": inf.get("cache_miss_count"),
                    "last_access": _ms_to_time(inf.get("timestamp")),
                    "model_size_bytes": (stat.get("model_size_stats") or {}).get("model_size_bytes"),
                    "deployment_state": deployment.get("state"),
                }
            )
        columns = [
            "model_id", "pipeline_count", "inference_count", "failure_count", "missing_all_fields_count",
            "cache_miss_count", "last_access", "model_size_bytes", "deployment_state",
        ]
        return pd.DataFrame(rows, columns=columns)

    def pipelines_frame(self, ids: str | None = None, *, engine: "Engine | None" = None) -> pd.DataFrame:
        """One row per ingest pipeline: id, description, processor count and types, models used."""
        engine = engine or self.engine
        path = f"_ingest/pipeline/{ids}" if ids else "_ingest/pipeline"
        response = engine.request("GET", path)
        if not response.ok:
            if response.status == 404 and response.body in ({}, None):
                raise UsageError(f"GET {path}: 404 no pipeline matches [{ids}]")
            raise UsageError(f"GET {path}: {short_error(response.status, response.body)}")
        rows = []
        for pid, pipeline in (response.body or {}).items():
            processors = pipeline.get("processors") or []
            rows.append(
                {
                    "pipeline": pid,
                    "description": pipeline.get("description"),
                    "processors": len(processors),
                    "processor_types": ", ".join(
                        next(iter(p), "?") for p in processors if isinstance(p, dict)
                    ),
                    "models": ", ".join(_processor_models(processors)),
                    "version": pipeline.get("version"),
                }
            )
        columns = ["pipeline", "description", "processors", "processor_types", "models", "version"]
        return pd.DataFrame(rows, columns=columns)

    def endpoints_frame(self, ids: str | None = None, *, engine: "Engine | None" = None) -> pd.DataFrame:
        """One row per ``_inference`` endpoint: id, task type, service, model, url, chunking (never a secret)."""
        engine = engine or self.engine
        rows = []
        for inference_id in (ids.split(",") if ids else ["_all"]):
            body = self._get(engine, f"_inference/{inference_id}")
            for ep in body.get("endpoints", []):
                settings = ep.get("service_settings") or {}
                chunking = ep.get("chunking_settings") or {}
                rows.append(
                    {
                        "inference_id": ep.get("inference_id"),
                        "task_type": ep.get("task_type"),
                        "service": ep.get("service"),
                        "model_id": settings.get("model_id"),
                        "url": settings.get("url"),
                        "chunking": chunking.get("strategy"),
                        "task_settings": json.dumps(ep["task_settings"]) if ep.get("task_settings") else None,
                    }
                )
        columns = ["inference_id", "task_type", "service", "model_id", "url", "chunking", "task_settings"]
        return pd.DataFrame(rows, columns=columns).drop_duplicates("inference_id", ignore_index=True)


def _expand(path: str) -> Any:
    return Path(path).expanduser()


def _ours(obj: Any) -> bool:
    return type(obj).__name__ == "InferMagic" and type(obj).__module__ == __name__


def load_ipython_extension(ip: Any) -> None:
    """Register ``%%infer`` / ``%infer`` (called by ``%load_ext es_infer_nb``)."""
    for old in [c for c in ip.configurables if _ours(c)]:  # %reload_ext: one InferMagic at a time
        ip.configurables.remove(old)
    ip.register_magics(InferMagic(ip))


def unload_ipython_extension(ip: Any) -> None:
    """Remove ``%%infer`` / ``%infer`` and forget the magic's options."""
    for old in [c for c in ip.configurables if _ours(c)]:
        ip.configurables.remove(old)
    magics = ip.magics_manager.magics
    for kind in ("line", "cell"):
        fn = magics[kind].get("infer")
        if fn is not None and _ours(getattr(fn, "__self__", None)):
            del magics[kind]["infer"]
    for key, registered in list(ip.magics_manager.registry.items()):
        if _ours(registered):
            del ip.magics_manager.registry[key]
    options.reset()
    _short_errors.uninstall()
