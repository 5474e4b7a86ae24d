"""The FRED adapter against recorded answers in the documented shapes."""

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
    UnknownSymbolError,
)
from marketq.providers.fred import FredProvider
from tests.support.vendor_replay import fixture, httpx_response, respx_route

OBSERVATIONS = "https://api.stlouisfed.org/fred/series/observations"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def provider() -> FredProvider:
    return FredProvider("abcdefghijklmnopqrstuvwxyz123456", client=httpx.Client(timeout=5))


def test_observations_with_the_series_unit(
    router: respx.MockRouter, provider: FredProvider
) -> None:
    respx_route(router, "fred", "series_UNRATE")
    route = respx_route(router, "fred", "series_observations_UNRATE")
    observations = provider.economic_series("UNRATE", date(2026, 7, 1), date(2026, 12, 4))
    assert [(o.period, o.value) for o in observations] == [
        (date(2026, 7, 1), 4.3),
        (date(2026, 8, 1), 4.3),
        (date(2026, 9, 1), 4.4),
        (date(2026, 10, 1), 4.3),
    ]
    assert {(o.series, o.unit) for o in observations} == {("UNRATE", "Percent")}
    sent = route.calls.last.request.url.params
    assert (sent["observation_start"], sent["observation_end"]) == ("2026-07-01", "2026-12-04")


def test_marketq_codes_map_to_fred_ids_and_missing_values_are_skipped(
    router: respx.MockRouter, provider: FredProvider
) -> None:
    respx_route(router, "fred", "series_CPIAUCSL")
    respx_route(router, "fred", "series_observations_CPIAUCSL")
    observations = provider.economic_series("CPI", date(2026, 7, 1), date(2026, 12, 4))
    # October's "." (not yet published) is not an observation.
    assert [o.period for o in observations] == [
        date(2026, 7, 1),
        date(2026, 8, 1),
        date(2026, 9, 1),
    ]
    assert observations[0].series == "CPI" and observations[0].unit == "Index 1982-1984=100"


def test_unregistered_key_is_an_invalid_key(
    router: respx.MockRouter, provider: FredProvider
) -> None:
    respx_route(router, "fred", "error_invalid_key")
    router.get("https://api.stlouisfed.org/fred/series").mock(
        return_value=httpx_response(fixture("fred", "error_invalid_key"))
    )
    with pytest.raises(InvalidKeyError, match="api_key is not registered"):
        provider.economic_series("UNRATE", date(2026, 1, 1), date(2026, 2, 1))


def test_unknown_series(router: respx.MockRouter, provider: FredProvider) -> None:
    respx_route(router, "fred", "error_unknown_series")
    with pytest.raises(UnknownSymbolError, match="no series 'NOSUCH'"):
        provider.economic_series("NOSUCH", date(2026, 1, 1), date(2026, 2, 1))


def test_429_carries_retry_after(router: respx.MockRouter, provider: FredProvider) -> None:
    respx_route(router, "fred", "series_UNRATE")
    respx_route(router, "fred", "error_rate_limited")
    with pytest.raises(TransientProviderError) as caught:
        provider.economic_series("UNRATE", date(2026, 1, 1), date(2026, 2, 1))
    assert caught.value.retry_after == 20.0


def test_500_then_success(router: respx.MockRouter, provider: FredProvider) -> None:
    respx_route(router, "fred", "series_UNRATE")
    router.get(OBSERVATIONS).mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "5"}, text="Service Unavailable"),
            httpx_response(fixture("fred", "series_observations_UNRATE")),
        ]
    )
    with pytest.raises(TransientProviderError, match="HTTP 503") as caught:
        provider.economic_series("UNRATE", date(2026, 7, 1), date(2026, 12, 4))
    assert caught.value.retry_after == 5.0
    assert len(provider.economic_series("UNRATE", date(2026, 7, 1), date(2026, 12, 4))) == 4


def test_connection_error_is_transient(router: respx.MockRouter, provider: FredProvider) -> None:
    router.get("https://api.stlouisfed.org/fred/series").mock(
        side_effect=httpx.ConnectError("connection refused")
    )
    with pytest.raises(TransientProviderError, match="unreachable"):
        provider.economic_series("UNRATE", date(2026, 1, 1), date(2026, 2, 1))


def test_malformed_body(router: respx.MockRouter, provider: FredProvider) -> None:
    router.get("https://api.stlouisfed.org/fred/series").mock(
        return_value=httpx.Response(200, json={"seriess": []})
    )
    with pytest.raises(PermanentProviderError, match="malformed answer from fred"):
        provider.economic_series("UNRATE", date(2026, 1, 1), date(2026, 2, 1))


def test_fred_offers_economic_series_only(router: respx.MockRouter, provider: FredProvider) -> None:
    with pytest.raises(NotOfferedError, match="quote is not offered by fred"):
        provider.quote("AAPL", datetime.now(UTC))
    assert not router.calls
