"""Economic series (``ECONOMIC_SERIES``) and the US release calendar.

Series: ``GDP`` (quarterly), ``CPI``, ``UNRATE``, ``FEDFUNDS``, ``PAYEMS`` (monthly); an
unknown series code raises ValueError listing the known ones. Events are US releases (CPI,
Nonfarm Payrolls, FOMC Rate Decision, ...) at their usual New York times; ``event_id``
depends on name and date only. ``actual`` is filled for future events too (no clock).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from marketq.common.scheduling.calendar import MarketCalendar
from marketq.providers.base import EconomicEvent, EconomicObservation, Importance
from marketq.providers.synthetic.dates import month_index, month_start, nth_weekday
from marketq.providers.synthetic.draws import hex_id, normal, unit

_NEW_YORK = ZoneInfo("America/New_York")
_FOMC_MONTHS = (1, 3, 4, 6, 7, 9, 10, 12)

ECONOMIC_SERIES: dict[str, tuple[str, str]] = {
    "GDP": ("quarterly", "Billions of USD, seasonally adjusted annual rate"),
    "CPI": ("monthly", "Index 1982-1984=100"),
    "UNRATE": ("monthly", "Percent"),
    "FEDFUNDS": ("monthly", "Percent"),
    "PAYEMS": ("monthly", "Thousands of persons"),
}
"""Known series codes: (frequency, unit). Observations are dated by their first day."""


class Economy:
    """``economic_series`` and ``economic_events`` (independent of the symbol universe)."""

    def __init__(self, seed: int, calendar: MarketCalendar) -> None:
        self.seed = seed
        self.calendar = calendar
        self._us_calendar: MarketCalendar | None = None

    def _series_value(self, series: str, period: date) -> float:
        s = self.seed
        t = (period - date(2020, 1, 1)).days / 365.25
        phase = 2.0 * math.pi * unit(s, series, "phase")
        noise = normal(s, series, period.isoformat())
        if series == "GDP":
            return round(21_500.0 * math.exp(0.045 * t) * (1.0 + 0.004 * noise), 1)
        if series == "CPI":
            return round(258.0 * math.exp(0.03 * t) * (1.0 + 0.0012 * noise), 3)
        if series == "UNRATE":
            cycle = 0.5 * (1.0 + math.sin(2.0 * math.pi * t / 7.5 + phase))
            return round(3.5 + 3.0 * cycle**2 + 0.08 * noise, 1)
        if series == "FEDFUNDS":
            cycle = 0.5 * (1.0 + math.sin(2.0 * math.pi * t / 9.0 + phase))
            return round(max(0.05, 0.08 + 5.3 * cycle + 0.02 * noise), 2)
        if series == "PAYEMS":
            cycle = math.sin(2.0 * math.pi * t / 7.5 + phase)
            return round(150_000.0 * math.exp(0.012 * t) * (1.0 + 0.01 * cycle) + 60 * noise, 0)
        raise ValueError(self._unknown_series(series))

    @staticmethod
    def _unknown_series(series: str) -> str:
        return f"unknown economic series {series!r}; known: {', '.join(ECONOMIC_SERIES)}"

    def economic_series(self, series: str, start: date, end: date) -> list[EconomicObservation]:
        """Observations whose period (dated by its first day) starts in [start, end].

        Known codes are ``ECONOMIC_SERIES``; any other raises ``ValueError``."""
        if series not in ECONOMIC_SERIES:
            raise ValueError(self._unknown_series(series))
        frequency, unit = ECONOMIC_SERIES[series]
        step = 3 if frequency == "quarterly" else 1
        out: list[EconomicObservation] = []
        mi = month_index(start)
        mi += (-mi) % step
        while (period := month_start(mi)) <= end:
            if period >= start:
                out.append(
                    EconomicObservation(
                        series=series, period=period, value=self._series_value(series, period),
                        unit=unit,
                    )
                )  # fmt: skip
            mi += step
        return out

    def _business_day(self, day: date, *, forward: bool = True) -> date:
        """A US business day: the exchange session on/after (or before) ``day``."""
        cal = self._us_calendar
        if cal is None:
            cal = self.calendar if self.calendar.code == "XNYS" else MarketCalendar("XNYS")
            self._us_calendar = cal
        return cal.session_on_or_after(day) if forward else cal.session_on_or_before(day)

    def _events_of_month(self, mi: int) -> Iterator[EconomicEvent]:
        year, m0 = divmod(mi, 12)
        month = m0 + 1
        v = self._series_value
        prev1, prev2, prev13 = month_start(mi - 1), month_start(mi - 2), month_start(mi - 13)
        prev14 = month_start(mi - 14)

        def event(
            name: str, day: date, at: time, importance: Importance, actual: float,
            previous: float, spread: float, digits: int = 1,
        ) -> EconomicEvent:  # fmt: skip
            scheduled = datetime.combine(day, at, tzinfo=_NEW_YORK).astimezone(UTC)
            noise = normal(self.seed, "event-forecast", name, day.isoformat())
            return EconomicEvent(
                event_id="us-" + hex_id("US", name, day.isoformat()),
                name=name,
                country="US",
                scheduled_at=scheduled,
                importance=importance,
                forecast=round(actual + spread * noise, digits),
                previous=round(previous, digits),
                actual=round(actual, digits),
            )

        def yoy(a: date, b: date) -> float:
            return 100.0 * (v("CPI", a) / v("CPI", b) - 1.0)

        eight_thirty, ten = time(8, 30), time(10, 0)
        # Nonfarm Payrolls and the unemployment rate: first Friday, 08:30 ET.
        nfp_day = self._business_day(nth_weekday(year, month, 4, 1), forward=False)
        payrolls = v("PAYEMS", prev1) - v("PAYEMS", prev2)
        payrolls_prev = v("PAYEMS", prev2) - v("PAYEMS", month_start(mi - 3))
        yield event(
            "Nonfarm Payrolls", nfp_day, eight_thirty, "high", payrolls, payrolls_prev, 40.0, 0
        )
        yield event(
            "Unemployment Rate", nfp_day, eight_thirty, "high", v("UNRATE", prev1),
            v("UNRATE", prev2), 0.1,
        )  # fmt: skip
        # ISM Manufacturing PMI: first business day, 10:00 ET.
        pmi = 50.0 + 4.0 * normal(self.seed, "PMI", mi)
        pmi_prev = 50.0 + 4.0 * normal(self.seed, "PMI", mi - 1)
        yield event(
            "ISM Manufacturing PMI", self._business_day(date(year, month, 1)), ten, "medium",
            pmi, pmi_prev, 1.0,
        )  # fmt: skip
        # CPI: around the 10th-14th, 08:30 ET, year-over-year % for the previous month.
        cpi_day = self._business_day(date(year, month, 10 + int(unit("cpi-day", mi) * 5)))
        yield event(
            "CPI", cpi_day, eight_thirty, "high", yoy(prev1, prev13), yoy(prev2, prev14), 0.1
        )
        # Retail Sales: around the 15th, 08:30 ET, month-over-month %.
        sales = 0.3 + 0.6 * normal(self.seed, "retail", mi)
        sales_prev = 0.3 + 0.6 * normal(self.seed, "retail", mi - 1)
        yield event(
            "Retail Sales", self._business_day(date(year, month, 15)), eight_thirty, "medium",
            sales, sales_prev, 0.3,
        )  # fmt: skip
        # Consumer Confidence: last Tuesday, 10:00 ET.
        confidence = 100.0 + 8.0 * normal(self.seed, "confidence", mi)
        confidence_prev = 100.0 + 8.0 * normal(self.seed, "confidence", mi - 1)
        yield event(
            "Consumer Confidence", self._business_day(nth_weekday(year, month, 1, -1)), ten,
            "low", confidence, confidence_prev, 3.0,
        )  # fmt: skip
        # FOMC Rate Decision: eight meetings a year, third Wednesday, 14:00 ET; the value
        # is the upper bound of the target range (FEDFUNDS rounded up to a quarter point).
        if month in _FOMC_MONTHS:
            k = _FOMC_MONTHS.index(month)
            prev_meeting = mi - (month - _FOMC_MONTHS[k - 1]) % 12
            rate = math.ceil(v("FEDFUNDS", month_start(mi)) * 4.0) / 4.0
            rate_prev = math.ceil(v("FEDFUNDS", month_start(prev_meeting)) * 4.0) / 4.0
            yield event(
                "FOMC Rate Decision", self._business_day(nth_weekday(year, month, 2, 3)),
                time(14, 0), "high", rate, rate_prev, 0.0, 2,
            )  # fmt: skip
        # GDP (advance estimate): last Thursday of Jan/Apr/Jul/Oct, annualised q/q %.
        if month in (1, 4, 7, 10):
            q_prev = month_start(mi - 3)
            growth = 100.0 * ((v("GDP", q_prev) / v("GDP", month_start(mi - 6))) ** 4 - 1.0)
            growth_prev = 100.0 * (
                (v("GDP", month_start(mi - 6)) / v("GDP", month_start(mi - 9))) ** 4 - 1.0
            )
            gdp_day = self._business_day(nth_weekday(year, month, 3, -1), forward=False)
            yield event(
                "GDP (Advance)", gdp_day, eight_thirty, "high", growth, growth_prev, 0.3,
            )  # fmt: skip

    def _jobless_claims(self, start: date, end: date) -> Iterator[EconomicEvent]:
        """Initial Jobless Claims: Thursdays 08:30 ET (Wednesday when Thursday is closed)."""
        day = start + timedelta(days=(3 - start.weekday()) % 7)
        while day <= end + timedelta(days=1):
            actual_day = self._business_day(day, forward=False)
            week = day.toordinal() // 7
            claims = 225.0 + 20.0 * normal(self.seed, "claims", week)
            claims_prev = 225.0 + 20.0 * normal(self.seed, "claims", week - 1)
            scheduled = datetime.combine(actual_day, time(8, 30), tzinfo=_NEW_YORK)
            noise = normal(self.seed, "event-forecast", "claims", week)
            yield EconomicEvent(
                event_id="us-" + hex_id("US", "Initial Jobless Claims", actual_day.isoformat()),
                name="Initial Jobless Claims",
                country="US",
                scheduled_at=scheduled.astimezone(UTC),
                importance="medium",
                forecast=round(claims + 10.0 * noise, 0),
                previous=round(claims_prev, 0),
                actual=round(claims, 0),
            )
            day += timedelta(days=7)

    def economic_events(self, start: date, end: date) -> list[EconomicEvent]:
        """US releases scheduled (New York date) in [start, end], ordered by time then name."""
        out: list[EconomicEvent] = []
        if start > end:
            return out
        events = list(self._jobless_claims(start, end))
        for mi in range(month_index(start), month_index(end) + 1):
            events.extend(self._events_of_month(mi))
        for e in events:
            if start <= e.scheduled_at.astimezone(_NEW_YORK).date() <= end:
                out.append(e)
        out.sort(key=lambda e: (e.scheduled_at, e.name))
        return out
