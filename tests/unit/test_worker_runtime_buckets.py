"""The runtime histogram can answer the runtime alert's question exactly: is p95 above 80%
of the job's soft time limit? That needs bucket edges at 0.8 x and 1 x every limit."""

from __future__ import annotations

import pytest

from marketq.common.catalog import CATALOG
from marketq.common.celery_app import effective_time_limits
from marketq.common.settings import get_settings
from marketq.worker.metrics import TASK_RUNTIME, runtime_buckets


def test_every_soft_limit_and_80_percent_of_it_is_a_bucket_edge() -> None:
    edges = set(runtime_buckets())
    for name, (soft, _hard) in effective_time_limits(get_settings(), CATALOG).items():
        assert float(soft) in edges, name
        assert 0.8 * soft in edges, name


def test_the_histogram_uses_them() -> None:
    assert tuple(TASK_RUNTIME._upper_bounds[:-1]) == runtime_buckets()  # +Inf last


def test_per_queue_caps_move_the_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETQ_QUEUES__DAILY__MAX_TIME_LIMIT_SECONDS", "100")
    get_settings.cache_clear()
    try:
        capped = {soft for soft, _ in effective_time_limits(get_settings(), CATALOG).values()}
        edges = set(runtime_buckets())
        assert all(float(soft) in edges and 0.8 * soft in edges for soft in capped)
    finally:
        get_settings.cache_clear()
