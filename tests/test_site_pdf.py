"""The whole book as one PDF (``book.pdf`` next to the site's pages, tools/site_pdf.py).

The book tests (``-m book``) read the PDF of the session's build (`built_book`)
with pypdf: it has every page of the toc, every figure of the site, and the
intro links to it. The print test (``-m browser``) prints a small page in
headless Chromium to check the print CSS: collapsed code cells are opened and
long code lines are wrapped, not cut off. Without Chromium it skips, except
under CI (``CI=true``).
"""

from __future__ import annotations

import functools
import html
import os
import re
import subprocess
import sys
import types
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pypdf
import pytest
import yaml
from myst_nb.sphinx_ import HideCodeCellNode, depart_HideCellInput, visit_HideCellInput

from conftest import REPO_ROOT, toc_docnames
from test_site_links import parse_site
from tools import site_pdf

DOCNAMES = toc_docnames(REPO_ROOT / "_toc.yml")
CONFIG = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())

#: At c87146c the book printed to 140 A4 pages (9 toc pages, each from a new
#: page). Half of that still leaves room for edits and layout changes, but fails
#: when whole chapters are lost (printing the redirect in index.html gives 1 page,
#: the intro alone 3).
MIN_PAGES = 70


def _normalized(text: str) -> str:
    """Text as compared here: ligatures split (NFKC), runs of whitespace as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


@functools.cache
def _pdf(pdf_path: Path) -> pypdf.PdfReader:
    if not pdf_path.is_file():
        pytest.fail(f"no {pdf_path}: tools/site_pdf.build_pdf did not run", pytrace=False)
    return pypdf.PdfReader(pdf_path)


def _text_of(reader: pypdf.PdfReader) -> str:
    return _normalized(" ".join(page.extract_text() for page in reader.pages))


def _pdf_path(built_book) -> Path:
    return built_book.html_dir / site_pdf.PDF_FILENAME


def _page_title(page: Path) -> str:
    """A page's own title: its <title> without the book's title after the dash."""
    title = re.search(r"<title>(.*?)</title>", page.read_text(encoding="utf-8"), re.S).group(1)
    return _normalized(html.unescape(title).removesuffix(f" \u2014 {CONFIG['title']}"))


@pytest.mark.book
def test_pdf_has_a_plausible_page_count(built_book):
    pages = len(_pdf(_pdf_path(built_book)).pages)
    assert pages >= len(DOCNAMES), f"{pages} PDF pages for {len(DOCNAMES)} toc pages"
    assert pages > MIN_PAGES, f"the book printed to only {pages} pages (expected more than {MIN_PAGES})"


@pytest.mark.book
def test_pdf_embeds_every_figure(built_book):
    figures = [
        url
        for parsed in parse_site(built_book.html_dir).values()
        for tag, url in parsed.urls
        if tag == "img" and "_images/" in url
    ]
    images = sum(len(page.images) for page in _pdf(_pdf_path(built_book)).pages)
    assert figures, "the site has no figures under _images/: is this the book's build?"
    assert images >= len(figures), f"{images} image(s) in the PDF, {len(figures)} figure(s) on the site"


@pytest.mark.book
def test_pdf_has_every_page_title(built_book):
    text = _text_of(_pdf(_pdf_path(built_book)))
    titles = {docname: _page_title(built_book.html_dir / f"{docname}.html") for docname in DOCNAMES}
    missing = {docname: title for docname, title in titles.items() if title not in text}
    assert not missing, f"page titles not in the PDF's text: {missing}"


def _resolve(page: Path, url: str) -> Path:
    """The file a relative ``url`` on ``page`` points to."""
    return (page.parent / unquote(urlsplit(url).path)).resolve()


@pytest.mark.book
def test_intro_links_to_the_pdf(built_book):
    html_dir = built_book.html_dir.resolve()
    intro = html_dir / f"{DOCNAMES[0]}.html"
    pdf = html_dir / site_pdf.PDF_FILENAME
    absolute = CONFIG["html"]["baseurl"].rstrip("/") + "/" + site_pdf.PDF_FILENAME
    links = [url for tag, url in parse_site(html_dir)[intro].urls if tag == "a"]
    to_pdf = [url for url in links if url == absolute or _resolve(intro, url) == pdf]
    assert to_pdf, f"{intro.relative_to(html_dir)} has no link to {site_pdf.PDF_FILENAME}"


# --------------------------------------------------------------------------- #
# Without the book: Chromium missing, and the print CSS on a small page
# --------------------------------------------------------------------------- #
def test_missing_chromium_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(site_pdf, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(site_pdf.PdfBuildError) as error:
        site_pdf.build_pdf(tmp_path, tmp_path, {}, jupyter_book=str(tmp_path / "no-jupyter-book"))
    assert "no-chromium not found" in str(error.value)
    assert "bash scripts/setup.sh --browser" in str(error.value)
    assert "without the PDF" in str(error.value)


LONG_LINE_END = "END_OF_A_VERY_LONG_LINE"
HIDDEN_CODE = f'hidden_setup = {{"value": 42}}  # {"x" * 300} {LONG_LINE_END}'


def _collapsed_cell_page() -> str:
    """A page with one hide-input cell, written by myst-nb's own HTML visitor, under
    a scrolling <pre> like the theme's."""
    node = HideCodeCellNode(prompt_show="Show code cell source", prompt_hide="Hide code cell source")
    node["classes"].append("above-input")
    translator = types.SimpleNamespace(body=[])
    visit_HideCellInput(translator, node)
    translator.body.append(f'<div class="cell_input"><pre>{html.escape(HIDDEN_CODE)}</pre></div>')
    depart_HideCellInput(translator, node)
    cell = "".join(translator.body)
    return f'''<html><head><style>pre {{ overflow: auto; }}</style></head>
<body><div class="cell tag_hide-input">{cell}</div></body></html>'''


@pytest.mark.browser
def test_print_opens_collapsed_cells_and_wraps_long_lines(tmp_path):
    if not site_pdf.CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{site_pdf.CHROMIUM} not found", pytrace=False)
        pytest.skip(f"{site_pdf.CHROMIUM} not found (`bash scripts/setup.sh --browser`)")
    page = tmp_path / "index.html"
    page.write_text(_collapsed_cell_page())
    pdf = tmp_path / "cell.pdf"
    # In a process of its own, as the build runs it: in this one, the browser tests' session
    # may already hold Playwright's sync API, which cannot be entered twice.
    printer = "import sys; from pathlib import Path; from tools.site_pdf import print_pdf; " \
              "print_pdf(Path(sys.argv[1]), Path(sys.argv[2]), log=lambda _: None)"
    subprocess.run([sys.executable, "-c", printer, str(page), str(pdf)], cwd=REPO_ROOT, check=True)
    text = _text_of(pypdf.PdfReader(pdf))
    assert 'hidden_setup = {"value": 42}' in text, text
    assert LONG_LINE_END in text, f"the long code line is cut off: {text[-200:]!r}"
    assert "Show code cell source" not in text, text
