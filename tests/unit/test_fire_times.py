"""Cron expressions and the fires of schedule entries on the NYSE clock and calendar.

Expectations are written from the NYSE calendar (holidays, early closes, DST dates) and
cross-checked with MarketCalendar and a brute-force minute scan, not with the code under
test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketq.common.catalog import CATALOG
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.scheduling.cron import CronError, CronExpression
from marketq.common.scheduling.firing import Verdict, entry_next_fires, fire_times, gate
from marketq.common.scheduling.schedules import effective_entries

NY = ZoneInfo("America/New_York")
THANKSGIVING = date(2026, 11, 26)
BLACK_FRIDAY = date(2026, 11, 27)  # early close, 13:00 ET


def et(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=NY)


def day_span(day: date) -> tuple[datetime, datetime]:
    """(just before the day's first instant, the next day's first instant) in New York."""
    start = datetime(day.year, day.month, day.day, tzinfo=NY)
    nxt = day + timedelta(days=1)
    return start - timedelta(microseconds=1), datetime(nxt.year, nxt.month, nxt.day, tzinfo=NY)


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar("XNYS")


# The catalog's entries, as beat and the API see them with no file and no runtime edit.
ENTRIES = effective_entries()


def entry_fires(
    job: str, *, after: datetime, cal: MarketCalendar, until: datetime, count: int = 3
) -> list[datetime]:
    """The first ``count`` gated fires of the job's entry in ``(after, until)``."""
    entry = ENTRIES[job]
    if entry.cron is None:
        return []
    fires = fire_times(
        entry.cron,
        after=after,
        calendar=cal,
        until=until,
        trading_days_only=entry.trading_days_only,
        market_hours_only=entry.market_hours_only,
    )
    return list(islice(fires, count))


def next_fires(job: str, *, after: datetime, cal: MarketCalendar) -> list[datetime]:
    return entry_next_fires(ENTRIES[job], after=after, calendar=cal, tz=NY)


def fires_on(cal: MarketCalendar, job: str, day: date) -> list[datetime]:
    lower, upper = day_span(day)
    return entry_fires(job, after=lower, cal=cal, until=upper, count=10_000)


# --- cron parsing -------------------------------------------------------------------


def test_fields_steps_ranges_lists_and_names() -> None:
    cron = CronExpression.parse("*/15 9-11,16 1,15 jan-mar mon-fri")
    assert cron.minutes == (0, 15, 30, 45)
    assert cron.hours == (9, 10, 11, 16)
    assert cron.days_of_month == {1, 15}
    assert cron.months == {1, 2, 3}
    assert cron.days_of_week == {1, 2, 3, 4, 5}
    assert CronExpression.parse("5/20 * * * *").minutes == (5, 25, 45)
    assert CronExpression.parse("0 0 * * 7").days_of_week == {0}  # 7 is Sunday too
    assert CronExpression.parse("0 0 * * SUN").days_of_week == {0}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "five fields"),
        ("60 * * * *", "minute 60 is outside 0-59"),
        ("* 24 * * *", "hour 24"),
        ("*/0 * * * *", "bad step"),
        ("5-1 * * * *", "reversed"),
        ("a * * * *", "not a number"),
        ("1,,2 * * * *", "empty item"),
        ("0 0 30 2 *", "never occurs"),
        ("0 0 * foo *", "not a number"),
    ],
)
def test_bad_expressions_are_rejected_with_the_reason(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        CronExpression.parse(expression)


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    either = CronExpression.parse("0 0 13 * fri")
    assert either.matches_day(date(2026, 11, 13))  # a Friday the 13th
    assert either.matches_day(date(2026, 11, 20))  # any Friday
    assert either.matches_day(date(2026, 10, 13))  # any 13th (a Tuesday)
    assert not either.matches_day(date(2026, 10, 14))
    only_fridays = CronExpression.parse("0 0 * * fri")
    assert not only_fridays.matches_day(date(2026, 10, 13))
    assert CronExpression.parse("0 0 29 2 *").matches_day(date(2028, 2, 29))


def test_every_catalog_cron_parses() -> None:
    for job in CATALOG.scheduled():
        if job.schedule and job.schedule.cron:
            assert CronExpression.parse(job.schedule.cron).expression == job.schedule.cron


def _brute_force(cron: CronExpression, start: datetime, end: datetime) -> list[datetime]:
    """Every UTC minute in [start, end) whose New York wall clock matches."""
    found = []
    at = start.astimezone(UTC).replace(second=0, microsecond=0)
    if at < start:
        at += timedelta(minutes=1)
    while at < end:
        if cron.matches(at.astimezone(NY)):
            found.append(at)
        at += timedelta(minutes=1)
    return found


@settings(max_examples=40, deadline=None)
@given(
    minute=st.sampled_from(["*", "*/7", "0", "15,45", "10-20/5"]),
    hour=st.sampled_from(["*", "*/5", "9", "0-3", "22"]),
    dom=st.sampled_from(["*", "1", "10-20", "*/3"]),
    dow=st.sampled_from(["*", "mon-fri", "0", "sat,sun"]),
    start_day=st.integers(min_value=0, max_value=180),
)
def test_fires_equal_a_minute_by_minute_scan_away_from_dst(
    minute: str, hour: str, dom: str, dow: str, start_day: int
) -> None:
    cron = CronExpression.parse(f"{minute} {hour} {dom} * {dow}")
    start = datetime(2026, 4, 1, 0, 0, 30, tzinfo=UTC) + timedelta(days=start_day)  # EDT only
    end = start + timedelta(days=3)
    assert [f.astimezone(UTC) for f in cron.fires(start, NY, until=end)] == _brute_force(
        cron, start, end
    )


def test_fires_are_strictly_after_and_in_the_exchange_zone() -> None:
    cron = CronExpression.parse("30 17 * * *")
    fire = cron.next_after(et(2026, 11, 25, 17, 30), NY)
    assert fire == et(2026, 11, 26, 17, 30)
    assert fire.tzinfo == NY
    with pytest.raises(ValueError, match="timezone-aware"):
        cron.next_after(datetime(2026, 11, 25, 17, 30), NY)


# --- DST ----------------------------------------------------------------------------


def test_spring_forward_wildcard_jobs_skip_the_missing_hour() -> None:
    # 2026-03-08: New York clocks jump from 02:00 EST to 03:00 EDT.
    fires = list(
        CronExpression.parse("5 * * * *").fires(et(2026, 3, 8), NY, until=et(2026, 3, 8, 5))
    )
    assert [f.astimezone(UTC).hour for f in fires] == [5, 6, 7, 8]  # 00:05, 01:05, 03:05, 04:05
    assert [f.hour for f in fires] == [0, 1, 3, 4]


def test_spring_forward_fixed_time_jobs_fire_once_when_the_clock_jumps() -> None:
    fires = list(
        CronExpression.parse("0,30 2 * * *").fires(et(2026, 3, 7, 12), NY, until=et(2026, 3, 10))
    )
    assert fires[0] == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, once for both
    assert fires[1:] == [et(2026, 3, 9, 2, 0), et(2026, 3, 9, 2, 30)]


def test_fall_back_fixed_time_jobs_fire_once_wildcards_twice() -> None:
    # 2026-11-01: 01:00-01:59 happens twice (EDT, then EST).
    daily = list(
        CronExpression.parse("30 1 * * *").fires(et(2026, 10, 31), NY, until=et(2026, 11, 2))
    )
    assert [f.astimezone(UTC) for f in daily] == [
        datetime(2026, 10, 31, 5, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # first 01:30 (EDT) only
    ]
    half_hourly = CronExpression.parse("*/30 * * * *").fires(
        datetime(2026, 11, 1, 4, 50, tzinfo=UTC), NY, until=datetime(2026, 11, 1, 7, 1, tzinfo=UTC)
    )
    # Real time keeps its 30-minute spacing through the repeated hour.
    assert [f.astimezone(UTC).strftime("%H:%M") for f in half_hourly] == [
        "05:00",
        "05:30",
        "06:00",
        "06:30",
        "07:00",
    ]


def test_market_open_moves_in_utc_across_dst(cal: MarketCalendar) -> None:
    before = fires_on(cal, "stock_quotes", date(2026, 3, 6))
    after = fires_on(cal, "stock_quotes", date(2026, 3, 9))
    assert before[0] == datetime(2026, 3, 6, 14, 30, tzinfo=UTC)  # 09:30 EST
    assert after[0] == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)  # 09:30 EDT
    assert before[-1] == et(2026, 3, 6, 15, 59) and after[-1] == et(2026, 3, 9, 15, 59)


# --- the calendar -------------------------------------------------------------------


def test_thanksgiving_has_no_market_hours_or_trading_day_fires(cal: MarketCalendar) -> None:
    assert not cal.is_trading_day(THANKSGIVING)
    assert fires_on(cal, "stock_quotes", THANKSGIVING) == []
    assert fires_on(cal, "options_chain", THANKSGIVING) == []
    assert fires_on(cal, "portfolio_snapshot", THANKSGIVING) == []
    assert fires_on(cal, "portfolio_snapshot", THANKSGIVING) == []
    # Jobs that are not tied to trading days still run.
    assert fires_on(cal, "fundamentals", THANKSGIVING) == [et(2026, 11, 26, 18)]


def test_early_close_ends_the_market_hours_fires_at_12_59(cal: MarketCalendar) -> None:
    session = cal.session(BLACK_FRIDAY)
    assert session is not None and session.early_close
    quotes = fires_on(cal, "stock_quotes", BLACK_FRIDAY)
    assert quotes[0] == et(2026, 11, 27, 9, 30)
    assert quotes[-1] == et(2026, 11, 27, 12, 59)
    assert len(quotes) == session.minutes == 210
    chains = fires_on(cal, "options_chain", BLACK_FRIDAY)
    assert chains[-1] == et(2026, 11, 27, 12, 55) and len(chains) == 42
    # The end-of-day job still runs on an early-close day.
    assert fires_on(cal, "portfolio_snapshot", BLACK_FRIDAY) == [et(2026, 11, 27, 16, 30)]


def test_next_three_fires_skip_the_holiday(cal: MarketCalendar) -> None:
    wednesday_close = et(2026, 11, 25, 15, 58)
    assert next_fires("stock_quotes", after=wednesday_close, cal=cal) == [
        et(2026, 11, 25, 15, 59),
        et(2026, 11, 27, 9, 30),
        et(2026, 11, 27, 9, 31),
    ]
    assert next_fires("portfolio_snapshot", after=wednesday_close, cal=cal) == [
        et(2026, 11, 25, 16, 30),
        et(2026, 11, 27, 16, 30),
        et(2026, 11, 30, 16, 30),  # Monday: the weekend is skipped too
    ]


def test_a_month_of_market_hours_fires_agrees_with_the_calendar(cal: MarketCalendar) -> None:
    start, end = et(2026, 11, 1), et(2026, 12, 1)
    fires = list(
        fire_times("* * * * *", after=start, until=end, calendar=cal, market_hours_only=True)
    )
    assert all(cal.is_open(f) for f in fires)
    sessions = cal.sessions(date(2026, 11, 1), date(2026, 11, 30))
    assert len(fires) == sum(s.minutes for s in sessions)
    assert {f.date() for f in fires} == {s.day for s in sessions}


def test_trading_days_only_is_every_session_and_nothing_else(cal: MarketCalendar) -> None:
    fires = list(
        islice(
            fire_times("30 16 * * *", after=et(2026, 12, 20), calendar=cal, trading_days_only=True),
            10,
        )
    )
    days = [f.date() for f in fires]
    assert days == cal.session_days(days[0], days[-1])
    assert date(2026, 12, 25) not in days and date(2027, 1, 1) not in days
    assert all(f.hour == 16 and f.minute == 30 for f in fires)


def test_pipeline_steps_and_on_demand_jobs_have_no_entry_of_their_own() -> None:
    # technical_indicators runs as a step of end_of_day, which has the clock.
    assert "technical_indicators" not in ENTRIES and "end_of_day" in ENTRIES
    assert "health_check" not in ENTRIES  # on demand: no schedule entry at all


def test_every_catalog_cron_job_fires_thrice_in_three_weeks(
    cal: MarketCalendar,
) -> None:
    monday = et(2026, 11, 30)
    for job in CATALOG.scheduled():
        fires = entry_fires(job.name, after=monday, cal=cal, until=monday + timedelta(days=21))
        assert (len(fires) == 3) == (job.schedule is not None and job.schedule.cron is not None)


def test_impossible_combination_ends_at_the_horizon(cal: MarketCalendar) -> None:
    sundays_on_trading_days = fire_times(
        "0 12 * * sun", after=et(2026, 11, 2), calendar=cal, trading_days_only=True
    )
    assert list(sundays_on_trading_days) == []


def test_preview_stops_at_the_end_of_the_calendar(cal: MarketCalendar) -> None:
    last = cal.last_session
    near_end = datetime(last.year, last.month, last.day, 15, 58, tzinfo=NY)
    fires = next_fires("stock_quotes", after=near_end, cal=cal)
    assert fires == [near_end + timedelta(minutes=1)]


def test_the_gate_names_why_a_fire_is_refused(cal: MarketCalendar) -> None:
    def verdict(at: datetime, *, market_hours_only: bool = False, trading: bool = False) -> Verdict:
        return gate(at, cal, market_hours_only=market_hours_only, trading_days_only=trading)

    assert verdict(et(2026, 11, 27, 12, 59), market_hours_only=True) is Verdict.FIRE
    assert verdict(et(2026, 11, 27, 13, 0), market_hours_only=True) is Verdict.MARKET_CLOSED
    assert verdict(et(2026, 11, 26, 17, 30), trading=True) is Verdict.NOT_TRADING_DAY
    assert verdict(et(2026, 11, 27, 17, 30), trading=True) is Verdict.FIRE
    assert verdict(et(2026, 11, 26, 17, 30)) is Verdict.FIRE


def test_fire_times_refuse_naive_instants(cal: MarketCalendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next(fire_times("* * * * *", after=datetime(2026, 11, 27, 12), calendar=cal))
