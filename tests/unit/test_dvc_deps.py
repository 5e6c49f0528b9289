"""Every file a stage runs is one of its `dvc.yaml` deps, or `dvc repro` keeps stale results.

For each stage, the module its `cmd` runs (`python -m pipeline.stages.X`) is walked with `ast`:
its imports inside the `pipeline` package, transitively, plus the `__init__.py` of every package
on the way (importing `pipeline.a.b` runs `pipeline/__init__.py` and `pipeline/a/__init__.py`) and
the data files a module loads at run time (Jinja2 templates). A dep covers a file when it is the
file or a folder above it. Imports under `if TYPE_CHECKING:` never run and are left out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "pipeline"
STAGES: dict[str, dict] = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
ENTRY = re.compile(rf"\bpython -m ({PACKAGE}(?:\.\w+)+)")


def module_file(name: str) -> Path | None:
    """The source file of a dotted module name inside the package, or None (not a module)."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def with_parent_packages(name: str) -> list[str]:
    """`a.b.c` -> [`a`, `a.b`, `a.b.c`]: importing a module first imports every package above it."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Dotted names a module may import at run time, and data folders it loads templates from."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.names: set[str] = set()
        self.data_dirs: set[Path] = set()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):  # type-only imports never run
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.names.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:  # relative: `from . import x`, `from ..y import z`
            anchor = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        self.names.add(base)
        # `from pipeline.x import y`: y may be a submodule; module_file() drops it when it is not.
        self.names.update(f"{base}.{alias.name}" for alias in node.names)

    def visit_Call(self, node: ast.Call) -> None:
        # jinja2.PackageLoader("pipeline.reporting", "templates") reads files from that folder.
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if called == "PackageLoader" and args:
            package = module_file(args[0])
            if package is not None:
                self.data_dirs.add(package.parent / (args[1] if len(args) > 1 else "templates"))
        self.generic_visit(node)


def files_run_by(entry: str) -> dict[Path, str]:
    """Every package file `python -m entry` may execute or read, each with the module that pulls it in."""
    found: dict[Path, str] = {}
    queue = [(name, "(entry point)") for name in with_parent_packages(entry)]
    while queue:
        name, importer = queue.pop()
        path = module_file(name)
        if path is None or path in found:
            continue
        found[path] = importer
        visitor = _Imports(name, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        for data_dir in visitor.data_dirs:
            for data_file in sorted(data_dir.rglob("*")):
                if data_file.is_file() and "__pycache__" not in data_file.parts:
                    found.setdefault(data_file, name)
        for imported in sorted(visitor.names):
            queue.extend((parent, name) for parent in with_parent_packages(imported))
    return found


def dep_paths(spec: dict) -> list[str]:
    return [next(iter(dep)) if isinstance(dep, dict) else str(dep) for dep in spec.get("deps", [])]


def uncovered(spec: dict) -> list[str]:
    """'file (imported by module)' for each file the stage runs that none of its deps covers."""
    deps = [dep.rstrip("/") for dep in dep_paths(spec)]
    entry = ENTRY.search(spec["cmd"])
    assert entry, f"cmd does not run `python -m {PACKAGE}.…`: {spec['cmd']!r}"
    missing = []
    for path, importer in sorted(files_run_by(entry.group(1)).items()):
        rel = path.relative_to(ROOT).as_posix()
        if not any(rel == dep or rel.startswith(dep + "/") for dep in deps):
            missing.append(f"{rel} (imported by {importer})")
    return missing


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_file_a_stage_runs_is_one_of_its_deps(stage: str) -> None:
    missing = uncovered(STAGES[stage])
    assert not missing, f"dvc.yaml stage {stage!r} runs files none of its deps cover: " + "; ".join(missing)


def test_the_walk_follows_submodules_packages_and_templates() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in files_run_by("pipeline.stages.report")}
    assert "pipeline/reporting/charts.py" in files  # `from pipeline.reporting import charts`
    assert "pipeline/data/augment.py" in files  # transitively: report -> models.vae -> data.datamodule
    assert {"pipeline/__init__.py", "pipeline/stages/__init__.py", "pipeline/reporting/__init__.py"} <= files
    assert "pipeline/reporting/templates/report.md.j2" in files
    assert not any(name.endswith((".pyc", "__pycache__")) for name in files)


def test_a_dropped_dep_is_named_with_its_stage_file() -> None:
    spec = dict(STAGES["train_vae"])
    spec["deps"] = [dep for dep in dep_paths(spec) if dep != "pipeline/atomic.py"]
    assert any(entry.startswith("pipeline/atomic.py (imported by ") for entry in uncovered(spec))
