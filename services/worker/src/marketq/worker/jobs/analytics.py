"""Derived data: technical indicators, trading signals and their expiry (daily chain)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from marketq.common.db.models import DailyBarRow, TechnicalIndicatorRow, TradingSignal
from marketq.common.params import (
    ExpireSignalsParams,
    TechnicalIndicatorsParams,
    TradingSignalsParams,
)
from marketq.worker.analytics.indicators import INDICATOR_COLUMNS, compute_indicators
from marketq.worker.analytics.signals import derive_signals
from marketq.worker.context import JobContext
from marketq.worker.jobs._rows import as_rows, write
from marketq.worker.registry import JobResult, implements


# Calendar days that hold at least `n` sessions: 252 sessions a year, with slack for holidays.
def _calendar_days_for(sessions: int) -> int:
    return math.ceil(sessions * 365 / 245) + 10


def _stored_bars(session: Session, symbol: str, until: date, limit: int) -> pd.DataFrame:
    rows = session.execute(
        select(DailyBarRow.day, DailyBarRow.close)
        .where(DailyBarRow.symbol == symbol, DailyBarRow.day <= until)
        .order_by(DailyBarRow.day.desc())
        .limit(limit)
    ).all()
    return pd.DataFrame(rows, columns=["day", "close"]).iloc[::-1].reset_index(drop=True)


def _ensure_history(ctx: JobContext, symbol: str, until: date, sessions: int) -> pd.DataFrame:
    """The last `sessions` stored bars, back-filled from the provider when too few are stored."""
    with ctx.transaction() as session:
        bars = _stored_bars(session, symbol, until, sessions)
        if len(bars) >= sessions:
            return bars
        start = until - timedelta(days=_calendar_days_for(sessions))
        fetched = ctx.provider.daily_bars(symbol, start, until)
        write(session, DailyBarRow, as_rows(fetched, source=ctx.provider.name))
        return _stored_bars(session, symbol, until, sessions)


def _none_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


@implements("technical_indicators")
def technical_indicators(ctx: JobContext, params: TechnicalIndicatorsParams) -> JobResult:
    as_of = params.as_of or ctx.last_session
    symbols = ctx.symbols(params.symbols)
    total = 0
    for done, symbol in enumerate(symbols, start=1):
        bars = _ensure_history(ctx, symbol, as_of, params.window_days)
        if bars.empty:
            ctx.progress(done, len(symbols))
            continue
        frame = compute_indicators(bars)
        rows = [
            {
                "symbol": symbol,
                "day": record["day"],
                **{c: _none_if_nan(float(record[c])) for c in INDICATOR_COLUMNS},
            }
            for record in frame.to_dict("records")
            if any(not math.isnan(float(record[c])) for c in INDICATOR_COLUMNS)
        ]
        with ctx.transaction() as session:
            total += write(session, TechnicalIndicatorRow, rows)
        ctx.progress(done, len(symbols))
    return {"as_of": as_of.isoformat(), "symbols": len(symbols), "rows": total}


def _close_of(ctx: JobContext, day: date) -> datetime:
    session = ctx.calendar.session(day)
    if session is not None:
        return session.close
    return datetime.combine(day, time.min, tzinfo=UTC)


def _indicator_frame(session: Session, symbol: str, until: date) -> pd.DataFrame:
    rows = session.scalars(
        select(TechnicalIndicatorRow)
        .where(TechnicalIndicatorRow.symbol == symbol, TechnicalIndicatorRow.day <= until)
        .order_by(TechnicalIndicatorRow.day.desc())
        .limit(2)
    ).all()
    return pd.DataFrame(
        [{"day": r.day, **{c: getattr(r, c) for c in INDICATOR_COLUMNS}} for r in rows],
        columns=["day", *INDICATOR_COLUMNS],
    ).astype({c: "float64" for c in INDICATOR_COLUMNS})


@implements("trading_signals")
def trading_signals(ctx: JobContext, params: TradingSignalsParams) -> JobResult:
    as_of = params.as_of or ctx.last_session
    symbols = ctx.symbols(params.symbols)
    created_at = ctx.as_of
    ttl = timedelta(hours=ctx.settings.signal_ttl_hours)
    rows: list[dict[str, Any]] = []
    counts = {"buy": 0, "sell": 0, "hold": 0}
    with ctx.transaction() as session:
        for done, symbol in enumerate(symbols, start=1):
            indicators = _indicator_frame(session, symbol, as_of)
            if indicators.empty:
                ctx.progress(done, len(symbols))
                continue
            day = indicators["day"].max()
            # Expiry counts from the close of the day signalled, so a re-run at another
            # time gives the same expiry.
            expires_at = _close_of(ctx, day) + ttl
            closes = _stored_bars(session, symbol, day, 20)
            for decision in derive_signals(indicators, closes, day):
                counts[decision.signal] += 1
                rows.append(
                    {
                        "symbol": symbol,
                        "day": day,
                        "strategy": decision.strategy,
                        "signal": decision.signal,
                        "strength": decision.strength,
                        "reason": decision.reason,
                        "created_at": created_at,
                        "expires_at": expires_at,
                        "expired": expires_at <= ctx.now(),
                    }
                )
            ctx.progress(done, len(symbols))
        written = write(session, TradingSignal, rows)
    return {"as_of": as_of.isoformat(), "rows": written, **counts}


@implements("expire_signals")
def expire_signals(ctx: JobContext, params: ExpireSignalsParams) -> JobResult:
    with ctx.transaction() as session:
        result = session.execute(
            update(TradingSignal)
            .where(TradingSignal.expired.is_(False), TradingSignal.expires_at <= ctx.now())
            .values(expired=True, updated_at=ctx.now())
        )
    return {"expired": result.rowcount or 0}  # type: ignore[attr-defined]
