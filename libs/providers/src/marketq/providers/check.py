"""The live check behind ``marketq providers check`` and ``POST /v1/admin/providers/check``.

For each configured vendor: one cheap real request, then whether the vendor was reachable,
whether it took the key, the rate-limit facts it reported, and the latency. This is how
users verify their keys; it spends one call of each vendor's quota.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from marketq.providers.errors import InvalidKeyError, ProviderError, TransientProviderError
from marketq.providers.routing import ProviderRegistry

__all__ = ["ProviderCheck", "check_providers"]

# The one request each vendor gets, chosen to be cheap and to need the key.
_PROBES: dict[str, Callable[[Any], object]] = {
    "yahoo": lambda p: p.daily_bars("SPY", _today() - timedelta(days=7), _today()),
    "alphavantage": lambda p: p.quote("IBM", datetime.now(UTC)),
    "fred": lambda p: p.economic_series("UNRATE", _today() - timedelta(days=120), _today()),
    # One day of the calendar: the endpoint the adapter serves, and small.
    "finnhub": lambda p: p.economic_events(_today(), _today()),
    "edgar": lambda p: p.cik("AAPL"),
}
# What each vendor publishes about its limits (none of them reports usage in headers).
PLAN_LIMITS: dict[str, str] = {
    "synthetic": "none (computed locally)",
    "yahoo": "none published; unofficial endpoints, throttled with HTTP 429",
    "alphavantage": "free key: 25 requests/day; premium plans per minute",
    "fred": "120 requests/minute per key",
    "finnhub": "free plan: 60 calls/minute; HTTP 429 past it",
    "edgar": "10 requests/second per user (SEC fair access)",
}


def _today() -> Any:
    return datetime.now(UTC).date()


@dataclass(frozen=True, slots=True)
class ProviderCheck:
    provider: str
    ok: bool
    reachable: bool
    key_valid: bool | None  # None: the vendor takes no key
    plan_limits: str
    latency_seconds: float | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_one(registry: ProviderRegistry, name: str) -> ProviderCheck:
    limits = PLAN_LIMITS.get(name, "unknown")
    keyless = name in ("synthetic", "yahoo")
    try:
        adapter = registry.adapter(name)
    except ProviderError as error:  # a missing key or User-Agent, found before any call
        return ProviderCheck(name, False, False, False, limits, None, str(error))
    except ImportError as error:  # the API image carries no yfinance (docs/providers.md)
        return ProviderCheck(
            name,
            False,
            False,
            None,
            limits,
            None,
            f"{name} cannot be checked in this process ({error.name} is not installed); "
            "run `marketq providers check` where the workers run",
        )
    probe = _PROBES.get(name)
    if probe is None:
        return ProviderCheck(name, True, True, None, limits, 0.0, "no network call needed")
    started = time.perf_counter()
    try:
        probe(adapter)
    except InvalidKeyError as error:
        latency = time.perf_counter() - started
        return ProviderCheck(name, False, True, False, limits, latency, str(error))
    except TransientProviderError as error:
        latency = time.perf_counter() - started
        # A rate-limit answer comes from the vendor: reachable, and the key was read.
        answered = "unreachable" not in str(error) and "timed out" not in str(error)
        return ProviderCheck(
            name,
            False,
            answered,
            None if keyless else answered or None,
            limits,
            latency,
            str(error),
        )
    except ProviderError as error:
        latency = time.perf_counter() - started
        return ProviderCheck(name, False, True, None, limits, latency, str(error))
    except Exception as error:  # an adapter bug must be reported, not end the whole check
        latency = time.perf_counter() - started
        detail = f"unexpected {type(error).__name__}: {error}"
        return ProviderCheck(name, False, False, None, limits, latency, detail)
    latency = time.perf_counter() - started
    return ProviderCheck(name, True, True, None if keyless else True, limits, latency, "ok")


def check_providers(registry: ProviderRegistry, only: str | None = None) -> list[ProviderCheck]:
    """Check every provider the settings route to (or just ``only``)."""
    names = [only] if only else registry.configured()
    return [_check_one(registry, name) for name in names]
