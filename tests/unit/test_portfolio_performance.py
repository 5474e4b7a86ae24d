"""portfolio_performance against a case worked out by hand, and portfolio_intraday."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from marketq.common.db.engine import create_db_engine
from marketq.common.db.models import DailyBarRow, Portfolio, PortfolioIntradayValue, Position
from marketq.common.params import PortfolioIntradayParams, PortfolioPerformanceParams
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.settings import Settings
from marketq.providers import SyntheticProvider
from marketq.worker.context import JobContext
from marketq.worker.errors import PermanentJobError
from marketq.worker.jobs import performance
from tests.support.job_context import job_context

AS_OF = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
DAYS = [date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 19)]
CLOSES = {
    "A": [100.0, 110.0, 99.0, 104.5],
    "B": [200.0, 190.0, 209.0, 200.0],
    "SPY": [500.0, 505.0, 500.0, 510.0],
}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def calendar() -> MarketCalendar:
    return MarketCalendar("XNYS")


@pytest.fixture
def ctx(engine: Engine, db_url: str, tmp_path: Path, calendar: MarketCalendar) -> JobContext:
    return job_context(
        engine,
        as_of=AS_OF,
        provider=SyntheticProvider(seed=0, calendar=calendar),
        calendar=calendar,
        settings=Settings(database_url=db_url, import_dir=str(tmp_path), benchmark_symbol="SPY"),
        job="portfolio_performance",
    )


def add_portfolio(engine: Engine, holdings: dict[str, tuple[float, float]]) -> int:
    with engine.begin() as connection:
        portfolio_id = connection.execute(
            Portfolio.__table__.insert()
            .values(name="p", base_currency="USD", created_at=AS_OF, updated_at=AS_OF)
            .returning(Portfolio.__table__.c.id)
        ).scalar_one()
        for symbol, (quantity, cost) in holdings.items():
            connection.execute(
                Position.__table__.insert().values(
                    portfolio_id=portfolio_id,
                    symbol=symbol,
                    quantity=quantity,
                    cost_basis=cost,
                    updated_at=AS_OF,
                )
            )
    return int(portfolio_id)


def add_bars(engine: Engine) -> None:
    with engine.begin() as connection:
        for symbol, closes in CLOSES.items():
            for day, close in zip(DAYS, closes, strict=True):
                connection.execute(
                    DailyBarRow.__table__.insert().values(
                        symbol=symbol,
                        day=day,
                        open=close,
                        high=close,
                        low=close,
                        close=close,
                        adj_close=close,
                        volume=1,
                        source="test",
                        updated_at=AS_OF,
                    )
                )


def test_performance_of_a_hand_computed_case(ctx: JobContext, engine: Engine) -> None:
    portfolio_id = add_portfolio(engine, {"A": (10, 900.0), "B": (5, 1000.0)})
    add_bars(engine)

    result = performance.portfolio_performance(
        ctx,
        PortfolioPerformanceParams(portfolio_id=portfolio_id, start=DAYS[0], end=DAYS[-1]),
    )

    # Values: 10 A + 5 B at each close = 2000, 2050, 2035, 2045.
    # Daily returns: +2.5 %, -15/2050, +10/2035. Chained: 2045/2000 - 1 = +2.25 %.
    returns = [0.025, -15 / 2050, 10 / 2035]
    mean = sum(returns) / 3
    sample_sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    assert result["sessions"] == 4 and result["benchmark"] == "SPY"
    assert result["start_value"] == 2000.0 and result["end_value"] == 2045.0
    assert result["time_weighted_return"] == pytest.approx(0.0225, abs=1e-15)
    assert result["pnl"] == pytest.approx(45.0, abs=1e-9)
    assert result["unrealized_pnl"] == pytest.approx(2045.0 - 1900.0, abs=1e-9)
    assert result["volatility"] == pytest.approx(sample_sd * math.sqrt(252), rel=1e-12)
    assert result["volatility"] == pytest.approx(0.25903, abs=5e-5)  # the hand figure
    assert result["max_drawdown"] == pytest.approx(15 / 2050, rel=1e-12)  # 2050 -> 2035
    assert result["benchmark_return"] == pytest.approx(0.02, abs=1e-15)  # 510/500 - 1
    assert result["relative_return"] == pytest.approx(0.0025, abs=1e-15)


def test_the_same_inputs_give_the_same_numbers(ctx: JobContext, engine: Engine) -> None:
    portfolio_id = add_portfolio(engine, {"A": (10, 900.0), "B": (5, 1000.0)})
    add_bars(engine)
    params = PortfolioPerformanceParams(portfolio_id=portfolio_id, start=DAYS[0], end=DAYS[-1])

    assert performance.portfolio_performance(ctx, params) == performance.portfolio_performance(
        ctx, params
    )


def test_days_count_back_from_the_last_session(ctx: JobContext, engine: Engine) -> None:
    portfolio_id = add_portfolio(engine, {"AAPL": (3, 300.0)})
    result = performance.portfolio_performance(
        ctx, PortfolioPerformanceParams(portfolio_id=portfolio_id, days=30)
    )
    assert result["end"] == "2026-11-20"  # the last session closed at the run time
    assert result["sessions"] >= 19


def test_unknown_or_empty_portfolios_are_permanent_errors(ctx: JobContext, engine: Engine) -> None:
    with pytest.raises(PermanentJobError, match="portfolio_id: no portfolio"):
        performance.portfolio_performance(ctx, PortfolioPerformanceParams(portfolio_id=99))
    empty = add_portfolio(engine, {})
    with pytest.raises(PermanentJobError, match="no positions"):
        performance.portfolio_performance(ctx, PortfolioPerformanceParams(portfolio_id=empty))


def test_params_take_days_or_a_start_not_both() -> None:
    with pytest.raises(ValueError, match="days or start"):
        PortfolioPerformanceParams(portfolio_id=1, days=30, start=date(2026, 1, 2))


def test_intraday_values_every_portfolio_at_the_quotes_of_the_minute(
    ctx: JobContext, engine: Engine
) -> None:
    portfolio_id = add_portfolio(engine, {"AAPL": (10, 1.0), "MSFT": (2, 1.0)})
    at = datetime(2026, 11, 20, 16, 0, 30, tzinfo=UTC)  # 11:00 New York, in session

    result = performance.portfolio_intraday(ctx, PortfolioIntradayParams(as_of=at))

    minute = at.replace(second=0)
    quotes = {s: ctx.provider.quote(s, minute) for s in ("AAPL", "MSFT")}
    with engine.connect() as connection:
        [row] = connection.execute(select(PortfolioIntradayValue)).all()
    assert result == {"at": minute.isoformat(), "portfolios": 1}
    assert row.portfolio_id == portfolio_id and row.at == minute
    assert row.market_value == pytest.approx(10 * quotes["AAPL"].price + 2 * quotes["MSFT"].price)
    assert row.day_change == pytest.approx(10 * quotes["AAPL"].change + 2 * quotes["MSFT"].change)
