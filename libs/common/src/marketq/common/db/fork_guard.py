"""No ``fork()`` while a thread of this process is inside its SQLite work.

The worker's main process runs the ledger writer and the reconciler as threads, and
Celery's prefork pool forks a new pool process from it whenever one ends (a run killed by
the cancel on a lost broker connection, ``max_tasks_per_child``, an OOM kill). A fork
copies only the forking thread: whatever another thread held at that instant (a lock
inside SQLite or SQLAlchemy's pool, a connection in the middle of a transaction) stays
held for ever in the child, whose first database call then hangs (seen: a third of the
children forked beside two writing threads, tests/integration/test_sqlite_fork_safety.py).

``sqlite_work()`` wraps every unit of such work (a session from begin to commit); the
same lock is taken before each fork and released after it in both processes, so a fork
waits for the unit in progress and none starts until the fork is done.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["sqlite_work"]

_lock = threading.Lock()


@contextmanager
def sqlite_work() -> Iterator[None]:
    """Hold off ``fork()`` in this process for the duration of the block."""
    with _lock:
        yield


def _before_fork() -> None:
    _lock.acquire()


def _after_fork_in_parent() -> None:
    _lock.release()


def _after_fork_in_child() -> None:
    global _lock
    # The forking thread took it; the child has only that thread, and a fresh lock.
    _lock = threading.Lock()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
