"""When an entry fires: its clock (cron in exchange time, or a fixed interval) and the
exchange calendar's gate. Beat decides with these functions and the API previews with
them, so ``GET /api/v1/schedules`` shows exactly what beat will do.

The clock yields *raw* fires (every minute, for ``* * * * *``). The gate then lets a fire
through, or names why not: ``market_closed`` for a ``market_hours_only`` entry outside a
session (holidays, weekends, nights, after an early close), ``not_trading_day`` for a
``trading_days_only`` entry on a day that is no session, ``calendar_out_of_range`` for
either kind when the exchange calendar does not cover the fire (exchange-calendars has a
finite range; entries that need no calendar go on). Beat counts every refused fire in
``marketq_beat_skipped_total{reason}``.

``fire_times`` walks a cron clock session by session (an every-minute market-hours entry
skips nights in one step). A cron expression is read on the wall clock of the exchange's
time zone with the DST rules of ``marketq.common.scheduling.cron``; a ``market_hours_only``
entry fires while ``open <= t < close`` of a session (early closes honoured, lunch breaks
excluded), so an every-minute entry fires 09:30 to 15:59 ET on a regular NYSE day and
until 12:59 ET on an early close. All instants are timezone-aware; iteration stops at the
end of the calendar's range instead of answering "closed" for dates it does not know.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from functools import lru_cache
from itertools import islice

from marketq.common.scheduling.calendar import CalendarRangeError, MarketCalendar
from marketq.common.scheduling.cron import CronExpression
from marketq.common.scheduling.schedules import ScheduleEntry, next_interval_fire

__all__ = [
    "DEFAULT_HORIZON",
    "Clock",
    "Verdict",
    "clock_of",
    "cron_expression",
    "entry_last_due",
    "entry_next_fires",
    "fire_times",
    "gate",
]

_ONE_DAY = timedelta(days=1)
# Every accepted cron expression fires within eight years (29 February and a weekday).
_HORIZON = timedelta(days=8 * 366)
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


class Verdict(StrEnum):
    FIRE = "fire"
    MARKET_CLOSED = "market_closed"
    NOT_TRADING_DAY = "not_trading_day"
    MISSED = "missed"  # the fire is older than the entry's catch-up window
    DISABLED = "disabled"
    DUPLICATE = "duplicate"  # another beat claimed this fire first
    CALENDAR_OUT_OF_RANGE = "calendar_out_of_range"  # the calendar ends before the fire


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(instant: datetime) -> int:
    """Exact microseconds since the epoch: an integer key that compares without a time
    zone lookup (aware datetimes in different zones each consult their tzinfo on every
    comparison, which made bisecting a day's 1,440 fires the scheduler's main cost)."""
    return (instant - _EPOCH) // _MICROSECOND


@lru_cache(maxsize=512)
def _day_fires(
    expression: str, day: date, tz: tzinfo
) -> tuple[tuple[datetime, ...], tuple[int, ...]]:
    """The fires of one wall-clock date, ascending, with their epoch microseconds
    (cached: beat asks every minute)."""
    fires = tuple(cron_expression(expression).fires_on(day, tz))
    return fires, tuple(_micros(fire) for fire in fires)


@dataclass(frozen=True, slots=True)
class Clock:
    """Raw fire instants of an entry: five-field cron on ``tz``'s wall clock, or every
    ``every_seconds`` on the epoch grid (the same instants in every process)."""

    cron: str | None
    every_seconds: int | None
    tz: tzinfo

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every_seconds is None):
            raise ValueError("a clock is a cron expression or an interval")

    def next_after(self, after: datetime) -> datetime:
        return next(self.fires(after, None))

    def fires(self, after: datetime, until: datetime | None) -> Iterator[datetime]:
        """Raw fires strictly after ``after`` and (if given) strictly before ``until``."""
        if self.every_seconds is not None:
            fire = next_interval_fire(after, self.every_seconds)
            step = timedelta(seconds=self.every_seconds)
            while until is None or fire < until:
                yield fire.astimezone(self.tz)
                fire += step
            return
        assert self.cron is not None
        # A wall-clock date's fires all come before the next date's, DST or not.
        day = after.astimezone(self.tz).date()
        last = until.astimezone(self.tz).date() if until is not None else day + _HORIZON
        after_us = _micros(after)
        until_us = _micros(until) if until is not None else None
        while day <= last:
            fires, stamps = _day_fires(self.cron, day, self.tz)
            for index in range(bisect_right(stamps, after_us), len(fires)):
                if until_us is not None and stamps[index] >= until_us:
                    return
                yield fires[index]
            day += _ONE_DAY

    def latest_at_or_before(self, now: datetime, not_before: datetime) -> datetime | None:
        """The last raw fire in ``(not_before, now]``, if any."""
        latest = None
        for fire in self.fires(not_before, now + timedelta(microseconds=1)):
            latest = fire
        return latest


def clock_of(entry: ScheduleEntry, tz: tzinfo) -> Clock:
    return Clock(cron=entry.cron, every_seconds=entry.every_seconds, tz=tz)


def gate(
    fire: datetime,
    calendar: MarketCalendar,
    *,
    market_hours_only: bool,
    trading_days_only: bool,
    tz: tzinfo | None = None,
) -> Verdict:
    """Whether the calendar lets a raw fire through."""
    try:
        if market_hours_only and not calendar.is_open(fire):
            return Verdict.MARKET_CLOSED
        day = fire.astimezone(tz or calendar.tz).date()
        if trading_days_only and not calendar.is_trading_day(day):
            return Verdict.NOT_TRADING_DAY
    except CalendarRangeError:
        return Verdict.CALENDAR_OUT_OF_RANGE
    return Verdict.FIRE


def entry_next_fires(
    entry: ScheduleEntry,
    *,
    after: datetime,
    calendar: MarketCalendar,
    tz: tzinfo,
    count: int = 3,
) -> list[datetime]:
    """The next ``count`` fires the gate lets through."""
    if entry.cron is not None:
        # Session by session: an every-minute market-hours cron skips nights in one step.
        return list(
            islice(
                fire_times(
                    entry.cron,
                    after=after,
                    calendar=calendar,
                    tz=tz,
                    trading_days_only=entry.trading_days_only,
                    market_hours_only=entry.market_hours_only,
                ),
                count,
            )
        )
    clock = clock_of(entry, tz)
    found: list[datetime] = []
    fire = after
    # An interval gated by the market: at most a long weekend of raw fires to step over.
    for _ in range(200_000):
        fire = clock.next_after(fire)
        verdict = gate(
            fire,
            calendar,
            market_hours_only=entry.market_hours_only,
            trading_days_only=entry.trading_days_only,
            tz=tz,
        )
        if verdict is Verdict.FIRE:
            found.append(fire)
            if len(found) == count:
                break
    return found


# How far back ``entry_last_due`` looks, widening only when a window held no fire.
_LOOKBACK = (timedelta(days=1), timedelta(days=8), timedelta(days=40), timedelta(days=400))
_TINY = timedelta(microseconds=1)


def _interval_floor(at: datetime, every_seconds: int) -> datetime:
    """The latest instant of the epoch grid at or before ``at``."""
    return next_interval_fire(at - timedelta(seconds=every_seconds), every_seconds)


def entry_last_due(
    entry: ScheduleEntry, *, now: datetime, calendar: MarketCalendar, tz: tzinfo
) -> datetime | None:
    """The latest instant at or before ``now`` at which the entry was due: a fire of its
    clock the calendar gate let through (what beat would have published). None for an
    entry with no such fire in the last 400 days.

    The "scheduled job missed" alert compares this with the job's last success."""
    if entry.cron is not None:
        for back in _LOOKBACK:
            latest = None
            for fire in fire_times(
                entry.cron,
                after=now - back,
                calendar=calendar,
                tz=tz,
                trading_days_only=entry.trading_days_only,
                market_hours_only=entry.market_hours_only,
                until=now + _TINY,
            ):
                latest = fire
            if latest is not None:
                return latest
        return None
    assert entry.every_seconds is not None
    every = entry.every_seconds
    step = timedelta(seconds=every)
    fire = _interval_floor(now, every)
    oldest = now - _LOOKBACK[-1]
    # Backwards from now; a closed market jumps to the previous session in one step.
    while fire > oldest:
        verdict = gate(
            fire,
            calendar,
            market_hours_only=entry.market_hours_only,
            trading_days_only=entry.trading_days_only,
            tz=tz,
        )
        if verdict is Verdict.FIRE:
            return fire.astimezone(tz)
        if verdict is Verdict.MARKET_CLOSED and calendar.current_session(fire) is None:
            close = calendar.last_completed_session(fire).close
            fire = _interval_floor(min(fire - _TINY, close - _TINY), every)
        elif verdict is Verdict.NOT_TRADING_DAY:
            day = calendar.session_on_or_before(fire.astimezone(tz).date())
            end_of_day = datetime.combine(day + _ONE_DAY, time(0), tz).astimezone(UTC)
            fire = _interval_floor(min(fire - _TINY, end_of_day - _TINY), every)
        else:
            fire -= step
    return None
