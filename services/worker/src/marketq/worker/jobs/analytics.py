"""Derived data: technical indicators, trading signals and their expiry (daily chain)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
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
from marketq.worker.data_quality import STALE_RESULTS
from marketq.worker.jobs._rows import as_rows, write
from marketq.worker.registry import JobResult, implements


# Calendar days that hold at least `n` sessions: 252 sessions a year, with slack for holidays.
def _calendar_days_for(sessions: int) -> int:
    return math.ceil(sessions * 365 / 245) + 10


#: Bars before the longest indicator (sma_200) has its first value.
WARM_UP_SESSIONS = 199


def _stored_bars(
    session: Session, symbol: str, until: date, limit: int | None = None
) -> pd.DataFrame:
    """The symbol's stored closes up to ``until``, oldest first (the last ``limit`` only,
    when given)."""
    query = (
        select(DailyBarRow.day, DailyBarRow.close)
        .where(DailyBarRow.symbol == symbol, DailyBarRow.day <= until)
        .order_by(DailyBarRow.day.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    rows = session.execute(query).all()
    return pd.DataFrame(rows, columns=["day", "close"]).iloc[::-1].reset_index(drop=True)


def _ensure_history(ctx: JobContext, symbol: str, until: date, sessions: int) -> pd.DataFrame:
    """Every stored bar up to ``until``, after fetching what is missing from the provider:
    the bars after the latest stored one (a skipped or failed ``historical_prices`` run),
    and older ones when fewer than ``sessions`` are stored."""
    expected_last = ctx.calendar.session_on_or_before(until)
    with ctx.transaction() as session:
        bars = _stored_bars(session, symbol, until)
        if len(bars) < sessions:
            start = until - timedelta(days=_calendar_days_for(sessions))
        elif bars["day"].iloc[-1] < expected_last:
            start = bars["day"].iloc[-1] + timedelta(days=1)
        else:
            return bars
        fetched = ctx.provider.daily_bars(symbol, start, until)
        # Fill gaps only: a stored bar (data_import, historical_prices) stays as written,
        # so the data does not depend on how often this message was delivered.
        write(session, DailyBarRow, as_rows(fetched), keep_existing=True)
        return _stored_bars(session, symbol, until)


def _stored_indicators(session: Session, symbol: str, until: date) -> dict[date, tuple[Any, ...]]:
    rows = session.execute(
        select(
            TechnicalIndicatorRow.day,
            *(getattr(TechnicalIndicatorRow, c) for c in INDICATOR_COLUMNS),
        ).where(TechnicalIndicatorRow.symbol == symbol, TechnicalIndicatorRow.day <= until)
    ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def _computed_rows(symbol: str, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per day with any computed value, holding only its computed (non-``NaN``)
    columns: a value still warming up is left out, never written as NULL over a stored one."""
    rows = []
    for record in frame.to_dict("records"):
        values = {c: float(record[c]) for c in INDICATOR_COLUMNS if not math.isnan(record[c])}
        if values:
            rows.append({"symbol": symbol, "day": record["day"], **values})
    return rows


def _changed(
    rows: list[dict[str, Any]], stored: dict[date, tuple[Any, ...]]
) -> list[dict[str, Any]]:
    """The rows whose values differ from what is stored (usually just the new day's)."""
    changed = []
    for row in rows:
        before = stored.get(row["day"])
        if before is None or any(
            before[i] != row[c] for i, c in enumerate(INDICATOR_COLUMNS) if c in row
        ):
            changed.append(row)
    return changed


def _write_partial_rows(session: Session, rows: list[dict[str, Any]]) -> int:
    # One upsert per column set: a batch must supply the same columns on every row.
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    return sum(write(session, TechnicalIndicatorRow, group) for group in groups.values())


def _stale(
    ctx: JobContext, job_name: str, expected: date, latest: dict[str, date]
) -> dict[str, Any]:
    """The result fields (and the metric) for symbols whose data ends before ``expected``."""
    behind = {symbol: day for symbol, day in latest.items() if day < expected}
    if not behind:
        return {}
    STALE_RESULTS.labels(job_name).inc(len(behind))
    warnings = [
        f"{symbol}: no daily bar for {expected.isoformat()} from {ctx.provider.name}; "
        f"computed as of {day.isoformat()} instead"
        for symbol, day in sorted(behind.items())
    ]
    ctx.log.warning("%s: stale as of %s for %s", job_name, expected, ", ".join(sorted(behind)))
    return {
        "stale_as_of": {symbol: day.isoformat() for symbol, day in sorted(behind.items())},
        "warnings": warnings,
    }


@implements("technical_indicators")
def technical_indicators(ctx: JobContext, params: TechnicalIndicatorsParams) -> JobResult:
    """Indicators over each symbol's whole stored history (see docs/design.md#indicator-history):
    stored values equal a from-scratch computation and do not change from one day to the
    next; only rows whose values differ are written."""
    as_of = params.as_of or ctx.last_session
    expected = ctx.calendar.session_on_or_before(as_of)
    symbols = ctx.symbols(params.symbols)
    total = 0
    latest: dict[str, date] = {}
    for done, symbol in enumerate(symbols, start=1):
        bars = _ensure_history(ctx, symbol, as_of, params.window_days + WARM_UP_SESSIONS)
        if bars.empty:
            ctx.progress(done, len(symbols))
            continue
        latest[symbol] = bars["day"].iloc[-1]
        frame = compute_indicators(bars)
        rows = _computed_rows(symbol, frame)
        total += len(rows)
        with ctx.transaction() as session:
            stored = _stored_indicators(session, symbol, as_of)
            _write_partial_rows(session, _changed(rows, stored))
        ctx.progress(done, len(symbols))
    return {
        "as_of": as_of.isoformat(),
        "symbols": len(symbols),
        "rows": total,
        **_stale(ctx, "technical_indicators", expected, latest),
    }


def _expiry(ctx: JobContext, day: date) -> datetime:
    """The close of the ``signal_ttl_sessions``-th exchange session after ``day``."""
    expiry_day = day
    for _ in range(ctx.settings.signal_ttl_sessions):
        expiry_day = ctx.calendar.next_session(expiry_day)
    session = ctx.calendar.session(expiry_day)
    assert session is not None  # next_session returns sessions only
    return session.close


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
    expected = ctx.calendar.session_on_or_before(as_of)
    symbols = ctx.symbols(params.symbols)
    created_at = ctx.as_of
    rows: list[dict[str, Any]] = []
    counts = {"buy": 0, "sell": 0, "hold": 0}
    latest: dict[str, date] = {}
    with ctx.transaction() as session:
        for done, symbol in enumerate(symbols, start=1):
            indicators = _indicator_frame(session, symbol, as_of)
            if indicators.empty:
                ctx.progress(done, len(symbols))
                continue
            day = indicators["day"].max()
            latest[symbol] = day
            # Expiry counts sessions from the day signalled, so a re-run at another time
            # gives the same expiry, and a signal made after the close is live at the
            # next open whatever weekend or holiday lies between.
            expires_at = _expiry(ctx, day)
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
    return {
        "as_of": as_of.isoformat(),
        "rows": written,
        **counts,
        **_stale(ctx, "trading_signals", expected, latest),
    }


@implements("expire_signals")
def expire_signals(ctx: JobContext, params: ExpireSignalsParams) -> JobResult:
    with ctx.transaction() as session:
        result = session.execute(
            update(TradingSignal)
            .where(TradingSignal.expired.is_(False), TradingSignal.expires_at <= ctx.now())
            .values(expired=True, updated_at=ctx.now())
        )
    return {"expired": result.rowcount or 0}  # type: ignore[attr-defined]
