"""The chapters' teaching copies are the canonical task code in ``emotion_task``.

A chapter shows every helper it uses, so that a downloaded notebook runs on its own. Each
such ``def NAME`` must be the same code as ``emotion_task.NAME``: compared as parsed
code (the AST, docstrings included; comments and layout do not count). A helper that two
pages define must live in ``emotion_task``, so no two bodies share a name, and
``book/reference.md`` must show every canonical function with ``literalinclude``.
"""

from __future__ import annotations

import ast
import difflib
import re
from pathlib import Path

import pytest

import emotion_task
from conftest import REPO_ROOT, page_cells, page_source, toc_docnames

CANONICAL_PATH = Path(emotion_task.__file__)
REFERENCE_PAGE = REPO_ROOT / "book" / "reference.md"


def page_sources() -> dict[str, Path]:
    """Every page of the book, by docname."""
    return {docname: page_source(docname) for docname in toc_docnames(REPO_ROOT / "_toc.yml")}


def code_cells(path: Path) -> list[str]:
    return [cell.source for cell in page_cells(path) if cell.kind == "code"]


def top_level_functions(source: str) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}


def page_functions(path: Path) -> dict[str, ast.FunctionDef]:
    """Every top-level ``def`` of a page's code cells (the last one wins, as when it runs)."""
    functions: dict[str, ast.FunctionDef] = {}
    for cell in code_cells(path):
        functions.update(top_level_functions(cell))
    return functions


def same_code(a: ast.FunctionDef, b: ast.FunctionDef) -> bool:
    return ast.dump(a, include_attributes=False) == ast.dump(b, include_attributes=False)


def code_diff(canonical: ast.FunctionDef, copy: ast.FunctionDef) -> str:
    return "\n".join(
        difflib.unified_diff(
            ast.unparse(canonical).splitlines(), ast.unparse(copy).splitlines(),
            "emotion_task", "teaching copy", lineterm="",
        )
    )


CANONICAL = top_level_functions(CANONICAL_PATH.read_text())
PAGES = page_sources()


def test_the_canonical_module_has_the_task_code():
    for name in ("read_data_file", "build_prompt_tokens", "build_datum", "kl_over_labels", "evaluate"):
        assert name in CANONICAL, f"emotion_task has no {name}"
    assert len(PAGES) >= 6, sorted(PAGES)


@pytest.mark.parametrize("docname", sorted(PAGES))
def test_teaching_copies_match_the_canonical_code(docname):
    copies = {name: node for name, node in page_functions(PAGES[docname]).items() if name in CANONICAL}
    different = {name: code_diff(CANONICAL[name], node) for name, node in copies.items()
                 if not same_code(CANONICAL[name], node)}
    assert not different, (
        f"{docname}: these teaching copies differ from emotion_task (change both, or give a "
        "helper with other behaviour its own name):\n\n" + "\n\n".join(different.values())
    )


def test_no_helper_is_defined_on_two_pages_outside_emotion_task():
    """Helpers a page shares live in emotion_task; the setup cell's own (tools/setup_cell.py,
    checked by tests/test_notebook_setup.py) are the one exception."""
    setup_cell = top_level_functions((REPO_ROOT / "tools" / "setup_cell.py").read_text())
    pages_by_name: dict[str, list[str]] = {}
    for docname, path in PAGES.items():
        for name in page_functions(path):
            pages_by_name.setdefault(name, []).append(docname)
    shared = {
        name: pages for name, pages in pages_by_name.items()
        if len(pages) > 1 and name not in CANONICAL and name not in setup_cell
    }
    assert not shared, f"helpers defined on several pages but not in emotion_task: {shared}"


def test_every_canonical_function_is_taught_somewhere():
    taught = set().union(*(page_functions(path) for path in PAGES.values()))
    assert not set(CANONICAL) - taught, f"emotion_task functions no page shows: {sorted(set(CANONICAL) - taught)}"


def test_the_comparison_sees_a_changed_body_and_ignores_comments():
    source = ast.get_source_segment(CANONICAL_PATH.read_text(), CANONICAL["build_datum"])
    reformatted = source.replace("  # T counts image positions too", "").replace("row = T - 1 if", "row = T-1 if")
    changed = source.replace("row = T - 1 if", "row = T - 2 if")
    assert changed != source and reformatted != source
    assert same_code(CANONICAL["build_datum"], top_level_functions(reformatted)["build_datum"])
    assert not same_code(CANONICAL["build_datum"], top_level_functions(changed)["build_datum"])


def test_reference_page_includes_every_canonical_function():
    text = REFERENCE_PAGE.read_text()
    includes = re.findall(r"```\{literalinclude\} (\S+)\n(?::[a-z-]+:.*\n)*?:pyobject: (\w+)", text)
    assert includes, "book/reference.md has no literalinclude of emotion_task"
    for target, _ in includes:
        assert (REFERENCE_PAGE.parent / target).resolve() == CANONICAL_PATH.resolve(), target
    shown = {name for _, name in includes}
    assert shown == set(CANONICAL) - {"read_data_file", "read_examples"}, (
        f"missing: {sorted(set(CANONICAL) - shown)}; not in emotion_task: {sorted(shown - set(CANONICAL))}"
    )
    # No hand-kept copy: a canonical def in a plain python block would drift unchecked.
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        defined = set(top_level_functions(block)) & set(CANONICAL)
        assert not defined, f"book/reference.md keeps its own copy of {sorted(defined)}"
