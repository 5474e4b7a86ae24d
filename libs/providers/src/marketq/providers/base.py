"""The market-data provider interface and the records it returns.

Every adapter (the synthetic default and the vendors) returns these frozen records; the
worker maps them one-to-one onto database rows. Prices are floats in the instrument's
currency, volumes are share counts, timestamps are timezone-aware UTC.

A field a vendor does not publish is ``None``, never a made-up value. ``source`` (the
adapter that produced the record) and ``fetched_at`` are stamped by the routing layer
when the record is fetched; adapters leave them at their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

OptionType = Literal["call", "put"]
PeriodType = Literal["quarter", "annual"]
EarningsTime = Literal["bmo", "amc"]  # before market open / after market close
Importance = Literal["low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    ts: datetime  # the minute the quote describes (UTC, seconds zeroed)
    price: float
    bid: float | None
    ask: float | None
    bid_size: int | None
    ask_size: int | None
    volume: int  # cumulative session volume up to ts
    change: float  # vs previous close
    change_percent: float
    source: str = ""
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DailyBar:
    symbol: str
    day: date
    open: float
    high: float
    low: float
    close: float
    adj_close: float
    volume: int
    source: str = ""
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OptionContract:
    underlying: str
    as_of: datetime  # snapshot time (UTC)
    expiration: date
    strike: float
    option_type: OptionType
    bid: float
    ask: float
    last: float
    implied_volatility: float
    delta: float
    gamma: float
    theta: float  # per calendar day
    vega: float  # per 1.00 change in volatility
    open_interest: int | None
    volume: int | None
    underlying_price: float
    source: str = ""
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Fundamentals:
    symbol: str
    period_end: date
    period_type: PeriodType
    revenue: float
    net_income: float
    eps: float | None
    total_assets: float | None
    total_liabilities: float | None
    shares_outstanding: int | None
    market_cap: float | None
    pe_ratio: float | None  # also None when earnings are negative
    source: str = ""
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Dividend:
    symbol: str
    ex_date: date
    record_date: date | None
    pay_date: date | None
    declared_date: date | None
    amount: float
    currency: str
    source: str = ""
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EarningsReport:
    symbol: str
    fiscal_period: str  # e.g. "2026Q3"
    report_date: date | None
    eps_estimate: float | None
    eps_actual: float | None  # None until reported
    revenue_estimate: float | None
    revenue_actual: float | None
    source: str = ""
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EarningsCalendarEntry:
    symbol: str
    report_date: date
    fiscal_period: str
    time_of_day: EarningsTime | None
    eps_estimate: float | None
    source: str = ""
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EarningsTranscript:
    symbol: str
    fiscal_period: str
    call_date: date
    content: str
    source: str = ""
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewsArticle:
    article_id: str  # stable id from the source; the natural key
    symbol: str
    published_at: datetime
    headline: str
    summary: str
    publisher: str  # the outlet that published the article
    url: str
    sentiment: float | None  # -1.0 (negative) .. 1.0 (positive)
    source: str = ""
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EconomicObservation:
    series: str  # e.g. "CPI", "UNRATE", "GDP"
    period: date  # first day of the period observed
    value: float
    unit: str
    source: str = ""
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EconomicEvent:
    event_id: str  # stable id; the natural key
    name: str
    country: str
    scheduled_at: datetime
    importance: Importance
    forecast: float | None
    previous: float | None
    actual: float | None
    source: str = ""
    fetched_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CompanyProfile:
    symbol: str
    name: str
    sector: str
    industry: str
    exchange: str
    country: str
    currency: str | None
    employees: int | None
    website: str
    description: str
    source: str = ""
    fetched_at: datetime | None = None


class MarketDataProvider(Protocol):
    """What every market-data adapter offers. Methods are synchronous and pure reads."""

    name: str

    def quote(self, symbol: str, at: datetime) -> Quote: ...

    def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        """Bars of every exchange session in [start, end]."""
        ...

    def option_chain(
        self, symbol: str, as_of: datetime, expirations: int, strikes_per_side: int
    ) -> list[OptionContract]: ...

    def fundamentals(self, symbol: str, as_of: date, periods: int) -> list[Fundamentals]:
        """The last ``periods`` quarterly statements whose period ended before ``as_of``."""
        ...

    def dividends(self, symbol: str, start: date, end: date) -> list[Dividend]:
        """Dividends with an ex-date in [start, end] (none for non-payers)."""
        ...

    def earnings(self, symbol: str, as_of: date, quarters: int) -> list[EarningsReport]: ...

    def earnings_calendar(
        self, symbols: list[str], start: date, end: date
    ) -> list[EarningsCalendarEntry]: ...

    def earnings_transcript(self, symbol: str, fiscal_period: str) -> EarningsTranscript: ...

    def news(self, symbol: str, since: datetime, until: datetime, limit: int) -> list[NewsArticle]:
        """Articles published in [since, until), newest first, at most ``limit``."""
        ...

    def economic_series(self, series: str, start: date, end: date) -> list[EconomicObservation]: ...

    def economic_events(self, start: date, end: date) -> list[EconomicEvent]: ...

    def company_profile(self, symbol: str) -> CompanyProfile: ...
