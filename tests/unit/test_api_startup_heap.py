"""The API's start-up heap (pandas, the exchange calendar, Celery) is frozen out of the
garbage collector's generations once the app has started, so no request pays for a full
collection walking it (the p99 stall measured in docs/performance.md)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from marketq.api.app import create_app
from marketq.common.settings import Settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_lifespan_builds_the_calendar_and_freezes_the_heap() -> None:
    # No Redis is needed: the client connects lazily, and /livez touches nothing.
    settings = Settings(redis_url="redis://127.0.0.1:1/0", database_url="sqlite://")
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(settings)) as client:
        assert client.get("/livez").status_code == 200
        frozen = gc.get_freeze_count()
    assert frozen > 100_000, frozen  # pandas, numpy and the calendar's tables at the least
