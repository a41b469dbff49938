"""Chapter 4's timing cells beside a busy core: the sentences that compare measured times
still hold when another process keeps one core busy the whole time (a laptop with a browser
open, a shared CI runner). The page compares the routes by their fastest step, with the
routes taking turns step by step, and the engine fits its threads to the free cores
(tinker_offline.threads); this runs the page's own cells that way, with fewer steps."""

from __future__ import annotations

import nbformat
import pytest
from jupyter_cache.executors.utils import single_nb_execution

from bench.threads import busy_core
from conftest import REPO_ROOT
from test_book import read_glue
from test_book_claims import CH4, Glued, false_claims
from tools import book_build

CHAPTER_4 = "notebooks/04_three_routes"
#: The claims that compare measured times (each route's fastest step, and their ratio).
TIMING_CLAIMS = ("ch4_route_a_seconds_per_step", "ch4_route_b_seconds_per_step", "ch4_route_c_seconds_per_step",
                 "ch4_callable_over_handle")


@pytest.mark.slow
@pytest.mark.book  # it keeps a core busy on purpose: scripts/test.sh runs it with the book tests, after the build
def test_chapter_4_compares_times_truly_beside_a_busy_core(tmp_path, monkeypatch):
    """Slow: chapter 4 once (3 steps per route instead of 6), beside a process spinning on one core."""
    for name, value in book_build.build_env().items():
        monkeypatch.setenv(name, value)  # the kernel inherits the book build's environment
    notebook = nbformat.read(REPO_ROOT / f"{CHAPTER_4}.ipynb", as_version=4)
    setting = next(cell for cell in notebook.cells if "NUM_STEPS = 6" in cell.source)
    setting.source = setting.source.replace("NUM_STEPS = 6", "NUM_STEPS = 3")  # the comparisons need no more
    with busy_core(True):
        result = single_nb_execution(notebook, cwd=str(REPO_ROOT / "notebooks"), timeout=1200, allow_errors=False)
    assert result.err is None, result.exc_string
    executed = tmp_path / f"{CHAPTER_4}.ipynb"
    executed.parent.mkdir(parents=True)
    nbformat.write(notebook, executed)
    values = Glued(read_glue(tmp_path, CHAPTER_4), CHAPTER_4)
    failures = false_claims({name: CH4[name] for name in TIMING_CLAIMS}, values)
    assert not failures, "beside a busy core, chapter 4's prose about times does not hold:\n" + "\n".join(failures)
