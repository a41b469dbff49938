"""Set the GitHub repository the book is published from, once, and rewrite every copy of it.

    ./.venv/bin/python -m tools.publish_url https://github.com/OWNER/REPO   # set it
    ./.venv/bin/python -m tools.publish_url --check                         # list copies that disagree

``_config.yml``'s ``repository.url`` is the one source of truth. Everything else derives
from it (with ``repository.branch``, ``main``):

* ``html.baseurl``, the site's URL: ``https://<owner>.github.io/<repo>/`` (GitHub Pages'
  address for a project site; ``https://<owner>.github.io/`` for a repository named
  ``<owner>.github.io``). A ``baseurl`` that is not on ``github.io`` is a custom domain the
  owner chose: the command keeps it, and ``--baseurl URL`` sets one;
* the setup cell (``tools/setup_cell.py``: ``BOOK_REPOSITORY`` and the ``DATA_URL``
  default, ``https://raw.githubusercontent.com/<owner>/<repo>/<branch>/data/emotions/``)
  and its copy, the first code cell of every notebook (any ``.ipynb`` in the repository, in
  ``_toc.yml`` or not yet): regenerated from ``tools/setup_cell.py``, cell ids, metadata and
  the JSON layout kept, outputs left alone;
* ``emotion_task``'s ``DATA_URL`` default, the install lines in the pages' text
  (``pip install "git+<repository>@main"``) and any other mention, in any text file git
  tracks or would track, of the previous repository URL, raw-data URL or site URL.

``--check`` (and ``tests/test_publish_url.py``) reports every copy that disagrees with
``repository.url``: a notebook's setup cell that differs from ``tools/setup_cell.py``, a
``BOOK_REPOSITORY = "..."``, a ``git+https://github.com/...`` install of another
repository, a ``raw.githubusercontent.com/.../data/`` URL of another repository or branch,
a ``*.github.io`` URL outside ``html.baseurl``, and an ``html.baseurl`` on ``github.io``
that is not the derived one. The book links other projects' pages and issues freely; it
installs no other repository from git and links no other GitHub Pages site: a repository
that it must (``owner/repo``) goes into ``FOREIGN_REPOSITORIES``.

A bad URL changes nothing and exits with status 2; disagreeing copies exit with status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG = "_config.yml"
SETUP_CELL = "tools/setup_cell.py"
TASK_MODULE = "emotion_task/__init__.py"
#: This file: its rules and messages spell URL patterns, not copies.
SELF = "tools/publish_url.py"
EXAMPLE = "https://github.com/octocat/token-set-book"
#: ``owner/repo`` of other repositories the book may install from git or whose Pages site
#: (``owner.github.io``) it may link; none so far.
FOREIGN_REPOSITORIES: frozenset[str] = frozenset()

#: Folders never scanned when the root is not a git work tree (git's ignore rules say so otherwise).
_SKIP_DIRS = {".git", ".venv", "_build", "_vendor", "node_modules", "__pycache__", ".pytest_cache",
              ".ipynb_checkpoints", "artifacts"}
_MAX_BYTES = 4_000_000

_OWNER = re.compile(r"^[A-Za-z0-9](?:-?[A-Za-z0-9])*$")  # GitHub: letters, digits, single inner hyphens
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# In running text a repository name ends on a letter, digit, "_" or "-" (not on a full stop).
_NAME_IN_TEXT = r"[A-Za-z0-9_.-]*[A-Za-z0-9_-]"


class UrlError(ValueError):
    """A repository or site URL that cannot be used; nothing was changed."""


@dataclasses.dataclass(frozen=True)
class Repository:
    owner: str
    name: str
    branch: str = "main"

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def url(self) -> str:
        return f"https://github.com/{self.slug}"

    @property
    def raw_data_url(self) -> str:
        """Where the setup cell and emotion_task read the data from (DATA_URL's default)."""
        return f"https://raw.githubusercontent.com/{self.slug}/{self.branch}/data/emotions/"

    @property
    def pages_url(self) -> str:
        """GitHub Pages' address for the repository: a user site for ``<owner>.github.io``,
        a project site otherwise. Hosts are lower case; the path keeps the name's case."""
        host = f"{self.owner.lower()}.github.io"
        return f"https://{host}/" if self.name.lower() == host else f"https://{host}/{self.name}/"


def parse_repository_url(text: str, branch: str = "main") -> Repository:
    """``https://github.com/OWNER/REPO`` (a trailing ``/`` or ``.git`` is dropped), or UrlError
    naming what is wrong."""
    text = (text or "").strip()

    def bad(reason: str) -> UrlError:
        return UrlError(f"{text!r} is not a GitHub repository URL: {reason}. "
                        f"Give it as https://github.com/OWNER/REPO, e.g. {EXAMPLE}")

    if not text:
        raise UrlError(f"no repository URL given. Give it as https://github.com/OWNER/REPO, e.g. {EXAMPLE}")
    if re.match(r"^[\w.-]+@[\w.-]+:", text):
        raise bad("it is an SSH address; give the https:// address of the repository's page")
    parts = urlsplit(text if "://" in text else "//" + text)
    host = (parts.hostname or "").lower()
    if not parts.scheme:
        raise bad("it has no https:// in front" if host.endswith("github.com") else "it is not a URL")
    if parts.scheme != "https":
        raise bad(f"it starts with {parts.scheme}://, not https://")
    if host != "github.com":
        raise bad(f"it is on {host or 'no host'}, not github.com (the site is published by "
                  "GitHub Pages from a GitHub repository)")
    if parts.username or parts.password or parts.port or parts.query or parts.fragment:
        raise bad("it carries a login, port, query or #fragment")
    path = parts.path.strip("/")
    path = path.removesuffix(".git")
    segments = [s for s in path.split("/") if s] if path else []
    if not segments:
        raise bad("the owner and the repository name are missing")
    if len(segments) == 1:
        raise bad(f"the repository name is missing after the owner {segments[0]!r}")
    if len(segments) > 2:
        raise bad(f"it goes past OWNER/REPO ({'/'.join(segments[2:])!r}); give the repository's own page")
    owner, name = segments
    if not _OWNER.match(owner) or len(owner) > 39:
        raise bad(f"{owner!r} is not a GitHub owner name (letters, digits and single hyphens inside)")
    if not _NAME.match(name) or name in (".", "..") or len(name) > 100:
        raise bad(f"{name!r} is not a GitHub repository name (letters, digits, '.', '-' and '_')")
    return Repository(owner, name, branch)


def parse_site_url(text: str) -> str:
    """A site URL for ``--baseurl`` (a custom domain), with a trailing ``/``."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise UrlError(f"{text!r} is not a site URL: give it as https://HOST/PATH/, e.g. https://book.example.org/")
    return text.strip().rstrip("/") + "/"


def _is_pages_url(url: str) -> bool:
    return (urlsplit(url).hostname or "").endswith(".github.io")


# --------------------------------------------------------------------------- #
# The files
# --------------------------------------------------------------------------- #
def text_files(root: Path) -> list[Path]:
    """Every text file git tracks or would track under ``root`` (or, outside a git work tree,
    every text file outside build and environment folders)."""
    paths = None
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, check=True).stdout.strip()
        if Path(top).resolve() == root.resolve():
            listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "-co", "--exclude-standard"],
                                    capture_output=True, text=True, check=True).stdout
            paths = [root / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        pass
    if paths is None:
        paths = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
            paths += [Path(folder) / f for f in sorted(files)]
    return sorted({p for p in paths if p.is_file() and not p.is_symlink() and p != root / SELF
                   and not p.name.endswith(".executed.ipynb") and _read_text(p) is not None})


def _read_text(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) > _MAX_BYTES or b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def dump_notebook(notebook: dict) -> str:
    """The repository's notebook format (what nbformat and the other tools write)."""
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def setup_cell_lines(setup_cell: str) -> list[str]:
    """tools/setup_cell.py as a notebook cell's ``source`` (no newline after the last line)."""
    return setup_cell.rstrip("\n").splitlines(keepends=True)


_SETUP_CELL_MARK = re.compile(r"^BOOK_REPOSITORY\s*=", re.MULTILINE)


def is_setup_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and bool(_SETUP_CELL_MARK.search("".join(cell.get("source", ""))))


# --------------------------------------------------------------------------- #
# The copies: each rule finds URLs of one kind and says what they should read
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class Problem:
    where: str
    found: str
    expected: str

    def __str__(self) -> str:
        return f"{self.where}: {self.found}  (expected {self.expected})"


@dataclasses.dataclass(frozen=True)
class Rule:
    what: str
    pattern: re.Pattern
    expected: Callable[[re.Match, Repository, str], str | None]  # None: a foreign URL, left alone


def _engine(match: re.Match, repo: Repository, baseurl: str) -> str | None:
    if match.group(1) in FOREIGN_REPOSITORIES:
        return None
    return f"git+{repo.url}"


def _raw_data(match: re.Match, repo: Repository, baseurl: str) -> str | None:
    if match.group(1) in FOREIGN_REPOSITORIES:
        return None
    return f"https://raw.githubusercontent.com/{repo.slug}/{repo.branch}/data/"


def _book_repository(match: re.Match, repo: Repository, baseurl: str) -> str:
    return f"{match.group(1)}{match.group(2)}{repo.url}{match.group(2)}"


def _pages(match: re.Match, repo: Repository, baseurl: str) -> str | None:
    url, owner, first, rest = match.group(0), match.group(1).lower(), match.group(2), match.group(3) or ""
    if f"{owner}/{first}" in FOREIGN_REPOSITORIES or f"{owner}/{owner}.github.io" in FOREIGN_REPOSITORIES:
        return None
    if url.startswith(baseurl) or url.rstrip("/") + "/" == baseurl:
        return url
    # another site: https://HOST.github.io/FIRST/REST (a project site) -> BASEURL + REST
    return baseurl + rest.removeprefix("/") if first else baseurl


RULES = (
    Rule("engine install", re.compile(rf"git\+https://github\.com/([A-Za-z0-9-]+/{_NAME_IN_TEXT})"), _engine),
    Rule("data URL", re.compile(rf"https://raw\.githubusercontent\.com/([A-Za-z0-9-]+/{_NAME_IN_TEXT})/[^/\s\"'`]+/data/"),
         _raw_data),
    Rule("BOOK_REPOSITORY", re.compile(r"(BOOK_REPOSITORY\s*=\s*)([\"'])(https?://[^\"'\s]*)\2"), _book_repository),
    Rule("site URL", re.compile(r"https?://([A-Za-z0-9-]+)\.github\.io(?:/([A-Za-z0-9_.-]*)([^\s\"'`<>()\[\]{}\\]*))?"),
         _pages),
)


def _findings(text: str, repo: Repository, baseurl: str) -> Iterator[tuple[int, str, str]]:
    """(offset, found, expected) of each copy in ``text`` that disagrees."""
    for rule in RULES:
        for match in rule.pattern.finditer(text):
            expected = rule.expected(match, repo, baseurl)
            if expected is not None and expected != match.group(0):
                yield match.start(), match.group(0), expected


def _fix(text: str, repo: Repository, baseurl: str) -> str:
    for rule in RULES:
        text = rule.pattern.sub(lambda m: rule.expected(m, repo, baseurl) or m.group(0), text)
    return text


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


# --------------------------------------------------------------------------- #
# _config.yml
# --------------------------------------------------------------------------- #
def read_config(root: Path) -> dict:
    return yaml.safe_load((root / CONFIG).read_text(encoding="utf-8")) or {}


def configured(root: Path) -> tuple[Repository, str]:
    """The repository of ``repository.url`` and the site URL of ``html.baseurl``."""
    config = read_config(root)
    repository = config.get("repository") or {}
    repo = parse_repository_url(repository.get("url") or "", str(repository.get("branch") or "main"))
    return repo, str((config.get("html") or {}).get("baseurl") or "")


def set_config_value(text: str, section: str, key: str, value: str) -> str:
    """``text`` (a YAML file) with ``section.key`` set to the quoted ``value``; comments and
    the other lines stay as they are."""
    lines = text.splitlines(keepends=True)
    header = re.compile(rf"^{re.escape(section)}:\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line.rstrip("\n"))), None)
    if start is None:
        raise UrlError(f"{CONFIG} has no top-level `{section}:` section")
    end = next((j for j in range(start + 1, len(lines))
                if lines[j].strip() and not lines[j].startswith((" ", "\t", "#"))), len(lines))
    children = [j for j in range(start + 1, end) if lines[j].strip() and not lines[j].lstrip().startswith("#")]
    indent = re.match(r"^\s*", lines[children[0]]).group(0) if children else "  "
    entry = re.compile(rf"^{re.escape(indent)}{re.escape(key)}:[ \t]*(?:\"[^\"]*\"|'[^']*'|[^#\n]*?)([ \t]+#.*)?$")
    for j in children:
        match = entry.match(lines[j].rstrip("\n"))
        if match:
            lines[j] = f'{indent}{key}: "{value}"{match.group(1) or ""}\n'
            return "".join(lines)
    lines.insert(start + 1, f'{indent}{key}: "{value}"\n')
    return "".join(lines)


# --------------------------------------------------------------------------- #
# Check and rewrite
# --------------------------------------------------------------------------- #
def check(root: Path = REPO_ROOT) -> list[Problem]:
    """Every copy of the repository's URL under ``root`` that disagrees with ``_config.yml``."""
    try:
        repo, baseurl = configured(root)
    except UrlError as error:
        return [Problem(f"{CONFIG}: repository.url", str(error), EXAMPLE)]
    problems = []
    if not baseurl.endswith("/") or not urlsplit(baseurl).hostname:
        problems.append(Problem(f"{CONFIG}: html.baseurl", repr(baseurl), "a site URL ending in /"))
    elif _is_pages_url(baseurl) and baseurl != repo.pages_url:
        problems.append(Problem(f"{CONFIG}: html.baseurl", baseurl, repo.pages_url))
    if not baseurl.endswith("/"):
        baseurl += "/"
    setup_path = root / SETUP_CELL
    setup_cell = setup_path.read_text(encoding="utf-8") if setup_path.is_file() else ""
    for path, what in ((SETUP_CELL, f'BOOK_REPOSITORY = "{repo.url}"'), (SETUP_CELL, f'"{repo.raw_data_url}"'),
                       (TASK_MODULE, f'"{repo.raw_data_url}"')):
        text = _read_text(root / path) or ""
        if what not in text:
            problems.append(Problem(path, "missing", what))
    for path in text_files(root):
        name = path.relative_to(root).as_posix()
        if path.suffix == ".ipynb":
            try:
                cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
            except ValueError as error:
                problems.append(Problem(name, f"not a notebook ({error})", "JSON"))
                continue
            for number, cell in enumerate(cells, 1):
                source = "".join(cell.get("source", ""))
                where = f"{name}: cell {number} ({cell.get('id', 'no id')})"
                if is_setup_cell(cell) and source.rstrip("\n") != setup_cell.rstrip("\n"):
                    problems.append(Problem(where, "a setup cell that differs from " + SETUP_CELL,
                                            f"a copy of {SETUP_CELL}"))
                problems += [Problem(f"{where} line {_line(source, at)}", found, expected)
                             for at, found, expected in _findings(source, repo, baseurl)]
        else:
            text = _read_text(path) or ""
            problems += [Problem(f"{name}:{_line(text, at)}", found, expected)
                         for at, found, expected in _findings(text, repo, baseurl)]
    return problems


def _previous_mentions(old: Repository | None, old_baseurl: str, new: Repository,
                       new_baseurl: str) -> list[tuple[re.Pattern, str]]:
    """Patterns for every mention of the previous URLs, with what replaces them."""
    pairs = []
    if old is not None and old.slug != new.slug:
        # not followed by more of a name (another repository), except a final ".git"
        end = r"(?![A-Za-z0-9_-])(?!\.(?!git(?![A-Za-z0-9_.-]))[A-Za-z0-9_-])"
        pairs.append((re.compile(re.escape(f"https://raw.githubusercontent.com/{old.slug}/")),
                      f"https://raw.githubusercontent.com/{new.slug}/"))
        pairs.append((re.compile(re.escape(old.url) + end), new.url))
    if old_baseurl and old_baseurl != new_baseurl:
        pairs.append((re.compile(re.escape(old_baseurl.rstrip("/")) + r"(?![A-Za-z0-9_.-])/?"), new_baseurl))
    return pairs


def publish(url: str, root: Path = REPO_ROOT, baseurl: str | None = None) -> tuple[list[str], list[Problem]]:
    """Set ``repository.url`` (and ``html.baseurl``) and rewrite every copy under ``root``:
    the files changed, and the problems left (none when all went well). Raises UrlError,
    having changed nothing, for a bad URL."""
    config = read_config(root)
    repository = config.get("repository") or {}
    new = parse_repository_url(url, str(repository.get("branch") or "main"))
    new_baseurl = parse_site_url(baseurl) if baseurl else None
    try:
        old = parse_repository_url(repository.get("url") or "", new.branch)
    except UrlError:
        old = None
    old_baseurl = str((config.get("html") or {}).get("baseurl") or "")
    if new_baseurl is None:
        custom_domain = old_baseurl and urlsplit(old_baseurl).hostname and not _is_pages_url(old_baseurl)
        new_baseurl = old_baseurl.rstrip("/") + "/" if custom_domain else new.pages_url

    changed = []

    def write(path: Path, text: str) -> None:
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path.relative_to(root).as_posix())

    config_path = root / CONFIG
    text = config_path.read_text(encoding="utf-8")
    text = set_config_value(text, "repository", "url", new.url)
    text = set_config_value(text, "html", "baseurl", new_baseurl)
    written = yaml.safe_load(text)
    assert written["repository"]["url"] == new.url and written["html"]["baseurl"] == new_baseurl, text
    write(config_path, text)

    mentions = _previous_mentions(old, old_baseurl, new, new_baseurl)

    def rewrite(source: str) -> str:
        for pattern, replacement in mentions:
            source = pattern.sub(lambda _: replacement, source)
        return _fix(source, new, new_baseurl)

    files = text_files(root)
    setup_path = root / SETUP_CELL
    # The setup cell first: the notebooks' copies are regenerated from it.
    for path in sorted(files, key=lambda p: p != setup_path):
        if path == config_path:
            continue
        if path.suffix != ".ipynb":
            write(path, rewrite(path.read_text(encoding="utf-8")))
            continue
        notebook = json.loads(path.read_text(encoding="utf-8"))
        setup_cell = setup_path.read_text(encoding="utf-8") if setup_path.is_file() else None
        for cell in notebook.get("cells", []):
            if setup_cell is not None and is_setup_cell(cell):
                cell["source"] = setup_cell_lines(setup_cell)
            else:
                source = "".join(cell.get("source", ""))
                fixed = rewrite(source)
                if fixed != source:
                    cell["source"] = fixed.splitlines(keepends=True)
        write(path, dump_notebook(notebook))
    return changed, check(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.publish_url",
        description="Set the GitHub repository the book is published from (_config.yml's repository.url) "
        "and rewrite every copy of it; or, with --check, list the copies that disagree.",
    )
    parser.add_argument("url", nargs="?", help=f"the repository's GitHub URL, e.g. {EXAMPLE}")
    parser.add_argument("--check", action="store_true", help="change nothing; list the copies that disagree "
                        "with _config.yml (exit status 1 if any)")
    parser.add_argument("--baseurl", help="the site's URL on a custom domain (default: kept if it is one, else "
                        "https://<owner>.github.io/<repo>/)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = args.root.resolve()

    if args.check:
        if args.url or args.baseurl:
            parser.error("--check takes no URL: it checks the copies against _config.yml's repository.url")
        problems = check(root)
        try:
            repo, baseurl = configured(root)
            source = f"{repo.url} (site {baseurl})"
        except UrlError:
            source = "?"
        if problems:
            print(f"{len(problems)} cop{'y' if len(problems) == 1 else 'ies'} of the repository URL disagree "
                  f"with {CONFIG}'s repository.url {source}:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            print("Rewrite them with: python -m tools.publish_url <repository URL>", file=sys.stderr)
            return 1
        print(f"every copy agrees with {CONFIG}: {source}")
        return 0

    if not args.url:
        parser.error(f"give the repository's GitHub URL (e.g. {EXAMPLE}), or --check")
    try:
        changed, problems = publish(args.url, root, args.baseurl)
    except UrlError as error:
        print(f"error: {error}\nNothing was changed.", file=sys.stderr)
        return 2
    repo, baseurl = configured(root)
    print(f"repository: {repo.url}\nsite:       {baseurl}")
    print("changed:    " + (", ".join(changed) if changed else "nothing (every copy already agreed)"))
    if problems:
        print("These copies still disagree; fix them by hand:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
