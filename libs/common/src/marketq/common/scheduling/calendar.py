"""Exchange calendars: a thin, typed layer over the ``exchange-calendars`` library.

``exchange_calendar(code)`` returns the library's calendar, built once per process over a
wide, fixed-start range (1990-01-01 to the end of the year ten years from now, clipped to
what the exchange's calendar class supports) instead of the library default of twenty
years back and one year ahead.

``MarketCalendar`` answers the questions the scheduler, the jobs and the providers ask
(is the market open at this instant, which sessions fall in a date range, when is the
next open or close) from plain numpy arrays, so each answer costs microseconds. All
instants are timezone-aware; a naive ``datetime`` is rejected with ``ValueError``. A date
outside the calendar's range raises ``CalendarRangeError`` (a ``ValueError``) that names
the range, rather than silently answering "closed".
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import numpy.typing as npt

__all__ = [
    "CalendarRangeError",
    "MarketCalendar",
    "Session",
    "exchange_calendar",
]

CALENDAR_START = date(1990, 1, 1)
"""First day of the range every calendar is built over (clipped to the exchange's bound)."""
CALENDAR_YEARS_AHEAD = 10
"""Calendars extend to the end of the year this many years after the current one."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_US = 1_000
_NS_PER_DAY = 86_400 * 1_000_000_000
_ORDINAL_1970 = date(1970, 1, 1).toordinal()
_NAT = np.iinfo(np.int64).min

IntArray = npt.NDArray[np.int64]


class CalendarRangeError(ValueError):
    """A date or instant lies outside the sessions the calendar covers."""


@contextmanager
def _quiet_library() -> Iterator[None]:
    # exchange-calendars 4.x triggers pandas' own deprecation warnings while it builds a
    # calendar; they are about the library's internals, not about marketq's use of it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


@lru_cache(maxsize=32)
def exchange_calendar(code: str) -> Any:
    """The ``exchange_calendars.ExchangeCalendar`` for ``code`` (e.g. "XNYS"), cached.

    Raises ``ValueError`` naming the code when exchange-calendars does not know it.
    The return type is ``Any`` because exchange-calendars ships no type information.
    """
    with _quiet_library():
        return _build_calendar(code)


def _build_calendar(code: str) -> Any:
    try:
        name = xcals.resolve_alias(code)
    except xcals.errors.InvalidCalendarName:
        raise ValueError(
            f"unknown exchange calendar code {code!r} (exchange-calendars has no such "
            "calendar; e.g. XNYS, XNAS, XLON, XTKS)"
        ) from None
    start = CALENDAR_START
    end = date(date.today().year + CALENDAR_YEARS_AHEAD, 12, 31)
    try:
        return xcals.get_calendar(name, start=start.isoformat(), end=end.isoformat())
    except ValueError:
        # The calendar class bounds its range (e.g. XSHG, XSAU): clip to the bounds.
        cls = type(xcals.get_calendar(name))
        bound_min, bound_max = cls.bound_min(), cls.bound_max()
        if bound_min is not None:
            start = max(start, bound_min.date())
        if bound_max is not None:
            end = min(end, bound_max.date())
        return xcals.get_calendar(name, start=start.isoformat(), end=end.isoformat())


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session. ``open`` and ``close`` are timezone-aware UTC datetimes."""

    day: date
    open: datetime
    close: datetime
    early_close: bool

    @property
    def minutes(self) -> int:
        """Length of the session in whole minutes (390 for a regular NYSE session)."""
        return int((self.close - self.open) // timedelta(minutes=1))


def _to_ns(at: datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got naive {at.isoformat()}")
    return ((at - _EPOCH) // timedelta(microseconds=1)) * _NS_PER_US


def _from_ns(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // _NS_PER_US)


class MarketCalendar:
    """Sessions, opens and closes of one exchange (default NYSE, "XNYS")."""

    def __init__(self, code: str = "XNYS") -> None:
        cal = exchange_calendar(code)
        with _quiet_library():
            self._load(code, cal)

    def _load(self, code: str, cal: Any) -> None:
        self._code = code
        self._tz: ZoneInfo = ZoneInfo(str(cal.tz))
        sessions_ns: IntArray = np.asarray(cal.sessions_nanos, dtype=np.int64)
        self._ordinals: IntArray = sessions_ns // _NS_PER_DAY + _ORDINAL_1970
        self._opens: IntArray = np.asarray(cal.opens_nanos, dtype=np.int64)
        self._closes: IntArray = np.asarray(cal.closes_nanos, dtype=np.int64)
        self._has_break = bool(cal.has_break)
        self._break_starts: IntArray = np.asarray(cal.break_starts_nanos, dtype=np.int64)
        self._break_ends: IntArray = np.asarray(cal.break_ends_nanos, dtype=np.int64)
        early = np.asarray(cal.early_closes.asi8, dtype=np.int64) // _NS_PER_DAY + _ORDINAL_1970
        self._early: npt.NDArray[np.bool_] = np.isin(self._ordinals, early)
        self._index: dict[int, int] = {int(o): i for i, o in enumerate(self._ordinals.tolist())}
        self._first = date.fromordinal(int(self._ordinals[0]))
        self._last = date.fromordinal(int(self._ordinals[-1]))

    def __repr__(self) -> str:
        return f"MarketCalendar({self._code!r})"

    # --- properties -------------------------------------------------------------
    @property
    def code(self) -> str:
        return self._code

    @property
    def tz(self) -> ZoneInfo:
        """The exchange's time zone (America/New_York for XNYS)."""
        return self._tz

    @property
    def first_session(self) -> date:
        return self._first

    @property
    def last_session(self) -> date:
        return self._last

    # --- internals --------------------------------------------------------------
    def _range_error(self, what: date | datetime) -> CalendarRangeError:
        return CalendarRangeError(
            f"{what.isoformat()} is outside the {self._code} calendar, which covers "
            f"sessions {self._first.isoformat()} to {self._last.isoformat()}"
        )

    def _check_day(self, day: date) -> None:
        if isinstance(day, datetime):
            raise TypeError("expected a date, got a datetime")
        if not self._first <= day <= self._last:
            raise self._range_error(day)

    def _check_instant(self, at: datetime) -> int:
        ns = _to_ns(at)
        local_day = at.astimezone(self._tz).date()
        if not self._first <= local_day <= self._last:
            raise self._range_error(at)
        return ns

    def _session_at(self, i: int) -> Session:
        return Session(
            day=date.fromordinal(int(self._ordinals[i])),
            open=_from_ns(int(self._opens[i])),
            close=_from_ns(int(self._closes[i])),
            early_close=bool(self._early[i]),
        )

    # --- queries ----------------------------------------------------------------
    def is_trading_day(self, day: date) -> bool:
        """Whether ``day`` is a session (not a weekend or holiday)."""
        self._check_day(day)
        return day.toordinal() in self._index

    def session(self, day: date) -> Session | None:
        """The session on ``day``, or None when the exchange is closed that day."""
        self._check_day(day)
        i = self._index.get(day.toordinal())
        return None if i is None else self._session_at(i)

    def _span(self, start: date, end: date) -> slice:
        if start > end:
            return slice(0, 0)
        self._check_day(start)
        self._check_day(end)
        lo = int(np.searchsorted(self._ordinals, start.toordinal(), side="left"))
        hi = int(np.searchsorted(self._ordinals, end.toordinal(), side="right"))
        return slice(lo, hi)

    def sessions(self, start: date, end: date) -> list[Session]:
        """Every session with ``start <= day <= end`` (empty when start > end)."""
        span = self._span(start, end)
        return [self._session_at(i) for i in range(span.start, span.stop)]

    def session_days(self, start: date, end: date) -> list[date]:
        """The days of ``sessions(start, end)``, without building ``Session`` objects."""
        return [date.fromordinal(o) for o in self._ordinals[self._span(start, end)].tolist()]

    def session_minutes(self, start: date, end: date) -> list[int]:
        """The lengths in minutes of ``sessions(start, end)`` (210 on an NYSE early close)."""
        span = self._span(start, end)
        lengths = (self._closes[span] - self._opens[span]) // (60 * 1_000_000_000)
        return [int(m) for m in lengths.tolist()]

    def current_session(self, at: datetime) -> Session | None:
        """The session in progress at ``at`` (open <= at < close), else None."""
        ns = self._check_instant(at)
        i = int(np.searchsorted(self._opens, ns, side="right")) - 1
        if i >= 0 and ns < self._closes[i]:
            return self._session_at(i)
        return None

    def is_open(self, at: datetime) -> bool:
        """Whether the market is open at ``at``: open <= at < close, outside any break."""
        ns = self._check_instant(at)
        i = int(np.searchsorted(self._opens, ns, side="right")) - 1
        if i < 0 or ns >= self._closes[i]:
            return False
        if self._has_break and self._break_starts[i] != _NAT:
            return not self._break_starts[i] <= ns < self._break_ends[i]
        return True

    def next_open(self, at: datetime) -> datetime:
        """The first session open strictly after ``at``."""
        ns = self._check_instant(at)
        i = int(np.searchsorted(self._opens, ns, side="right"))
        if i >= len(self._opens):
            raise self._range_error(at)
        return _from_ns(int(self._opens[i]))

    def next_close(self, at: datetime) -> datetime:
        """The close of the session in progress at ``at``, else of the next session.

        Equivalently the first close strictly after ``at`` (at a close the session is over).
        """
        ns = self._check_instant(at)
        i = int(np.searchsorted(self._closes, ns, side="right"))
        if i >= len(self._closes):
            raise self._range_error(at)
        return _from_ns(int(self._closes[i]))

    def previous_session(self, day: date) -> date:
        """The last session strictly before ``day`` (``day`` need not be a session)."""
        self._check_day(day)
        i = int(np.searchsorted(self._ordinals, day.toordinal(), side="left")) - 1
        if i < 0:
            raise self._range_error(day)
        return date.fromordinal(int(self._ordinals[i]))

    def next_session(self, day: date) -> date:
        """The first session strictly after ``day`` (``day`` need not be a session)."""
        self._check_day(day)
        i = int(np.searchsorted(self._ordinals, day.toordinal(), side="right"))
        if i >= len(self._ordinals):
            raise self._range_error(day)
        return date.fromordinal(int(self._ordinals[i]))

    def session_on_or_after(self, day: date) -> date:
        """``day`` when it is a session, else the next session."""
        return day if self.is_trading_day(day) else self.next_session(day)

    def session_on_or_before(self, day: date) -> date:
        """``day`` when it is a session, else the previous session."""
        return day if self.is_trading_day(day) else self.previous_session(day)

    def last_completed_session(self, at: datetime) -> Session:
        """The most recent session whose close is at or before ``at``."""
        ns = self._check_instant(at)
        i = int(np.searchsorted(self._closes, ns, side="right")) - 1
        if i < 0:
            raise self._range_error(at)
        return self._session_at(i)
