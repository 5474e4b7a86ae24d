"""Company news."""

from __future__ import annotations

from datetime import timedelta

from marketq.common.db.models import NewsArticleRow
from marketq.common.params import NewsParams
from marketq.worker.context import JobContext
from marketq.worker.jobs._rows import as_rows, write
from marketq.worker.registry import JobResult, implements


@implements("news")
def news(ctx: JobContext, params: NewsParams) -> JobResult:
    # The window ends at the run's enqueue minute, not "now": a redelivered message asks
    # for the same articles.
    until = ctx.as_of.replace(second=0, microsecond=0)
    since = until - timedelta(hours=params.lookback_hours)
    symbols = ctx.symbols(params.symbols)
    rows = []
    for symbol in ctx.each_symbol(symbols):
        with ctx.failed(symbol):
            rows.extend(as_rows(ctx.provider.news(symbol, since, until, params.limit_per_symbol)))
    with ctx.transaction() as session:
        total = write(session, NewsArticleRow, rows)
    return ctx.result(since=since.isoformat(), until=until.isoformat(), rows=total)
