"""The data layer on SQLite and on a real PostgreSQL: models, UTCDateTime, upsert, engines."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Double,
    Engine,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from marketq.common.db import engine as db_engine
from marketq.common.db.engine import (
    create_db_engine,
    dispose_engines,
    get_engine,
    get_sessionmaker,
    session_factory,
)
from marketq.common.db.models import (
    DATA_MODELS,
    Base,
    CompanyInfo,
    DailyBarRow,
    DividendRow,
    EarningsCalendarRow,
    EarningsRow,
    EarningsTranscriptRow,
    EconomicEventRow,
    EconomicIndicatorRow,
    FundamentalsRow,
    NewsArticleRow,
    OptionQuoteRow,
    PipelineRun,
    Portfolio,
    Position,
    QuoteRow,
    TaskRun,
    TradingSignal,
    natural_key,
)
from marketq.common.db.types import NaiveDatetimeError, UTCDateTime
from marketq.common.db.upsert import upsert
from marketq.common.settings import Settings
from marketq.providers import base as records

ALL_MODELS: list[type[Base]] = sorted(
    (mapper.class_ for mapper in Base.registry.mappers), key=lambda m: m.__tablename__
)
BASE_TIME = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
NOW_1 = datetime(2026, 3, 2, 21, 0, 0, 123456, tzinfo=UTC)
NOW_2 = NOW_1 + timedelta(hours=1)

# Provider records and the tables they map onto with ``dataclasses.asdict``.
RECORD_TABLES: list[tuple[type[Any], type[Base]]] = [
    (records.Quote, QuoteRow),
    (records.DailyBar, DailyBarRow),
    (records.OptionContract, OptionQuoteRow),
    (records.Fundamentals, FundamentalsRow),
    (records.Dividend, DividendRow),
    (records.EarningsReport, EarningsRow),
    (records.EarningsCalendarEntry, EarningsCalendarRow),
    (records.EarningsTranscript, EarningsTranscriptRow),
    (records.NewsArticle, NewsArticleRow),
    (records.EconomicObservation, EconomicIndicatorRow),
    (records.EconomicEvent, EconomicEventRow),
    (records.CompanyProfile, CompanyInfo),
]


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _checked_in(engine: Engine) -> int:
    """Connections idle in the engine's pool."""
    count: int = engine.pool.checkedin()  # type: ignore[attr-defined]
    return count


def _ids(models: list[type[Base]]) -> list[str]:
    return [m.__tablename__ for m in models]


# --- sample rows, generated from the column types --------------------------------------

CHOICES: dict[str, tuple[Any, ...]] = {
    "option_type": ("call", "put"),
    "period_type": ("quarter", "annual"),
    "time_of_day": ("bmo", "amc"),
    "importance": ("low", "medium", "high"),
    "signal": ("buy", "sell", "hold"),
    "side": ("buy", "sell"),
}
# Every generated pipeline step belongs to the run the ``portfolio_id`` fixture also makes.
PIPELINE_RUN_ID = "fixture-pipeline-run"


def _value(column: Any, n: int) -> Any:
    """A value for ``column`` derived from ``n``; different ``n``, different value."""
    if column.name in CHOICES:
        options = CHOICES[column.name]
        return options[n % len(options)]
    if column.name == "strength":
        return (n % 10) / 10
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return BASE_TIME + timedelta(minutes=n, microseconds=n)
    if isinstance(kind, Date):
        return date(2024, 1, 1) + timedelta(days=n)
    if isinstance(kind, Boolean):
        return n % 2 == 1
    if isinstance(kind, BigInteger):
        return 5_000_000_000 + n  # beyond 32 bits
    if isinstance(kind, Integer):
        return 10 * n + 7
    if isinstance(kind, Double):
        return n + 0.25
    if isinstance(kind, Text):
        return f"text {n} ünïcode"
    if isinstance(kind, String):
        rendered = f"{n:x}"
        return rendered[-kind.length :] if kind.length else f"s{rendered}"
    if isinstance(kind, JSON):
        return {"n": n, "items": [n, "x", None], "nested": {"ok": True}}
    raise AssertionError(f"no sample value for {column} of type {kind!r}")


def make_rows(
    model: type[Base], count: int, version: int, portfolio_id: int
) -> list[dict[str, Any]]:
    """``count`` rows with keys depending only on the row index and every other column on
    ``version`` too. Version 2 sets nullable columns to NULL."""
    table = _table(model)
    key = set(natural_key(model))
    rows = []
    for i in range(count):
        row: dict[str, Any] = {}
        for column in table.columns:
            if column.name in ("updated_at", "created_at"):
                continue
            if column.primary_key and column.autoincrement is True and column.name not in key:
                continue
            if column.name == "portfolio_id":
                row[column.name] = portfolio_id
            elif column.name == "pipeline_run_id":
                row[column.name] = PIPELINE_RUN_ID
            elif column.name in key:
                row[column.name] = _value(column, 1 + i)
            elif version == 2 and column.nullable:
                row[column.name] = None
            else:
                row[column.name] = _value(column, 1000 * (i + 1) + version)
        rows.append(row)
    return rows


def snapshot(session: Session, model: type[Base]) -> list[dict[str, Any]]:
    table = _table(model)
    order = [table.c[name] for name in natural_key(model)]
    return [dict(row) for row in session.execute(select(table).order_by(*order)).mappings()]


def without(rows: list[dict[str, Any]], *names: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in names} for row in rows]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> Any:
    return session_factory(engine)


@pytest.fixture
def portfolio_id(sessions: Any) -> int:
    with sessions.begin() as session:
        upsert(session, Portfolio, [{"name": "fixture", "base_currency": "USD"}], now=NOW_1)
        (pipeline_run,) = make_rows(PipelineRun, 1, version=1, portfolio_id=0)
        upsert(session, PipelineRun, [{**pipeline_run, "id": PIPELINE_RUN_ID}], now=NOW_1)
        return int(session.scalar(select(Portfolio.id).where(Portfolio.name == "fixture")))


# --- the schema (no database) ---------------------------------------------------------


def test_every_table_has_a_not_null_natural_key() -> None:
    for model in ALL_MODELS:
        key = natural_key(model)
        assert key, model
        table = _table(model)
        assert all(not table.c[name].nullable for name in key), (model, key)


def test_natural_keys_are_the_documented_ones() -> None:
    expected = {
        "quotes": ("symbol", "ts"),
        "daily_bars": ("symbol", "day"),
        "option_quotes": ("underlying", "as_of", "expiration", "strike", "option_type"),
        "fundamentals": ("symbol", "period_end", "period_type"),
        "dividends": ("symbol", "ex_date"),
        "earnings": ("symbol", "fiscal_period"),
        "earnings_calendar": ("symbol", "report_date"),
        "earnings_transcripts": ("symbol", "fiscal_period"),
        "news_articles": ("article_id",),
        "economic_indicators": ("series", "period"),
        "economic_events": ("event_id",),
        "company_info": ("symbol",),
        "technical_indicators": ("symbol", "day"),
        "trading_signals": ("symbol", "day", "strategy"),
        "portfolios": ("name",),
        "positions": ("portfolio_id", "symbol"),
        "portfolio_snapshots": ("portfolio_id", "as_of"),
        "portfolio_intraday_values": ("portfolio_id", "at"),
        "portfolio_reports": ("portfolio_id", "as_of"),
        "data_imports": ("checksum", "dataset"),
        "task_runs": ("id",),
        "universe_members": ("as_of", "symbol"),
        "features": ("symbol", "day"),
        "model_runs": ("model", "as_of"),
        "predictions": ("model", "symbol", "day"),
        "backtests": ("name", "as_of"),
        "backtest_equity": ("name", "as_of", "day"),
        "broker_accounts": ("portfolio_id", "broker"),
        "proposed_orders": ("portfolio_id", "as_of", "symbol"),
        "pipeline_runs": ("id",),
        "pipeline_steps": ("pipeline_run_id", "step"),
        "webhook_subscriptions": ("subject_id", "url"),
        "webhook_deliveries": ("id",),
        "uploads": ("id",),
    }
    assert {m.__tablename__: natural_key(m) for m in ALL_MODELS} == expected


def test_every_table_has_a_tz_aware_updated_at() -> None:
    for model in ALL_MODELS:
        column = _table(model).c["updated_at"]
        assert isinstance(column.type, UTCDateTime), model
        assert not column.nullable, model


@pytest.mark.parametrize(("record", "model"), RECORD_TABLES, ids=lambda v: v.__name__)
def test_provider_records_map_onto_their_table(record: type[Any], model: type[Base]) -> None:
    columns = _table(model).c
    for field in dataclasses.fields(record):
        assert field.name in columns, f"{model.__tablename__} lacks {field.name}"
        nullable = "None" in str(field.type)
        assert columns[field.name].nullable == nullable, (model.__tablename__, field.name)


def test_every_data_table_listed() -> None:
    ops = {"portfolios", "positions", "portfolio_snapshots", "portfolio_reports"}
    ops |= {"portfolio_intraday_values"}
    ops |= {"uploads"}
    ops |= {"data_imports", "task_runs", "pipeline_runs", "pipeline_steps"}
    ops |= {"webhook_subscriptions", "webhook_deliveries"}
    # Research results and trading state: read by the research jobs, not freshness gauges.
    ops |= {"universe_members", "features", "model_runs", "predictions", "backtests"}
    ops |= {"backtest_equity", "broker_accounts", "proposed_orders"}
    assert set(_ids(list(DATA_MODELS))) == set(_ids(ALL_MODELS)) - ops


# --- upsert on every table -------------------------------------------------------------


@pytest.mark.parametrize("model", ALL_MODELS, ids=_ids(ALL_MODELS))
def test_upsert_twice_leaves_the_same_rows(
    model: type[Base], sessions: Any, portfolio_id: int
) -> None:
    rows = make_rows(model, 5, version=1, portfolio_id=portfolio_id)
    with sessions.begin() as session:
        before = len(snapshot(session, model))
        assert upsert(session, model, rows, now=NOW_1) == 5
    with sessions() as session:
        first = snapshot(session, model)
    with sessions.begin() as session:
        assert upsert(session, model, rows, now=NOW_1) == 5
    with sessions() as session:
        second = snapshot(session, model)
    assert len(first) == before + 5
    assert second == first  # every column, ids and timestamps included

    # A later redelivery only moves updated_at forward.
    with sessions.begin() as session:
        upsert(session, model, rows, now=NOW_2)
    with sessions() as session:
        third = snapshot(session, model)
    assert without(third, "updated_at") == without(first, "updated_at")
    written = [r for r in third if all(r[k] == rows[0][k] for k in natural_key(model))]
    assert written[0]["updated_at"] == NOW_2
    if "created_at" in third[0]:
        assert {r["created_at"] for r in third} == {NOW_1}


@pytest.mark.parametrize("model", ALL_MODELS, ids=_ids(ALL_MODELS))
def test_upsert_updates_non_key_columns_in_place(
    model: type[Base], sessions: Any, portfolio_id: int
) -> None:
    versions = {v: make_rows(model, 4, version=v, portfolio_id=portfolio_id) for v in (1, 2)}
    key = natural_key(model)
    changing = [c for c in versions[1][0] if c not in key and c != "portfolio_id"]
    assert changing, "nothing to update"
    assert all(versions[1][0][c] != versions[2][0][c] for c in changing)

    ids = None
    for version in (1, 2, 1):  # v2 also sets nullable columns to NULL, and back
        rows = versions[version]
        with sessions.begin() as session:
            upsert(session, model, rows, now=NOW_1)
        with sessions() as session:
            stored = {tuple(r[k] for k in key): r for r in snapshot(session, model)}
        for row in rows:
            got = stored[tuple(row[k] for k in key)]
            assert {c: got[c] for c in row} == row
        pk = [c.name for c in _table(model).primary_key]
        current_ids = sorted(tuple(r[c] for c in pk) for r in stored.values())
        assert ids is None or current_ids == ids, "rows were replaced, not updated"
        ids = current_ids


@pytest.mark.parametrize("model", ALL_MODELS, ids=_ids(ALL_MODELS))
def test_natural_key_rejects_duplicate_plain_insert(
    model: type[Base], sessions: Any, portfolio_id: int
) -> None:
    row = make_rows(model, 1, version=1, portfolio_id=portfolio_id)[0]
    row = {**row, "updated_at": NOW_1}
    if "created_at" in _table(model).c:
        row["created_at"] = NOW_1
    other = {**make_rows(model, 1, version=2, portfolio_id=portfolio_id)[0], **row}
    for name in natural_key(model):
        other[name] = row[name]
    with sessions() as session:
        session.execute(insert(_table(model)), [row])
        with pytest.raises(IntegrityError):
            session.execute(insert(_table(model)), [other])
        session.rollback()


# --- upsert semantics ------------------------------------------------------------------


def _quote(symbol: str, minute: int, price: float) -> records.Quote:
    return records.Quote(
        symbol=symbol,
        ts=BASE_TIME + timedelta(minutes=minute),
        price=price,
        bid=price - 0.01,
        ask=price + 0.01,
        bid_size=100,
        ask_size=200,
        volume=3_000_000_000 + minute,
        change=0.5,
        change_percent=0.2,
    )


def test_provider_records_upsert_with_asdict(sessions: Any) -> None:
    quotes = [dataclasses.asdict(_quote("AAPL", m, 180.0 + m)) for m in range(3)]
    bar = records.DailyBar("AAPL", date(2026, 3, 2), 1.0, 2.0, 0.5, 1.5, 1.5, 10**10)
    with sessions.begin() as session:
        assert upsert(session, QuoteRow, quotes) == 3
        upsert(session, DailyBarRow, [{**dataclasses.asdict(bar), "source": "synthetic"}])
    with sessions() as session:
        stored = session.scalars(select(QuoteRow).order_by(QuoteRow.ts)).all()
        assert [q.price for q in stored] == [180.0, 181.0, 182.0]
        assert stored[0].ts == BASE_TIME
        assert stored[0].ts.tzinfo is not None
        assert stored[0].volume == 3_000_000_000
        assert session.scalars(select(DailyBarRow)).one().volume == 10**10


def test_upsert_large_batches_in_chunks(sessions: Any) -> None:
    rows = [dataclasses.asdict(_quote(f"S{i % 7}", i, 1.0 + i)) for i in range(2500)]
    with sessions.begin() as session:
        assert upsert(session, QuoteRow, rows) == 2500
    changed = [{**row, "price": row["price"] * 2} for row in rows]
    with sessions.begin() as session:
        assert upsert(session, QuoteRow, changed) == 2500
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(QuoteRow)) == 2500
        total = session.scalar(select(func.sum(QuoteRow.price)))
    assert total == pytest.approx(sum(r["price"] for r in changed))


def test_upsert_collapses_repeated_keys_last_wins(sessions: Any) -> None:
    rows = [dataclasses.asdict(_quote("AAPL", 0, p)) for p in (1.0, 2.0, 3.0)]
    with sessions.begin() as session:
        assert upsert(session, QuoteRow, rows) == 1
    with sessions() as session:
        assert session.scalars(select(QuoteRow.price)).all() == [3.0]


def test_partial_rows_update_only_their_columns(sessions: Any) -> None:
    run = {
        "id": "run-1",
        "job": "stock_quotes",
        "queue": "market_hours",
        "params": {"symbols": ["AAPL"]},
        "state": "QUEUED",
        "enqueued_at": BASE_TIME,
    }
    with sessions.begin() as session:
        upsert(session, TaskRun, [run], now=NOW_1)
        started = {k: run[k] for k in ("id", "job", "queue", "params")}
        started |= {"state": "STARTED", "attempts": 1, "started_at": NOW_1}
        upsert(session, TaskRun, [started], now=NOW_2)
    with sessions() as session:
        stored = session.get_one(TaskRun, "run-1")
    assert (stored.state, stored.attempts, stored.job) == ("STARTED", 1, "stock_quotes")
    assert stored.params == {"symbols": ["AAPL"]}
    assert stored.enqueued_at == BASE_TIME  # not supplied: kept
    assert stored.started_at == NOW_1
    assert stored.updated_at == NOW_2


def test_created_at_keeps_its_first_value(sessions: Any) -> None:
    signal = {
        "symbol": "AAPL",
        "day": date(2026, 3, 2),
        "strategy": "sma_cross",
        "signal": "buy",
        "strength": 0.7,
        "reason": "sma20 > sma50",
        "created_at": NOW_1,
        "expires_at": NOW_1 + timedelta(days=1),
    }
    with sessions.begin() as session:
        upsert(session, TradingSignal, [signal])
        upsert(session, TradingSignal, [{**signal, "signal": "hold", "created_at": NOW_2}])
    with sessions() as session:
        stored = session.scalars(select(TradingSignal)).one()
    assert (stored.signal, stored.created_at, stored.expired) == ("hold", NOW_1, False)


def test_upsert_rejects_bad_rows(sessions: Any) -> None:
    good = dataclasses.asdict(_quote("AAPL", 0, 1.0))
    with sessions() as session:
        with pytest.raises(ValueError, match="no column"):
            upsert(session, QuoteRow, [{**good, "nope": 1}])
        with pytest.raises(ValueError, match="same columns"):
            upsert(session, QuoteRow, [good, {k: v for k, v in good.items() if k != "bid"}])
        with pytest.raises(ValueError, match="key column"):
            upsert(session, QuoteRow, [{k: v for k, v in good.items() if k != "ts"}])
        assert upsert(session, QuoteRow, []) == 0


def test_check_constraints_hold(sessions: Any) -> None:
    signal = {
        "symbol": "AAPL",
        "day": date(2026, 3, 2),
        "strategy": "s",
        "signal": "buy",
        "strength": 0.5,
        "reason": "",
        "expires_at": NOW_1,
    }
    with sessions() as session:
        upsert(session, TradingSignal, [signal])  # valid
        session.rollback()
    for bad in ({"signal": "long"}, {"strength": 1.5}, {"strength": -0.1}):
        with sessions() as session, pytest.raises(IntegrityError):
            upsert(session, TradingSignal, [{**signal, **bad}])


def test_foreign_keys_enforced(sessions: Any) -> None:
    row = {"portfolio_id": 424242, "symbol": "AAPL", "quantity": 1.0, "cost_basis": 1.0}
    with sessions() as session, pytest.raises(IntegrityError):
        upsert(session, Position, [row])


def test_deleting_a_portfolio_cascades(sessions: Any, portfolio_id: int) -> None:
    row = {"portfolio_id": portfolio_id, "symbol": "AAPL", "quantity": 2.0, "cost_basis": 300.0}
    with sessions.begin() as session:
        upsert(session, Position, [row])
    with sessions.begin() as session:
        session.execute(delete(Portfolio).where(Portfolio.id == portfolio_id))
    with sessions() as session:
        assert session.scalars(select(Position)).all() == []


# --- UTCDateTime -----------------------------------------------------------------------


def test_utc_datetime_round_trips_aware_values(sessions: Any) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2026, 7, 1, 9, 15, 30, 654321, tzinfo=india)
    run = {
        "id": "r",
        "job": "j",
        "queue": "q",
        "params": {},
        "state": "SUCCESS",
        "finished_at": local,
    }
    with sessions.begin() as session:
        upsert(session, TaskRun, [run], now=NOW_1)
    with sessions() as session:
        stored = session.get_one(TaskRun, "r")
    assert stored.finished_at == local
    assert stored.finished_at is not None
    assert stored.finished_at.utcoffset() == timedelta(0)
    assert stored.finished_at.tzinfo == UTC
    assert stored.finished_at.replace(tzinfo=None) == datetime(2026, 7, 1, 3, 45, 30, 654321)
    assert stored.updated_at == NOW_1
    assert stored.updated_at.tzinfo == UTC
    assert stored.started_at is None


def test_utc_datetime_compares_in_utc(sessions: Any) -> None:
    rows = [dataclasses.asdict(_quote("AAPL", m, 1.0)) for m in range(0, 120, 30)]
    with sessions.begin() as session:
        upsert(session, QuoteRow, rows)
    # 15:20 UTC written as 10:20 in UTC-5: must select 15:30 and later, not 10:20.
    bound = (BASE_TIME + timedelta(minutes=50)).astimezone(timezone(timedelta(hours=-5)))
    with sessions() as session:
        later = session.scalars(select(QuoteRow.ts).where(QuoteRow.ts > bound)).all()
    assert sorted(later) == [BASE_TIME + timedelta(minutes=m) for m in (60, 90)]


def test_utc_datetime_rejects_naive_values(sessions: Any) -> None:
    row = {**dataclasses.asdict(_quote("AAPL", 0, 1.0)), "ts": datetime(2026, 3, 2, 14, 30)}
    with sessions() as session, pytest.raises(StatementError, match="naive datetime") as info:
        upsert(session, QuoteRow, [row])
    assert isinstance(info.value.orig, NaiveDatetimeError)
    with sessions() as session, pytest.raises(StatementError, match="naive datetime"):
        session.scalars(select(QuoteRow).where(QuoteRow.ts > datetime(2026, 1, 1))).all()


# --- engines -----------------------------------------------------------------------------


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "marketq.db"
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            }
    finally:
        engine.dispose()
    assert path.exists()
    assert pragma == {"journal_mode": "wal", "busy_timeout": 30000, "foreign_keys": 1}
    # WAL is a property of the file: a plain connection sees it too.
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_postgres_engine_pings(postgres_url: str) -> None:
    engine = create_db_engine(postgres_url)
    try:
        assert engine.pool._pre_ping
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_cached_engine_per_url(db_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=db_url)
    try:
        assert get_engine(settings) is get_engine(url=db_url)
        assert get_sessionmaker(settings) is get_sessionmaker(url=db_url)
        other = f"sqlite:///{tmp_path / 'other.db'}"
        assert get_engine(url=other) is not get_engine(settings)
        with get_sessionmaker(settings)() as session:
            assert session.execute(text("SELECT 1")).scalar() == 1
    finally:
        dispose_engines()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_opens_its_own_connections(db_url: str) -> None:
    engine = get_engine(url=db_url)
    try:
        with engine.connect() as connection:
            parent_conn = connection.connection.dbapi_connection
            parent_id = connection.execute(
                text("SELECT pg_backend_pid()" if "postgres" in db_url else "SELECT 1")
            ).scalar()
        assert _checked_in(engine) == 1
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, never return into pytest
            code = 1
            try:
                ok = _checked_in(engine) == 0
                with engine.connect() as connection:
                    fresh = connection.connection.dbapi_connection is not parent_conn
                    child_id = connection.execute(
                        text("SELECT pg_backend_pid()" if "postgres" in db_url else "SELECT 1")
                    ).scalar()
                    separate = "postgres" not in db_url or child_id != parent_id
                code = 0 if (ok and fresh and separate) else 3
            finally:
                os.write(write, bytes([code]))
                os._exit(code)
        os.close(write)
        result = os.read(read, 1)
        os.close(read)
        _, status = os.waitpid(pid, 0)
        assert result == b"\x00", result
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent's pooled connection was not closed by the child.
        with engine.connect() as connection:
            assert connection.connection.dbapi_connection is parent_conn
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        dispose_engines()


def test_dispose_after_fork_keeps_parent_connection_open(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
        assert raw is not None
        db_engine.dispose_after_fork()
        assert _checked_in(engine) == 0
        cursor = raw.cursor()  # not closed: only forgotten
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
        raw.close()
    finally:
        engine.dispose()


def _write_quotes(url: str, worker: int, transactions: int) -> None:
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    try:
        for t in range(transactions):
            rows = [
                dataclasses.asdict(_quote(f"W{worker}", t * 10 + i, float(t))) for i in range(10)
            ]
            with sessions.begin() as session:
                session.scalar(select(func.count()).select_from(QuoteRow))  # read, then write
                upsert(session, QuoteRow, rows)
                upsert(session, QuoteRow, [dataclasses.asdict(_quote("SHARED", 0, float(t)))])
    finally:
        engine.dispose()


@pytest.mark.integration
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_sqlite_tolerates_concurrent_writer_processes(tmp_path: Path) -> None:
    import multiprocessing

    from marketq.common.db import migrate

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    migrate.upgrade(url)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_quotes, args=(url, worker, 40)) for worker in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    engine = create_db_engine(url)
    try:
        with session_factory(engine)() as session:
            assert session.scalar(select(func.count()).select_from(QuoteRow)) == 4 * 400 + 1
    finally:
        engine.dispose()
