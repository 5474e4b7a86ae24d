"""MarketCalendar against known NYSE facts, checked with independent zoneinfo arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from marketq.common.scheduling.calendar import (
    CalendarRangeError,
    MarketCalendar,
    Session,
    exchange_calendar,
)

NY = ZoneInfo("America/New_York")


def et(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    """A New York wall-clock time as an aware datetime (zoneinfo does the DST maths)."""
    return datetime(y, mo, d, h, mi, s, tzinfo=NY)


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar("XNYS")


# --- exchange_calendar --------------------------------------------------------------


def test_exchange_calendar_is_cached_and_wide() -> None:
    first = exchange_calendar("XNYS")
    assert exchange_calendar("XNYS") is first
    assert str(first.tz) == "America/New_York"
    # Wider than the library default (20 years back, 1 year ahead).
    assert first.first_session.date() <= date(1990, 1, 2)
    assert first.last_session.date() >= date(date.today().year + 9, 12, 1)


def test_unknown_code_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="NOPE"):
        exchange_calendar("NOPE")
    with pytest.raises(ValueError, match="NOPE"):
        MarketCalendar("NOPE")


def test_bounded_calendar_is_clipped_not_rejected() -> None:
    # XSHG cannot be built past its bound_max; the wide range is clipped to it.
    cal = MarketCalendar("XSHG")
    assert cal.tz == ZoneInfo("Asia/Shanghai")
    assert cal.first_session >= date(1990, 12, 3)


def test_settings_timezone_comes_from_the_calendar() -> None:
    from marketq.common.settings import Settings

    assert Settings(exchange="XNYS", exchange_timezone=None).timezone == "America/New_York"
    assert Settings(exchange="XLON", exchange_timezone=None).timezone == "Europe/London"


# --- sessions, holidays, early closes -----------------------------------------------


def test_tz(cal: MarketCalendar) -> None:
    assert cal.tz == NY
    assert cal.code == "XNYS"


@pytest.mark.parametrize(
    "holiday",
    [
        date(2025, 12, 25),  # Christmas
        date(2026, 7, 3),  # Independence Day observed (4 July 2026 is a Saturday)
        date(2026, 1, 19),  # Martin Luther King Jr. Day
        date(2025, 4, 18),  # Good Friday
        date(2025, 1, 9),  # National Day of Mourning (President Carter)
    ],
)
def test_holidays_are_not_sessions(cal: MarketCalendar, holiday: date) -> None:
    assert holiday.weekday() < 5
    assert not cal.is_trading_day(holiday)
    assert cal.session(holiday) is None


def test_weekend_is_closed(cal: MarketCalendar) -> None:
    saturday, sunday = date(2026, 3, 14), date(2026, 3, 15)
    assert (saturday.weekday(), sunday.weekday()) == (5, 6)
    assert not cal.is_trading_day(saturday)
    assert not cal.is_trading_day(sunday)
    assert not cal.is_open(et(2026, 3, 14, 11, 0))


def test_independence_day_neighbours(cal: MarketCalendar) -> None:
    assert cal.is_trading_day(date(2026, 7, 2))
    assert cal.is_trading_day(date(2026, 7, 6))
    # 2 July 2026 closes early? No: only a 3 July trading day closes early.
    session = cal.session(date(2026, 7, 2))
    assert session is not None
    assert session.close == et(2026, 7, 2, 16, 0)


@pytest.mark.parametrize("day", [date(2025, 11, 28), date(2025, 12, 24)])
def test_early_closes_at_13_00_eastern(cal: MarketCalendar, day: date) -> None:
    session = cal.session(day)
    assert session is not None
    assert session.early_close
    assert session.open == et(day.year, day.month, day.day, 9, 30)
    assert session.close == et(day.year, day.month, day.day, 13, 0)
    assert session.minutes == 210
    assert cal.is_open(et(day.year, day.month, day.day, 12, 59, 59))
    assert not cal.is_open(et(day.year, day.month, day.day, 13, 0))


def test_regular_session(cal: MarketCalendar) -> None:
    session = cal.session(date(2025, 12, 23))
    assert session == Session(
        day=date(2025, 12, 23),
        open=datetime(2025, 12, 23, 14, 30, tzinfo=UTC),
        close=datetime(2025, 12, 23, 21, 0, tzinfo=UTC),
        early_close=False,
    )
    assert session.open.utcoffset() == timedelta(0)
    assert session.minutes == 390


def test_dst_switch_moves_the_open_in_utc(cal: MarketCalendar) -> None:
    # US DST starts Sunday 8 March 2026.
    before = cal.session(date(2026, 3, 6))
    after = cal.session(date(2026, 3, 9))
    assert before is not None
    assert after is not None
    assert before.open == datetime(2026, 3, 6, 14, 30, tzinfo=UTC)
    assert after.open == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    # Same wall-clock time in New York on both days.
    assert before.open.astimezone(NY).time() == after.open.astimezone(NY).time()
    assert after.close == datetime(2026, 3, 9, 20, 0, tzinfo=UTC)


def test_sessions_of_2025_match_an_independent_count(cal: MarketCalendar) -> None:
    holidays = {
        date(2025, 1, 1),
        date(2025, 1, 9),
        date(2025, 1, 20),
        date(2025, 2, 17),
        date(2025, 4, 18),
        date(2025, 5, 26),
        date(2025, 6, 19),
        date(2025, 7, 4),
        date(2025, 9, 1),
        date(2025, 11, 27),
        date(2025, 12, 25),
    }
    early = {date(2025, 7, 3), date(2025, 11, 28), date(2025, 12, 24)}
    expected = [
        d
        for d in (date(2025, 1, 1) + timedelta(days=i) for i in range(365))
        if d.weekday() < 5 and d not in holidays
    ]
    sessions = cal.sessions(date(2025, 1, 1), date(2025, 12, 31))
    assert [s.day for s in sessions] == expected
    assert len(sessions) == 250
    for s in sessions:
        y, m, d = s.day.year, s.day.month, s.day.day
        assert s.open == et(y, m, d, 9, 30)
        assert s.close == et(y, m, d, 13 if s.day in early else 16, 0)
        assert s.early_close == (s.day in early)
        assert s.open.tzinfo is not None
        assert s.open.utcoffset() == timedelta(0)


def test_sessions_edges(cal: MarketCalendar) -> None:
    assert cal.sessions(date(2026, 3, 10), date(2026, 3, 9)) == []
    assert [s.day for s in cal.sessions(date(2026, 3, 13), date(2026, 3, 16))] == [
        date(2026, 3, 13),
        date(2026, 3, 16),
    ]
    assert cal.sessions(date(2026, 3, 14), date(2026, 3, 15)) == []


# --- instants -----------------------------------------------------------------------


def test_is_open_at_the_bell(cal: MarketCalendar) -> None:
    assert not cal.is_open(et(2026, 3, 10, 9, 29, 59))
    assert cal.is_open(et(2026, 3, 10, 9, 30))
    assert cal.is_open(et(2026, 3, 10, 15, 59, 59))
    assert not cal.is_open(et(2026, 3, 10, 16, 0))
    # The same instant expressed in UTC gives the same answer.
    assert cal.is_open(datetime(2026, 3, 10, 13, 30, tzinfo=UTC))
    assert not cal.is_open(datetime(2026, 3, 10, 13, 29, 59, tzinfo=UTC))
    assert not cal.is_open(et(2025, 12, 25, 12, 0))


def test_naive_datetimes_are_rejected(cal: MarketCalendar) -> None:
    naive = datetime(2026, 3, 10, 12, 0)
    for method in (
        cal.is_open,
        cal.next_open,
        cal.next_close,
        cal.last_completed_session,
        cal.current_session,
    ):
        with pytest.raises(ValueError, match="naive"):
            method(naive)


def test_dates_must_be_dates(cal: MarketCalendar) -> None:
    with pytest.raises(TypeError):
        cal.is_trading_day(et(2026, 3, 10, 12))


def test_next_open_over_weekends_and_holidays(cal: MarketCalendar) -> None:
    # Friday evening -> Monday.
    assert cal.next_open(et(2026, 3, 13, 18, 0)) == et(2026, 3, 16, 9, 30)
    # Friday evening before MLK day (Monday 19 Jan 2026) -> Tuesday.
    assert cal.next_open(et(2026, 1, 16, 18, 0)) == et(2026, 1, 20, 9, 30)
    # Saturday -> Monday; before the open -> the same day's open.
    assert cal.next_open(et(2026, 3, 14, 12, 0)) == et(2026, 3, 16, 9, 30)
    assert cal.next_open(et(2026, 3, 10, 7, 0)) == et(2026, 3, 10, 9, 30)
    # During a session, or exactly at its open: the next session's open.
    assert cal.next_open(et(2026, 3, 10, 11, 0)) == et(2026, 3, 11, 9, 30)
    assert cal.next_open(et(2026, 3, 10, 9, 30)) == et(2026, 3, 11, 9, 30)
    # Across the DST switch: Friday 6 March 14:30 UTC open, Monday 9 March 13:30 UTC.
    assert cal.next_open(et(2026, 3, 6, 17, 0)) == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)


def test_next_close(cal: MarketCalendar) -> None:
    assert cal.next_close(et(2026, 3, 10, 11, 0)) == et(2026, 3, 10, 16, 0)
    assert cal.next_close(et(2026, 3, 10, 8, 0)) == et(2026, 3, 10, 16, 0)
    assert cal.next_close(et(2026, 3, 10, 16, 0)) == et(2026, 3, 11, 16, 0)
    assert cal.next_close(et(2026, 3, 13, 17, 0)) == et(2026, 3, 16, 16, 0)
    assert cal.next_close(et(2025, 12, 24, 10, 0)) == et(2025, 12, 24, 13, 0)
    assert cal.next_close(et(2025, 12, 24, 14, 0)) == et(2025, 12, 26, 16, 0)


def test_current_session(cal: MarketCalendar) -> None:
    inside = cal.current_session(et(2026, 3, 10, 10, 0))
    assert inside is not None
    assert inside.day == date(2026, 3, 10)
    assert cal.current_session(et(2026, 3, 10, 16, 0)) is None
    assert cal.current_session(et(2026, 3, 14, 10, 0)) is None


def test_previous_session(cal: MarketCalendar) -> None:
    assert cal.previous_session(date(2026, 1, 20)) == date(2026, 1, 16)  # over MLK day
    assert cal.previous_session(date(2026, 3, 16)) == date(2026, 3, 13)
    assert cal.previous_session(date(2026, 3, 15)) == date(2026, 3, 13)  # from a Sunday
    assert cal.previous_session(date(2025, 12, 26)) == date(2025, 12, 24)
    assert cal.next_session(date(2025, 12, 24)) == date(2025, 12, 26)
    assert cal.session_on_or_after(date(2026, 7, 3)) == date(2026, 7, 6)
    assert cal.session_on_or_before(date(2026, 7, 3)) == date(2026, 7, 2)
    assert cal.session_on_or_before(date(2026, 7, 2)) == date(2026, 7, 2)


def test_last_completed_session(cal: MarketCalendar) -> None:
    assert cal.last_completed_session(et(2026, 3, 14, 12, 0)).day == date(2026, 3, 13)
    assert cal.last_completed_session(et(2026, 3, 10, 15, 59)).day == date(2026, 3, 9)
    assert cal.last_completed_session(et(2026, 3, 10, 16, 0)).day == date(2026, 3, 10)
    assert cal.last_completed_session(et(2026, 1, 19, 20, 0)).day == date(2026, 1, 16)
    assert cal.last_completed_session(et(2025, 12, 24, 13, 0)).early_close


def test_out_of_range_is_a_clear_error(cal: MarketCalendar) -> None:
    with pytest.raises(CalendarRangeError, match="XNYS calendar"):
        cal.session(date(1900, 1, 2))
    with pytest.raises(ValueError, match="outside"):
        cal.is_open(datetime(1980, 1, 2, 15, tzinfo=UTC))
    with pytest.raises(CalendarRangeError):
        cal.sessions(date(1980, 1, 1), date(2000, 1, 1))
    far = date(cal.last_session.year + 5, 1, 1)
    with pytest.raises(CalendarRangeError):
        cal.is_trading_day(far)
    last = cal.session(cal.last_session)
    assert last is not None
    with pytest.raises(CalendarRangeError):
        cal.next_open(last.open + timedelta(minutes=1))


def test_lunch_break_calendar_is_closed_during_the_break() -> None:
    hk = MarketCalendar("XHKG")
    tz = ZoneInfo("Asia/Hong_Kong")
    assert hk.is_open(datetime(2026, 3, 10, 10, 0, tzinfo=tz))
    assert not hk.is_open(datetime(2026, 3, 10, 12, 30, tzinfo=tz))
    assert hk.is_open(datetime(2026, 3, 10, 13, 30, tzinfo=tz))
