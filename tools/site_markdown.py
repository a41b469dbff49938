"""Publish the built book for language models: ``llms.txt`` and a Markdown copy of every page.

Run from the repository root as ``python -m tools.site_markdown HTML_DIR`` (for
example ``_build/html``); ``tools/book_build.py`` calls :func:`write_site_markdown`
after a successful build, and ``tests/test_site_markdown.py`` checks what it wrote.

For every page of ``_toc.yml`` (in reading order) it writes ``<docname>.md`` next
to ``<docname>.html``, so that the relative image and link paths of the page keep
working. The Markdown is made from the *built* HTML, not from the sources, so it
holds what the reader of the site sees: the executed outputs, the glued numbers,
the figures (as images with their alt text and caption), the math as TeX
(``$...$``, ``$$...$$``) and the code of every cell, including cells that the
page shows collapsed (``hide-input``). The theme's chrome (header "#" links, copy
and toggle buttons, navigation) is left out.

``llms.txt`` (https://llmstxt.org) lists the pages, one line each, in reading
order. Each line links the page's Markdown copy under ``html.baseurl`` of
``_config.yml``; the rendered page is the same URL with ``.html`` for ``.md``,
which the file says once, in its header, rather than on every line.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import posixpath
import re
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence
from urllib.parse import SplitResult, urlsplit, urlunsplit

import yaml
from bs4 import BeautifulSoup, SoupStrainer, Tag
from markdownify import ATX, MarkdownConverter

from tools.pages import reading_order

REPO_ROOT = Path(__file__).resolve().parents[1]

LLMS_TXT = "llms.txt"
#: What llms.txt says of its links, once, above the list of pages.
LLMS_TXT_NOTE = (
    "Each page below is linked as Markdown, with the outputs of its code as the book's build "
    "executed them; the same URL ending in `.html` instead of `.md` is the rendered page."
)
#: The page's content in sphinx-book-theme; everything outside it is theme chrome.
ARTICLE = SoupStrainer("article", class_="bd-article")
#: Theme chrome inside the article: buttons (copy, toggle), navigation, scripts ...
CHROME_TAGS = frozenset({"button", "nav", "script", "style"})
#: ... the header "#" links and the navigation blocks ...
CHROME_CLASSES = frozenset({"headerlink", "prev-next-area", "prev-next-footer"})
#: ... and the line above a collapsed cell ("Show code cell source"); its code stays.
COLLAPSED_CELL_CLASS = "hide"
#: Pygments lexer names (``div.highlight-<lexer>``) and the fence language for them.
FENCE_LANGUAGES = {
    **dict.fromkeys(("ipython3", "ipython", "python3"), "python"),
    **dict.fromkeys(("myst-ansi", "ansi", "none", "default"), "text"),
}
#: A page's sentence about itself ("This chapter trains ..."): the best one-line description;
#: one shorter than SHORT_SENTENCE characters comes with the sentence before it.
SELF_DESCRIPTION = re.compile(r"^This (chapter|page|book|section)\b")
SHORT_SENTENCE = 80
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*\[(])")


# --------------------------------------------------------------------------- #
# Reading order and configuration
# --------------------------------------------------------------------------- #
def book_settings(root: Path) -> tuple[str, str]:
    """(title, base URL ending in "/") from ``_config.yml``; the base URL is "" when unset."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    base_url = (config.get("html") or {}).get("baseurl") or ""
    return config.get("title") or "", base_url.rstrip("/") + "/" if base_url else ""


# --------------------------------------------------------------------------- #
# One page: HTML -> Markdown
# --------------------------------------------------------------------------- #
def _has_class(el: Tag, name: str) -> bool:
    return name in (el.get("class") or ())


def _without_delimiters(tex: str, opening: str, closing: str) -> str:
    tex = tex.strip()
    if tex.startswith(opening) and tex.endswith(closing):
        tex = tex[len(opening) : -len(closing)]
    return tex.strip()


def _fence_language(pre: Tag) -> str:
    """The language of a ``<pre>`` from its ``div.highlight-<lexer>`` wrapper ("" if none)."""
    for wrapper in pre.parents:
        for name in wrapper.get("class") or ():
            if name.startswith("highlight-"):
                lexer = name[len("highlight-") :]
                return FENCE_LANGUAGES.get(lexer, lexer)
    return ""


class BookMarkdownConverter(MarkdownConverter):
    """markdownify, taught the HTML that Sphinx, myst-nb and sphinx-book-theme write."""

    def __init__(self, **options):
        super().__init__(heading_style=ATX, bullets="-", escape_underscores=False, **options)

    def convert_span(self, el, text, parent_tags):
        """MathJax's inline math ``\\(...\\)`` -> ``$...$``, as TeX (not Markdown-escaped)."""
        if _has_class(el, "math"):
            return "$" + " ".join(_without_delimiters(el.get_text(), r"\(", r"\)").split()) + "$"
        return text

    def convert_div(self, el, text, parent_tags):
        """Display math -> ``$$`` block; an admonition -> a block quote; else a block."""
        if _has_class(el, "math"):
            return "\n\n$$\n" + _without_delimiters(el.get_text(), r"\[", r"\]") + "\n$$\n\n"
        if _has_class(el, "admonition"):
            return "\n\n" + self.convert_blockquote(el, text, parent_tags)
        return super().convert_div(el, text, parent_tags)

    # A collapsed cell (``details.hide``, an "admonition" by its class): a plain block.
    convert_details = MarkdownConverter.convert_div

    def convert_figure(self, el, text, parent_tags):
        """The image, then its caption ("Fig. 4 ..."), one blank line between them."""
        return super().convert_div(el, re.sub(r"\n{3,}", "\n\n", text), parent_tags)

    def convert_p(self, el, text, parent_tags):
        """An admonition's title ("Important") in bold."""
        if _has_class(el, "admonition-title") and text.strip():
            text = f"**{text.strip()}**"
        return super().convert_p(el, text, parent_tags)

    def convert_pre(self, el, text, parent_tags):
        """A fenced block in the language of its lexer, fenced longer than any backtick run inside."""
        text = text.strip("\n")
        if not text:
            return ""
        fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", text)), default=0))
        return f"\n\n{fence}{_fence_language(el)}\n{text}\n{fence}\n\n"

    def convert_img(self, el, text, parent_tags):
        """Always an image (also in a table cell), its alt text on one line."""
        alt = " ".join((el.get("alt") or "").split()).replace("]", r"\]")
        return f"![{alt}]({el.get('src') or ''})"

    def convert_td(self, el, text, parent_tags):
        return super().convert_td(el, text.replace("|", r"\|"), parent_tags)

    def convert_th(self, el, text, parent_tags):
        return super().convert_th(el, text.replace("|", r"\|"), parent_tags)


def _is_chrome(tag: Tag) -> bool:
    return (
        tag.name in CHROME_TAGS
        or not CHROME_CLASSES.isdisjoint(tag.get("class") or ())
        or (tag.name == "summary" and _has_class(tag.parent, COLLAPSED_CELL_CLASS))
    )


def read_article(html_path: Path) -> Tag:
    """The page's article (its content), without the theme's chrome."""
    article = BeautifulSoup(html_path.read_text(encoding="utf-8"), "html.parser", parse_only=ARTICLE).article
    if article is None:
        raise ValueError(f"{html_path}: no <article class=bd-article> (not a sphinx-book-theme page?)")
    for chrome in article.find_all(_is_chrome):
        chrome.decompose()
    return article


def page_title(article: Tag) -> str:
    """The page's title: its first heading."""
    heading = article.find(["h1", "h2"])
    return " ".join(heading.get_text(" ").split()) if heading else ""


def _site_path(docname: str, path: str) -> str:
    """A relative link's path on page ``docname``, as a path from the site's root."""
    return posixpath.normpath(posixpath.join(posixpath.dirname(docname), path))


def _relative_links(tree: Tag) -> Iterator[tuple[Tag, str, SplitResult]]:
    """(element, attribute, parsed URL) of each link and image of ``tree`` within the site."""
    for tag, attribute in (("a", "href"), ("img", "src")):
        for element in tree.find_all(tag, attrs={attribute: True}):
            parts = urlsplit(element[attribute])
            if not (parts.scheme or parts.netloc):
                yield element, attribute, parts


def link_pages_as_markdown(article: Tag, docname: str, docnames: Sequence[str]) -> None:
    """Point relative links to book pages at their Markdown copy (``x.html#y`` -> ``x.md#y``)."""
    known = set(docnames)
    for element, attribute, parts in _relative_links(article):
        if parts.path.endswith(".html") and _site_path(docname, parts.path)[: -len(".html")] in known:
            element[attribute] = urlunsplit(parts._replace(path=parts.path[: -len(".html")] + ".md"))


def article_markdown(article: Tag) -> str:
    """The Markdown of an article (chrome already removed)."""
    return BookMarkdownConverter().convert_soup(article).strip() + "\n"


def first_paragraph(article: Tag, docname: str, base_url: str) -> str:
    """The article's first paragraph of running text, as one line of Markdown.

    Its relative links become URLs under ``base_url`` (relative to the site's root
    when it is ""), so that the line reads the same anywhere, as in llms.txt.
    """
    # not the provenance line under the title (tools/book_sphinx_fixes.py): it is the same on every page
    paragraph = article.select_one("section > p:not(.book-provenance)") or article.find("p")
    if paragraph is None:
        return ""
    paragraph = copy.copy(paragraph)
    for element, attribute, parts in _relative_links(paragraph):
        path = _site_path(docname, parts.path) if parts.path else f"{docname}.md"
        element[attribute] = base_url + urlunsplit(parts._replace(path=path))
    return " ".join(BookMarkdownConverter().convert_soup(paragraph).split())


def one_sentence(paragraph: str) -> str:
    """The paragraph's sentence about the page itself ("This chapter ..."), else its first.

    A short one ("This chapter trains on that number.") comes with the sentence before it.
    """
    sentences = SENTENCE_END.split(paragraph)
    index = next((i for i, s in enumerate(sentences) if SELF_DESCRIPTION.match(s)), 0)
    if index and len(sentences[index]) < SHORT_SENTENCE:
        index -= 1
        return " ".join(sentences[index : index + 2])
    return sentences[index]


@dataclasses.dataclass(frozen=True)
class SitePage:
    """One page of the built site, read for llms.txt and its Markdown copy."""

    docname: str
    title: str
    first_paragraph: str  # one line of Markdown, its links under the base URL
    markdown: str  # the Markdown copy, provenance comment and "# title" first


def read_page(html_dir: Path, docname: str, docnames: Sequence[str], base_url: str) -> SitePage:
    """Read ``html_dir/<docname>.html``; links to the pages ``docnames`` point to their copies."""
    article = read_article(html_dir / f"{docname}.html")
    link_pages_as_markdown(article, docname, docnames)
    title, body = page_title(article), article_markdown(article)
    if not body.startswith("# "):
        body = f"# {title}\n\n{body}"
    header = (
        f"<!-- Markdown rendering of {base_url}{docname}.html; "
        "the executed outputs are as the book built them -->"
    )
    return SitePage(docname, title, first_paragraph(article, docname, base_url), f"{header}\n\n{body}")


def read_pages(html_dir: Path, docnames: Sequence[str], base_url: str) -> list[SitePage]:
    return [read_page(html_dir, docname, docnames, base_url) for docname in docnames]


def _write_markdown_copies(html_dir: Path, pages: Sequence[SitePage]) -> list[Path]:
    written = []
    for page in pages:
        path = html_dir / f"{page.docname}.md"
        path.write_text(page.markdown, encoding="utf-8")
        written.append(path)
    return written


def write_markdown_pages(html_dir: Path, docnames: list[str], base_url: str = "") -> list[Path]:
    """Write ``<docname>.md`` next to each page's ``<docname>.html``; return the files written.

    ``base_url`` (the site's URL, ending in "/") goes into each file's provenance comment.
    """
    return _write_markdown_copies(html_dir, read_pages(html_dir, docnames, base_url))


# --------------------------------------------------------------------------- #
# llms.txt
# --------------------------------------------------------------------------- #
def llms_txt(pages: Sequence[SitePage], base_url: str, title: str, summary: str) -> str:
    """The text of llms.txt: the book's title and summary, then the pages in reading order."""
    lines = [f"# {title}", "", f"> {summary}", "", LLMS_TXT_NOTE, "", "## Pages", ""]
    lines += [
        f"- [{page.title}]({base_url}{page.docname}.md): {one_sentence(page.first_paragraph)}"
        for page in pages
    ]
    return "\n".join(lines) + "\n"


def _write_llms_txt(
    html_dir: Path, pages: Sequence[SitePage], base_url: str, title: str, summary: str
) -> Path:
    path = html_dir / LLMS_TXT
    path.write_text(llms_txt(pages, base_url, title, summary), encoding="utf-8")
    return path


def write_llms_txt(html_dir: Path, docnames: list[str], base_url: str, title: str, summary: str) -> Path:
    """Write ``html_dir/llms.txt``: the pages, one line each, in reading order, with their URLs.

    Each page's line links its Markdown copy (``<base_url><docname>.md``, written by
    :func:`write_markdown_pages`), with the page's title and one sentence of its
    first paragraph. With ``base_url`` "" the links are relative to the site's root.
    """
    return _write_llms_txt(html_dir, read_pages(html_dir, docnames, base_url), base_url, title, summary)


def write_site_markdown(root: Path, html_dir: Path) -> list[Path]:
    """Write every page's Markdown copy and llms.txt into the built site ``html_dir``.

    The pages and their order come from ``root/_toc.yml``; the title and base URL
    from ``root/_config.yml``; the summary is the root page's first paragraph.
    Returns the files written: the pages in reading order, then llms.txt.
    """
    docnames = reading_order(root / "_toc.yml")
    title, base_url = book_settings(root)
    pages = read_pages(html_dir, docnames, base_url)
    written = _write_markdown_copies(html_dir, pages)
    return [*written, _write_llms_txt(html_dir, pages, base_url, title, pages[0].first_paragraph)]


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.site_markdown",
        description="Write llms.txt and a Markdown copy of every page into a built book.",
    )
    parser.add_argument("html_dir", type=Path, help="the built site, e.g. _build/html")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    written = write_site_markdown(args.root, args.html_dir)
    print(
        f"[site-markdown] wrote {len(written) - 1} Markdown page(s) and {LLMS_TXT} "
        f"into {args.html_dir} in {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
