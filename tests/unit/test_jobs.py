"""Job implementations, called directly with a real JobContext on a real migrated database.

No Celery and no Redis: every test builds the context the way ``marketq.worker.task``
does (engine + sessions on ``db_url``, the seeded synthetic provider, the XNYS calendar,
Settings) and runs on SQLite and on PostgreSQL through the ``db_url`` fixture.

The run's reference time is fixed (``AS_OF``: Friday 2026-11-20, 16:30 New York, after the
close), so the synthetic provider returns the same records on every run. Jobs that compare
against the wall clock (``expire_signals``, ``cleanup``, the ``expired`` flag of new
signals) get a pinned ``ctx.now`` where the outcome depends on it.

"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import product
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from marketq.common.db.engine import create_db_engine, session_factory
from marketq.common.db.models import (
    Base,
    CompanyInfo,
    DailyBarRow,
    DataImport,
    DividendRow,
    EarningsCalendarRow,
    EarningsRow,
    EarningsTranscriptRow,
    EconomicEventRow,
    EconomicIndicatorRow,
    FundamentalsRow,
    NewsArticleRow,
    OptionQuoteRow,
    Portfolio,
    PortfolioReport,
    PortfolioSnapshot,
    Position,
    QuoteRow,
    RunState,
    TaskRun,
    TechnicalIndicatorRow,
    TradingSignal,
    natural_key,
)
from marketq.common.params import (
    CleanupParams,
    CompanyInfoParams,
    DataImportParams,
    DividendsParams,
    EarningsCalendarParams,
    EarningsParams,
    EarningsTranscriptsParams,
    EconomicEventsParams,
    EconomicIndicatorsParams,
    ExpireSignalsParams,
    FundamentalsParams,
    HealthCheckParams,
    HistoricalPricesParams,
    JobParams,
    NewsParams,
    OptionsChainParams,
    PortfolioReportParams,
    PortfolioSnapshotParams,
    StockQuotesParams,
    TechnicalIndicatorsParams,
    TradingSignalsParams,
)
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.settings import Settings
from marketq.providers import RoutedProvider, SyntheticProvider
from marketq.providers.validation import RecordValidator
from marketq.worker.analytics.indicators import INDICATOR_COLUMNS
from marketq.worker.analytics.signals import STRATEGIES
from marketq.worker.context import JobContext
from marketq.worker.errors import PermanentJobError
from marketq.worker.jobs import (
    analytics,
    calendar_events,
    company,
    economy,
    imports,
    market,
    news,
    operations,
    portfolio,
)

# --- the run every test shares ----------------------------------------------------------

#: The run's reference time: Friday 2026-11-20 16:30:42.5 New York, after the close.
AS_OF = datetime(2026, 11, 20, 21, 30, 42, 500_000, tzinfo=UTC)
AS_OF_MINUTE = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
TODAY = date(2026, 11, 20)  # ctx.today: the exchange-local date of AS_OF
SYMBOLS = ("AAPL", "MSFT", "JPM")  # the settings' universe (params.symbols omitted)
SIGNAL_TTL_SESSIONS = 2  # not the default 1, so a hard-coded TTL would show
# Signals of Friday 2026-11-20 expire at the close of the second session after it:
# Tuesday 2026-11-24, 16:00 New York, 21:00 UTC.
SIGNAL_EXPIRY = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
RUN_ID = "run-under-test"

Progress = list[tuple[int, int | None]]


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar("XNYS")


@pytest.fixture(scope="module")
def provider(calendar: MarketCalendar) -> SyntheticProvider:
    """The provider jobs use and tests ask for expectations (pure: sharing it is safe)."""
    return SyntheticProvider(seed=0, calendar=calendar)


@pytest.fixture
def import_dir(tmp_path: Path) -> Path:
    path = tmp_path / "imports"
    path.mkdir()
    return path


@pytest.fixture
def progress() -> Progress:
    """Every (current, total) the job reported, in order."""
    return []


@pytest.fixture
def ctx(
    db_url: str,
    provider: SyntheticProvider,
    calendar: MarketCalendar,
    import_dir: Path,
    progress: Progress,
) -> Iterator[JobContext]:
    """A JobContext built like ``JobTask.run`` builds it, on a fresh migrated database."""
    engine = create_db_engine(db_url)
    settings = Settings(
        database_url=db_url,
        import_dir=str(import_dir),
        symbols=SYMBOLS,
        signal_ttl_sessions=SIGNAL_TTL_SESSIONS,
        ledger_retention_days=30,
        quote_retention_days=30,
        news_retention_days=90,
        import_max_bytes=20 * 1024 * 1024,
    )
    context = JobContext(
        run_id=RUN_ID,
        job="under_test",
        queue="default",
        worker="tests@localhost",
        as_of=AS_OF,
        settings=settings,
        provider=RoutedProvider.over(
            provider, RecordValidator(calendar.is_trading_day, lambda: datetime.now(UTC))
        ),
        calendar=calendar,
        sessions=session_factory(engine),
        log=logging.LoggerAdapter(logging.getLogger("t"), {}),
        _progress_sink=lambda current, total: progress.append((current, total)),
    )
    yield context
    engine.dispose()


def pin_clock(monkeypatch: pytest.MonkeyPatch, ctx: JobContext, now: datetime) -> None:
    """Make ``ctx.now()`` answer ``now`` (jobs read the wall clock only through it)."""
    monkeypatch.setattr(ctx, "now", lambda: now)


# --- reading the database -----------------------------------------------------------------


def key_of(model: type[Base], row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in natural_key(model))


def table(ctx: JobContext, model: type[Base]) -> list[dict[str, Any]]:
    """Every row of ``model``'s table by natural key, without surrogate ids, ``updated_at``
    and ``fetched_at`` (when a row was written and when its data was fetched: a rerun
    changes both, never the data).

    Rows are sorted in Python, so the order does not depend on the database's collation.
    """
    ignored = {"updated_at", "fetched_at", "id"} - set(natural_key(model))
    columns = [c for c in model.__table__.columns if c.name not in ignored]
    with ctx.sessions() as session:
        rows = [dict(r) for r in session.execute(select(*columns)).mappings()]
    return sorted(rows, key=lambda r: key_of(model, r))


def database(ctx: JobContext) -> dict[str, list[dict[str, Any]]]:
    """The content of every table (``id``, ``updated_at`` and ``fetched_at`` aside)."""
    models = sorted((m.class_ for m in Base.registry.mappers), key=lambda m: m.__tablename__)
    return {m.__tablename__: table(ctx, m) for m in models}


def count(ctx: JobContext, model: type[Base], *where: Any) -> int:
    with ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def provider_rows(records: list[Any], **extra: Any) -> list[dict[str, Any]]:
    """The rows the synthetic provider's ``records`` become, as ``table`` reads them."""
    rows = [{**dataclasses.asdict(r), "source": "synthetic", **extra} for r in records]
    return [{k: v for k, v in row.items() if k != "fetched_at"} for row in rows]


def by_key(model: type[Base], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    unique = {key_of(model, r): r for r in rows}  # the job's write keeps the last of a key
    return [unique[k] for k in sorted(unique)]


def assert_progress_finished(progress: Progress, total: int) -> None:
    """Progress was reported, never went backwards, and ended at (total, total)."""
    assert progress, "no progress reported"
    assert progress[-1] == (total, total)
    assert {t for _, t in progress} == {total}
    currents = [c for c, _ in progress]
    assert currents == sorted(currents)


# --- re-running a job -----------------------------------------------------------------------

RERUNNABLE = [
    pytest.param(market.stock_quotes, StockQuotesParams(), QuoteRow, id="stock_quotes"),
    pytest.param(
        market.historical_prices,
        HistoricalPricesParams(lookback_days=30),
        DailyBarRow,
        id="historical_prices",
    ),
    pytest.param(
        market.options_chain,
        OptionsChainParams(symbols=["AAPL"], expirations=2, strikes_per_side=3),
        OptionQuoteRow,
        id="options_chain",
    ),
    pytest.param(
        analytics.technical_indicators,
        TechnicalIndicatorsParams(symbols=["AAPL"]),
        TechnicalIndicatorRow,
        id="technical_indicators",
    ),
    pytest.param(news.news, NewsParams(), NewsArticleRow, id="news"),
    pytest.param(
        company.earnings_transcripts,
        EarningsTranscriptsParams(),
        EarningsTranscriptRow,
        id="earnings_transcripts",
    ),
    pytest.param(company.fundamentals, FundamentalsParams(), FundamentalsRow, id="fundamentals"),
    pytest.param(company.dividends, DividendsParams(), DividendRow, id="dividends"),
    pytest.param(company.earnings, EarningsParams(), EarningsRow, id="earnings"),
    pytest.param(company.company_info, CompanyInfoParams(), CompanyInfo, id="company_info"),
    pytest.param(
        calendar_events.earnings_calendar,
        EarningsCalendarParams(days_ahead=120),
        EarningsCalendarRow,
        id="earnings_calendar",
    ),
    pytest.param(
        calendar_events.economic_events,
        EconomicEventsParams(),
        EconomicEventRow,
        id="economic_events",
    ),
    pytest.param(
        economy.economic_indicators,
        EconomicIndicatorsParams(),
        EconomicIndicatorRow,
        id="economic_indicators",
    ),
]


@pytest.mark.parametrize(("job", "params", "model"), RERUNNABLE)
def test_running_a_job_twice_with_the_same_context_writes_identical_rows(
    ctx: JobContext, job: Callable[..., Any], params: JobParams, model: type[Base]
) -> None:
    first_result = job(ctx, params)
    first = database(ctx)
    assert first[model.__tablename__], "the first run wrote nothing to compare"

    second_result = job(ctx, params)

    assert second_result == first_result
    assert database(ctx) == first  # every table, not only the job's own


# --- stock_quotes -----------------------------------------------------------------------


def test_stock_quotes_quote_the_run_minute_when_params_give_no_as_of(
    ctx: JobContext, provider: SyntheticProvider, progress: Progress
) -> None:
    result = market.stock_quotes(ctx, StockQuotesParams())

    rows = table(ctx, QuoteRow)
    assert [(r["symbol"], r["ts"]) for r in rows] == [(s, AS_OF_MINUTE) for s in sorted(SYMBOLS)]
    for row in rows:
        assert row["price"] == provider.quote(row["symbol"], AS_OF_MINUTE).price
    assert result == {"as_of": AS_OF_MINUTE.isoformat(), "symbols": 3, "rows": 3}
    assert_progress_finished(progress, len(SYMBOLS))


def test_stock_quotes_quote_the_minute_of_params_as_of_when_given(ctx: JobContext) -> None:
    asked = datetime(2026, 11, 20, 15, 45, 59, 999_999, tzinfo=UTC)  # inside the session

    market.stock_quotes(ctx, StockQuotesParams(symbols=["AAPL"], as_of=asked))

    assert [r["ts"] for r in table(ctx, QuoteRow)] == [datetime(2026, 11, 20, 15, 45, tzinfo=UTC)]


# --- technical_indicators -----------------------------------------------------------------

#: Position in the window of the first non-NULL value of each indicator (TA-Lib warm-up).
WARM_UP = {
    "sma_20": 19,
    "sma_50": 49,
    "sma_200": 199,
    "ema_12": 11,
    "ema_26": 25,
    "rsi_14": 14,
    "macd": 33,
    "macd_signal": 33,
    "macd_hist": 33,
    "bb_upper": 19,
    "bb_middle": 19,
    "bb_lower": 19,
}
WINDOW = 250
HISTORY = WINDOW + 199  # bars the job keeps stored: the window plus sma_200's warm-up


def stored_window(ctx: JobContext, symbol: str, until: date, size: int) -> list[DailyBarRow]:
    """The last ``size`` stored bars of ``symbol`` on or before ``until``, oldest first."""
    with ctx.sessions() as session:
        bars = session.scalars(
            select(DailyBarRow)
            .where(DailyBarRow.symbol == symbol, DailyBarRow.day <= until)
            .order_by(DailyBarRow.day.desc())
            .limit(size)
        ).all()
    return list(reversed(bars))


def test_technical_indicators_back_fill_daily_bars_when_fewer_than_the_window_are_stored(
    ctx: JobContext,
) -> None:
    market.historical_prices(ctx, HistoricalPricesParams(symbols=["AAPL"], lookback_days=30))
    before = count(ctx, DailyBarRow)
    assert before < HISTORY

    analytics.technical_indicators(
        ctx, TechnicalIndicatorsParams(symbols=["AAPL"], window_days=WINDOW)
    )

    assert count(ctx, DailyBarRow) >= HISTORY > before
    window = stored_window(ctx, "AAPL", TODAY, HISTORY)
    assert len(window) == HISTORY
    assert window[-1].day == TODAY


def test_technical_indicators_do_not_fetch_bars_when_the_window_is_already_stored(
    ctx: JobContext,
) -> None:
    market.historical_prices(ctx, HistoricalPricesParams(symbols=["AAPL"], lookback_days=700))
    stored = table(ctx, DailyBarRow)
    assert len(stored) >= HISTORY

    analytics.technical_indicators(
        ctx, TechnicalIndicatorsParams(symbols=["AAPL"], window_days=WINDOW)
    )

    assert table(ctx, DailyBarRow) == stored


def test_technical_indicators_are_null_only_during_each_indicators_warm_up(
    ctx: JobContext, progress: Progress
) -> None:
    assert set(WARM_UP) == set(INDICATOR_COLUMNS)

    result = analytics.technical_indicators(
        ctx, TechnicalIndicatorsParams(symbols=["AAPL"], window_days=WINDOW)
    )

    # Computed over every stored bar, from the first one on.
    history = stored_window(ctx, "AAPL", TODAY, 100_000)
    position = {bar.day: i for i, bar in enumerate(history)}
    rows = table(ctx, TechnicalIndicatorRow)
    first = min(WARM_UP.values())  # rows where every indicator is still warming up are skipped
    assert [r["day"] for r in rows] == [bar.day for bar in history[first:]]
    for row in rows:
        at = position[row["day"]]
        nulls = {c for c in INDICATOR_COLUMNS if row[c] is None}
        assert nulls == {c for c, warm_up in WARM_UP.items() if at < warm_up}, row["day"]
    # sma_200: NULL for the first 199 bars, the mean of the last 200 at the end.
    assert rows[-1]["day"] == TODAY
    last_200 = [bar.close for bar in history[-200:]]
    assert rows[-1]["sma_200"] == pytest.approx(sum(last_200) / 200, rel=1e-12)
    assert result == {"as_of": TODAY.isoformat(), "symbols": 1, "rows": len(rows)}
    assert_progress_finished(progress, 1)


# --- trading_signals and expire_signals ----------------------------------------------------

SIGNAL_SYMBOLS = ["AAPL", "MSFT"]


def signals_after_indicators(ctx: JobContext) -> dict[str, Any]:
    analytics.technical_indicators(ctx, TechnicalIndicatorsParams(symbols=SIGNAL_SYMBOLS))
    return analytics.trading_signals(ctx, TradingSignalsParams(symbols=SIGNAL_SYMBOLS))


def test_trading_signals_give_one_signal_per_strategy_for_the_last_indicator_day(
    ctx: JobContext,
) -> None:
    result = signals_after_indicators(ctx)

    rows = table(ctx, TradingSignal)
    assert sorted((r["symbol"], r["strategy"]) for r in rows) == sorted(
        product(SIGNAL_SYMBOLS, STRATEGIES)
    )
    assert {r["day"] for r in rows} == {TODAY}
    assert {r["signal"] for r in rows} <= {"buy", "sell", "hold"}
    assert all(0.0 <= r["strength"] <= 1.0 for r in rows)
    assert result["rows"] == len(rows)
    assert result["buy"] + result["sell"] + result["hold"] == len(rows)
    for signal in ("buy", "sell", "hold"):
        assert result[signal] == sum(r["signal"] == signal for r in rows)


def test_trading_signals_are_created_at_the_run_time_and_expire_ttl_sessions_after_the_day(
    ctx: JobContext,
) -> None:
    signals_after_indicators(ctx)

    rows = table(ctx, TradingSignal)
    assert rows
    assert {r["created_at"] for r in rows} == {ctx.as_of}
    # The expiry does not depend on when the run happened, so a re-run cannot revive or
    # extend a signal.
    assert {r["expires_at"] for r in rows} == {SIGNAL_EXPIRY}


def test_trading_signals_written_twice_are_the_same_rows(ctx: JobContext) -> None:
    first_result = signals_after_indicators(ctx)
    first = database(ctx)

    second_result = analytics.trading_signals(ctx, TradingSignalsParams(symbols=SIGNAL_SYMBOLS))

    assert second_result == first_result
    assert database(ctx) == first


def test_trading_signals_are_live_until_the_ttl_passes_then_expire_signals_retires_them(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    expiry = SIGNAL_EXPIRY
    pin_clock(monkeypatch, ctx, AS_OF)
    signals_after_indicators(ctx)
    assert {r["expired"] for r in table(ctx, TradingSignal)} == {False}

    pin_clock(monkeypatch, ctx, expiry - timedelta(microseconds=1))
    assert analytics.expire_signals(ctx, ExpireSignalsParams()) == {"expired": 0}

    pin_clock(monkeypatch, ctx, expiry)  # expires_at <= now: due at the instant itself
    expected = len(SIGNAL_SYMBOLS) * len(STRATEGIES)
    assert analytics.expire_signals(ctx, ExpireSignalsParams()) == {"expired": expected}
    assert {r["expired"] for r in table(ctx, TradingSignal)} == {True}


def test_trading_signals_made_after_their_expiry_are_stored_already_expired(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run enqueued at AS_OF but executed late (a backlog, a redelivery).
    pin_clock(monkeypatch, ctx, SIGNAL_EXPIRY)

    signals_after_indicators(ctx)

    assert {r["expired"] for r in table(ctx, TradingSignal)} == {True}
    assert analytics.expire_signals(ctx, ExpireSignalsParams()) == {"expired": 0}


def test_trading_signals_report_the_last_step_even_when_the_last_symbol_has_no_indicators(
    ctx: JobContext, progress: Progress
) -> None:
    analytics.technical_indicators(ctx, TechnicalIndicatorsParams(symbols=["AAPL"]))
    progress.clear()
    next_run = dataclasses.replace(ctx, _last_progress=0.0)  # a chain link gets a new context

    analytics.trading_signals(next_run, TradingSignalsParams(symbols=["AAPL", "MSFT"]))

    assert_progress_finished(progress, 2)


def add_signal(
    ctx: JobContext, symbol: str, expires_at: datetime, *, expired: bool = False
) -> None:
    with ctx.transaction() as session:
        session.add(
            TradingSignal(
                symbol=symbol,
                day=TODAY,
                strategy="rsi",
                signal="hold",
                strength=0.0,
                reason="test",
                created_at=expires_at - timedelta(hours=1),
                expires_at=expires_at,
                expired=expired,
                updated_at=AS_OF,
            )
        )


def test_expire_signals_flips_only_signals_past_their_expiry_and_returns_the_count(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    pin_clock(monkeypatch, ctx, now)
    add_signal(ctx, "DUE1", now - timedelta(hours=3))
    add_signal(ctx, "DUE2", now)
    add_signal(ctx, "LIVE", now + timedelta(seconds=1))
    add_signal(ctx, "OLD", now - timedelta(days=2), expired=True)

    assert analytics.expire_signals(ctx, ExpireSignalsParams()) == {"expired": 2}

    expired = {r["symbol"]: r["expired"] for r in table(ctx, TradingSignal)}
    assert expired == {"DUE1": True, "DUE2": True, "LIVE": False, "OLD": True}
    assert analytics.expire_signals(ctx, ExpireSignalsParams()) == {"expired": 0}


# --- cleanup -----------------------------------------------------------------------------

CLEANUP_NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def add_run(ctx: JobContext, run_id: str, state: RunState, finished_days_ago: float | None) -> None:
    started = CLEANUP_NOW - timedelta(days=60)
    finished = (
        None if finished_days_ago is None else CLEANUP_NOW - timedelta(days=finished_days_ago)
    )
    with ctx.transaction() as session:
        session.add(
            TaskRun(
                id=run_id,
                job="historical_prices",
                queue="daily",
                params={},
                state=state.value,
                attempts=1,
                enqueued_at=started,
                started_at=started,
                finished_at=finished,
                updated_at=finished or started,
            )
        )


def add_quote(ctx: JobContext, provider: SyntheticProvider, days_ago: float) -> None:
    quote = provider.quote("AAPL", CLEANUP_NOW - timedelta(days=days_ago))
    with ctx.transaction() as session:
        session.add(QuoteRow(**dataclasses.asdict(quote), updated_at=CLEANUP_NOW))


def add_article(ctx: JobContext, article_id: str, days_ago: float) -> None:
    with ctx.transaction() as session:
        session.add(
            NewsArticleRow(
                article_id=article_id,
                symbol="AAPL",
                published_at=CLEANUP_NOW - timedelta(days=days_ago),
                headline="h",
                summary="s",
                publisher="test",
                source="synthetic",
                url="https://example.invalid/" + article_id,
                sentiment=0.0,
                updated_at=CLEANUP_NOW,
            )
        )


@pytest.fixture
def aged_data(ctx: JobContext, provider: SyntheticProvider) -> None:
    """Rows on both sides of every retention (30 days ledger and quotes, 90 days news)."""
    add_run(ctx, "old-success", RunState.SUCCESS, 31)
    add_run(ctx, "old-failure", RunState.FAILURE, 45)
    add_run(ctx, "old-revoked", RunState.REVOKED, 31)
    add_run(ctx, "recent-success", RunState.SUCCESS, 29)
    add_run(ctx, "recent-failure", RunState.FAILURE, 10)
    add_run(ctx, "old-started", RunState.STARTED, None)
    add_run(ctx, "old-retry", RunState.RETRY, 59)  # unfinished, however old its timestamps
    add_quote(ctx, provider, 31)
    add_quote(ctx, provider, 29)
    add_article(ctx, "old-article", 91)
    add_article(ctx, "recent-article", 89)
    add_signal(ctx, "GONE", CLEANUP_NOW - timedelta(days=31), expired=True)
    add_signal(ctx, "KEPT", CLEANUP_NOW - timedelta(days=29), expired=True)
    add_signal(ctx, "UNFLAGGED", CLEANUP_NOW - timedelta(days=40), expired=False)


REMOVED = {
    "task_runs": 3,
    "quotes": 1,
    "news_articles": 1,
    "trading_signals": 1,
    "data_imports": 0,
}


@pytest.mark.usefixtures("aged_data")
def test_cleanup_deletes_finished_runs_quotes_news_and_expired_signals_past_retention(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch, progress: Progress
) -> None:
    pin_clock(monkeypatch, ctx, CLEANUP_NOW)

    result = operations.cleanup(ctx, CleanupParams())

    assert result == {"dry_run": False, "removed": REMOVED}
    assert {r["id"] for r in table(ctx, TaskRun)} == {
        "recent-success",
        "recent-failure",
        "old-started",
        "old-retry",
    }
    assert [r["ts"] for r in table(ctx, QuoteRow)] == [
        (CLEANUP_NOW - timedelta(days=29)).replace(second=0, microsecond=0)
    ]
    assert [r["article_id"] for r in table(ctx, NewsArticleRow)] == ["recent-article"]
    assert sorted(r["symbol"] for r in table(ctx, TradingSignal)) == ["KEPT", "UNFLAGGED"]
    assert_progress_finished(progress, len(REMOVED))
    assert operations.cleanup(ctx, CleanupParams()) == {
        "dry_run": False,
        "removed": dict.fromkeys(REMOVED, 0),
    }


@pytest.mark.usefixtures("aged_data")
def test_cleanup_dry_run_counts_what_would_go_and_deletes_nothing(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin_clock(monkeypatch, ctx, CLEANUP_NOW)
    before = database(ctx)

    result = operations.cleanup(ctx, CleanupParams(dry_run=True))

    assert result == {"dry_run": True, "removed": REMOVED}
    assert database(ctx) == before


@pytest.mark.usefixtures("aged_data")
def test_cleanup_ledger_retention_days_param_overrides_the_setting(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    pin_clock(monkeypatch, ctx, CLEANUP_NOW)

    result = operations.cleanup(ctx, CleanupParams(ledger_retention_days=7))

    assert result["removed"]["task_runs"] == 5
    assert {r["id"] for r in table(ctx, TaskRun)} == {"old-started", "old-retry"}


# --- portfolio_snapshot and portfolio_report -----------------------------------------------

HOLDINGS = {"AAPL": (10.0, 1500.0), "MSFT": (-5.0, 2000.0), "JPM": (2.5, 400.0)}


def add_portfolio(ctx: JobContext, name: str, holdings: dict[str, tuple[float, float]]) -> int:
    with ctx.transaction() as session:
        owner = Portfolio(name=name, created_at=AS_OF, updated_at=AS_OF)
        session.add(owner)
        session.flush()
        for symbol, (quantity, cost_basis) in holdings.items():
            session.add(
                Position(
                    portfolio_id=owner.id,
                    symbol=symbol,
                    quantity=quantity,
                    cost_basis=cost_basis,
                    updated_at=AS_OF,
                )
            )
        return owner.id


def closes_on_or_before(ctx: JobContext, symbol: str, day: date) -> tuple[DailyBarRow, float]:
    """The stored bar priced on (on or before ``day``) and the close before it."""
    last, previous = reversed(stored_window(ctx, symbol, day, 2))
    return last, previous.close


def test_portfolio_snapshot_values_positions_at_the_last_close_on_or_before_the_day(
    ctx: JobContext, provider: SyntheticProvider
) -> None:
    portfolio_id = add_portfolio(ctx, "core", HOLDINGS)
    sunday = date(2026, 11, 22)

    result = portfolio.portfolio_snapshot(
        ctx, PortfolioSnapshotParams(portfolio_ids=[portfolio_id], as_of=sunday)
    )

    assert result == {"as_of": sunday.isoformat(), "portfolios": 1}
    [snapshot] = table(ctx, PortfolioSnapshot)
    market_value = day_change = 0.0
    for symbol, (quantity, _) in HOLDINGS.items():
        bar, previous_close = closes_on_or_before(ctx, symbol, sunday)
        assert bar.day == TODAY  # Friday: the last session on or before Sunday
        assert bar.close == provider.daily_bars(symbol, TODAY, TODAY)[0].close
        market_value += quantity * bar.close
        day_change += quantity * (bar.close - previous_close)
    cost_basis = sum(cost for _, cost in HOLDINGS.values())
    assert snapshot["portfolio_id"] == portfolio_id
    assert snapshot["as_of"] == sunday
    assert snapshot["market_value"] == pytest.approx(market_value, rel=1e-12)
    assert snapshot["day_change"] == pytest.approx(day_change, rel=1e-12)
    assert snapshot["cost_basis"] == pytest.approx(cost_basis)
    assert snapshot["unrealized_pnl"] == pytest.approx(market_value - cost_basis, rel=1e-12)
    assert snapshot["positions_count"] == len(HOLDINGS)
    assert snapshot["details"]["unpriced"] == []


def test_portfolio_snapshot_prices_from_stored_bars_when_present(ctx: JobContext) -> None:
    portfolio_id = add_portfolio(ctx, "core", {"AAPL": (10.0, 1000.0)})
    imports.data_import(
        ctx,
        DataImportParams(
            dataset="daily_bars",
            content="symbol,date,open,high,low,close,volume\n"
            "AAPL,2026-11-19,100,101,99,100,1000\n"
            "AAPL,2026-11-20,100,111,99,110,1000\n"
            "AAPL,2026-11-23,110,999,99,999,1000\n",  # after the valuation day: ignored
        ),
    )

    portfolio.portfolio_snapshot(ctx, PortfolioSnapshotParams(portfolio_ids=[portfolio_id]))

    [snapshot] = table(ctx, PortfolioSnapshot)
    assert snapshot["as_of"] == TODAY
    assert snapshot["market_value"] == pytest.approx(1100.0)
    assert snapshot["day_change"] == pytest.approx(100.0)


def test_portfolio_snapshot_of_unknown_portfolio_ids_is_a_permanent_error(
    ctx: JobContext,
) -> None:
    known = add_portfolio(ctx, "core", HOLDINGS)

    with pytest.raises(PermanentJobError, match=r"unknown portfolio ids: \[9999\]"):
        portfolio.portfolio_snapshot(ctx, PortfolioSnapshotParams(portfolio_ids=[known, 9999]))

    assert count(ctx, PortfolioSnapshot) == 0


def test_portfolio_report_of_an_unknown_portfolio_is_a_permanent_error(ctx: JobContext) -> None:
    with pytest.raises(PermanentJobError, match="9999"):
        portfolio.portfolio_report(ctx, PortfolioReportParams(portfolio_id=9999))

    assert count(ctx, PortfolioReport) == 0


def test_portfolio_report_weights_sum_to_one_and_sectors_come_from_company_info(
    ctx: JobContext, provider: SyntheticProvider
) -> None:
    holdings = {"AAPL": (10.0, 1500.0), "MSFT": (5.0, 2000.0)}
    portfolio_id = add_portfolio(ctx, "core", holdings)
    company.company_info(ctx, CompanyInfoParams(symbols=["AAPL"]))  # MSFT has no profile
    aapl_sector = provider.company_profile("AAPL").sector
    assert aapl_sector != "Unclassified"

    result = portfolio.portfolio_report(ctx, PortfolioReportParams(portfolio_id=portfolio_id))

    [stored] = table(ctx, PortfolioReport)
    report = stored["report"]
    assert stored["portfolio_id"] == portfolio_id
    assert stored["as_of"] == TODAY
    assert stored["created_at"] == AS_OF
    assert sum(report["weights"].values()) == pytest.approx(1.0)
    assert set(report["weights"]) == set(holdings)
    assert report["sector_allocation"] == pytest.approx(
        {aapl_sector: report["weights"]["AAPL"], "Unclassified": report["weights"]["MSFT"]}
    )
    market_value = sum(
        quantity * closes_on_or_before(ctx, symbol, TODAY)[0].close
        for symbol, (quantity, _) in holdings.items()
    )
    assert report["market_value"] == pytest.approx(market_value, rel=1e-12)
    assert result == {
        "portfolio_id": portfolio_id,
        "as_of": TODAY.isoformat(),
        "market_value": report["market_value"],
    }


# --- data_import ---------------------------------------------------------------------------

BARS_CSV = (
    "symbol,date,open,high,low,close,volume\n"
    "AAPL,2026-11-18,100,105,99,104,1000\n"
    "aapl,2026-11-19,104,106,103,105.5,1200\n"
    "MSFT,2026-11-19,400,410,395,405,900\n"
)
BARS = [
    ("AAPL", date(2026, 11, 18), 104.0),
    ("AAPL", date(2026, 11, 19), 105.5),
    ("MSFT", date(2026, 11, 19), 405.0),
]


def bars_import(content: str) -> DataImportParams:
    return DataImportParams(dataset="daily_bars", content=content)


def positions_import(portfolio_name: str, content: str) -> DataImportParams:
    return DataImportParams(dataset="positions", content=content, portfolio=portfolio_name)


def holdings_of(ctx: JobContext, portfolio_name: str) -> dict[str, tuple[float, float]]:
    with ctx.sessions() as session:
        rows = session.execute(
            select(Position.symbol, Position.quantity, Position.cost_basis)
            .join(Portfolio, Portfolio.id == Position.portfolio_id)
            .where(Portfolio.name == portfolio_name)
        ).all()
    return {symbol: (quantity, cost) for symbol, quantity, cost in rows}


def assert_nothing_imported(ctx: JobContext) -> None:
    assert count(ctx, DailyBarRow) == 0
    assert count(ctx, Position) == 0
    assert count(ctx, DataImport) == 0


def test_data_import_of_daily_bars_writes_every_row_and_records_the_import(
    ctx: JobContext, progress: Progress
) -> None:
    result = imports.data_import(ctx, bars_import(BARS_CSV))

    checksum = hashlib.sha256(BARS_CSV.encode()).hexdigest()
    assert result == {"dataset": "daily_bars", "rows": 3, "checksum": checksum}
    bars = table(ctx, DailyBarRow)
    assert [(b["symbol"], b["day"], b["close"]) for b in bars] == BARS
    assert {b["source"] for b in bars} == {"import"}
    assert all(b["adj_close"] == b["close"] for b in bars)  # no adj_close column: = close
    assert table(ctx, DataImport) == [
        {
            "run_id": RUN_ID,
            "dataset": "daily_bars",
            "checksum": checksum,
            "filename": None,
            "rows": 3,
            "status": "imported",
            "created_at": AS_OF,
        }
    ]
    assert_progress_finished(progress, 3)


def test_data_import_of_the_same_content_twice_is_one_import_with_the_same_bars(
    ctx: JobContext,
) -> None:
    imports.data_import(ctx, bars_import(BARS_CSV))
    first = database(ctx)

    imports.data_import(ctx, bars_import(BARS_CSV))

    assert count(ctx, DataImport) == 1
    assert database(ctx) == first


def test_data_import_of_an_invalid_csv_names_row_and_column_and_writes_nothing(
    ctx: JobContext,
) -> None:
    invalid = BARS_CSV + "MSFT,2026-11-20,405,410,400,abc,800\n"  # row 5: close

    with pytest.raises(PermanentJobError) as raised:
        imports.data_import(ctx, bars_import(invalid))

    assert "row 5, column 'close'" in str(raised.value)
    assert_nothing_imported(ctx)


def test_data_import_of_positions_creates_the_portfolio_and_replaces_its_positions(
    ctx: JobContext,
) -> None:
    add_portfolio(ctx, "other", {"MSFT": (1.0, 300.0)})

    imports.data_import(
        ctx,
        positions_import("imported", "symbol,quantity,cost_basis\nAAPL,10,1500\nMSFT,5,2000\n"),
    )
    assert holdings_of(ctx, "imported") == {"AAPL": (10.0, 1500.0), "MSFT": (5.0, 2000.0)}

    imports.data_import(
        ctx, positions_import("imported", "symbol,quantity,cost_basis\nAAPL,12,1800\n")
    )

    assert holdings_of(ctx, "imported") == {"AAPL": (12.0, 1800.0)}  # MSFT left the file
    assert holdings_of(ctx, "other") == {"MSFT": (1.0, 300.0)}
    assert sorted(p["name"] for p in table(ctx, Portfolio)) == ["imported", "other"]
    assert count(ctx, DataImport) == 2


def test_data_import_reads_a_path_under_the_import_directory(
    ctx: JobContext, import_dir: Path
) -> None:
    (import_dir / "bars").mkdir()
    (import_dir / "bars" / "november.csv").write_text(BARS_CSV, encoding="utf-8")

    result = imports.data_import(
        ctx, DataImportParams(dataset="daily_bars", path="bars/november.csv")
    )

    assert result["rows"] == 3
    assert [(b["symbol"], b["day"], b["close"]) for b in table(ctx, DailyBarRow)] == BARS
    [record] = table(ctx, DataImport)
    assert record["filename"] == "bars/november.csv"
    assert record["checksum"] == hashlib.sha256(BARS_CSV.encode()).hexdigest()


@pytest.mark.parametrize("where", ["parent", "absolute", "symlink"])
def test_data_import_refuses_paths_outside_the_import_directory(
    ctx: JobContext, import_dir: Path, where: str
) -> None:
    outside = import_dir.parent / "outside.csv"
    outside.write_text(BARS_CSV, encoding="utf-8")
    (import_dir / "link.csv").symlink_to(outside)
    path = {"parent": "../outside.csv", "absolute": str(outside), "symlink": "link.csv"}[where]

    with pytest.raises(PermanentJobError, match="outside the import directory"):
        imports.data_import(ctx, DataImportParams(dataset="daily_bars", path=path))

    assert_nothing_imported(ctx)


def oversized_bars_csv(at_least: int) -> str:
    lines = ["symbol,date,open,high,low,close,volume"]
    day = date(2020, 1, 1)
    while sum(len(line) + 1 for line in lines) <= at_least:
        lines.append(f"AAPL,{day.isoformat()},100,105,99,104,1000")
        day += timedelta(days=1)
    return "\n".join(lines) + "\n"


def test_data_import_refuses_a_file_larger_than_import_max_bytes(
    ctx: JobContext, import_dir: Path
) -> None:
    small = dataclasses.replace(
        ctx, settings=ctx.settings.model_copy(update={"import_max_bytes": 1024})
    )
    big = oversized_bars_csv(1024)
    (import_dir / "big.csv").write_text(big, encoding="utf-8")

    with pytest.raises(PermanentJobError, match="larger than 1024 bytes"):
        imports.data_import(small, DataImportParams(dataset="daily_bars", path="big.csv"))
    with pytest.raises(PermanentJobError, match="larger than 1024 bytes"):
        imports.data_import(small, bars_import(big))

    assert_nothing_imported(ctx)
    imports.data_import(ctx, DataImportParams(dataset="daily_bars", path="big.csv"))  # default
    assert count(ctx, DailyBarRow) == big.count("\n") - 1


# --- health_check --------------------------------------------------------------------------


def test_health_check_queries_the_database(ctx: JobContext) -> None:
    result = operations.health_check(ctx, HealthCheckParams())

    assert result["database"] == "ok"
    assert (result["worker"], result["queue"]) == (ctx.worker, ctx.queue)


def test_health_check_without_check_database_does_not_touch_the_database(
    ctx: JobContext,
) -> None:
    # Port 1 on loopback: nothing listens, so any connection attempt fails at once.
    unreachable = create_db_engine(
        "postgresql+psycopg://nobody:nothing@127.0.0.1:1/none", poolclass=NullPool
    )
    broken = dataclasses.replace(ctx, sessions=session_factory(unreachable))

    assert (
        operations.health_check(broken, HealthCheckParams(check_database=False))["database"]
        == "skipped"
    )
    with pytest.raises(OperationalError):
        operations.health_check(broken, HealthCheckParams(check_database=True))


# --- rows match the provider's records --------------------------------------------------------

Expectation = Callable[[SyntheticProvider], list[dict[str, Any]]]


def per_symbol(fetch: Callable[[SyntheticProvider, str], list[Any]], **extra: Any) -> Expectation:
    return lambda p: [row for s in SYMBOLS for row in provider_rows(fetch(p, s), **extra)]


def transcripts(p: SyntheticProvider) -> list[dict[str, Any]]:
    out = []
    for symbol in SYMBOLS:
        reported = [
            r.fiscal_period for r in p.earnings(symbol, TODAY, 4) if r.eps_actual is not None
        ]
        transcript = p.earnings_transcript(symbol, max(reported))
        out += provider_rows([transcript], word_count=len(transcript.content.split()))
    return out


YEAR_AGO = TODAY - timedelta(days=365)
PROVIDER_RECORDS = [
    pytest.param(
        economy.economic_indicators,
        EconomicIndicatorsParams(series=["CPI", "GDP"], lookback_days=365),
        EconomicIndicatorRow,
        lambda p: provider_rows(
            p.economic_series("CPI", YEAR_AGO, TODAY) + p.economic_series("GDP", YEAR_AGO, TODAY)
        ),
        id="economic_indicators",
    ),
    pytest.param(
        calendar_events.economic_events,
        EconomicEventsParams(days_ahead=14),
        EconomicEventRow,
        lambda p: provider_rows(p.economic_events(TODAY, TODAY + timedelta(days=14))),
        id="economic_events",
    ),
    # With seed 0, JPM reports on TODAY + 67 days, MSFT on + 73, AAPL on + 82: the horizon
    # is inclusive and starts today.
    pytest.param(
        calendar_events.earnings_calendar,
        EarningsCalendarParams(days_ahead=73),
        EarningsCalendarRow,
        lambda p: provider_rows(
            p.earnings_calendar(list(SYMBOLS), TODAY, TODAY + timedelta(days=73))
        ),
        id="earnings_calendar-through-a-report-day",
    ),
    pytest.param(
        calendar_events.earnings_calendar,
        EarningsCalendarParams(days_ahead=72),
        EarningsCalendarRow,
        lambda p: provider_rows(
            p.earnings_calendar(list(SYMBOLS), TODAY, TODAY + timedelta(days=72))
        ),
        id="earnings_calendar-to-the-day-before-a-report",
    ),
    pytest.param(
        company.company_info,
        CompanyInfoParams(),
        CompanyInfo,
        lambda p: provider_rows([p.company_profile(s) for s in SYMBOLS]),
        id="company_info",
    ),
    pytest.param(
        company.fundamentals,
        FundamentalsParams(periods=6),
        FundamentalsRow,
        per_symbol(lambda p, s: p.fundamentals(s, TODAY, 6)),
        id="fundamentals",
    ),
    pytest.param(
        company.dividends,
        DividendsParams(lookback_days=365),
        DividendRow,
        per_symbol(lambda p, s: p.dividends(s, YEAR_AGO, TODAY)),
        id="dividends",
    ),
    pytest.param(
        company.earnings,
        EarningsParams(quarters=5),
        EarningsRow,
        per_symbol(lambda p, s: p.earnings(s, TODAY, 5)),
        id="earnings",
    ),
    pytest.param(
        market.options_chain,
        OptionsChainParams(expirations=2, strikes_per_side=3),
        OptionQuoteRow,
        per_symbol(lambda p, s: p.option_chain(s, AS_OF_MINUTE, 2, 3)),
        id="options_chain",
    ),
    pytest.param(
        market.historical_prices,
        HistoricalPricesParams(lookback_days=30),
        DailyBarRow,
        per_symbol(lambda p, s: p.daily_bars(s, TODAY - timedelta(days=30), TODAY)),
        id="historical_prices",
    ),
    pytest.param(
        news.news,
        NewsParams(lookback_hours=24, limit_per_symbol=20),
        NewsArticleRow,
        per_symbol(lambda p, s: p.news(s, AS_OF_MINUTE - timedelta(hours=24), AS_OF_MINUTE, 20)),
        id="news",
    ),
    pytest.param(
        company.earnings_transcripts,
        EarningsTranscriptsParams(),
        EarningsTranscriptRow,
        transcripts,
        id="earnings_transcripts",
    ),
]


#: Columns the provider fills that the job should not store as given (future releases).
NOT_COMPARED: dict[type[Base], set[str]] = {EconomicEventRow: {"actual"}}  # nulled if future


def without(columns: set[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in columns} for row in rows]


@pytest.mark.parametrize(("job", "params", "model", "expected"), PROVIDER_RECORDS)
def test_job_writes_the_providers_records_for_the_run(
    ctx: JobContext,
    provider: SyntheticProvider,
    progress: Progress,
    monkeypatch: pytest.MonkeyPatch,
    job: Callable[..., Any],
    params: JobParams,
    model: type[Base],
    expected: Expectation,
) -> None:
    ignored = NOT_COMPARED.get(model, set())
    want = without(ignored, by_key(model, expected(provider)))
    assert want, "the provider has no records for these inputs: the test would prove nothing"
    # Years away from AS_OF: a job reading the wall clock instead of ctx.as_of would show.
    pin_clock(monkeypatch, ctx, datetime(2031, 3, 3, 12, 0, tzinfo=UTC))

    job(ctx, params)

    got = without(ignored, table(ctx, model))
    assert [key_of(model, r) for r in got] == [key_of(model, r) for r in want]
    assert got == want
    assert progress
    assert progress[-1][0] == progress[-1][1]


def test_economic_events_leave_actual_empty_for_releases_after_the_run(ctx: JobContext) -> None:
    calendar_events.economic_events(ctx, EconomicEventsParams(days_ahead=14))

    upcoming = [r for r in table(ctx, EconomicEventRow) if r["scheduled_at"] > AS_OF]
    assert upcoming, "no upcoming release in the window: the test would prove nothing"
    assert [(r["name"], r["actual"]) for r in upcoming] == [(r["name"], None) for r in upcoming]


def test_end_of_day_jobs_run_during_a_session_stop_at_the_last_closed_session(
    ctx: JobContext,
) -> None:
    mid_session = dataclasses.replace(ctx, as_of=datetime(2026, 11, 20, 15, 0, tzinfo=UTC))
    result = market.historical_prices(
        mid_session, HistoricalPricesParams(symbols=["AAPL"], lookback_days=5)
    )
    assert result["end"] == "2026-11-19"  # Friday's session was still open at 10:00 ET
    assert max(r["day"] for r in table(ctx, DailyBarRow)) == date(2026, 11, 19)


def test_one_positions_file_imported_into_two_portfolios_is_two_imports(
    ctx: JobContext,
) -> None:
    content = "symbol,quantity,cost_basis\nAAPL,10,1500\n"
    for name in ("alpha", "beta"):
        imports.data_import(
            ctx, DataImportParams(dataset="positions", content=content, portfolio=name)
        )
    assert len(table(ctx, DataImport)) == 2
    assert len(table(ctx, Position)) == 2


def test_cleanup_prunes_import_records_past_their_retention(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    imports.data_import(ctx, bars_import(BARS_CSV))
    later = AS_OF + timedelta(days=ctx.settings.import_retention_days + 1)
    pin_clock(monkeypatch, ctx, later)

    assert operations.cleanup(ctx, CleanupParams(dry_run=True))["removed"]["data_imports"] == 1
    assert count(ctx, DataImport) == 1
    assert operations.cleanup(ctx, CleanupParams())["removed"]["data_imports"] == 1
    assert count(ctx, DataImport) == 0
    assert count(ctx, DailyBarRow) == len(BARS)  # the imported data stays
