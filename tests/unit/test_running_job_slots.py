"""The soft shutdown's count of running jobs (marketq.worker.shutdown), across real forks:
the pool processes mark their job in a page the main process mapped before forking."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from billiard.process import current_process

from marketq.worker import shutdown


@pytest.fixture
def mapped() -> Iterator[None]:
    shutdown._on_worker_init()
    try:
        yield
    finally:
        shutdown._on_worker_shutdown()


def _fork_pool_process(index: int, *, run: bool, hold: bool) -> int:
    """A forked child with billiard's pool index that starts a job and, with `hold`,
    keeps running it until killed (else finishes it and exits)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read)
        current_process().index = index  # what billiard sets on a pool process
        shutdown._on_process_init()
        if run:
            shutdown._on_prerun()
        if not hold:
            shutdown._on_postrun()
        os.write(write, b"x")
        if hold:
            signal.pause()
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"x"
    os.close(read)
    return pid


def _reap(pid: int) -> None:
    os.waitpid(pid, 0)


def test_no_job_runs_before_the_worker_mapped_the_page() -> None:
    assert shutdown.running_jobs() == 0


def test_a_pool_process_in_a_job_counts_until_the_job_ends(mapped: None) -> None:
    holding = _fork_pool_process(0, run=True, hold=True)
    finished = _fork_pool_process(1, run=True, hold=False)
    _reap(finished)
    try:
        assert shutdown.running_jobs() == 1
    finally:
        os.kill(holding, signal.SIGKILL)
        _reap(holding)
    # Killed mid-job: its slot still holds its pid, but a dead pid does not count.
    assert shutdown.running_jobs() == 0


def test_a_pool_process_killed_mid_job_but_not_yet_reaped_does_not_count(mapped: None) -> None:
    # Between a pool process's death and billiard reaping it, its pid is a zombie: still
    # signalable (kill(pid, 0) succeeds), yet it runs nothing the shutdown should wait for.
    killed = _fork_pool_process(2, run=True, hold=True)
    os.kill(killed, signal.SIGKILL)
    try:
        deadline = time.monotonic() + 5
        while not _is_zombie(killed) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _is_zombie(killed)
        assert shutdown.running_jobs() == 0
    finally:
        _reap(killed)


def _is_zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rsplit(b")", 1)[-1].split()[0] == b"Z"


def test_a_replacement_clears_the_slot_of_the_process_it_replaces(mapped: None) -> None:
    killed = _fork_pool_process(3, run=True, hold=True)
    os.kill(killed, signal.SIGKILL)
    _reap(killed)
    replacement = _fork_pool_process(3, run=False, hold=True)
    try:
        # Even if the dead pid were reused by an unrelated process, the slot is clear.
        assert shutdown.running_jobs() == 0
    finally:
        os.kill(replacement, signal.SIGKILL)
        _reap(replacement)


def test_many_processes_each_count_once(mapped: None) -> None:
    pids = [_fork_pool_process(i, run=True, hold=True) for i in range(5)]
    try:
        deadline = time.monotonic() + 5
        while shutdown.running_jobs() != 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert shutdown.running_jobs() == 5
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            _reap(pid)
