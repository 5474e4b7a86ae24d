"""The freshness reads behind the API's /metrics, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from marketq.api.freshness import read_ledger_and_data
from marketq.common.db.engine import create_db_engine, session_factory
from marketq.common.db.models import DailyBarRow
from marketq.common.db.upsert import upsert
from marketq.common.ledger import Ledger, RunEvent, fold, upsert_rows


def test_last_success_per_job_and_newest_row_per_table(db_url: str) -> None:
    sessions = session_factory(create_db_engine(db_url))
    empty = read_ledger_and_data(sessions)
    assert empty.last_success == [] and empty.datasets == []

    ledger = Ledger(sessions)
    start = (datetime.now(UTC) - timedelta(minutes=5)).timestamp()
    events = []
    for step, (run_id, ok) in enumerate((("a", True), ("b", True), ("c", False))):
        at = start + step
        detail = {"id": run_id, "job": "news", "queue": "periodic", "params": {}}
        events += [
            RunEvent(run_id, "RECEIVED", at, {**detail, "at": at, "worker": "w@x"}),
            RunEvent(run_id, "STARTED", at + 0.1, {**detail, "at": at + 0.1, "worker": "w@x"}),
            RunEvent(run_id, "SUCCESS", at + 0.2, {"id": run_id, "at": at + 0.2})
            if ok
            else RunEvent(
                run_id, "FAILURE", at + 0.2, {"id": run_id, "at": at + 0.2, "error": "boom"}
            ),
        ]
    with sessions.begin() as session:
        upsert_rows(session, fold(events))
    with sessions.begin() as session:
        upsert(
            session,
            DailyBarRow,
            [
                {
                    "symbol": "AAPL",
                    "day": date(2026, 3, 2),
                    "open": 1.0,
                    "high": 2.0,
                    "low": 0.5,
                    "close": 1.5,
                    "adj_close": 1.5,
                    "volume": 10,
                    "source": "test",
                }
            ],
        )
    read = read_ledger_and_data(sessions)
    with sessions() as session:
        runs = {r: ledger.get(r) for r in ("a", "b", "c")}
        bar = session.query(DailyBarRow).one()
    finished = [runs[r].finished_at for r in ("a", "b")]  # type: ignore[union-attr]
    newest_success = max(f for f in finished if f is not None)
    assert read.last_success == [("news", "periodic", newest_success.timestamp())]
    assert read.datasets == [("daily_bars", bar.updated_at.timestamp())]
