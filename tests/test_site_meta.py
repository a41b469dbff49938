"""What every built page says about itself: the provenance line (the tinker version the book
is checked against, the backend and model that computed its outputs), link-preview tags
(Open Graph title, description, image, URL) and the edit-this-page and open-an-issue
buttons, all from the one repository URL and base URL of _config.yml."""

from __future__ import annotations

import pytest
import yaml
from bs4 import BeautifulSoup

from conftest import REPO_ROOT, page_source, toc_docnames
from test_notebook_setup import PINS
from tools.book_sphinx_fixes import page_base_models, provenance_text

pytestmark = pytest.mark.book

CONFIG = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
BASE_URL = CONFIG["html"]["baseurl"]
REPOSITORY = CONFIG["repository"]["url"]
DOCNAMES = toc_docnames()


def page(built_book, docname: str) -> BeautifulSoup:
    return BeautifulSoup((built_book.html_dir / f"{docname}.html").read_text(), "html.parser")


def og(soup: BeautifulSoup, name: str) -> str | None:
    tag = soup.find("meta", property=f"og:{name}")
    return tag["content"] if tag else None


@pytest.mark.parametrize("docname", DOCNAMES)
def test_every_page_states_the_tinker_version_backend_and_model(built_book, docname):
    line = page(built_book, docname).select_one("p.book-provenance")
    assert line is not None, f"{docname}: no provenance line"
    models = page_base_models(page_source(docname))
    model = models.get("offline", "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert line.get_text() == provenance_text(PINS["tinker"], "offline", model, "cpu", has_outputs=bool(models))
    assert f"tinker {PINS['tinker']}" in line.get_text() and "offline" in line.get_text()


def test_provenance_names_tinker_and_the_pages_model_on_tinker():
    text = provenance_text("0.38.0", "tinker", "Qwen/Qwen3-VL-30B-A3B-Instruct", "cpu", has_outputs=True)
    assert text == ("Checked against tinker 0.38.0. This page's outputs were computed by "
                    "Qwen/Qwen3-VL-30B-A3B-Instruct, on Tinker.")
    models = page_base_models(page_source("book/issue-703"))
    assert models == {"tinker": "Qwen/Qwen3-VL-30B-A3B-Instruct", "offline": "HuggingFaceTB/SmolLM2-135M-Instruct"}


@pytest.mark.parametrize("docname", DOCNAMES)
def test_every_page_has_a_link_preview(built_book, docname):
    soup = page(built_book, docname)
    assert og(soup, "title") and og(soup, "title") in soup.title.get_text()
    assert len(og(soup, "description") or "") >= 40, og(soup, "description")
    assert og(soup, "url") == f"{BASE_URL}{docname}.html"
    image = og(soup, "image") or ""
    assert image.startswith(BASE_URL), image
    assert (built_book.html_dir / image.removeprefix(BASE_URL)).is_file(), f"{image} is not in the build"


def test_the_issue_703_card_names_the_issue(built_book):
    soup = page(built_book, "book/issue-703")
    assert "#703" in og(soup, "title")
    assert "vision-language" in og(soup, "description")


@pytest.mark.parametrize("docname", DOCNAMES)
def test_edit_and_issue_buttons_use_the_repository(built_book, docname):
    links = [a.get("href", "") for a in page(built_book, docname).select(".dropdown-source-buttons a")]
    source = page_source(docname).relative_to(REPO_ROOT).as_posix()
    branch = CONFIG["repository"]["branch"]
    assert f"{REPOSITORY}/edit/{branch}/{source}" in links, links
    assert any(link.startswith(f"{REPOSITORY}/issues/new") for link in links), links


def test_descriptions_are_the_pages_own_words_not_the_provenance_line(built_book):
    """The provenance line is the same on every page: no page description is made of it."""
    llms = (built_book.html_dir / "llms.txt").read_text()
    assert "Checked against" not in llms
    for docname in DOCNAMES:
        assert not (og(page(built_book, docname), "description") or "").startswith("Checked against"), docname
