"""Date arithmetic shared by the data kinds: quarters, months, n-th weekdays, instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def aware_utc(at: datetime, name: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def quarter_index(d: date) -> int:
    return d.year * 4 + (d.month - 1) // 3


def quarter_end(qi: int) -> date:
    year, q = divmod(qi, 4)
    month = 3 * q + 3
    return date(year, 12, 31) if month == 12 else date(year, month + 1, 1) - timedelta(days=1)


def fiscal_period(qi: int) -> str:
    year, q = divmod(qi, 4)
    return f"{year}Q{q + 1}"


def month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def month_start(mi: int) -> date:
    year, m = divmod(mi, 12)
    return date(year, m + 1, 1)


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based) ``weekday`` (Mon=0) of a month; n=-1 for the last."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)
