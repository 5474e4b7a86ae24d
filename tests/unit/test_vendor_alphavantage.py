"""The Alpha Vantage adapter against recorded answers in the documented shapes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import httpx
import pytest
import respx

from marketq.providers.alphavantage import AlphaVantageProvider
from marketq.providers.errors import (
    InvalidKeyError,
    NotOfferedError,
    PermanentProviderError,
    TransientProviderError,
    UnknownSymbolError,
)
from tests.support.vendor_replay import fixture, httpx_response, respx_route

AV = "alphavantage"
URL = "https://www.alphavantage.co/query"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def provider() -> AlphaVantageProvider:
    return AlphaVantageProvider(
        "demo-key", client=httpx.Client(timeout=5), today=lambda: date(2026, 12, 4)
    )


def test_quote_reads_global_quote(router: respx.MockRouter, provider: AlphaVantageProvider) -> None:
    route = respx_route(router, AV, "global_quote_IBM")
    at = datetime(2026, 12, 3, 15, 41, 27, tzinfo=UTC)
    quote = provider.quote("IBM", at)
    assert (quote.price, quote.volume, quote.change, quote.change_percent) == (
        303.41,
        3912844,
        2.36,
        0.7839,
    )
    assert quote.ts == datetime(2026, 12, 3, 15, 41, tzinfo=UTC)
    # GLOBAL_QUOTE has no book: the adapter says so instead of inventing one.
    assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (None, None, None, None)
    assert route.calls.last.request.url.params["apikey"] == "demo-key"


def test_daily_bars_keep_the_requested_range_in_date_order(
    router: respx.MockRouter, provider: AlphaVantageProvider
) -> None:
    respx_route(router, AV, "time_series_daily_adjusted_IBM")
    bars = provider.daily_bars("IBM", date(2026, 12, 1), date(2026, 12, 3))
    assert [b.day for b in bars] == [date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)]
    first = bars[0]
    assert (first.open, first.high, first.low, first.close, first.adj_close, first.volume) == (
        296.40,
        299.90,
        295.80,
        299.32,
        299.32,
        3655120,
    )


def test_fundamentals_join_income_balance_and_earnings(
    router: respx.MockRouter, provider: AlphaVantageProvider
) -> None:
    for name in ("income_statement_IBM", "balance_sheet_IBM", "earnings_IBM"):
        respx_route(router, AV, name)
    statements = provider.fundamentals("IBM", date(2026, 12, 4), periods=2)
    assert [s.period_end for s in statements] == [date(2026, 9, 30), date(2026, 6, 30)]
    latest = statements[0]
    assert (latest.revenue, latest.net_income, latest.eps) == (16.33e9, 1.74e9, 2.65)
    assert (latest.total_assets, latest.total_liabilities) == (147.8e9, 120.3e9)
    assert latest.shares_outstanding == 930800000
    assert latest.market_cap is None  # OVERVIEW's is today's, not the quarter's


def test_dividends_carry_all_four_dates_and_the_overview_currency(
    router: respx.MockRouter, provider: AlphaVantageProvider
) -> None:
    respx_route(router, AV, "dividends_IBM")
    respx_route(router, AV, "overview_IBM")
    paid = provider.dividends("IBM", date(2026, 6, 1), date(2026, 12, 4))
    assert [(d.ex_date, d.pay_date, d.amount, d.currency) for d in paid] == [
        (date(2026, 8, 8), date(2026, 9, 10), 1.68, "USD"),
        (date(2026, 11, 10), date(2026, 12, 10), 1.68, "USD"),
    ]
    assert paid[0].declared_date == date(2026, 7, 29) and paid[0].record_date == date(2026, 8, 8)


def test_earnings_label_quarters_and_skip_future_reports(
    router: respx.MockRouter, provider: AlphaVantageProvider
) -> None:
    respx_route(router, AV, "earnings_IBM")
    reports = provider.earnings("IBM", date(2026, 8, 1), quarters=2)
    assert [(r.fiscal_period, r.report_date, r.eps_actual, r.eps_estimate) for r in reports] == [
        ("2026Q2", date(2026, 7, 22), 2.80, 2.64),
        ("2026Q1", date(2026, 4, 22), 1.60, 1.42),
    ]


def test_earnings_calendar_reads_the_csv(
    router: respx.MockRouter, provider: AlphaVantageProvider
) -> None:
    respx_route(router, AV, "earnings_calendar_3month")
    entries = provider.earnings_calendar(["IBM", "ZZZZ"], date(2026, 12, 4), date(2027, 2, 28))
    assert [(e.symbol, e.report_date, e.fiscal_period, e.eps_estimate) for e in entries] == [
        ("IBM", date(2027, 1, 27), "2026Q4", 4.32),
        ("ZZZZ", date(2027, 2, 10), "2026Q4", None),  # no estimate published
    ]
    assert all(e.time_of_day is None for e in entries)


def test_transcript_joins_speakers_and_takes_the_report_date(
    router: respx.MockRouter, provider: AlphaVantageProvider
) -> None:
    respx_route(router, AV, "earnings_call_transcript_IBM_2026Q3")
    respx_route(router, AV, "earnings_IBM")
    transcript = provider.earnings_transcript("IBM", "2026Q3")
    assert transcript.call_date == date(2026, 10, 21)
    assert transcript.content.startswith("Operator (Operator): Welcome")
    assert "raised our free cash flow outlook" in transcript.content


def test_news_uses_the_symbols_own_sentiment(
    router: respx.MockRouter, provider: AlphaVantageProvider
) -> None:
    respx_route(router, AV, "news_sentiment_IBM")
    since = datetime(2026, 12, 3, tzinfo=UTC)
    articles = provider.news("IBM", since, datetime(2026, 12, 4, tzinfo=UTC), limit=10)
    assert [(a.published_at.hour, a.sentiment, a.publisher) for a in articles] == [
        (15, 0.264, "Example Wire"),
        (9, -0.031, "Example Markets"),
    ]
    assert len({a.article_id for a in articles}) == 2


@pytest.mark.parametrize(
    ("series", "fixture_name", "unit", "first"),
    [
        ("REAL_GDP", "real_gdp", "billions of dollars", (date(2026, 1, 1), 23790.871)),
        ("CPI", "cpi", "index 1982-1984=100", (date(2026, 8, 1), 325.012)),
        ("UNRATE", "unemployment", "percent", (date(2026, 8, 1), 4.3)),
    ],
)
def test_economic_series(
    router: respx.MockRouter,
    provider: AlphaVantageProvider,
    series: str,
    fixture_name: str,
    unit: str,
    first: tuple[date, float],
) -> None:
    respx_route(router, AV, fixture_name)
    observations = provider.economic_series(series, date(2026, 1, 1), date(2026, 12, 4))
    assert (observations[0].period, observations[0].value) == first
    assert {o.unit for o in observations} == {unit}
    assert [o.period for o in observations] == sorted(o.period for o in observations)


def test_company_profile_from_overview(
    router: respx.MockRouter, provider: AlphaVantageProvider
) -> None:
    respx_route(router, AV, "overview_IBM")
    profile = provider.company_profile("IBM")
    assert (profile.name, profile.exchange, profile.currency, profile.employees) == (
        "International Business Machines",
        "NYSE",
        "USD",
        270300,
    )


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda p: p.option_chain("IBM", datetime.now(UTC), 1, 1), "option_chain"),
        (lambda p: p.economic_events(date(2026, 1, 1), date(2026, 2, 1)), "economic_events"),
        (lambda p: p.economic_series("GDP", date(2026, 1, 1), date(2026, 2, 1)), "'GDP'"),
    ],
)
def test_what_alpha_vantage_lacks_is_not_offered(
    router: respx.MockRouter, provider: AlphaVantageProvider, call: object, what: str
) -> None:
    with pytest.raises(NotOfferedError, match=f"{what}.* is not offered by alphavantage"):
        call(provider)  # type: ignore[operator]
    assert not router.calls  # no request spent on it


# --- the error cases ----------------------------------------------------------------------


def test_invalid_key_is_permanent(router: respx.MockRouter, provider: AlphaVantageProvider) -> None:
    respx_route(router, AV, "error_invalid_key")
    with pytest.raises(InvalidKeyError, match="apikey is invalid"):
        provider.quote("IBM", datetime.now(UTC))


def test_unknown_symbol_is_permanent(
    router: respx.MockRouter, provider: AlphaVantageProvider
) -> None:
    respx_route(router, AV, "error_invalid_call")
    with pytest.raises(UnknownSymbolError, match="'NOSUCH'"):
        provider.daily_bars("NOSUCH", date(2026, 12, 1), date(2026, 12, 3))


def test_premium_endpoint_on_a_free_key_is_a_key_error(
    router: respx.MockRouter, provider: AlphaVantageProvider
) -> None:
    respx_route(router, AV, "error_premium_endpoint")
    with pytest.raises(InvalidKeyError, match="plan lacks TIME_SERIES_DAILY_ADJUSTED"):
        provider.daily_bars("IBM", date(2026, 12, 1), date(2026, 12, 3))


@pytest.mark.parametrize(
    ("name", "retry_after"),
    [("error_rate_limit_note", 60.0), ("error_rate_limit_information", None)],
)
def test_rate_limit_bodies_are_transient(
    router: respx.MockRouter,
    provider: AlphaVantageProvider,
    name: str,
    retry_after: float | None,
) -> None:
    respx_route(router, AV, name)
    with pytest.raises(TransientProviderError) as caught:
        provider.quote("IBM", datetime.now(UTC))
    assert caught.value.retry_after == retry_after


def test_http_429_honours_retry_after(
    router: respx.MockRouter, provider: AlphaVantageProvider
) -> None:
    router.get(URL).mock(
        return_value=httpx.Response(429, headers={"Retry-After": "17"}, text="slow down")
    )
    with pytest.raises(TransientProviderError) as caught:
        provider.quote("IBM", datetime.now(UTC))
    assert caught.value.retry_after == 17.0


def test_500_then_success(router: respx.MockRouter, provider: AlphaVantageProvider) -> None:
    recorded = fixture(AV, "global_quote_IBM")
    router.get(URL).mock(
        side_effect=[httpx.Response(500, text="upstream error"), httpx_response(recorded)]
    )
    with pytest.raises(TransientProviderError, match="HTTP 500"):
        provider.quote("IBM", datetime.now(UTC))
    assert provider.quote("IBM", datetime.now(UTC)).price == 303.41


def test_timeout_is_transient(router: respx.MockRouter, provider: AlphaVantageProvider) -> None:
    router.get(URL).mock(side_effect=httpx.ReadTimeout("read timed out"))
    with pytest.raises(TransientProviderError, match="timed out"):
        provider.quote("IBM", datetime.now(UTC))


def test_malformed_body_is_permanent(
    router: respx.MockRouter, provider: AlphaVantageProvider
) -> None:
    router.get(URL).mock(return_value=httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(PermanentProviderError, match="malformed answer from alphavantage"):
        provider.quote("IBM", datetime.now(UTC))


def test_a_body_without_the_documented_section_is_malformed(
    router: respx.MockRouter, provider: AlphaVantageProvider
) -> None:
    router.get(URL).mock(return_value=httpx.Response(200, json={"Meta Data": {}}))
    with pytest.raises(PermanentProviderError, match="no 'Time Series \\(Daily\\)'"):
        provider.daily_bars("IBM", date(2026, 12, 1), date(2026, 12, 3))


def test_a_missing_key_is_refused_at_construction() -> None:
    with pytest.raises(InvalidKeyError, match="needs an API key"):
        AlphaVantageProvider("")
