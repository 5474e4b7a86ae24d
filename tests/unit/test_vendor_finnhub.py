"""The Finnhub adapter against recorded answers in the documented shapes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import httpx
import pytest
import respx

from marketq.providers.errors import (
    InvalidKeyError,
    NotOfferedError,
    PermanentProviderError,
    TransientProviderError,
)
from marketq.providers.finnhub import FinnhubProvider
from tests.support.vendor_replay import fixture, httpx_response, respx_route

CALENDAR = "https://finnhub.io/api/v1/calendar/economic"
KEY = "finnhub-test-key-0123456789"
START, END = date(2026, 12, 4), date(2026, 12, 18)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def provider() -> FinnhubProvider:
    return FinnhubProvider(KEY, client=httpx.Client(timeout=5))


def test_calendar_rows_become_events(router: respx.MockRouter, provider: FinnhubProvider) -> None:
    route = respx_route(router, "finnhub", "calendar_economic")
    events = provider.economic_events(START, END)
    by_name = {e.name: e for e in events}
    assert len(events) == 5
    unrate = by_name["Unemployment Rate"]
    assert unrate.country == "US"
    assert unrate.scheduled_at == datetime(2026, 12, 4, 13, 30, tzinfo=UTC)
    assert (unrate.importance, unrate.forecast, unrate.previous, unrate.actual) == (
        "high",
        4.3,
        4.4,
        4.3,
    )
    zew = by_name["ZEW Economic Sentiment Index"]
    assert (zew.importance, zew.forecast, zew.previous, zew.actual) == ("medium", None, 38.5, None)
    assert by_name["Foreign Bond Investment"].importance == "low"
    sent = route.calls.last.request
    assert (sent.url.params["from"], sent.url.params["to"]) == ("2026-12-04", "2026-12-18")
    # The key travels in the header, never in the URL (where logs and errors would show it).
    assert sent.headers["X-Finnhub-Token"] == KEY
    assert KEY not in str(sent.url)


def test_event_ids_are_stable_natural_keys(
    router: respx.MockRouter, provider: FinnhubProvider
) -> None:
    respx_route(router, "finnhub", "calendar_economic")
    first = [e.event_id for e in provider.economic_events(START, END)]
    again = [e.event_id for e in provider.economic_events(START, END)]
    assert first == again and len(set(first)) == len(first)
    assert all(len(i) <= 255 for i in first)
    assert first[1].startswith("finnhub:US:2026-12-04T13:30Z:")


def test_events_outside_the_window_are_dropped(
    router: respx.MockRouter, provider: FinnhubProvider
) -> None:
    # Finnhub's answer for a wider window: only the asked days are kept.
    router.get(CALENDAR).mock(return_value=httpx_response(fixture("finnhub", "calendar_economic")))
    events = provider.economic_events(date(2026, 12, 10), date(2026, 12, 15))
    assert sorted(e.name for e in events) == ["Foreign Bond Investment", "Retail Sales MoM"]


def test_invalid_key(router: respx.MockRouter, provider: FinnhubProvider) -> None:
    respx_route(router, "finnhub", "error_invalid_key")
    with pytest.raises(InvalidKeyError, match="Invalid API key"):
        provider.economic_events(START, END)


def test_missing_key_refuses_before_any_call() -> None:
    with pytest.raises(InvalidKeyError, match="finnhub needs an API key"):
        FinnhubProvider("")


def test_premium_endpoint_is_permanent_and_names_the_plan(
    router: respx.MockRouter, provider: FinnhubProvider
) -> None:
    respx_route(router, "finnhub", "error_premium")
    with pytest.raises(PermanentProviderError, match="plan has no access") as caught:
        provider.economic_events(START, END)
    assert not isinstance(caught.value, TransientProviderError)
    assert "You don't have access to this resource." in str(caught.value)


def test_429_without_retry_after_is_transient(
    router: respx.MockRouter, provider: FinnhubProvider
) -> None:
    respx_route(router, "finnhub", "error_rate_limited")
    with pytest.raises(TransientProviderError, match="HTTP 429") as caught:
        provider.economic_events(START, END)
    assert caught.value.retry_after is None


def test_429_with_retry_after_carries_it(
    router: respx.MockRouter, provider: FinnhubProvider
) -> None:
    recorded = fixture("finnhub", "error_rate_limited")
    recorded["response"]["headers"]["Retry-After"] = "30"
    router.get(CALENDAR).mock(return_value=httpx_response(recorded))
    with pytest.raises(TransientProviderError) as caught:
        provider.economic_events(START, END)
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json=[]),
        httpx.Response(200, json={"calendar": []}),
        httpx.Response(200, json={"economicCalendar": [{"event": "CPI", "country": "US"}]}),
        httpx.Response(
            200,
            json={
                "economicCalendar": [
                    {"event": "CPI", "country": "US", "time": "tomorrow", "impact": "high"}
                ]
            },
        ),
        httpx.Response(200, text="<html>maintenance</html>"),
    ],
    ids=["list", "no-calendar", "no-time", "bad-time", "not-json"],
)
def test_malformed_body_is_permanent(
    router: respx.MockRouter, provider: FinnhubProvider, answer: httpx.Response
) -> None:
    router.get(CALENDAR).mock(return_value=answer)
    with pytest.raises(PermanentProviderError, match="malformed answer from finnhub") as caught:
        provider.economic_events(START, END)
    assert caught.value.vendor == "finnhub"


def test_finnhub_offers_economic_events_only(
    router: respx.MockRouter, provider: FinnhubProvider
) -> None:
    with pytest.raises(NotOfferedError, match="quote is not offered by finnhub"):
        provider.quote("AAPL", datetime.now(UTC))
    with pytest.raises(NotOfferedError, match="economic_series is not offered by finnhub"):
        provider.economic_series("UNRATE", START, END)
    assert not router.calls
