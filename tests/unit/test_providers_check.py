"""``marketq providers check``: the CLI command in-process, the vendors replayed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import respx
from typer.testing import CliRunner

from marketq.cli.main import app
from marketq.common.settings import get_settings
from tests.support.vendor_replay import fixture, httpx_response, respx_route


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "MARKETQ_ALPHAVANTAGE_API_KEY",
        "MARKETQ_FRED_API_KEY",
        "MARKETQ_FINNHUB_API_KEY",
        "MARKETQ_PROVIDER",
    ):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


def _check(*args: str) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(app, ["providers", "check", "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def test_the_offline_default_passes_without_any_call(router: respx.MockRouter) -> None:
    code, results = _check()
    assert code == 0
    assert [(r["provider"], r["ok"]) for r in results] == [("synthetic", True)]
    assert not router.calls


def test_a_valid_key_and_an_invalid_one(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETQ_PROVIDER", "alphavantage")
    monkeypatch.setenv("MARKETQ_PROVIDERS__ECONOMIC_SERIES", "fred")
    monkeypatch.setenv("MARKETQ_ALPHAVANTAGE_API_KEY", "bad-key")
    monkeypatch.setenv("MARKETQ_FRED_API_KEY", "abcdefghijklmnopqrstuvwxyz123456")
    respx_route(router, "alphavantage", "error_invalid_key")
    respx_route(router, "fred", "series_UNRATE")
    router.get("https://api.stlouisfed.org/fred/series/observations").mock(
        return_value=httpx.Response(
            200, json={"observations": [{"date": "2026-10-01", "value": "4.3"}]}
        )
    )
    code, results = _check()
    assert code == 1  # a configured vendor failed
    by_name = {r["provider"]: r for r in results}
    assert set(by_name) == {"alphavantage", "fred"}
    av = by_name["alphavantage"]
    assert (av["ok"], av["reachable"], av["key_valid"]) == (False, True, False)
    assert "apikey is invalid" in str(av["detail"])
    fred = by_name["fred"]
    assert (fred["ok"], fred["reachable"], fred["key_valid"]) == (True, True, True)
    assert isinstance(fred["latency_seconds"], float) and "120 requests/minute" in str(
        fred["plan_limits"]
    )


def test_finnhub_is_checked_with_one_day_of_its_calendar(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETQ_PROVIDERS__ECONOMIC_EVENTS", "finnhub")
    monkeypatch.setenv("MARKETQ_FINNHUB_API_KEY", "finnhub-test-key-0123456789")
    route = router.get("https://finnhub.io/api/v1/calendar/economic").mock(
        return_value=httpx.Response(200, json={"economicCalendar": []})
    )
    code, results = _check("--provider", "finnhub")
    assert code == 0
    (finnhub,) = results
    assert (finnhub["ok"], finnhub["reachable"], finnhub["key_valid"]) == (True, True, True)
    assert "60 calls/minute" in str(finnhub["plan_limits"])
    params = route.calls.last.request.url.params
    assert params["from"] == params["to"]


def test_finnhub_premium_403_names_the_plan(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETQ_FINNHUB_API_KEY", "finnhub-test-key-0123456789")
    router.get("https://finnhub.io/api/v1/calendar/economic").mock(
        return_value=httpx_response(fixture("finnhub", "error_premium"))
    )
    code, results = _check("--provider", "finnhub")
    assert code == 1
    assert results[0]["ok"] is False and "plan has no access" in str(results[0]["detail"])


def test_a_missing_key_fails_before_any_call(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, results = _check("--provider", "alphavantage")
    assert code == 1
    assert results[0]["key_valid"] is False and "needs an API key" in str(results[0]["detail"])
    assert not router.calls


def test_an_unknown_provider_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["providers", "check", "--provider", "bloomberg"])
    assert result.exit_code == 2
    assert "unknown provider 'bloomberg'" in result.output
