"""A deterministic synthetic market-data provider: the default, so everything runs offline.

Every record is a pure function of ``(seed, arguments)``: the same seed, symbol and date
give the same numbers in every process and on every run. Randomness comes from ``blake2b``
digests of ``seed|symbol|...`` (:mod:`.draws`), never from Python's per-process ``hash()``.

One module per data kind, all on one price model (:mod:`.prices`):

* :mod:`.quotes`: quotes and daily bars (``adj_close`` up to ``ADJ_REFERENCE_DATE``);
* :mod:`.options`: option chains on monthly expiries (``RISK_FREE_RATE``);
* :mod:`.financials`, :mod:`.earnings`, :mod:`.transcripts`: quarterly statements, reports
  3-6 weeks after each quarter, call transcripts;
* :mod:`.dividends`, :mod:`.news`, :mod:`.economy` (``ECONOMIC_SERIES``),
  :mod:`.companies`.

No clock
    ``economic_events`` fills ``actual`` for future events and ``earnings_transcript``
    returns a transcript for any well-formed period; callers that want "as of now"
    semantics bound their ranges by now. ``earnings`` takes ``as_of`` and leaves
    ``eps_actual``/``revenue_actual`` None for the first quarter not reported by then.

Identity (company name, sector, payer or not, exchange) depends on the symbol only; all
numbers depend on the seed too. Symbols must be upper case (``[A-Z0-9][A-Z0-9.-]*``).
"""

from __future__ import annotations

from datetime import date, datetime

from marketq.common.scheduling.calendar import MarketCalendar
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
from marketq.providers.synthetic.companies import Companies
from marketq.providers.synthetic.dividends import Dividends
from marketq.providers.synthetic.earnings import Earnings
from marketq.providers.synthetic.economy import ECONOMIC_SERIES, Economy
from marketq.providers.synthetic.financials import Financials
from marketq.providers.synthetic.news import NewsFeed
from marketq.providers.synthetic.options import RISK_FREE_RATE, Options, monthly_expirations
from marketq.providers.synthetic.prices import PriceModel
from marketq.providers.synthetic.quotes import ADJ_REFERENCE_DATE, Quotes
from marketq.providers.synthetic.reference import CURRENCIES

__all__ = [
    "ADJ_REFERENCE_DATE",
    "ECONOMIC_SERIES",
    "RISK_FREE_RATE",
    "SyntheticProvider",
    "monthly_expirations",
]


class SyntheticProvider:
    """Deterministic synthetic data for every ``MarketDataProvider`` method."""

    name = "synthetic"

    def __init__(self, seed: int, calendar: MarketCalendar) -> None:
        self.seed = int(seed)
        self.calendar = calendar
        self.country, self.currency = CURRENCIES.get(calendar.code, ("US", "USD"))
        model = PriceModel(self.seed, calendar)
        self._companies = Companies(self.country, self.currency)
        self._dividends = Dividends(model, self.currency)
        self._quotes = Quotes(model, self._dividends)
        self._options = Options(model, self._quotes)
        self._financials = Financials(model)
        self._earnings = Earnings(model, self._financials, self._companies)
        self._news = NewsFeed(model, self._companies)
        self._economy = Economy(self.seed, calendar)

    def __repr__(self) -> str:
        return f"SyntheticProvider(seed={self.seed}, calendar={self.calendar!r})"

    def quote(self, symbol: str, at: datetime) -> Quote:
        return self._quotes.quote(symbol, at)

    def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        return self._quotes.daily_bars(symbol, start, end)

    strike_increment = staticmethod(Options.strike_increment)

    def implied_volatility(self, symbol: str, as_of: datetime, strike: float, time: float) -> float:
        return self._options.implied_volatility(symbol, as_of, strike, time)

    def option_chain(
        self, symbol: str, as_of: datetime, expirations: int, strikes_per_side: int
    ) -> list[OptionContract]:
        return self._options.option_chain(symbol, as_of, expirations, strikes_per_side)

    def fundamentals(self, symbol: str, as_of: date, periods: int) -> list[Fundamentals]:
        return self._financials.fundamentals(symbol, as_of, periods)

    def earnings(self, symbol: str, as_of: date, quarters: int) -> list[EarningsReport]:
        return self._earnings.earnings(symbol, as_of, quarters)

    def earnings_calendar(
        self, symbols: list[str], start: date, end: date
    ) -> list[EarningsCalendarEntry]:
        return self._earnings.earnings_calendar(symbols, start, end)

    def earnings_transcript(self, symbol: str, fiscal_period: str) -> EarningsTranscript:
        return self._earnings.earnings_transcript(symbol, fiscal_period)

    def dividend_yield(self, symbol: str) -> float:
        return self._dividends.dividend_yield(symbol)

    def dividends(self, symbol: str, start: date, end: date) -> list[Dividend]:
        return self._dividends.dividends(symbol, start, end)

    def news(self, symbol: str, since: datetime, until: datetime, limit: int) -> list[NewsArticle]:
        return self._news.news(symbol, since, until, limit)

    def economic_series(self, series: str, start: date, end: date) -> list[EconomicObservation]:
        return self._economy.economic_series(series, start, end)

    def economic_events(self, start: date, end: date) -> list[EconomicEvent]:
        return self._economy.economic_events(start, end)

    def company_profile(self, symbol: str) -> CompanyProfile:
        return self._companies.company_profile(symbol)
