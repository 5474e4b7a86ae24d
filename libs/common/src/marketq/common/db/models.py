"""The database schema: every table marketq writes, as SQLAlchemy 2 typed models.

Data tables mirror the provider records in :mod:`marketq.providers.base` one to one
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
    "BacktestEquityRow",
    "BacktestRow",
    "Base",
    "BrokerAccount",
    "CompanyInfo",
    "DailyBarRow",
    "DataImport",
    "DividendRow",
    "EarningsCalendarRow",
    "EarningsRow",
    "EarningsTranscriptRow",
    "EconomicEventRow",
    "EconomicIndicatorRow",
    "FeatureRow",
    "FundamentalsRow",
    "ModelRun",
    "NewsArticleRow",
    "OptionQuoteRow",
    "PipelineRun",
    "PipelineStep",
    "Portfolio",
    "PortfolioReport",
    "PortfolioSnapshot",
    "Position",
    "PredictionRow",
    "ProposedOrder",
    "QuoteRow",
    "RunState",
    "TaskRun",
    "TechnicalIndicatorRow",
    "TradingSignal",
    "UniverseMember",
    "Upload",
    "WebhookDelivery",
    "WebhookSubscription",
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


class _FetchedRow(_DataRow):
    """A row of market data from a provider: which adapter produced it, and when.

    ``source`` is the provider's name (``synthetic``, ``yahoo``, ``alphavantage``, ...);
    ``fetched_at`` is when the vendor answered (None for the synthetic provider, whose
    numbers are computed, not fetched)."""

    source: Mapped[str] = mapped_column(String(32), sort_order=90)
    fetched_at: Mapped[datetime | None] = mapped_column(sort_order=91)


# --- market data --------------------------------------------------------------------


class QuoteRow(_FetchedRow, Base):
    """``providers.base.Quote``: one row per symbol and minute."""

    __tablename__ = "quotes"
    __table_args__ = (natural_key_constraint("quotes", "symbol", "ts"),)

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    ts: Mapped[datetime]
    price: Mapped[float]
    bid: Mapped[float | None]
    ask: Mapped[float | None]
    bid_size: Mapped[int | None] = mapped_column(BigInteger)
    ask_size: Mapped[int | None] = mapped_column(BigInteger)
    volume: Mapped[int] = mapped_column(BigInteger)
    change: Mapped[float]
    change_percent: Mapped[float]


class DailyBarRow(_FetchedRow, Base):
    """``providers.base.DailyBar``."""

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


class OptionQuoteRow(_FetchedRow, Base):
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
    open_interest: Mapped[int | None] = mapped_column(BigInteger)
    volume: Mapped[int | None] = mapped_column(BigInteger)
    underlying_price: Mapped[float]


class FundamentalsRow(_FetchedRow, Base):
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
    eps: Mapped[float | None]
    total_assets: Mapped[float | None]
    total_liabilities: Mapped[float | None]
    shares_outstanding: Mapped[int | None] = mapped_column(BigInteger)
    market_cap: Mapped[float | None]
    pe_ratio: Mapped[float | None]


class DividendRow(_FetchedRow, Base):
    """``providers.base.Dividend``."""

    __tablename__ = "dividends"
    __table_args__ = (natural_key_constraint("dividends", "symbol", "ex_date"),)

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    ex_date: Mapped[date]
    record_date: Mapped[date | None]
    pay_date: Mapped[date | None]
    declared_date: Mapped[date | None]
    amount: Mapped[float]
    currency: Mapped[str] = mapped_column(String(3))


class EarningsRow(_FetchedRow, Base):
    """``providers.base.EarningsReport``."""

    __tablename__ = "earnings"
    __table_args__ = (natural_key_constraint("earnings", "symbol", "fiscal_period"),)

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    fiscal_period: Mapped[str] = mapped_column(String(16))
    report_date: Mapped[date | None]
    eps_estimate: Mapped[float | None]
    eps_actual: Mapped[float | None]
    revenue_estimate: Mapped[float | None]
    revenue_actual: Mapped[float | None]


class EarningsCalendarRow(_FetchedRow, Base):
    """``providers.base.EarningsCalendarEntry``."""

    __tablename__ = "earnings_calendar"
    __table_args__ = (
        natural_key_constraint("earnings_calendar", "symbol", "report_date"),
        CheckConstraint("time_of_day IN ('bmo', 'amc')", name="time_of_day"),
    )

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    report_date: Mapped[date]
    fiscal_period: Mapped[str] = mapped_column(String(16))
    time_of_day: Mapped[str | None] = mapped_column(String(3))
    eps_estimate: Mapped[float | None]


class EarningsTranscriptRow(_FetchedRow, Base):
    """``providers.base.EarningsTranscript`` plus its word count."""

    __tablename__ = "earnings_transcripts"
    __table_args__ = (natural_key_constraint("earnings_transcripts", "symbol", "fiscal_period"),)

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    fiscal_period: Mapped[str] = mapped_column(String(16))
    call_date: Mapped[date]
    content: Mapped[str] = mapped_column(Text)
    word_count: Mapped[int] = mapped_column(Integer)


class NewsArticleRow(_FetchedRow, Base):
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
    publisher: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(Text)
    sentiment: Mapped[float | None]


class EconomicIndicatorRow(_FetchedRow, Base):
    """``providers.base.EconomicObservation``."""

    __tablename__ = "economic_indicators"
    __table_args__ = (natural_key_constraint("economic_indicators", "series", "period"),)

    series: Mapped[str] = mapped_column(String(64))
    period: Mapped[date]
    value: Mapped[float]
    unit: Mapped[str] = mapped_column(String(64))


class EconomicEventRow(_FetchedRow, Base):
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


class CompanyInfo(_FetchedRow, Base):
    """``providers.base.CompanyProfile``."""

    __tablename__ = "company_info"
    __table_args__ = (natural_key_constraint("company_info", "symbol"),)

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    name: Mapped[str] = mapped_column(String(255))
    sector: Mapped[str] = mapped_column(String(128))
    industry: Mapped[str] = mapped_column(String(128))
    exchange: Mapped[str] = mapped_column(String(32))
    country: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str | None] = mapped_column(String(3))
    employees: Mapped[int | None] = mapped_column(BigInteger)
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


class PortfolioIntradayValue(_DataRow, Base):
    """A portfolio valued at the quotes of one instant of a session (hourly)."""

    __tablename__ = "portfolio_intraday_values"
    __table_args__ = (natural_key_constraint("portfolio_intraday_values", "portfolio_id", "at"),)

    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    market_value: Mapped[float]
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


class Upload(Base):
    """A file uploaded for a job (``POST /api/v1/uploads``), referenced by id in the run's
    params so that no broker message carries it (docs/api.md#limits)."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


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
    LOST = "LOST"  # the reconciler found neither a live worker nor a message for it


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


# --- research: universe, features, model, backtest, trades (docs/research.md) ----------


class UniverseMember(_DataRow, Base):
    """A symbol chosen by ``rebuild_universe`` as of a day, ranked by dollar volume."""

    __tablename__ = "universe_members"
    __table_args__ = (natural_key_constraint("universe_members", "as_of", "symbol"),)

    as_of: Mapped[date]
    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    rank: Mapped[int] = mapped_column(Integer)
    avg_dollar_volume: Mapped[float]
    last_close: Mapped[float]
    history_days: Mapped[int] = mapped_column(Integer)


class FeatureRow(_DataRow, Base):
    """Return and indicator features of one symbol on one day, from stored bars."""

    __tablename__ = "features"
    __table_args__ = (natural_key_constraint("features", "symbol", "day"),)

    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    day: Mapped[date]
    return_1d: Mapped[float]
    return_5d: Mapped[float]
    return_20d: Mapped[float]
    volatility_20d: Mapped[float]
    sma_gap_20: Mapped[float]
    rsi_14: Mapped[float]
    volume_ratio_20: Mapped[float]
    next_return_1d: Mapped[float | None]  # the label; NULL until the next bar is stored


class ModelRun(_DataRow, Base):
    """One walk-forward training of a model: its parameters and out-of-sample metrics.

    ``parameters`` holds the fitted coefficients, intercept and scaling of the last fit as
    plain numbers (never a pickle), enough to recompute every prediction it made."""

    __tablename__ = "model_runs"
    __table_args__ = (natural_key_constraint("model_runs", "model", "as_of"),)

    model: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date]
    version: Mapped[str] = mapped_column(String(64))
    features: Mapped[list[str]] = mapped_column(JSONType)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType)
    train_start: Mapped[date]
    test_start: Mapped[date]
    test_end: Mapped[date]


class PredictionRow(_DataRow, Base):
    """A model's out-of-sample prediction of a symbol's next-day return, made on ``day``."""

    __tablename__ = "predictions"
    __table_args__ = (natural_key_constraint("predictions", "model", "symbol", "day"),)

    model: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    day: Mapped[date]
    predicted_return: Mapped[float]
    realised_return: Mapped[float | None]


class BacktestRow(_DataRow, Base):
    """A walk-forward backtest of a prediction-driven strategy, with its metrics."""

    __tablename__ = "backtests"
    __table_args__ = (natural_key_constraint("backtests", "name", "as_of"),)

    name: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date]
    model: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    start: Mapped[date]
    end: Mapped[date]
    periods: Mapped[int] = mapped_column(Integer)
    cagr: Mapped[float]
    annual_volatility: Mapped[float]
    sharpe: Mapped[float]
    max_drawdown: Mapped[float]
    hit_rate: Mapped[float]
    turnover: Mapped[float]
    final_equity: Mapped[float]


class BacktestEquityRow(_DataRow, Base):
    """The equity curve of a backtest: one row per day (equity starts at 1.0)."""

    __tablename__ = "backtest_equity"
    __table_args__ = (natural_key_constraint("backtest_equity", "name", "as_of", "day"),)

    name: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date]
    day: Mapped[date]
    equity: Mapped[float]
    net_return: Mapped[float]
    turnover: Mapped[float]


class BrokerAccount(_DataRow, Base):
    """Cash of a portfolio at a broker (the paper broker's own books; others' last sync)."""

    __tablename__ = "broker_accounts"
    __table_args__ = (natural_key_constraint("broker_accounts", "portfolio_id", "broker"),)

    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    broker: Mapped[str] = mapped_column(String(32))
    cash: Mapped[float]


class ProposedOrder(_DataRow, Base):
    """An order ``generate_trades`` proposes; ``sync_broker`` sends (if enabled) and tracks it."""

    __tablename__ = "proposed_orders"
    __table_args__ = (
        natural_key_constraint("proposed_orders", "portfolio_id", "as_of", "symbol"),
        CheckConstraint("side IN ('buy', 'sell')", name="side"),
        CheckConstraint("quantity > 0", name="quantity"),
    )

    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id", ondelete="CASCADE"))
    as_of: Mapped[date]
    symbol: Mapped[str] = mapped_column(String(_SYMBOL))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[float]
    limit_price: Mapped[float]
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # proposed | sent | filled | rejected
    broker: Mapped[str | None] = mapped_column(String(32))
    broker_order_id: Mapped[str | None] = mapped_column(String(64))


# --- pipelines (docs/pipelines.md) -------------------------------------------------------


class PipelineRun(Base):
    """One run of a pipeline: the parent of its step runs.

    ``state`` and ``steps_done`` are derived from the steps' runs in ``task_runs`` and
    cached here by every advance (``marketq.common.pipeline_runs``)."""

    __tablename__ = "pipeline_runs"
    __table_args__ = (Index(None, "pipeline", "created_at"), Index(None, "state"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    state: Mapped[str] = mapped_column(String(16))
    steps_total: Mapped[int] = mapped_column(Integer)
    steps_done: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(32))  # api | schedule | cli | pipeline
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    outcome_counted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime]


class PipelineStep(Base):
    """A step of a pipeline run and the run (``task_runs.id``) currently executing it."""

    __tablename__ = "pipeline_steps"

    pipeline_run_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("pipeline_runs.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[str] = mapped_column(String(64), primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    position: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    run_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    published_at: Mapped[datetime | None]
    # How the current attempt ended, as the worker that ran it (or a cancel) said at once:
    # the ledger is written from run events a moment later, and advancing must not wait.
    ended_state: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime]


# --- completion webhooks (docs/webhooks.md) -----------------------------------------------


class WebhookSubscription(_DataRow, Base):
    """A URL to tell when a run or pipeline run ends (``notify`` of its request)."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (natural_key_constraint("webhook_subscriptions", "subject_id", "url"),)

    subject_kind: Mapped[str] = mapped_column(String(16))  # run | pipeline_run
    subject_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSONType)
    api_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One event sent (or being sent) to one subscription; ``id`` is the event id."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index(None, "subject_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # No foreign key: a delivery stands on its own (url and payload are copied) and
    # outlives a pruned subscription as a record of what was sent.
    subscription_id: Mapped[int] = mapped_column(BigIntPK)
    subject_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    state: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
