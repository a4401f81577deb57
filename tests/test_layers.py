"""The layers of DESIGN.md hold in the imports: import-linter's contracts in pyproject.toml pass."""

from __future__ import annotations

import shutil
import subprocess
import sys
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
    import ast

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
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
    assert contracts
    assert [c.get("name") for c in contracts if c.get("ignore_imports")] == []


def test_no_call_changes_the_engines_device():
    """The device of a call is a parameter (``Engine.request(..., device=)``, ``Run.device``, ``device=`` of
    :mod:`es_infer_nb.frames`): nothing assigns an engine's ``device`` outside ``Engine.__init__`` (issue 18)."""
    import ast

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
    import ast

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            return node.end_lineno or 0
    return 0
