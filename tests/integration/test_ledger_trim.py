"""The ledger writer's stream trim when another writer acknowledges in between.

Every worker runs a writer in one consumer group. A trim that saw pending events, then
found them acknowledged by another writer before it asked for the oldest one, used to
call XTRIM with no bound: the writer logged "batch not written" and paused, after a
batch it had in fact written.
"""

from __future__ import annotations

from typing import Any

import redis

from marketq.common.db.engine import create_db_engine, session_factory
from marketq.common.ledger_writer import GROUP, LedgerWriter
from marketq.common.run_events import stream_key
from marketq.common.settings import Settings
from tests.fixtures.workers import Stack


class AckedMeanwhile(redis.Redis):
    """A real client whose XPENDING comes after another writer acknowledged everything
    (the interleaving, made certain)."""

    def xpending(self, name: Any, groupname: Any) -> Any:
        for entry in super().xpending_range(name, groupname, "-", "+", 100):
            self.xack(name, groupname, entry["message_id"])
        return super().xpending(name, groupname)


def test_a_trim_racing_another_writers_ack_trims_what_was_delivered(stack: Stack) -> None:
    settings = Settings()
    key = stream_key(settings.redis_key_prefix)
    client = AckedMeanwhile.from_url(settings.redis_url)
    writer = LedgerWriter(
        client, session_factory(create_db_engine(stack.database_url)), settings, "a"
    )
    writer.ensure_group()
    for n in range(3):
        client.xadd(key, {"s": "QUEUED", "d": f"not an event {n}"})
    # Another writer ("b") read them and has not acknowledged yet.
    client.xreadgroup(GROUP, "b", {key: ">"}, count=10)

    writer._trim()  # raised redis.DataError before

    assert client.xpending(key, GROUP)["pending"] == 0
    assert client.xlen(key) <= 1  # trimmed up to what the group had delivered
    client.close()
