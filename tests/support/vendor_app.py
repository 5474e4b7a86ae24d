"""The real worker app with a vendor behind ``stock_quotes`` and ``historical_prices``, for
the retry and quota tests (``marketq-worker --app tests.support.vendor_app:app``).

Every quote and every symbol's daily bars first take a token from the worker's shared
quota (vendor ``testvendor``), then ask the HTTP server at ``MARKETQ_TEST_VENDOR_URL``
(tests/support/scripted_vendor.py) the way an adapter asks a vendor: an HTTP status
becomes a provider error through ``error_for_status``; timeouts and dropped connections
leave httpx as they are. The numbers themselves come from the synthetic provider.
Everything else is the real worker.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from functools import lru_cache

import httpx
from celery import current_task

from marketq.common.scheduling.calendar import MarketCalendar
from marketq.providers.base import DailyBar, MarketDataProvider, Quote
from marketq.providers.errors import error_for_status
from marketq.providers.quota import Quota, key_id_for
from marketq.providers.routing import ProviderRegistry
from marketq.providers.synthetic import SyntheticProvider
from marketq.worker import resources
from marketq.worker.app import app

VENDOR = "testvendor"


class HttpQuoteProvider(SyntheticProvider):
    name = VENDOR

    def __init__(self, quota: Quota, base_url: str, timeout: float, calendar: MarketCalendar):
        super().__init__(seed=0, calendar=calendar)
        self._quota = quota
        self._key_id = key_id_for(os.environ.get("MARKETQ_TEST_VENDOR_KEY"))
        self._client = httpx.Client(base_url=base_url, timeout=timeout)

    def _ask(self, path: str, symbol: str) -> None:
        """One vendor call: a token from the shared quota, then the request."""
        self._quota.acquire(VENDOR, self._key_id, None)
        caller = f"{current_task.request.hostname}/{os.getpid()}"
        response = self._client.get(path, params={"symbol": symbol}, headers={"X-Caller": caller})
        error = error_for_status(
            VENDOR,
            response.status_code,
            retry_after=response.headers.get("Retry-After"),
            detail=f"symbol {symbol}",
        )
        if error is not None:
            raise error

    def quote(self, symbol: str, at: datetime) -> Quote:
        self._ask("/quote", symbol)
        return super().quote(symbol, at)

    def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        self._ask("/bars", symbol)
        return super().daily_bars(symbol, start, end)


class VendorRegistry(ProviderRegistry):
    """The worker's registry with the scripted vendor in the synthetic provider's place, so
    every run still goes through routing, stamping and validation."""

    def _build(self, name: str) -> MarketDataProvider:
        if name != "synthetic":
            return super()._build(name)
        return HttpQuoteProvider(
            resources.quota(),
            os.environ["MARKETQ_TEST_VENDOR_URL"],
            float(os.environ.get("MARKETQ_TEST_VENDOR_TIMEOUT", "1.5")),
            resources.calendar(),
        )


@lru_cache(maxsize=1)
def _providers() -> ProviderRegistry:
    return VendorRegistry(resources.settings(), resources.quota())


resources.providers = _providers

__all__ = ["app"]
