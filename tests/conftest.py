"""Shared fixtures: the cold offline book build (`built_book`) and repo paths."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "tools"))

import book_build  # noqa: E402  (tools/book_build.py: the code scripts/build_book.sh runs)

SOURCE_SUFFIXES = (".ipynb", ".md")


def toc_docnames(toc_path: Path = REPO_ROOT / "_toc.yml") -> list[str]:
    """All docnames in a jb-book/jb-article _toc.yml, root first, in order."""
    toc = yaml.safe_load(toc_path.read_text())
    names = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                names.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in toc.items() if k in ("parts", "chapters", "sections")})
    return [n[: -len(Path(n).suffix)] if n.endswith(SOURCE_SUFFIXES) else n for n in names]


def missing_toc_sources(root: Path = REPO_ROOT) -> list[str]:
    """Docnames from _toc.yml that have neither a .ipynb nor a .md source."""
    return [
        d
        for d in toc_docnames(root / "_toc.yml")
        if not any((root / f"{d}{suffix}").is_file() for suffix in SOURCE_SUFFIXES)
    ]


@dataclasses.dataclass(frozen=True)
class BuiltBook:
    html_dir: Path  # <tmp>/_build/html
    execute_dir: Path  # <tmp>/_build/jupyter_execute (executed notebooks + *.glue.json)
    result: "book_build.BuildResult"


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> BuiltBook:
    """Build the whole book from cold, offline, into a fresh temporary output dir.

    Uses the same code as scripts/build_book.sh (tools/book_build.build_book) with
    TINKER_BOOK_BACKEND=offline; the developer's own ./_build is never touched.
    """
    missing = missing_toc_sources()
    if missing:
        pytest.fail(
            "cannot build the book: pages listed in _toc.yml have no source file "
            "(.ipynb or .md): " + ", ".join(missing),
            pytrace=False,
        )
    out = tmp_path_factory.mktemp("book-cold")
    result = book_build.build_book(REPO_ROOT, out, tinker=False, echo=False)
    if not result.ok:
        pytest.fail(
            f"offline book build failed (exit {result.returncode}, "
            f"{result.failed} notebook(s) failed); full log: {result.log_path}\n"
            f"--- last lines of the build log ---\n{result.log_tail(60)}",
            pytrace=False,
        )
    print(
        f"\n[built_book] cold build in {result.wall_seconds:.1f} s, "
        f"{result.executed} notebook(s) executed -> {result.html_dir}"
    )
    return BuiltBook(html_dir=result.html_dir, execute_dir=result.execute_dir, result=result)
