"""The layers of DESIGN.md hold in the imports: import-linter's contracts in pyproject.toml pass."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    exe = Path(sys.executable).with_name("lint-imports")
    command = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    proc = subprocess.run([*command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert ", 0 broken." in proc.stdout and "Layers of DESIGN.md" in proc.stdout


def _private_imports_across_packages() -> list[str]:
    """``from <another es_infer_nb package> import _name`` (or from a ``_module`` of another package)."""
    package = ROOT / "es_infer_nb"
    found = []
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        here = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            elif (node.module or "").startswith("es_infer_nb"):
                target = node.module.split(".")
            else:
                continue
            source_package = parts[1] if len(parts) > 2 else parts[-1]
            target_package = target[1] if len(target) > 1 else ""
            if source_package == target_package:
                continue
            private_module = any(p.startswith("_") and not p.startswith("__") for p in target[1:])
            for alias in node.names:
                if private_module or (alias.name.startswith("_") and not alias.name.startswith("__")):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name} from {'.'.join(target)}")
    return found


def test_no_private_names_are_imported_across_packages():
    assert _private_imports_across_packages() == []


def test_no_contract_ignores_an_import():
    """Every contract holds for every import: none lists ``ignore_imports`` (issue 18)."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
    assert contracts
    assert [c.get("name") for c in contracts if c.get("ignore_imports")] == []


def test_no_call_changes_the_engines_device():
    """The device of a call is a parameter (``Engine.request(..., device=)``, ``Run.device``, ``device=`` of
    :mod:`es_infer_nb.frames`): nothing assigns an engine's ``device`` outside ``Engine.__init__`` (issue 18)."""
    found = []
    for path in sorted((ROOT / "es_infer_nb").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            for target in targets:
                if not (isinstance(target, ast.Attribute) and target.attr == "device"):
                    continue
                owner = target.value
                name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
                if "engine" in name.lower() or (name == "self" and path.name == "engine.py"
                                                and node.lineno > _engine_init_end(path)):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, (ast.FunctionDef, ast.Name)) and "device_scope" in getattr(node, "name", getattr(node, "id", "")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: device_scope")
    assert found == []


def _engine_init_end(path: Path) -> int:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            return node.end_lineno or 0
    return 0


# -- imports at the top (issue 18): a function-level import is an optional dependency, an import cycle, or
# -- a heavy module kept off the import of es_infer_nb (or of an entry point), each listed here with its reason

#: optional dependencies (pyproject's extras) and the heavy required ones that ``import es_infer_nb`` does
#: not load (torch and transformers, seconds): imported where they are used, in any module
LATE_ANYWHERE = {
    "torch": "heavy: import es_infer_nb does not load torch",
    "transformers": "heavy: import es_infer_nb does not load transformers",
    "sklearn": "optional (importers extra)",
    "xgboost": "optional (importers extra)",
    "lightgbm": "optional (importers extra)",
    "shap": "optional (bench / test extras)",
    "dask": "optional (dask extra)",
    "distributed": "optional (dask extra)",
    "onnxruntime": "optional (onnx extra)",
}

#: (importing module, imported module prefix) -> why the import stays in the function
LATE_IMPORTS = {
    ("es_infer_nb", "es_infer_nb.widgets"): "import time: the widgets load ipywidgets (~110 ms), when first shown",
    ("es_infer_nb", "es_infer_nb.server"): "import time: the server loads api/ and torch",
    ("es_infer_nb", "es_infer_nb.files"): "import time: files/ loads the backends and torch",
    ("es_infer_nb", "es_infer_nb.notebook.magics"): "import time: the magics load IPython's magic machinery",
    ("es_infer_nb.cli", "es_infer_nb.frames.embed"): "es-infer's startup: torch loads for `embed` only",
    ("es_infer_nb.cli", "es_infer_nb.server"): "es-infer's startup: the server loads api/ and torch",
    ("es_infer_nb.dask", "es_infer_nb.dask."): "optional dask: its modules load when dask.dataframe is imported",
    ("es_infer_nb.dask.accessor", "es_infer_nb.frames.run"): "the Dask hook's import time: frames.run loads torch",
    ("es_infer_nb.engine", "es_infer_nb.api"): "import time: api/ loads the models and torch (a request loads it)",
    ("es_infer_nb.engine", "es_infer_nb.models.runner"): "import time: the runner loads torch",
    ("es_infer_nb.engine", "es_infer_nb.models.tree.metadata"): "import time: loads the runner and torch",
    ("es_infer_nb.engine", "es_infer_nb.models.tree.importers"): "import time: the converters (~10 ms)",
    ("es_infer_nb.engine", "es_infer_nb.models.nlp.importer"): "import time: the NLP model code and tqdm (~30 ms)",
    ("es_infer_nb.frames.meta", "es_infer_nb.backends"): "the Dask hook's import time: the backends load torch",
    ("es_infer_nb.frames.meta", "es_infer_nb.frames.pipeline_meta"): "the Dask hook's import time: ingest/ (~45 ms)",
    ("es_infer_nb.ingest.pipeline", "es_infer_nb.ingest.registry"): "cycle: the registry imports the processor "
                                                                    "classes this module defines",
    ("es_infer_nb.models.nlp.network", "es_infer_nb.models.nlp.bert_encoder"): "heavy: imports torch",
    ("es_infer_nb.models.nlp.stream_pool", "es_infer_nb.models.native_build"):
        "heavy: imports torch (the pool's module, like its torch calls, loads it only when a thread starts)",
    ("es_infer_nb.models.nlp.network", "es_infer_nb.models.nlp.fast_encoder"): "heavy: imports torch",
    ("es_infer_nb.models.nlp_backend", "es_infer_nb.models.nlp.embedded"): "heavy: imports torch",
    ("es_infer_nb.notebook.accessor", "es_infer_nb.frames.run"): "import time: frames.run loads torch",
    ("es_infer_nb.notebook.accessor", "es_infer_nb.frames.search"): "import time: frames.search loads torch",
    ("es_infer_nb.notebook.accessor", "es_infer_nb.frames.pipeline"): "import time: ingest/ (~45 ms)",
    ("es_infer_nb.notebook.accessor", "es_infer_nb.widgets"): "import time: ipywidgets (~110 ms)",
    ("es_infer_nb.notebook.frame_cells", "es_infer_nb.frames.run"): "%load_ext's import time: torch",
    ("es_infer_nb.notebook.magics", "es_infer_nb.widgets"): "%load_ext's import time: ipywidgets, for --widget",
    ("es_infer_nb.notebook.frame_cells", "es_infer_nb.frames.pipeline"): "%load_ext's import time: ingest/",
    ("es_infer_nb.services.base", "es_infer_nb.services.parsers"): "import time: the response parsers (~5 ms)",
    ("es_infer_nb.services.elasticsearch", "es_infer_nb.models.nlp.embedded"): "heavy: imports torch",
    ("es_infer_nb.services.elasticsearch", "es_infer_nb.models.deployments"): "import time: the NLP models, torch",
    ("es_infer_nb.services.elasticsearch", "es_infer_nb.models.runner"): "heavy: imports torch",
    ("es_infer_nb.services.ml_commons", "es_infer_nb.models.nlp.embedded"): "heavy: imports torch",
    ("es_infer_nb.services.ml_local", "es_infer_nb.models.torchscript"): "import time: NLP model code, tqdm (~28 ms)",
    ("es_infer_nb.services.ml_local", "tokenizers"): "import time: ~10 ms, for models registered from a path",
    ("es_infer_nb.services.registry", "es_infer_nb.services."): "import time: the services (~20 ms), on first use",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The absolute dotted names a statement imports (``pkg.sub.name`` for ``from pkg.sub import name``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = module.split(".")
        base = base if is_package else base[:-1]
        base = base[:len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [f"{prefix}.{a.name}" for a in node.names]


def _late_imports() -> list[tuple[str, int, str]]:
    """Every import inside a function of the package: (module, line, imported name), TYPE_CHECKING aside."""
    found = []
    for path in sorted((ROOT / "es_infer_nb").rglob("*.py")):
        module, is_package = _module_name(path), path.name == "__init__.py"
        for func in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    found.extend((module, node.lineno, name) for name in _imported(node, module, is_package))
    return sorted(set(found))


def _allowed(module: str, name: str) -> bool:
    if name.split(".")[0] in LATE_ANYWHERE:
        return True
    return any(_allowed_by(key, module, name) for key in LATE_IMPORTS)


def test_imports_are_at_the_top_unless_listed():
    """A function-level import is an optional dependency, a cycle or a heavy module, listed with its reason
    (issue 18); everything else is imported at the top of its module."""
    unlisted = [f"{module}:{line}: {name}" for module, line, name in _late_imports() if not _allowed(module, name)]
    assert unlisted == []


def test_every_listed_late_import_is_still_there():
    """The list does not outlive the code: each entry names an import that is still in a function."""
    late = _late_imports()
    unused = [key for key in LATE_IMPORTS if not any(_allowed_by(key, m, n) for m, _, n in late)]
    assert unused == []
    assert all(LATE_IMPORTS.values()) and all(LATE_ANYWHERE.values())


def _allowed_by(key: tuple[str, str], module: str, name: str) -> bool:
    source, prefix = key
    return module == source and (name == prefix or name.startswith(prefix if prefix.endswith(".") else prefix + "."))


def test_the_late_import_finder_sees_a_function_level_import():
    """The finder's resolution of relative imports, checked on the package's own engine module."""
    late = _late_imports()
    assert ("es_infer_nb.engine", "es_infer_nb.api.dispatch") in {(m, n) for m, _, n in late}
    assert not _allowed("es_infer_nb.engine", "es_infer_nb.frames.run.run_frame")
    assert _allowed("es_infer_nb.models.nlp.embedded", "torch")


def test_import_es_infer_nb_loads_neither_torch_nor_the_widgets():
    """What the list keeps off ``import es_infer_nb`` stays off it."""
    code = ("import sys, es_infer_nb; heavy = [m for m in ('torch', 'transformers', 'ipywidgets', 'es_infer_nb.api', "
            "'es_infer_nb.widgets', 'es_infer_nb.server') if m in sys.modules]; print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
