"""The whole book as one PDF, with its figures: ``<out>/_build/html/book.pdf``.

tools/book_build.py calls :func:`build_pdf` after a successful HTML build, into the
same output directory (``python -m tools.book_build --no-pdf`` skips it). Two steps:

1. ``jupyter-book build ROOT --builder singlehtml --path-output OUT``: the book as
   one HTML page, in ``OUT/_build/singlehtml``. It shares the HTML build's jupyter
   cache (``OUT/_build/.jupyter_cache``), so it executes nothing when that build
   succeeded; its log is ``OUT/_build/book-singlehtml.log``. The HTML build's
   files in ``OUT/_build/html`` are checked to be left as they were.
2. Headless Debian Chromium (``/usr/bin/chromium``, installed by
   ``bash scripts/setup.sh --browser``; ``$BOOK_CHROMIUM`` names another Chromium or
   Chrome binary; Playwright never downloads a browser)
   prints that page to ``OUT/_build/html/book.pdf`` (A4), once its images,
   MathJax and fonts are ready. The print-only CSS lives here
   (:data:`PRINT_CSS`, injected at print time): no sidebars or header buttons,
   collapsed (hide-input) code cells opened and their "Show code cell source"
   toggles hidden, long code lines wrapped.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable, Mapping

from playwright.sync_api import Page, Route, sync_playwright

from tools.build_log import count_executions, run_logged
from tools.pages import reading_order

CHROMIUM = Path(os.environ.get("BOOK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run")
SINGLEHTML_DIRNAME = "singlehtml"
SINGLEHTML_LOG_FILENAME = "book-singlehtml.log"
PDF_FILENAME = "book.pdf"
LOAD_TIMEOUT_MS = 120_000

Log = Callable[[str], None]

#: Print-only CSS, injected into the single page before printing.
PRINT_CSS = """
@media print {
  .bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-header-article,
  .article-header-buttons, .header-article-items, .bd-footer, .bd-footer-article,
  .footer-article-items, .prev-next-area, .skip-link, #pst-back-to-top,
  .search-button-field, .theme-switch-button, .sidebar-toggle, .headerlink,
  div.cell details.hide > summary { display: none !important; }
  .bd-main .bd-content, .bd-main .bd-content .bd-article-container,
  .bd-page-width { max-width: 100% !important; }
  pre, pre code, .highlight pre, div.cell_output pre {
    white-space: pre-wrap !important; overflow-wrap: anywhere; overflow: visible !important;
  }
  span[id^="document-"] { display: block; break-before: page; }
  img, figure, div.cell_output { break-inside: avoid; }
  img { max-width: 100% !important; height: auto; }
  h1, h2, h3, h4 { break-after: avoid; }
}
"""

#: Open every collapsed block (hide-input cells, dropdowns): a PDF cannot unfold them.
OPEN_DETAILS_JS = "() => document.querySelectorAll('details').forEach(d => { d.open = true; })"

#: Resolves once every image has loaded (or failed), MathJax has typeset and the
#: fonts are in, to the images that did not load; rejects after ``timeoutMs``.
READY_JS = """
async (timeoutMs) => {
  const imgs = [...document.images];
  const ready = async () => {
    imgs.forEach(i => { i.loading = 'eager'; });
    await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
        i.addEventListener('load', r, {once: true});
        i.addEventListener('error', r, {once: true});
    })));
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
        await MathJax.startup.promise;
    }
    await document.fonts.ready;
  };
  const late = new Promise((_, reject) => setTimeout(
      () => reject(new Error(`images, MathJax or fonts not ready after ${timeoutMs} ms`)), timeoutMs));
  await Promise.race([ready(), late]);
  return imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src);
}
"""

FOOTER_TEMPLATE = (
    '<div style="font-size:8px; width:100%; text-align:center; color:#666;">'
    '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
)
PDF_OPTIONS = {
    "format": "A4",
    "print_background": True,
    "margin": {"top": "16mm", "bottom": "18mm", "left": "14mm", "right": "14mm"},
    "display_header_footer": True,
    "header_template": "<span></span>",
    "footer_template": FOOTER_TEMPLATE,
    # Bookmarks for the chapters and sections; Chromium writes them only into a
    # tagged (accessible) PDF, which is about three times the size (1.9 -> 5.7 MB).
    "outline": True,
    "tagged": True,
}


class PdfBuildError(RuntimeError):
    """The PDF could not be made; the message says why and what to do."""


# --------------------------------------------------------------------------- #
# Step 1: the book as one HTML page
# --------------------------------------------------------------------------- #
def _file_states(directory: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file below ``directory``, by relative path."""
    return {
        p.relative_to(directory).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in directory.rglob("*")
        if p.is_file()
    }


def _changed_files(before: Mapping[str, tuple], after: Mapping[str, tuple]) -> list[str]:
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def build_singlehtml(root: Path, out: Path, env: Mapping[str, str], jupyter_book: str, log: Log) -> Path:
    """Build the book as one page in ``out/_build/singlehtml``; return that page.

    Raises :class:`PdfBuildError` when the build fails or touches ``out/_build/html``.
    """
    build_dir = out / "_build"
    html_dir = build_dir / "html"
    cmd = [jupyter_book, "build", str(root), "--builder", "singlehtml", "--path-output", str(out)]
    log_path = build_dir / SINGLEHTML_LOG_FILENAME
    before = _file_states(html_dir)
    log(f"[pdf] running: {' '.join(cmd)}")
    start = time.perf_counter()
    returncode = run_logged(cmd, root, env, log_path, echo=False)
    log(f"[pdf] single-page HTML built in {time.perf_counter() - start:.1f} s (log: {log_path})")
    if returncode != 0:
        raise PdfBuildError(f"the single-page HTML build failed (exit {returncode}); see {log_path}")
    _report_executions(log_path, log)
    changed = _changed_files(before, _file_states(html_dir))
    if changed:
        raise PdfBuildError(
            f"the single-page HTML build changed {html_dir}: " + ", ".join(changed[:10])
        )
    return single_page(root, build_dir / SINGLEHTML_DIRNAME)


def single_page(root: Path, singlehtml_dir: Path) -> Path:
    """Make ``singlehtml_dir/index.html`` the page that holds the whole book; return it.

    jupyter-book writes the book to the toc's root page (``book/intro.html``) and
    an ``index.html`` that redirects there, but Sphinx writes that page's links
    (``_static/``, ``_images/``) relative to the output's root, so they only
    resolve from ``index.html``: the page is copied over the redirect.
    """
    toc_root = reading_order(root / "_toc.yml")[0]
    book_page = singlehtml_dir / f"{toc_root}.html"
    if not book_page.is_file():
        raise PdfBuildError(f"the single-page HTML build wrote no {book_page}")
    index_html = singlehtml_dir / "index.html"
    shutil.copyfile(book_page, index_html)
    return index_html


def _report_executions(log_path: Path, log: Log) -> None:
    counts = count_executions(log_path.read_text(encoding="utf-8", errors="replace"))
    if counts["executed"]:
        log(
            f"[pdf] WARNING: the single-page build executed {counts['executed']} notebook(s): "
            "the jupyter cache missed them (run the HTML build first, into the same --path-output)"
        )


# --------------------------------------------------------------------------- #
# Step 2: print it with headless Chromium
# --------------------------------------------------------------------------- #
def require_chromium() -> Path:
    """The browser that prints the PDF; a :class:`PdfBuildError` that says how to get it."""
    if not CHROMIUM.is_file():
        raise PdfBuildError(
            f"{CHROMIUM} not found: the book's PDF is printed with Debian's chromium. "
            "Install it with `bash scripts/setup.sh --browser` (as root), "
            "or build the book without the PDF."
        )
    return CHROMIUM


def _local_files_only(route: Route) -> None:
    """The page is printed from local files only: no request leaves the machine."""
    if route.request.url.startswith("file:"):
        route.continue_()
    else:
        route.abort()


def _prepare_for_print(page: Page) -> None:
    page.evaluate(OPEN_DETAILS_JS)
    page.add_style_tag(content=PRINT_CSS)
    broken = page.evaluate(READY_JS, LOAD_TIMEOUT_MS)
    if broken:
        raise PdfBuildError(f"images that did not load: {', '.join(broken[:10])}")


def print_pdf(html_page: Path, pdf_path: Path, log: Log = print) -> Path:
    """Print ``html_page`` (a local file) to ``pdf_path`` with headless Chromium."""
    chromium = require_chromium()
    start = time.perf_counter()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            page = browser.new_page(color_scheme="light")
            page.set_default_timeout(LOAD_TIMEOUT_MS)
            page.route("**/*", _local_files_only)
            page.goto(html_page.resolve().as_uri(), wait_until="load")
            _prepare_for_print(page)
            page.pdf(path=str(pdf_path), **PDF_OPTIONS)
        finally:
            browser.close()
    seconds = time.perf_counter() - start
    log(f"[pdf] printed {pdf_path} ({pdf_path.stat().st_size / 1e6:.1f} MB) in {seconds:.1f} s")
    return pdf_path


# --------------------------------------------------------------------------- #
# Both steps
# --------------------------------------------------------------------------- #
def build_pdf(
    root: Path, out: Path, env: Mapping[str, str], jupyter_book: str, log: Log = print
) -> Path:
    """Make ``out/_build/html/book.pdf`` from the book in ``root``; return its path.

    Call it after a successful HTML build into the same ``out``: it reuses that
    build's jupyter cache and executes nothing, and leaves ``out/_build/html``
    alone but for the PDF. Logs the wall time of each step. Raises
    :class:`PdfBuildError` (before building anything when Chromium is missing).
    """
    root, out = Path(root).resolve(), Path(out).resolve()
    require_chromium()
    page = build_singlehtml(root, out, env, jupyter_book, log)
    return print_pdf(page, out / "_build" / "html" / PDF_FILENAME, log)
