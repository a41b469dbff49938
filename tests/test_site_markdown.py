"""The site publishes llms.txt and a faithful Markdown copy of every page (tools/site_markdown.py).

The ``book`` tests read what the build published (``built_book``): llms.txt lists
every page of _toc.yml once, in reading order, under the site's URL; each page's
``.md`` holds its title, the code of every code cell (collapsed ones too), the
executed outputs and glued numbers, its figures, math and tables, and none of the
theme's chrome; every link and image of the Markdown resolves to a file of the
build. The other tests run the converter on small pages shaped like the ones
Sphinx, myst-nb and sphinx-book-theme write (no build needed).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from bs4 import BeautifulSoup, NavigableString, Tag
from markdown_it import MarkdownIt

from conftest import REPO_ROOT, page_cells, page_source, toc_docnames
from tools import site_markdown

DOCNAMES = toc_docnames()
BOOK_CONFIG = yaml.safe_load((REPO_ROOT / "_config.yml").read_text(encoding="utf-8"))
BASE_URL = BOOK_CONFIG["html"]["baseurl"].rstrip("/") + "/"
BOOK_TITLE = BOOK_CONFIG["title"]
#: Code cells with these tags are not on the page at all, so not in its Markdown either.
REMOVED_INPUT_TAGS = {"remove-cell", "remove_cell", "remove-input", "remove_input"}
#: Text of the theme's chrome that must not reach the Markdown.
CHROME_TEXT = (
    "Show code cell",
    "Hide code cell",
    "Copy to clipboard",
    "Link to this heading",
    "Link to this image",
    "¶",
    "kernelName",
    "requestKernel",
)
#: Where llms.txt lists the pages: ``- [Title](URL): description``.
LLMS_PAGE_LINE = re.compile(r"^- \[(?P<title>[^\]]+)\]\((?P<url>[^)\s]+)\): (?P<about>\S.*)$")

book = pytest.mark.book
per_page = pytest.mark.parametrize("docname", DOCNAMES)


# --------------------------------------------------------------------------- #
# Reading the build
# --------------------------------------------------------------------------- #
@functools.cache
def _markdown_parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def markdown_tokens(text: str) -> list:
    """The block tokens of ``text`` and the inline tokens inside them, in order."""
    tokens = []
    for token in _markdown_parser().parse(text):
        tokens += [token, *(token.children or ())]
    return tokens


def fences(text: str, language: str) -> list[str]:
    """The contents of the fenced code blocks of ``text`` in ``language``."""
    return [t.content.rstrip("\n") for t in markdown_tokens(text) if t.type == "fence" and t.info == language]


def link_targets(text: str) -> list[str]:
    """Every link href and image src of a Markdown text."""
    return [
        t.attrs.get("href") or t.attrs.get("src")
        for t in markdown_tokens(text)
        if t.type in ("link_open", "image")
    ]


def html_article(html_dir: Path, docname: str) -> Tag:
    soup = BeautifulSoup((html_dir / f"{docname}.html").read_text(encoding="utf-8"), "html.parser")
    return soup.select_one("article.bd-article")


def html_title(html_dir: Path, docname: str) -> str:
    """The page's <title> without the site's suffix."""
    soup = BeautifulSoup((html_dir / f"{docname}.html").read_text(encoding="utf-8"), "html.parser")
    return soup.title.get_text().removesuffix(f" — {BOOK_TITLE}").strip()


def page_md(html_dir: Path, docname: str) -> str:
    path = html_dir / f"{docname}.md"
    assert path.is_file(), f"the build published no Markdown copy of {docname} ({path})"
    return path.read_text(encoding="utf-8")


def one_line(text: str) -> str:
    return " ".join(text.split())


def plain(markdown: str) -> str:
    """Markdown as running text: links as their text, no emphasis or code marks, no escapes."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    return one_line(re.sub(r"\\(.)", r"\1", text).replace("`", "").replace("*", ""))


def unresolved_links(source: Path, text: str, html_dir: Path) -> list[str]:
    """The links of ``text`` (in ``source``) to the site that name no file of the build."""
    problems = []
    for url in link_targets(text):
        parts = urlsplit(url)
        if url.startswith(BASE_URL):
            target = html_dir / unquote(url[len(BASE_URL) :].split("#")[0])
        elif parts.scheme or parts.netloc:
            continue  # another site: not checked (no network)
        else:
            target = source.parent / unquote(parts.path) if parts.path else source
        target = target.resolve()
        if not target.is_relative_to(html_dir.resolve()) or not target.is_file():
            problems.append(f"{source.relative_to(html_dir)}: {url!r} is no file of the build")
    return problems


# --------------------------------------------------------------------------- #
# llms.txt
# --------------------------------------------------------------------------- #
def llms_lines(html_dir: Path) -> list[str]:
    path = html_dir / site_markdown.LLMS_TXT
    assert path.is_file(), f"the build published no {path.name}"
    return path.read_text(encoding="utf-8").splitlines()


@book
def test_llms_txt_lists_every_page_once_in_reading_order(built_book):
    lines = llms_lines(built_book.html_dir)
    assert lines[0] == f"# {BOOK_TITLE}"
    assert lines[2].startswith("> ") and len(lines[2]) > 40, "no one-line summary under the title"
    assert "## Pages" in lines, "no ## Pages section"
    pages = [LLMS_PAGE_LINE.match(line) for line in lines[lines.index("## Pages") + 1 :] if line.strip()]
    assert all(pages), "every line of ## Pages is `- [Title](URL): description`"
    assert [m["url"] for m in pages] == [f"{BASE_URL}{d}.md" for d in DOCNAMES]
    assert [m["title"] for m in pages] == [html_title(built_book.html_dir, d) for d in DOCNAMES]
    for match in pages:
        assert (built_book.html_dir / match["url"][len(BASE_URL) :]).is_file(), match["url"]
        assert "\n" not in match["about"] and len(match["about"]) < 400, match["about"]


@book
def test_llms_txt_links_resolve(built_book):
    path = built_book.html_dir / site_markdown.LLMS_TXT
    assert not unresolved_links(path, path.read_text(encoding="utf-8"), built_book.html_dir)


# --------------------------------------------------------------------------- #
# Each page's Markdown copy
# --------------------------------------------------------------------------- #
@book
@per_page
def test_page_markdown_starts_with_provenance_and_title(built_book, docname):
    lines = page_md(built_book.html_dir, docname).splitlines()
    assert lines[0] == (
        f"<!-- Markdown rendering of {BASE_URL}{docname}.html; "
        "the executed outputs are as the book built them -->"
    )
    assert lines[2] == f"# {html_title(built_book.html_dir, docname)}"
    headings = [line for line in lines if re.match(r"#{1,6} ", line)]
    assert not [h for h in headings if h.rstrip().endswith("#")], "a header '#' link is left"


@book
@per_page
def test_page_markdown_has_every_code_cell(built_book, docname):
    """The code of every code cell, collapsed (hide-input) ones included, as a ```python block."""
    code_blocks = set(fences(page_md(built_book.html_dir, docname), "python"))
    cells = page_cells(page_source(docname))
    cells = [c for c in cells if c.kind == "code" and not REMOVED_INPUT_TAGS & set(c.tags)]
    missing = [c for c in cells if c.source.strip("\n") not in code_blocks]
    assert not missing, f"{len(missing)} code cell(s) not in the Markdown, first:\n{missing[0].source}"


@book
@per_page
def test_page_markdown_has_the_executed_outputs(built_book, docname):
    """Each text output of the page is a ```text block; each glued number sits in its sentence."""
    article = html_article(built_book.html_dir, docname)
    markdown = page_md(built_book.html_dir, docname)
    outputs = [pre.get_text().strip("\n") for pre in article.select("div.cell_output div.highlight pre")]
    text_blocks = set(fences(markdown, "text"))
    assert not [o for o in outputs if o not in text_blocks], "an output is missing from the Markdown"
    for pasted in article.select("span.pasted-text"):
        before = pasted.previous_sibling
        context = str(before)[-30:] if isinstance(before, NavigableString) else ""
        assert one_line(context + pasted.get_text()) in plain(markdown), (docname, context, pasted)


@book
@per_page
def test_page_markdown_keeps_figures_math_and_tables(built_book, docname):
    article = html_article(built_book.html_dir, docname)
    markdown = page_md(built_book.html_dir, docname)
    images = [(t.content, t.attrs["src"]) for t in markdown_tokens(markdown) if t.type == "image"]
    assert images == [(one_line(img.get("alt", "")), img["src"]) for img in article.select("img")]
    for math in article.select("span.math"):
        tex = one_line(math.get_text().strip().removeprefix(r"\(").removesuffix(r"\)"))
        assert f"${tex}$" in markdown, tex
    for math in article.select("div.math"):
        tex = math.get_text().strip().removeprefix(r"\[").removesuffix(r"\]").strip()
        assert f"$$\n{tex}\n$$" in markdown, tex
    tables = [t for t in markdown_tokens(markdown) if t.type == "table_open"]
    assert len(tables) == len(article.select("table"))


@book
@per_page
def test_page_markdown_has_no_theme_chrome(built_book, docname):
    markdown = page_md(built_book.html_dir, docname)
    left = [text for text in CHROME_TEXT if text in markdown]
    assert not left, f"theme chrome in the Markdown of {docname}: {left}"


@book
@per_page
def test_page_markdown_links_and_images_resolve(built_book, docname):
    path, markdown = built_book.html_dir / f"{docname}.md", page_md(built_book.html_dir, docname)
    problems = unresolved_links(path, markdown, built_book.html_dir)
    assert not problems, "\n".join(problems)
    paths = [urlsplit(url).path for url in link_targets(markdown)]
    to_html = [p for p in paths if p.endswith(".html") and (path.parent / p).with_suffix(".md").is_file()]
    assert not to_html, f"links to pages with a Markdown copy still point to their .html: {to_html}"


# --------------------------------------------------------------------------- #
# The converter on small pages (no build)
# --------------------------------------------------------------------------- #
#: A page as Sphinx + myst-nb + sphinx-book-theme write it: a cell tagged hide-input,
#: chrome, math with underscores, a figure, a table with a "|", links.
SMALL_PAGE = r"""<html><head><title>Small &#8212; Tiny book</title></head><body>
<nav class="bd-header"><button>Search</button><a href="other.html">Next</a></nav>
<article class="bd-article">
<section id="small">
<h1>Small<a class="headerlink" href="#small" title="Link to this heading">#</a></h1>
<p>The loss is <span class="math notranslate nohighlight">\(-\sum_k p_k \log q_k\)</span>, see
<a class="reference internal" href="other.html#part"><span class="doc">Other</span></a> and
<a class="reference internal" href="genindex.html">the index</a>.</p>
<div class="math notranslate nohighlight">
\[\mathrm{KL}(p\,\|\,q) = \sum_k p_k\,(\log p_k - \log q_k)\]</div>
<div class="cell tag_hide-input docutils container">
<details class="admonition hide above-input">
<summary aria-label="Toggle hidden content">
<p class="collapsed admonition-title">Show code cell source</p>
<p class="expanded admonition-title">Hide code cell source</p>
</summary>
<div class="cell_input docutils container">
<div class="highlight-ipython3 notranslate"><div class="highlight"><pre><span></span><span class="n">secret_step</span> <span class="o">=</span> <span class="mi">2</span>


<span class="nb">print</span><span class="p">(</span><span class="s2">"```"</span><span class="p">,</span> <span class="n">secret_step</span><span class="p">)</span>
</pre><button class="copybtn" title="Copy to clipboard">Copy</button></div></div>
</div>
</details>
<div class="cell_output docutils container">
<div class="output stream highlight-myst-ansi notranslate"><div class="highlight"><pre><span></span>``` 2
</pre></div></div>
</div>
</div>
<figure class="align-default" id="id1">
<img alt="A bar chart
of the mass." src="_images/mass.png"/>
<figcaption><p><span class="caption-number">Fig. 1 </span><span class="caption-text">Mass on the set.</span><a class="headerlink" href="#id1" title="Link to this image">#</a></p></figcaption>
</figure>
<div class="pst-scrollable-table-container"><table class="table">
<thead><tr class="row-odd"><th class="head"><p>call</p></th><th class="head"><p>returns</p></th></tr></thead>
<tbody><tr class="row-even"><td><p><code class="docutils literal notranslate"><span class="pre">f()</span></code></p></td>
<td><p><code class="docutils literal notranslate"><span class="pre">float</span> <span class="pre">|</span> <span class="pre">None</span></code></p></td></tr></tbody>
</table></div>
</section>
<script>kernelName = 'python3'</script>
</article>
<footer class="prev-next-footer"><a class="left-prev" href="other.html">previous</a></footer>
</body></html>
"""


def write_small_site(html_dir: Path) -> None:
    html_dir.mkdir(parents=True, exist_ok=True)
    (html_dir / "small.html").write_text(SMALL_PAGE, encoding="utf-8")
    other = SMALL_PAGE.replace("<h1>Small", "<h1>Other")
    other = other.replace("<p>The loss", "<p>This page is the other one. The loss")
    (html_dir / "other.html").write_text(other, encoding="utf-8")


def test_converter_keeps_collapsed_code_and_drops_chrome(tmp_path):
    write_small_site(tmp_path)
    (path,) = site_markdown.write_markdown_pages(tmp_path, ["small"], "https://example.org/b/")
    markdown = path.read_text(encoding="utf-8")
    assert path == tmp_path / "small.md"
    assert markdown.startswith(
        "<!-- Markdown rendering of https://example.org/b/small.html; "
        "the executed outputs are as the book built them -->\n\n# Small\n\n"
    )
    assert fences(markdown, "python") == ['secret_step = 2\n\n\nprint("```", secret_step)']
    assert fences(markdown, "text") == ["``` 2"]
    chrome_text = ("Show code cell", "Hide code cell", "Copy", "Search", "Next", "previous", "kernelName", "#small")
    for chrome in chrome_text:
        assert chrome not in markdown, chrome


def test_converter_keeps_math_figures_tables_and_links(tmp_path):
    write_small_site(tmp_path)
    site_markdown.write_markdown_pages(tmp_path, ["small", "other"])
    markdown = (tmp_path / "small.md").read_text(encoding="utf-8")
    assert r"The loss is $-\sum_k p_k \log q_k$" in markdown
    assert "$$\n" + r"\mathrm{KL}(p\,\|\,q) = \sum_k p_k\,(\log p_k - \log q_k)" + "\n$$" in markdown
    assert "![A bar chart of the mass.](_images/mass.png)\n\nFig. 1 Mass on the set." in markdown
    assert "| call | returns |\n| --- | --- |\n| `f()` | `float \\| None` |" in markdown
    assert "[Other](other.md#part)" in markdown, "a link to a book page points to its Markdown copy"
    assert "[the index](genindex.html)" in markdown, "a page with no Markdown copy stays .html"


def test_llms_txt_format(tmp_path):
    write_small_site(tmp_path)
    base_url = "https://example.org/b/"
    path = site_markdown.write_llms_txt(tmp_path, ["small", "other"], base_url, "Tiny book", "A summary.")
    header = ["# Tiny book", "", "> A summary.", "", site_markdown.LLMS_TXT_NOTE, "", "## Pages", ""]
    assert path.read_text(encoding="utf-8").splitlines() == [
        *header,
        r"- [Small](https://example.org/b/small.md): The loss is $-\sum_k p_k \log q_k$, see "
        "[Other](https://example.org/b/other.md#part) and [the index](https://example.org/b/genindex.html).",
        "- [Other](https://example.org/b/other.md): This page is the other one.",
    ]


@pytest.mark.parametrize(
    "paragraph, sentence",
    [
        ("One. This chapter does two things, and does them well enough for a sentence this long. Three.",
         "This chapter does two things, and does them well enough for a sentence this long."),
        ("Chapter 2 made a number. This chapter trains on it. More.",
         "Chapter 2 made a number. This chapter trains on it."),
        ("No sentence about itself. Another one.", "No sentence about itself."),
    ],
)
def test_one_sentence_prefers_the_page_about_itself(paragraph, sentence):
    assert site_markdown.one_sentence(paragraph) == sentence


def test_reading_order_follows_the_toc(tmp_path):
    assert site_markdown.reading_order(REPO_ROOT / "_toc.yml") == toc_docnames()
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro.md\nparts:\n  - caption: A\n    chapters:\n"
        "      - file: a/one.ipynb\n        sections:\n          - file: a/one_more\n"
        "      - url: https://example.org\n  - caption: B\n    chapters:\n      - file: b/v1.2\n"
    )
    assert site_markdown.reading_order(tmp_path / "_toc.yml") == ["intro", "a/one", "a/one_more", "b/v1.2"]
