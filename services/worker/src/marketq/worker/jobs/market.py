"""Prices: intraday quotes and option chains (market_hours), end-of-day bars (daily)."""

from __future__ import annotations

from datetime import datetime, timedelta

from marketq.common.db.models import DailyBarRow, OptionQuoteRow, QuoteRow
from marketq.common.params import HistoricalPricesParams, OptionsChainParams, StockQuotesParams
from marketq.worker.context import JobContext
from marketq.worker.jobs._rows import as_rows, write
from marketq.worker.registry import JobResult, implements


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


@implements("stock_quotes")
def stock_quotes(ctx: JobContext, params: StockQuotesParams) -> JobResult:
    at = _minute(params.as_of or ctx.as_of)
    symbols = ctx.symbols(params.symbols)
    quotes = []
    for done, symbol in enumerate(symbols, start=1):
        quotes.append(ctx.provider.quote(symbol, at))
        ctx.progress(done, len(symbols))
    with ctx.transaction() as session:
        rows = write(session, QuoteRow, as_rows(quotes))
    return {"as_of": at.isoformat(), "symbols": len(symbols), "rows": rows}


@implements("options_chain")
def options_chain(ctx: JobContext, params: OptionsChainParams) -> JobResult:
    at = _minute(params.as_of or ctx.as_of)
    symbols = ctx.symbols(params.symbols)
    total = 0
    for done, symbol in enumerate(symbols, start=1):
        chain = ctx.provider.option_chain(symbol, at, params.expirations, params.strikes_per_side)
        with ctx.transaction() as session:
            total += write(session, OptionQuoteRow, as_rows(chain))
        ctx.progress(done, len(symbols))
    return {"as_of": at.isoformat(), "symbols": len(symbols), "rows": total}


@implements("historical_prices")
def historical_prices(ctx: JobContext, params: HistoricalPricesParams) -> JobResult:
    end = params.end or ctx.last_session
    start = params.start or end - timedelta(days=params.lookback_days)
    symbols = ctx.symbols(params.symbols)
    total = 0
    for done, symbol in enumerate(symbols, start=1):
        bars = ctx.provider.daily_bars(symbol, start, end)
        with ctx.transaction() as session:
            total += write(session, DailyBarRow, as_rows(bars, source=ctx.provider.name))
        ctx.progress(done, len(symbols))
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "symbols": len(symbols),
        "rows": total,
    }
