"""Portfolio valuation (daily snapshot) and on-demand reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketq.common.db.models import (
    CompanyInfo,
    DailyBarRow,
    Portfolio,
    PortfolioReport,
    PortfolioSnapshot,
    Position,
)
from marketq.common.params import PortfolioReportParams, PortfolioSnapshotParams
from marketq.worker.context import JobContext
from marketq.worker.errors import PermanentJobError
from marketq.worker.jobs._rows import as_rows, write
from marketq.worker.registry import JobResult, implements

PRICE_LOOKBACK_DAYS = 14  # covers the longest run of market holidays and weekends


@dataclass(frozen=True)
class Valuation:
    close: float
    previous_close: float
    priced_on: date


def _prices(ctx: JobContext, session: Session, symbol: str, day: date) -> Valuation | None:
    """Close on or before `day` and the close before it, from stored bars or the provider."""
    start = day - timedelta(days=PRICE_LOOKBACK_DAYS)
    query = (
        select(DailyBarRow.day, DailyBarRow.close)
        .where(DailyBarRow.symbol == symbol, DailyBarRow.day <= day, DailyBarRow.day >= start)
        .order_by(DailyBarRow.day.desc())
        .limit(2)
    )
    rows = session.execute(query).all()
    if len(rows) < 2:
        bars = ctx.provider.daily_bars(symbol, start, day)
        write(session, DailyBarRow, as_rows(bars))
        rows = session.execute(query).all()
    if not rows:
        return None
    previous = rows[1].close if len(rows) > 1 else rows[0].close
    return Valuation(close=rows[0].close, previous_close=previous, priced_on=rows[0].day)


def value_portfolio(
    ctx: JobContext, session: Session, portfolio: Portfolio, day: date
) -> dict[str, Any]:
    positions = session.scalars(
        select(Position).where(Position.portfolio_id == portfolio.id).order_by(Position.symbol)
    ).all()
    holdings = []
    for position in positions[: ctx.settings.portfolio_symbols_limit]:
        valuation = _prices(ctx, session, position.symbol, day)
        if valuation is None:
            holdings.append(
                {
                    "symbol": position.symbol,
                    "quantity": position.quantity,
                    "cost_basis": position.cost_basis,
                    "priced": False,
                }
            )
            continue
        value = position.quantity * valuation.close
        holdings.append(
            {
                "symbol": position.symbol,
                "quantity": position.quantity,
                "close": valuation.close,
                "priced_on": valuation.priced_on.isoformat(),
                "market_value": value,
                "cost_basis": position.cost_basis,
                "unrealized_pnl": value - position.cost_basis,
                "day_change": position.quantity * (valuation.close - valuation.previous_close),
                "priced": True,
            }
        )
    priced = [h for h in holdings if h["priced"]]
    return {
        "portfolio_id": portfolio.id,
        "as_of": day,
        "market_value": sum(h["market_value"] for h in priced),
        "cost_basis": sum(h["cost_basis"] for h in holdings),
        "unrealized_pnl": sum(h["unrealized_pnl"] for h in priced),
        "day_change": sum(h["day_change"] for h in priced),
        "positions_count": len(holdings),
        "details": {
            "positions": holdings,
            "unpriced": [h["symbol"] for h in holdings if not h["priced"]],
        },
    }


@implements("portfolio_snapshot")
def portfolio_snapshot(ctx: JobContext, params: PortfolioSnapshotParams) -> JobResult:
    day = params.as_of or ctx.last_session
    with ctx.transaction() as session:
        query = select(Portfolio).order_by(Portfolio.id)
        if params.portfolio_ids:
            query = query.where(Portfolio.id.in_(params.portfolio_ids))
        portfolios = session.scalars(query).all()
    if params.portfolio_ids:
        missing = sorted(set(params.portfolio_ids) - {p.id for p in portfolios})
        if missing:
            raise PermanentJobError(f"unknown portfolio ids: {missing}")
    for done, portfolio in enumerate(portfolios, start=1):
        with ctx.transaction() as session:
            snapshot = value_portfolio(ctx, session, portfolio, day)
            write(session, PortfolioSnapshot, [snapshot])
        ctx.progress(done, len(portfolios))
    return {"as_of": day.isoformat(), "portfolios": len(portfolios)}


@implements("portfolio_report")
def portfolio_report(ctx: JobContext, params: PortfolioReportParams) -> JobResult:
    day = params.as_of or ctx.last_session
    with ctx.transaction() as session:
        portfolio = session.get(Portfolio, params.portfolio_id)
        if portfolio is None:
            raise PermanentJobError(f"portfolio_id: no portfolio with id {params.portfolio_id}")
        current = value_portfolio(ctx, session, portfolio, day)
        history = session.execute(
            select(PortfolioSnapshot.as_of, PortfolioSnapshot.market_value)
            .where(
                PortfolioSnapshot.portfolio_id == portfolio.id,
                PortfolioSnapshot.as_of <= day,
                PortfolioSnapshot.as_of >= day - timedelta(days=365),
            )
            .order_by(PortfolioSnapshot.as_of)
        ).all()
        positions = [h for h in current["details"]["positions"] if h["priced"]]
        sectors = dict(
            session.execute(
                select(CompanyInfo.symbol, CompanyInfo.sector).where(
                    CompanyInfo.symbol.in_([h["symbol"] for h in positions])
                )
            ).all()
        )
        total = current["market_value"] or 0.0
        allocation: dict[str, float] = {}
        for holding in positions:
            sector = sectors.get(holding["symbol"], "Unclassified")
            weight = holding["market_value"] / total if total else 0.0
            allocation[sector] = allocation.get(sector, 0.0) + weight
        ranked = sorted(positions, key=lambda h: h["unrealized_pnl"])
        report = {
            "portfolio": portfolio.name,
            "base_currency": portfolio.base_currency,
            "as_of": day.isoformat(),
            "market_value": total,
            "cost_basis": current["cost_basis"],
            "unrealized_pnl": current["unrealized_pnl"],
            "return_pct": (current["unrealized_pnl"] / current["cost_basis"] * 100)
            if current["cost_basis"]
            else None,
            "day_change": current["day_change"],
            "sector_allocation": dict(sorted(allocation.items())),
            "weights": {
                h["symbol"]: h["market_value"] / total if total else 0.0 for h in positions
            },
            "top_gainers": [h["symbol"] for h in reversed(ranked[-3:])],
            "top_losers": [h["symbol"] for h in ranked[:3]],
            "history": [{"as_of": d.isoformat(), "market_value": v} for d, v in history],
            "unpriced": current["details"]["unpriced"],
        }
        write(
            session,
            PortfolioReport,
            [
                {
                    "portfolio_id": portfolio.id,
                    "as_of": day,
                    "report": report,
                    "created_at": ctx.as_of,
                }
            ],
        )
    return {"portfolio_id": portfolio.id, "as_of": day.isoformat(), "market_value": total}
