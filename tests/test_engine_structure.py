"""The engine's modules import each other without cycles, and only at module level.

A cycle between modules used to be broken with imports inside functions
(training_client <-> sampling_client); this test reads every ``import`` statement of the
package, function-local ones included, so neither can come back unnoticed. Imports under
``if TYPE_CHECKING:`` are never executed and are left out of the cycle check.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import tinker_offline

PACKAGE = Path(tinker_offline.__file__).parent


@dataclasses.dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. "training_client"
    target: str  # the imported module of the package ("__init__" for the package itself)
    line: int
    in_function: bool
    type_checking_only: bool


def _target(module: str | None, name: str) -> str:
    """The package module that ``from .<module> import <name>`` loads."""
    if module:
        return module.split(".")[0]
    return name if (PACKAGE / f"{name}.py").is_file() else "__init__"


class _Imports(ast.NodeVisitor):
    def __init__(self, source: str):
        self.source = source
        self.functions = 0
        self.type_checking = 0
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.AST) -> None:
        self.found.append(Import(self.source, target, node.lineno, self.functions > 0, self.type_checking > 0))

    def visit_FunctionDef(self, node: ast.AST) -> None:
        self.functions += 1
        self.generic_visit(node)
        self.functions -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            self.type_checking += 1
            for child in node.body:
                self.visit(child)
            self.type_checking -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == "tinker_offline":
                self._add(parts[1] if len(parts) > 1 else "__init__", node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 1:
            module = node.module
        elif node.level == 0 and node.module and node.module.split(".")[0] == "tinker_offline":
            module = node.module.partition(".")[2] or None
        else:
            return
        for alias in node.names:
            self._add(_target(module, alias.name), node)


def package_imports(package: Path = PACKAGE) -> list[Import]:
    found: list[Import] = []
    for path in sorted(package.glob("*.py")):
        visitor = _Imports(path.stem)
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        found.extend(visitor.found)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None when it is acyclic."""
    state: dict[str, str] = {}  # "open" while on the DFS stack, "done" after

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]  # the open nodes are exactly `path`
            if nxt not in state:
                cycle = visit(nxt, path + [nxt])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_the_reader_sees_the_packages_imports():
    """Guards the test itself: known edges are found."""
    edges = {(i.source, i.target) for i in package_imports()}
    assert ("training_client", "lora") in edges
    assert ("__init__", "service_client") in edges


def test_find_cycle_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_function_local_imports_of_the_package():
    local = [f"{i.source}.py:{i.line} imports {i.target}" for i in package_imports() if i.in_function]
    assert not local, "import these at module level (a cycle is the usual reason they are not): " + "; ".join(local)


def test_the_import_graph_is_acyclic():
    graph: dict[str, set[str]] = {}
    for i in package_imports():
        if not i.type_checking_only and i.target != i.source:
            graph.setdefault(i.source, set()).add(i.target)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
