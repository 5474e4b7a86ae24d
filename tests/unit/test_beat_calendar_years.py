"""Two whole calendar years through the scheduler's own decisions, on a simulated clock.

The loop below is beat's: ask the entry's schedule whether it is due (``is_due`` with
the clock set by ``nowfun``), let the schedule decide what to do with the due fire (the
calendar gate), advance ``last_run_at`` to now, sleep what ``is_due`` said. What it
publishes must equal what is derived here independently from the exchange calendar's
session table (exchange-calendars itself, not marketq's calendar layer): no fire on a
holiday, none after an early close, none shifted by either DST switch.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd
import pytest

from marketq.beat.schedule import ExchangeSchedule
from marketq.common.catalog import CATALOG
from marketq.common.pipelines import PIPELINES
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.scheduling.firing import Verdict

# Two years of beat's loop, minute by minute: minutes of CPU, so behind the slow marker.
pytestmark = pytest.mark.slow

NY = ZoneInfo("America/New_York")
START = datetime(2025, 1, 1, tzinfo=NY)
END = datetime(2027, 1, 1, tzinfo=NY)


def _sessions() -> pd.DataFrame:
    calendar = xcals.get_calendar("XNYS", start="2024-12-01", end="2027-01-31")
    table = calendar.schedule
    return table[(table.index >= "2025-01-01") & (table.index <= "2026-12-31")]


SESSIONS = _sessions()


class SimulatedClock:
    def __init__(self, start: datetime) -> None:
        self.now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now


def simulate(job_name: str) -> list[datetime]:
    """Publishes of the catalog entry of ``job_name`` (a job or a pipeline) between START
    and END."""
    if job_name in CATALOG:
        spec, market_hours_only = CATALOG[job_name].schedule, CATALOG[job_name].market_hours_only
    else:
        spec, market_hours_only = PIPELINES[job_name].schedule, False
    assert spec is not None and spec.cron is not None
    clock = SimulatedClock(START)
    schedule = ExchangeSchedule(
        cron=spec.cron,
        timezone="America/New_York",
        market_hours_only=market_hours_only,
        trading_days_only=spec.trading_days_only,
        catchup_seconds=60,
        nowfun=clock,
    )
    calendar = MarketCalendar("XNYS")
    last_run_at = clock.now
    published: list[datetime] = []
    skipped = 0
    while clock.now < END:
        due, next_in = schedule.is_due(last_run_at)
        if due:
            verdict, fire = schedule.decide(last_run_at, clock.now, calendar)
            if verdict is Verdict.FIRE:
                assert fire is not None
                published.append(fire)
            else:
                assert verdict in (Verdict.MARKET_CLOSED, Verdict.NOT_TRADING_DAY), verdict
                skipped += 1
            last_run_at = clock.now
        # Beat wakes a little late (it is a process); the same fire must still come out.
        clock.now += timedelta(seconds=next_in, milliseconds=3)
    assert skipped > 0 or not (market_hours_only or spec.trading_days_only)
    return [f for f in published if f < END]


def expected_intraday(step_minutes: int) -> list[datetime]:
    fires = []
    for _, row in SESSIONS.iterrows():
        minute = row["open"].to_pydatetime()
        close = row["close"].to_pydatetime()
        while minute < close:
            if minute.astimezone(NY).minute % step_minutes == 0:
                fires.append(minute)
            minute += timedelta(minutes=1)
    return fires


def expected_daily(hour: int, minute: int) -> list[datetime]:
    return [
        datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)
        for day in (d.date() for d in SESSIONS.index)
    ]


def utc(values: list[datetime]) -> list[datetime]:
    return [v.astimezone(UTC) for v in values]


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ("stock_quotes", lambda: expected_intraday(1)),
        ("options_chain", lambda: expected_intraday(5)),
        ("end_of_day", lambda: expected_daily(17, 30)),
        ("portfolio_snapshot", lambda: expected_daily(16, 30)),
    ],
)
def test_two_years_of_fires_equal_the_calendar_sessions(job: str, expected: object) -> None:
    published = simulate(job)
    wanted = expected()  # type: ignore[operator]
    assert utc(published) == utc(wanted)
    local = [f.astimezone(NY) for f in published]
    days = {f.date() for f in local}
    # Holidays: New Year, Good Friday 2025-04-18, Independence Day, Christmas, and the
    # national day of mourning for President Carter (2025-01-09).
    for holiday in (
        date(2025, 1, 1),
        date(2025, 1, 9),
        date(2025, 4, 18),
        date(2025, 7, 4),
        date(2025, 12, 25),
        date(2026, 4, 3),
        date(2026, 11, 26),
    ):
        assert holiday not in days, holiday
    if job == "stock_quotes":
        # Early closes at 13:00: the last quote is 12:59; DST on both sides is 09:30 local.
        for early in (date(2025, 11, 28), date(2025, 12, 24), date(2026, 11, 27)):
            that_day = [f for f in local if f.date() == early]
            assert that_day[-1].strftime("%H:%M") == "12:59", early
        for dst_day in (date(2025, 3, 10), date(2025, 11, 3), date(2026, 3, 9), date(2026, 11, 2)):
            that_day = [f for f in local if f.date() == dst_day]
            assert that_day[0].strftime("%H:%M") == "09:30" and len(that_day) == 390, dst_day
