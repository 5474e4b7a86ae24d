"""Market-data providers behind one interface (``MarketDataProvider``).

``get_provider(settings)`` returns the adapter the settings select. Instances are cached
per (provider, seed, exchange) so that every caller in a process shares one provider and
its memoised price paths.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from marketq.common.calendar import MarketCalendar
from marketq.common.providers.base import MarketDataProvider
from marketq.common.providers.synthetic import SyntheticProvider

if TYPE_CHECKING:
    from marketq.common.settings import Settings

__all__ = ["MarketDataProvider", "SyntheticProvider", "get_provider"]


@lru_cache(maxsize=8)
def _provider(name: str, seed: int, exchange: str) -> MarketDataProvider:
    if name == "synthetic":
        return SyntheticProvider(seed=seed, calendar=MarketCalendar(exchange))
    raise ValueError(f"unknown market-data provider {name!r} (known: synthetic)")


def get_provider(settings: Settings) -> MarketDataProvider:
    """The provider selected by ``settings.provider`` (MARKETQ_PROVIDER)."""
    return _provider(settings.provider, settings.provider_seed, settings.exchange)
