"""Company data: statements, dividends, earnings, transcripts, profiles."""

from __future__ import annotations

from datetime import date, timedelta

from marketq.common.db.models import (
    CompanyInfo,
    DividendRow,
    EarningsRow,
    EarningsTranscriptRow,
    FundamentalsRow,
)
from marketq.common.params import (
    CompanyInfoParams,
    DividendsParams,
    EarningsParams,
    EarningsTranscriptsParams,
    FundamentalsParams,
)
from marketq.worker.context import JobContext
from marketq.worker.jobs._rows import as_rows, write
from marketq.worker.registry import JobResult, implements


@implements("fundamentals")
def fundamentals(ctx: JobContext, params: FundamentalsParams) -> JobResult:
    symbols = ctx.symbols(params.symbols)
    total = 0
    for symbol in ctx.each_symbol(symbols):
        with ctx.failed(symbol):
            statements = ctx.provider.fundamentals(symbol, ctx.today, params.periods)
            with ctx.transaction() as session:
                total += write(session, FundamentalsRow, as_rows(statements))
    return ctx.result(symbols=len(symbols), rows=total)


@implements("dividends")
def dividends(ctx: JobContext, params: DividendsParams) -> JobResult:
    end = ctx.today
    start = end - timedelta(days=params.lookback_days)
    symbols = ctx.symbols(params.symbols)
    total = 0
    for symbol in ctx.each_symbol(symbols):
        with ctx.failed(symbol):
            paid = ctx.provider.dividends(symbol, start, end)
            with ctx.transaction() as session:
                total += write(session, DividendRow, as_rows(paid))
    return ctx.result(symbols=len(symbols), rows=total)


@implements("earnings")
def earnings(ctx: JobContext, params: EarningsParams) -> JobResult:
    symbols = ctx.symbols(params.symbols)
    total = 0
    for symbol in ctx.each_symbol(symbols):
        with ctx.failed(symbol):
            reports = ctx.provider.earnings(symbol, ctx.today, params.quarters)
            with ctx.transaction() as session:
                total += write(session, EarningsRow, as_rows(reports))
    return ctx.result(symbols=len(symbols), rows=total)


def last_reported_period(ctx: JobContext, symbol: str, day: date) -> str | None:
    """The newest fiscal period the company has reported by `day` (its call has happened)."""
    reported = [r for r in ctx.provider.earnings(symbol, day, 4) if r.eps_actual is not None]
    return max((r.fiscal_period for r in reported), default=None)


@implements("earnings_transcripts")
def earnings_transcripts(ctx: JobContext, params: EarningsTranscriptsParams) -> JobResult:
    symbols = ctx.symbols(params.symbols)
    rows = []
    for symbol in ctx.each_symbol(symbols):
        with ctx.failed(symbol):
            period = params.fiscal_period or last_reported_period(ctx, symbol, ctx.today)
            if period is not None:
                transcript = ctx.provider.earnings_transcript(symbol, period)
                rows.extend(as_rows([transcript], word_count=len(transcript.content.split())))
    with ctx.transaction() as session:
        total = write(session, EarningsTranscriptRow, rows)
    return ctx.result(fiscal_period=params.fiscal_period, symbols=len(symbols), rows=total)


@implements("company_info")
def company_info(ctx: JobContext, params: CompanyInfoParams) -> JobResult:
    symbols = ctx.symbols(params.symbols)
    profiles = []
    for symbol in ctx.each_symbol(symbols):
        with ctx.failed(symbol):
            profiles.append(ctx.provider.company_profile(symbol))
    with ctx.transaction() as session:
        total = write(session, CompanyInfo, as_rows(profiles))
    return ctx.result(symbols=len(symbols), rows=total)
