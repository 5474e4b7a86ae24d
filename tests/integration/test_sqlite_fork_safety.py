"""A process whose ledger writer threads are busy with SQLite can fork safely.

The worker's main process runs the ledger writer (and the reconciler) as threads, and
Celery's prefork pool forks a new pool process from it whenever one ends: after every
cancel on a lost broker connection, so many times in a Redis restart. A fork in the middle
of a thread's SQLite work left the child with a lock nobody would release; its first
database call hung (about one fork in three here, before marketq.common.db.fork_guard).

Real processes: a Python process runs two threads of the real ``LedgerWriter`` writing
batches to a migrated SQLite file and acknowledging them on a real redis-server, and
forks children that each write to the same file, as a pool process does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from marketq.common.db.migrate import upgrade
from tests.fixtures.workers import ROOT, database_url

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FORKS = 60

SCRIPT = """
import json, os, signal, sys, threading
from sqlalchemy import text
from marketq.common.db.engine import get_sessionmaker
from marketq.common.ledger_writer import LedgerWriter
from marketq.common.run_events import broker_redis, detail
from marketq.common.settings import Settings

settings = Settings()
sessions = get_sessionmaker(settings)
stop = threading.Event()

def write(name):
    writer = LedgerWriter(broker_redis(settings), sessions, settings, consumer=name)
    writer.ensure_group()
    n = 0
    while not stop.is_set():
        n += 1
        entries = [
            (f"{n}-{k}".encode(), {b"s": b"QUEUED", b"d": detail(f"{name}-{n}-{k}", job="x",
             queue="daily", params={})})
            for k in range(20)
        ]
        writer.write(entries)

threads = [threading.Thread(target=write, args=(f"w{i}",), daemon=True) for i in range(2)]
for thread in threads:
    thread.start()
hung = failed = 0
for i in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:  # a pool process: its own connection to the same file
        signal.alarm(5)
        try:
            with get_sessionmaker(settings).begin() as session:
                session.execute(text("SELECT count(*) FROM task_runs")).scalar()
                session.execute(text("UPDATE task_runs SET worker = 'child' WHERE id = 'w0-1-0'"))
            os._exit(0)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        hung += 1
        break  # one is enough, and each costs the alarm
    failed += os.WEXITSTATUS(status) != 0
stop.set()
for thread in threads:
    thread.join()
with sessions.begin() as session:
    check = session.execute(text("PRAGMA integrity_check")).scalar()
print(json.dumps({"forks": i + 1, "hung": hung, "failed": failed, "integrity": check}))
"""


def test_forks_beside_busy_ledger_writer_threads_never_hang_a_child(
    redis_url: str, tmp_path: Path
) -> None:
    url = database_url(tmp_path)
    upgrade(url)
    env = {"MARKETQ_REDIS_URL": redis_url, "MARKETQ_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(FORKS)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"forks": FORKS, "hung": 0, "failed": 0, "integrity": "ok"}
