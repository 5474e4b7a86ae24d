"""When scheduled jobs fire: the catalog's cron on the exchange's clock and calendar.

The API previews the next fires (``GET /api/v1/schedules``) and the scheduler uses the
same functions to decide, so the two never disagree. The rules:

* A cron expression is read on the wall clock of the exchange's time zone
  (``Settings.timezone``), with the DST rules of ``marketq.common.cron``.
* ``trading_days_only``: only fires whose exchange-local date is a session (no weekends,
  no holidays; an early-close day is a session).
* ``market_hours_only``: only fires while the market is open, ``open <= t < close`` of a
  session (early closes honoured, lunch breaks excluded on calendars that have them). A
  job firing every minute on a regular NYSE day fires 09:30 to 15:59 ET; on an early
  close (13:00 ET) the last fire is 12:59 ET.
* A job that runs ``after`` another has no clock of its own: it has no fire times here.

All instants are timezone-aware; naive datetimes are rejected. Iteration stops at the
end of the calendar's range instead of answering "closed" for dates it does not know.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from itertools import islice

from marketq.common.calendar import CalendarRangeError, MarketCalendar
from marketq.common.catalog import JobSpec
from marketq.common.cron import CronExpression

__all__ = [
    "DEFAULT_HORIZON",
    "cron_expression",
    "fire_times",
    "job_fire_times",
    "may_fire_at",
    "next_fire_times",
]

DEFAULT_HORIZON = timedelta(days=3 * 366)
"""How far ahead a preview looks before it gives up (a rare expression may fire less)."""

_TICK = timedelta(microseconds=1)


@lru_cache(maxsize=256)
def cron_expression(expression: str) -> CronExpression:
    """The parsed expression, cached (catalog expressions are parsed once per process)."""
    return CronExpression.parse(expression)


def _cron(cron: CronExpression | str) -> CronExpression:
    return cron_expression(cron) if isinstance(cron, str) else cron


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def _start_of(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def _session_days(calendar: MarketCalendar, first: date, last: date) -> Iterator[date]:
    """Sessions from ``first`` to ``last`` (inclusive), lazily, clipped to the calendar."""
    if last < calendar.first_session or first > calendar.last_session:
        return
    day = max(first, calendar.first_session)
    try:
        day = calendar.session_on_or_after(day)
        while day <= last:
            yield day
            day = calendar.next_session(day)
    except CalendarRangeError:
        return


def fire_times(
    cron: CronExpression | str,
    *,
    after: datetime,
    calendar: MarketCalendar,
    tz: tzinfo | None = None,
    trading_days_only: bool = False,
    market_hours_only: bool = False,
    until: datetime | None = None,
) -> Iterator[datetime]:
    """Fires strictly after ``after`` (and before ``until``, default ``DEFAULT_HORIZON``
    later), ascending, as aware datetimes in ``tz`` (default: the calendar's zone)."""
    _require_aware(after, "after")
    expression = _cron(cron)
    zone: tzinfo = tz or calendar.tz
    end = until if until is not None else after + DEFAULT_HORIZON
    _require_aware(end, "until")
    if end <= after:
        return
    first_day = after.astimezone(zone).date()
    last_day = end.astimezone(zone).date()
    if market_hours_only:
        # A session may start the evening before its date in some zones: look one back.
        for day in _session_days(calendar, first_day - timedelta(days=1), last_day):
            session = calendar.session(day)
            if session is None or session.close <= after:
                continue
            if session.open >= end:
                return
            lower = max(after, session.open - _TICK)
            upper = min(end, session.close)
            for fire in expression.fires(lower, zone, until=upper):
                if calendar.is_open(fire):
                    yield fire
        return
    if trading_days_only:
        for day in _session_days(calendar, first_day, last_day):
            lower = max(after, _start_of(day, zone) - _TICK)
            upper = min(end, _start_of(day + timedelta(days=1), zone))
            yield from expression.fires(lower, zone, until=upper)
        return
    yield from expression.fires(after, zone, until=end)


def next_fire_times(
    cron: CronExpression | str,
    *,
    after: datetime,
    calendar: MarketCalendar,
    count: int = 3,
    tz: tzinfo | None = None,
    trading_days_only: bool = False,
    market_hours_only: bool = False,
    until: datetime | None = None,
) -> list[datetime]:
    """The first ``count`` of ``fire_times`` (fewer when the horizon ends first)."""
    if count < 0:
        raise ValueError("count must not be negative")
    return list(
        islice(
            fire_times(
                cron,
                after=after,
                calendar=calendar,
                tz=tz,
                trading_days_only=trading_days_only,
                market_hours_only=market_hours_only,
                until=until,
            ),
            count,
        )
    )


def job_fire_times(
    job: JobSpec,
    *,
    after: datetime,
    calendar: MarketCalendar,
    count: int = 3,
    tz: tzinfo | None = None,
    until: datetime | None = None,
) -> list[datetime]:
    """Next fires of a catalog job; empty for on-demand jobs and ``after`` chain links."""
    schedule = job.schedule
    if schedule is None or schedule.cron is None:
        return []
    return next_fire_times(
        schedule.cron,
        after=after,
        calendar=calendar,
        count=count,
        tz=tz,
        trading_days_only=schedule.trading_days_only,
        market_hours_only=job.market_hours_only,
        until=until,
    )


def may_fire_at(
    at: datetime,
    *,
    calendar: MarketCalendar,
    tz: tzinfo | None = None,
    trading_days_only: bool = False,
    market_hours_only: bool = False,
) -> bool:
    """Whether the calendar lets a job with these flags fire at ``at`` (the scheduler's
    gate; the cron match itself is ``CronExpression.matches``)."""
    _require_aware(at, "at")
    if market_hours_only:
        return calendar.is_open(at)
    if trading_days_only:
        return calendar.is_trading_day(at.astimezone(tz or calendar.tz).date())
    return True
