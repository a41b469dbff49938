"""The engine's thread count (tinker_offline.threads): fitted to the cores free to it, or fixed
by TINKER_OFFLINE_THREADS / OMP_NUM_THREADS. bench/threads.py measures what it is for."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from tinker_offline import threads


@pytest.fixture
def restore_threads():
    saved = torch.get_num_threads()
    yield
    torch.set_num_threads(saved)


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="counts running threads from /proc")
@pytest.mark.skipif(threads.allowed_cores() < 2, reason="one core: nothing to leave free")
def test_a_busy_core_is_not_counted_as_free(monkeypatch, restore_threads):
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert threads.free_cores() <= threads.allowed_cores() - 1
        assert threads.fit_threads() <= threads.allowed_cores() - 1
    finally:
        spinner.kill()
        spinner.wait()


def test_the_thread_count_can_be_fixed_and_a_wrong_one_is_refused(monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv(threads.THREADS_ENV, "1")
    assert threads.fit_threads() == 1 == torch.get_num_threads()
    for wrong in ("two", "0"):
        monkeypatch.setenv(threads.THREADS_ENV, wrong)
        with pytest.raises(ValueError, match=f"{threads.THREADS_ENV}='{wrong}'"):
            threads.fit_threads()


def test_every_request_fits_the_threads_first(monkeypatch):
    """run_now, through which every client call goes, asks fit_threads before it runs."""
    from tinker_offline import futures

    calls = []
    monkeypatch.setattr(futures, "fit_threads", lambda: calls.append("fit"))
    assert futures.run_now(lambda: calls.append("run") or 1, int).result() == 1
    assert calls == ["fit", "run"]
