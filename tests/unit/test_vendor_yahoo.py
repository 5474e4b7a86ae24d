"""The Yahoo adapter: yfinance's own parsing code run on recorded Yahoo answers.

yfinance talks HTTP through curl_cffi by default, which lives in libcurl where no Python
mock reaches; it accepts a requests Session as well, and ``responses`` replays the
recorded answers on that session, so every byte still goes through yfinance's parser
(docs/design.md#vendor-replay).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import requests
import responses
import yfinance
from yfinance.data import YfData

from marketq.providers.errors import (
    NotOfferedError,
    PermanentProviderError,
    TransientProviderError,
    UnknownSymbolError,
)
from marketq.providers.yahoo import YahooProvider
from tests.support.vendor_replay import responses_add

CHART = "https://query2.finance.yahoo.com/v8/finance/chart/AAPL"
SESSION_FIXTURES = ("cookie", "crumb")
AT = datetime(2026, 12, 3, 18, 41, tzinfo=UTC)


@pytest.fixture(scope="module", autouse=True)
def _yfinance_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # yfinance keeps a timezone and cookie cache on disk; keep it out of the home directory.
    yfinance.set_tz_cache_location(str(tmp_path_factory.mktemp("yfinance-cache")))


@pytest.fixture(autouse=True)
def _fresh_yfinance_session_state() -> None:
    """yfinance keeps its cookie strategy and crumb in a process-wide singleton (YfData).
    A test elsewhere in the process whose crumb fetch failed leaves it on the 'csrf'
    strategy (guce.yahoo.com), which no fixture here records; each test starts from a new
    one, as a fresh worker process would."""
    type(YfData)._instances.pop(YfData, None)


@pytest.fixture
def replay() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for name in SESSION_FIXTURES:
            responses_add(mock, "yahoo", name)
        yield mock


@pytest.fixture
def provider() -> YahooProvider:
    return YahooProvider(session=requests.Session())


def _add(mock: responses.RequestsMock, *names: str) -> None:
    for name in names:
        responses_add(mock, "yahoo", name)


def test_daily_bars_from_the_chart(replay: responses.RequestsMock, provider: YahooProvider) -> None:
    _add(replay, "chart_AAPL")
    bars = provider.daily_bars("AAPL", date(2026, 11, 30), date(2026, 12, 3))
    assert [b.day for b in bars] == [
        date(2026, 11, 30),
        date(2026, 12, 1),
        date(2026, 12, 2),
        date(2026, 12, 3),
    ]
    first = bars[0]
    assert (first.open, first.high, first.low, first.close, first.adj_close, first.volume) == (
        279.0,
        281.5,
        277.9,
        280.95,
        280.69,
        44211000,
    )


def test_dividends_from_chart_events(
    replay: responses.RequestsMock, provider: YahooProvider
) -> None:
    _add(replay, "chart_AAPL")
    paid = provider.dividends("AAPL", date(2026, 11, 30), date(2026, 12, 3))
    assert [(d.ex_date, d.amount, d.currency) for d in paid] == [(date(2026, 12, 1), 0.26, "USD")]
    # The chart carries the ex-date only; the other dates are not invented.
    assert (paid[0].record_date, paid[0].pay_date, paid[0].declared_date) == (None, None, None)


def test_quote_with_the_book(replay: responses.RequestsMock, provider: YahooProvider) -> None:
    _add(replay, "quote_summary_AAPL", "quote_AAPL", "timeseries_trailingPegRatio_AAPL")
    quote = provider.quote("AAPL", AT)
    assert (quote.price, quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (
        283.1,
        283.05,
        283.15,
        3,
        4,
    )
    assert (quote.volume, quote.change, quote.change_percent) == (21400512, 0.5, 0.17693)


def test_company_profile_from_info(replay: responses.RequestsMock, provider: YahooProvider) -> None:
    _add(replay, "quote_summary_AAPL", "quote_AAPL", "timeseries_trailingPegRatio_AAPL")
    profile = provider.company_profile("AAPL")
    assert (profile.name, profile.sector, profile.industry, profile.country) == (
        "Apple Inc.",
        "Technology",
        "Consumer Electronics",
        "United States",
    )
    assert (profile.currency, profile.employees, profile.website) == (
        "USD",
        166000,
        "https://www.apple.com",
    )


def test_option_chain_nearest_strikes_with_computed_greeks(
    replay: responses.RequestsMock, provider: YahooProvider
) -> None:
    _add(replay, "options_AAPL")
    chain = provider.option_chain("AAPL", AT, expirations=1, strikes_per_side=1)
    assert [(c.option_type, c.strike) for c in chain] == [
        ("call", 280.0),
        ("call", 285.0),
        ("put", 280.0),
        ("put", 285.0),
    ]
    call = chain[0]
    assert call.expiration == date(2026, 12, 11) and call.underlying_price == 283.1
    assert (call.bid, call.ask, call.last, call.implied_volatility) == (4.9, 5.05, 4.95, 0.2312)
    assert (call.open_interest, call.volume) == (15231, 8842)
    # In the money call, out of the money put: the signs and sizes Black-Scholes gives.
    assert 0.5 < call.delta < 1.0 and -0.5 < chain[2].delta < 0.0
    assert call.gamma > 0 and call.vega > 0 and call.theta < 0


def test_earnings_history(replay: responses.RequestsMock, provider: YahooProvider) -> None:
    _add(replay, "earnings_history_AAPL")
    reports = provider.earnings("AAPL", date(2026, 12, 4), quarters=2)
    assert [(r.fiscal_period, r.eps_actual, r.eps_estimate) for r in reports] == [
        ("2026Q3", 1.85, 1.77),
        ("2026Q2", 1.57, 1.43),
    ]
    assert all(r.report_date is None for r in reports)


def test_news_skips_ads_and_keeps_the_window(
    replay: responses.RequestsMock, provider: YahooProvider
) -> None:
    _add(replay, "news_AAPL")
    since = datetime(2026, 12, 3, 12, tzinfo=UTC)
    articles = provider.news("AAPL", since, datetime(2026, 12, 4, tzinfo=UTC), limit=10)
    assert [(a.headline, a.publisher) for a in articles] == [
        ("Apple's services revenue keeps climbing", "Example Wire")
    ]
    assert articles[0].sentiment is None


def test_unknown_symbol(replay: responses.RequestsMock, provider: YahooProvider) -> None:
    _add(replay, "chart_not_found", "quote_summary_not_found", "quote_not_found")
    with pytest.raises(UnknownSymbolError, match="'NOSUCH'"):
        provider.daily_bars("NOSUCH", date(2026, 11, 30), date(2026, 12, 3))


def test_429_is_transient(replay: responses.RequestsMock, provider: YahooProvider) -> None:
    _add(replay, "too_many_requests")
    with pytest.raises(TransientProviderError, match="yahoo rate limit"):
        # yfinance caches past date ranges in-process: each error case asks its own range.
        provider.daily_bars("AAPL", date(2026, 11, 2), date(2026, 11, 6))


def test_timeout_is_transient(replay: responses.RequestsMock, provider: YahooProvider) -> None:
    replay.add(responses.GET, CHART, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(TransientProviderError, match="ReadTimeout"):
        provider.daily_bars("AAPL", date(2026, 11, 9), date(2026, 11, 13))


def test_malformed_body_is_permanent(
    replay: responses.RequestsMock, provider: YahooProvider
) -> None:
    replay.add(
        responses.GET,
        "https://query2.finance.yahoo.com/v7/finance/options/AAPL",
        body="<html>Will be right back</html>",
        content_type="text/html",
    )
    with pytest.raises(PermanentProviderError, match="malformed answer from yahoo"):
        provider.option_chain("AAPL", AT, expirations=1, strikes_per_side=1)


def test_what_yahoo_lacks_is_not_offered(provider: YahooProvider) -> None:
    with pytest.raises(NotOfferedError, match="earnings_calendar is not offered by yahoo"):
        provider.earnings_calendar(["AAPL"], date(2026, 12, 4), date(2027, 1, 4))
    with pytest.raises(NotOfferedError, match="economic_series is not offered by yahoo"):
        provider.economic_series("CPI", date(2026, 1, 1), date(2026, 2, 1))


def test_the_replayed_fixtures_cover_every_yahoo_request_made(
    replay: responses.RequestsMock, provider: YahooProvider
) -> None:
    # assert_all_mocked is the default: an unrecorded request fails instead of going out.
    _add(replay, "chart_AAPL")
    provider.daily_bars("AAPL", date(2026, 11, 30), date(2026, 12, 3))
    hosts = {Path(call.request.url.split("?")[0]).parts[1] for call in replay.calls}
    assert hosts <= {"fc.yahoo.com", "query1.finance.yahoo.com", "query2.finance.yahoo.com"}


def test_a_curl_transport_failure_is_transient() -> None:
    # yfinance's default transport is curl_cffi, whose connection errors carry a response
    # with status 0; that is no answer at all, not an HTTP status to classify.
    from curl_cffi import requests as curl_requests

    from marketq.providers.yahoo import _classified

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with (
        pytest.raises(TransientProviderError, match="unreachable"),
        _classified("history", "AAPL"),
    ):
        curl_requests.get(f"http://127.0.0.1:{closed}/v8/finance/chart/AAPL", timeout=5)
