"""The site as readers meet it: every page of the built book in a real browser.

Headless Debian Chromium (/usr/bin/chromium, installed by
``bash scripts/setup.sh --browser``; Playwright never downloads a browser)
loads the HTML of the session's cold build (`built_book`) from a local
``http.server`` on 127.0.0.1. Requests to any other host (fonts, CDNs, Binder)
are aborted: the site must work without them. Each page is visited once, the
observations are shared by the tests below, and a screenshot of every page
lands in ``artifacts/screenshots/<docname, "/" -> "__">.png`` (pages with figures
also ``...-dark.png``, the first figure in dark mode), with per-page load times
in ``artifacts/screenshots/visits.json``.

Select with ``-m browser``. Without Chromium the tests skip, except under CI
(``CI=true``), where a missing browser is a failure.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import io
import json
import os
import re
import shutil
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml

from conftest import REPO_ROOT, page_cells, page_source, toc_docnames
from test_notebook_setup import PAGES as EXECUTABLE_PAGES

pytestmark = [pytest.mark.browser, pytest.mark.book]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_DIR = REPO_ROOT / "artifacts" / "screenshots"
ISSUE_703 = "book/issue-703"
SEARCH_TERM = "target_tokens"
NAV_TIMEOUT_MS = 60_000
MATH_TIMEOUT_MS = 60_000

DOCNAMES = toc_docnames(REPO_ROOT / "_toc.yml")
CONFIG = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())


def _shot_name(docname: str, suffix: str = "") -> str:
    return docname.replace("/", "__") + suffix + ".png"


# --------------------------------------------------------------------------- #
# Fixtures: server, browser, one visit per page
# --------------------------------------------------------------------------- #
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature from the base class
        pass


@pytest.fixture(scope="session")
def site_url(built_book):
    """Base URL (ends with '/') of a static server for the built HTML."""
    handler = functools.partial(_QuietHandler, directory=str(built_book.html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).is_file():
        message = (
            f"{CHROMIUM} not found: install Debian's chromium "
            "(`bash scripts/setup.sh --browser`, as root)"
        )
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def browser_context(browser, site_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(NAV_TIMEOUT_MS)
    blocked: list[str] = []

    def only_local(route):
        host = urlsplit(route.request.url).hostname
        if host == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    context.blocked_external = blocked  # type: ignore[attr-defined]
    yield context
    context.close()


def _is_local(url: str) -> bool:
    return urlsplit(url).hostname == "127.0.0.1"


@dataclasses.dataclass
class PageVisit:
    docname: str
    url: str
    seconds: float
    console_errors: list[str]
    page_errors: list[str]
    local_failures: list[str]  # 127.0.0.1 requests that failed or answered >= 400
    local_requests: int
    blocked_external: list[str]
    has_math: bool  # the article holds formulas (elements with class "math")
    mjx_containers: int
    mjx_errors: int
    images: list[dict]  # <img> in the article body
    download_links: list[str]  # absolute URLs of .ipynb links in the download menu
    launch_links: list[str]  # absolute hrefs in the launch menu
    repo_links: list[str]
    collapsed_cells: list[dict]  # each cell tagged hide-input: its code hidden at first load?
    overflowing_code: list[str]  # code or output blocks wider than their column, cells expanded
    screenshot: Path
    dark_screenshot: Path | None = None


_PAGE_STATE_JS = """
async () => {
  const imgs = [...document.querySelectorAll('article.bd-article img')];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => (i.complete ? null : new Promise(r => {
      i.addEventListener('load', r, {once: true});
      i.addEventListener('error', r, {once: true});
      setTimeout(r, 20000);
  }))));
  // Sphinx marks every formula (MyST $...$, $$...$$, notebook LaTeX output) with
  // class "math". (The MathJax script alone says little: Sphinx also loads it on
  // a page whose toctree merely includes pages with math, e.g. the root page.)
  const hasMath = !!document.querySelector('article.bd-article .math');
  if (hasMath && window.MathJax && MathJax.startup && MathJax.startup.promise) {
      await Promise.race([MathJax.startup.promise, new Promise(r => setTimeout(r, %d))]);
  }
  const hrefs = sel => [...document.querySelectorAll(sel)].map(a => a.href);
  return {
    hasMath,
    mathjaxLoaded: !!(window.MathJax && MathJax.startup),
    mjx: document.querySelectorAll('mjx-container').length,
    mjxErrors: document.querySelectorAll('mjx-merror').length,
    images: imgs.map(i => ({
        src: i.currentSrc || i.src, alt: i.getAttribute('alt'),
        complete: i.complete, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight})),
    downloads: hrefs('.dropdown-download-buttons a[href$=".ipynb"]'),
    launches: hrefs('.dropdown-launch-buttons a'),
    repo: hrefs('a.btn-source-repository-button, .dropdown-source-buttons a'),
    collapsed: [...document.querySelectorAll('article.bd-article div.cell.tag_hide-input')].map(cell => {
        const details = cell.querySelector('details.hide');
        const code = cell.querySelector('.cell_input pre');
        return {first_line: code ? code.textContent.split('\\n')[0] : null,
                has_toggle: !!details, open: !!(details && details.open),
                // checkVisibility: false inside a closed <details> (content-visibility), where
                // offsetHeight may still be non-zero
                code_visible: !!(code && code.checkVisibility())};
    }),
  };
}
""" % MATH_TIMEOUT_MS

#: Opens every collapsed cell, then lists the code and output blocks whose lines do not fit
#: their column (wider content than box: the reader would scroll or lose the line's end).
_OVERFLOW_JS = """
() => {
  document.querySelectorAll('article.bd-article details.hide').forEach(d => { d.open = true; });
  return [...document.querySelectorAll('article.bd-article pre')]
      .filter(pre => pre.offsetHeight > 0 && pre.scrollWidth > pre.clientWidth + 1)
      .map(pre => `${pre.scrollWidth}px in ${pre.clientWidth}px: ${pre.textContent.slice(0, 80)}`);
}
"""


def _visit(context, base_url: str, docname: str) -> PageVisit:
    page = context.new_page()
    console_errors: list[str] = []
    page_errors: list[str] = []
    local_failures: list[str] = []
    local_requests = 0
    blocked_before = len(context.blocked_external)

    def on_console(msg):
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        # Aborted external requests log "Failed to load resource" against their
        # own (external) URL: those are expected offline, not page errors.
        if where and not _is_local(where):
            return
        console_errors.append(f"{msg.text} [{where}]")

    def on_request(request):
        nonlocal local_requests
        if _is_local(request.url):
            local_requests += 1

    def on_failed(request):
        if _is_local(request.url):
            local_failures.append(f"{request.url}: {request.failure}")

    def on_response(response):
        if _is_local(response.url) and response.status >= 400:
            local_failures.append(f"{response.url}: HTTP {response.status}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    page.on("request", on_request)
    page.on("requestfailed", on_failed)
    page.on("response", on_response)

    url = urljoin(base_url, f"{docname}.html")
    start = time.perf_counter()
    page.goto(url, wait_until="load", timeout=NAV_TIMEOUT_MS)
    state = page.evaluate(_PAGE_STATE_JS)
    try:
        page.wait_for_load_state("networkidle", timeout=10_000)
    except Exception:  # noqa: BLE001 - networkidle is best effort (aborted requests)
        pass
    seconds = time.perf_counter() - start

    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOT_DIR / _shot_name(docname)
    page.screenshot(path=str(shot), full_page=True)  # as a reader first sees it: plumbing collapsed
    overflowing = page.evaluate(_OVERFLOW_JS)
    dark = None
    if state["images"]:
        # Dark mode, as the theme's switcher sets it (data-theme + localStorage).
        page.evaluate(
            "() => { localStorage.setItem('theme', 'dark'); localStorage.setItem('mode', 'dark');"
            " document.documentElement.dataset.theme = 'dark';"
            " document.documentElement.dataset.mode = 'dark'; }"
        )
        page.wait_for_timeout(300)
        dark = SCREENSHOT_DIR / _shot_name(docname, "-dark")
        first_img = page.locator("article.bd-article img").first
        first_img.scroll_into_view_if_needed()
        page.screenshot(path=str(dark), full_page=False)
        page.evaluate(
            "() => { localStorage.removeItem('theme'); localStorage.removeItem('mode'); }"
        )
    page.close()
    return PageVisit(
        docname=docname,
        url=url,
        seconds=seconds,
        console_errors=console_errors,
        page_errors=page_errors,
        local_failures=local_failures,
        local_requests=local_requests,
        blocked_external=list(context.blocked_external[blocked_before:]),
        has_math=state["hasMath"],
        mjx_containers=state["mjx"],
        mjx_errors=state["mjxErrors"],
        images=state["images"],
        download_links=state["downloads"],
        launch_links=state["launches"],
        repo_links=state["repo"],
        collapsed_cells=state["collapsed"],
        overflowing_code=overflowing,
        screenshot=shot, dark_screenshot=dark,
    )


@pytest.fixture(scope="session")
def visits(browser_context, site_url) -> dict[str, PageVisit]:
    """Every _toc.yml page, visited once; a summary goes to artifacts/screenshots/visits.json."""
    if SCREENSHOT_DIR.exists():
        shutil.rmtree(SCREENSHOT_DIR)
    out: dict[str, PageVisit] = {}
    for docname in DOCNAMES:
        out[docname] = _visit(browser_context, site_url, docname)
    summary = [
        {
            "page": v.docname,
            "seconds": round(v.seconds, 2),
            "local_requests": v.local_requests,
            "blocked_external": sorted(set(v.blocked_external)),
            "images": len(v.images),
            "math": v.has_math,
            "mjx_containers": v.mjx_containers,
            "screenshot": str(v.screenshot.relative_to(REPO_ROOT)),
        }
        for v in out.values()
    ]
    (SCREENSHOT_DIR / "visits.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n[browser] " + "; ".join(f"{s['page']} {s['seconds']}s img={s['images']} mjx={s['mjx_containers']}" for s in summary))
    return out


# --------------------------------------------------------------------------- #
# Every page
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("docname", DOCNAMES)
def test_page_loads_cleanly(visits, docname):
    v = visits[docname]
    problems = (
        [f"console error: {e}" for e in v.console_errors]
        + [f"uncaught exception: {e}" for e in v.page_errors]
        + [f"failed local request: {e}" for e in v.local_failures]
    )
    assert v.local_requests > 0
    assert not problems, f"{v.url}:\n" + "\n".join(problems)
    assert v.screenshot.is_file()


_FILENAME_ALT = re.compile(r"\.(png|jpe?g|svg|gif|webp)$", re.IGNORECASE)


@pytest.mark.parametrize("docname", DOCNAMES)
def test_images_load_and_have_alt_text(visits, docname):
    v = visits[docname]
    problems = []
    for img in v.images:
        name = img["src"].rsplit("/", 1)[-1]
        if not (img["complete"] and img["naturalWidth"] > 0):
            problems.append(f"image did not load: {img['src']}")
        alt = (img["alt"] or "").strip()
        if not alt:
            problems.append(f"image without alt text: {name}")
        elif _FILENAME_ALT.search(alt) or alt.rsplit("/", 1)[-1] == name:
            # myst-nb's default alt for a cell's image output is its file path
            problems.append(f"image whose alt text is only its file name ({alt!r}): {name}")
    assert not problems, f"{v.url}:\n" + "\n".join(problems)


def test_math_is_rendered(visits):
    """Pages with math load MathJax from the site itself and it typesets all of it."""
    with_math = [v for v in visits.values() if v.has_math]
    if not with_math:
        pytest.skip("no page of the book has math")
    problems = []
    for v in with_math:
        if v.mjx_containers == 0:
            problems.append(
                f"{v.docname}: has math but MathJax rendered none of it (no <mjx-container>); "
                "is MathJax served locally (_vendor/mathjax, `bash scripts/setup.sh`)?"
            )
        if v.mjx_errors:
            problems.append(f"{v.docname}: {v.mjx_errors} MathJax error(s) (<mjx-merror>)")
        outside = [u for u in v.blocked_external if "mathjax" in u.lower()]
        if outside:
            problems.append(f"{v.docname}: MathJax requested from outside the site: {outside}")
    assert not problems, "\n".join(problems)


def test_every_page_was_screenshotted(visits):
    missing = [d for d in DOCNAMES if not (SCREENSHOT_DIR / _shot_name(d)).is_file()]
    assert not missing, f"no screenshot for {missing}"


# --------------------------------------------------------------------------- #
# Figures in dark mode
# --------------------------------------------------------------------------- #
def _opaque_problem(data: bytes) -> str | None:
    from PIL import Image

    im = Image.open(io.BytesIO(data))
    if im.format != "PNG":
        return None
    if im.mode in ("P", "L", "RGB") and "transparency" not in im.info:
        return None
    alpha = im.convert("RGBA").getchannel("A")
    lo, _hi = alpha.getextrema()
    if lo >= 250:
        return None
    see_through = sum(alpha.histogram()[:250]) / (im.width * im.height)
    return f"{see_through:.0%} of its pixels are transparent (min alpha {lo})"


def test_figures_are_opaque_for_dark_mode(visits, built_book):
    """A transparent matplotlib PNG shows black axes on the dark theme's near-black page."""
    problems = []
    checked = 0
    for v in visits.values():
        for img in v.images:
            path = urlsplit(img["src"]).path
            if not path.lower().endswith(".png"):
                continue
            file = built_book.html_dir / unquote(path).lstrip("/")
            if not file.is_file():
                continue  # reported by test_images_load_and_have_alt_text
            checked += 1
            problem = _opaque_problem(file.read_bytes())
            if problem:
                problems.append(f"{v.docname}: {file.name}: {problem}")
    if not checked:
        pytest.skip("no PNG figures in the book")
    assert not problems, (
        "figures must have an opaque background (matplotlib: facecolor='white'):\n"
        + "\n".join(problems)
    )
    dark = [v.dark_screenshot for v in visits.values() if v.dark_screenshot]
    assert dark and all(p.is_file() for p in dark)


def test_opaque_check_detects_transparency():
    from PIL import Image

    def png(mode, color):
        buf = io.BytesIO()
        Image.new(mode, (4, 4), color).save(buf, format="PNG")
        return buf.getvalue()

    assert _opaque_problem(png("RGB", (255, 255, 255))) is None
    assert _opaque_problem(png("RGBA", (255, 255, 255, 255))) is None
    assert "100%" in _opaque_problem(png("RGBA", (0, 0, 0, 0)))


# --------------------------------------------------------------------------- #
# Download and launch buttons
# --------------------------------------------------------------------------- #
# Collapsed plumbing, no clipped code
# --------------------------------------------------------------------------- #
EXECUTABLE_DOCS = list(EXECUTABLE_PAGES)


@pytest.mark.parametrize("docname", EXECUTABLE_DOCS)
def test_setup_cells_are_collapsed_on_the_page(visits, docname):
    """The cells tagged hide-input (the setup cell first) show a toggle, not their code,
    until the reader opens them; the screenshot shows the page so."""
    cells = visits[docname].collapsed_cells
    tagged = [c for c in page_cells(page_source(docname)) if c.kind == "code" and "hide-input" in c.tags]
    assert len(cells) == len(tagged) >= 2, (cells, len(tagged))
    assert cells[0]["first_line"] == tagged[0].source.splitlines()[0]  # the setup cell
    shown = [c for c in cells if not c["has_toggle"] or c["open"] or c["code_visible"]]
    assert not shown, f"{docname}: collapsed cells that show their code: {shown}"


@pytest.mark.parametrize("docname", DOCNAMES)
def test_no_code_line_is_clipped(visits, docname):
    """At a laptop width (the browser context's 1280 px), with every collapsed cell opened,
    every code and output line fits the theme's column (long lines wrap)."""
    assert not visits[docname].overflowing_code, "\n".join(visits[docname].overflowing_code)


# --------------------------------------------------------------------------- #
NOTEBOOK_DOCS = [d for d in DOCNAMES if (REPO_ROOT / f"{d}.ipynb").is_file()]


@pytest.mark.parametrize("docname", NOTEBOOK_DOCS)
def test_download_button_gives_a_valid_notebook(visits, browser_context, docname):
    import nbformat

    v = visits[docname]
    links = [u for u in v.download_links if u.endswith(f"{docname.rsplit('/', 1)[-1]}.ipynb")]
    assert links, f"{v.url}: no .ipynb link in the download menu (found {v.download_links})"
    for link in links:
        assert _is_local(link) and "/_sources/" in link, link
        response = browser_context.request.get(link)
        assert response.ok, f"{link}: HTTP {response.status}"
        nb = nbformat.reads(response.text(), as_version=4)
        nbformat.validate(nb)
        assert any(c.cell_type == "code" for c in nb.cells), f"{link}: no code cells"


def _repo_slug() -> str:
    url = CONFIG["repository"]["url"].rstrip("/")
    parts = urlsplit(url)
    assert parts.netloc == "github.com", f"repository.url is not on GitHub: {url}"
    return parts.path.strip("/")


@pytest.mark.parametrize("docname", NOTEBOOK_DOCS)
def test_launch_buttons_point_to_configured_services(visits, docname):
    v = visits[docname]
    launch = CONFIG.get("launch_buttons") or {}
    repo = CONFIG["repository"]
    branch = repo.get("branch", "main")
    path = (repo.get("path_to_book") or "").strip("/")
    nb_path = "/".join(p for p in (path, f"{docname}.ipynb") if p)
    slug = _repo_slug()
    expected = {}
    if launch.get("binderhub_url"):
        expected["binder"] = f"{launch['binderhub_url'].rstrip('/')}/v2/gh/{slug}/{branch}"
    if launch.get("colab_url"):
        expected["colab"] = f"{launch['colab_url'].rstrip('/')}/github/{slug}/blob/{branch}/{nb_path}"
    assert expected, "no launch_buttons configured"
    for name, prefix in expected.items():
        matching = [u for u in v.launch_links if u.startswith(prefix)]
        assert matching, f"{v.url}: no {name} launch link starting with {prefix}; got {v.launch_links}"
        assert all(nb_path in unquote(u) for u in matching), (name, matching)
    assert (REPO_ROOT / nb_path).is_file(), f"launch links point to {nb_path}, not in the repo"
    assert any(u.rstrip("/") == repo["url"].rstrip("/") for u in v.repo_links), (
        f"{v.url}: no repository button to {repo['url']} (got {v.repo_links})"
    )


# --------------------------------------------------------------------------- #
# Search
# --------------------------------------------------------------------------- #
def test_search_finds_results(browser_context, site_url):
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(urljoin(site_url, f"search.html?q={SEARCH_TERM}"), wait_until="load")
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(state="attached", timeout=NAV_TIMEOUT_MS)
    links = [a.get_attribute("href") for a in page.locator("#search-results ul.search li a").all()]
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "search.png"))
    page.close()
    assert not errors, errors
    assert links, f"search for {SEARCH_TERM!r} found nothing"
    assert any(".html" in (h or "") for h in links), links


# --------------------------------------------------------------------------- #
# The #703 page: its anchors, and the links that point at them
# --------------------------------------------------------------------------- #
class _HrefParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def anchors_into(html_dir: Path, target_docname: str) -> dict[str, list[str]]:
    """Fragments of links from other pages into ``target_docname``: {fragment: [pages]}."""
    target = (html_dir / f"{target_docname}.html").resolve()
    found: dict[str, list[str]] = {}
    for page in sorted(html_dir.rglob("*.html")):
        rel = page.relative_to(html_dir).as_posix()
        if page.resolve() == target or rel.startswith(("_static/", "mathjax/")):
            continue
        parser = _HrefParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for href in parser.hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not parts.path or not parts.fragment:
                continue
            if (page.parent / unquote(parts.path)).resolve() == target:
                found.setdefault(unquote(parts.fragment), []).append(rel)
    return found


#: MyST labels, ``(name)=`` on a line of their own: the anchors that the answer to #703
#: (and any other page) links to.
_MYST_LABEL = re.compile(r"^\((?P<name>[^()\s]+)\)=\s*$", re.MULTILINE)


def myst_labels(html_dir: Path, docname: str) -> list[str]:
    """The labels declared in a page's source (a MyST file, or a notebook's markdown cells), as
    the build published it (``_sources``)."""
    sources = html_dir / "_sources"
    markdown = sources / f"{docname}.md"
    if markdown.is_file():
        return _MYST_LABEL.findall(markdown.read_text(encoding="utf-8"))
    notebook = json.loads((sources / f"{docname}.ipynb").read_text(encoding="utf-8"))
    return [label for cell in notebook["cells"] if cell["cell_type"] == "markdown"
            for label in _MYST_LABEL.findall("".join(cell["source"]))]


#: In the page: its links to its own fragments, and for each fragment asked about,
#: whether an element has that id and the heading of the section that element is or
#: labels (null when it is not in a section with a heading).
_PAGE_ANCHORS_JS = """
fragments => {
  const heading = id => {
    const section = document.getElementById(id)?.closest('section');
    const h = section?.querySelector(':scope > :is(h1, h2, h3, h4, h5, h6)');
    return h ? h.textContent.replace(/#$/, '').trim() : null;
  };
  const links = [...document.querySelectorAll('a[href^="#"]')]
    .map(a => ({fragment: decodeURIComponent(a.getAttribute('href').slice(1)), classes: a.className}))
    .filter(link => link.fragment);
  const ids = [...new Set([...fragments, ...links.map(link => link.fragment)])];
  return {
    links,
    targets: Object.fromEntries(ids.map(id => [id, {exists: !!document.getElementById(id), heading: heading(id)}])),
  };
}
"""


def test_issue_703_anchors_resolve(visits, browser_context, site_url, built_book):
    """The #703 page's labels, heading links and table of contents, and the links into it
    from other pages, all lead to an element of the page; the labels and links to
    headings lead to a section's heading."""
    assert ISSUE_703 in visits, f"{ISSUE_703} is not in _toc.yml"
    v = visits[ISSUE_703]
    assert not (v.console_errors or v.page_errors or v.local_failures)
    labels = myst_labels(built_book.html_dir, ISSUE_703)
    from_pages = anchors_into(built_book.html_dir, ISSUE_703)
    page = browser_context.new_page()
    page.goto(v.url, wait_until="load")
    found = page.evaluate(_PAGE_ANCHORS_JS, [*labels, *from_pages])
    page.close()
    # headerlinks (the "#" after each heading), the "On this page" list, {ref}s in the page
    to_headings = {
        link["fragment"] for link in found["links"] if {"headerlink", "reference"} & set(link["classes"].split())
    }
    assert labels, f"no MyST label `(name)=` in the source of {ISSUE_703}"
    assert to_headings, f"no links to headings in {ISSUE_703}: {found['links']}"
    targets = found["targets"]
    where = {frag: sorted(set(pages)) for frag, pages in from_pages.items()}
    missing = [f"#{frag} {where.get(frag, '')}".rstrip() for frag, t in targets.items() if not t["exists"]]
    assert not missing, "anchors of the #703 page that lead nowhere:\n" + "\n".join(missing)
    not_headings = [f"#{frag}" for frag in [*labels, *to_headings] if targets[frag]["heading"] is None]
    assert not not_headings, "anchors of the #703 page that lead to no heading:\n" + "\n".join(not_headings)
