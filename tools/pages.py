"""The book's pages as their sources say: the reading order of ``_toc.yml``, and the cells
of a page (notebooks, .ipynb, and MyST pages, .md with ``{code-cell}`` blocks). Used by the
Sphinx additions (book_sphinx_fixes), the Markdown rendering (site_markdown) and the tests."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path, PurePosixPath
from typing import Iterator

import yaml


@dataclasses.dataclass(frozen=True)
class PageCell:
    """One cell of a page: ``kind`` is "code" or "markdown"; ``tags`` are its cell tags."""

    kind: str
    source: str
    tags: tuple[str, ...] = ()


#: A MyST ``{code-cell}`` block: its option lines (``:tags: [...]``) and its code.
_MYST_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_MYST_OPTION = re.compile(r"^:(\w[\w-]*):[ \t]*(.*)$")


def _myst_code_cell(body: str) -> PageCell:
    lines = body.splitlines(keepends=True)
    options = {}
    while lines and (match := _MYST_OPTION.match(lines[0].rstrip("\n"))):
        options[match.group(1)] = yaml.safe_load(match.group(2))
        lines.pop(0)
    return PageCell("code", "".join(lines), tuple(options.get("tags") or ()))


def page_cells(path: Path) -> list[PageCell]:
    """The cells of a notebook (.ipynb) or MyST page (.md) in order; on a MyST page the
    text between ``{code-cell}`` blocks counts as markdown cells."""
    if path.suffix == ".ipynb":
        return [
            PageCell(cell["cell_type"], "".join(cell["source"]), tuple(cell.get("metadata", {}).get("tags", ())))
            for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]
        ]
    text, cells, start = path.read_text(encoding="utf-8"), [], 0
    for match in _MYST_CODE_CELL.finditer(text):
        cells += [PageCell("markdown", text[start : match.start()]), _myst_code_cell(match.group(1))]
        start = match.end()
    return cells + [PageCell("markdown", text[start:])]


SOURCE_SUFFIXES = (".md", ".ipynb", ".rst")


def reading_order(toc_path: Path) -> list[str]:
    """The docnames of a jb-book or jb-article ``_toc.yml``: the root first, then in order."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    return [_docname(name) for name in (toc["root"], *_toc_files(toc))]


def _toc_files(node: dict) -> Iterator[str]:
    """The ``file`` entries below ``node`` (parts, chapters, sections), depth first."""
    for key in ("parts", "chapters", "sections"):
        for child in node.get(key) or ():
            if "file" in child:
                yield child["file"]
            yield from _toc_files(child)


def _docname(toc_file: str) -> str:
    """``notebooks/03_train.ipynb`` -> ``notebooks/03_train`` (a suffix is optional in a toc)."""
    path = PurePosixPath(toc_file)
    return str(path.with_suffix("")) if path.suffix in SOURCE_SUFFIXES else toc_file
