"""The run ledger: one ``task_runs`` row per run, following it from queued to its end.

Every transition is a single upsert keyed on the run id, so events may arrive in any
process (the API records QUEUED, the worker's main process RECEIVED and REVOKED, the pool
child STARTED..SUCCESS) and a row that does not exist yet is created by whichever comes
first. A finished run (SUCCESS, FAILURE, REVOKED) is never moved back: a message that is
delivered again after its run completed re-runs idempotently but leaves history as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Insert, case, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from marketq.common.db.models import RunState, TaskRun

log = logging.getLogger(__name__)


FINISHED_STATES = frozenset({RunState.SUCCESS, RunState.FAILURE, RunState.REVOKED})
ERROR_MAX_CHARS = 4000


def _now() -> datetime:
    return datetime.now(UTC)


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"the ledger supports PostgreSQL and SQLite, not {dialect}")


def _not_finished() -> ColumnElement[bool]:
    return TaskRun.state.notin_([s.value for s in FINISHED_STATES])


class Ledger:
    """Writes run transitions. Failures to write are logged, never raised into a task."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def _upsert(
        self,
        run_id: str,
        insert_values: Mapping[str, Any],
        update_values: Mapping[str, Any],
        *,
        only_unfinished: bool = True,
    ) -> None:
        try:
            with self._sessions.begin() as session:
                now = _now()
                stmt: Insert = _insert(session)(TaskRun).values(
                    id=run_id, updated_at=now, **insert_values
                )
                stmt = stmt.on_conflict_do_update(  # type: ignore[attr-defined]
                    index_elements=[TaskRun.id],
                    set_={**update_values, "updated_at": now},
                    where=_not_finished() if only_unfinished else None,
                )
                session.execute(stmt)
        except Exception:
            log.exception("ledger write failed for run %s", run_id)

    # --- transitions ----------------------------------------------------------------

    def queued(
        self,
        run_id: str,
        *,
        job: str,
        queue: str,
        params: Mapping[str, Any],
        enqueued_at: datetime,
        eta: datetime | None = None,
        parent_id: str | None = None,
    ) -> None:
        """A producer published the run. Written before a worker can see the message."""
        values = {
            "job": job,
            "queue": queue,
            "params": dict(params),
            "state": RunState.QUEUED.value,
            "enqueued_at": enqueued_at,
            "eta": eta,
            "parent_id": parent_id,
            "attempts": 0,
        }
        # Insert only: a worker that got there first has the newer truth.
        self._upsert(
            run_id, values, {"enqueued_at": enqueued_at, "eta": eta, "parent_id": parent_id}
        )

    def delete_unpublished(self, run_id: str) -> None:
        """Forget a QUEUED row whose publish failed: nothing was accepted."""
        try:
            with self._sessions.begin() as session:
                session.query(TaskRun).filter(
                    TaskRun.id == run_id, TaskRun.state == RunState.QUEUED.value
                ).delete()
        except Exception:
            log.exception("ledger cleanup failed for run %s", run_id)

    def received(
        self,
        run_id: str,
        *,
        job: str,
        queue: str | None,
        params: Mapping[str, Any],
        worker: str,
        enqueued_at: datetime | None,
        eta: datetime | None,
        parent_id: str | None,
    ) -> None:
        now = _now()
        self._upsert(
            run_id,
            {
                "job": job,
                "queue": queue or "",
                "params": dict(params),
                "state": RunState.RECEIVED.value,
                "worker": worker,
                "received_at": now,
                "enqueued_at": enqueued_at,
                "eta": eta,
                "parent_id": parent_id,
                "attempts": 0,
            },
            # A retry's message comes back at once and waits in the worker for its
            # countdown: the run stays RETRY until it starts again.
            {
                "state": case(
                    (TaskRun.state == RunState.RETRY.value, RunState.RETRY.value),
                    else_=RunState.RECEIVED.value,
                ),
                "worker": worker,
                "received_at": now,
            },
        )

    def started(
        self, run_id: str, *, job: str, queue: str | None, params: Mapping[str, Any], worker: str
    ) -> None:
        now = _now()
        self._upsert(
            run_id,
            {
                "job": job,
                "queue": queue or "",
                "params": dict(params),
                "state": RunState.STARTED.value,
                "worker": worker,
                "started_at": now,
                "attempts": 1,
            },
            {
                "state": RunState.STARTED.value,
                "worker": worker,
                "started_at": now,
                "finished_at": None,
                "progress_current": None,
                "progress_total": None,
                "attempts": TaskRun.attempts + 1,
            },
        )

    def progress(self, run_id: str, current: int, total: int | None) -> None:
        self._upsert(
            run_id,
            {
                "job": "",
                "queue": "",
                "params": {},
                "state": RunState.PROGRESS.value,
                "progress_current": current,
                "progress_total": total,
                "attempts": 1,
            },
            {
                "state": RunState.PROGRESS.value,
                "progress_current": current,
                "progress_total": total,
            },
        )

    def retry(self, run_id: str, reason: str) -> None:
        self._upsert(
            run_id,
            {
                "job": "",
                "queue": "",
                "params": {},
                "state": RunState.RETRY.value,
                "error": reason[:ERROR_MAX_CHARS],
                "attempts": 1,
            },
            {"state": RunState.RETRY.value, "error": reason[:ERROR_MAX_CHARS]},
        )

    def succeeded(self, run_id: str, result: Mapping[str, Any] | None) -> None:
        now = _now()
        self._upsert(
            run_id,
            {
                "job": "",
                "queue": "",
                "params": {},
                "state": RunState.SUCCESS.value,
                "finished_at": now,
                "result": dict(result or {}),
                "attempts": 1,
            },
            {
                "state": RunState.SUCCESS.value,
                "finished_at": now,
                "result": dict(result or {}),
                "error": None,
                "progress_current": func.coalesce(TaskRun.progress_total, TaskRun.progress_current),
            },
        )

    def failed(self, run_id: str, error: str) -> None:
        now = _now()
        self._upsert(
            run_id,
            {
                "job": "",
                "queue": "",
                "params": {},
                "state": RunState.FAILURE.value,
                "finished_at": now,
                "error": error[:ERROR_MAX_CHARS],
                "attempts": 1,
            },
            {"state": RunState.FAILURE.value, "finished_at": now, "error": error[:ERROR_MAX_CHARS]},
        )

    def revoked(self, run_id: str, reason: str | None = None) -> None:
        now = _now()
        self._upsert(
            run_id,
            {
                "job": "",
                "queue": "",
                "params": {},
                "state": RunState.REVOKED.value,
                "finished_at": now,
                "error": reason,
                "attempts": 0,
            },
            {"state": RunState.REVOKED.value, "finished_at": now, "error": reason},
        )

    # --- reads ----------------------------------------------------------------------

    def get(self, run_id: str) -> TaskRun | None:
        with self._sessions() as session:
            run = session.get(TaskRun, run_id)
            if run is not None:
                session.expunge(run)
            return run
