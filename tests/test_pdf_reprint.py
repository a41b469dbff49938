"""A warm rebuild prints book.pdf again only when something it is made from changed
(tools/book_build.py: pdf_inputs_digest and the stamp next to the site)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools import book_build, site_markdown, site_pdf

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def book(tmp_path):
    """A copy of the book's PDF inputs and a fake build output with one executed notebook."""
    root = tmp_path / "root"
    for pattern in book_build.PDF_INPUT_PATTERNS:
        for path in REPO_ROOT.glob(pattern):
            if path.is_file() and "_build" not in path.parts and not path.name.endswith(".executed.ipynb"):
                target = root / path.relative_to(REPO_ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    (root / "README.md").write_text("not a page\n")
    out = tmp_path / "out"
    executed = out / "_build" / book_build.EXECUTE_DIRNAME / "notebooks"
    executed.mkdir(parents=True)
    (executed / "03_train.ipynb").write_text('{"outputs": "KL 0.10"}')
    (out / "_build" / "html").mkdir(parents=True)
    return root, out


def test_the_digest_follows_pages_outputs_and_style_only(book):
    root, out = book
    first = book_build.pdf_inputs_digest(root, out)
    assert book_build.pdf_inputs_digest(root, out) == first
    (root / "README.md").write_text("edited\n")
    assert book_build.pdf_inputs_digest(root, out) == first
    changes = [
        root / "book" / "intro.md",
        root / "_static" / "book.css",
        out / "_build" / book_build.EXECUTE_DIRNAME / "notebooks" / "03_train.ipynb",
        root / "_toc.yml",
    ]
    seen = {first}
    for path in changes:
        path.write_text(path.read_text() + "\n% changed\n")
        digest = book_build.pdf_inputs_digest(root, out)
        assert digest not in seen, f"editing {path.name} left the digest as it was"
        seen.add(digest)


def test_the_pdf_is_printed_again_only_after_a_change(book, monkeypatch):
    root, out = book
    printed = []

    def fake_print(root_, out_, env, jupyter_book, log):
        printed.append(1)
        (out_ / "_build" / "html" / site_pdf.PDF_FILENAME).write_bytes(b"%PDF-1.7 fake")

    monkeypatch.setattr(site_pdf, "build_pdf", fake_print)
    monkeypatch.setattr(site_markdown, "write_site_markdown", lambda root_, html: ["llms.txt"])
    logged = []
    extras = lambda: book_build._write_site_extras(root, out, {}, "jupyter-book", True, logged.append)
    extras()
    extras()
    assert len(printed) == 1 and "kept it" in logged[-1]
    (root / "notebooks" / "01_target_shapes.ipynb").write_text("{}")
    extras()
    assert len(printed) == 2
    (out / "_build" / "html" / site_pdf.PDF_FILENAME).unlink()  # a lost PDF is printed again
    extras()
    assert len(printed) == 3
