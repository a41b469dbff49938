"""How many threads torch uses for a request: the cores free to this process, not all of them.

torch starts one OpenMP thread per core. When another process keeps a core busy, those
threads wait on each other at every parallel region, each wait for a core the busy process
holds, and a forward pass on a small model takes several times longer than with one thread
(``bench/threads.py`` measures it: 3.04x for a training step of SmolLM2-135M with one of two
cores busy, against 1.46x with the count fitted). So before each request the engine counts the cores free to it,

    free = cores this process may run on - other processes' threads that are running now,

from ``/proc/stat``'s ``procs_running`` (minus this process's own running threads, read from
``/proc/self/task``), taking the least of a few samples so that a moment's blip does not count,
and asks torch for that many threads (at least one). Where ``/proc`` cannot be read (not
Linux) the count is left as torch chose it.

``TINKER_OFFLINE_THREADS=N`` fixes the count instead (as ``torch.set_num_threads(N)`` would);
so does ``OMP_NUM_THREADS``, which torch reads itself. The count changes how long a request
takes, never what it computes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

THREADS_ENV = "TINKER_OFFLINE_THREADS"

_SAMPLES = 3  # samples of the running count, ~1 ms apart: the least of them is the steady load
_SAMPLE_GAP_SECONDS = 0.001


def allowed_cores() -> int:
    """The cores this process may run on (its CPU affinity), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _running_now() -> tuple[int, int] | None:
    """(threads running on the machine, of them this process's own), or None without /proc."""
    try:
        stat = Path("/proc/stat").read_text()
        running = next(int(line.split()[1]) for line in stat.splitlines() if line.startswith("procs_running "))
        own = 0
        for task in Path("/proc/self/task").iterdir():
            try:
                # the state follows the command's closing parenthesis: "pid (name) R ..."
                own += (task / "stat").read_text().rsplit(")", 1)[1].split()[0] == "R"
            except (OSError, IndexError):
                continue  # the thread ended while we looked
        return running, max(own, 1)  # this thread is running: it is reading
    except (OSError, StopIteration, ValueError):
        return None


def free_cores() -> int | None:
    """The cores free to this process now (at least 1), or None where /proc cannot be read."""
    others = []
    for sample in range(_SAMPLES):
        if sample:
            time.sleep(_SAMPLE_GAP_SECONDS)
        now = _running_now()
        if now is None:
            return None
        running, own = now
        others.append(max(running - own, 0))
    cores = allowed_cores()
    return max(1, cores - min(others))


def configured_threads() -> int | None:
    """The count fixed by TINKER_OFFLINE_THREADS or OMP_NUM_THREADS, else None (choose per request)."""
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        try:
            count = int(value)
        except ValueError:
            raise ValueError(f"{name}={value!r} is not a whole number of threads; unset it or give e.g. 1") from None
        if count < 1:
            raise ValueError(f"{name}={value!r}: the number of threads must be at least 1")
        return count
    return None


def fit_threads() -> int:
    """Set torch's thread count for the next request: the configured count, else the cores
    free now. Returns the count torch uses."""
    import torch

    count = configured_threads()
    if count is None:
        count = free_cores()
    if count is not None and count != torch.get_num_threads():
        torch.set_num_threads(count)
    return torch.get_num_threads()
