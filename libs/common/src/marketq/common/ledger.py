"""The run ledger: one ``task_runs`` row per run, following it from queued to its end.

Rows are written only by the ledger writer, from the run-event stream
(``marketq.common.run_events``), many runs per statement:

- ``fold`` merges a batch's events into one row per run, in event-time order;
- ``upsert_rows`` writes those rows in one ``INSERT .. ON CONFLICT DO UPDATE`` whose SET
  clause applies the same rules against the stored row: on PostgreSQL one statement whose
  one parameter is the batch as a JSON array (``jsonb_to_recordset``), on SQLite an
  executemany.

The rules make the order of events irrelevant: a finished run (SUCCESS, FAILURE, REVOKED,
LOST) is never moved back; QUEUED never replaces a later state; RECEIVED does not undo a
RETRY (a retried run's message comes back and waits in the worker for its countdown);
otherwise the later transition wins. Details an event carries (job, params, timings) fill
in whatever the row does not have yet, so events may arrive in any order and any number of
times (at-least-once: a writer that dies before acknowledging has its batch written again).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, sessionmaker

from marketq.common.db.models import RunState, TaskRun
from marketq.common.db.types import UTCDateTime

log = logging.getLogger(__name__)


FINISHED_STATES = frozenset({RunState.SUCCESS, RunState.FAILURE, RunState.REVOKED, RunState.LOST})
_FINISHED = tuple(s.value for s in FINISHED_STATES)
ERROR_MAX_CHARS = 4000


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One transition: ``state`` of ``run_id`` at ``at`` (epoch s), with its details."""

    run_id: str
    state: str
    at: float
    detail: Mapping[str, Any]


def parse_event(fields: Mapping[bytes, bytes]) -> RunEvent | None:
    """A stream entry as a RunEvent; None for an entry that is not one (logged)."""
    try:
        state = fields[b"s"].decode()
        detail = json.loads(fields[b"d"])
        RunState(state)
        return RunEvent(str(detail["id"]), state, float(detail["at"]), detail)
    except (KeyError, ValueError, TypeError) as exc:
        log.error("dropping a malformed run event %r: %s", fields, exc)
        return None


def _advances(current: str | None, current_at: float, new: str, new_at: float) -> bool:
    """Whether ``new`` replaces ``current`` as the run's state (the module's rules)."""
    if current is None:
        return True
    if current in _FINISHED:
        return False
    if new in _FINISHED:
        return True
    if new == RunState.QUEUED:
        return False
    if current == RunState.QUEUED:
        return True
    if new == RunState.RECEIVED and current == RunState.RETRY:
        return False
    return new_at >= current_at


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


_COLUMNS = (
    "id",
    "job",
    "queue",
    "params",
    "state",
    "updated_at",
    "enqueued_at",
    "eta",
    "parent_id",
    "worker",
    "received_at",
    "started_at",
    "finished_at",
    "error",
    "result",
    "progress_current",
    "progress_total",
    "attempts",
)


def fold(events: Iterable[RunEvent]) -> list[dict[str, Any]]:
    """One row per run from a batch of events (any order), ready for ``upsert_rows``."""
    rows: dict[str, dict[str, Any]] = {}
    for event in sorted(events, key=lambda e: e.at):
        row = rows.get(event.run_id)
        if row is None:
            row = rows[event.run_id] = dict.fromkeys(_COLUMNS)
            row.update(id=event.run_id, job="", queue="", params={}, attempts=0, _at=0.0)
        d = event.detail
        when = datetime.fromtimestamp(event.at, UTC)
        if d.get("job") and (event.state == RunState.QUEUED or not row["job"]):
            row["job"], row["params"] = d["job"], d.get("params") or {}
            row["queue"] = d.get("queue") or row["queue"]
        for column in ("enqueued_at", "eta"):
            if d.get(column) is not None and (event.state == "QUEUED" or row[column] is None):
                row[column] = _instant(d[column])
        row["parent_id"] = d.get("parent_id") or row["parent_id"]
        if event.state == RunState.STARTED:
            row["attempts"] += 1
        if not _advances(row["state"], row["_at"], event.state, event.at):
            continue
        row["state"], row["_at"], row["updated_at"] = event.state, event.at, when
        if event.state == RunState.RECEIVED:
            row["worker"], row["received_at"] = d.get("worker"), when
        elif event.state == RunState.STARTED:
            row["worker"], row["started_at"] = d.get("worker") or row["worker"], when
            # The worker's receipt, carried by STARTED when no RECEIVED event was needed.
            row["received_at"] = _instant(d.get("received_at")) or row["received_at"]
        elif event.state == RunState.PROGRESS:
            row["progress_current"], row["progress_total"] = d.get("current"), d.get("total")
        elif event.state == RunState.RETRY:
            row["error"] = str(d.get("error", ""))[:ERROR_MAX_CHARS]
        elif event.state == RunState.SUCCESS:
            row["finished_at"], row["result"], row["error"] = when, d.get("result") or {}, None
        elif event.state in _FINISHED:
            row["finished_at"] = when
            row["error"] = str(d.get("error", event.state))[:ERROR_MAX_CHARS]
    for row in rows.values():
        del row["_at"]
    return list(rows.values())


ROWS_PARAM = "rows"


@functools.cache
def _upsert(dialect: str) -> Any:
    """The dialect's upsert, built once, so SQLAlchemy compiles it once.

    PostgreSQL: ``INSERT .. SELECT`` from ``jsonb_to_recordset(:rows)``, the whole batch in
    one parameter. Sent as an executemany, each row was its own Bind and Execute in
    psycopg's pipeline: 18 parameters dumped and a statement run per row. One JSON
    document, serialised by the C encoder, costs about a third of the client CPU and half
    of the server's per row (docs/performance.md#ledger-upsert).

    SQLite (in-process, no protocol to save): an executemany of the rows. Either way no
    statement is built per batch: one built with ``.values(rows)`` is new SQL to compile
    each time (most of the writer's CPU when it was profiled)."""
    if dialect == "postgresql":
        columns = list(TaskRun.__table__.columns)
        batch = (
            func.jsonb_to_recordset(cast(bindparam(ROWS_PARAM, type_=Text), postgresql.JSONB))
            .table_valued(*(ColumnClause(c.name, c.type) for c in columns))
            .render_derived(with_types=True)
        )
        stmt: Any = postgresql.insert(TaskRun).from_select(
            [c.name for c in columns], select(*(batch.c[c.name] for c in columns))
        )
    elif dialect == "sqlite":
        stmt = sqlite.insert(TaskRun)
    else:
        raise RuntimeError(f"the ledger supports PostgreSQL and SQLite, not {dialect}")
    return stmt.on_conflict_do_update(index_elements=[TaskRun.id], set_=_merge(stmt.excluded))


_UTC = UTCDateTime()


def _json_rows(rows: Sequence[Mapping[str, Any]], dialect: Dialect) -> str:
    """The rows as the JSON document ``jsonb_to_recordset`` reads. The C encoder calls back
    only for the instants, which go as ISO 8601 in UTC through the column type's own check
    (a naive datetime is refused, never read in the server's zone)."""

    def instant(value: Any) -> str:
        if not isinstance(value, datetime):
            raise TypeError(f"a ledger row holds a {type(value).__name__}")
        utc = _UTC.process_bind_param(value, dialect)
        assert utc is not None
        return utc.isoformat()

    document = json.dumps(rows, default=instant)
    if _NUL_ESCAPE in document:  # rare: a second pass only for a batch that may hold one
        document = json.dumps(_without_nul(rows), default=instant)
    return document


# PostgreSQL's text and jsonb cannot hold U+0000, and a batch it refuses is retried for
# ever, stopping the ledger for every run: the character is written as U+FFFD instead.
_NUL_ESCAPE = "\\u0000"


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, Mapping):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


def _constant(value: str) -> ColumnElement[str]:
    """A state name (or "") written into the statement's text. Bound, the SET clause's
    constants were 32 parameters (62 positions in SQLite's statement) processed again for
    every row of every executemany: about half of the upsert's cost per row on SQLite
    (docs/performance.md)."""
    if not (value == "" or value.isalpha()):
        raise ValueError(f"not a constant the ledger writes inline: {value!r}")
    return literal_column(f"'{value}'", String)


def _one_of(column: Any, values: Iterable[str]) -> ColumnElement[bool]:
    """``column IN (...)`` as plain comparisons: an executemany cannot expand an IN list."""
    return or_(*(column == _constant(value) for value in sorted(values)))


def _merge(excluded: Any) -> dict[str, ColumnElement[Any]]:
    """SET clause: the module's rules between the stored row (TaskRun) and a new one."""
    t, x = TaskRun, excluded
    finished = _one_of(t.state, _FINISHED)

    def fill(column: str) -> ColumnElement[Any]:
        """New value while running; a finished row only gets what it lacks."""
        stored, new = getattr(t, column), getattr(x, column)
        return case((finished, func.coalesce(stored, new)), else_=func.coalesce(new, stored))

    def frozen(column: str, running: ColumnElement[Any]) -> ColumnElement[Any]:
        return case((finished, getattr(t, column)), else_=running)

    succeeded = x.state == _constant(RunState.SUCCESS.value)
    queued, empty = _constant(RunState.QUEUED.value), _constant("")
    return {
        "state": case(
            (finished, t.state),
            (_one_of(x.state, _FINISHED), x.state),
            (x.state == queued, t.state),
            (t.state == queued, x.state),
            (
                and_(
                    x.state == _constant(RunState.RECEIVED.value),
                    t.state == _constant(RunState.RETRY.value),
                ),
                t.state,
            ),
            (x.updated_at >= t.updated_at, x.state),
            else_=t.state,
        ),
        "updated_at": frozen(
            "updated_at", case((x.updated_at > t.updated_at, x.updated_at), else_=t.updated_at)
        ),
        # Every event that names the job carries the same job, queue and params: the
        # first one written fills them in.
        "job": case((t.job == empty, x.job), else_=t.job),
        "queue": case((t.queue == empty, x.queue), else_=t.queue),
        "params": case((t.job == empty, x.params), else_=t.params),
        "enqueued_at": func.coalesce(x.enqueued_at, t.enqueued_at),
        "eta": func.coalesce(x.eta, t.eta),
        "parent_id": func.coalesce(x.parent_id, t.parent_id),
        "worker": fill("worker"),
        "received_at": fill("received_at"),
        "started_at": fill("started_at"),
        # A finished row counts an execution that started after it ended (a redelivery:
        # docs/delivery.md); a STARTED merely arriving late (it began before the end)
        # fills in a count only when the row has none of its own.
        "attempts": case(
            (and_(finished, x.started_at > t.finished_at), t.attempts + x.attempts),
            (finished, case((x.attempts > t.attempts, x.attempts), else_=t.attempts)),
            else_=t.attempts + x.attempts,
        ),
        "finished_at": frozen("finished_at", func.coalesce(x.finished_at, t.finished_at)),
        "result": frozen("result", case((succeeded, x.result), else_=t.result)),
        "error": frozen("error", case((succeeded, None), else_=func.coalesce(x.error, t.error))),
        "progress_current": frozen(
            "progress_current",
            case(
                (
                    succeeded,
                    func.coalesce(
                        x.progress_total, t.progress_total, x.progress_current, t.progress_current
                    ),
                ),
                else_=func.coalesce(x.progress_current, t.progress_current),
            ),
        ),
        "progress_total": frozen(
            "progress_total", func.coalesce(x.progress_total, t.progress_total)
        ),
    }


def upsert_rows(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write folded rows in one statement (the caller owns the transaction)."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        document = {ROWS_PARAM: _json_rows(rows, dialect)}
        session.connection().execute(_upsert(dialect.name), document)
    else:
        session.connection().execute(_upsert(dialect.name), list(rows))


class Ledger:
    """Reads of the ledger (every write goes through the event stream)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get(self, run_id: str) -> TaskRun | None:
        with self._sessions() as session:
            run = session.get(TaskRun, run_id)
            if run is not None:
                session.expunge(run)
            return run
