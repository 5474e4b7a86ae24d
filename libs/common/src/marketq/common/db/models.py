"""The database schema: every table marketq writes, as SQLAlchemy 2 typed models.

Data tables mirror the provider records in :mod:`marketq.common.providers.base` one to one
(same column names), so a record maps to a row with ``dataclasses.asdict``. Each has a
surrogate ``id`` primary key, a *natural key* declared as a named ``UniqueConstraint``
(see :func:`natural_key`) that every write upserts on, and an ``updated_at`` timestamp that
:func:`marketq.common.db.upsert.upsert` sets on every write (the freshness metric reads it).

Changing a model means writing a migration: ``marketq db check`` fails until one exists.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from marketq.common.db.types import JSONType, UTCDateTime

__all__ = [
    "DATA_MODELS",
    "NAMING_CONVENTION",
    "Base",
    "CompanyInfo",
    "DailyBarRow",
    "DataImport",
    "DividendRow",
    "EarningsCalendarRow",
    "EarningsRow",
    "EarningsTranscriptRow",
    "EconomicEventRow",
    "EconomicIndicatorRow",
    "FundamentalsRow",
    "NewsArticleRow",
    "OptionQuoteRow",
    "Portfolio",
    "PortfolioReport",
    "PortfolioSnapshot",
    "Position",
    "QuoteRow",
    "RunState",
    "TaskRun",
    "TechnicalIndicatorRow",
    "TradingSignal",
    "natural_key",
    "natural_key_constraint",
]

#: Deterministic constraint and index names on every dialect (migrations depend on them).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Surrogate keys: BIGINT on PostgreSQL; INTEGER on SQLite, where only ``INTEGER PRIMARY KEY``
#: is the auto-assigned rowid.
BigIntPK: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")

_SYMBOL = 32
_NATURAL_KEY_INFO = "natural_key"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        float: Double(),
        date: Date(),
        str: String(),
    }


def natural_key_constraint(table: str, *columns: str) -> UniqueConstraint:
    """The unique constraint every write of ``table`` upserts on (``uq_<table>_natural_key``)."""
    return UniqueConstraint(
        *columns, name=f"uq_{table}_natural_key", info={_NATURAL_KEY_INFO: True}
    )


def natural_key(model: type[Base]) -> tuple[str, ...]:
    """Column names of ``model``'s natural key: its natural-key constraint, else its primary key."""
    table = model.__table__
    for constraint in table.constraints:  # type: ignore[attr-defined]
        if isinstance(constraint, UniqueConstraint) and constraint.info.get(_NATURAL_KEY_INFO):
            return tuple(column.name for column in constraint.columns)
    return tuple(column.name for column in table.primary_key)


class _DataRow:
    """Columns every data table has: a surrogate id first and ``updated_at`` last.

    ``updated_at`` is indexed: the API reads ``max(updated_at)`` of every data table for the
    freshness gauges every few seconds, which must not scan a table of quotes."""

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True, sort_order=-100)
    updated_at: Mapped[datetime] = mapped_column(index=True, sort_order=100)


# --- market data --------------------------------------------------------------------


class QuoteRow(_DataRow, Base):
    """``providers.base.Quote``: one row per symbol and minute."""

    __tablename__ = "quotes"
    __table_args__ = (natural_key_constraint("quotes", "symbol", "ts"),)

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    ts: Mapped[datetime]
    price: Mapped[float]
    bid: Mapped[float]
    ask: Mapped[float]
    bid_size: Mapped[int] = mapped_column(BigInteger)
    ask_size: Mapped[int] = mapped_column(BigInteger)
    volume: Mapped[int] = mapped_column(BigInteger)
    change: Mapped[float]
    change_percent: Mapped[float]


class DailyBarRow(_DataRow, Base):
    """``providers.base.DailyBar`` plus the provider that produced it."""

    __tablename__ = "daily_bars"
    __table_args__ = (natural_key_constraint("daily_bars", "symbol", "day"),)

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    day: Mapped[date]
    open: Mapped[float]
    high: Mapped[float]
    low: Mapped[float]
    close: Mapped[float]
    adj_close: Mapped[float]
    volume: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(32))


class OptionQuoteRow(_DataRow, Base):
    """``providers.base.OptionContract``: one row per contract and snapshot."""

    __tablename__ = "option_quotes"
    __table_args__ = (
        natural_key_constraint(
            "option_quotes", "underlying", "as_of", "expiration", "strike", "option_type"
        ),
        CheckConstraint("option_type IN ('call', 'put')", name="option_type"),
    )

    underlying: Mapped[str] = mapped_column(String(_SYMBOL))
    as_of: Mapped[datetime]
    expiration: Mapped[date]
    strike: Mapped[float]
    option_type: Mapped[str] = mapped_column(String(4))
    bid: Mapped[float]
    ask: Mapped[float]
    last: Mapped[float]
    implied_volatility: Mapped[float]
    delta: Mapped[float]
    gamma: Mapped[float]
    theta: Mapped[float]
    vega: Mapped[float]
    open_interest: Mapped[int] = mapped_column(BigInteger)
    volume: Mapped[int] = mapped_column(BigInteger)
    underlying_price: Mapped[float]


class FundamentalsRow(_DataRow, Base):
    """``providers.base.Fundamentals``."""

    __tablename__ = "fundamentals"
    __table_args__ = (
        natural_key_constraint("fundamentals", "symbol", "period_end", "period_type"),
        CheckConstraint("period_type IN ('quarter', 'annual')", name="period_type"),
    )

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    period_end: Mapped[date]
    period_type: Mapped[str] = mapped_column(String(16))
    revenue: Mapped[float]
    net_income: Mapped[float]
    eps: Mapped[float]
    total_assets: Mapped[float]
    total_liabilities: Mapped[float]
    shares_outstanding: Mapped[int] = mapped_column(BigInteger)
    market_cap: Mapped[float]
    pe_ratio: Mapped[float | None]


class DividendRow(_DataRow, Base):
    """``providers.base.Dividend``."""

    __tablename__ = "dividends"
    __table_args__ = (natural_key_constraint("dividends", "symbol", "ex_date"),)

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    ex_date: Mapped[date]
    record_date: Mapped[date]
    pay_date: Mapped[date]
    declared_date: Mapped[date]
    amount: Mapped[float]
    currency: Mapped[str] = mapped_column(String(3))


class EarningsRow(_DataRow, Base):
    """``providers.base.EarningsReport``."""

    __tablename__ = "earnings"
    __table_args__ = (natural_key_constraint("earnings", "symbol", "fiscal_period"),)

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    fiscal_period: Mapped[str] = mapped_column(String(16))
    report_date: Mapped[date]
    eps_estimate: Mapped[float]
    eps_actual: Mapped[float | None]
    revenue_estimate: Mapped[float]
    revenue_actual: Mapped[float | None]


class EarningsCalendarRow(_DataRow, Base):
    """``providers.base.EarningsCalendarEntry``."""

    __tablename__ = "earnings_calendar"
    __table_args__ = (
        natural_key_constraint("earnings_calendar", "symbol", "report_date"),
        CheckConstraint("time_of_day IN ('bmo', 'amc')", name="time_of_day"),
    )

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    report_date: Mapped[date]
    fiscal_period: Mapped[str] = mapped_column(String(16))
    time_of_day: Mapped[str] = mapped_column(String(3))
    eps_estimate: Mapped[float]


class EarningsTranscriptRow(_DataRow, Base):
    """``providers.base.EarningsTranscript`` plus its word count."""

    __tablename__ = "earnings_transcripts"
    __table_args__ = (natural_key_constraint("earnings_transcripts", "symbol", "fiscal_period"),)

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    fiscal_period: Mapped[str] = mapped_column(String(16))
    call_date: Mapped[date]
    content: Mapped[str] = mapped_column(Text)
    word_count: Mapped[int] = mapped_column(Integer)


class NewsArticleRow(_DataRow, Base):
    """``providers.base.NewsArticle``."""

    __tablename__ = "news_articles"
    __table_args__ = (
        natural_key_constraint("news_articles", "article_id"),
        Index(None, "symbol", "published_at"),
    )

    article_id: Mapped[str] = mapped_column(String(255))
    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    published_at: Mapped[datetime]
    headline: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(Text)
    sentiment: Mapped[float]


class EconomicIndicatorRow(_DataRow, Base):
    """``providers.base.EconomicObservation``."""

    __tablename__ = "economic_indicators"
    __table_args__ = (natural_key_constraint("economic_indicators", "series", "period"),)

    series: Mapped[str] = mapped_column(String(64))
    period: Mapped[date]
    value: Mapped[float]
    unit: Mapped[str] = mapped_column(String(64))


class EconomicEventRow(_DataRow, Base):
    """``providers.base.EconomicEvent``."""

    __tablename__ = "economic_events"
    __table_args__ = (
        natural_key_constraint("economic_events", "event_id"),
        CheckConstraint("importance IN ('low', 'medium', 'high')", name="importance"),
        Index(None, "scheduled_at"),
    )

    event_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    country: Mapped[str] = mapped_column(String(8))
    scheduled_at: Mapped[datetime]
    importance: Mapped[str] = mapped_column(String(8))
    forecast: Mapped[float | None]
    previous: Mapped[float | None]
    actual: Mapped[float | None]


class CompanyInfo(_DataRow, Base):
    """``providers.base.CompanyProfile``."""

    __tablename__ = "company_info"
    __table_args__ = (natural_key_constraint("company_info", "symbol"),)

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    name: Mapped[str] = mapped_column(String(255))
    sector: Mapped[str] = mapped_column(String(128))
    industry: Mapped[str] = mapped_column(String(128))
    exchange: Mapped[str] = mapped_column(String(32))
    country: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    employees: Mapped[int] = mapped_column(BigInteger)
    website: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)


# --- derived data ---------------------------------------------------------------------


class TechnicalIndicatorRow(_DataRow, Base):
    """Indicators of one symbol's daily close; NULL while an indicator is warming up."""

    __tablename__ = "technical_indicators"
    __table_args__ = (natural_key_constraint("technical_indicators", "symbol", "day"),)

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    day: Mapped[date]
    sma_20: Mapped[float | None]
    sma_50: Mapped[float | None]
    sma_200: Mapped[float | None]
    ema_12: Mapped[float | None]
    ema_26: Mapped[float | None]
    rsi_14: Mapped[float | None]
    macd: Mapped[float | None]
    macd_signal: Mapped[float | None]
    macd_hist: Mapped[float | None]
    bb_upper: Mapped[float | None]
    bb_middle: Mapped[float | None]
    bb_lower: Mapped[float | None]


class TradingSignal(_DataRow, Base):
    """A strategy's call on a symbol for a day; ``expire_signals`` flips ``expired``."""

    __tablename__ = "trading_signals"
    __table_args__ = (
        natural_key_constraint("trading_signals", "symbol", "day", "strategy"),
        CheckConstraint("signal IN ('buy', 'sell', 'hold')", name="signal"),
        CheckConstraint("strength >= 0 AND strength <= 1", name="strength"),
        Index(None, "expired", "expires_at"),
    )

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    day: Mapped[date]
    strategy: Mapped[str] = mapped_column(String(64))
    signal: Mapped[str] = mapped_column(String(4))
    strength: Mapped[float]
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    expired: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


# --- portfolios -----------------------------------------------------------------------


class Portfolio(Base):
    __tablename__ = "portfolios"
    __table_args__ = (natural_key_constraint("portfolios", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    base_currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Position(_DataRow, Base):
    """A holding; ``cost_basis`` is the total cost, not per share."""

    __tablename__ = "positions"
    __table_args__ = (natural_key_constraint("positions", "portfolio_id", "symbol"),)

    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    quantity: Mapped[float]
    cost_basis: Mapped[float]


class PortfolioSnapshot(_DataRow, Base):
    __tablename__ = "portfolio_snapshots"
    __table_args__ = (natural_key_constraint("portfolio_snapshots", "portfolio_id", "as_of"),)

    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    as_of: Mapped[date]
    market_value: Mapped[float]
    cost_basis: Mapped[float]
    unrealized_pnl: Mapped[float]
    day_change: Mapped[float]
    positions_count: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)


class PortfolioReport(_DataRow, Base):
    __tablename__ = "portfolio_reports"
    __table_args__ = (natural_key_constraint("portfolio_reports", "portfolio_id", "as_of"),)

    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    as_of: Mapped[date]
    report: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime]


# --- operations -----------------------------------------------------------------------


class DataImport(_DataRow, Base):
    """One imported file; the same content imported twice into a dataset is one import."""

    __tablename__ = "data_imports"
    __table_args__ = (natural_key_constraint("data_imports", "checksum", "dataset"),)

    run_id: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(String(64))
    checksum: Mapped[str] = mapped_column(String(128))
    filename: Mapped[str | None] = mapped_column(String(1024))
    rows: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class RunState(enum.StrEnum):
    """States of a run in the ``task_runs`` ledger."""

    QUEUED = "QUEUED"
    RECEIVED = "RECEIVED"
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"


class TaskRun(Base):
    """The run ledger: one row per run (= Celery task id), history that outlives Redis."""

    __tablename__ = "task_runs"
    __table_args__ = (
        Index(None, "job", "enqueued_at"),
        Index(None, "state"),
        Index(None, "finished_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    state: Mapped[str] = mapped_column(String(16))
    progress_current: Mapped[int | None] = mapped_column(Integer)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    worker: Mapped[str | None] = mapped_column(String(255))
    enqueued_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    eta: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[Any | None] = mapped_column(JSONType)
    parent_id: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]


#: Tables written by market-data and derived-data jobs (the freshness metric reads these).
DATA_MODELS: tuple[type[Base], ...] = (
    QuoteRow,
    DailyBarRow,
    OptionQuoteRow,
    FundamentalsRow,
    DividendRow,
    EarningsRow,
    EarningsCalendarRow,
    EarningsTranscriptRow,
    NewsArticleRow,
    EconomicIndicatorRow,
    EconomicEventRow,
    CompanyInfo,
    TechnicalIndicatorRow,
    TradingSignal,
)
