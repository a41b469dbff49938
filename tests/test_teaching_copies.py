"""The pages' teaching copies are the canonical code in ``token_set`` and ``emotion_task``.

A page may show the body of a helper it uses, so that a downloaded notebook reads on its
own. Each such ``def NAME`` must be the same code as the library's ``NAME``: compared as
parsed code (the AST, docstrings included; comments and layout do not count). A helper
that two pages define must live in the library, so no two bodies share a name; a page that
copies a ``token_set`` function says where it lives; ``book/reference.md`` documents every
module of ``token_set`` from its docstrings (autodoc) and includes ``emotion_task``'s prompt
builder.
"""

from __future__ import annotations

import ast
import difflib
import re
from pathlib import Path

import pytest

import emotion_task
from conftest import REPO_ROOT, page_cells, page_source, toc_docnames
from tools.teaching_copies import canonical_functions

TASK_PATH = Path(emotion_task.__file__)
LIBRARY_DIR = REPO_ROOT / "token_set"
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
            "library", "teaching copy", lineterm="",
        )
    )


CANONICAL_WHERE = {name: path for name, (path, _, _) in canonical_functions().items()}
CANONICAL = {name: node for name, (_, node, _) in canonical_functions().items()}
LIBRARY_FUNCTIONS = {name for name, path in CANONICAL_WHERE.items() if path.parent == LIBRARY_DIR}
PAGES = page_sources()


def imported_from_library(path: Path) -> set[str]:
    """The names a page's code cells (or a Python module) import from token_set."""
    names = set()
    for cell in ([path.read_text()] if path.suffix == ".py" else code_cells(path)):
        for node in ast.walk(ast.parse(cell)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "token_set":
                names |= {alias.name for alias in node.names}
    return names


def test_the_canonical_modules_have_the_code():
    for name in ("build_datum", "kl_over_labels", "set_kl", "label_token_problems", "compare_label_forms",
                 "datum_problems", "evaluate_examples"):
        assert CANONICAL_WHERE.get(name, Path()).parent == LIBRARY_DIR, f"token_set has no {name}"
    for name in ("read_data_file", "read_examples", "build_prompt_tokens"):
        assert CANONICAL_WHERE.get(name) == TASK_PATH, f"emotion_task has no {name}"
    assert len(PAGES) >= 6, sorted(PAGES)


@pytest.mark.parametrize("docname", sorted(PAGES))
def test_teaching_copies_match_the_canonical_code(docname):
    copies = {name: node for name, node in page_functions(PAGES[docname]).items() if name in CANONICAL}
    different = {name: code_diff(CANONICAL[name], node) for name, node in copies.items()
                 if not same_code(CANONICAL[name], node)}
    assert not different, (
        f"{docname}: these teaching copies differ from the library (change both, or give a "
        "helper with other behaviour its own name):\n\n" + "\n\n".join(different.values())
    )


@pytest.mark.parametrize("docname", sorted(PAGES))
def test_a_page_that_copies_library_code_says_where_it_lives(docname):
    copies = set(page_functions(PAGES[docname])) & LIBRARY_FUNCTIONS
    prose = "\n".join(cell.source for cell in page_cells(PAGES[docname]) if cell.kind == "markdown")
    if copies:
        assert "token_set" in prose, f"{docname} shows copies of {sorted(copies)} but never names token_set"


def test_no_helper_is_defined_on_two_pages_outside_the_library():
    """Helpers a page shares live in token_set or emotion_task; the setup cell's own (tools/setup_cell.py,
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
    assert not shared, f"helpers defined on several pages but not in the library: {shared}"


def test_every_canonical_function_is_used_by_a_page_or_the_recipe():
    used = set().union(*(set(page_functions(path)) | imported_from_library(path) for path in PAGES.values()))
    used |= set().union(*(imported_from_library(path) for path in (REPO_ROOT / "token_distribution_recipe").glob("*.py")))
    assert not set(CANONICAL) - used, f"library functions no page or recipe module uses: {sorted(set(CANONICAL) - used)}"


def test_the_comparison_sees_a_changed_body_and_ignores_comments():
    source = ast.get_source_segment(CANONICAL_WHERE["build_datum"].read_text(), CANONICAL["build_datum"])
    reformatted = source.replace("  # T counts image positions too", "").replace("row = T - 1 if", "row = T-1 if")
    changed = source.replace("row = T - 1 if", "row = T - 2 if")
    assert changed != source and reformatted != source
    assert same_code(CANONICAL["build_datum"], top_level_functions(reformatted)["build_datum"])
    assert not same_code(CANONICAL["build_datum"], top_level_functions(changed)["build_datum"])


def test_reference_page_documents_the_library_from_its_docstrings():
    text = REFERENCE_PAGE.read_text()
    documented = set(re.findall(r"^\.\. automodule:: (token_set\.\w+)\n   :members:$", text, re.M))
    modules = {f"token_set.{path.stem}" for path in {CANONICAL_WHERE[name] for name in LIBRARY_FUNCTIONS}}
    assert modules <= documented, f"modules book/reference.md does not autodoc: {sorted(modules - documented)}"
    includes = re.findall(r"```\{literalinclude\} (\S+)\n(?::[a-z-]+:.*\n)*?:pyobject: (\w+)", text)
    for target, name in includes:
        assert (REFERENCE_PAGE.parent / target).resolve() == CANONICAL_WHERE[name].resolve(), (target, name)
    assert {name for _, name in includes} == {"build_prompt_tokens"}
    # No hand-kept copy: a canonical def in a plain python block would drift unchecked.
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        defined = set(top_level_functions(block)) & set(CANONICAL)
        assert not defined, f"book/reference.md keeps its own copy of {sorted(defined)}"


@pytest.mark.parametrize("docname", sorted(PAGES))
def test_copies_call_only_helpers_the_page_has(docname):
    """A copy whose library body calls another library function needs that function on the page
    too (copied or imported), or the downloaded notebook raises NameError."""
    defined = set(page_functions(PAGES[docname])) | imported_from_library(PAGES[docname])
    missing = {}
    for name, node in page_functions(PAGES[docname]).items():
        if name not in CANONICAL:
            continue
        called = {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        if needed := (called & set(CANONICAL)) - defined - {name}:
            missing[name] = sorted(needed)
    assert not missing, f"{docname}: copies call library functions the page never defines or imports: {missing}"
