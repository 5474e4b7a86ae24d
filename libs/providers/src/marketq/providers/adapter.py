"""What a vendor adapter starts from: every provider method refuses with a clear
"not offered by <vendor>" (``NotOfferedError``, permanent) until the adapter overrides
it, so no vendor fakes data it does not publish."""

from __future__ import annotations

from datetime import date, datetime

from marketq.providers.base import (
    CompanyProfile,
    DailyBar,
    Dividend,
    EarningsCalendarEntry,
    EarningsReport,
    EarningsTranscript,
    EconomicEvent,
    EconomicObservation,
    Fundamentals,
    NewsArticle,
    OptionContract,
    Quote,
)
from marketq.providers.errors import NotOfferedError


class VendorAdapter:
    name: str

    def _not_offered(self, what: str) -> NotOfferedError:
        return NotOfferedError(self.name, what)

    def quote(self, symbol: str, at: datetime) -> Quote:
        raise self._not_offered("quote")

    def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        raise self._not_offered("daily_bars")

    def option_chain(
        self, symbol: str, as_of: datetime, expirations: int, strikes_per_side: int
    ) -> list[OptionContract]:
        raise self._not_offered("option_chain")

    def fundamentals(self, symbol: str, as_of: date, periods: int) -> list[Fundamentals]:
        raise self._not_offered("fundamentals")

    def dividends(self, symbol: str, start: date, end: date) -> list[Dividend]:
        raise self._not_offered("dividends")

    def earnings(self, symbol: str, as_of: date, quarters: int) -> list[EarningsReport]:
        raise self._not_offered("earnings")

    def earnings_calendar(
        self, symbols: list[str], start: date, end: date
    ) -> list[EarningsCalendarEntry]:
        raise self._not_offered("earnings_calendar")

    def earnings_transcript(self, symbol: str, fiscal_period: str) -> EarningsTranscript:
        raise self._not_offered("earnings_transcript")

    def news(self, symbol: str, since: datetime, until: datetime, limit: int) -> list[NewsArticle]:
        raise self._not_offered("news")

    def economic_series(self, series: str, start: date, end: date) -> list[EconomicObservation]:
        raise self._not_offered("economic_series")

    def economic_events(self, start: date, end: date) -> list[EconomicEvent]:
        raise self._not_offered("economic_events")

    def company_profile(self, symbol: str) -> CompanyProfile:
        raise self._not_offered("company_profile")
