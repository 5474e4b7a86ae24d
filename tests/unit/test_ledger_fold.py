"""The ledger's ordering rules, in one batch (fold) and across batches (the upsert's SET),
on SQLite and PostgreSQL: events in any order give the same row; a finished run never moves
back."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from marketq.common.db.engine import create_db_engine, session_factory
from marketq.common.db.models import TaskRun
from marketq.common.db.types import NaiveDatetimeError
from marketq.common.ledger import _COLUMNS, ROWS_PARAM, RunEvent, _upsert, fold, upsert_rows
from tests.fixtures.postgres import DIALECTS

RUN = "run-1"


def event(state: str, at: float, **detail: Any) -> RunEvent:
    return RunEvent(RUN, state, at, {"id": RUN, "at": at, **detail})


QUEUED = event(
    "QUEUED",
    1.0,
    job="health_check",
    queue="default",
    params={"sleep_seconds": 0},
    enqueued_at="1970-01-01T00:00:01+00:00",
)
RECEIVED = event(
    "RECEIVED", 2.0, job="health_check", queue="default", params={"sleep_seconds": 0}, worker="w1"
)
STARTED = event("STARTED", 3.0, worker="w1")
SUCCESS = event("SUCCESS", 4.0, result={"ok": True})


@pytest.fixture(params=DIALECTS)
def sessions(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template_path: Path
) -> Iterator[sessionmaker[Session]]:
    """The SET clause is dialect SQL: every test that writes runs on both databases."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        shutil.copyfile(sqlite_template_path, path)  # migrated once per session
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_shared_db").reset()
    engine = create_db_engine(url)
    yield session_factory(engine)
    engine.dispose()


def write(sessions: sessionmaker[Session], *batches: list[RunEvent]) -> TaskRun:
    for batch in batches:
        with sessions.begin() as session:
            upsert_rows(session, fold(batch))
    with sessions() as session:
        row = session.get(TaskRun, RUN)
        assert row is not None
        session.expunge(row)
        return row


def test_fold_gives_one_row_whatever_the_order() -> None:
    events = [QUEUED, RECEIVED, STARTED, SUCCESS]
    rows = [fold(list(order)) for order in itertools.permutations(events)]
    assert all(r == rows[0] for r in rows)
    (row,) = rows[0]
    assert row["state"] == "SUCCESS" and row["job"] == "health_check"
    assert row["attempts"] == 1 and row["worker"] == "w1" and row["result"] == {"ok": True}


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_every_batch_order_ends_with_the_same_row(
    sessions: sessionmaker[Session], order: tuple[int, ...]
) -> None:
    events = [QUEUED, RECEIVED, STARTED, SUCCESS]
    row = write(sessions, *([events[i]] for i in order))
    assert row.state == "SUCCESS"
    assert row.job == "health_check" and row.queue == "default"
    assert row.params == {"sleep_seconds": 0}
    assert row.worker == "w1" and row.attempts == 1
    assert row.result == {"ok": True} and row.error is None
    assert row.enqueued_at is not None and row.started_at is not None
    assert row.finished_at is not None


def test_a_finished_run_never_moves_back(sessions: sessionmaker[Session]) -> None:
    late = event("STARTED", 9.0, worker="w2")
    row = write(sessions, [QUEUED, STARTED, SUCCESS], [late], [event("PROGRESS", 9.5, current=1)])
    # The state stays; the execution that started after the end is counted (a duplicate
    # is visible in attempts, issue 16).
    assert row.state == "SUCCESS" and row.worker == "w1" and row.attempts == 2


def test_a_started_event_arriving_after_the_end_it_preceded_counts_once(
    sessions: sessionmaker[Session],
) -> None:
    # The same execution's STARTED written after its SUCCESS (events out of order).
    row = write(sessions, [QUEUED, SUCCESS], [STARTED])
    assert row.state == "SUCCESS" and row.attempts == 1


def test_lost_is_final_and_queued_never_replaces_a_later_state(
    sessions: sessionmaker[Session],
) -> None:
    row = write(sessions, [RECEIVED], [QUEUED])
    assert row.state == "RECEIVED" and row.params == {"sleep_seconds": 0}
    row = write(sessions, [event("LOST", 5.0, error="LOST: worker w1 is gone")], [SUCCESS])
    assert row.state == "LOST" and row.error == "LOST: worker w1 is gone"


def test_received_does_not_undo_a_retry(sessions: sessionmaker[Session]) -> None:
    row = write(
        sessions,
        [QUEUED, STARTED, event("RETRY", 5.0, error="boom")],
        [event("RECEIVED", 6.0, worker="w1")],
    )
    assert row.state == "RETRY" and row.error == "boom"
    row = write(sessions, [event("STARTED", 7.0, worker="w1")], [event("SUCCESS", 8.0)])
    assert row.state == "SUCCESS" and row.attempts == 2 and row.error is None


def test_a_receipt_carried_by_started_fills_received_at_in_any_batch_order(
    sessions: sessionmaker[Session],
) -> None:
    """A run that started at once has no RECEIVED event: STARTED carries the receipt, and a
    RECEIVED recorded late (the run waited) never moves the state back."""
    started = event("STARTED", 3.0, worker="w1", received_at=2.5)
    late_received = event("RECEIVED", 2.5, job="health_check", queue="default", worker="w1")
    for batches in ([[QUEUED, started, SUCCESS]], [[QUEUED], [started], [late_received]]):
        row = write(sessions, *batches)
        assert row.received_at is not None and row.received_at.timestamp() == 2.5
        assert row.state == ("SUCCESS" if len(batches) == 1 else "STARTED")
        with sessions.begin() as session:
            session.query(TaskRun).delete()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_upsert_binds_only_the_rows_columns(dialect: str) -> None:
    """The SET clause's state names are written into the statement, not bound: a bound
    constant is processed again for every row of every batch, which once made up most of
    the writer's SQL cost (docs/performance.md). On PostgreSQL the rows themselves are one
    parameter, the batch as a JSON document."""
    compiled = _upsert(dialect).compile(
        dialect=sqlite.dialect() if dialect == "sqlite" else postgresql.dialect()
    )
    assert set(compiled.binds) == (set(_COLUMNS) if dialect == "sqlite" else {ROWS_PARAM})
    assert "'SUCCESS'" in compiled.string and "'QUEUED'" in compiled.string


@pytest.mark.postgres
def test_a_postgresql_batch_is_one_statement_executed_once(postgres_shared_db: Any) -> None:
    """Not an executemany: psycopg runs one of those as a Bind and an Execute per row, the
    writer's main cost per run on PostgreSQL (docs/performance.md#ledger-upsert)."""
    engine = create_db_engine(postgres_shared_db.reset())
    executions: list[bool] = []

    @sqlalchemy.event.listens_for(engine, "before_cursor_execute")
    def count(*args: Any) -> None:
        executions.append(bool(args[-1]))  # the executemany flag

    events = [
        RunEvent(f"run-{i}", state, at, {"id": f"run-{i}", "at": at, "job": "health_check"})
        for i in range(50)
        for state, at in (("STARTED", 1.0), ("SUCCESS", 2.0))
    ]
    try:
        with session_factory(engine).begin() as session:
            executions.clear()  # the connection's own set-up
            upsert_rows(session, fold(events))
            assert executions == [False]
        with session_factory(engine)() as session:
            assert session.query(TaskRun).filter(TaskRun.state == "SUCCESS").count() == 50
    finally:
        engine.dispose()


def test_every_column_survives_the_write_unchanged(sessions: sessionmaker[Session]) -> None:
    """Whatever the events carry comes back as it went in: text that needs quoting or
    escaping (in SQL and in JSON), nested parameters, instants to the microsecond."""
    params = {"symbols": ["BRK.B", "Ünïcødé €"], "note": 'a "quoted" \\ back\\slash\n', "n": 1.5}
    error = 'ValueError: it\'s a "bad" value\nsecond line \\ ✓'
    at = 1_700_000_000.123456
    queued = RunEvent(
        RUN,
        "QUEUED",
        at,
        {
            "id": RUN,
            "at": at,
            "job": "daily_bars",
            "queue": "daily",
            "params": params,
            "enqueued_at": at,
            "eta": "2026-12-07T14:30:00.000001+00:00",
            "parent_id": "p-1",
        },
    )
    failed = RunEvent(RUN, "FAILURE", at + 1, {"id": RUN, "at": at + 1, "error": error})
    row = write(sessions, [queued, failed])
    assert row.params == params and row.error == error
    assert (row.job, row.queue, row.parent_id, row.state) == (
        "daily_bars",
        "daily",
        "p-1",
        "FAILURE",
    )
    assert row.enqueued_at == datetime.fromtimestamp(at, UTC)
    assert row.eta == datetime(2026, 12, 7, 14, 30, 0, 1, tzinfo=UTC)
    assert row.finished_at == datetime.fromtimestamp(at + 1, UTC)
    assert row.result is None and row.progress_current is None and row.attempts == 0


def test_a_naive_instant_is_refused_not_read_in_the_servers_zone(
    sessions: sessionmaker[Session],
) -> None:
    (row,) = fold([STARTED])
    row["updated_at"] = datetime(2026, 12, 7, 9, 30)  # no zone
    with pytest.raises((NaiveDatetimeError, StatementError)), sessions.begin() as session:
        upsert_rows(session, [row])


@pytest.mark.postgres
def test_a_nul_character_does_not_stop_the_ledger_on_postgresql(postgres_shared_db: Any) -> None:
    """PostgreSQL's text and jsonb cannot hold U+0000. An error message or a result that
    carries one (a vendor's binary answer quoted in an exception) must not make its batch
    fail for ever: the writer retries a failed batch, so one such event would stop the
    ledger for every run. The character is written as U+FFFD instead."""
    engine = create_db_engine(postgres_shared_db.reset())
    failed = RunEvent(RUN, "FAILURE", 2.0, {"id": RUN, "at": 2.0, "error": "bad\x00byte"})
    other = RunEvent(
        "run-2", "SUCCESS", 2.0, {"id": "run-2", "at": 2.0, "result": {"raw\x00": ["a\x00b"]}}
    )
    try:
        with session_factory(engine).begin() as session:
            upsert_rows(session, fold([QUEUED, failed, other]))
        with session_factory(engine)() as session:
            first, second = session.get(TaskRun, RUN), session.get(TaskRun, "run-2")
            assert first is not None and second is not None
            assert first.error == "bad\ufffdbyte" and first.state == "FAILURE"
            assert second.result == {"raw\ufffd": ["a\ufffdb"]}
    finally:
        engine.dispose()
