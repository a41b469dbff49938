"""Every internal link of the built site resolves: the file exists, and so does its #fragment.

The build runs with ``-n`` (nitpicky), so Sphinx already checks its own
cross-references; this walks the *HTML* (of the session's cold build,
`built_book`), which also covers raw-HTML links, theme navigation, notebook
outputs and links written as ``page.html#anchor``. External links are not
followed (there is no network here).
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.book

#: Directories of the site that are assets, not pages.
ASSET_DIRS = ("_static/", "_images/", "_sources/", "mathjax/", "_sphinx_design_static/")
#: (tag, attribute) pairs whose value is a URL to check.
URL_ATTRS = {("a", "href"), ("link", "href"), ("img", "src"), ("script", "src"), ("source", "src")}


class _PageParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.urls: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        for t, attr in URL_ATTRS:
            if tag == t and a.get(attr) is not None:
                self.urls.append((tag, a[attr]))

    handle_startendtag = handle_starttag


def parse_site(html_dir: Path) -> dict[Path, _PageParser]:
    pages = {}
    for page in sorted(html_dir.rglob("*.html")):
        rel = page.relative_to(html_dir).as_posix()
        if rel.startswith(ASSET_DIRS):
            continue
        parser = _PageParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        pages[page.resolve()] = parser
    return pages


def broken_links(html_dir: Path) -> list[str]:
    html_dir = html_dir.resolve()
    pages = parse_site(html_dir)
    ids_cache: dict[Path, set[str]] = {p: parsed.ids for p, parsed in pages.items()}
    problems = []
    for page, parsed in pages.items():
        rel_page = page.relative_to(html_dir).as_posix()
        for tag, url in parsed.urls:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith(("mailto:", "javascript:", "data:")):
                continue  # external: not checked here
            path, fragment = unquote(parts.path), unquote(parts.fragment)
            if not path:
                target = page
            else:
                target = (page.parent / path).resolve()
                if path.endswith("/") or target.is_dir():
                    target = target / "index.html"
            if not target.is_relative_to(html_dir):
                problems.append(f"{rel_page}: <{tag}> {url!r} points outside the site")
                continue
            if not target.is_file():
                problems.append(f"{rel_page}: <{tag}> {url!r}: no file {target.relative_to(html_dir)}")
                continue
            if fragment and tag == "a" and target.suffix == ".html":
                ids = ids_cache.get(target)
                if ids is None:  # a page outside the walked set (should not happen)
                    parser = _PageParser()
                    parser.feed(target.read_text(encoding="utf-8", errors="replace"))
                    ids = ids_cache[target] = parser.ids
                if fragment not in ids:
                    problems.append(
                        f"{rel_page}: {url!r}: no element with id {fragment!r} in "
                        f"{target.relative_to(html_dir)}"
                    )
    return sorted(set(problems))


def test_internal_links_resolve(built_book):
    problems = broken_links(built_book.html_dir)
    assert not problems, f"{len(problems)} broken internal link(s):\n" + "\n".join(problems[:100])


def test_link_checker_detects_breakage(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="sub/a.html#here">ok</a><a href="sub/a.html#gone">bad fragment</a>'
        '<a href="missing.html">bad file</a><a href="#top">ok</a><div id="top"></div>'
        '<a href="https://example.org/x#y">external</a><img src="sub/pic.png">'
    )
    (tmp_path / "sub" / "a.html").write_text('<h2 id="here">x</h2><a href="../index.html#top">up</a>')
    problems = broken_links(tmp_path)
    assert len(problems) == 3, problems
    assert any("'gone'" in p for p in problems)
    assert any("missing.html" in p for p in problems)
    assert any("pic.png" in p for p in problems)
