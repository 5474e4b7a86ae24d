"""Portfolio performance over a date range, and hourly intraday valuations."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketq.common.db.models import DailyBarRow, Portfolio, PortfolioIntradayValue, Position
from marketq.common.params import PortfolioIntradayParams, PortfolioPerformanceParams
from marketq.worker.analytics.performance import measure
from marketq.worker.context import JobContext
from marketq.worker.errors import PermanentJobError
from marketq.worker.jobs._rows import as_rows, write
from marketq.worker.registry import JobResult, implements

DEFAULT_DAYS = 365


def _closes(
    ctx: JobContext, session: Session, symbol: str, start: date, end: date, sessions: list[date]
) -> dict[date, float]:
    """Closes of ``symbol`` on ``sessions``: stored bars, fetched when some are missing,
    and carried forward over a day without a bar (a halt)."""
    query = select(DailyBarRow.day, DailyBarRow.close).where(
        DailyBarRow.symbol == symbol, DailyBarRow.day >= start, DailyBarRow.day <= end
    )
    stored: dict[date, float] = {day: close for day, close in session.execute(query)}
    if not set(sessions) <= stored.keys():
        fetched = ctx.provider.daily_bars(symbol, start, end)
        write(session, DailyBarRow, as_rows(fetched))
        stored = {day: close for day, close in session.execute(query)}
    if sessions[0] not in stored:
        raise PermanentJobError(f"{symbol}: no close on {sessions[0]}, the first session")
    closes: dict[date, float] = {}
    last = stored[sessions[0]]
    for day in sessions:
        last = stored.get(day, last)
        closes[day] = last
    return closes


def _range(ctx: JobContext, params: PortfolioPerformanceParams) -> tuple[date, date]:
    end = ctx.calendar.session_on_or_before(params.end or ctx.last_session)
    if params.start is not None:
        return ctx.calendar.session_on_or_after(params.start), end
    return ctx.calendar.session_on_or_after(end - timedelta(days=params.days or DEFAULT_DAYS)), end


@implements("portfolio_performance")
def portfolio_performance(ctx: JobContext, params: PortfolioPerformanceParams) -> JobResult:
    """The current holdings valued at every session close of the range (docs/jobs.md)."""
    start, end = _range(ctx, params)
    sessions = ctx.calendar.session_days(start, end)
    if len(sessions) < 2:
        raise PermanentJobError(f"the range {start}..{end} holds fewer than two sessions")
    benchmark = params.benchmark or ctx.settings.benchmark_symbol
    with ctx.transaction() as session:
        portfolio = session.get(Portfolio, params.portfolio_id)
        if portfolio is None:
            raise PermanentJobError(f"portfolio_id: no portfolio with id {params.portfolio_id}")
        positions = session.scalars(
            select(Position).where(Position.portfolio_id == portfolio.id).order_by(Position.symbol)
        ).all()
        if not positions:
            raise PermanentJobError(f"portfolio {portfolio.name!r} holds no positions")
        values = [0.0] * len(sessions)
        for position in positions:
            closes = _closes(ctx, session, position.symbol, start, end, sessions)
            for i, day in enumerate(sessions):
                values[i] += position.quantity * closes[day]
        index = _closes(ctx, session, benchmark, start, end, sessions)
        cost_basis = sum(position.cost_basis for position in positions)
    try:
        result = measure(values, [index[day] for day in sessions])
    except ValueError as exc:
        raise PermanentJobError(f"portfolio {portfolio.name!r}: {exc}") from None
    return {
        "portfolio_id": portfolio.id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "sessions": len(sessions),
        "benchmark": benchmark,
        "start_value": values[0],
        "end_value": values[-1],
        "unrealized_pnl": values[-1] - cost_basis,
        **asdict(result),
    }


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


@implements("portfolio_intraday")
def portfolio_intraday(ctx: JobContext, params: PortfolioIntradayParams) -> JobResult:
    at = _minute(params.as_of or ctx.as_of)
    with ctx.transaction() as session:
        query = select(Portfolio).order_by(Portfolio.id)
        if params.portfolio_ids:
            query = query.where(Portfolio.id.in_(params.portfolio_ids))
        portfolios = session.scalars(query).all()
    quotes: dict[str, Any] = {}
    for done, portfolio in enumerate(portfolios, start=1):
        with ctx.transaction() as session:
            positions = session.scalars(
                select(Position).where(Position.portfolio_id == portfolio.id)
            ).all()
            holdings = []
            for position in positions[: ctx.settings.portfolio_symbols_limit]:
                if position.symbol not in quotes:
                    quotes[position.symbol] = ctx.provider.quote(position.symbol, at)
                quote = quotes[position.symbol]
                holdings.append(
                    {
                        "symbol": position.symbol,
                        "quantity": position.quantity,
                        "price": quote.price,
                        "market_value": position.quantity * quote.price,
                        "day_change": position.quantity * quote.change,
                    }
                )
            write(
                session,
                PortfolioIntradayValue,
                [
                    {
                        "portfolio_id": portfolio.id,
                        "at": at,
                        "market_value": sum(h["market_value"] for h in holdings),
                        "day_change": sum(h["day_change"] for h in holdings),
                        "positions_count": len(holdings),
                        "details": {"positions": holdings},
                    }
                ],
            )
        ctx.progress(done, len(portfolios))
    return {"at": at.isoformat(), "portfolios": len(portfolios)}
