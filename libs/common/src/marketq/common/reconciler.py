"""The reconciler: every accepted run reaches an end state, whatever died on the way.

It runs in the main process of one worker at a time (a Redis lease; the thread lives
beside the ledger writer, docs/design.md#reconciler) every ``reconcile_interval_seconds``:

- **held runs of dead workers**: a RECEIVED/STARTED/PROGRESS/RETRY run whose worker has
  not sent a heartbeat for longer than its queue's visibility timeout (by then the
  restore sweep has had its chance) is re-queued (state QUEUED) when its message is
  back in a queue list, left alone while the message still waits in
  kombu's ``unacked`` hash (kombu restores it), and marked LOST otherwise;
- **terminate on a run no process holds**: a run a client asked to terminate that has
  not ended while its worker's heartbeat is stale is ended REVOKED;
- **runs whose message is gone** (the broker lost data: a flush, a failover without
  persistence, the last second of writes before a crash, a message popped for a worker
  in the instant Redis died): re-published with the same run id, or marked LOST when
  ``reconcile_queued_action=lost``. Suspects are QUEUED runs whose Redis run record is
  gone or that were queued before Redis's current start, and held runs (RECEIVED ..
  RETRY) last updated before that start; only suspects cost a scan of the queue lists,
  ``unacked`` and the delayed set. A suspect found nowhere, with no end stored in the
  result backend, is acted on only when the next pass finds it gone too: a message
  moving between those places while one pass looks (a restore) is seen by the next.

Each action is counted in ``marketq_reconciler_actions_total{action}``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

import redis
from celery import Celery, states
from prometheus_client import Counter
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from marketq.common.celery_app import visibility_timeouts
from marketq.common.db.fork_guard import sqlite_work
from marketq.common.db.models import RunState, TaskRun
from marketq.common.ledger import FINISHED_STATES
from marketq.common.messages import PRIORITY_SEPARATOR
from marketq.common.publish import PublishError, prepare_run, record_key, send_runs
from marketq.common.routing import PRIORITY_STEPS
from marketq.common.run_events import EventLog, heartbeats_key, terminating_key
from marketq.common.settings import Settings

log = logging.getLogger(__name__)

ACTIONS = ("requeued", "lost_worker_gone", "revoked_unheld", "republished", "lost_message_gone")
RECONCILER_ACTIONS = Counter(
    "marketq_reconciler_actions",
    "Runs the reconciler settled, by action: requeued (a dead worker's run whose message "
    "is back in its queue), lost_worker_gone, revoked_unheld (terminate asked, nobody held "
    "it), republished / lost_message_gone (a QUEUED run whose message the broker lost).",
    ["action"],
)
HELD_STATES = (
    RunState.RECEIVED.value,
    RunState.STARTED.value,
    RunState.PROGRESS.value,
    RunState.RETRY.value,
)
_SCAN_LIMIT = 200_000  # most queued messages one pass reads looking for lost runs
_BATCH = 500  # most runs of each kind one pass looks at


_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class _Needles:
    """Finds which of some run ids a raw message names. Run ids are UUIDs unless a
    producer chose one: a message's UUIDs are looked up in a set (one regex pass, however
    many runs are sought, which matters after a restart: hundreds of suspects against a
    backlog); any other id is a substring search."""

    def __init__(self, run_ids: Iterable[str]) -> None:
        self._uuids: dict[bytes, str] = {}
        self._others: dict[str, bytes] = {}
        for rid in run_ids:
            raw = rid.encode()
            if _UUID.fullmatch(raw):
                self._uuids[raw] = rid
            else:
                self._others[rid] = raw

    def named_in(self, raw: bytes) -> set[str]:
        found = {self._uuids[t] for t in _UUID.findall(raw) if t in self._uuids}
        found.update(rid for rid, needle in self._others.items() if needle in raw)
        return found


def lease_key(prefix: str) -> str:
    return f"{prefix}ledger:reconciler"


def init_action_series() -> None:
    for action in ACTIONS:
        RECONCILER_ACTIONS.labels(action)


class Reconciler:
    def __init__(
        self,
        app: Celery,
        client: redis.Redis,
        sessions: sessionmaker[Session],
        settings: Settings,
        events: EventLog,
    ) -> None:
        self._app = app
        self._client = client
        self._sessions = sessions
        self._settings = settings
        self._events = events
        self._prefix = settings.redis_key_prefix
        self._token = uuid.uuid4().hex
        # A run's worker is judged dead after the run's queue's visibility timeout: by
        # then the restore sweep has given its message back (a run of a queue the table
        # does not name waits the longest).
        self.dead_after: dict[str, int] = {
            queue.value: seconds for queue, seconds in visibility_timeouts(settings).items()
        }
        self.dead_after_otherwise = max(self.dead_after.values())
        # Runs the last pass found with no message anywhere (acted on when found again).
        self._gone_last_pass: set[str] = set()
        # Runs the last pass found ended in the result backend but not in the ledger.
        self._ended_last_pass: set[str] = set()

    # --- the lease: one reconciler at a time ------------------------------------------

    def _hold_lease(self) -> bool:
        ttl = int(self._settings.reconcile_interval_seconds * 3000)
        key = lease_key(self._prefix)
        if self._client.set(key, self._token, nx=True, px=ttl):
            return True
        if self._client.get(key) == self._token.encode():
            self._client.pexpire(key, ttl)
            return True
        return False

    # --- what Redis holds -----------------------------------------------------------

    def _heartbeats(self, now: float) -> dict[str, float]:
        raw: dict[bytes, bytes] = cast(Any, self._client.hgetall(heartbeats_key(self._prefix)))
        beats = {k.decode(): float(v) for k, v in raw.items()}
        stale = [host for host, at in beats.items() if now - at > 86_400]
        if stale:
            self._client.hdel(heartbeats_key(self._prefix), *stale)
        return beats

    def _queue_lists(self, queues: Iterable[str]) -> list[str]:
        keys = []
        for queue in sorted(set(queues)):
            keys.append(f"{self._prefix}{queue}")
            keys += [f"{self._prefix}{queue}{PRIORITY_SEPARATOR}{s}" for s in PRIORITY_STEPS[1:]]
        return keys

    def _redis_started_at(self, now: float) -> float:
        """When the broker's Redis last started (``INFO server``): what a crash before it
        lost is older than this. Uptime counts whole seconds, so runs queued in the first
        second after the start are suspects too: scanned for, and re-published only if
        their message is indeed gone."""
        info: dict[str, Any] = cast(Any, self._client.info("server"))
        return now - float(info["uptime_in_seconds"])

    def _ended(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The runs that have an end stored in the result backend, with it (their end
        event may not be in the ledger yet: it lags, and it waits out a Redis restart)."""
        if not run_ids:
            return {}
        backend: Any = self._app.backend
        keys = [backend.get_key_for_task(rid) for rid in run_ids]
        metas: list[bytes | None] = backend.client.mget(keys)
        ended: dict[str, dict[str, Any]] = {}
        for rid, meta in zip(run_ids, metas, strict=True):
            decoded = backend.decode_result(meta) if meta else None
            if decoded and decoded.get("status") in states.READY_STATES:
                ended[rid] = decoded
        return ended

    def _record_stored_ends(self, ended: dict[str, dict[str, Any]]) -> None:
        """Ends the result backend has and the ledger was not told of: the pool process
        stored the end, then Redis went away before its end event was appended (seen in
        the restart test: a run left PROGRESS for ever). Appended again from the stored
        state; a run whose end event did arrive meanwhile is not changed by it."""
        for rid, meta in ended.items():
            status = str(meta.get("status"))
            result = meta.get("result")
            if status == RunState.SUCCESS.value:
                self._events.append(rid, status, result=result if isinstance(result, dict) else {})
            else:
                self._events.append(rid, status, error=str(result))
            log.warning(
                "reconciler: recorded the stored end %s of run %s",
                status,
                rid,
                extra={"run_id": rid},
            )

    def _delayed(self, run_ids: set[str]) -> set[str]:
        """Which of ``run_ids`` wait in the delayed set (runs with a countdown/ETA)."""
        if not run_ids:
            return set()
        wanted = _Needles(run_ids)
        found: set[str] = set()
        for member, _score in self._client.zscan_iter(f"{self._prefix}delayed", count=1000):
            found |= wanted.named_in(member)
        return found

    def _find(self, run_ids: set[str], queues: Iterable[str]) -> tuple[set[str], set[str]]:
        """Which of ``run_ids`` have a message in a queue list, and which in ``unacked``."""
        wanted = _Needles(run_ids)
        queued: set[str] = set()
        unacked: set[str] = set()
        scanned = 0
        for key in self._queue_lists(queues):
            start = 0
            while scanned < _SCAN_LIMIT:
                chunk: list[bytes] = cast(Any, self._client.lrange(key, start, start + 999))
                if not chunk:
                    break
                for raw in chunk:
                    queued |= wanted.named_in(raw)
                start += len(chunk)
                scanned += len(chunk)
        for _tag, raw in self._client.hscan_iter(f"{self._prefix}unacked", count=1000):
            unacked |= wanted.named_in(raw)
        return queued, unacked

    # --- the three checks ----------------------------------------------------------

    def _held_by_dead_workers(
        self, session: Session, now: float, beats: dict[str, float]
    ) -> set[str]:
        """Settles the runs of dead workers; returns the ids it looked at."""

        def before(seconds: int) -> datetime:
            return datetime.fromtimestamp(now - seconds, UTC)

        unchanged_for_long = or_(
            *(
                and_(TaskRun.queue == queue, TaskRun.updated_at < before(seconds))
                for queue, seconds in self.dead_after.items()
            ),
            and_(
                TaskRun.queue.not_in(list(self.dead_after)),
                TaskRun.updated_at < before(self.dead_after_otherwise),
            ),
        )
        rows = session.execute(
            select(TaskRun.id, TaskRun.worker, TaskRun.queue, TaskRun.state, TaskRun.updated_at)
            .where(TaskRun.state.in_(HELD_STATES), unchanged_for_long)
            .limit(_BATCH)
        ).all()
        dead = [
            r
            for r in rows
            if now - beats.get(r.worker or "", 0.0)
            > self.dead_after.get(r.queue, self.dead_after_otherwise)
        ]
        if not dead:
            return set()
        queued, unacked = self._find({r.id for r in dead}, (r.queue for r in dead))
        for row in dead:
            if row.id in unacked:
                continue  # kombu puts it back in its queue; judged again next pass
            if row.id in queued:
                # Back in its queue: the next worker to take it writes RECEIVED.
                _queued_again(session, row, f"re-queued: worker {row.worker} is gone")
                self._count("requeued", row.id, row.worker)
            else:
                self._events.append(
                    row.id,
                    RunState.LOST.value,
                    error=f"LOST: worker {row.worker} is gone and the run's message with it",
                )
                self._count("lost_worker_gone", row.id, row.worker)
        return {r.id for r in dead}

    def _terminations(self, session: Session, now: float, beats: dict[str, float]) -> None:
        key = terminating_key(self._prefix)
        self._client.zremrangebyscore(key, "-inf", now - 86_400)
        asked: list[bytes] = cast(
            Any, self._client.zrangebyscore(key, "-inf", now, start=0, num=_BATCH)
        )
        if not asked:
            return
        ids = [a.decode() for a in asked]
        rows = {
            r.id: r
            for r in session.execute(
                select(TaskRun.id, TaskRun.state, TaskRun.worker).where(TaskRun.id.in_(ids))
            )
        }
        # A live worker's main process beats every worker_heartbeat_seconds; three missed
        # beats and nobody holds the run any more.
        stale = 3 * self._settings.worker_heartbeat_seconds
        for run_id in ids:
            row = rows.get(run_id)
            if row is not None and RunState(row.state) in FINISHED_STATES:
                self._client.zrem(key, run_id)
                continue
            holder = row.worker if row is not None else None
            if holder and now - beats.get(holder, 0.0) <= stale:
                continue  # its worker lives: the revoke reaches it, or the next pass
            self._events.append(
                run_id, RunState.REVOKED.value, error="terminated (no process held the run)"
            )
            self._client.zrem(key, run_id)
            self._count("revoked_unheld", run_id, holder)

    def _lost_messages(self, session: Session, now: float, settled: set[str]) -> None:
        cutoff_at = now - self._settings.reconcile_queued_after_seconds
        cutoff = datetime.fromtimestamp(cutoff_at, UTC)
        started = datetime.fromtimestamp(self._redis_started_at(now), UTC)
        rows = session.execute(
            select(TaskRun)
            .where(
                or_(
                    and_(
                        TaskRun.state == RunState.QUEUED.value,
                        TaskRun.enqueued_at < cutoff,
                        (TaskRun.eta.is_(None)) | (TaskRun.eta < cutoff),
                    ),
                    # Held by a worker, untouched since before Redis started: its message
                    # was in ``unacked`` or back in a list then, unless the crash lost it.
                    and_(
                        TaskRun.state.in_(HELD_STATES),
                        TaskRun.updated_at < min(cutoff, started),
                    ),
                )
            )
            .limit(_BATCH)
        ).scalars()
        candidates = [r for r in rows if r.id not in settled]
        if not candidates:
            self._gone_last_pass = set()
            return
        with self._client.pipeline(transaction=False) as pipe:
            for row in candidates:
                pipe.exists(record_key(self._prefix, row.id))
            present = pipe.execute()
        suspects = [
            row
            for row, there in zip(candidates, present, strict=True)
            if row.state != RunState.QUEUED.value
            or not there
            or (row.enqueued_at is not None and row.enqueued_at < started)
        ]
        if not suspects:
            self._gone_last_pass = set()
            return
        ids = {r.id for r in suspects}
        queued, unacked = self._find(ids, (r.queue for r in suspects))
        missing = ids - queued - unacked
        missing -= self._delayed(missing)
        ended = self._ended(sorted(missing))
        missing -= set(ended)
        confirmed = missing & self._gone_last_pass
        # Ended, yet held or queued in the ledger on two passes: the end event was lost.
        self._record_stored_ends(
            {rid: meta for rid, meta in ended.items() if rid in self._ended_last_pass}
        )
        self._ended_last_pass = set(ended)
        self._gone_last_pass = missing - confirmed
        gone = [r for r in suspects if r.id in confirmed]
        if not gone:
            return
        if self._settings.reconcile_queued_action == "lost":
            for row in gone:
                self._events.append(
                    row.id,
                    RunState.LOST.value,
                    error="LOST: the broker lost the run's message",
                )
                self._count("lost_message_gone", row.id, None)
            return
        runs = []
        for row in gone:
            try:
                runs.append(
                    prepare_run(
                        row.job,
                        row.params,
                        run_id=row.id,
                        queue=row.queue,
                        settings=self._settings,
                        parent_id=row.parent_id,
                        now=row.enqueued_at or datetime.now(UTC),
                    )
                )
            except (PublishError, KeyError) as exc:  # the catalog changed under it
                self._events.append(row.id, RunState.LOST.value, error=f"LOST: {exc}")
                self._count("lost_message_gone", row.id, None)
        # now= keeps the original enqueue time: a run whose expiry passed meanwhile is
        # discarded by the worker and ends REVOKED (expired), as it would have anyway.
        send_runs(self._app, runs, source="reconciler", settings=self._settings)
        held = {r.id: r for r in gone if r.state != RunState.QUEUED.value}
        for run in runs:
            was = held.get(run.run_id)
            if was is not None:  # QUEUED again (its QUEUED event does not undo a later state)
                _queued_again(session, was, "re-published: the broker lost the run's message")
            self._count("republished", run.run_id, None)

    def _count(self, action: str, run_id: str, worker: str | None) -> None:
        RECONCILER_ACTIONS.labels(action).inc()
        log.warning(
            "reconciler: %s run %s", action, run_id, extra={"run_id": run_id, "worker": worker}
        )

    def run_once(self) -> bool:
        """One pass if this process holds the lease; returns whether it did."""
        if not self._hold_lease():
            return False
        now = time.time()
        beats = self._heartbeats(now)
        # No fork of this process mid-transaction (marketq.common.db.fork_guard); the
        # pass's Redis calls fail fast while Redis is down (connection refused).
        with sqlite_work(), self._sessions.begin() as session:
            settled = self._held_by_dead_workers(session, now, beats)
            self._terminations(session, now, beats)
            self._lost_messages(session, now, settled)
        return True

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self._settings.reconcile_interval_seconds):
            try:
                self.run_once()
            except Exception:
                log.exception("reconciler pass failed; the next one retries")


def record_heartbeat(client: redis.Redis, prefix: str, hostname: str) -> None:
    client.hset(heartbeats_key(prefix), hostname, time.time())


__all__ = [
    "ACTIONS",
    "RECONCILER_ACTIONS",
    "Reconciler",
    "init_action_series",
    "record_heartbeat",
]


def _queued_again(session: Session, row: Any, why: str) -> None:
    """Move a held run back to QUEUED (its message is in a queue again), unless its state
    changed since it was read: the worker that takes it next records the rest."""
    session.execute(
        update(TaskRun)
        .where(TaskRun.id == row.id, TaskRun.state == row.state)
        .values(state=RunState.QUEUED.value, worker=None, updated_at=datetime.now(UTC), error=why)
    )
