"""Start-up check that the exchange calendar reaches far enough ahead.

exchange-calendars knows each exchange's sessions only up to a fixed date (some
exchanges' calendars end within months). Past it, beat skips every fire that needs the
calendar (``calendar_out_of_range``); this check says so at start-up, while there is
still time to upgrade exchange-calendars.
"""

from __future__ import annotations

from datetime import date

from marketq.common.scheduling.calendar import MarketCalendar


def calendar_horizon_problem(calendar: MarketCalendar, today: date, min_days: int) -> str | None:
    """Why ``calendar`` does not cover ``min_days`` ahead of ``today``, or None if it does."""
    last = calendar.last_session
    left = (last - today).days
    if left >= min_days:
        return None
    coverage = f"ended {-left} days ago" if left < 0 else f"covers only {left} days ahead"
    return (
        f"the {calendar.code} exchange calendar (exchange-calendars) ends on "
        f"{last.isoformat()}: it {coverage}, less than "
        f"MARKETQ_BEAT_CALENDAR_MIN_HORIZON_DAYS={min_days}; past its end, fires of "
        "market-hours and trading-day entries are skipped (calendar_out_of_range). "
        "Upgrade exchange-calendars to extend it."
    )
