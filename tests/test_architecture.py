"""The package's shape: data flows one way (issue 28).

Each import contract in ``.importlinter`` is checked by import-linter (``lint-imports``), the
import graph (imports inside functions included) has no cycle, the upward imports the issue
found stay gone, and the only imports left inside functions are the lazy ones by design.
"""

from __future__ import annotations

import ast
import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".importlinter"
PACKAGE = ROOT / "segcolor"

grimp = pytest.importorskip("grimp", reason="import-linter (pip install import-linter) is absent")
pytest.importorskip("importlinter", reason="import-linter (pip install import-linter) is absent")


def contract_ids() -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    prefix = "importlinter:contract:"
    return [s.removeprefix(prefix) for s in parser.sections() if s.startswith(prefix)]


def lint_imports(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    """``lint-imports`` on the repository's contracts, in a fresh interpreter (no cache written
    into the tree). ``pythonpath``: where to find ``segcolor`` instead of the installed one."""
    env, cwd = None, ROOT
    if pythonpath is not None:  # and run elsewhere: the working directory comes first on sys.path
        env, cwd = {**os.environ, "PYTHONPATH": str(pythonpath)}, pythonpath
    code = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run(
        [sys.executable, "-c", code, str(CONFIG), "--no-cache", "--no-logo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def test_the_contracts_are_the_expected_ones():
    """A contract removed from the file would otherwise drop its test silently."""
    assert contract_ids() == ["layers", "applications", "stages", "merge"]
    assert "ignore_imports" not in CONFIG.read_text()  # no import is excused


@pytest.mark.parametrize("contract", contract_ids())
def test_import_contract_is_kept(contract):
    result = lint_imports("--contract", contract)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout, result.stdout


def import_cycles(graph) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def imported_by(module: str):
        return iter(sorted(graph.find_modules_directly_imported_by(module)))

    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, imported_by(start))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, imported_by(child)))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("segcolor", cache_dir=None)


def test_cycle_finder_finds_a_cycle():
    """The check below can fail: a two-module loop in a toy graph is found."""
    toy = grimp.ImportGraph()
    for a, b in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        toy.add_import(importer=a, imported=b)
    assert import_cycles(toy) == [{"p.a", "p.b", "p.c"}]


def test_the_package_has_no_import_cycle(graph):
    """No module reaches itself through imports, the ones inside functions included."""
    assert import_cycles(graph) == []


# (importer, imported) pairs the issue found, or that would undo the layering: none may come
# back, directly or through other modules
UPWARD = [
    ("segcolor.experts", "segcolor.router"),  # FEATURE_STRIDE: now segcolor.feature_grid
    ("segcolor.router", "segcolor.experts"),  # via profiles.classifier's expert warm start
    ("segcolor.experts", "segcolor.profiles"),
    ("segcolor.evaluate", "segcolor.train"),  # is_held_out: now segcolor.splits
    ("segcolor.video", "segcolor.inspection"),  # overlay colors: now segcolor.router.overlay
    ("segcolor.studio", "segcolor.inspection"),
    ("segcolor.pipeline_config", "segcolor.router"),  # was segcolor.router.categories
    ("segcolor.merge", "segcolor.experts"),
    ("segcolor.pipeline", "segcolor.commands"),
]


@pytest.mark.parametrize(("importer", "imported"), UPWARD)
def test_known_upward_imports_stay_gone(graph, importer, imported):
    chain = graph.find_shortest_chains(importer=importer, imported=imported, as_packages=True)
    assert not chain, f"{importer} imports {imported}: {sorted(chain)}"


def copy_of_the_package(tmp_path: Path) -> Path:
    """The package's Python files under ``tmp_path/src`` (no weights: import-linter reads
    source only)."""
    src = tmp_path / "src"
    for path in PACKAGE.rglob("*.py"):
        target = src / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return src


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("experts/base.py", "from segcolor.router.routing import Routing", "layers"),
        ("evaluate/datasets.py", "from segcolor.train.data import is_held_out", "applications"),
        ("video/timeline.py", "from segcolor.inspection import write_inspection", "applications"),
        ("profiles/classifier.py", "from segcolor.experts import load_expert", "stages"),
        ("merge/composite.py", "from segcolor.nets import build_empty", "merge"),
        # inside a function: counts the same
        ("experts/registry.py", "def f():\n    from segcolor.pipeline import Pipeline", "layers"),
    ],
)
def test_an_upward_import_breaks_a_contract(tmp_path, module, line, broken):
    """Reintroducing one of the imports issue 28 removed makes ``lint-imports`` fail."""
    src = copy_of_the_package(tmp_path)
    path = src / "segcolor" / module
    path.write_text(path.read_text() + "\n\n" + line + "  # noqa\n")
    result = lint_imports(pythonpath=src)
    assert result.returncode == 1, result.stdout + result.stderr
    contract = configparser.ConfigParser()
    contract.read(CONFIG)
    name = contract[f"importlinter:contract:{broken}"]["name"]
    assert f"{name} BROKEN" in " ".join(result.stdout.split()), result.stdout


# Imports inside functions are kept only where that is the point: a command's heavy layers load
# once it runs (the CLI imports every command module to build its parser), and optional extras
# load only when used.
OPTIONAL_EXTRAS = {"ray", "uvicorn", "fastapi", "playwright", "ai_edge_litert"}


def imports_inside_functions(path: Path) -> list[tuple[int, str]]:
    found = []

    def walk(node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            now = inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if now and isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child.lineno, ast.unparse(child)))
            walk(child, now)

    walk(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def test_imports_inside_functions_are_lazy_by_design():
    stray = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("segcolor/commands/"):
            continue
        for line, text in imports_inside_functions(path):
            if text.split()[1].split(".")[0] not in OPTIONAL_EXTRAS:
                stray.append(f"{rel}:{line}: {text}")
    assert stray == [], "move these to the module's top:\n" + "\n".join(stray)


def test_the_cli_parser_loads_no_torch():
    """Why the commands import their heavy layers inside ``run``: ``segcolor --help``, a bad
    flag or ``segcolor manifest`` start in a fraction of a second."""
    code = (
        "import sys; from segcolor.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'segcolor.pipeline', 'cv2', 'av') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
