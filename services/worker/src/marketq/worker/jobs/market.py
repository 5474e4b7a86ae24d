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
    for symbol in ctx.each_symbol(symbols):
        with ctx.failed(symbol):
            quotes.append(ctx.provider.quote(symbol, at))
    with ctx.transaction() as session:
        rows = write(session, QuoteRow, as_rows(quotes))
    return ctx.result(as_of=at.isoformat(), symbols=len(symbols), rows=rows)


@implements("options_chain")
def options_chain(ctx: JobContext, params: OptionsChainParams) -> JobResult:
    at = _minute(params.as_of or ctx.as_of)
    symbols = ctx.symbols(params.symbols)
    total = 0
    for symbol in ctx.each_symbol(symbols):
        with ctx.failed(symbol):
            chain = ctx.provider.option_chain(
                symbol, at, params.expirations, params.strikes_per_side
            )
            with ctx.transaction() as session:
                total += write(session, OptionQuoteRow, as_rows(chain))
    return ctx.result(as_of=at.isoformat(), symbols=len(symbols), rows=total)


@implements("historical_prices")
def historical_prices(ctx: JobContext, params: HistoricalPricesParams) -> JobResult:
    end = params.end or ctx.last_session
    start = params.start or end - timedelta(days=params.lookback_days)
    symbols = ctx.symbols(params.symbols)
    total = 0
    for symbol in ctx.each_symbol(symbols):
        with ctx.failed(symbol):
            bars = ctx.provider.daily_bars(symbol, start, end)
            with ctx.transaction() as session:
                total += write(session, DailyBarRow, as_rows(bars))
    return ctx.result(
        start=start.isoformat(), end=end.isoformat(), symbols=len(symbols), rows=total
    )
