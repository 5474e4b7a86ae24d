"""Five-field cron expressions evaluated on an exchange's wall clock.

``CronExpression.parse("*/5 9-16 * * mon-fri")`` understands what Vixie cron does:
numbers, ``*``, ranges ``a-b``, steps ``*/n``, ``a-b/n`` and ``a/n``, lists ``a,b``, month
names (``jan``..``dec``), weekday names (``sun``..``sat``; ``0`` and ``7`` are Sunday), and
the rule that a day matches when *either* day-of-month or day-of-week matches if both are
restricted (neither starts with ``*``). Macros (``@daily``), seconds, ``L``, ``W`` and
``#`` are not supported: a schedule that needs them belongs in code, not in the catalog.

Fire times are wall-clock times in a time zone, so daylight saving time needs rules.
These are Vixie cron's, which operators already know:

* A wall time the clock skips (spring forward, e.g. 02:30 in New York on the second
  Sunday of March): a *fixed-time* job (neither minute nor hour field starts with ``*``)
  fires once, at the first minute after the jump (03:00); a *wildcard* job (minute or
  hour starts with ``*``: ``*/30 * * * *``, ``5 * * * *``) just has no fire there.
* A wall time the clock shows twice (fall back, 01:00-01:59 in New York): a fixed-time
  job fires once, at the first occurrence; a wildcard job fires at both, so its spacing
  in real time stays what it says.

(croniter, the usual PyPI library, fires ``30 1 * * *`` twice on the fall-back day and
ships no type information; hence this small module.)
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

__all__ = ["CronError", "CronExpression"]

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_ONE_MINUTE = timedelta(minutes=1)
_ONE_DAY = timedelta(days=1)


class CronError(ValueError):
    """A cron expression that cannot be parsed, or can never fire."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: Sequence[str] = ()


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 7, _WEEKDAYS),
)


def _value(text: str, spec: _Field, expression: str) -> int:
    lowered = text.lower()
    if spec.names and lowered in spec.names:
        # Month names count from 1, weekday names from 0 (Sunday).
        return spec.names.index(lowered) + (1 if spec.name == "month" else 0)
    if not text.isdigit():
        raise CronError(f"cron {expression!r}: {spec.name} value {text!r} is not a number")
    number = int(text)
    if not spec.low <= number <= spec.high:
        raise CronError(
            f"cron {expression!r}: {spec.name} {number} is outside {spec.low}-{spec.high}"
        )
    return number


def _parse_field(text: str, spec: _Field, expression: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"cron {expression!r}: empty item in the {spec.name} field")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"cron {expression!r}: bad step {step_text!r} in {spec.name}")
            step = int(step_text)
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(first, spec, expression), _value(last, spec, expression)
            if low > high:
                raise CronError(f"cron {expression!r}: range {base!r} in {spec.name} is reversed")
        else:
            low = _value(base, spec, expression)
            # "a/n" means from a to the end of the field, every n.
            high = spec.high if slash else low
        values.update(range(low, high + 1, step))
    if spec.name == "day of week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


def _can_ever_match(days: frozenset[int], months: frozenset[int]) -> bool:
    # 29 February exists in leap years; month 2 has at most 29 days.
    return any(day <= _calendar.monthrange(2024, month)[1] for month in months for day in days)


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A parsed five-field cron expression; build one with ``CronExpression.parse``."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday
    day_of_month_star: bool
    day_of_week_star: bool
    wildcard: bool  # minute or hour starts with "*": the DST rules of a wildcard job

    @classmethod
    def parse(cls, expression: str) -> CronExpression:
        fields = expression.split()
        if len(fields) != 5:
            raise CronError(
                f"cron {expression!r} must have five fields "
                "(minute hour day-of-month month day-of-week)"
            )
        minute, hour, dom, month, dow = (
            _parse_field(text, spec, expression) for text, spec in zip(fields, _FIELDS, strict=True)
        )
        dom_star, dow_star = fields[2].startswith("*"), fields[4].startswith("*")
        # With both day fields restricted either one matching is enough; otherwise the
        # restricted one must match, and a date that never exists never fires.
        if dow_star and not dom_star and not _can_ever_match(dom, month):
            raise CronError(f"cron {expression!r} names a day that never occurs in its months")
        return cls(
            expression=expression,
            minutes=tuple(sorted(minute)),
            hours=tuple(sorted(hour)),
            days_of_month=dom,
            months=month,
            days_of_week=dow,
            day_of_month_star=dom_star,
            day_of_week_star=dow_star,
            wildcard=fields[0].startswith("*") or fields[1].startswith("*"),
        )

    def __str__(self) -> str:
        return self.expression

    # --- matching -----------------------------------------------------------------
    def matches_day(self, day: date) -> bool:
        """Whether the expression fires at some time of ``day`` (a wall-clock date)."""
        if day.month not in self.months:
            return False
        dom_ok = day.day in self.days_of_month
        dow_ok = (day.isoweekday() % 7) in self.days_of_week
        if self.day_of_month_star or self.day_of_week_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def matches(self, wall: datetime) -> bool:
        """Whether the wall-clock minute ``wall`` (its own fields, any zone) matches."""
        return (
            wall.minute in self.minutes
            and wall.hour in self.hours
            and self.matches_day(wall.date())
        )

    # --- fire times -------------------------------------------------------------------
    def fires_on(self, day: date, tz: tzinfo) -> list[datetime]:
        """The instants the expression fires on the wall-clock date ``day`` in ``tz``.

        Aware datetimes in ``tz``, ascending in real time, DST rules applied (see the
        module docstring).
        """
        if not self.matches_day(day):
            return []
        return list(self._day_fires(day, tz, None))

    def fires(
        self, after: datetime, tz: tzinfo, *, until: datetime | None = None
    ) -> Iterator[datetime]:
        """Fire instants strictly after ``after`` and (if given) strictly before ``until``.

        Aware datetimes in ``tz``, ascending. Without ``until`` the iterator is endless
        (every accepted expression fires at least once in eight years); stop consuming it.
        """
        _require_aware(after, "after")
        if until is not None:
            _require_aware(until, "until")
        day = after.astimezone(tz).date()
        last_day = until.astimezone(tz).date() if until is not None else date.max
        while day <= last_day:
            if self.matches_day(day):
                for instant in self._day_fires(day, tz, after):
                    if until is not None and instant >= until:
                        return
                    yield instant
            if day == date.max:
                return
            day += _ONE_DAY

    def next_after(self, after: datetime, tz: tzinfo) -> datetime:
        """The first fire strictly after ``after`` (an aware datetime in ``tz``)."""
        return next(self.fires(after, tz))

    # --- internals --------------------------------------------------------------------
    def _day_fires(self, day: date, tz: tzinfo, after: datetime | None) -> Iterator[datetime]:
        midnight = datetime.combine(day, time(0))
        offset = tz.utcoffset(midnight)
        if offset is None:
            raise ValueError(f"time zone {tz!r} gives no UTC offset")
        if not _has_transition(day, tz):
            # An ordinary day: one fixed offset, wall order is time order; stay lazy
            # (an every-minute expression has 1,440 candidates a day).
            floor = None
            if after is not None:
                floor = after.astimezone(UTC).replace(tzinfo=None) + offset
            for hour in self.hours:
                if floor is not None and midnight.replace(hour=hour, minute=59) <= floor:
                    continue
                for minute in self.minutes:
                    wall = midnight.replace(hour=hour, minute=minute)
                    if floor is not None and wall <= floor:
                        continue
                    yield (wall - offset).replace(tzinfo=UTC).astimezone(tz)
            return
        instants: set[datetime] = set()
        for hour in self.hours:
            for minute in self.minutes:
                instants.update(self._resolve(midnight.replace(hour=hour, minute=minute), tz))
        for instant in sorted(instants):
            if after is None or instant > after:
                yield instant.astimezone(tz)

    def _resolve(self, wall: datetime, tz: tzinfo) -> list[datetime]:
        """UTC instants of one naive wall time on a DST-transition day, by the rules."""
        first = wall.replace(tzinfo=tz)
        if not _exists(first, tz):
            if self.wildcard:
                return []
            # Fixed-time job in the gap: the first minute the clock shows after the jump.
            later = wall
            for _ in range(24 * 60):
                later += _ONE_MINUTE
                candidate = later.replace(tzinfo=tz)
                if _exists(candidate, tz):
                    return [candidate.astimezone(UTC)]
            return []
        second = wall.replace(tzinfo=tz, fold=1)
        if second.utcoffset() != first.utcoffset() and self.wildcard:
            return [first.astimezone(UTC), second.astimezone(UTC)]
        return [first.astimezone(UTC)]


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def _exists(local: datetime, tz: tzinfo) -> bool:
    """Whether an aware wall time really occurs (is not in a spring-forward gap)."""
    return local.astimezone(UTC).astimezone(tz).replace(tzinfo=None, fold=0) == local.replace(
        tzinfo=None, fold=0
    )


def _has_transition(day: date, tz: tzinfo) -> bool:
    """Whether the UTC offset changes during the wall-clock day (checked hour by hour)."""
    start = datetime.combine(day, time(0))
    return len({tz.utcoffset(start + timedelta(hours=h)) for h in range(25)}) > 1
