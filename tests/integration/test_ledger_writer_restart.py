"""The ledger writer when Redis dies between handing it events and its reply arriving.

Redis records the events as delivered to the writer (pending, in the AOF) when it runs
the XREADGROUP; if it dies before the reply reaches the writer, the writer never saw
them. They used to wait for the idle claim (``ledger_claim_idle_seconds``, 30 s by
default) before any writer wrote them; after a failure the writer now re-reads its own
pending events first. Real redis-server (AOF on, restarted) and SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from marketq.common.db.engine import create_db_engine, session_factory
from marketq.common.db.migrate import upgrade
from marketq.common.db.models import TaskRun
from marketq.common.ledger_writer import GROUP, LedgerWriter
from marketq.common.run_events import detail, stream_key
from marketq.common.settings import Settings
from tests.fixtures.redis import RedisServer
from tests.fixtures.workers import database_url

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class DiesBeforeReplying(redis.Redis):
    """A real client whose next XREADGROUP is run by Redis, which then dies before the
    reply reaches the writer (the interleaving, made certain)."""

    server: RedisServer
    armed = False

    def xreadgroup(self, *args: Any, **kwargs: Any) -> Any:
        reply = super().xreadgroup(*args, **kwargs)
        if self.armed and reply:
            DiesBeforeReplying.armed = False
            self.server.kill()
            raise redis.ConnectionError("Redis died before its reply arrived")
        return reply


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    served = RedisServer(tmp_path / "redis", appendfsync="always")
    served.start()
    try:
        yield served
    finally:
        served.stop()


def test_events_read_as_redis_died_are_written_once_it_is_back(
    server: RedisServer, tmp_path: Path
) -> None:
    url = database_url(tmp_path)
    upgrade(url)
    settings = Settings(
        redis_url=server.url,
        database_url=url,
        ledger_claim_idle_seconds=60,
        ledger_linger_seconds=0,
    )
    key = stream_key(settings.redis_key_prefix)
    DiesBeforeReplying.server = server
    client = DiesBeforeReplying.from_url(server.url)
    sessions = session_factory(create_db_engine(url))
    writer = LedgerWriter(client, sessions, settings, consumer="w")
    writer.ensure_group()
    writer.step(block_ms=10)  # its own pending events (none yet): then new ones
    runs = [f"run-{n}" for n in range(3)]
    for run in runs:
        client.xadd(key, {"s": "QUEUED", "d": detail(run, job="health_check", queue="daily")})

    DiesBeforeReplying.armed = True
    with pytest.raises(redis.ConnectionError):
        writer.step(block_ms=10)
    server.start()
    assert client.xpending(key, GROUP)["pending"] == 3  # delivered to "w", never written
    writer.mark_failed()  # what ``run`` does with the error before it goes on
    for _ in range(3):
        writer.step(block_ms=10)

    with sessions() as session:
        written = set(session.scalars(select(TaskRun.id)))
    assert written == set(runs)
    assert client.xpending(key, GROUP)["pending"] == 0
    client.close()
