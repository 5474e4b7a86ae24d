"""A deterministic synthetic market-data provider: the default, so everything runs offline.

Every record is a pure function of ``(seed, arguments)``: the same seed, symbol and date
give the same numbers in every process and on every run. There is no clock: a method
asked about the future answers about the future (see "no clock" below). Randomness comes
from ``blake2b`` digests of ``seed|symbol|...`` that seed numpy ``PCG64`` generators, never
from Python's per-process ``hash()``.

Price model
    Each symbol has hash-derived parameters: a base price (20..600), an annual volatility
    (0.15..0.55), a drift, an average daily volume. The log price follows a random walk
    with fat-tailed (Student-t, 4 dof) daily returns on weekdays and no movement at
    weekends; the level on 2025-01-01 is the base price. Returns are drawn in yearly
    blocks indexed by day of year, so the close on a day is a pure function of
    ``(seed, symbol, day)`` whatever range was asked for, and an exchange holiday does
    not shift any other day's price. Daily bars exist on exchange sessions only; the open
    gaps from the previous close, and high/low are exact draws of the maximum/minimum of a
    Brownian bridge from open to close. Prices are rounded to cents (1/100 of a cent under
    $1).

Quotes (``quote``)
    Inside a session, minute ``t`` reads a one-minute Brownian-bridge path from the day's
    open to its close that is scaled to touch exactly the day's high and low, so every
    quote lies within that day's bar. Volume is cumulative within the session along a
    U-shaped intraday profile (strictly increasing, reaching the bar's volume in the last
    minute). **Outside a session** (before the open, after the close, weekends, holidays)
    the quote is the last completed session's closing state: ``price`` = that close,
    ``volume`` = that session's total volume, ``change`` = that close vs the close before
    it, with the usual bid/ask spread around the close; ``ts`` is still the requested
    minute. Bid < price < ask always.

``adj_close``
    The close adjusted (multiplicatively) for the synthetic dividends with an ex-date after
    the bar and on or before ``ADJ_REFERENCE_DATE`` (4 decimals); bars after that date have
    ``adj_close == close``. A fixed reference keeps bars immutable (an upsert of an old bar
    never changes); the price path itself does not drop on ex-dates.

Options
    Expirations are standard monthly expiries (third Friday, moved to the previous session
    when the Friday is a holiday) strictly after the as-of exchange date. Strikes are
    centred on the underlying at a price-dependent increment. Mid prices are
    Black-Scholes-Merton with ``RISK_FREE_RATE`` and the symbol's continuous
    ``dividend_yield`` on an IV smile around the symbol's volatility; time to expiry runs
    to the expiry session's close over a 365-day year. bid <= model price - half spread
    and ask >= model price + half spread (cents), so ``(bid + ask) / 2`` is within half
    the spread of the model and put-call parity holds within the spreads.

Other data
    Fundamentals are calendar quarters (fiscal == calendar); earnings report 3-6 weeks
    after the quarter end, ``eps_actual`` equals that quarter's fundamentals ``eps``. News
    is generated per (symbol, UTC hour) so overlapping windows return the same articles.
    Economic series: ``GDP`` (quarterly), ``CPI``, ``UNRATE``, ``FEDFUNDS``, ``PAYEMS``
    (monthly); **an unknown series code raises ValueError** listing the known ones.
    Economic events are US releases (CPI, Nonfarm Payrolls, FOMC Rate Decision, ...) at
    their usual New York times; ``event_id`` depends on name and date only.

No clock
    ``economic_events`` fills ``actual`` for future events and ``earnings_transcript``
    returns a transcript for any well-formed period; callers that want "as of now"
    semantics bound their ranges by now. ``earnings`` takes ``as_of`` and leaves
    ``eps_actual``/``revenue_actual`` None for the first quarter not reported by then.

Identity (company name, sector, payer or not, exchange) depends on the symbol only; all
numbers depend on the seed too. Symbols must be upper case (``[A-Z0-9][A-Z0-9.-]*``).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from marketq.common.calendar import MarketCalendar
from marketq.common.providers import blackscholes as bs
from marketq.common.providers.base import (
    CompanyProfile,
    DailyBar,
    Dividend,
    EarningsCalendarEntry,
    EarningsReport,
    EarningsTime,
    EarningsTranscript,
    EconomicEvent,
    EconomicObservation,
    Fundamentals,
    Importance,
    NewsArticle,
    OptionContract,
    OptionType,
    Quote,
)

__all__ = [
    "ADJ_REFERENCE_DATE",
    "ECONOMIC_SERIES",
    "RISK_FREE_RATE",
    "SyntheticProvider",
    "monthly_expirations",
]

FloatArray = npt.NDArray[np.float64]

ANCHOR_DATE = date(2025, 1, 1)
"""The log-price level at the start of this day is the symbol's base price."""
ADJ_REFERENCE_DATE = date(2026, 1, 1)
"""``adj_close`` accounts for dividends with ex-dates up to this day."""
RISK_FREE_RATE = 0.04
"""Continuously compounded rate used to price options."""

_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,14}$")
_PERIOD_RE = re.compile(r"^(\d{4})Q([1-4])$")
_MINUTE = timedelta(minutes=1)
_HOUR_NS = 3_600 * 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NEW_YORK = ZoneInfo("America/New_York")
_TRADING_DAYS = 252.0
_VOLUME_PROFILE_C = 3.0  # U-shaped intraday volume density 1 + c (2x - 1)^2

# --- deterministic hashing ---------------------------------------------------------------


def _digest(*parts: object) -> bytes:
    text = "|".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _unit(*parts: object) -> float:
    """Uniform in [0, 1) from a digest."""
    return (int.from_bytes(_digest(*parts)[:8], "big") >> 11) / float(1 << 53)


def _units(*parts: object) -> tuple[float, float]:
    d = _digest(*parts)
    scale = float(1 << 53)
    return (int.from_bytes(d[:8], "big") >> 11) / scale, (
        int.from_bytes(d[8:], "big") >> 11
    ) / scale


def _normal(*parts: object) -> float:
    """Standard normal from a digest (Box-Muller)."""
    u1, u2 = _units(*parts)
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


def _choice(items: tuple[str, ...], *parts: object) -> str:
    return items[int(_unit(*parts) * len(items))]


def _rng(*parts: object) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(int.from_bytes(_digest(*parts), "big")))


def _hex_id(*parts: object) -> str:
    return hashlib.blake2b("|".join(str(p) for p in parts).encode(), digest_size=10).hexdigest()


# --- small helpers -----------------------------------------------------------------------

K = TypeVar("K")
V = TypeVar("V")


class _LRU(Generic[K, V]):
    """A small bounded, thread-safe memo (dict order as recency).

    ``make`` runs outside the lock: two threads may compute the same value, harmlessly.
    """

    def __init__(self, maxsize: int) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def get(self, key: K, make: Callable[[], V]) -> V:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = make()
        with self._lock:
            self._data[key] = value
            if len(self._data) > self._maxsize:
                self._data.popitem(last=False)
        return value


def _round_price(x: float) -> float:
    return round(x, 2) if x >= 1.0 else round(x, 4)


def _round_prices(x: FloatArray) -> FloatArray:
    return np.where(x >= 1.0, np.round(x, 2), np.round(x, 4))


def _tick(price: float) -> float:
    return 0.01 if price >= 1.0 else 0.0001


def _aware_utc(at: datetime, name: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def _floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _quarter_index(d: date) -> int:
    return d.year * 4 + (d.month - 1) // 3


def _quarter_end(qi: int) -> date:
    year, q = divmod(qi, 4)
    month = 3 * q + 3
    return date(year, 12, 31) if month == 12 else date(year, month + 1, 1) - timedelta(days=1)


def _fiscal_period(qi: int) -> str:
    year, q = divmod(qi, 4)
    return f"{year}Q{q + 1}"


def _month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def _month_start(mi: int) -> date:
    year, m = divmod(mi, 12)
    return date(year, m + 1, 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based) ``weekday`` (Mon=0) of a month; n=-1 for the last."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _check_symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
        raise ValueError(
            f"invalid symbol {symbol!r}: expected upper-case letters, digits, '.' or '-'"
        )
    return symbol


def monthly_expirations(calendar: MarketCalendar, after: date, count: int) -> list[date]:
    """The next ``count`` standard monthly expiries strictly after ``after``.

    A standard expiry is the third Friday of the month, or the session before it when the
    exchange is closed that Friday (e.g. Good Friday 2025-04-18 -> 2025-04-17).
    """
    out: list[date] = []
    year, month = after.year, after.month
    while len(out) < count:
        expiry = calendar.session_on_or_before(_nth_weekday(year, month, 4, 3))
        if expiry > after:
            out.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


# --- reference data ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Known:
    name: str
    sector: str
    industry: str
    exchange: str
    employees: int
    website: str
    dividend_yield: float  # 0.0 for non-payers
    volatility: float | None = None


_KNOWN: dict[str, _Known] = {
    "AAPL": _Known(
        "Apple Inc.", "Technology", "Consumer Electronics", "NASDAQ", 164_000,
        "https://www.apple.com", 0.005, 0.27,
    ),
    "MSFT": _Known(
        "Microsoft Corporation", "Technology", "Software - Infrastructure", "NASDAQ", 228_000,
        "https://www.microsoft.com", 0.008, 0.25,
    ),
    "GOOGL": _Known(
        "Alphabet Inc.", "Communication Services", "Internet Content & Information", "NASDAQ",
        182_000, "https://abc.xyz", 0.0, 0.30,
    ),
    "GOOG": _Known(
        "Alphabet Inc.", "Communication Services", "Internet Content & Information", "NASDAQ",
        182_000, "https://abc.xyz", 0.0, 0.30,
    ),
    "AMZN": _Known(
        "Amazon.com, Inc.", "Consumer Cyclical", "Internet Retail", "NASDAQ", 1_550_000,
        "https://www.amazon.com", 0.0, 0.33,
    ),
    "NVDA": _Known(
        "NVIDIA Corporation", "Technology", "Semiconductors", "NASDAQ", 36_000,
        "https://www.nvidia.com", 0.0003, 0.50,
    ),
    "META": _Known(
        "Meta Platforms, Inc.", "Communication Services", "Internet Content & Information",
        "NASDAQ", 74_000, "https://www.meta.com", 0.004, 0.38,
    ),
    "JPM": _Known(
        "JPMorgan Chase & Co.", "Financial Services", "Banks - Diversified", "NYSE", 317_000,
        "https://www.jpmorganchase.com", 0.022, 0.24,
    ),
    "XOM": _Known(
        "Exxon Mobil Corporation", "Energy", "Oil & Gas Integrated", "NYSE", 61_000,
        "https://corporate.exxonmobil.com", 0.034, 0.26,
    ),
    "JNJ": _Known(
        "Johnson & Johnson", "Healthcare", "Drug Manufacturers - General", "NYSE", 131_900,
        "https://www.jnj.com", 0.031, 0.17,
    ),
    "SPY": _Known(
        "SPDR S&P 500 ETF Trust", "Fund", "Exchange Traded Fund", "NYSE Arca", 0,
        "https://www.ssga.com", 0.013, 0.16,
    ),
    "TSLA": _Known(
        "Tesla, Inc.", "Consumer Cyclical", "Auto Manufacturers", "NASDAQ", 125_000,
        "https://www.tesla.com", 0.0, 0.55,
    ),
    "NFLX": _Known(
        "Netflix, Inc.", "Communication Services", "Entertainment", "NASDAQ", 14_000,
        "https://www.netflix.com", 0.0, 0.40,
    ),
    "BRK.B": _Known(
        "Berkshire Hathaway Inc.", "Financial Services", "Insurance - Diversified", "NYSE",
        392_000, "https://www.berkshirehathaway.com", 0.0, 0.18,
    ),
}  # fmt: skip

_SECTORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Technology", ("Software - Application", "Semiconductors", "IT Services")),
    ("Healthcare", ("Biotechnology", "Medical Devices", "Diagnostics & Research")),
    ("Financial Services", ("Banks - Regional", "Asset Management", "Capital Markets")),
    ("Consumer Cyclical", ("Specialty Retail", "Restaurants", "Auto Parts")),
    ("Consumer Defensive", ("Packaged Foods", "Beverages - Non-Alcoholic", "Household Products")),
    ("Industrials", ("Aerospace & Defense", "Specialty Industrial Machinery", "Railroads")),
    ("Energy", ("Oil & Gas E&P", "Oil & Gas Midstream")),
    ("Utilities", ("Utilities - Regulated Electric", "Utilities - Renewable")),
    ("Real Estate", ("REIT - Industrial", "REIT - Residential")),
    ("Communication Services", ("Telecom Services", "Entertainment", "Advertising Agencies")),
    ("Basic Materials", ("Specialty Chemicals", "Steel", "Gold")),
)
_NAME_HEADS = (
    "Ar", "Bel", "Cor", "Dyn", "El", "Fen", "Gal", "Hal", "Ion", "Jun", "Kel", "Lum", "Mer",
    "Nov", "Or", "Pax", "Quan", "Ryn", "Sol", "Tor", "Ul", "Ver", "Wex", "Xan", "Yor", "Zen",
)  # fmt: skip
_NAME_TAILS = ("a", "ex", "ia", "on", "is", "ora", "us", "yn", "ar", "ium", "eon", "ix")
_NAME_SUFFIXES = (
    "Corp.", "Inc.", "Holdings, Inc.", "Technologies, Inc.", "Group", "Industries, Inc.",
)  # fmt: skip
_CURRENCIES = {
    "XNYS": ("US", "USD"), "XNAS": ("US", "USD"), "XASE": ("US", "USD"), "XTSE": ("CA", "CAD"),
    "XLON": ("GB", "GBP"), "XETR": ("DE", "EUR"), "XFRA": ("DE", "EUR"), "XPAR": ("FR", "EUR"),
    "XAMS": ("NL", "EUR"), "XSWX": ("CH", "CHF"), "XTKS": ("JP", "JPY"), "XHKG": ("HK", "HKD"),
    "XASX": ("AU", "AUD"),
}  # fmt: skip

_NEWS_SOURCES = (
    "Market Wire", "Finance Daily", "The Trading Desk", "Street Ledger", "Capital Times",
)  # fmt: skip
_NEWS_TOPICS = (
    "cloud", "AI", "pricing", "supply chain", "international", "subscription", "margin",
    "product launch", "capital return", "cost efficiency",
)  # fmt: skip
_POSITIVE_HEADLINES = (
    "{name} shares rise as {topic} momentum builds",
    "Analysts upgrade {symbol} on stronger {topic} outlook",
    "{name} expands {topic} push, investors cheer",
    "{symbol} climbs after upbeat {topic} update",
)
_NEGATIVE_HEADLINES = (
    "{name} shares slip amid {topic} concerns",
    "{symbol} falls as investors weigh {topic} headwinds",
    "Analyst downgrades {name}, citing {topic} risks",
    "{name} under pressure after cautious {topic} commentary",
)
_NEUTRAL_HEADLINES = (
    "{name} to present at industry conference",
    "What to watch for {symbol} this week",
    "{name} outlines {topic} strategy at investor meeting",
    "{symbol} trades flat as market awaits {topic} data",
)

_FOMC_MONTHS = (1, 3, 4, 6, 7, 9, 10, 12)

ECONOMIC_SERIES: dict[str, tuple[str, str]] = {
    "GDP": ("quarterly", "Billions of USD, seasonally adjusted annual rate"),
    "CPI": ("monthly", "Index 1982-1984=100"),
    "UNRATE": ("monthly", "Percent"),
    "FEDFUNDS": ("monthly", "Percent"),
    "PAYEMS": ("monthly", "Thousands of persons"),
}
"""Known series codes: (frequency, unit). Observations are dated by their first day."""


# --- per-symbol parameters and cached blocks ------------------------------------------


@dataclass(frozen=True, slots=True)
class _Params:
    base_price: float
    volatility: float
    drift: float
    avg_volume: float
    spread_bps: float
    shares: float
    price_to_sales: float
    margin: float
    growth: float
    asset_turnover: float
    leverage: float
    dividend_yield: float
    div_month_offset: int
    div_day: int
    pay_lag: int
    declare_lag: int
    report_lag: int
    report_time: EarningsTime

    @property
    def sigma_d(self) -> float:
        return self.volatility / math.sqrt(_TRADING_DAYS)

    @property
    def mu_d(self) -> float:
        return (self.drift - 0.5 * self.volatility**2) / _TRADING_DAYS


@dataclass(frozen=True, slots=True)
class _Bars:
    """Daily bars of one (symbol, year); arrays aligned with ``days``."""

    days: list[date]
    ordinals: npt.NDArray[np.int64]
    index: dict[date, int]
    minutes: list[int]
    open_log: FloatArray
    high_log: FloatArray
    low_log: FloatArray
    close_log: FloatArray
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    close_array: FloatArray
    volume: list[int]


@dataclass(frozen=True, slots=True)
class _Quarter:
    revenue: float
    net_income: float
    eps: float
    eps_raw: float
    total_assets: float
    total_liabilities: float
    shares: int
    price: float


class SyntheticProvider:
    """Deterministic synthetic data for every ``MarketDataProvider`` method."""

    name = "synthetic"

    def __init__(self, seed: int, calendar: MarketCalendar) -> None:
        self.seed = int(seed)
        self.calendar = calendar
        self._params: dict[str, _Params] = {}
        self._year_start: dict[tuple[str, int], float] = {}
        self._levels: _LRU[tuple[str, int], FloatArray] = _LRU(8192)
        self._bars: _LRU[tuple[str, int], _Bars] = _LRU(8192)
        self._paths: _LRU[tuple[str, date], list[float]] = _LRU(4096)
        self._quarters: _LRU[tuple[str, int], _Quarter] = _LRU(16384)
        self._dividends: _LRU[tuple[str, int, int], Dividend | None] = _LRU(16384)
        self._us_calendar: MarketCalendar | None = None
        self.country, self.currency = _CURRENCIES.get(calendar.code, ("US", "USD"))

    def __repr__(self) -> str:
        return f"SyntheticProvider(seed={self.seed}, calendar={self.calendar!r})"

    # --- parameters ---------------------------------------------------------------
    def _p(self, symbol: str) -> _Params:
        p = self._params.get(symbol)
        if p is None:
            p = self._params[symbol] = self._make_params(symbol)
        return p

    def _make_params(self, symbol: str) -> _Params:
        s = self.seed

        def u(tag: str) -> float:
            return _unit(s, symbol, "param", tag)

        known = _KNOWN.get(symbol)
        vol = 0.15 + 0.40 * u("vol")
        if known is not None and known.volatility is not None:
            vol = known.volatility * (0.9 + 0.2 * u("vol"))
        if known is not None:
            dy = known.dividend_yield
        else:
            dy = 0.004 + 0.036 * u("yield") if self._is_payer(symbol) else 0.0
        return _Params(
            base_price=20.0 * math.exp(math.log(30.0) * u("base")),  # 20..600, log-uniform
            volatility=vol,
            drift=0.02 + 0.10 * u("drift"),
            avg_volume=3e5 * math.exp(math.log(200.0) * u("volume")),  # 0.3M..60M shares
            spread_bps=1.0 + 9.0 * u("spread"),
            shares=2e8 * math.exp(math.log(60.0) * u("shares")),
            price_to_sales=1.0 + 9.0 * u("ps"),
            margin=-0.04 + 0.32 * u("margin"),
            growth=-0.01 + 0.13 * u("growth"),
            asset_turnover=0.3 + 1.5 * u("turnover"),
            leverage=0.3 + 0.5 * u("leverage"),
            dividend_yield=dy,
            div_month_offset=int(_unit(symbol, "div-month") * 3),
            div_day=3 + int(_unit(symbol, "div-day") * 20),
            pay_lag=14 + int(u("pay-lag") * 15),
            declare_lag=25 + int(u("declare-lag") * 8),
            report_lag=21 + int(u("report-lag") * 15),
            report_time="bmo" if _unit(symbol, "report-time") < 0.45 else "amc",
        )

    @staticmethod
    def _is_payer(symbol: str) -> bool:
        known = _KNOWN.get(symbol)
        if known is not None:
            return known.dividend_yield > 0
        return _unit(symbol, "payer") < 0.6

    def dividend_yield(self, symbol: str) -> float:
        """The symbol's annual dividend yield (0 for non-payers); options use it as q."""
        return self._p(_check_symbol(symbol)).dividend_yield

    # --- price path -----------------------------------------------------------------
    def _returns(self, symbol: str, year: int) -> FloatArray:
        """Daily log returns of ``year`` indexed by day of year - 1 (0 at weekends)."""
        p = self._p(symbol)
        g = _rng(self.seed, symbol, "returns", year)
        z = g.standard_t(4, 366) / math.sqrt(2.0)  # unit variance, fat tails
        r: FloatArray = p.mu_d + p.sigma_d * z
        first = date(year, 1, 1)
        n_days = (date(year + 1, 1, 1) - first).days
        weekday = (first.weekday() + np.arange(366)) % 7
        r[(weekday >= 5) | (np.arange(366) >= n_days)] = 0.0
        return r

    def _start_level(self, symbol: str, year: int) -> float:
        """Log price at the start of 1 January of ``year``."""
        key = (symbol, year)
        cached = self._year_start.get(key)
        if cached is not None:
            return cached
        anchor = ANCHOR_DATE.year
        if year == anchor:
            level = math.log(self._p(symbol).base_price)
        elif year > anchor:
            level = self._start_level(symbol, year - 1) + float(
                self._returns(symbol, year - 1).sum()
            )
        else:
            level = self._start_level(symbol, year + 1) - float(self._returns(symbol, year).sum())
        self._year_start[key] = level
        return level

    def _warm_start_levels(self, symbol: str, year: int) -> None:
        # Fill the chain towards the anchor iteratively (no deep recursion).
        anchor = ANCHOR_DATE.year
        step = 1 if year > anchor else -1
        for y in range(anchor, year, step):
            self._start_level(symbol, y)

    def _year_levels(self, symbol: str, year: int) -> FloatArray:
        """Log price at the end of each day of ``year`` (index: day of year - 1)."""

        def make() -> FloatArray:
            self._warm_start_levels(symbol, year)
            return self._start_level(symbol, year) + np.cumsum(self._returns(symbol, year))

        return self._levels.get((symbol, year), make)

    def _level(self, symbol: str, day: date) -> float:
        return float(self._year_levels(symbol, day.year)[day.timetuple().tm_yday - 1])

    def _year_bars(self, symbol: str, year: int) -> _Bars:
        return self._bars.get((symbol, year), lambda: self._make_bars(symbol, year))

    def _make_bars(self, symbol: str, year: int) -> _Bars:
        cal = self.calendar
        p = self._p(symbol)
        lo_day = max(date(year, 1, 1), cal.first_session)
        hi_day = min(date(year, 12, 31), cal.last_session)
        days = cal.session_days(lo_day, hi_day) if lo_day <= hi_day else []
        minutes = cal.session_minutes(lo_day, hi_day) if lo_day <= hi_day else []
        n = len(days)
        levels = self._year_levels(symbol, year)
        jan1 = date(year, 1, 1).toordinal()
        doy = np.array([d.toordinal() - jan1 for d in days], dtype=np.int64)
        close_log = levels[doy] if n else np.zeros(0)
        prev_log = np.empty(n)
        if n:
            prev_log[1:] = close_log[:-1]
            first = days[0]
            prev_day = (
                cal.previous_session(first)
                if first > cal.first_session
                else first - timedelta(days=1)
            )
            prev_log[0] = self._level(symbol, prev_day)
        regular = max(minutes) if minutes else 390
        frac = np.array(minutes, dtype=np.float64) / float(regular)
        g = _rng(self.seed, symbol, "bars", year)
        z = g.standard_normal((2, 366))[:, doy]
        u = g.random((2, 366))[:, doy]
        sd = p.sigma_d
        open_log = prev_log + 0.3 * sd * z[0]
        var = (0.85 * sd) ** 2 * frac  # intraday variance of the log price
        a, b = open_log, close_log
        # Exact draws of the max / min of a Brownian bridge from a to b with variance var.
        high_log = 0.5 * (a + b + np.sqrt((b - a) ** 2 - 2.0 * var * np.log1p(-u[0])))
        low_log = 0.5 * (a + b - np.sqrt((b - a) ** 2 - 2.0 * var * np.log1p(-u[1])))
        move = np.abs(close_log - prev_log) / sd
        volume = p.avg_volume * np.exp(0.3 * z[1] - 0.045) * (0.8 + 0.25 * move) * frac
        close_rounded = _round_prices(np.exp(close_log))
        return _Bars(
            days=days,
            ordinals=doy + jan1,
            index={d: i for i, d in enumerate(days)},
            minutes=minutes,
            open_log=open_log,
            high_log=high_log,
            low_log=low_log,
            close_log=close_log,
            open=_round_prices(np.exp(open_log)).tolist(),
            high=_round_prices(np.exp(high_log)).tolist(),
            low=_round_prices(np.exp(low_log)).tolist(),
            close=close_rounded.tolist(),
            close_array=close_rounded,
            volume=np.maximum(np.rint(volume), 1000).astype(np.int64).tolist(),
        )

    def _bar_at(self, symbol: str, day: date) -> tuple[_Bars, int]:
        bars = self._year_bars(symbol, day.year)
        i = bars.index.get(day)
        if i is None:
            raise ValueError(f"{day.isoformat()} is not a {self.calendar.code} session")
        return bars, i

    def _close(self, symbol: str, day: date) -> float:
        bars, i = self._bar_at(symbol, day)
        return bars.close[i]

    def _previous_close(self, symbol: str, day: date) -> float:
        cal = self.calendar
        if day > cal.first_session:
            return self._close(symbol, cal.previous_session(day))
        return _round_price(math.exp(self._level(symbol, day - timedelta(days=1))))

    def _day_path(self, symbol: str, day: date) -> list[float]:
        """Prices at each minute boundary of the session: [open, ..., close] (n + 1)."""

        def make() -> list[float]:
            bars, i = self._bar_at(symbol, day)
            n = bars.minutes[i]
            a, b = float(bars.open_log[i]), float(bars.close_log[i])
            hi, lo = float(bars.high_log[i]), float(bars.low_log[i])
            g = _rng(self.seed, symbol, "path", day.isoformat())
            w = np.concatenate(([0.0], np.cumsum(g.standard_normal(n))))
            k = np.arange(n + 1) / n
            bridge = w - k * w[-1]
            line = a + (b - a) * k
            up, down = bridge > 0, bridge < 0
            alpha = float(np.min((hi - line[up]) / bridge[up])) if up.any() else 0.0
            beta = float(np.min((line[down] - lo) / -bridge[down])) if down.any() else 0.0
            y = line + np.where(up, alpha * bridge, beta * bridge)
            y[0], y[-1] = a, b
            prices = _round_prices(np.exp(np.clip(y, lo, hi)))
            return list(prices.tolist())

        return self._paths.get((symbol, day), make)

    # --- quotes and bars ------------------------------------------------------------
    def quote(self, symbol: str, at: datetime) -> Quote:
        """The quote at the minute containing ``at`` (see the module doc off-session)."""
        _check_symbol(symbol)
        ts = _floor_minute(_aware_utc(at, "at"))
        cal = self.calendar
        session = cal.current_session(ts)
        if session is not None:
            bars, i = self._bar_at(symbol, session.day)
            n = bars.minutes[i]
            t = int((ts - session.open) // _MINUTE)
            price = self._day_path(symbol, session.day)[t]
            x = (t + 1) / n
            c = _VOLUME_PROFILE_C
            share = (x + c * ((2 * x - 1) ** 3 + 1) / 6) / (1 + c / 3)
            volume = int(bars.volume[i] * share)
            day = session.day
        else:
            day = cal.last_completed_session(ts).day
            bars, i = self._bar_at(symbol, day)
            price = bars.close[i]
            volume = bars.volume[i]
        prev_close = self._previous_close(symbol, day)
        p = self._p(symbol)
        tick = _tick(price)
        half = max(tick, round(price * p.spread_bps / 2e4 / tick) * tick)
        minute_key = int((ts - _EPOCH) // _MINUTE)
        u1, u2 = _units(self.seed, symbol, "size", minute_key)
        change = price - prev_close
        return Quote(
            symbol=symbol,
            ts=ts,
            price=price,
            bid=_round_price(price - half),
            ask=_round_price(price + half),
            bid_size=100 * (1 + int(u1 * 40)),
            ask_size=100 * (1 + int(u2 * 40)),
            volume=volume,
            change=round(change, 4),
            change_percent=round(100.0 * change / prev_close, 4),
        )

    def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        """Bars of every exchange session in [start, end]."""
        _check_symbol(symbol)
        if start > end:
            return []
        cal = self.calendar
        # Validate the range against the calendar (clear error outside it).
        cal.is_trading_day(start)
        cal.is_trading_day(end)
        ex_ords, suffix = self._adjustment(symbol, start)
        ref = ADJ_REFERENCE_DATE.toordinal()
        out: list[DailyBar] = []
        for year in range(start.year, end.year + 1):
            bars = self._year_bars(symbol, year)
            lo = bisect.bisect_left(bars.days, start)
            hi = bisect.bisect_right(bars.days, end)
            if lo >= hi:
                continue
            ords = bars.ordinals[lo:hi]
            close = bars.close_array[lo:hi]
            factor = suffix[np.searchsorted(ex_ords, ords, side="right")]
            adj = np.where(ords < ref, np.round(close * factor, 4), close).tolist()
            for j, i in enumerate(range(lo, hi)):
                out.append(
                    DailyBar(
                        symbol=symbol,
                        day=bars.days[i],
                        open=bars.open[i],
                        high=bars.high[i],
                        low=bars.low[i],
                        close=bars.close[i],
                        adj_close=adj[j],
                        volume=bars.volume[i],
                    )
                )
        return out

    def _adjustment(self, symbol: str, start: date) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """For ``adj_close``: ex-date ordinals in [start, ADJ_REFERENCE_DATE] and ``suffix``,
        where ``suffix[k]`` is the product of the (1 - amount / previous close) factors of
        dividends k, k+1, ...: the adjustment of a day before the k-th ex-date."""
        if start >= ADJ_REFERENCE_DATE or self._p(symbol).dividend_yield <= 0:
            return np.zeros(0, dtype=np.int64), np.ones(1)
        end = min(ADJ_REFERENCE_DATE, self.calendar.last_session)
        divs = self.dividends(symbol, start, end)
        ex_ords = np.array([d.ex_date.toordinal() for d in divs], dtype=np.int64)
        factors = [1.0 - d.amount / self._previous_close(symbol, d.ex_date) for d in divs]
        suffix = np.ones(len(divs) + 1)
        for k in range(len(divs) - 1, -1, -1):
            suffix[k] = suffix[k + 1] * factors[k]
        return ex_ords, suffix

    # --- options ------------------------------------------------------------------------
    @staticmethod
    def strike_increment(price: float) -> float:
        """Listed strike spacing for an underlying at ``price``."""
        for limit, inc in ((5.0, 0.5), (25.0, 1.0), (60.0, 2.5), (200.0, 5.0), (1000.0, 10.0)):
            if price < limit:
                return inc
        return 50.0

    def implied_volatility(self, symbol: str, as_of: datetime, strike: float, time: float) -> float:
        """The synthetic IV surface at ``as_of``: a term structure around the symbol's
        volatility with a skewed smile in standardised moneyness."""
        _check_symbol(symbol)
        ts = _floor_minute(_aware_utc(as_of, "as_of"))
        spot = self.quote(symbol, ts).price
        return float(self._smile(symbol, ts, spot, np.array([strike]), time)[0])

    def _smile(
        self, symbol: str, ts: datetime, spot: float, strikes: FloatArray, time: float
    ) -> FloatArray:
        p = self._p(symbol)
        local_day = ts.astimezone(self.calendar.tz).date()
        day_noise = 1.0 + 0.04 * _normal(self.seed, symbol, "iv", local_day.isoformat())
        atm = p.volatility * day_noise * (1.0 + 0.12 * math.exp(-4.0 * time))
        forward = spot * math.exp((RISK_FREE_RATE - p.dividend_yield) * time)
        x = np.clip(np.log(strikes / forward) / (atm * math.sqrt(time)), -3.0, 3.0)
        iv: FloatArray = np.clip(atm * (1.0 - 0.08 * x + 0.05 * x * x), 0.05, 2.5)
        return iv

    def option_chain(
        self, symbol: str, as_of: datetime, expirations: int, strikes_per_side: int
    ) -> list[OptionContract]:
        """Calls and puts for the next ``expirations`` monthly expiries at
        ``2 * strikes_per_side + 1`` strikes around the underlying (non-positive strikes
        dropped), ordered by expiration, strike, call before put. ``as_of`` is floored to
        the minute."""
        _check_symbol(symbol)
        if expirations < 0 or strikes_per_side < 0:
            raise ValueError("expirations and strikes_per_side must be >= 0")
        ts = _floor_minute(_aware_utc(as_of, "as_of"))
        cal = self.calendar
        quote = self.quote(symbol, ts)
        spot = quote.price
        p = self._p(symbol)
        q = p.dividend_yield
        local_day = ts.astimezone(cal.tz).date()
        inc = self.strike_increment(spot)
        centre = round(spot / inc) * inc
        strikes = [
            round(centre + k * inc, 2)
            for k in range(-strikes_per_side, strikes_per_side + 1)
            if centre + k * inc > 0
        ]
        # Share of the trading day elapsed, for cumulative option volume.
        session = cal.current_session(ts)
        today = cal.session(local_day)
        if session is not None:
            elapsed = (ts - session.open) / (session.close - session.open)
        else:
            elapsed = 0.0 if today is not None and ts < today.open else 1.0
        out: list[OptionContract] = []
        for n_exp, expiry in enumerate(monthly_expirations(cal, local_day, expirations)):
            exp_session = cal.session(expiry)
            assert exp_session is not None
            t = (exp_session.close - ts).total_seconds() / (365.0 * 86_400.0)
            k = np.array(strikes, dtype=np.float64)
            iv = self._smile(symbol, ts, spot, k, t)
            for kind in ("call", "put"):
                g = bs.greeks_array(kind, spot, k, t, RISK_FREE_RATE, iv, q)
                for j, strike in enumerate(strikes):
                    out.append(
                        self._contract(
                            symbol, ts, expiry, strike, kind, g, j, iv[j], spot, n_exp, elapsed
                        )
                    )
        out.sort(key=lambda c: (c.expiration, c.strike, c.option_type != "call"))
        return out

    def _contract(
        self,
        symbol: str,
        ts: datetime,
        expiry: date,
        strike: float,
        kind: OptionType,
        g: bs.GreeksArray,
        j: int,
        iv: float,
        spot: float,
        n_exp: int,
        elapsed: float,
    ) -> OptionContract:
        mid = float(g.price[j])
        half = max(0.01, min(0.025 * mid, 0.25))
        bid = max(0.0, math.floor((mid - half) * 100.0 + 1e-9) / 100.0)
        ask = math.ceil((mid + half) * 100.0 - 1e-9) / 100.0
        u_last, u_oi = _units(self.seed, symbol, "opt", expiry, strike, kind, ts.isoformat())
        u_vol = _unit(self.seed, symbol, "opt-oi", expiry, strike, kind, ts.date().isoformat())
        moneyness = math.log(strike / spot)
        weight = math.exp(-0.5 * (moneyness / 0.15) ** 2) / (1.0 + n_exp)
        base = self._p(symbol).avg_volume / 200.0 * weight
        open_interest = int(base * (0.5 + u_vol) * 5.0)
        volume = int(base * (0.2 + u_oi) * elapsed)
        return OptionContract(
            underlying=symbol,
            as_of=ts,
            expiration=expiry,
            strike=strike,
            option_type=kind,
            bid=round(bid, 2),
            ask=round(ask, 2),
            last=round(bid + u_last * (ask - bid), 2),
            implied_volatility=round(float(iv), 6),
            delta=float(g.delta[j]),
            gamma=float(g.gamma[j]),
            theta=float(g.theta[j]) / 365.0,
            vega=float(g.vega[j]),
            open_interest=open_interest,
            volume=volume,
            underlying_price=spot,
        )

    # --- fundamentals and earnings ----------------------------------------------------
    def _quarter(self, symbol: str, qi: int) -> _Quarter:
        return self._quarters.get((symbol, qi), lambda: self._make_quarter(symbol, qi))

    def _make_quarter(self, symbol: str, qi: int) -> _Quarter:
        p = self._p(symbol)
        s = self.seed
        years = (qi - _quarter_index(ANCHOR_DATE)) / 4.0
        season = (0.96, 0.98, 1.0, 1.06)[qi % 4]
        annual_revenue = p.base_price * p.shares / p.price_to_sales
        revenue = (
            annual_revenue / 4.0
            * math.exp(p.growth * years)
            * season
            * math.exp(0.03 * _normal(s, symbol, "revenue", qi))
        )  # fmt: skip
        margin = max(-0.5, min(0.5, p.margin + 0.035 * _normal(s, symbol, "margin", qi)))
        net_income = revenue * margin
        shares = p.shares * math.exp(-0.008 * years)
        assets = (
            4.0 * revenue / p.asset_turnover * math.exp(0.02 * _normal(s, symbol, "assets", qi))
        )
        end = _quarter_end(qi)
        price = self._close(symbol, self.calendar.session_on_or_before(end))
        return _Quarter(
            revenue=round(revenue, -3),
            net_income=round(net_income, -3),
            eps=round(net_income / shares, 2),
            eps_raw=net_income / shares,
            total_assets=round(assets, -3),
            total_liabilities=round(assets * p.leverage, -3),
            shares=int(shares),
            price=price,
        )

    def fundamentals(self, symbol: str, as_of: date, periods: int) -> list[Fundamentals]:
        """The last ``periods`` quarterly statements whose period ended before ``as_of``,
        oldest first. ``pe_ratio`` is price / trailing-four-quarter EPS (None when <= 0)."""
        _check_symbol(symbol)
        if periods < 0:
            raise ValueError("periods must be >= 0")
        last = _quarter_index(as_of) - 1
        out: list[Fundamentals] = []
        for qi in range(last - periods + 1, last + 1):
            f = self._quarter(symbol, qi)
            ttm = sum(self._quarter(symbol, k).eps_raw for k in range(qi - 3, qi + 1))
            out.append(
                Fundamentals(
                    symbol=symbol,
                    period_end=_quarter_end(qi),
                    period_type="quarter",
                    revenue=f.revenue,
                    net_income=f.net_income,
                    eps=f.eps,
                    total_assets=f.total_assets,
                    total_liabilities=f.total_liabilities,
                    shares_outstanding=f.shares,
                    market_cap=round(f.shares * f.price, -3),
                    pe_ratio=round(f.price / ttm, 2) if ttm > 0 else None,
                )
            )
        return out

    def _report_date(self, symbol: str, qi: int) -> date:
        p = self._p(symbol)
        jitter = int(_unit(self.seed, symbol, "report-jitter", qi) * 7)
        nominal = _quarter_end(qi) + timedelta(days=p.report_lag + jitter)
        return self.calendar.session_on_or_after(nominal)

    def _eps_estimate(self, symbol: str, qi: int) -> tuple[float, float]:
        f = self._quarter(symbol, qi)
        surprise = 0.02 + 0.05 * _normal(self.seed, symbol, "surprise", qi)
        rev_surprise = 0.005 + 0.015 * _normal(self.seed, symbol, "rev-surprise", qi)
        eps_estimate = round(f.eps_raw - abs(f.eps_raw) * surprise, 2)
        return eps_estimate, round(f.revenue * (1.0 - rev_surprise), -3)

    def earnings(self, symbol: str, as_of: date, quarters: int) -> list[EarningsReport]:
        """The ``quarters`` fiscal quarters up to and including the first one not yet
        reported on ``as_of`` (its actuals are None), oldest first."""
        _check_symbol(symbol)
        if quarters < 0:
            raise ValueError("quarters must be >= 0")
        nxt = _quarter_index(as_of) - 1
        if self._report_date(symbol, nxt) <= as_of:
            nxt += 1
        out: list[EarningsReport] = []
        for qi in range(nxt - quarters + 1, nxt + 1):
            report = self._report_date(symbol, qi)
            f = self._quarter(symbol, qi)
            eps_estimate, revenue_estimate = self._eps_estimate(symbol, qi)
            reported = report <= as_of
            out.append(
                EarningsReport(
                    symbol=symbol,
                    fiscal_period=_fiscal_period(qi),
                    report_date=report,
                    eps_estimate=eps_estimate,
                    eps_actual=f.eps if reported else None,
                    revenue_estimate=revenue_estimate,
                    revenue_actual=f.revenue if reported else None,
                )
            )
        return out

    def earnings_calendar(
        self, symbols: list[str], start: date, end: date
    ) -> list[EarningsCalendarEntry]:
        """Reports scheduled in [start, end], ordered by date then symbol."""
        out: list[EarningsCalendarEntry] = []
        if start > end:
            return out
        for symbol in symbols:
            _check_symbol(symbol)
            for qi in range(_quarter_index(start) - 2, _quarter_index(end) + 1):
                report = self._report_date(symbol, qi)
                if start <= report <= end:
                    out.append(
                        EarningsCalendarEntry(
                            symbol=symbol,
                            report_date=report,
                            fiscal_period=_fiscal_period(qi),
                            time_of_day=self._p(symbol).report_time,
                            eps_estimate=self._eps_estimate(symbol, qi)[0],
                        )
                    )
        out.sort(key=lambda e: (e.report_date, e.symbol))
        return out

    def earnings_transcript(self, symbol: str, fiscal_period: str) -> EarningsTranscript:
        """A generated call transcript for ``fiscal_period`` ("YYYYQn") on its report date."""
        _check_symbol(symbol)
        m = _PERIOD_RE.match(fiscal_period)
        if m is None:
            raise ValueError(f"fiscal_period must look like '2026Q3', got {fiscal_period!r}")
        qi = int(m.group(1)) * 4 + int(m.group(2)) - 1
        call_date = self._report_date(symbol, qi)
        content = _transcript(self, symbol, fiscal_period, qi, call_date)
        return EarningsTranscript(
            symbol=symbol, fiscal_period=fiscal_period, call_date=call_date, content=content
        )

    # --- dividends ------------------------------------------------------------------------
    def _dividend(self, symbol: str, year: int, q: int) -> Dividend | None:
        return self._dividends.get((symbol, year, q), lambda: self._make_dividend(symbol, year, q))

    def _make_dividend(self, symbol: str, year: int, q: int) -> Dividend | None:
        p = self._p(symbol)
        if p.dividend_yield <= 0:
            return None
        cal = self.calendar
        month = 3 * q + 1 + p.div_month_offset
        jitter = int(_unit(self.seed, symbol, "div-jitter", year, q) * 4)
        ex = cal.session_on_or_after(date(year, month, p.div_day + jitter))
        reference = math.exp(self._start_level(symbol, year))  # steps once a year
        amount = max(0.01, round(p.dividend_yield * reference / 4.0, 2))
        declared = cal.session_on_or_before(ex - timedelta(days=p.declare_lag))
        return Dividend(
            symbol=symbol,
            ex_date=ex,
            record_date=cal.next_session(ex),
            pay_date=cal.session_on_or_after(ex + timedelta(days=p.pay_lag)),
            declared_date=declared,
            amount=amount,
            currency=self.currency,
        )

    def dividends(self, symbol: str, start: date, end: date) -> list[Dividend]:
        """Quarterly dividends with an ex-date in [start, end] (none for non-payers)."""
        _check_symbol(symbol)
        if start > end or not self._is_payer(symbol):
            return []
        self._warm_start_levels(symbol, start.year)
        out: list[Dividend] = []
        for year in range(start.year, end.year + 1):
            for q in range(4):
                d = self._dividend(symbol, year, q)
                if d is not None and start <= d.ex_date <= end:
                    out.append(d)
        return out

    # --- news -----------------------------------------------------------------------------
    def _hour_articles(self, symbol: str, hour: int) -> list[NewsArticle]:
        """Articles of one UTC hour (``hour`` = hours since the epoch), newest first."""
        start = _EPOCH + timedelta(hours=hour)
        local = start.astimezone(self.calendar.tz)
        if local.weekday() >= 5:
            rate = 0.05
        elif 7 <= local.hour < 17:
            rate = 0.6
        else:
            rate = 0.12
        u = _unit(self.seed, symbol, "news-count", hour)
        count, term = 0, math.exp(-rate)
        cdf = term
        while u > cdf and count < 6:  # inverse Poisson CDF
            count += 1
            term *= rate / count
            cdf += term
        if count == 0:
            return []
        profile = self.company_profile(symbol)
        day = local.date()
        sd = self._p(symbol).sigma_d
        move = (self._level(symbol, day) - self._level(symbol, day - timedelta(days=1))) / sd
        out: list[NewsArticle] = []
        for i in range(count):
            article_id = "syn-" + _hex_id(self.seed, symbol, hour, i)
            u_sec, u_tone = _units(self.seed, symbol, "news", hour, i)
            published = start + timedelta(seconds=int(u_sec * 3600))
            sentiment = math.tanh(0.6 * move + 0.8 * (2.0 * u_tone - 1.0))
            if sentiment > 0.2:
                templates = _POSITIVE_HEADLINES
            elif sentiment < -0.2:
                templates = _NEGATIVE_HEADLINES
            else:
                templates = _NEUTRAL_HEADLINES
            topic = _choice(_NEWS_TOPICS, self.seed, symbol, "topic", hour, i)
            headline = _choice(templates, self.seed, symbol, "headline", hour, i).format(
                name=profile.name, symbol=symbol, topic=topic
            )
            source = _choice(_NEWS_SOURCES, self.seed, symbol, "source", hour, i)
            slug = re.sub(r"[^a-z0-9]+", "-", headline.lower()).strip("-")
            out.append(
                NewsArticle(
                    article_id=article_id,
                    symbol=symbol,
                    published_at=published,
                    headline=headline,
                    summary=(
                        f"{profile.name} ({symbol}) was in focus as market participants "
                        f"discussed its {topic} developments. {source} reviews what it "
                        f"means for the {profile.industry.lower()} business and the stock."
                    ),
                    source=source,
                    url=f"https://news.marketq.example/{symbol.lower()}/"
                    f"{published:%Y/%m/%d}/{slug}-{article_id[4:12]}",
                    sentiment=round(max(-1.0, min(1.0, sentiment)), 3),
                )
            )
        out.sort(key=lambda a: (a.published_at, a.article_id), reverse=True)
        return out

    def news(self, symbol: str, since: datetime, until: datetime, limit: int) -> list[NewsArticle]:
        """Articles published in [since, until), newest first, at most ``limit``."""
        _check_symbol(symbol)
        lo = _aware_utc(since, "since")
        hi = _aware_utc(until, "until")
        if limit < 0:
            raise ValueError("limit must be >= 0")
        out: list[NewsArticle] = []
        if lo >= hi or limit == 0:
            return out
        first = (lo - _EPOCH) // timedelta(hours=1)
        last = (hi - _EPOCH - timedelta(microseconds=1)) // timedelta(hours=1)
        for hour in range(last, first - 1, -1):
            for article in self._hour_articles(symbol, hour):
                if lo <= article.published_at < hi:
                    out.append(article)
            if len(out) >= limit:
                break
        return out[:limit]

    # --- economy --------------------------------------------------------------------------
    def _series_value(self, series: str, period: date) -> float:
        s = self.seed
        t = (period - date(2020, 1, 1)).days / 365.25
        phase = 2.0 * math.pi * _unit(s, series, "phase")
        noise = _normal(s, series, period.isoformat())
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
        mi = _month_index(start)
        mi += (-mi) % step
        while (period := _month_start(mi)) <= end:
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
        prev1, prev2, prev13 = _month_start(mi - 1), _month_start(mi - 2), _month_start(mi - 13)
        prev14 = _month_start(mi - 14)

        def event(
            name: str, day: date, at: time, importance: Importance, actual: float,
            previous: float, spread: float, digits: int = 1,
        ) -> EconomicEvent:  # fmt: skip
            scheduled = datetime.combine(day, at, tzinfo=_NEW_YORK).astimezone(UTC)
            noise = _normal(self.seed, "event-forecast", name, day.isoformat())
            return EconomicEvent(
                event_id="us-" + _hex_id("US", name, day.isoformat()),
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
        nfp_day = self._business_day(_nth_weekday(year, month, 4, 1), forward=False)
        payrolls = v("PAYEMS", prev1) - v("PAYEMS", prev2)
        payrolls_prev = v("PAYEMS", prev2) - v("PAYEMS", _month_start(mi - 3))
        yield event(
            "Nonfarm Payrolls", nfp_day, eight_thirty, "high", payrolls, payrolls_prev, 40.0, 0
        )
        yield event(
            "Unemployment Rate", nfp_day, eight_thirty, "high", v("UNRATE", prev1),
            v("UNRATE", prev2), 0.1,
        )  # fmt: skip
        # ISM Manufacturing PMI: first business day, 10:00 ET.
        pmi = 50.0 + 4.0 * _normal(self.seed, "PMI", mi)
        pmi_prev = 50.0 + 4.0 * _normal(self.seed, "PMI", mi - 1)
        yield event(
            "ISM Manufacturing PMI", self._business_day(date(year, month, 1)), ten, "medium",
            pmi, pmi_prev, 1.0,
        )  # fmt: skip
        # CPI: around the 10th-14th, 08:30 ET, year-over-year % for the previous month.
        cpi_day = self._business_day(date(year, month, 10 + int(_unit("cpi-day", mi) * 5)))
        yield event(
            "CPI", cpi_day, eight_thirty, "high", yoy(prev1, prev13), yoy(prev2, prev14), 0.1
        )
        # Retail Sales: around the 15th, 08:30 ET, month-over-month %.
        sales = 0.3 + 0.6 * _normal(self.seed, "retail", mi)
        sales_prev = 0.3 + 0.6 * _normal(self.seed, "retail", mi - 1)
        yield event(
            "Retail Sales", self._business_day(date(year, month, 15)), eight_thirty, "medium",
            sales, sales_prev, 0.3,
        )  # fmt: skip
        # Consumer Confidence: last Tuesday, 10:00 ET.
        confidence = 100.0 + 8.0 * _normal(self.seed, "confidence", mi)
        confidence_prev = 100.0 + 8.0 * _normal(self.seed, "confidence", mi - 1)
        yield event(
            "Consumer Confidence", self._business_day(_nth_weekday(year, month, 1, -1)), ten,
            "low", confidence, confidence_prev, 3.0,
        )  # fmt: skip
        # FOMC Rate Decision: eight meetings a year, third Wednesday, 14:00 ET; the value
        # is the upper bound of the target range (FEDFUNDS rounded up to a quarter point).
        if month in _FOMC_MONTHS:
            k = _FOMC_MONTHS.index(month)
            prev_meeting = mi - (month - _FOMC_MONTHS[k - 1]) % 12
            rate = math.ceil(v("FEDFUNDS", _month_start(mi)) * 4.0) / 4.0
            rate_prev = math.ceil(v("FEDFUNDS", _month_start(prev_meeting)) * 4.0) / 4.0
            yield event(
                "FOMC Rate Decision", self._business_day(_nth_weekday(year, month, 2, 3)),
                time(14, 0), "high", rate, rate_prev, 0.0, 2,
            )  # fmt: skip
        # GDP (advance estimate): last Thursday of Jan/Apr/Jul/Oct, annualised q/q %.
        if month in (1, 4, 7, 10):
            q_prev = _month_start(mi - 3)
            growth = 100.0 * ((v("GDP", q_prev) / v("GDP", _month_start(mi - 6))) ** 4 - 1.0)
            growth_prev = 100.0 * (
                (v("GDP", _month_start(mi - 6)) / v("GDP", _month_start(mi - 9))) ** 4 - 1.0
            )
            gdp_day = self._business_day(_nth_weekday(year, month, 3, -1), forward=False)
            yield event(
                "GDP (Advance)", gdp_day, eight_thirty, "high", growth, growth_prev, 0.3,
            )  # fmt: skip

    def _jobless_claims(self, start: date, end: date) -> Iterator[EconomicEvent]:
        """Initial Jobless Claims: Thursdays 08:30 ET (Wednesday when Thursday is closed)."""
        day = start + timedelta(days=(3 - start.weekday()) % 7)
        while day <= end + timedelta(days=1):
            actual_day = self._business_day(day, forward=False)
            week = day.toordinal() // 7
            claims = 225.0 + 20.0 * _normal(self.seed, "claims", week)
            claims_prev = 225.0 + 20.0 * _normal(self.seed, "claims", week - 1)
            scheduled = datetime.combine(actual_day, time(8, 30), tzinfo=_NEW_YORK)
            noise = _normal(self.seed, "event-forecast", "claims", week)
            yield EconomicEvent(
                event_id="us-" + _hex_id("US", "Initial Jobless Claims", actual_day.isoformat()),
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
        for mi in range(_month_index(start), _month_index(end) + 1):
            events.extend(self._events_of_month(mi))
        for e in events:
            if start <= e.scheduled_at.astimezone(_NEW_YORK).date() <= end:
                out.append(e)
        out.sort(key=lambda e: (e.scheduled_at, e.name))
        return out

    # --- company profiles -----------------------------------------------------------------
    def company_profile(self, symbol: str) -> CompanyProfile:
        """Real names for a few well-known tickers, generated (symbol-stable) otherwise."""
        _check_symbol(symbol)
        country, currency = self.country, self.currency
        known = _KNOWN.get(symbol)
        if known is not None:
            return CompanyProfile(
                symbol=symbol,
                name=known.name,
                sector=known.sector,
                industry=known.industry,
                exchange=known.exchange,
                country=country,
                currency=currency,
                employees=known.employees,
                website=known.website,
                description=f"{known.name} ({symbol}) operates in the "
                f"{known.industry.lower()} industry of the {known.sector.lower()} sector. "
                "Figures served for it by marketq's synthetic provider are simulated.",
            )
        head = _choice(_NAME_HEADS, symbol, "name-head")
        tail = _choice(_NAME_TAILS, symbol, "name-tail")
        suffix = _choice(_NAME_SUFFIXES, symbol, "name-suffix")
        sector, industries = _SECTORS[int(_unit(symbol, "sector") * len(_SECTORS))]
        industry = _choice(industries, symbol, "industry")
        base = f"{head}{tail}"
        name = f"{base} {suffix}"
        exchange = "NASDAQ" if _unit(symbol, "exchange") < 0.5 else "NYSE"
        employees = int(200 * math.exp(math.log(1000.0) * _unit(symbol, "employees")))
        slug = re.sub(r"[^a-z0-9]+", "", base.lower())
        return CompanyProfile(
            symbol=symbol,
            name=name,
            sector=sector,
            industry=industry,
            exchange=exchange,
            country=country,
            currency=currency,
            employees=employees,
            website=f"https://www.{slug}.example",
            description=f"{name} ({symbol}) is a {sector.lower()} company in the "
            f"{industry.lower()} industry with about {employees:,} employees. "
            "It is a fictional company generated by marketq's synthetic provider.",
        )


# --- transcripts ---------------------------------------------------------------------------

_ANALYST_FIRMS = (
    "Northbridge Securities", "Harbor Point Capital", "Summit Research", "Lakeshore Partners",
    "Granite Peak Advisors", "Bluewater Equity Research",
)  # fmt: skip
_FIRST_NAMES = ("Alex", "Jordan", "Morgan", "Taylor", "Casey", "Riley", "Jamie", "Avery")
_LAST_NAMES = ("Chen", "Patel", "Garcia", "Okafor", "Novak", "Schmidt", "Rossi", "Tanaka")
_QA = (
    (
        "Could you unpack the drivers of gross margin this quarter and how you see them trending?",
        "Thanks for the question. Mix was favorable and the team executed well on cost "
        "discipline, which supported margins in {period}. We expect some normalization, but "
        "the structural improvements should hold.",
    ),
    (
        "How should we think about operating expense growth relative to revenue next year?",
        "We plan to grow operating expenses more slowly than revenue. We are reallocating "
        "toward {topic} and engineering, and funding much of it from efficiencies elsewhere.",
    ),
    (
        "Can you talk about demand trends by region and anything you saw late in the quarter?",
        "Demand was healthy across our core regions. We saw a modest pickup late in the "
        "quarter, and the order book entering next quarter is consistent with our outlook.",
    ),
    (
        "What are your capital allocation priorities between buybacks, dividends and investment?",
        "Our balance sheet gives us room to keep investing while returning capital. We will "
        "stay consistent and measured, and we will update you as the year unfolds.",
    ),
    (
        "How much of the {topic} opportunity is reflected in your current guidance?",
        "Only the part we can already see in signed business. {Topic} is a multi-year "
        "opportunity and we are pacing spend to the returns we see, while keeping flexibility.",
    ),
    (
        "Could you give more color on pricing and competitive dynamics in {topic}?",
        "Pricing has been rational. Customers choose us for reliability and total cost, and "
        "our early results in {topic} make us confident we can hold our position.",
    ),
)


def _name(provider: SyntheticProvider, *parts: object) -> str:
    first = _choice(_FIRST_NAMES, provider.seed, "first", *parts)
    return f"{first} {_choice(_LAST_NAMES, provider.seed, 'last', *parts)}"


def _transcript(
    provider: SyntheticProvider, symbol: str, period: str, qi: int, call_date: date
) -> str:
    profile = provider.company_profile(symbol)
    f = provider._quarter(symbol, qi)
    eps_estimate, _ = provider._eps_estimate(symbol, qi)
    ceo, cfo = _name(provider, symbol, "ceo"), _name(provider, symbol, "cfo")
    topic = _choice(_NEWS_TOPICS, provider.seed, symbol, "call-topic", qi)
    growth = 100.0 * (f.revenue / provider._quarter(symbol, qi - 4).revenue - 1.0)
    fmt = {"period": period, "topic": topic, "Topic": topic[0].upper() + topic[1:]}
    paragraphs = [
        f"Operator: Good day, and welcome to the {profile.name} ({symbol}) {period} earnings "
        f"conference call, held on {call_date:%B %d, %Y}. All participants are in a "
        "listen-only mode. After the prepared remarks there will be a question-and-answer "
        "session. Please note this event is being recorded.",
        f"{ceo}, Chief Executive Officer: Thank you, operator, and thanks to everyone for "
        f"joining us. {period} was a {'strong' if growth > 0 else 'challenging'} quarter for "
        f"{profile.name.rstrip('.')}. Revenue was ${f.revenue / 1e6:,.1f} million, "
        f"{'up' if growth >= 0 else 'down'} {abs(growth):.1f}% from a year ago. We continued "
        f"to invest in {topic} while staying disciplined on costs, and I want to thank our "
        "teams for their execution.",
        f"{cfo}, Chief Financial Officer: Thanks. Net income for {period} was "
        f"${f.net_income / 1e6:,.1f} million, or ${f.eps:.2f} per diluted share, compared with "
        f"a consensus estimate of ${eps_estimate:.2f}. We ended the quarter with total assets "
        f"of ${f.total_assets / 1e9:,.2f} billion and {f.shares / 1e6:,.0f} million shares "
        "outstanding. Our outlook assumes a stable macro environment and consistent execution "
        f"in the {profile.industry.lower()} business.",
        f"{cfo}, Chief Financial Officer: Turning to the details. Gross margin benefited from "
        "mix and from the efficiency programs we started last year, partly offset by "
        "continued investment in engineering and go-to-market capacity. Operating cash flow "
        "remained healthy, and we returned capital to shareholders in line with our "
        f"framework. For the coming quarter we expect revenue growth broadly consistent with "
        f"{period}, with {topic} remaining the largest contributor to incremental growth.",
        f"{ceo}, Chief Executive Officer: Before we open the line, let me step back. Our "
        f"strategy in {topic} is working, our customers are engaging more deeply, and our "
        "pipeline is the strongest it has been. We will keep investing where we see durable "
        "returns and stay disciplined everywhere else. With that, operator, let's take "
        "questions.",
    ]
    order = _rng(provider.seed, symbol, "qa", qi).permutation(len(_QA)).tolist()
    for i, k in enumerate(order):
        analyst = _name(provider, symbol, "analyst", qi, i)
        firm = _choice(_ANALYST_FIRMS, provider.seed, symbol, "firm", qi, i)
        question, answer = _QA[k]
        speaker = ceo if i % 2 == 0 else cfo
        paragraphs.append(f"{analyst}, {firm}: {question.format(**fmt)}")
        paragraphs.append(f"{speaker}: {answer.format(**fmt)}")
    paragraphs.append(
        f"Operator: That concludes the question-and-answer session and today's {symbol} "
        f"{period} call. Thank you for your participation; you may now disconnect."
    )
    return "\n\n".join(paragraphs)
