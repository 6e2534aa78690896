"""No import cycle between triage's packages: walking every import statement (``ast``, lazy imports in
functions included, ``if TYPE_CHECKING`` blocks excluded) gives an acyclic graph of packages and
top-level modules, and every package imports on its own."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "triage"


def _unit(module: str) -> str | None:
    """The package or top-level module an import belongs to (triage.collect, triage.records, ...)."""
    parts = module.split(".")
    if parts[0] != "triage" or len(parts) < 2:
        return None
    unit = ".".join(parts[:2])
    return unit if (PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").is_file() else None


def _imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # typing-only imports are not run
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        source = _unit(module)
        if source is None:
            continue
        targets = {_unit(name) for name in _imports(ast.parse(path.read_text(encoding="utf-8")))}
        graph.setdefault(source, set()).update(t for t in targets if t and t != source)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_walk_sees_the_known_layers():
    graph = import_graph()
    assert {"triage.collect", "triage.detect", "triage.export", "triage.parsers", "triage.volplugins"} <= set(graph)
    assert "triage.records" in graph["triage.parsers"] and "triage.context" in graph["triage.collect"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_between_packages_and_modules():
    """Front ends included: ``triage`` starts ``triage hunt`` and both take their options from triage.options."""
    assert find_cycle(import_graph()) is None


def test_parsers_import_nothing_but_records_and_helpers():
    assert import_graph()["triage.parsers"] <= {"triage.records", "triage.timeutil", "triage.taskpath", "triage.vocab",
                                                "triage.parsers"}


def test_each_package_imports_first_in_a_fresh_interpreter():
    for package in ("triage.context", "triage.parsers", "triage.collect", "triage.detect", "triage.export",
                    "triage.correlate", "triage.sources"):
        done = subprocess.run([sys.executable, "-c", f"import {package}"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, (package, done.stderr[-500:])
    assert importlib.import_module("triage.collect").Context is importlib.import_module("triage.context").Context
