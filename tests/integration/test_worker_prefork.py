"""Pool children start with what every run needs already built by the main process.

Before the pool forks, the worker's main process builds the database engine and the
exchange calendar (``marketq.worker.resources.prepare_before_fork``). Otherwise each pool
child paid for them on its first run: with PostgreSQL, psycopg's import alone was about
0.3 s of CPU per child, and again after every recycle (``max_tasks_per_child``).

A real ``marketq-worker`` on a real PostgreSQL: each pool child has psycopg's compiled
extension mapped before any run reached it (/proc/<pid>/maps), and a run still writes
its row through the inherited engine, whose connections the fork dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from marketq.common.publish import prepare_run, send_runs
from tests.fixtures.workers import Stack

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.timeout(300)]


def _maps_psycopg(pid: int) -> bool:
    return "psycopg_binary" in Path(f"/proc/{pid}/maps").read_text()


def test_pool_children_inherit_the_database_driver_and_still_write(
    stack: Stack, postgres_shared_db: Any
) -> None:
    url = postgres_shared_db.reset()
    stack.set_env(MARKETQ_DATABASE_URL=url)
    stack.database_url = url
    worker = stack.start_worker("default", concurrency=2)
    children = stack.wait_for(
        lambda: worker.children() if len(worker.children()) == 2 else None,
        timeout=60,
        what="two pool children",
    )
    assert all(_maps_psycopg(pid) for pid in children), "a pool child must import psycopg itself"

    planned = [prepare_run("health_check", {"check_database": True}) for _ in range(4)]
    send_runs(stack.producer(), planned, source="cli")
    runs = stack.wait_for_states([p.run_id for p in planned], {"SUCCESS", "FAILURE"}, 120)
    assert {run.state for run in runs.values()} == {"SUCCESS"}, {
        run.id: run.error for run in runs.values()
    }
    assert sorted(worker.children()) == sorted(children)  # the same children ran them
