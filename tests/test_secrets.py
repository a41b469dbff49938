"""No secrets: a Tinker API key never reaches the repository or the published site.

* Committed notebooks carry no outputs at all: tests/test_notebooks_clean.py.
* The cold build (`built_book`, tests/conftest.py) runs with a key-shaped
  sentinel in TINKER_API_KEY (while TINKER_BOOK_BACKEND=offline); each notebook's
  kernel records a hash of the key it saw (the positive control: the sentinel
  really reached the code that could leak it). Neither the HTML, the
  ``_sources`` the download button serves, the executed notebooks nor the
  notebook cache may contain it, or any other key-shaped string.
* The repository's own files hold no key-shaped string.
* Notebooks only test whether TINKER_API_KEY is set; they never read its value
  into a variable, print it or pass it on (the tinker SDK reads it itself).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import (
    REPO_ROOT,
    SENTINEL_API_KEY,
    key_probe_env,
    key_probe_records,
    sha256_hex,
    write_tiny_book,
)
from test_notebooks_clean import code_cells, notebooks_or_skip
from tools import book_build

#: What a Tinker API key looks like ("tml-" and a long alphanumeric tail).
KEY_SHAPED = re.compile(rb"(?<![A-Za-z0-9])tml-[A-Za-z0-9]{16,}")
KEY_ENV = "TINKER_API_KEY"
#: Larger files are binary blobs (model weights and the like), not text we publish.
MAX_SCAN_BYTES = 50 * 1024 * 1024


def key_shaped_in(path: Path) -> list[str]:
    if path.stat().st_size > MAX_SCAN_BYTES:
        return []
    data = path.read_bytes()
    return sorted({m.group().decode(errors="replace") for m in KEY_SHAPED.finditer(data)})


def _mask(key: str) -> str:
    return key[:8] + "…" + f"({len(key)} chars)"


# --------------------------------------------------------------------------- #
# The build
# --------------------------------------------------------------------------- #
def _build_outputs(built_book) -> list[Path]:
    roots = [built_book.html_dir, built_book.execute_dir]
    if built_book.build_dir is not None:
        roots.append(built_book.build_dir / ".jupyter_cache")
    files = []
    for root in roots:
        if root.is_dir():
            files.extend(p for p in root.rglob("*") if p.is_file())
    return files


@pytest.mark.book
def test_build_used_the_sentinel_key(built_book):
    """Every notebook's kernel had the sentinel in its environment (a hash of it is recorded)."""
    if built_book.sentinel_api_key is None:
        pytest.skip("prebuilt book ($BOOK_PREBUILT): its build environment is unknown")
    assert KEY_SHAPED.fullmatch(built_book.sentinel_api_key.encode())
    executed = built_book.result.executed
    seen = key_probe_records(built_book.key_probe)
    assert executed > 0, "the cold build executed no notebook"
    assert len(seen) >= executed, f"{executed} notebooks executed, but only {len(seen)} kernels reported"
    assert set(seen) == {sha256_hex(built_book.sentinel_api_key)}, (
        "a kernel of the build saw another TINKER_API_KEY than the sentinel"
    )


@pytest.mark.slow
def test_key_probe_reports_what_the_kernels_saw(tmp_path):
    """The probe behind the test above, in a one-page book built by the same code: it
    reports a hash of the key the kernel had, leaves no name behind, and prints nothing.
    Slow: two builds of that one-page book (a kernel start and a Sphinx run each)."""
    root = tmp_path / "book"
    write_tiny_book(root, "print(sorted(name for name in dir() if 'probe' in name))")
    base = {k: v for k, v in os.environ.items() if k != KEY_ENV}

    def build(name: str, key: str) -> tuple[list[str], str, str]:
        probe = key_probe_env(tmp_path / f"probe-{name}")
        env = book_build.build_env(False, {**base, KEY_ENV: key, **probe})
        # a fresh output directory each time: a cold cache, so the notebook's kernel starts
        result = book_build.build_book(root, tmp_path / f"out-{name}", env=env, echo=False, log=lambda _m: None, site_extras=False)
        assert result.ok and result.executed == 1, result.log_tail()
        executed = (result.execute_dir / "intro.ipynb").read_text()
        return key_probe_records(probe), executed, (result.html_dir / "intro.html").read_text()

    seen, executed, html = build("sentinel", SENTINEL_API_KEY)
    assert seen == [sha256_hex(SENTINEL_API_KEY)]
    (output,) = json.loads(executed)["cells"][1]["outputs"]
    assert "".join(output["text"]) == "[]\n", "the probe left a name behind"
    assert seen[0] not in html + executed and SENTINEL_API_KEY not in html + executed
    other, _, _ = build("other", "tml-" + "other" * 5)
    assert other and other != seen, "the probe reports the same hash for another key"


@pytest.mark.book
def test_built_site_holds_no_key(built_book):
    files = _build_outputs(built_book)
    sources = [p for p in files if "_sources" in p.parts]
    executed = [p for p in files if p.suffix == ".ipynb" and built_book.execute_dir in p.parents]
    assert sources, f"no _sources in {built_book.html_dir}"
    assert executed, f"no executed notebooks in {built_book.execute_dir}"
    sentinel = SENTINEL_API_KEY.encode()
    leaks = []
    for path in files:
        if path.stat().st_size <= MAX_SCAN_BYTES and sentinel in path.read_bytes():
            leaks.append(f"{path}: contains the build's TINKER_API_KEY")
        leaks.extend(f"{path}: key-shaped string {_mask(k)}" for k in key_shaped_in(path)
                     if k != SENTINEL_API_KEY)
    assert not leaks, "the build leaks an API key:\n" + "\n".join(leaks)


# --------------------------------------------------------------------------- #
# The repository
# --------------------------------------------------------------------------- #
def repo_files(root: Path = REPO_ROOT) -> list[Path]:
    """Tracked files plus untracked ones that are not ignored (what a commit could add)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(p for p in (root / f for f in out.split("\0") if f) if p.is_file())


def test_repository_holds_no_key():
    try:
        files = repo_files()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout: {exc}")
    found = [f"{p.relative_to(REPO_ROOT)}: {_mask(k)}" for p in files for k in key_shaped_in(p)]
    assert not found, "key-shaped strings in the repository:\n" + "\n".join(found)


def test_key_detection(tmp_path):
    key = "tml-" + "abcDEF0123456789xyz"
    # A longer word that merely contains "tml-" must not count; concatenated so that no
    # key-shaped string is written in this file.
    not_a_key = "h" + "tml-" + "abcdefghijklmnopqrstu"
    f = tmp_path / "x.txt"
    f.write_text(f'api_key = "{key}"\n{not_a_key}\ntml-short\n')
    assert key_shaped_in(f) == [key]


# --------------------------------------------------------------------------- #
# How notebooks touch TINKER_API_KEY
# --------------------------------------------------------------------------- #
def _is_key_literal(node) -> bool:
    return isinstance(node, ast.Constant) and node.value == KEY_ENV


def _is_environ(node) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _key_reads(tree: ast.AST):
    """Expressions that read the *value* of TINKER_API_KEY."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and _is_key_literal(node.args[0]):
            f = node.func
            if isinstance(f, ast.Attribute) and (
                (f.attr == "get" and _is_environ(f.value)) or f.attr == "getenv"
            ):
                yield node
        elif isinstance(node, ast.Subscript) and _is_environ(node.value) and _is_key_literal(node.slice):
            yield node


def _only_tested_for_presence(node, parents) -> bool:
    """True if ``node``'s value is only used as a truth value."""
    child, parent = node, parents.get(node)
    while isinstance(parent, (ast.BoolOp, ast.UnaryOp)):
        if isinstance(parent, ast.UnaryOp) and not isinstance(parent.op, ast.Not):
            return False
        if isinstance(parent, ast.UnaryOp):
            return True  # `not os.environ.get(...)` is a bool
        child, parent = parent, parents.get(parent)
    if isinstance(parent, (ast.If, ast.IfExp, ast.While, ast.Assert)) and parent.test is child:
        return True
    if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "bool":
        return True
    if isinstance(parent, ast.Compare) and all(
        isinstance(op, (ast.Is, ast.IsNot)) for op in parent.ops
    ) and all(isinstance(c, ast.Constant) and c.value is None for c in parent.comparators):
        return True  # `os.environ.get(KEY) is not None`
    return False


def key_uses(source: str) -> list[str]:
    """Lines of ``source`` that use TINKER_API_KEY's value other than as a truth value."""
    lines = [
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    ]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return [f"cannot parse: {source[:60]!r}"] if KEY_ENV in source else []
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    return [
        ast.get_source_segment("\n".join(lines), node) or KEY_ENV
        for node in _key_reads(tree)
        if not _only_tested_for_presence(node, parents)
    ]


def test_notebooks_only_test_the_key_for_presence():
    problems = [
        f"{path.relative_to(REPO_ROOT)} cell {i}: {use}"
        for path in notebooks_or_skip()
        for i, _cell, source in code_cells(path)
        for use in key_uses(source)
    ]
    assert not problems, (
        f"notebooks may only test whether {KEY_ENV} is set (the tinker SDK reads it itself):\n"
        + "\n".join(problems)
    )


def test_key_use_detection():
    ok = [
        'B = "tinker" if os.environ.get("TINKER_API_KEY") else "offline"',
        'if os.environ.get("TINKER_API_KEY"):\n    pass',
        'x = "TINKER_API_KEY" in os.environ',
        'have = bool(os.getenv("TINKER_API_KEY"))',
        'if not os.environ.get("TINKER_API_KEY") and y:\n    pass',
        'print("set TINKER_API_KEY to run on Tinker")',
        "%env TINKER_BOOK_BACKEND=offline",
    ]
    bad = [
        'key = os.environ["TINKER_API_KEY"]',
        'print(os.environ.get("TINKER_API_KEY"))',
        'c = tinker.ServiceClient(api_key=os.getenv("TINKER_API_KEY"))',
        'k = os.environ.get("TINKER_API_KEY") or ""',
    ]
    assert [key_uses(s) for s in ok] == [[]] * len(ok)
    assert all(key_uses(s) for s in bad), [key_uses(s) for s in bad]
