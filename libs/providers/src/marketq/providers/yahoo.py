"""Yahoo Finance through its maintained Python client, ``yfinance``.

Yahoo publishes no API terms for programmatic use beyond its site terms; yfinance reads
the JSON the Yahoo Finance web pages use (chart, options, quoteSummary, quote, news).
docs/providers.md covers the licensing caveat. The adapter maps yfinance's frames and
dicts onto marketq records and yfinance's exceptions onto the provider error classes:
its rate-limit error and transport failures are transient, a missing ticker is an
unknown symbol.

Yahoo publishes no greeks: they are computed from Yahoo's implied volatility with
Black-Scholes at ``risk_free_rate``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import yfinance
from yfinance import exceptions as yf_errors

from marketq.providers import blackscholes
from marketq.providers.adapter import VendorAdapter
from marketq.providers.base import (
    CompanyProfile,
    DailyBar,
    Dividend,
    EarningsReport,
    Fundamentals,
    NewsArticle,
    OptionContract,
    OptionType,
    Quote,
)
from marketq.providers.errors import (
    NotOfferedError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnknownSymbolError,
    error_for_status,
)
from marketq.providers.parsing import fiscal_quarter, optional_float, optional_int
from marketq.providers.quota import NoQuota, Quota

__all__ = ["YahooProvider"]

T = TypeVar("T")

# Yahoo's option expirations are dated at midnight UTC; contracts stop trading at the
# 16:00 New York close of that day.
_EXPIRY_CLOSE = time(16, 0)
_NEW_YORK = ZoneInfo("America/New_York")
_YEAR_SECONDS = 365.0 * 86_400.0
DEFAULT_RISK_FREE_RATE = 0.04

# Exception class names of the HTTP layer yfinance uses (curl_cffi or requests) that a
# retry can fix.
_TRANSIENT_TRANSPORT = {
    "Timeout",
    "ConnectTimeout",
    "ReadTimeout",
    "ConnectionError",
    "ChunkedEncodingError",
    "RemoteDisconnected",
    "DNSError",
}


class YahooProvider(VendorAdapter):
    name = "yahoo"

    def __init__(
        self,
        *,
        quota: Quota | None = None,
        session: Any | None = None,
        risk_free_rate: float = DEFAULT_RISK_FREE_RATE,
    ) -> None:
        """``session`` is a curl_cffi or requests Session for yfinance (its own if None)."""
        self._quota = quota or NoQuota()
        self._session = session
        self._rate = risk_free_rate
        # Errors must reach the adapter to be classified, not be logged and swallowed.
        yfinance.config.debug.hide_exceptions = False

    def _ticker(self, symbol: str) -> yfinance.Ticker:
        return yfinance.Ticker(symbol, session=self._session)

    def _call(self, what: str, symbol: str, fetch: Callable[[], T]) -> T:
        """One quota token per call, yfinance's exceptions mapped onto ours."""
        self._quota.acquire(self.name, "anonymous")
        with _classified(what, symbol):
            return fetch()

    # --- prices ---------------------------------------------------------------------

    def quote(self, symbol: str, at: datetime) -> Quote:
        info = self._call("quote", symbol, lambda: dict(self._ticker(symbol).info))
        price = optional_float(info.get("regularMarketPrice"))
        if price is None:
            raise UnknownSymbolError(f"yahoo has no quote for {symbol!r}", vendor=self.name)
        return Quote(
            symbol=symbol,
            ts=at.replace(second=0, microsecond=0),
            price=price,
            bid=optional_float(info.get("bid")),
            ask=optional_float(info.get("ask")),
            bid_size=optional_int(info.get("bidSize")),
            ask_size=optional_int(info.get("askSize")),
            volume=int(info.get("regularMarketVolume") or 0),
            change=float(info.get("regularMarketChange") or 0.0),
            change_percent=float(info.get("regularMarketChangePercent") or 0.0),
        )

    def _history(self, symbol: str, start: date, end: date, actions: bool) -> Any:
        # yfinance's end is exclusive.
        return self._call(
            "history",
            symbol,
            lambda: self._ticker(symbol).history(
                start=start.isoformat(),
                end=(end + timedelta(days=1)).isoformat(),
                interval="1d",
                auto_adjust=False,
                actions=actions,
            ),
        )

    def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        frame = self._history(symbol, start, end, actions=False)
        bars = []
        for stamp, row in frame.iterrows():
            bars.append(
                DailyBar(
                    symbol=symbol,
                    day=stamp.date(),
                    open=float(row["Open"]),
                    high=float(row["High"]),
                    low=float(row["Low"]),
                    close=float(row["Close"]),
                    adj_close=float(row["Adj Close"]),
                    volume=int(row["Volume"]),
                )
            )
        return [bar for bar in bars if start <= bar.day <= end]

    def option_chain(
        self, symbol: str, as_of: datetime, expirations: int, strikes_per_side: int
    ) -> list[OptionContract]:
        ticker = self._ticker(symbol)
        dates = self._call("options", symbol, lambda: list(ticker.options))[:expirations]
        out: list[OptionContract] = []
        for expiry_text in dates:
            chain = self._call("option_chain", symbol, partial(ticker.option_chain, expiry_text))
            underlying = optional_float((chain.underlying or {}).get("regularMarketPrice"))
            if underlying is None:
                raise PermanentProviderError(
                    f"yahoo gave no underlying price with the {symbol} chain", vendor=self.name
                )
            expiration = date.fromisoformat(expiry_text)
            years = _years_to_expiry(as_of, expiration)
            sides: tuple[tuple[OptionType, Any], ...] = (("call", chain.calls), ("put", chain.puts))
            for kind, frame in sides:
                rows = [row for _, row in frame.iterrows()]
                for row in _nearest_strikes(rows, underlying, strikes_per_side):
                    out.append(
                        self._contract(symbol, as_of, expiration, kind, row, underlying, years)
                    )
        return out

    def _contract(
        self,
        symbol: str,
        as_of: datetime,
        expiration: date,
        kind: OptionType,
        row: Any,
        underlying: float,
        years: float,
    ) -> OptionContract:
        strike = float(row["strike"])
        volatility = float(row["impliedVolatility"])
        greeks = blackscholes.greeks(kind, underlying, strike, years, self._rate, volatility)
        return OptionContract(
            underlying=symbol,
            as_of=as_of,
            expiration=expiration,
            strike=strike,
            option_type=kind,
            bid=float(row["bid"]),
            ask=float(row["ask"]),
            last=float(row["lastPrice"]),
            implied_volatility=volatility,
            delta=greeks.delta,
            gamma=greeks.gamma,
            theta=greeks.theta / 365.0,  # the record's theta is per calendar day
            vega=greeks.vega,
            open_interest=_finite_int(row.get("openInterest")),
            volume=_finite_int(row.get("volume")),
            underlying_price=underlying,
        )

    # --- company data -----------------------------------------------------------------

    def fundamentals(self, symbol: str, as_of: date, periods: int) -> list[Fundamentals]:
        # Yahoo has statements (yfinance's quarterly_income_stmt), but this adapter does not
        # read them yet: route fundamentals to edgar or alphavantage.
        raise NotOfferedError(self.name, "fundamentals (through this adapter)")

    def dividends(self, symbol: str, start: date, end: date) -> list[Dividend]:
        ticker = self._ticker(symbol)
        frame = self._call(
            "history",
            symbol,
            lambda: ticker.history(
                start=start.isoformat(),
                end=(end + timedelta(days=1)).isoformat(),
                interval="1d",
                auto_adjust=False,
                actions=True,
            ),
        )
        currency = ticker.history_metadata.get("currency")
        if not currency:
            raise PermanentProviderError(f"yahoo gave no currency for {symbol}", vendor=self.name)
        return [
            Dividend(
                symbol=symbol,
                ex_date=stamp.date(),
                record_date=None,  # Yahoo's chart carries the ex-date and amount only
                pay_date=None,
                declared_date=None,
                amount=float(row["Dividends"]),
                currency=str(currency),
            )
            for stamp, row in frame.iterrows()
            if float(row["Dividends"]) > 0 and start <= stamp.date() <= end
        ]

    def earnings(self, symbol: str, as_of: date, quarters: int) -> list[EarningsReport]:
        frame = self._call(
            "earnings_history", symbol, lambda: self._ticker(symbol).earnings_history
        )
        if frame is None or frame.empty:
            return []
        out = []
        for stamp, row in frame.iterrows():
            period_end = stamp.date()
            if period_end >= as_of:
                continue
            out.append(
                EarningsReport(
                    symbol=symbol,
                    fiscal_period=fiscal_quarter(period_end),
                    report_date=None,  # earningsHistory dates the quarter, not the report
                    eps_estimate=_finite(row.get("epsEstimate")),
                    eps_actual=_finite(row.get("epsActual")),
                    revenue_estimate=None,
                    revenue_actual=None,
                )
            )
        out.sort(key=lambda r: r.fiscal_period, reverse=True)
        return out[:quarters]

    def news(self, symbol: str, since: datetime, until: datetime, limit: int) -> list[NewsArticle]:
        items = self._call("news", symbol, lambda: self._ticker(symbol).get_news(count=limit))
        out = []
        for item in items:
            content = item.get("content") or {}
            if content.get("contentType") not in ("STORY", "VIDEO") or not content.get("pubDate"):
                continue
            published = datetime.fromisoformat(str(content["pubDate"]).replace("Z", "+00:00"))
            if not since <= published < until:
                continue
            url = ((content.get("canonicalUrl") or {}).get("url")) or (
                (content.get("clickThroughUrl") or {}).get("url")
            )
            if not url:
                continue
            out.append(
                NewsArticle(
                    article_id=f"yahoo-{content.get('id') or item['id']}",
                    symbol=symbol,
                    published_at=published.astimezone(UTC),
                    headline=str(content.get("title") or ""),
                    summary=str(content.get("summary") or ""),
                    publisher=str((content.get("provider") or {}).get("displayName") or ""),
                    url=str(url),
                    sentiment=None,  # Yahoo scores no sentiment
                )
            )
        out.sort(key=lambda a: a.published_at, reverse=True)
        return out[:limit]

    def company_profile(self, symbol: str) -> CompanyProfile:
        info = self._call("info", symbol, lambda: dict(self._ticker(symbol).info))
        name = info.get("longName") or info.get("shortName")
        if not name:
            raise UnknownSymbolError(f"yahoo has no profile of {symbol!r}", vendor=self.name)
        return CompanyProfile(
            symbol=symbol,
            name=str(name),
            sector=str(info.get("sector") or ""),
            industry=str(info.get("industry") or ""),
            exchange=str(info.get("exchange") or ""),
            country=str(info.get("country") or ""),
            currency=info.get("currency") or info.get("financialCurrency") or None,
            employees=optional_int(info.get("fullTimeEmployees")),
            website=str(info.get("website") or ""),
            description=str(info.get("longBusinessSummary") or ""),
        )

    # --- not offered ----------------------------------------------------------------------


@contextmanager
def _classified(what: str, symbol: str) -> Iterator[None]:
    try:
        yield
    except ProviderError:
        raise
    except yf_errors.YFRateLimitError as exc:
        raise TransientProviderError(f"yahoo rate limit ({what} {symbol})", vendor="yahoo") from exc
    except yf_errors.YFTickerMissingError as exc:
        raise UnknownSymbolError(f"yahoo does not know {symbol!r}: {exc}", vendor="yahoo") from exc
    except ValueError as exc:
        # JSON decoding errors and unexpected shapes surface as ValueError subclasses.
        raise PermanentProviderError(
            f"malformed answer from yahoo ({what} {symbol}): {exc}", vendor="yahoo"
        ) from exc
    except Exception as exc:
        # An HTTP error is an OSError in requests: read its status before the transport test.
        status = getattr(getattr(exc, "response", None), "status_code", None)
        # curl_cffi attaches a response with status 0 to a transport failure (no answer).
        if not (isinstance(status, int) and status >= 100):
            status = None
        if status is None and (
            type(exc).__name__ in _TRANSIENT_TRANSPORT or isinstance(exc, OSError)
        ):
            raise TransientProviderError(
                f"yahoo unreachable ({what} {symbol}): {type(exc).__name__}", vendor="yahoo"
            ) from exc
        if isinstance(status, int):
            headers = getattr(exc.response, "headers", None) or {}  # type: ignore[attr-defined]
            error = error_for_status(
                "yahoo",
                status,
                retry_after=headers.get("Retry-After"),
                detail=f"{what} {symbol!r}",
            )
            if error is not None:
                raise error from exc
        raise


def _years_to_expiry(as_of: datetime, expiration: date) -> float:
    close = datetime.combine(expiration, _EXPIRY_CLOSE, tzinfo=_NEW_YORK)
    return max(0.0, (close - as_of).total_seconds() / _YEAR_SECONDS)


def _nearest_strikes(rows: list[Any], spot: float, per_side: int) -> list[Any]:
    """``per_side`` strikes at or below the spot and ``per_side`` above it."""
    below = sorted(
        (r for r in rows if float(r["strike"]) <= spot), key=lambda r: -float(r["strike"])
    )
    above = sorted((r for r in rows if float(r["strike"]) > spot), key=lambda r: float(r["strike"]))
    return sorted(below[:per_side] + above[:per_side], key=lambda r: float(r["strike"]))


def _finite(value: Any) -> float | None:
    number = optional_float(value)
    return None if number is None or math.isnan(number) else number


def _finite_int(value: Any) -> int | None:
    number = _finite(value)
    return None if number is None else int(number)
