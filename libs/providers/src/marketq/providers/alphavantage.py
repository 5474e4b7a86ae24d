"""Alpha Vantage (https://www.alphavantage.co/documentation/) over its REST API.

Every function is one ``GET /query?function=...&apikey=...``. Alpha Vantage answers most
errors with HTTP 200 and a JSON body instead of a status: ``Error Message`` (an invalid
key, an unknown symbol), ``Note`` (the per-minute limit) or ``Information`` (the daily
limit, or a premium endpoint on a free key). ``_checked`` turns those into the provider
error classes. Numbers arrive as strings; "None" or "" means not published.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import httpx

from marketq.providers.adapter import VendorAdapter
from marketq.providers.base import (
    CompanyProfile,
    DailyBar,
    Dividend,
    EarningsCalendarEntry,
    EarningsReport,
    EarningsTranscript,
    EconomicObservation,
    Fundamentals,
    NewsArticle,
    Quote,
)
from marketq.providers.errors import (
    InvalidKeyError,
    NotOfferedError,
    PermanentProviderError,
    TransientProviderError,
    UnknownSymbolError,
)
from marketq.providers.http import DEFAULT_TIMEOUT_SECONDS, VendorHttp
from marketq.providers.parsing import fiscal_quarter, optional_float, optional_int, parse_date
from marketq.providers.quota import Quota

__all__ = ["ALPHAVANTAGE_SERIES", "AlphaVantageProvider"]

BASE_URL = "https://www.alphavantage.co/query"

# marketq series code -> (function, extra parameters). Alpha Vantage publishes real GDP
# only, so the nominal "GDP" series is not offered; "REAL_GDP" is.
ALPHAVANTAGE_SERIES: dict[str, tuple[str, dict[str, str]]] = {
    "REAL_GDP": ("REAL_GDP", {"interval": "quarterly"}),
    "CPI": ("CPI", {"interval": "monthly"}),
    "UNRATE": ("UNEMPLOYMENT", {}),
    "FEDFUNDS": ("FEDERAL_FUNDS_RATE", {"interval": "monthly"}),
    "PAYEMS": ("NONFARM_PAYROLL", {}),
}

# The compact daily series holds the latest 100 sessions; older starts need "full".
_COMPACT_SESSIONS_DAYS = 140
# The per-minute limit ("Note") clears within a minute; the daily one does not.
_PER_MINUTE_RETRY_SECONDS = 60.0


class AlphaVantageProvider(VendorAdapter):
    name = "alphavantage"

    def __init__(
        self,
        api_key: str,
        *,
        quota: Quota | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        client: httpx.Client | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        """``today`` picks the request size: Alpha Vantage's windows count back from today."""
        if not api_key:
            raise InvalidKeyError("alphavantage needs an API key", vendor=self.name)
        self._api_key = api_key
        self._http = VendorHttp(
            self.name, api_key=api_key, quota=quota, timeout=timeout, client=client
        )
        self._overview = lru_cache(maxsize=256)(self._fetch_overview)
        self._today = today

    # --- the one request ----------------------------------------------------------

    def _query(self, function: str, symbol: str | None = None, **params: str) -> Any:
        query = {"function": function, **params, "apikey": self._api_key}
        if symbol is not None:
            query["symbol"] = symbol
        if function == "EARNINGS_CALENDAR":
            return self._checked(function, symbol, self._http.get(BASE_URL, query).text)
        return self._checked(function, symbol, self._http.get_json(BASE_URL, query))

    def _checked(self, function: str, symbol: str | None, body: Any) -> Any:
        if isinstance(body, str):
            # CSV endpoints answer errors as JSON text.
            if body.lstrip().startswith("{"):
                try:
                    return self._checked(function, symbol, json.loads(body))
                except ValueError:
                    pass
            return body
        if not isinstance(body, dict):
            raise PermanentProviderError(
                f"malformed answer from alphavantage to {function}: {type(body).__name__}",
                vendor=self.name,
            )
        if message := body.get("Error Message"):
            if "apikey" in message.lower():
                raise InvalidKeyError(f"alphavantage: {message}", vendor=self.name)
            if symbol is not None:
                raise UnknownSymbolError(
                    f"alphavantage does not know {symbol!r} for {function}: {message}",
                    vendor=self.name,
                )
            raise PermanentProviderError(f"alphavantage: {message}", vendor=self.name)
        if message := body.get("Note"):
            raise TransientProviderError(
                f"alphavantage rate limit: {message}",
                vendor=self.name,
                retry_after=_PER_MINUTE_RETRY_SECONDS,
            )
        if (message := body.get("Information")) and len(body) == 1:
            if "premium" in message.lower() and "rate limit" not in message.lower():
                raise InvalidKeyError(
                    f"alphavantage: the key's plan lacks {function}: {message}", vendor=self.name
                )
            raise TransientProviderError(f"alphavantage rate limit: {message}", vendor=self.name)
        return body

    @staticmethod
    def _section(body: dict[str, Any], key: str, function: str) -> Any:
        try:
            return body[key]
        except KeyError:
            raise PermanentProviderError(
                f"malformed answer from alphavantage to {function}: no {key!r}",
                vendor="alphavantage",
            ) from None

    # --- prices ---------------------------------------------------------------------

    def quote(self, symbol: str, at: datetime) -> Quote:
        body = self._query("GLOBAL_QUOTE", symbol)
        row = self._section(body, "Global Quote", "GLOBAL_QUOTE")
        if not row:
            raise UnknownSymbolError(f"alphavantage has no quote for {symbol!r}", vendor=self.name)
        percent = str(row["10. change percent"]).rstrip("%")
        return Quote(
            symbol=symbol,
            ts=at.replace(second=0, microsecond=0),
            price=float(row["05. price"]),
            bid=None,
            ask=None,
            bid_size=None,
            ask_size=None,
            volume=int(row["06. volume"]),
            change=float(row["09. change"]),
            change_percent=float(percent),
        )

    def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        recent = (self._today() - start).days <= _COMPACT_SESSIONS_DAYS
        body = self._query(
            "TIME_SERIES_DAILY_ADJUSTED", symbol, outputsize="compact" if recent else "full"
        )
        series = self._section(body, "Time Series (Daily)", "TIME_SERIES_DAILY_ADJUSTED")
        bars = []
        for day_text, row in series.items():
            day = parse_date(day_text)
            if start <= day <= end:
                bars.append(
                    DailyBar(
                        symbol=symbol,
                        day=day,
                        open=float(row["1. open"]),
                        high=float(row["2. high"]),
                        low=float(row["3. low"]),
                        close=float(row["4. close"]),
                        adj_close=float(row["5. adjusted close"]),
                        volume=int(row["6. volume"]),
                    )
                )
        return sorted(bars, key=lambda bar: bar.day)

    # --- company data -----------------------------------------------------------------

    def _fetch_overview(self, symbol: str) -> dict[str, Any]:
        body = self._query("OVERVIEW", symbol)
        if not body or "Symbol" not in body:
            raise UnknownSymbolError(
                f"alphavantage has no overview of {symbol!r}", vendor=self.name
            )
        return dict(body)

    def fundamentals(self, symbol: str, as_of: date, periods: int) -> list[Fundamentals]:
        income = self._query("INCOME_STATEMENT", symbol)
        balance = self._query("BALANCE_SHEET", symbol)
        earnings = self._query("EARNINGS", symbol)
        sheets = {
            row["fiscalDateEnding"]: row
            for row in self._section(balance, "quarterlyReports", "BALANCE_SHEET")
        }
        eps = {
            row["fiscalDateEnding"]: optional_float(row.get("reportedEPS"))
            for row in self._section(earnings, "quarterlyEarnings", "EARNINGS")
        }
        out = []
        for row in self._section(income, "quarterlyReports", "INCOME_STATEMENT"):
            period_end = parse_date(row["fiscalDateEnding"])
            revenue = optional_float(row.get("totalRevenue"))
            net_income = optional_float(row.get("netIncome"))
            if period_end >= as_of or revenue is None or net_income is None:
                continue
            sheet = sheets.get(row["fiscalDateEnding"], {})
            out.append(
                Fundamentals(
                    symbol=symbol,
                    period_end=period_end,
                    period_type="quarter",
                    revenue=revenue,
                    net_income=net_income,
                    eps=eps.get(row["fiscalDateEnding"]),
                    total_assets=optional_float(sheet.get("totalAssets")),
                    total_liabilities=optional_float(sheet.get("totalLiabilities")),
                    shares_outstanding=optional_int(sheet.get("commonStockSharesOutstanding")),
                    # OVERVIEW's market cap and P/E describe today, not a past quarter.
                    market_cap=None,
                    pe_ratio=None,
                )
            )
        out.sort(key=lambda f: f.period_end, reverse=True)
        return out[:periods]

    def dividends(self, symbol: str, start: date, end: date) -> list[Dividend]:
        body = self._query("DIVIDENDS", symbol)
        currency = self._overview(symbol).get("Currency")
        if not currency:
            raise PermanentProviderError(
                f"alphavantage gives no currency for {symbol!r}", vendor=self.name
            )
        out = []
        for row in self._section(body, "data", "DIVIDENDS"):
            ex_date = parse_date(row["ex_dividend_date"])
            if start <= ex_date <= end:
                out.append(
                    Dividend(
                        symbol=symbol,
                        ex_date=ex_date,
                        record_date=_optional_date(row.get("record_date")),
                        pay_date=_optional_date(row.get("payment_date")),
                        declared_date=_optional_date(row.get("declaration_date")),
                        amount=float(row["amount"]),
                        currency=str(currency),
                    )
                )
        return sorted(out, key=lambda d: d.ex_date)

    def earnings(self, symbol: str, as_of: date, quarters: int) -> list[EarningsReport]:
        body = self._query("EARNINGS", symbol)
        out = []
        for row in self._section(body, "quarterlyEarnings", "EARNINGS"):
            report_date = _optional_date(row.get("reportedDate"))
            if report_date is not None and report_date > as_of:
                continue
            out.append(
                EarningsReport(
                    symbol=symbol,
                    fiscal_period=fiscal_quarter(parse_date(row["fiscalDateEnding"])),
                    report_date=report_date,
                    eps_estimate=optional_float(row.get("estimatedEPS")),
                    eps_actual=optional_float(row.get("reportedEPS")),
                    revenue_estimate=None,
                    revenue_actual=None,
                )
            )
        out.sort(key=lambda r: r.fiscal_period, reverse=True)
        return out[:quarters]

    def earnings_calendar(
        self, symbols: list[str], start: date, end: date
    ) -> list[EarningsCalendarEntry]:
        days = (end - self._today()).days
        horizon = "3month" if days <= 90 else "6month" if days <= 182 else "12month"
        text = self._query("EARNINGS_CALENDAR", horizon=horizon)
        reader = csv.DictReader(io.StringIO(text))
        expected = {"symbol", "reportDate", "fiscalDateEnding", "estimate"}
        if reader.fieldnames is None or not expected <= set(reader.fieldnames):
            raise PermanentProviderError(
                f"malformed answer from alphavantage to EARNINGS_CALENDAR: columns "
                f"{reader.fieldnames}",
                vendor=self.name,
            )
        wanted = set(symbols)
        out = []
        for row in reader:
            if row["symbol"] not in wanted:
                continue
            report_date = parse_date(row["reportDate"])
            if start <= report_date <= end:
                out.append(
                    EarningsCalendarEntry(
                        symbol=row["symbol"],
                        report_date=report_date,
                        fiscal_period=fiscal_quarter(parse_date(row["fiscalDateEnding"])),
                        time_of_day=None,
                        eps_estimate=optional_float(row.get("estimate")),
                    )
                )
        return out

    def earnings_transcript(self, symbol: str, fiscal_period: str) -> EarningsTranscript:
        body = self._query("EARNINGS_CALL_TRANSCRIPT", symbol, quarter=fiscal_period)
        parts = self._section(body, "transcript", "EARNINGS_CALL_TRANSCRIPT")
        if not parts:
            raise UnknownSymbolError(
                f"alphavantage has no {fiscal_period} call transcript for {symbol!r}",
                vendor=self.name,
            )
        call_date = next(
            (
                r.report_date
                for r in self.earnings(symbol, date.max, 400)
                if r.fiscal_period == fiscal_period
            ),
            None,
        )
        if call_date is None:
            raise PermanentProviderError(
                f"alphavantage gives no report date for {symbol} {fiscal_period}",
                vendor=self.name,
            )
        content = "\n\n".join(
            f"{part.get('speaker', '')} ({part.get('title', '')}): {part.get('content', '')}"
            for part in parts
        )
        return EarningsTranscript(
            symbol=symbol, fiscal_period=fiscal_period, call_date=call_date, content=content
        )

    def news(self, symbol: str, since: datetime, until: datetime, limit: int) -> list[NewsArticle]:
        body = self._query(
            "NEWS_SENTIMENT",
            tickers=symbol,
            time_from=since.astimezone(UTC).strftime("%Y%m%dT%H%M"),
            time_to=until.astimezone(UTC).strftime("%Y%m%dT%H%M"),
            sort="LATEST",
            limit=str(max(limit, 50)),
        )
        out = []
        for item in self._section(body, "feed", "NEWS_SENTIMENT"):
            published = datetime.strptime(item["time_published"], "%Y%m%dT%H%M%S").replace(
                tzinfo=UTC
            )
            if not since <= published < until:
                continue
            ticker: dict[str, Any] = next(
                (t for t in item.get("ticker_sentiment", []) if t.get("ticker") == symbol), {}
            )
            sentiment = optional_float(ticker.get("ticker_sentiment_score"))
            url = str(item["url"])
            out.append(
                NewsArticle(
                    # No article id in the feed: the URL identifies the article.
                    article_id="av-" + hashlib.sha256(url.encode()).hexdigest()[:24],
                    symbol=symbol,
                    published_at=published,
                    headline=str(item["title"]),
                    summary=str(item.get("summary") or ""),
                    publisher=str(item.get("source") or ""),
                    url=url,
                    sentiment=sentiment,
                )
            )
        out.sort(key=lambda a: a.published_at, reverse=True)
        return out[:limit]

    def economic_series(self, series: str, start: date, end: date) -> list[EconomicObservation]:
        if series not in ALPHAVANTAGE_SERIES:
            raise NotOfferedError(self.name, f"economic series {series!r}")
        function, params = ALPHAVANTAGE_SERIES[series]
        body = self._query(function, **params)
        unit = str(body.get("unit") or "")
        out = []
        for row in self._section(body, "data", function):
            period = parse_date(row["date"])
            value = optional_float(row.get("value"))
            if value is not None and start <= period <= end:
                out.append(
                    EconomicObservation(series=series, period=period, value=value, unit=unit)
                )
        return sorted(out, key=lambda o: o.period)

    def company_profile(self, symbol: str) -> CompanyProfile:
        row = self._overview(symbol)
        return CompanyProfile(
            symbol=symbol,
            name=str(row.get("Name") or symbol),
            sector=str(row.get("Sector") or ""),
            industry=str(row.get("Industry") or ""),
            exchange=str(row.get("Exchange") or ""),
            country=str(row.get("Country") or ""),
            currency=row.get("Currency") or None,
            employees=optional_int(row.get("FullTimeEmployees")),
            website=str(row.get("OfficialSite") or ""),
            description=str(row.get("Description") or ""),
        )

    def close(self) -> None:
        self._http.close()


def _optional_date(value: Any) -> date | None:
    if value in (None, "", "None"):
        return None
    return parse_date(str(value))
