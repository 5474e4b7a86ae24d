"""The ledger writer: drains the run-event stream into ``task_runs`` in batches.

It runs as a thread of every worker's main process (docs/design.md#run-ledger), each
process one consumer of the ``ledger`` consumer group:

- read up to ``ledger_batch_size`` new events (``XREADGROUP``), fold them into one row
  per run and write them in one multi-row upsert (``marketq.common.ledger``);
- acknowledge (``XACK``) only after the commit: a writer that dies mid-batch leaves its
  events pending, and any writer claims them (``XAUTOCLAIM``) once they have been idle
  for ``ledger_claim_idle_seconds``, then writes them again (the upsert is idempotent);
- trim what every consumer has acknowledged (``XTRIM MINID``), so the stream holds only
  events not yet in SQL;
- after any failure (Redis restarting between the read and the acknowledgement, a
  commit that failed) and at start, first re-read its own pending events (``XREADGROUP``
  from id 0) and write them again, instead of leaving them to a claim
  ``ledger_claim_idle_seconds`` later;
- when the database refuses a batch for its data (``DataError``, ``IntegrityError``: a
  value too long for its column, say), write its events one at a time and drop, logged
  and counted, only those refused. Retried as it was, the batch would fail for ever and
  the ledger would stop for every run.

``marketq_ledger_lag_seconds`` observes, per event, the time from its append (the stream
id's clock) to the commit that made it visible in SQL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from marketq.common.db.fork_guard import sqlite_work
from marketq.common.ledger import RunEvent, fold, parse_event, upsert_rows
from marketq.common.run_events import stream_key
from marketq.common.settings import Settings

log = logging.getLogger(__name__)

GROUP = "ledger"
_TRIM_EVERY_SECONDS = 1.0

LEDGER_LAG = Histogram(
    "marketq_ledger_lag_seconds",
    "Time from a run event's append to the commit that made it visible in task_runs.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
EVENTS_WRITTEN = Counter(
    "marketq_ledger_events_written", "Run events committed to task_runs (redeliveries count)."
)
WRITE_ERRORS = Counter(
    "marketq_ledger_write_errors", "Batches the ledger writer failed to commit (retried)."
)
EVENTS_REFUSED = Counter(
    "marketq_ledger_events_refused",
    "Run events the database refused for their data, dropped so the ledger goes on.",
)
# The database's answer to the data itself: writing it again cannot succeed.
REFUSED_DATA = (DataError, IntegrityError)

Entry = tuple[bytes, dict[bytes, bytes]]


def _entry_seconds(entry_id: bytes) -> float:
    return int(entry_id.split(b"-", 1)[0]) / 1000


class LedgerWriter:
    def __init__(
        self,
        client: redis.Redis,
        sessions: sessionmaker[Session],
        settings: Settings,
        consumer: str,
    ) -> None:
        self._client = client
        self._sessions = sessions
        self._key = stream_key(settings.redis_key_prefix)
        self._consumer = consumer
        self._batch = settings.ledger_batch_size
        self._claim_idle_ms = int(settings.ledger_claim_idle_seconds * 1000)
        self._linger = settings.ledger_linger_seconds
        self._next_claim = 0.0
        self._next_trim = 0.0
        # Re-read this consumer's own pending events before new ones: set at start and
        # after every failure, cleared once none is left.
        self._recovering = True

    def ensure_group(self) -> None:
        """Create the consumer group (from the stream's start: nothing appended before a
        writer existed is skipped)."""
        try:
            self._client.xgroup_create(self._key, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _claim(self) -> list[Entry]:
        """Events another writer read but never acknowledged (it died mid-batch)."""
        now = time.monotonic()
        if now < self._next_claim:
            return []
        self._next_claim = now + self._claim_idle_ms / 2000
        reply: Any = self._client.xautoclaim(
            self._key, GROUP, self._consumer, self._claim_idle_ms, "0-0", count=self._batch
        )
        entries: list[Entry] = [e for e in reply[1] if e[1] is not None]
        deleted = reply[2] if len(reply) > 2 else []
        if deleted:  # trimmed by MAXLEN before anyone wrote them: nothing left to write
            self._client.xack(self._key, GROUP, *deleted)
        return entries

    def mark_failed(self) -> None:
        """A read, write or acknowledgement failed: events this consumer was handed may be
        pending without having been written, so the next reads are its pending ones."""
        self._recovering = True

    def _own_pending(self) -> list[Entry]:
        """Events this consumer read but has not acknowledged (a failure came between)."""
        reply: Any = self._client.xreadgroup(
            GROUP, self._consumer, {self._key: "0"}, count=self._batch
        )
        listed: list[Any] = list(reply[0][1]) if reply else []
        entries: list[Entry] = [(e[0], e[1]) for e in listed if e[1]]
        deleted = [e[0] for e in listed if not e[1]]
        if deleted:  # trimmed by MAXLEN before anyone wrote them: nothing left to write
            self._client.xack(self._key, GROUP, *deleted)
        if not listed:
            self._recovering = False
        return entries

    def _read(self, block_ms: int) -> list[Entry]:
        if self._recovering:
            pending = self._own_pending()
            if pending or self._recovering:
                return pending
        claimed = self._claim()
        if claimed:
            return claimed
        reply: Any = self._client.xreadgroup(
            GROUP, self._consumer, {self._key: ">"}, count=self._batch, block=block_ms
        )
        entries: list[Entry] = list(reply[0][1]) if reply else []
        if entries and len(entries) < self._batch and self._linger > 0:
            # A short batch: wait a moment for more, so a trickle of events is still one
            # statement per linger, not one per event (each statement is a transaction).
            time.sleep(self._linger)
            more: Any = self._client.xreadgroup(
                GROUP, self._consumer, {self._key: ">"}, count=self._batch - len(entries)
            )
            if more:
                entries += list(more[0][1])
        return entries

    def write(self, entries: Sequence[Entry]) -> None:
        """Commit the entries' events, then acknowledge them (the order that loses none)."""
        events: list[RunEvent] = []
        for _entry_id, fields in entries:
            event = parse_event(fields)
            if event is not None:
                events.append(event)
        try:
            self._commit(events)
        except REFUSED_DATA:
            self._commit_each(events)
        committed = time.time()
        ids = [entry_id for entry_id, _ in entries]
        self._client.xack(self._key, GROUP, *ids)
        for entry_id in ids:
            LEDGER_LAG.observe(max(0.0, committed - _entry_seconds(entry_id)))
        EVENTS_WRITTEN.inc(len(ids))

    def _commit(self, events: Sequence[RunEvent]) -> None:
        # No fork of this process mid-transaction (marketq.common.db.fork_guard).
        with sqlite_work(), self._sessions.begin() as session:
            upsert_rows(session, fold(events))

    def _commit_each(self, events: Sequence[RunEvent]) -> None:
        """One transaction per event, dropping those the database refuses (the upsert's
        rules make the order and grouping of events irrelevant)."""
        for event in events:
            try:
                self._commit([event])
            except REFUSED_DATA as exc:
                EVENTS_REFUSED.inc()
                log.error(
                    "ledger writer: dropped the %s event of run %s, refused by the database: %s",
                    event.state,
                    event.run_id[:200],
                    str(exc.orig or exc).split("\n", 1)[0],
                )

    def _trim(self) -> None:
        """Drop what the group has acknowledged: everything below its oldest pending event
        and not beyond what it has been delivered."""
        now = time.monotonic()
        if now < self._next_trim:
            return
        self._next_trim = now + _TRIM_EVERY_SECONDS
        info: Any = self._client.xinfo_groups(self._key)
        groups = {g["name"]: g for g in info}
        group = groups.get(GROUP.encode()) or groups.get(GROUP)
        if group is None:
            return
        floor = group["last-delivered-id"]
        if group["pending"]:
            pending: Any = self._client.xpending(self._key, GROUP)
            # None when another writer acknowledged them since: then the delivered ones
            # are all acknowledged and last-delivered-id is the floor.
            floor = pending["min"] or floor
        self._client.xtrim(self._key, minid=floor, approximate=False)

    def step(self, block_ms: int = 1000) -> int:
        """One read-write-ack round; returns how many events it wrote."""
        try:
            entries = self._read(block_ms)
        except redis.ResponseError as exc:
            # The stream vanished (a flush, a Redis restart without persistence): create
            # it and the group again; the reconciler settles the runs its events named.
            if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                raise
            self.ensure_group()
            return 0
        if entries:
            self.write(entries)
        self._trim()
        return len(entries)

    def run(self, stop: threading.Event, block_ms: int = 1000) -> None:
        """Write until ``stop`` is set; errors are logged and retried with a pause (the
        events stay pending, so nothing is lost)."""
        backoff = 0.5
        while not stop.is_set():
            try:
                self.ensure_group()
                while not stop.is_set():
                    self.step(block_ms)
                    backoff = 0.5
            except Exception:
                self.mark_failed()
                WRITE_ERRORS.inc()
                log.exception("ledger writer: batch not written; retrying in %.1f s", backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
