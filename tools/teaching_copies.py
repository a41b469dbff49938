"""Rewrite the chapters' teaching copies from the canonical task code.

A page's code cell that defines, at top level, a function of the library ``token_set`` or of
the book's task module ``emotion_task`` gets that function's source from its module, comments
included. The test ``tests/test_teaching_copies.py`` fails when a copy differs; after
changing such a function, run::

    ./.venv/bin/python -m tools.teaching_copies          # rewrite the notebooks' copies
    ./.venv/bin/python -m tools.teaching_copies --check  # list the copies that differ

Only notebooks (``.ipynb``) are rewritten; their outputs stay as they are.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The modules whose public functions the pages copy: the library, then the book's task code.
CANONICAL_PATHS = sorted((REPO_ROOT / "token_set").glob("*.py")) + [REPO_ROOT / "emotion_task" / "__init__.py"]


def canonical_functions() -> dict[str, tuple[Path, ast.FunctionDef, str]]:
    """Each public top-level function of the canonical modules: its module's path, its parsed
    node and its source lines (a comment after its last line included). Raises ValueError if
    two modules define one name."""
    found: dict[str, tuple[Path, ast.FunctionDef, str]] = {}
    for path in CANONICAL_PATHS:
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                if node.name in found:
                    raise ValueError(f"{node.name} is defined in {found[node.name][0]} and {path}: give one body one name")
                found[node.name] = (path, node, "\n".join(lines[node.lineno - 1:node.end_lineno]))
    return found


def canonical_sources() -> dict[str, str]:
    """Each canonical function's source lines, by name."""
    return {name: source for name, (_, _, source) in canonical_functions().items()}


def rewrite_cell(source: str, canonical: dict[str, str]) -> str:
    """The cell with every top-level def of a canonical name replaced by the canonical text."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    for node in sorted((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in canonical),
                       key=lambda n: n.lineno, reverse=True):
        start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
        ending = "\n" if lines[node.end_lineno - 1].endswith("\n") else ""
        lines[start:node.end_lineno] = [canonical[node.name] + ending]
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only list the notebooks whose copies differ")
    args = parser.parse_args(argv)
    canonical = canonical_sources()
    stale = []
    for path in sorted([*REPO_ROOT.glob("notebooks/*.ipynb"), *REPO_ROOT.glob("book/*.ipynb")]):
        if path.name.endswith(".executed.ipynb"):
            continue
        notebook = json.loads(path.read_text())
        changed = False
        for cell in notebook["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            new = rewrite_cell(source, canonical)
            if new != source:
                cell["source"] = new.splitlines(keepends=True)
                changed = True
        if changed:
            stale.append(path.relative_to(REPO_ROOT).as_posix())
            if not args.check:
                path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    verb = "differ" if args.check else "rewritten"
    print(f"teaching copies {verb}: {', '.join(stale) if stale else 'none'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
