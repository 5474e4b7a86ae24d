"""Routing by configuration, fallback chains, and validation of what providers answer."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from prometheus_client import REGISTRY

from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.settings import Settings
from marketq.providers.base import DailyBar, Dividend, NewsArticle, Quote
from marketq.providers.errors import (
    NotOfferedError,
    PermanentProviderError,
    TransientProviderError,
    UnknownSymbolError,
)
from marketq.providers.routing import DATA_KINDS, ProviderRegistry, RoutedProvider, chain_for
from marketq.providers.synthetic import SyntheticProvider
from marketq.providers.validation import RecordValidator

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
CALENDAR = MarketCalendar("XNYS")
BAR = DailyBar("AAPL", date(2026, 12, 3), 10.0, 11.0, 9.5, 10.5, 10.5, 1000)


class Scripted:
    """A provider whose daily_bars answer is scripted: records, or an error to raise."""

    def __init__(self, name: str, answer: list[DailyBar] | Exception) -> None:
        self.name = name
        self.answer = answer
        self.calls = 0

    def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def routed(*providers: Scripted) -> RoutedProvider:
    return RoutedProvider(
        {"daily_bars": list(providers)},  # type: ignore[list-item]
        RecordValidator(CALENDAR.is_trading_day, lambda: NOW),
        clock=lambda: NOW,
    )


def test_synthetic_is_the_default_for_every_kind() -> None:
    settings = Settings()
    assert {chain_for(settings, kind) for kind in DATA_KINDS} == {("synthetic",)}


def test_a_jobs_chain_beats_the_kinds_which_beats_the_default() -> None:
    settings = Settings.model_validate(
        {
            "provider": "synthetic",
            "providers": {"daily_bars": "yahoo,alphavantage", "jobs": {"news": "alphavantage"}},
        }
    )
    assert chain_for(settings, "daily_bars") == ("yahoo", "alphavantage")
    assert chain_for(settings, "daily_bars", job="historical_prices") == ("yahoo", "alphavantage")
    assert chain_for(settings, "news", job="news") == ("alphavantage",)
    assert chain_for(settings, "news", job="stock_quotes") == ("synthetic",)
    assert ProviderRegistry(settings).configured() == ["synthetic", "yahoo", "alphavantage"]


def test_the_registry_builds_each_adapter_once_and_refuses_a_missing_key() -> None:
    registry = ProviderRegistry(Settings(provider=("synthetic",), provider_seed=3))
    synthetic = registry.adapter("synthetic")
    assert isinstance(synthetic, SyntheticProvider) and registry.adapter("synthetic") is synthetic
    with pytest.raises(PermanentProviderError, match="alphavantage needs an API key"):
        registry.adapter("alphavantage")


def test_records_are_stamped_with_their_source_and_fetch_time() -> None:
    (bar,) = routed(Scripted("yahoo", [BAR])).daily_bars("AAPL", BAR.day, BAR.day)
    assert (bar.source, bar.fetched_at) == ("yahoo", NOW)


def test_the_next_provider_serves_what_the_first_does_not_offer_or_fails() -> None:
    lacking = Scripted("edgar", NotOfferedError("edgar", "daily_bars"))
    throttled = Scripted("yahoo", TransientProviderError("429", vendor="yahoo", retry_after=7))
    serving = Scripted("alphavantage", [BAR])
    router = routed(lacking, throttled, serving)
    (bar,) = router.daily_bars("AAPL", BAR.day, BAR.day)
    assert bar.source == "alphavantage"
    assert (lacking.calls, throttled.calls, serving.calls) == (1, 1, 1)


def test_a_chain_that_all_fails_is_transient_when_any_link_may_recover() -> None:
    router = routed(
        Scripted("yahoo", TransientProviderError("429", vendor="yahoo", retry_after=30)),
        Scripted("alphavantage", UnknownSymbolError("no such symbol", vendor="alphavantage")),
    )
    with pytest.raises(TransientProviderError, match="yahoo: 429; alphavantage: no such") as e:
        router.daily_bars("AAPL", BAR.day, BAR.day)
    assert e.value.retry_after == 30


def test_a_chain_that_all_fails_permanently_says_so() -> None:
    router = routed(
        Scripted("yahoo", UnknownSymbolError("unknown", vendor="yahoo")),
        Scripted("alphavantage", UnknownSymbolError("unknown", vendor="alphavantage")),
    )
    with pytest.raises(UnknownSymbolError, match="no provider served daily_bars"):
        router.daily_bars("ZZZZ", BAR.day, BAR.day)
    offered_by_none = routed(
        Scripted("edgar", NotOfferedError("edgar", "daily_bars")),
        Scripted("fred", NotOfferedError("fred", "daily_bars")),
    )
    with pytest.raises(NotOfferedError, match="daily_bars is not offered by edgar, fred"):
        offered_by_none.daily_bars("AAPL", BAR.day, BAR.day)


def _rejected_count(vendor: str, kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "marketq_provider_rejected_rows_total", {"vendor": vendor, "kind": kind}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (replace(BAR, high=10.0), "OHLC out of order"),
        (replace(BAR, low=10.6), "OHLC out of order"),
        (replace(BAR, volume=-1), "negative volume"),
        (replace(BAR, day=date(2026, 12, 7)), "in the future"),
        (replace(BAR, day=date(2026, 11, 26)), "not an exchange session"),  # Thanksgiving
        (replace(BAR, close=float("nan")), "finite number"),
        (replace(BAR, volume=1.5), "valid integer"),  # type: ignore[arg-type]
    ],
)
def test_invalid_bars_are_rejected_counted_and_reported(bad: DailyBar, reason: str) -> None:
    before = _rejected_count("yahoo", "daily_bars")
    router = routed(Scripted("yahoo", [BAR, bad]))
    assert router.daily_bars("AAPL", BAR.day, BAR.day) == [
        replace(BAR, source="yahoo", fetched_at=NOW)
    ]
    (rejection,) = router.rejections
    assert rejection.kind == "daily_bars" and rejection.source == "yahoo"
    assert reason in rejection.reason
    assert _rejected_count("yahoo", "daily_bars") == before + 1


def test_quotes_news_and_dividends_rules() -> None:
    validator = RecordValidator(CALENDAR.is_trading_day, lambda: NOW)
    quote = Quote("AAPL", NOW, 10.0, 9.9, 10.1, 1, 1, 100, 0.1, 1.0, source="yahoo")
    crossed = replace(quote, bid=10.2)
    future = replace(quote, ts=datetime(2026, 12, 4, 15, 5, tzinfo=UTC))
    accepted, rejected = validator.check("quotes", [quote, crossed, future])
    assert accepted == [quote]
    assert ["above ask" in r.reason for r in rejected] == [True, False]
    assert "in the future" in rejected[1].reason

    article = NewsArticle("a", "AAPL", NOW, "h", "s", "p", "https://x.test", 1.5, source="x")
    assert "sentiment" in validator.check("news", [article])[1][0].reason

    usd = Dividend("IBM", date(2026, 11, 10), None, None, None, 1.68, "USD", source="x")
    eur = replace(usd, ex_date=date(2026, 8, 8), currency="EUR")
    lower = replace(usd, ex_date=date(2026, 5, 9), currency="usd")
    accepted, rejected = validator.check("dividends", [usd, eur, lower])
    assert accepted == [usd]
    assert ["differs from USD" in rejected[0].reason, "ISO 4217" in rejected[1].reason] == [
        True,
        True,
    ]
