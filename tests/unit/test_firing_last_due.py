"""``entry_last_due``: the latest instant an entry was due, across nights, weekends,
holidays and early closes (XNYS 2026: Thanksgiving 26 Nov closed, 27 Nov closes 13:00)."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.scheduling.firing import entry_last_due
from marketq.common.scheduling.schedules import ScheduleEntry

NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar("XNYS")


def entry(**fields: object) -> ScheduleEntry:
    base: dict[str, object] = {
        "name": "e",
        "job": "stock_quotes",
        "cron": None,
        "every_seconds": None,
        "trading_days_only": False,
        "market_hours_only": False,
        "enabled": True,
        "params": {},
        "source": "catalog",
    }
    return ScheduleEntry.model_validate({**base, **fields})


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (ny(2026, 12, 2, 10, 30, 40), ny(2026, 12, 2, 10, 30)),  # open: this minute
        (ny(2026, 12, 2, 18, 0), ny(2026, 12, 2, 15, 59)),  # evening: the last minute
        (ny(2026, 12, 5, 12, 0), ny(2026, 12, 4, 15, 59)),  # Saturday: Friday's close
        (ny(2026, 11, 26, 12, 0), ny(2026, 11, 25, 15, 59)),  # Thanksgiving: day before
        (ny(2026, 11, 27, 14, 0), ny(2026, 11, 27, 12, 59)),  # early close at 13:00
    ],
)
def test_market_hours_cron(cal: MarketCalendar, now: datetime, expected: datetime) -> None:
    due = entry_last_due(
        entry(cron="* * * * *", market_hours_only=True), now=now, calendar=cal, tz=NY
    )
    assert due == expected


def test_plain_cron(cal: MarketCalendar) -> None:
    daily = entry(cron="15 3 * * *")
    assert entry_last_due(daily, now=ny(2026, 12, 2, 3, 14), calendar=cal, tz=NY) == ny(
        2026, 12, 1, 3, 15
    )
    assert entry_last_due(daily, now=ny(2026, 12, 2, 3, 15), calendar=cal, tz=NY) == ny(
        2026, 12, 2, 3, 15
    )


def grid_floor(at: datetime, every: int) -> float:
    """Largest multiple of ``every`` seconds (epoch grid) strictly below ``at``."""
    return math.ceil(at.timestamp() / every - 1) * every


def test_interval_jumps_back_over_closed_market(cal: MarketCalendar) -> None:
    every = 7
    saturday = ny(2026, 12, 5, 12, 0)
    due = entry_last_due(
        entry(every_seconds=every, market_hours_only=True), now=saturday, calendar=cal, tz=NY
    )
    friday_close = ny(2026, 12, 4, 16, 0)
    assert due is not None
    assert due.timestamp() == grid_floor(friday_close, every)
    assert cal.is_open(due)


def test_interval_on_trading_days_only(cal: MarketCalendar) -> None:
    every = 3600
    sunday = ny(2026, 12, 6, 12, 0)
    due = entry_last_due(
        entry(every_seconds=every, trading_days_only=True), now=sunday, calendar=cal, tz=NY
    )
    saturday_start = ny(2026, 12, 5, 0, 0)
    assert due is not None
    assert due.timestamp() == grid_floor(saturday_start, every)
    assert due.astimezone(NY).date() == datetime(2026, 12, 4).date()
    # On a trading day it is simply the latest grid instant.
    now = ny(2026, 12, 2, 12, 30)
    latest = entry_last_due(
        entry(every_seconds=every, trading_days_only=True), now=now, calendar=cal, tz=NY
    )
    assert latest is not None
    assert latest.timestamp() == math.floor(now.timestamp() / every) * every
