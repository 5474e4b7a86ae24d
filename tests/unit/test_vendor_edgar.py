"""The SEC EDGAR adapter against recorded answers in the documented shapes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import httpx
import pytest
import respx

from marketq.providers.edgar import EdgarProvider
from marketq.providers.errors import InvalidKeyError, NotOfferedError, UnknownSymbolError
from tests.support.vendor_replay import respx_route

USER_AGENT = "marketq tests ops@marketq.example"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def provider() -> EdgarProvider:
    return EdgarProvider(USER_AGENT, client=httpx.Client(timeout=5))


def test_fundamentals_from_company_facts(router: respx.MockRouter, provider: EdgarProvider) -> None:
    tickers = respx_route(router, "edgar", "company_tickers")
    facts = respx_route(router, "edgar", "companyfacts_CIK0000320193")
    statements = provider.fundamentals("AAPL", date(2026, 12, 4), periods=4)
    # Only the three-month fact is a quarter: year-to-date and annual values are not.
    assert len(statements) == 1
    quarter = statements[0]
    assert (quarter.period_end, quarter.revenue, quarter.net_income, quarter.eps) == (
        date(2026, 6, 27),
        94036000000.0,
        23434000000.0,
        1.57,
    )
    assert (quarter.total_assets, quarter.total_liabilities) == (331495000000.0, 265665000000.0)
    assert quarter.shares_outstanding == 14840390000  # the next cover page's count
    assert quarter.market_cap is None
    # Every request declares who is asking (SEC fair-access policy).
    for route in (tickers, facts):
        assert route.calls.last.request.headers["User-Agent"] == USER_AGENT


def test_company_profile_from_submissions(
    router: respx.MockRouter, provider: EdgarProvider
) -> None:
    respx_route(router, "edgar", "company_tickers")
    respx_route(router, "edgar", "submissions_CIK0000320193")
    profile = provider.company_profile("AAPL")
    assert (profile.name, profile.sector, profile.industry, profile.exchange, profile.country) == (
        "Apple Inc.",
        "Manufacturing",  # SIC 3571's division
        "Electronic Computers",
        "Nasdaq",
        "US",
    )
    assert profile.currency is None and profile.employees is None


def test_a_ticker_the_sec_does_not_list_is_unknown(
    router: respx.MockRouter, provider: EdgarProvider
) -> None:
    respx_route(router, "edgar", "company_tickers")
    with pytest.raises(UnknownSymbolError, match="no CIK for 'NOSUCH'"):
        provider.company_profile("NOSUCH")


def test_404_is_an_unknown_symbol(router: respx.MockRouter, provider: EdgarProvider) -> None:
    router.get("https://www.sec.gov/files/company_tickers.json").mock(
        return_value=httpx.Response(200, json={"0": {"cik_str": 1, "ticker": "GONE", "title": "x"}})
    )
    respx_route(router, "edgar", "error_not_found")
    with pytest.raises(UnknownSymbolError, match="NoSuchKey"):
        provider.company_profile("GONE")


def test_undeclared_tool_is_refused_permanently(
    router: respx.MockRouter, provider: EdgarProvider
) -> None:
    respx_route(router, "edgar", "company_tickers")
    respx_route(router, "edgar", "error_undeclared_tool")
    with pytest.raises(InvalidKeyError, match=r"HTTP 403.*Undeclared Automated Tool"):
        provider.company_profile("AAPL")


def test_a_user_agent_without_contact_is_refused_before_any_request() -> None:
    with pytest.raises(InvalidKeyError, match="contact e-mail"):
        EdgarProvider("python-httpx")


def test_edgar_does_not_offer_prices(router: respx.MockRouter, provider: EdgarProvider) -> None:
    with pytest.raises(NotOfferedError, match="daily_bars is not offered by edgar"):
        provider.daily_bars("AAPL", date(2026, 1, 1), date(2026, 2, 1))
    with pytest.raises(NotOfferedError, match="quote is not offered by edgar"):
        provider.quote("AAPL", datetime.now(UTC))
    assert not router.calls
