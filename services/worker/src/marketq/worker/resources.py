"""Per-process resources of the worker: created lazily, so each pool child makes its own."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

from marketq.common.calendar import MarketCalendar
from marketq.common.db.engine import get_sessionmaker
from marketq.common.ledger import Ledger
from marketq.common.providers import get_provider
from marketq.common.providers.base import MarketDataProvider
from marketq.common.settings import Settings, get_settings


def settings() -> Settings:
    return get_settings()


@lru_cache(maxsize=1)
def calendar() -> MarketCalendar:
    return MarketCalendar(settings().exchange)


@lru_cache(maxsize=1)
def provider() -> MarketDataProvider:
    return get_provider(settings())


def sessions() -> sessionmaker[Session]:
    return get_sessionmaker(settings())


@lru_cache(maxsize=1)
def ledger() -> Ledger:
    return Ledger(sessions())
