"""The repository URL is set once: ``_config.yml``'s ``repository.url``. Every copy of it (the
notebooks' setup cells, tools/setup_cell.py, emotion_task's DATA_URL, the install lines in
the pages, ``html.baseurl``) agrees with it, and ``python -m tools.publish_url URL``
rewrites them all (tools/publish_url.py)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT
from tools import publish_url

CONFIG = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
OLD = publish_url.parse_repository_url(CONFIG["repository"]["url"], CONFIG["repository"].get("branch", "main"))
OLD_BASEURL = CONFIG["html"]["baseurl"]
#: Another owner's fork (mixed case, a dot and an underscore in the name).
NEW = publish_url.Repository("Some-Fork-Owner", "Token.Set_Book", OLD.branch)


def github(owner: str, name: str) -> str:
    """A repository URL, built so that this file holds no copy of one."""
    return "https://" + "github.com/" + owner + "/" + name


def pages(owner: str, name: str) -> str:
    return "https://" + owner.lower() + ".github" + ".io/" + name + "/"


def test_every_copy_of_the_url_agrees_with_config():
    problems = publish_url.check(REPO_ROOT)
    assert not problems, (
        f"copies that disagree with _config.yml's repository.url {OLD.url}:\n"
        + "\n".join(f"  {p}" for p in problems)
        + "\nrewrite them with: python -m tools.publish_url <repository URL>"
    )


def test_the_site_url_derives_from_the_repository_url():
    assert OLD_BASEURL == OLD.pages_url or not publish_url._is_pages_url(OLD_BASEURL)
    assert NEW.pages_url == pages("some-fork-owner", "Token.Set_Book")
    assert publish_url.Repository("Octo", "octo.github.io").pages_url == "https://octo.github" + ".io/"


# --------------------------------------------------------------------------- #
# On a copy of the repository
# --------------------------------------------------------------------------- #
@pytest.fixture
def repo_copy(tmp_path) -> Path:
    """The files git tracks or would track, copied into a fresh git work tree (nothing added)."""
    listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "-z", "-co", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout
    root = tmp_path / "repo"
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m tools.publish_url ARGS`` in ``root`` (its own copy of the tool)."""
    return subprocess.run([sys.executable, "-m", "tools.publish_url", *args], cwd=root,
                          capture_output=True, text=True)


def snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.relative_to(root).parts}


def texts(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in publish_url.text_files(root)}


def test_the_file_list_is_the_same_without_git(repo_copy):
    with_git = publish_url.text_files(repo_copy)
    shutil.rmtree(repo_copy / ".git")
    assert publish_url.text_files(repo_copy) == with_git
    assert repo_copy / "tools" / "setup_cell.py" in with_git


def test_publish_on_a_copy_rewrites_every_copy_and_nothing_else(repo_copy):
    before = texts(repo_copy)
    result = run(repo_copy, NEW.url)
    assert result.returncode == 0, result.stdout + result.stderr
    after = texts(repo_copy)
    assert after.keys() == before.keys()

    # No copy of the old URLs is left, and --check passes.
    old_host = OLD_BASEURL.split("/")[2]
    leftovers = [f"{name}: {needle}" for name, text in after.items()
                 for needle in (OLD.slug, old_host) if needle in text]
    assert not leftovers, leftovers
    check = run(repo_copy, "--check")
    assert check.returncode == 0, check.stdout + check.stderr

    # _config.yml holds the new URL and the site URL derived from it.
    config = yaml.safe_load((repo_copy / "_config.yml").read_text())
    assert config["repository"]["url"] == NEW.url == github("Some-Fork-Owner", "Token.Set_Book")
    assert config["html"]["baseurl"] == NEW.pages_url

    # Each file changed by exactly the URL replacements, nothing else (comments, layout,
    # other cells, cell ids, outputs): so the notebooks keep their JSON format.
    def replaced(text: str) -> str:
        for old, new in ((OLD.raw_data_url, NEW.raw_data_url), (OLD.url, NEW.url), (OLD_BASEURL, NEW.pages_url)):
            text = text.replace(old, new)
        return text

    changed = sorted(name for name in before if before[name] != after[name])
    assert {"_config.yml", "tools/setup_cell.py", "emotion_task/__init__.py", "book/intro.md"} <= set(changed)
    with_setup_cells = [name for name in before if name.endswith(".ipynb")
                        and any(publish_url.is_setup_cell(c) for c in json.loads(before[name])["cells"])]
    assert len(with_setup_cells) >= 6 and set(with_setup_cells) <= set(changed)
    for name in changed:
        assert after[name] == replaced(before[name]), f"{name} changed beyond its URLs"

    # Every notebook's setup cell is the new tools/setup_cell.py, in the repository's format.
    setup_cell = (repo_copy / "tools" / "setup_cell.py").read_text()
    assert f'BOOK_REPOSITORY = "{NEW.url}"' in setup_cell
    for name in (n for n in after if n.endswith(".ipynb")):
        notebook = json.loads(after[name])
        assert after[name] == publish_url.dump_notebook(notebook)
        for cell in (c for c in notebook["cells"] if publish_url.is_setup_cell(c)):
            assert "".join(cell["source"]) == setup_cell.rstrip("\n"), name
        assert all(c.get("outputs", []) == [] for c in notebook["cells"]), name


def test_publish_with_the_current_url_changes_nothing(repo_copy):
    before = snapshot(repo_copy)
    result = run(repo_copy, OLD.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing" in result.stdout
    assert snapshot(repo_copy) == before


def test_a_custom_domain_is_kept_and_baseurl_sets_one(repo_copy):
    assert run(repo_copy, NEW.url, "--baseurl", "https://book.example.org").returncode == 0
    assert yaml.safe_load((repo_copy / "_config.yml").read_text())["html"]["baseurl"] == "https://book.example.org/"
    assert run(repo_copy, OLD.url).returncode == 0
    assert yaml.safe_load((repo_copy / "_config.yml").read_text())["html"]["baseurl"] == "https://book.example.org/"
    assert run(repo_copy, "--check").returncode == 0


# --------------------------------------------------------------------------- #
# The check sees a copy that disagrees (positive controls)
# --------------------------------------------------------------------------- #
OTHER = github("someone-else", OLD.name)


def first_setup_notebook(root: Path) -> str:
    return next(p.relative_to(root).as_posix() for p in sorted(root.glob("notebooks/*.ipynb"))
                if any(publish_url.is_setup_cell(c) for c in json.loads(p.read_text())["cells"]))


def edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / name
    text = path.read_text()
    assert old in text, f"{name} holds no {old!r}"
    path.write_text(text.replace(old, new, 1))


def new_notebook_with_an_old_setup_cell(root: Path) -> str:
    """A page that does not exist yet (and is in no _toc.yml), copied from an old template."""
    notebook = json.loads((root / first_setup_notebook(root)).read_text())
    for cell in notebook["cells"]:
        if publish_url.is_setup_cell(cell):
            cell["source"] = [line.replace(OLD.url, OTHER) for line in cell["source"]]
    (root / "book" / "a-new-page.ipynb").write_text(publish_url.dump_notebook(notebook))
    return "book/a-new-page.ipynb"


EDITS = {
    "a notebook's setup cell": lambda root: edit(root, first_setup_notebook(root), OLD.url, OTHER),
    "tools/setup_cell.py": lambda root: edit(root, "tools/setup_cell.py", OLD.url, OTHER),
    "emotion_task's DATA_URL": lambda root: edit(root, "emotion_task/__init__.py", OLD.raw_data_url,
                                                 OLD.raw_data_url.replace(f"/{OLD.branch}/", "/old-branch/")),
    "the intro's install line": lambda root: edit(root, "book/intro.md", "git+" + OLD.url, "git+" + OTHER),
    "html.baseurl": lambda root: edit(root, "_config.yml", OLD_BASEURL, pages("someone-else", OLD.name)),
    "a new notebook": new_notebook_with_an_old_setup_cell,
    "repository.url edited by hand": lambda root: edit(root, "_config.yml", f'url: "{OLD.url}"', f'url: "{OTHER}"'),
}


@pytest.mark.parametrize("what", EDITS)
def test_check_fails_on_a_copy_that_disagrees(repo_copy, what):
    assert run(repo_copy, "--check").returncode == 0
    EDITS[what](repo_copy)
    result = run(repo_copy, "--check")
    assert result.returncode == 1, f"--check passed with {what} changed:\n{result.stdout}{result.stderr}"
    assert "disagree" in result.stderr
    assert publish_url.check(repo_copy), what
    # The command puts it right again.
    url = yaml.safe_load((repo_copy / "_config.yml").read_text())["repository"]["url"]
    fixed = run(repo_copy, url)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert run(repo_copy, "--check").returncode == 0


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #
BAD_URLS = {
    "": "no repository URL",
    "https://gitlab.com/someone/book": "not github.com",
    "https://github.com/someone": "the repository name is missing",
    "https://github.com/": "the owner and the repository name are missing",
    "https://github.com/someone/book/tree/main": "goes past OWNER/REPO",
    "github.com/someone/book": "no https://",
    "http://github.com/someone/book": "not https://",
    "git@github.com:someone/book.git": "SSH address",
    "someone/book": "not a URL",
    "https://github.com/some_one/book": "not a GitHub owner name",
    "https://github.com/someone/bo ok": "not a GitHub repository name",
}


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_bad_url_says_what_is_wrong_and_gives_an_example(url):
    with pytest.raises(publish_url.UrlError) as error:
        publish_url.parse_repository_url(url)
    assert BAD_URLS[url] in str(error.value)
    assert publish_url.EXAMPLE in str(error.value)
    publish_url.parse_repository_url(publish_url.EXAMPLE)  # the example itself is valid


@pytest.mark.parametrize("args", [["https://gitlab.com/someone/book"], ["https://github.com/someone"],
                                  [github("someone", "book"), "--baseurl", "not a url"]])
def test_a_bad_url_changes_nothing(repo_copy, args):
    before = snapshot(repo_copy)
    result = run(repo_copy, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error:" in result.stderr and "Nothing was changed" in result.stderr and "e.g." in result.stderr
    assert snapshot(repo_copy) == before


def test_setting_a_config_value_keeps_everything_else():
    text = '# top\nhtml:\n  use_x: true  # c\n  baseurl: "https://a/"  # site\nrepository:\n  url: "u"\n  branch: main\n'
    assert publish_url.set_config_value(text, "html", "baseurl", "https://b/") == text.replace("https://a/", "https://b/")
    assert publish_url.set_config_value(text, "repository", "url", "v") == text.replace('"u"', '"v"')
    added = publish_url.set_config_value("html:\n  x: 1\n", "html", "baseurl", "https://b/")
    assert yaml.safe_load(added) == {"html": {"x": 1, "baseurl": "https://b/"}}
