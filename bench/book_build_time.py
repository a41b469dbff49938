"""Benchmark the offline book build: cold (empty cache) and warm (nothing changed).

    ./.venv/bin/python -m bench.book_build_time [--keep] [--verbose] [--cells]   # from the repository root

Both builds go to one fresh temporary output directory (the developer's ./_build
is not touched), with TINKER_BOOK_BACKEND=offline, using the same code as
scripts/build_book.sh (tools/book_build.py). Goals (issue "Build in six minutes"):
cold <= 360 s and warm <= 20 s with 0 notebooks executed. It prints each page's execution
time (from the build log's "Executed notebook in N seconds"), the PDF's time, and each total
as a ratio to its goal. (The cold build here starts from an empty notebook cache; the model
cache and the virtual environment are whatever this machine has.) The last line is a
one-line summary; the exit code is 1 if a build failed or a goal was missed.

With --cells it then executes each page once more, alone (nbclient, the executor myst-nb
uses, with the build's backend and data), and prints each cell that took 2 s or more:
the build's own executor records no time per cell.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from bench.threads import busy_core
from tools import book_build

REPO_ROOT = Path(__file__).resolve().parents[1]

TARGETS = {"cold": 360.0, "warm": 20.0}
_EXECUTED = re.compile(r"^(?P<path>\S+\.ipynb): Executed notebook in (?P<seconds>[\d.]+) seconds")


def page_seconds(log_path: Path, root: Path) -> dict[str, float]:
    """Each executed page's execution time, from the build log."""
    times = {}
    # the notebooks executed before Sphinx (tools/pre_execute.py) log theirs next to the build log
    execute_log = Path(log_path).with_name(book_build.EXECUTE_LOG_FILENAME)
    text = Path(log_path).read_text(errors="replace")
    if execute_log.exists():
        text = execute_log.read_text(errors="replace") + text
    for line in text.splitlines():
        match = _EXECUTED.match(line.strip())
        if match:
            path = Path(match["path"])
            times[str(path.relative_to(root)) if path.is_relative_to(root) else str(path)] = float(match["seconds"])
    return times


#: A cell is expensive from this many seconds on (--cells).
EXPENSIVE_CELL_SECONDS = 2.0


def expensive_cells(page: Path, data_url: str) -> list[tuple[float, int, str]]:
    """(seconds, cell number, first line) of each cell of ``page`` that took
    EXPENSIVE_CELL_SECONDS or more, slowest first, from one offline execution with timing."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(page, as_version=4)
    env = dict(os.environ, TINKER_BOOK_BACKEND="offline", TINKER_BOOK_DATA_URL=data_url)
    client = NotebookClient(notebook, timeout=1200, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(page.parent)}})
    client.execute(env=env)
    cells = []
    for number, cell in enumerate(notebook.cells):
        timing = cell.metadata.get("execution", {})
        if cell.cell_type == "code" and "iopub.execute_input" in timing:
            start, end = (datetime.fromisoformat(timing[k]) for k in ("iopub.execute_input", "shell.execute_reply"))
            seconds = (end - start).total_seconds()
            if seconds >= EXPENSIVE_CELL_SECONDS:
                cells.append((seconds, number, cell.source.splitlines()[0] if cell.source else ""))
    return sorted(cells, reverse=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the temporary output directory")
    parser.add_argument("--verbose", action="store_true", help="stream the build logs")
    parser.add_argument("--cells", action="store_true", help="then time each page's cells (one more execution of each)")
    parser.add_argument("--workers", type=int, default=None,
                        help="notebooks executed at once (tools.book_build --workers; 1 or 0: Sphinx, one after another)")
    parser.add_argument("--busy", action="store_true",
                        help="keep one core busy (a spinning process) through both builds, as a shared machine would")
    parser.add_argument("--root", default=str(REPO_ROOT), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    spinning = contextlib.ExitStack()
    spinning.enter_context(busy_core(args.busy))  # undone in the finally below

    out = Path(tempfile.mkdtemp(prefix="bench-book-"))
    rows = {}
    ok = True
    try:
        for kind in ("cold", "warm"):
            print(f"[bench] {kind} build -> {out}/_build ...", flush=True)
            r = book_build.build_book(args.root, out, tinker=False, echo=args.verbose, workers=args.workers)
            if kind == "cold":
                assert r.cache_check.rebuild_all, "cold build did not start from an empty cache"
            rows[kind] = r
            ratio = r.wall_seconds / TARGETS[kind]
            status = "ok" if r.ok else f"BUILD FAILED (exit {r.returncode}; log {r.log_path})"
            print(
                f"[bench] {kind}: {r.wall_seconds:7.1f} s  target <= {TARGETS[kind]:.0f} s  "
                f"ratio {ratio:.2f}  notebooks executed {r.executed}, from cache {r.cached}  {status}",
                flush=True,
            )
            for page, seconds in sorted(page_seconds(r.log_path, Path(args.root)).items(), key=lambda x: -x[1]):
                print(f"[bench]     {page:<45} {seconds:7.1f} s  ({seconds / TARGETS['cold']:.2f} of the cold goal)")
            if r.pdf_seconds is not None:
                print(f"[bench]     {'PDF (singlehtml + print, or kept)':<45} {r.pdf_seconds:7.1f} s")
            if kind == "warm" and r.executed:
                print(f"[bench] warm build executed {r.executed} notebook(s); the goal is 0")
            if not r.ok:
                print(r.log_tail(40))
                ok = False
                break
    finally:
        spinning.close()
        if args.keep:
            print(f"[bench] kept {out}")
        else:
            shutil.rmtree(out, ignore_errors=True)

    if args.cells and "cold" in rows:
        data_url = (Path(args.root) / "data" / "emotions").as_uri() + "/"
        for page in sorted(page_seconds(rows["cold"].log_path, Path(args.root))):
            for seconds, number, first_line in expensive_cells(Path(args.root) / page, data_url):
                print(f"[bench] cell {page}#{number:<3} {seconds:7.1f} s  {first_line[:60]}", flush=True)

    met = ok and all(rows[k].wall_seconds <= TARGETS[k] for k in rows) and len(rows) == 2
    met = met and rows["warm"].executed == 0
    parts = [
        f"{k} {rows[k].wall_seconds:.1f}s/{TARGETS[k]:.0f}s ({rows[k].wall_seconds / TARGETS[k]:.2f}x, "
        f"{rows[k].executed} executed)"
        for k in rows
    ]
    print(f"book_build: {'PASS' if met else 'FAIL'} " + "; ".join(parts))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
