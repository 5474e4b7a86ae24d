"""Indicator history and signals over many simulated days (issue 13, defects 1-3).

Each simulated day runs the daily chain the way beat would, 30 minutes after the close:
``historical_prices`` → ``technical_indicators`` → ``trading_signals``, in-process on a
real migrated database, with the run's time (and the wall clock the jobs read) set to
that moment. After every day the stored indicator history must equal a from-scratch
computation over every stored bar, values once stored must never change or vanish, and
the day's signals must still be live at the next session's open.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from marketq.common.db.engine import create_db_engine
from marketq.common.db.models import DailyBarRow, TechnicalIndicatorRow, TradingSignal
from marketq.common.params import (
    HistoricalPricesParams,
    TechnicalIndicatorsParams,
    TradingSignalsParams,
)
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.settings import Settings
from marketq.providers import SyntheticProvider
from marketq.providers.base import DailyBar
from marketq.worker.analytics.indicators import INDICATOR_COLUMNS, compute_indicators
from marketq.worker.context import JobContext
from marketq.worker.jobs import analytics, market
from tests.support.job_context import job_context

SYMBOLS = ("AAPL", "MSFT")
AFTER_CLOSE = timedelta(minutes=30)


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar("XNYS")


@pytest.fixture(scope="module")
def provider(calendar: MarketCalendar) -> SyntheticProvider:
    return SyntheticProvider(seed=0, calendar=calendar)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, symbols=SYMBOLS, import_dir=str(tmp_path))


class DailyChain:
    """The daily chain on a simulated clock."""

    def __init__(
        self,
        engine: Engine,
        calendar: MarketCalendar,
        provider: Any,
        settings: Settings,
    ) -> None:
        self.engine = engine
        self.calendar = calendar
        self.provider = provider
        self.settings = settings

    def context(self, day: date) -> JobContext:
        session = self.calendar.session(day)
        assert session is not None, day
        return job_context(
            self.engine,
            as_of=session.close + AFTER_CLOSE,
            provider=self.provider,
            calendar=self.calendar,
            settings=self.settings,
        )

    def run(self, day: date, *, lookback_days: int = 7) -> tuple[JobResult, JobResult]:
        ctx = self.context(day)
        market.historical_prices(ctx, HistoricalPricesParams(lookback_days=lookback_days))
        indicators = analytics.technical_indicators(ctx, TechnicalIndicatorsParams())
        signals = analytics.trading_signals(ctx, TradingSignalsParams())
        return indicators, signals


JobResult = dict[str, Any]


def stored_bars(engine: Engine, symbol: str) -> pd.DataFrame:
    with engine.connect() as connection:
        rows = connection.execute(
            select(DailyBarRow.day, DailyBarRow.close)
            .where(DailyBarRow.symbol == symbol)
            .order_by(DailyBarRow.day)
        ).all()
    return pd.DataFrame(rows, columns=["day", "close"])


def stored_indicators(engine: Engine, symbol: str) -> dict[date, dict[str, float | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(TechnicalIndicatorRow).where(TechnicalIndicatorRow.symbol == symbol)
        ).all()
    return {r.day: {c: getattr(r, c) for c in INDICATOR_COLUMNS} for r in rows}


def from_scratch(engine: Engine, symbol: str) -> dict[date, dict[str, float | None]]:
    """Every indicator recomputed over the symbol's whole stored history."""
    frame = compute_indicators(stored_bars(engine, symbol))
    expected = {}
    for record in frame.to_dict("records"):
        values = {c: None if np.isnan(record[c]) else float(record[c]) for c in INDICATOR_COLUMNS}
        if any(v is not None for v in values.values()):
            expected[record["day"]] = values
    return expected


def assert_history_is_a_from_scratch_computation(engine: Engine) -> None:
    for symbol in SYMBOLS:
        stored = stored_indicators(engine, symbol)
        expected = from_scratch(engine, symbol)
        assert stored.keys() == expected.keys(), symbol
        for day, values in expected.items():
            nulls = {c for c, v in values.items() if v is None}
            assert {c for c, v in stored[day].items() if v is None} == nulls, (symbol, day)
            computed = {c: v for c, v in values.items() if v is not None}
            kept = {c: stored[day][c] for c in computed}
            assert kept == pytest.approx(computed, rel=1e-12, abs=1e-12), (symbol, day)


def assert_no_stored_value_changed(
    before: dict[str, dict[date, dict[str, float | None]]], engine: Engine
) -> None:
    for symbol, rows in before.items():
        now = stored_indicators(engine, symbol)
        for day, values in rows.items():
            for column, value in values.items():
                if value is not None:
                    assert now[day][column] == value, (symbol, day, column)


def test_indicator_history_stays_a_full_recomputation_and_never_changes_over_daily_runs(
    engine: Engine, calendar: MarketCalendar, provider: SyntheticProvider, settings: Settings
) -> None:
    chain = DailyChain(engine, calendar, provider, settings)
    days = calendar.session_days(date(2026, 9, 1), date(2026, 9, 9))  # over Labor Day
    chain.run(days[0], lookback_days=400)  # a first install: some history, then daily runs
    assert_history_is_a_from_scratch_computation(engine)
    for day in days[1:]:
        before = {s: stored_indicators(engine, s) for s in SYMBOLS}
        chain.run(day)
        assert_history_is_a_from_scratch_computation(engine)
        assert_no_stored_value_changed(before, engine)
        # sma_200 exists on every day that has 200 bars behind it, not on the last ~51.
        for symbol in SYMBOLS:
            bars = stored_bars(engine, symbol)
            with_sma_200 = [d for d, v in stored_indicators(engine, symbol).items() if v["sma_200"]]
            assert len(with_sma_200) == len(bars) - 199


def test_a_stored_value_is_never_overwritten_with_null(
    engine: Engine, calendar: MarketCalendar, provider: SyntheticProvider, settings: Settings
) -> None:
    chain = DailyChain(engine, calendar, provider, settings)
    chain.run(date(2026, 9, 1), lookback_days=400)
    before = {s: stored_indicators(engine, s) for s in SYMBOLS}
    # The oldest bars are pruned: a recomputation now lacks the warm-up of the old rows.
    with engine.begin() as connection:
        connection.execute(delete(DailyBarRow).where(DailyBarRow.day < date(2025, 12, 1)))
    chain.run(date(2026, 9, 2))
    # The recomputation starts from another first bar, so values may change (they follow
    # the stored history); a value the new warm-up cannot compute must not become NULL.
    for symbol, rows in before.items():
        now = stored_indicators(engine, symbol)
        for day, values in rows.items():
            kept = [c for c, v in values.items() if v is not None]
            assert [c for c in kept if now[day][c] is None] == [], (symbol, day)


def test_a_corrected_past_bar_is_followed_by_the_indicator_history(
    engine: Engine, calendar: MarketCalendar, provider: SyntheticProvider, settings: Settings
) -> None:
    """A later delivery that changes stored bars (a vendor correction, a back-fill) makes
    the next run rewrite every indicator row that depends on them, and only those."""
    chain = DailyChain(engine, calendar, provider, settings)
    chain.run(date(2026, 9, 1), lookback_days=400)
    corrected = date(2026, 3, 2)
    with engine.begin() as connection:
        connection.execute(
            update(DailyBarRow)
            .where(DailyBarRow.symbol == "AAPL", DailyBarRow.day == corrected)
            .values(close=DailyBarRow.close * 1.05)
        )
    before = stored_indicators(engine, "AAPL")

    chain.run(date(2026, 9, 2))

    assert_history_is_a_from_scratch_computation(engine)
    after = stored_indicators(engine, "AAPL")
    assert all(after[day] == before[day] for day in before if day < corrected)
    assert after[corrected] != before[corrected]


# --- signal expiry in exchange sessions ---------------------------------------------------


@pytest.mark.parametrize(
    ("signal_day", "next_session"),
    [
        (date(2026, 11, 20), date(2026, 11, 23)),  # a Friday: the next open is Monday's
        (date(2026, 11, 25), date(2026, 11, 27)),  # Thanksgiving eve: Friday, closing early
        (date(2026, 12, 24), date(2026, 12, 28)),  # Christmas Eve: across the holiday
        (date(2026, 7, 2), date(2026, 7, 6)),  # before the 3 July holiday and a weekend
    ],
)
def test_signals_are_live_at_the_next_open_and_expire_at_the_next_sessions_close(
    engine: Engine,
    calendar: MarketCalendar,
    provider: SyntheticProvider,
    settings: Settings,
    signal_day: date,
    next_session: date,
) -> None:
    chain = DailyChain(engine, calendar, provider, settings)
    chain.run(signal_day, lookback_days=60)
    with engine.connect() as connection:
        rows = connection.execute(select(TradingSignal)).all()
    assert rows
    following = calendar.session(next_session)
    assert following is not None
    assert {r.day for r in rows} == {signal_day}
    assert {r.expires_at.replace(tzinfo=UTC) for r in rows} == {following.close}
    assert all(r.expires_at.replace(tzinfo=UTC) > following.open for r in rows)


def test_signal_ttl_sessions_counts_exchange_sessions(
    engine: Engine, calendar: MarketCalendar, provider: SyntheticProvider, settings: Settings
) -> None:
    longer = settings.model_copy(update={"signal_ttl_sessions": 3})
    chain = DailyChain(engine, calendar, provider, longer)
    chain.run(date(2026, 11, 25), lookback_days=60)  # Wed; then Fri 27, Mon 30, Tue 1 Dec
    with engine.connect() as connection:
        expiries = {
            r.expires_at.replace(tzinfo=UTC) for r in connection.execute(select(TradingSignal))
        }
    third = calendar.session(date(2026, 12, 1))
    assert third is not None
    assert expiries == {third.close}


# --- a missing latest bar -----------------------------------------------------------------


class LaggingProvider(SyntheticProvider):
    """A vendor that has not published bars after ``published_until`` yet."""

    def __init__(self, published_until: date, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.published_until = published_until

    def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        return super().daily_bars(symbol, start, min(end, self.published_until))


def stale_count(job_name: str) -> float:
    value = REGISTRY.get_sample_value("marketq_stale_results_total", {"job_name": job_name})
    return value or 0.0


def test_indicators_fetch_the_missing_latest_bars_before_computing(
    engine: Engine, calendar: MarketCalendar, provider: SyntheticProvider, settings: Settings
) -> None:
    chain = DailyChain(engine, calendar, provider, settings)
    chain.run(date(2026, 11, 18), lookback_days=400)
    ctx = chain.context(date(2026, 11, 20))  # historical_prices did not run on the 19th, 20th

    result = analytics.technical_indicators(ctx, TechnicalIndicatorsParams())

    assert "stale_as_of" not in result
    for symbol in SYMBOLS:
        assert max(stored_indicators(engine, symbol)) == date(2026, 11, 20)
    assert_history_is_a_from_scratch_computation(engine)


def test_a_bar_the_vendor_lacks_makes_a_stale_result_not_a_relabelled_one(
    engine: Engine, calendar: MarketCalendar, settings: Settings
) -> None:
    lagging = LaggingProvider(date(2026, 11, 19), seed=0, calendar=calendar)
    chain = DailyChain(engine, calendar, lagging, settings)
    chain.run(date(2026, 11, 18), lookback_days=400)
    indicators_before = stale_count("technical_indicators")
    signals_before = stale_count("trading_signals")

    indicators, signals = chain.run(date(2026, 11, 20))

    for result in (indicators, signals):
        assert result["as_of"] == "2026-11-20"
        assert result["stale_as_of"] == {s: "2026-11-19" for s in SYMBOLS}
        assert "2026-11-20" in result["warnings"][0] and "2026-11-19" in result["warnings"][0]
    assert stale_count("technical_indicators") == indicators_before + len(SYMBOLS)
    assert stale_count("trading_signals") == signals_before + len(SYMBOLS)
    with engine.connect() as connection:
        signal_days = set(connection.execute(select(TradingSignal.day)).scalars())
    assert date(2026, 11, 20) not in signal_days  # nothing is labelled with the missing day
    for symbol in SYMBOLS:
        assert max(stored_indicators(engine, symbol)) == date(2026, 11, 19)


# --- a year of daily runs -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_year_of_daily_runs_keeps_history_exact_and_a_signal_live_at_every_next_open(
    engine: Engine, calendar: MarketCalendar, provider: SyntheticProvider, settings: Settings
) -> None:
    chain = DailyChain(engine, calendar, provider, settings)
    # Calendar 2025: every holiday kind (Good Friday, Juneteenth, 3 July early close,
    # Thanksgiving and its Friday, Christmas Eve), both DST switches.
    days = calendar.session_days(date(2025, 1, 2), date(2025, 12, 31))
    for day in days:
        before = {s: stored_indicators(engine, s) for s in SYMBOLS}
        indicators, signals = chain.run(day)
        assert "stale_as_of" not in indicators and "stale_as_of" not in signals, day
        assert_no_stored_value_changed(before, engine)
        next_open = calendar.session(calendar.next_session(day))
        assert next_open is not None
        with engine.connect() as connection:
            live = connection.execute(
                select(TradingSignal.symbol).where(
                    TradingSignal.day == day,
                    TradingSignal.expires_at > next_open.open,
                )
            ).scalars()
            assert set(live) == set(SYMBOLS), day
        if day.month != (day + timedelta(days=7)).month:  # a full check once a month
            assert_history_is_a_from_scratch_computation(engine)
    assert_history_is_a_from_scratch_computation(engine)
