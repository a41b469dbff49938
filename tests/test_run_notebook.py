"""scripts/run_notebook.sh runs one notebook offline and writes NAME.executed.ipynb next to it.

Slow: the script checks the virtual environment (scripts/setup.sh) and starts a kernel."""

from __future__ import annotations

import os
import subprocess

import nbformat
import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def test_run_notebook_offline(tmp_path):
    src = tmp_path / "nb.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import os, pathlib\n"
            "print(os.environ['TINKER_BOOK_BACKEND'], pathlib.Path.cwd().name)\n"
            "print(os.environ['TINKER_BOOK_DATA_URL'])"
        )
    ]
    nbformat.write(nb, src)
    env = {k: v for k, v in os.environ.items() if k not in ("TINKER_BOOK_BACKEND", "TINKER_BOOK_DATA_URL")}
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "run_notebook.sh"), str(src)],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "nb.executed.ipynb"
    executed = nbformat.read(out, as_version=4)
    nbformat.validate(executed)
    text = "".join(o.get("text", "") for o in executed.cells[0].outputs)
    # a downloaded notebook saved anywhere reads this clone's data (its setup cell's DATA_URL)
    assert text.strip().splitlines() == [f"offline {tmp_path.name}", (REPO_ROOT / "data" / "emotions").as_uri() + "/"]
    assert nbformat.read(src, as_version=4).cells[0].outputs == []  # input untouched


def test_run_notebook_fails_on_error(tmp_path):
    src = tmp_path / "bad.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("raise ValueError('boom')")]
    nbformat.write(nb, src)
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "run_notebook.sh"), str(src)],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode != 0
    assert "boom" in proc.stderr
    assert (tmp_path / "bad.executed.ipynb").is_file()
