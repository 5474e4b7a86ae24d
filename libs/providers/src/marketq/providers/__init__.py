"""Market-data providers behind one interface (``MarketDataProvider``).

``get_provider(settings, job)`` returns the provider a job reads through: a
``RoutedProvider`` over the chain of adapters the settings select for each kind of data
(``synthetic`` by default, so everything runs offline). docs/providers.md lists the
vendors and what each offers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketq.providers.base import MarketDataProvider
from marketq.providers.routing import ProviderRegistry, RoutedProvider
from marketq.providers.synthetic import SyntheticProvider

if TYPE_CHECKING:
    from marketq.common.settings import Settings

__all__ = [
    "MarketDataProvider",
    "ProviderRegistry",
    "RoutedProvider",
    "SyntheticProvider",
    "get_provider",
]


def get_provider(settings: Settings, job: str | None = None) -> RoutedProvider:
    """The provider ``job`` reads through, as ``settings`` route it (a fresh registry: a
    long-lived process keeps one ``ProviderRegistry`` instead)."""
    return ProviderRegistry(settings).for_job(job)
