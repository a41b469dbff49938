"""Committed notebooks are stored clean: no outputs, no execution counts.

The book build executes them (outputs live in _build/, via the jupyter cache);
outputs in the repository would go stale and bloat diffs. MyST-markdown
notebooks (book/*.md) have no stored outputs by construction.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from conftest import REPO_ROOT

#: git pathspec: every notebook anywhere in the repository (``*`` also matches ``/``).
PATTERNS = ("*.ipynb",)
_NOT_SOURCES = {".venv", "_build", ".ipynb_checkpoints", "artifacts", "node_modules"}


def repo_notebooks(root: Path = REPO_ROOT) -> list[Path]:
    """Every notebook in the repository that git tracks or would track.

    Uses git (tracked + untracked-but-not-ignored files) when available, so
    ignored scratch copies (e.g. ``*.executed.ipynb`` from
    scripts/run_notebook.sh) don't count; falls back to globbing.
    """
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *PATTERNS],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
        paths = {root / p for p in out.split("\0") if p}
    except (OSError, subprocess.CalledProcessError):
        paths = {
            p
            for p in root.glob("**/*.ipynb")
            if not (_NOT_SOURCES & set(p.relative_to(root).parts))
            and not p.name.endswith(".executed.ipynb")
        }
    return sorted(p for p in paths if p.is_file() and ".ipynb_checkpoints" not in p.parts)


def notebooks_or_skip() -> list[Path]:
    """:func:`repo_notebooks`; skips the calling test when there is none yet."""
    notebooks = repo_notebooks()
    if not notebooks:
        pytest.skip("no notebooks in the repository yet")
    return notebooks


def code_cells(path: Path) -> Iterator[tuple[int, dict, str]]:
    """(index, cell, source as one string) of each code cell of the notebook at ``path``."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            yield i, cell, "".join(source) if isinstance(source, list) else source


def notebook_problems(path: Path) -> list[str]:
    problems = []
    for i, cell, _source in code_cells(path):
        if cell.get("outputs"):
            problems.append(f"cell {i} has {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {i} has execution_count={cell['execution_count']}")
    return problems


def test_notebooks_have_no_outputs():
    report = [
        f"{path.relative_to(REPO_ROOT)}: " + "; ".join(problems)
        for path in notebooks_or_skip()
        if (problems := notebook_problems(path))
    ]
    assert not report, (
        "notebooks must be committed without outputs/execution counts "
        "(clear them, e.g. `jupyter nbconvert --clear-output --inplace FILE`):\n"
        + "\n".join(report)
    )


def test_problem_detection(tmp_path):
    """The checker itself flags outputs and execution counts."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1+1"), nbformat.v4.new_markdown_cell("x")]
    clean = tmp_path / "clean.ipynb"
    nbformat.write(nb, clean)
    assert notebook_problems(clean) == []

    nb.cells[0].execution_count = 3
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
    dirty = tmp_path / "dirty.ipynb"
    nbformat.write(nb, dirty)
    assert len(notebook_problems(dirty)) == 2
