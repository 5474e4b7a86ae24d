"""The schedules the finance apps asked for (issue 13), shipped as catalog entries: their
fires come from the same preview beat uses, checked on real exchange days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from marketq.common.catalog import CATALOG
from marketq.common.pipelines import PIPELINES
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.scheduling.firing import fire_times
from marketq.common.scheduling.schedules import EntryPatch, ScheduleEntry, effective_entries

NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar("XNYS")


def fires_on(entry: ScheduleEntry, day: date, calendar: MarketCalendar) -> list[time]:
    assert entry.cron is not None
    start = datetime.combine(day, time(0), NY) - timedelta(microseconds=1)
    return [
        fire.astimezone(NY).time()
        for fire in fire_times(
            entry.cron,
            after=start,
            calendar=calendar,
            tz=NY,
            trading_days_only=entry.trading_days_only,
            market_hours_only=entry.market_hours_only,
            until=start + timedelta(days=1),
        )
    ]


def half_hours(first: time, last: time) -> list[time]:
    out, at = [], datetime.combine(date(2026, 1, 1), first)
    while at.time() <= last:
        out.append(at.time())
        at += timedelta(minutes=30)
    return out


def test_every_catalog_entry_is_an_effective_entry_by_default() -> None:
    names = {name for _job, schedule in CATALOG.default_schedules() for name in [schedule.name]}
    pipelines = {spec.name for spec in PIPELINES.values() if spec.schedule}  # start their runs
    assert pipelines and set(effective_entries()) == names | pipelines
    assert {"cleanup_weekly", "quotes_extended", "portfolio_intraday"} <= names


def test_extended_hours_fire_every_30_minutes_0600_to_2000_on_every_session_day(
    calendar: MarketCalendar,
) -> None:
    entry = effective_entries()["quotes_extended"]
    assert entry.job == "stock_quotes" and entry.enabled
    full_day = half_hours(time(6, 0), time(19, 30))
    assert fires_on(entry, date(2026, 11, 24), calendar) == full_day  # a regular Tuesday
    # Gated on the session's date, not on the regular session: the day after Thanksgiving
    # closes at 13:00 but its extended hours still run to 20:00.
    assert fires_on(entry, date(2026, 11, 27), calendar) == full_day
    assert fires_on(entry, date(2026, 11, 26), calendar) == []  # Thanksgiving
    assert fires_on(entry, date(2026, 11, 28), calendar) == []  # Saturday


def test_intraday_portfolio_prices_fire_hourly_while_the_exchange_is_open(
    calendar: MarketCalendar,
) -> None:
    entry = effective_entries()["portfolio_intraday"]
    assert entry.market_hours_only and entry.enabled
    assert fires_on(entry, date(2026, 11, 24), calendar) == [time(h) for h in range(10, 16)]
    assert fires_on(entry, date(2026, 11, 27), calendar) == [time(10), time(11), time(12)]
    assert fires_on(entry, date(2026, 11, 26), calendar) == []


def test_weekly_cleanup_is_shipped_disabled_and_selected_by_schedule_edit(
    calendar: MarketCalendar,
) -> None:
    defaults = effective_entries()
    weekly = defaults["cleanup_weekly"]
    assert weekly.job == "cleanup" and not weekly.enabled and defaults["cleanup"].enabled
    sunday, monday = date(2026, 11, 29), date(2026, 11, 30)
    assert len(fires_on(weekly, sunday, calendar)) == 1
    assert fires_on(weekly, monday, calendar) == []

    edited = effective_entries(
        overrides={"cleanup_weekly": EntryPatch(enabled=True), "cleanup": EntryPatch(enabled=False)}
    )

    assert edited["cleanup_weekly"].enabled and not edited["cleanup"].enabled
