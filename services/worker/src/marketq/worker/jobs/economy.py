"""Macroeconomic series."""

from __future__ import annotations

from datetime import timedelta

from marketq.common.db.models import EconomicIndicatorRow
from marketq.common.params import EconomicIndicatorsParams
from marketq.worker.context import JobContext
from marketq.worker.jobs._rows import as_rows, write
from marketq.worker.registry import JobResult, implements


@implements("economic_indicators")
def economic_indicators(ctx: JobContext, params: EconomicIndicatorsParams) -> JobResult:
    end = ctx.today
    start = end - timedelta(days=params.lookback_days)
    total = 0
    # A series code plays the part of a symbol: one that fails is reported, the rest written.
    for series in ctx.each_symbol(list(params.series)):
        with ctx.failed(series):
            observations = ctx.provider.economic_series(series, start, end)
            with ctx.transaction() as session:
                total += write(session, EconomicIndicatorRow, as_rows(observations))
    return ctx.result(series=len(params.series), rows=total)
