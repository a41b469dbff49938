"""Execute the book's notebooks side by side into the jupyter cache, before Sphinx reads them.

Sphinx (myst-nb, ``execute_notebooks: cache``) executes the notebooks it finds stale one after
another, each kernel with a torch thread per core. Measured on a 2-core machine (offline,
``bench/book_build_time.py``): Sphinx alone executed the pages in 581 s of wall time; two
workers, each kernel on one core, in 530 s, while each page took about 1.8x as long as alone
(chapter 3: 293 s against 163 s). The forward and backward passes are nearly all of the work,
and two threads on one notebook do about as much of it as one thread on each of two. So the
build uses one worker per two cores (``tools.book_build.default_workers``): on 2 cores Sphinx
executes the pages itself, and the times on the page *Running the book* are each notebook's
own. With more cores, this module executes every page that has no cache record yet in
``workers`` processes, the longest first, with the executor
and arguments myst-nb itself uses (``jupyter_cache.executors.utils.single_nb_execution`` in
the notebook's folder, with ``_config.yml``'s timeout and allow_errors) and stores each result
as myst-nb would (``cache_notebook_bundle`` with its ``execution_seconds``). Sphinx then finds
every page in the cache and executes nothing; the page *Running the book* still shows each
notebook's time, from the cache record.

Each kernel's torch fits its threads to the cores free to it (``tinker_offline.threads``).
What a notebook computes does not depend on which worker ran it or when.

A notebook that fails here is not cached: the Sphinx build then executes it itself and
reports its error as before, so a failure is never hidden.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

#: Pages in the order to start them, longest first (seconds measured on a quiet 2-core
#: machine, offline); pages not listed start after these. Only the order depends on it.
LONGEST_FIRST = (
    "notebooks/03_train",
    "notebooks/04_three_routes",
    "book/issue-703",
    "notebooks/06_multi_token_labels",
    "book/questions",
    "book/train-on-your-data",
    "notebooks/05_real_data",
    "notebooks/02_gather_renormalize_kl",
    "notebooks/01_target_shapes",
)


@dataclasses.dataclass
class PreExecuted:
    docname: str
    seconds: float
    error: str | None  # None: executed and cached


def _execute(path: str, timeout: int, allow_errors: bool, env: Mapping[str, str]):
    """In a worker: execute one notebook as myst-nb does; returns (notebook, seconds, error)."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    os.environ.clear()
    os.environ.update(env)  # the kernel inherits the build's environment
    notebook = nbformat.read(path, as_version=4)
    result = single_nb_execution(notebook, cwd=str(Path(path).parent), allow_errors=allow_errors,
                                 timeout=timeout, meta_override=True)
    error = None if result.err is None else (result.exc_string or repr(result.err))
    return notebook, result.time, error


def pages_to_execute(root: Path, docnames: Sequence[str], cache_dir: Path) -> list[str]:
    """The .ipynb pages among ``docnames`` that the cache has no record of, longest first."""
    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_dir))
    stale = []
    for docname in docnames:
        path = root / f"{docname}.ipynb"
        if not path.is_file():
            continue  # a Markdown page: nothing to execute
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            stale.append(docname)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    return sorted(stale, key=lambda name: rank.get(name, len(rank)))


def pre_execute(root: Path, docnames: Sequence[str], cache_dir: Path, env: Mapping[str, str], *,
                workers: int = 2, timeout: int = 1200, allow_errors: bool = False,
                log: Callable[[str], None] = print) -> list[PreExecuted]:
    """Execute the stale pages among ``docnames`` in ``workers`` processes into ``cache_dir``."""
    import nbformat  # noqa: F401 - fail here, not in a worker, if the environment lacks it
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    pages = pages_to_execute(root, docnames, cache_dir)
    if not pages:
        return []
    cache = get_cache(str(cache_dir))
    log(f"[book] executing {len(pages)} notebook(s) in {min(workers, len(pages))} worker(s): {', '.join(pages)}")
    done: list[PreExecuted] = []
    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_execute, str(root / f"{name}.ipynb"), timeout, allow_errors, dict(env)): name
                   for name in pages}
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            path = root / f"{name}.ipynb"
            try:
                notebook, seconds, error = future.result()
            except Exception as failure:  # noqa: BLE001 - the worker itself failed: Sphinx retries it
                notebook, seconds, error = None, 0.0, repr(failure)
            if error is None:
                cache.cache_notebook_bundle(CacheBundleIn(notebook, str(path), data={"execution_seconds": seconds}),
                                            check_validity=False, overwrite=True)
                # the line bench/book_build_time.py reads, as myst-nb writes it
                log(f"{path}: Executed notebook in {seconds:.2f} seconds")
            else:
                log(f"[book] {name} failed to execute here; the Sphinx build executes it again and reports "
                    f"the error. First line: {error.strip().splitlines()[-1] if error.strip() else error}")
            done.append(PreExecuted(name, seconds, error))
    log(f"[book] executed {sum(r.error is None for r in done)} notebook(s) in {time.perf_counter() - start:.1f} s "
        f"of wall time ({sum(r.seconds for r in done):.1f} s of notebook time)")
    return done
