"""SEC EDGAR (https://www.sec.gov/search-filings/edgar-application-programming-interfaces).

Fundamentals from XBRL company facts, company info from submissions, tickers resolved to
CIKs with the SEC's own ``company_tickers.json``. The SEC's fair-access policy asks every
client to declare itself in the User-Agent (a company name and a contact e-mail) and to
stay under 10 requests per second per user, however many machines; the adapter refuses
to start without a User-Agent, and the shared quota keeps the rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import httpx

from marketq.providers.adapter import VendorAdapter
from marketq.providers.base import (
    CompanyProfile,
    Fundamentals,
)
from marketq.providers.errors import (
    InvalidKeyError,
    PermanentProviderError,
    UnknownSymbolError,
)
from marketq.providers.http import DEFAULT_TIMEOUT_SECONDS, VendorHttp
from marketq.providers.parsing import parse_date
from marketq.providers.quota import Quota

__all__ = ["EdgarProvider"]

TICKERS_URL = "https://www.sec.gov/files/company_tickers.json"
DATA_URL = "https://data.sec.gov"

# Concepts tried in order: filers tag revenue differently across years and industries.
_REVENUE = (
    "RevenueFromContractWithCustomerExcludingAssessedTax",
    "Revenues",
    "SalesRevenueNet",
)
_EPS = ("EarningsPerShareDiluted", "EarningsPerShareBasic")
# A quarter's duration facts span about 91 days; year-to-date and annual facts are longer.
_QUARTER_DAYS = range(80, 101)
# The cover page's share count is dated a few weeks after the period it accompanies.
_SHARES_AFTER_PERIOD_DAYS = 120

# SIC divisions (the SEC's Standard Industrial Classification code ranges).
_SIC_DIVISIONS = (
    (100, 999, "Agriculture, Forestry and Fishing"),
    (1000, 1499, "Mining"),
    (1500, 1799, "Construction"),
    (2000, 3999, "Manufacturing"),
    (4000, 4999, "Transportation, Communications and Utilities"),
    (5000, 5199, "Wholesale Trade"),
    (5200, 5999, "Retail Trade"),
    (6000, 6799, "Finance, Insurance and Real Estate"),
    (7000, 8999, "Services"),
    (9100, 9729, "Public Administration"),
)


class EdgarProvider(VendorAdapter):
    name = "edgar"

    def __init__(
        self,
        user_agent: str,
        *,
        quota: Quota | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        client: httpx.Client | None = None,
    ) -> None:
        if not user_agent or "@" not in user_agent:
            raise InvalidKeyError(
                "edgar needs a User-Agent with a company name and a contact e-mail "
                "(SEC fair-access policy), e.g. 'Example Corp ops@example.com'",
                vendor=self.name,
            )
        headers = {"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"}
        if client is not None:
            client.headers.update(headers)
        self._http = VendorHttp(
            self.name,
            api_key=user_agent,
            quota=quota,
            headers=headers,
            timeout=timeout,
            client=client,
        )
        self._ciks: dict[str, int] | None = None

    # --- requests ---------------------------------------------------------------------

    def _get(self, url: str, symbol: str) -> dict[str, Any]:
        try:
            body = self._http.get_json(url)
        except UnknownSymbolError as exc:
            raise UnknownSymbolError(
                f"edgar has nothing for {symbol!r}: {exc}", vendor=self.name
            ) from exc
        if not isinstance(body, dict):
            raise PermanentProviderError(
                f"malformed answer from edgar ({url}): {type(body).__name__}", vendor=self.name
            )
        return body

    def cik(self, symbol: str) -> int:
        if self._ciks is None:
            rows = self._get(TICKERS_URL, symbol).values()
            try:
                self._ciks = {str(row["ticker"]).upper(): int(row["cik_str"]) for row in rows}
            except (KeyError, TypeError, ValueError) as exc:
                raise PermanentProviderError(
                    f"malformed company_tickers.json from edgar: {exc}", vendor=self.name
                ) from exc
        try:
            return self._ciks[symbol.upper()]
        except KeyError:
            raise UnknownSymbolError(f"edgar has no CIK for {symbol!r}", vendor=self.name) from None

    # --- fundamentals -------------------------------------------------------------------

    def fundamentals(self, symbol: str, as_of: date, periods: int) -> list[Fundamentals]:
        body = self._get(
            f"{DATA_URL}/api/xbrl/companyfacts/CIK{self.cik(symbol):010d}.json", symbol
        )
        facts = body.get("facts")
        if not isinstance(facts, dict):
            raise PermanentProviderError(f"malformed companyfacts for {symbol}", vendor=self.name)
        gaap = facts.get("us-gaap", {})
        revenue = _first(_quarters(gaap, c, "USD") for c in _REVENUE)
        net_income = _quarters(gaap, "NetIncomeLoss", "USD")
        eps = _first(_quarters(gaap, c, "USD/shares") for c in _EPS)
        assets = _instants(gaap, "Assets", "USD")
        liabilities = _instants(gaap, "Liabilities", "USD")
        shares = _instants(facts.get("dei", {}), "EntityCommonStockSharesOutstanding", "shares")
        ends = sorted((end for end in revenue if end in net_income and end < as_of), reverse=True)
        return [
            Fundamentals(
                symbol=symbol,
                period_end=end,
                period_type="quarter",
                revenue=revenue[end],
                net_income=net_income[end],
                eps=eps.get(end),
                total_assets=assets.get(end),
                total_liabilities=liabilities.get(end),
                shares_outstanding=_shares_after(shares, end),
                market_cap=None,  # EDGAR has filings, not prices
                pe_ratio=None,
            )
            for end in ends[:periods]
        ]

    def company_profile(self, symbol: str) -> CompanyProfile:
        body = self._get(f"{DATA_URL}/submissions/CIK{self.cik(symbol):010d}.json", symbol)
        business = (body.get("addresses") or {}).get("business") or {}
        foreign = bool(business.get("isForeignLocation"))
        exchanges = [e for e in body.get("exchanges") or [] if e]
        return CompanyProfile(
            symbol=symbol,
            name=str(body.get("name") or symbol),
            sector=_sic_division(body.get("sic")),
            industry=str(body.get("sicDescription") or ""),
            exchange=str(exchanges[0]) if exchanges else "",
            country=str(business.get("country") or "") if foreign else "US",
            currency=None,  # submissions carry no trading currency
            employees=None,
            website=str(body.get("website") or ""),
            description=str(body.get("description") or ""),
        )

    # --- not offered ----------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()


def _values(taxonomy: dict[str, Any], concept: str, unit: str) -> list[dict[str, Any]]:
    values = ((taxonomy.get(concept) or {}).get("units") or {}).get(unit) or []
    # The same fact is repeated by later filings; the latest filing's value wins.
    return sorted(values, key=lambda v: str(v.get("filed", "")))


def _quarters(taxonomy: dict[str, Any], concept: str, unit: str) -> dict[date, float]:
    out: dict[date, float] = {}
    for value in _values(taxonomy, concept, unit):
        if "start" not in value:
            continue
        start, end = parse_date(value["start"]), parse_date(value["end"])
        if (end - start).days in _QUARTER_DAYS:
            out[end] = float(value["val"])
    return out


def _instants(taxonomy: dict[str, Any], concept: str, unit: str) -> dict[date, float]:
    return {
        parse_date(v["end"]): float(v["val"])
        for v in _values(taxonomy, concept, unit)
        if "start" not in v
    }


def _first(candidates: Iterable[dict[date, float]]) -> dict[date, float]:
    """Per period, the value of the first concept that has one."""
    out: dict[date, float] = {}
    for values in candidates:
        for end, value in values.items():
            out.setdefault(end, value)
    return out


def _shares_after(shares: dict[date, float], period_end: date) -> int | None:
    later = [d for d in shares if 0 <= (d - period_end).days <= _SHARES_AFTER_PERIOD_DAYS]
    return int(shares[min(later)]) if later else None


def _sic_division(sic: Any) -> str:
    try:
        code = int(sic)
    except (TypeError, ValueError):
        return ""
    return next((name for low, high, name in _SIC_DIVISIONS if low <= code <= high), "")
