"""Every test marked slow says why it is slow, in its docstring (or its module's, when the
whole module is marked): a reader deciding whether to skip it with ``-m "not slow"`` should
not have to read its body."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def _marks_slow(decorators) -> bool:
    return any("mark.slow" in ast.unparse(d) for d in decorators)


def slow_tests_without_a_reason() -> list[str]:
    missing = []
    for path in sorted(TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        module_slow = any(isinstance(node, ast.Assign) and "mark.slow" in ast.unparse(node.value)
                          and any(getattr(t, "id", "") == "pytestmark" for t in node.targets) for node in tree.body)
        if module_slow and "Slow:" not in (ast.get_docstring(tree) or ""):
            missing.append(f"{path.name} (module)")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _marks_slow(node.decorator_list):
                if "Slow:" not in (ast.get_docstring(node) or ""):
                    missing.append(f"{path.name}::{node.name}")
    return missing


def test_every_slow_test_says_why():
    missing = slow_tests_without_a_reason()
    assert not missing, "slow tests whose docstring has no 'Slow: <why>': " + ", ".join(missing)


def test_the_check_finds_a_slow_test_without_a_reason(tmp_path, monkeypatch):
    (tmp_path / "test_example.py").write_text(
        "import pytest\n\n@pytest.mark.slow\ndef test_quiet():\n    '''No reason given.'''\n")
    monkeypatch.setattr(sys.modules[__name__], "TESTS", tmp_path)
    assert slow_tests_without_a_reason() == ["test_example.py::test_quiet"]
