"""tools/pre_execute.py: the pages execute side by side into the jupyter cache before Sphinx
runs, Sphinx then executes none of them, and a page that fails there is executed again by
Sphinx, which reports its error as before."""

from __future__ import annotations

import os

import nbformat
import pytest

from conftest import write_tiny_book
from tools import book_build


def _add_page(root, name, code):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), nbformat.v4.new_code_cell(code)]
    nbformat.write(notebook, root / f"{name}.ipynb")
    toc = (root / "_toc.yml").read_text()
    if "chapters:" not in toc:
        toc += "chapters:\n"
    (root / "_toc.yml").write_text(toc + f"- file: {name}\n")


def _build(root, workers):
    return book_build.build_book(root, root / "out", env={**os.environ, book_build.BACKEND_ENV: "offline"},
                                 echo=False, log=lambda _line: None, site_extras=False, workers=workers)


@pytest.mark.slow
def test_the_pages_execute_in_workers_and_sphinx_reads_them_from_the_cache(tmp_path):
    """Slow: a three-page tiny book built twice (three kernels, then none)."""
    root = tmp_path / "tiny"
    write_tiny_book(root, "print('PAGE-ONE')")
    _add_page(root, "two", "print('PAGE-TWO')")
    _add_page(root, "three", "print('PAGE-THREE')")
    first = _build(root, workers=2)
    assert first.ok, first.log_tail()
    assert (first.executed, first.cached, first.failed) == (3, 0, 0)
    sphinx_log = first.log_path.read_text()
    assert "Executing notebook using" not in sphinx_log and sphinx_log.count("Using cached notebook") == 3
    executed_lines = (first.build_dir / book_build.EXECUTE_LOG_FILENAME).read_text()
    assert executed_lines.count("Executed notebook in") == 3 and "in 2 worker(s)" in executed_lines
    for page, text in (("intro", "PAGE-ONE"), ("two", "PAGE-TWO"), ("three", "PAGE-THREE")):
        assert text in (first.html_dir / f"{page}.html").read_text()
    second = _build(root, workers=2)  # nothing changed: nothing executes, here or in Sphinx
    assert second.ok and second.executed == 0
    assert (second.build_dir / book_build.EXECUTE_LOG_FILENAME).read_text() == ""


@pytest.mark.slow
def test_a_page_that_fails_in_a_worker_is_reported_by_the_sphinx_build(tmp_path):
    """Slow: a two-page tiny book; one page raises (two kernels start for it, one here and one in Sphinx)."""
    root = tmp_path / "tiny"
    write_tiny_book(root, "print('fine')")
    _add_page(root, "broken", "raise RuntimeError('BROKEN-PAGE')")
    result = _build(root, workers=2)
    assert not result.ok and result.failed == 1
    assert "broken failed to execute here" in (result.build_dir / book_build.EXECUTE_LOG_FILENAME).read_text()
    assert "BROKEN-PAGE" in result.log_path.read_text()
