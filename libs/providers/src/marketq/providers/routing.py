"""Which provider serves each request, chosen by configuration (docs/providers.md#routing).

Every data kind has an ordered chain of providers: the job's own entry
(``MARKETQ_PROVIDERS__JOBS__<JOB>``), else the kind's (``MARKETQ_PROVIDERS__DAILY_BARS``),
else the default (``MARKETQ_PROVIDER``, ``synthetic`` unless set). ``RoutedProvider`` asks
the chain in order: a provider that does not offer the data, or fails, hands over to the
next. Whatever answers, its records are stamped with ``source`` and ``fetched_at`` and
validated; rejected records are kept on the router for the run's result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, TypeVar

from marketq.providers.base import (
    CompanyProfile,
    DailyBar,
    Dividend,
    EarningsCalendarEntry,
    EarningsReport,
    EarningsTranscript,
    EconomicEvent,
    EconomicObservation,
    Fundamentals,
    MarketDataProvider,
    NewsArticle,
    OptionContract,
    Quote,
)
from marketq.providers.errors import (
    NotOfferedError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnknownSymbolError,
)
from marketq.providers.quota import NoQuota, Quota
from marketq.providers.validation import RecordValidator, Rejection

if TYPE_CHECKING:
    from marketq.common.settings import Settings

__all__ = ["DATA_KINDS", "ProviderRegistry", "RoutedProvider", "chain_for"]

T = TypeVar("T")

# Each data kind and the provider method that serves it.
DATA_KINDS: Final[dict[str, str]] = {
    "quotes": "quote",
    "daily_bars": "daily_bars",
    "option_chains": "option_chain",
    "fundamentals": "fundamentals",
    "dividends": "dividends",
    "earnings": "earnings",
    "earnings_calendar": "earnings_calendar",
    "earnings_transcripts": "earnings_transcript",
    "news": "news",
    "economic_series": "economic_series",
    "economic_events": "economic_events",
    "company_profiles": "company_profile",
}


@lru_cache(maxsize=8)
def _synthetic(seed: int, exchange: str) -> MarketDataProvider:
    """One synthetic provider per (seed, exchange) in a process: its price paths are memoised."""
    from marketq.common.scheduling.calendar import MarketCalendar
    from marketq.providers.synthetic import SyntheticProvider

    return SyntheticProvider(seed=seed, calendar=MarketCalendar(exchange))


def chain_for(settings: Settings, kind: str, job: str | None = None) -> tuple[str, ...]:
    """The providers, in order, that serve ``kind`` for ``job``."""
    if kind not in DATA_KINDS:
        raise ValueError(f"unknown data kind {kind!r}; known: {', '.join(DATA_KINDS)}")
    routing = settings.providers
    if job is not None and job in routing.jobs:
        return tuple(routing.jobs[job])
    per_kind: tuple[str, ...] | None = getattr(routing, kind)
    return tuple(per_kind) if per_kind else tuple(settings.provider)


class ProviderRegistry:
    """The adapters of one process, built on first use from the settings and shared."""

    def __init__(self, settings: Settings, quota: Quota | None = None) -> None:
        self._settings = settings
        self._quota = quota or NoQuota()
        self._adapters: dict[str, MarketDataProvider] = {}
        # Each job's chains, resolved once: the settings do not change within a process,
        # and resolving them on every run was a measurable share of a no-op job's cost.
        self._job_chains: dict[str | None, Mapping[str, Sequence[MarketDataProvider]]] = {}
        self._lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        return self._settings

    def adapter(self, name: str) -> MarketDataProvider:
        with self._lock:
            if name not in self._adapters:
                self._adapters[name] = self._build(name)
            return self._adapters[name]

    def _build(self, name: str) -> MarketDataProvider:
        settings = self._settings
        timeout = settings.provider_timeout_seconds
        if name == "synthetic":
            return _synthetic(settings.provider_seed, settings.exchange)
        if name == "yahoo":
            from marketq.providers.yahoo import YahooProvider

            return YahooProvider(quota=self._quota)
        if name == "alphavantage":
            from marketq.providers.alphavantage import AlphaVantageProvider

            key = settings.alphavantage_api_key
            return AlphaVantageProvider(
                key.get_secret_value() if key else "", quota=self._quota, timeout=timeout
            )
        if name == "fred":
            from marketq.providers.fred import FredProvider

            key = settings.fred_api_key
            return FredProvider(
                key.get_secret_value() if key else "", quota=self._quota, timeout=timeout
            )
        if name == "finnhub":
            from marketq.providers.finnhub import FinnhubProvider

            key = settings.finnhub_api_key
            return FinnhubProvider(
                key.get_secret_value() if key else "", quota=self._quota, timeout=timeout
            )
        if name == "edgar":
            from marketq.providers.edgar import EdgarProvider

            return EdgarProvider(
                settings.edgar_user_agent or "", quota=self._quota, timeout=timeout
            )
        raise ValueError(f"unknown market-data provider {name!r}")

    def configured(self) -> list[str]:
        """Every provider some data kind or job is routed to, in first-mention order."""
        names: list[str] = []
        routing = self._settings.providers
        chains = [tuple(self._settings.provider)]
        chains += [tuple(getattr(routing, kind) or ()) for kind in DATA_KINDS]
        chains += [tuple(chain) for chain in routing.jobs.values()]
        for chain in chains:
            names += [name for name in chain if name not in names]
        return names

    def for_job(self, job: str | None, validator: RecordValidator | None = None) -> RoutedProvider:
        chains = self._job_chains.get(job)
        if chains is None:
            chains = {
                kind: tuple(self.adapter(name) for name in chain_for(self._settings, kind, job))
                for kind in DATA_KINDS
            }
            self._job_chains[job] = chains
        return RoutedProvider(chains, validator)


class RoutedProvider:
    """A ``MarketDataProvider`` that serves each kind of data from its chain of adapters."""

    name = "routed"

    def __init__(
        self,
        chains: Mapping[str, Sequence[MarketDataProvider]],
        validator: RecordValidator | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._chains = chains
        self._validator = validator
        self._clock = clock
        self.rejections: list[Rejection] = []

    @classmethod
    def over(
        cls, provider: MarketDataProvider, validator: RecordValidator | None = None
    ) -> RoutedProvider:
        """Every kind of data from ``provider`` alone."""
        return cls({kind: [provider] for kind in DATA_KINDS}, validator)

    def chain(self, kind: str) -> list[MarketDataProvider]:
        return list(self._chains[kind])

    def _first_answer(
        self, kind: str, ask: Callable[[MarketDataProvider], T]
    ) -> tuple[T, MarketDataProvider]:
        failures: list[ProviderError] = []
        for adapter in self._chains[kind]:
            try:
                return ask(adapter), adapter
            except ProviderError as error:
                if error.vendor is None:
                    error.vendor = adapter.name
                failures.append(error)
        raise _combined(kind, failures)

    def _stamped(self, records: Sequence[Any], source: str) -> list[Any]:
        fetched_at = self._clock()
        return [replace(record, source=source, fetched_at=fetched_at) for record in records]

    def _many(self, kind: str, ask: Callable[[MarketDataProvider], list[T]]) -> list[T]:
        records, adapter = self._first_answer(kind, ask)
        stamped = self._stamped(records, adapter.name)
        if self._validator is None:
            return stamped
        accepted, rejected = self._validator.check(kind, stamped)
        self.rejections += rejected
        return accepted

    def _one(self, kind: str, ask: Callable[[MarketDataProvider], T]) -> T:
        record, adapter = self._first_answer(kind, ask)
        (stamped,) = self._stamped([record], adapter.name)
        if self._validator is not None:
            _, rejected = self._validator.check(kind, [stamped])
            if rejected:
                self.rejections += rejected
                raise PermanentProviderError(
                    f"{adapter.name} answered an invalid {kind} record: {rejected[0].reason}",
                    vendor=adapter.name,
                )
        result: T = stamped
        return result

    # --- MarketDataProvider ---------------------------------------------------------------

    def quote(self, symbol: str, at: datetime) -> Quote:
        return self._one("quotes", lambda p: p.quote(symbol, at))

    def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        return self._many("daily_bars", lambda p: p.daily_bars(symbol, start, end))

    def option_chain(
        self, symbol: str, as_of: datetime, expirations: int, strikes_per_side: int
    ) -> list[OptionContract]:
        return self._many(
            "option_chains",
            lambda p: p.option_chain(symbol, as_of, expirations, strikes_per_side),
        )

    def fundamentals(self, symbol: str, as_of: date, periods: int) -> list[Fundamentals]:
        return self._many("fundamentals", lambda p: p.fundamentals(symbol, as_of, periods))

    def dividends(self, symbol: str, start: date, end: date) -> list[Dividend]:
        return self._many("dividends", lambda p: p.dividends(symbol, start, end))

    def earnings(self, symbol: str, as_of: date, quarters: int) -> list[EarningsReport]:
        return self._many("earnings", lambda p: p.earnings(symbol, as_of, quarters))

    def earnings_calendar(
        self, symbols: list[str], start: date, end: date
    ) -> list[EarningsCalendarEntry]:
        return self._many("earnings_calendar", lambda p: p.earnings_calendar(symbols, start, end))

    def earnings_transcript(self, symbol: str, fiscal_period: str) -> EarningsTranscript:
        return self._one(
            "earnings_transcripts", lambda p: p.earnings_transcript(symbol, fiscal_period)
        )

    def news(self, symbol: str, since: datetime, until: datetime, limit: int) -> list[NewsArticle]:
        return self._many("news", lambda p: p.news(symbol, since, until, limit))

    def economic_series(self, series: str, start: date, end: date) -> list[EconomicObservation]:
        return self._many("economic_series", lambda p: p.economic_series(series, start, end))

    def economic_events(self, start: date, end: date) -> list[EconomicEvent]:
        return self._many("economic_events", lambda p: p.economic_events(start, end))

    def company_profile(self, symbol: str) -> CompanyProfile:
        return self._one("company_profiles", lambda p: p.company_profile(symbol))


def _combined(kind: str, failures: list[ProviderError]) -> ProviderError:
    """One error for a chain that gave no answer: transient if any link may recover."""
    if len(failures) == 1:
        return failures[0]
    message = f"no provider served {kind}: " + "; ".join(
        f"{error.vendor}: {error}" for error in failures
    )
    transient = [e for e in failures if isinstance(e, TransientProviderError)]
    if transient:
        hints = [e.retry_after for e in transient if e.retry_after is not None]
        return TransientProviderError(message, retry_after=min(hints) if hints else None)
    offered = [e for e in failures if not isinstance(e, NotOfferedError)]
    if not offered:
        return NotOfferedError(", ".join(str(e.vendor) for e in failures), kind)
    if all(isinstance(e, UnknownSymbolError) for e in offered):
        return UnknownSymbolError(message)
    return PermanentProviderError(message)
