"""Shared fixtures: the cold offline book build (`built_book`) and repo paths."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import pytest
import yaml

from tools import book_build  # the code scripts/build_book.sh runs
from tools.pages import PageCell, page_cells, reading_order  # noqa: F401 (the tests import them from here)

REPO_ROOT = Path(__file__).resolve().parents[1]

SOURCE_SUFFIXES = (".ipynb", ".md")

#: A key-shaped TINKER_API_KEY put in the environment of the cold build;
#: tests/test_secrets.py asserts it appears nowhere in what the build produced.
#: (Concatenated so that no key-shaped string is written in this file.)
SENTINEL_API_KEY = "tml-" + "SENTINEL" + "bookbuild" + "0123456789"

#: Where the cold build's kernels record what TINKER_API_KEY they saw (see key_probe_env).
KEY_PROBE_ENV = "BOOK_TEST_KEY_PROBE_DIR"
#: An IPython startup file: every kernel runs it before the notebook's first cell. It
#: writes the sha256 of the TINKER_API_KEY in the kernel's environment (never the key)
#: to $BOOK_TEST_KEY_PROBE_DIR, outside the site, and leaves no name behind.
KEY_PROBE_STARTUP = f"""\
def _book_key_probe():
    import hashlib, os, pathlib, uuid
    out = os.environ.get({KEY_PROBE_ENV!r})
    if out:
        digest = hashlib.sha256(os.environ.get("TINKER_API_KEY", "").encode()).hexdigest()
        (pathlib.Path(out) / f"kernel-{{uuid.uuid4().hex}}.sha256").write_text(digest)
_book_key_probe()
del _book_key_probe
"""

#: Set to a finished build's ``_build`` directory to test it instead of building
#: from cold (for development only; e.g. after
#: ``./.venv/bin/python -m tools.book_build --path-output /tmp/site-build``,
#: ``BOOK_PREBUILT=/tmp/site-build/_build``). The secrets test then cannot vouch
#: for the sentinel key and skips that check.
PREBUILT_ENV = "BOOK_PREBUILT"


def toc_docnames(toc_path: Path = REPO_ROOT / "_toc.yml") -> list[str]:
    """All docnames in a jb-book/jb-article _toc.yml, root first, in order."""
    return reading_order(toc_path)


def page_source(docname: str) -> Path:
    """The source file of a page, by docname (``notebooks/03_train`` -> its .ipynb)."""
    for suffix in SOURCE_SUFFIXES:
        path = REPO_ROOT / f"{docname}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no {' or '.join(SOURCE_SUFFIXES)} source for page {docname!r}")


def key_probe_env(tmp: Path) -> dict[str, str]:
    """Environment entries that make each IPython kernel record sha256(TINKER_API_KEY).

    The records land in ``tmp/records`` (read them with :func:`key_probe_records`).
    """
    startup = tmp / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-book-key-probe.py").write_text(KEY_PROBE_STARTUP)
    (tmp / "records").mkdir()
    return {"IPYTHONDIR": str(tmp / "ipython"), KEY_PROBE_ENV: str(tmp / "records")}


def key_probe_records(env: dict[str, str]) -> list[str]:
    """The sha256 digests that the kernels started with ``env`` recorded, one per kernel."""
    return sorted(p.read_text() for p in Path(env[KEY_PROBE_ENV]).glob("kernel-*.sha256"))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


TINY_BOOK_CONFIG = """\
title: tiny
author: tests
only_build_toc_files: true
exclude_patterns: ["data/**", "out/**"]
execute:
  execute_notebooks: cache
  timeout: 120
  allow_errors: false
sphinx:
  config:
    nb_execution_raise_on_error: true
"""


def write_tiny_book(root: Path, code: str) -> None:
    """A one-page Jupyter Book in ``root``: ``intro.ipynb``, whose one code cell is ``code``."""
    import nbformat

    root.mkdir(parents=True, exist_ok=True)
    (root / "_config.yml").write_text(TINY_BOOK_CONFIG)
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"), nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, root / "intro.ipynb")


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
    result: "book_build.BuildResult | None"  # None when BOOK_PREBUILT is used
    build_dir: Path | None = None  # <tmp>/_build
    sentinel_api_key: str | None = None  # the TINKER_API_KEY the build ran with
    key_probe: dict[str, str] | None = None  # key_probe_env() of the build: what its kernels saw
    model_cache: Path | None = None  # the TINKER_OFFLINE_CACHE the build started empty


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> BuiltBook:
    """Build the whole book from cold, offline, into a fresh temporary output dir.

    Uses the same code as scripts/build_book.sh (tools/book_build.build_book) with
    TINKER_BOOK_BACKEND=offline; the developer's own ./_build is never touched.
    The build's environment also holds a key-shaped TINKER_API_KEY sentinel
    (SENTINEL_API_KEY) that must not leak into the site (tests/test_secrets.py),
    and a startup file that makes each notebook's kernel record a hash of the key
    it saw (key_probe_env), so that the test knows the kernels had the sentinel.
    With $BOOK_PREBUILT set, that build is used instead (development only).
    """
    prebuilt = os.environ.get(PREBUILT_ENV)
    if prebuilt:
        build_dir = Path(prebuilt).resolve()
        if not (build_dir / "html" / "index.html").is_file():
            pytest.fail(f"${PREBUILT_ENV}={prebuilt}: no html/index.html there", pytrace=False)
        print(f"\n[built_book] using the prebuilt book in {build_dir} (${PREBUILT_ENV})")
        return BuiltBook(
            html_dir=build_dir / "html",
            execute_dir=build_dir / book_build.EXECUTE_DIRNAME,
            result=None,
            build_dir=build_dir,
        )
    missing = missing_toc_sources()
    if missing:
        pytest.fail(
            "cannot build the book: pages listed in _toc.yml have no source file "
            "(.ipynb or .md): " + ", ".join(missing),
            pytrace=False,
        )
    out = tmp_path_factory.mktemp("book-cold")
    probe = key_probe_env(tmp_path_factory.mktemp("key-probe"))
    # An empty model cache: the first notebook converts the weights, as on a fresh machine.
    model_cache = tmp_path_factory.mktemp("model-cache")
    # build_env(tinker=False) forces TINKER_BOOK_BACKEND=offline whatever the key says.
    env = book_build.build_env(
        tinker=False,
        base={**os.environ, "TINKER_API_KEY": SENTINEL_API_KEY, "TINKER_OFFLINE_CACHE": str(model_cache), **probe},
    )
    result = book_build.build_book(REPO_ROOT, out, env=env, echo=False)
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
    return BuiltBook(
        html_dir=result.html_dir,
        execute_dir=result.execute_dir,
        result=result,
        build_dir=result.build_dir,
        sentinel_api_key=SENTINEL_API_KEY,
        key_probe=probe,
        model_cache=model_cache,
    )


def pytest_collection_modifyitems(config, items):
    """Every test that reads the built book is marked ``book``, so that scripts/test.sh can run
    them in one pytest process (which builds the book once) and the rest beside it in another."""
    for item in items:
        if "built_book" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.book)
