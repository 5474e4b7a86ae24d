"""The freshness reads behind the API's /metrics, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from marketq.api.freshness import read_ledger_and_data
from marketq.common.db.engine import create_db_engine, session_factory
from marketq.common.db.models import DailyBarRow
from marketq.common.db.upsert import upsert
from marketq.common.ledger import Ledger


def test_last_success_per_job_and_newest_row_per_table(db_url: str) -> None:
    sessions = session_factory(create_db_engine(db_url))
    empty = read_ledger_and_data(sessions)
    assert empty.last_success == [] and empty.datasets == []

    ledger = Ledger(sessions)
    start = datetime.now(UTC) - timedelta(minutes=5)
    for run_id, ok in (("a", True), ("b", True), ("c", False)):
        ledger.received(
            run_id,
            job="news",
            queue="periodic",
            params={},
            worker="w@x",
            enqueued_at=start,
            eta=None,
            parent_id=None,
        )
        ledger.started(run_id, job="news", queue="periodic", params={}, worker="w@x")
        if ok:
            ledger.succeeded(run_id, None)
        else:
            ledger.failed(run_id, "boom")
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
