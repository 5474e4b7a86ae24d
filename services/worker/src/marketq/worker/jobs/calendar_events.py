"""Forward-looking calendars: earnings dates and economic releases."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from marketq.common.db.models import EarningsCalendarRow, EconomicEventRow
from marketq.common.params import EarningsCalendarParams, EconomicEventsParams
from marketq.worker.context import JobContext
from marketq.worker.jobs._rows import as_rows, write
from marketq.worker.registry import JobResult, implements


@implements("earnings_calendar")
def earnings_calendar(ctx: JobContext, params: EarningsCalendarParams) -> JobResult:
    start = ctx.today
    end = start + timedelta(days=params.days_ahead)
    symbols = ctx.symbols(params.symbols)
    entries = ctx.provider.earnings_calendar(symbols, start, end)
    with ctx.transaction() as session:
        total = write(session, EarningsCalendarRow, as_rows(entries))
    ctx.progress(1, 1)
    return ctx.result(start=start.isoformat(), end=end.isoformat(), rows=total)


@implements("economic_events")
def economic_events(ctx: JobContext, params: EconomicEventsParams) -> JobResult:
    start = ctx.today
    end = start + timedelta(days=params.days_ahead)
    # A release scheduled after the run has no actual figure yet, whatever a provider
    # without a clock returns.
    events = [
        replace(event, actual=None) if event.scheduled_at > ctx.as_of else event
        for event in ctx.provider.economic_events(start, end)
    ]
    with ctx.transaction() as session:
        total = write(session, EconomicEventRow, as_rows(events))
    ctx.progress(1, 1)
    return ctx.result(start=start.isoformat(), end=end.isoformat(), rows=total)
