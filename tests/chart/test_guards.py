"""Values that would deploy a broken system fail the render with a message naming them."""

from __future__ import annotations

import re

import pytest

from marketq.common.catalog import CATALOG
from tests.chart.helm import VALUES_MAX, render, render_error

LONGEST_HARD_LIMIT = max(job.time_limit for job in CATALOG.values())


def test_keda_and_hpa_on_for_one_queue() -> None:
    error = render_error(
        values={
            "workers.queues.daily.autoscaling.keda.enabled": True,
            "workers.queues.daily.autoscaling.hpa.enabled": True,
        }
    )
    assert "workers.queues.daily: autoscaling.keda.enabled and autoscaling.hpa.enabled" in error


def _longest(queue: str) -> int:
    return max(job.time_limit for job in CATALOG.values() if job.queue.value == queue)


def test_soft_shutdown_must_cover_the_queues_longest_hard_limit() -> None:
    limit = _longest("periodic")
    error = render_error(values={"workers.queues.periodic.softShutdownSeconds": limit - 1})
    assert (
        f"workers.queues.periodic: softShutdownSeconds ({limit - 1}) must cover the queue's "
        f"longest hard time limit ({limit} s)"
    ) in error
    render(values={"workers.queues.periodic.softShutdownSeconds": limit})
    # A cap on the queue's time limits lowers what the soft shutdown must cover.
    render(
        values={
            "workers.queues.periodic.maxTimeLimitSeconds": 100,
            "workers.queues.periodic.softShutdownSeconds": 100,
        }
    )


def test_grace_period_not_above_the_soft_shutdown() -> None:
    limit = _longest("periodic")
    error = render_error(values={"workers.queues.periodic.terminationGracePeriodSeconds": limit})
    assert re.search(
        rf"workers.queues.periodic: terminationGracePeriodSeconds \({limit}\) must be above "
        rf"its softShutdownSeconds \({limit}\)",
        error,
    )
    # One second more is enough.
    render(values={"workers.queues.periodic.terminationGracePeriodSeconds": limit + 1})


def test_visibility_timeout_not_above_the_longest_hard_limit() -> None:
    error = render_error(values={"config.visibilityTimeoutSeconds": LONGEST_HARD_LIMIT})
    assert (
        f"config.visibilityTimeoutSeconds ({LONGEST_HARD_LIMIT}) must be above twice the "
        f"longest hard time limit ({LONGEST_HARD_LIMIT} s" in error
    )
    # Twice the limit is still too short (ETA wait + run), one more second is fine.
    assert "visibilityTimeoutSeconds" in render_error(
        values={"config.visibilityTimeoutSeconds": 2 * LONGEST_HARD_LIMIT}
    )
    render(values={"config.visibilityTimeoutSeconds": 2 * LONGEST_HARD_LIMIT + 1})


def test_visibility_guard_follows_the_queue_caps() -> None:
    caps = {
        f"workers.queues.{q}.maxTimeLimitSeconds": 100
        for q in ("market_hours", "daily", "periodic", "default")
    }
    render(values={**caps, "config.visibilityTimeoutSeconds": 201})
    assert "(100 s, so 200)" in render_error(
        values={**caps, "config.visibilityTimeoutSeconds": 200}
    )


def test_chart_guard_agrees_with_the_processes() -> None:
    from marketq.common.celery_app import visibility_timeout
    from marketq.common.settings import Settings

    with pytest.raises(ValueError, match="visibility_timeout_seconds"):
        visibility_timeout(Settings(visibility_timeout_seconds=2 * LONGEST_HARD_LIMIT))
    assert visibility_timeout(Settings(visibility_timeout_seconds=2 * LONGEST_HARD_LIMIT + 1))


def test_beat_replicas_above_one() -> None:
    error = render_error(values={"beat.replicas": 2})
    assert "beat.replicas is 2: run exactly one scheduler" in error


def test_beat_loop_longer_than_a_third_of_the_lock() -> None:
    error = render_error(
        values={"config.beatLockTimeoutSeconds": 12, "config.beatMaxLoopIntervalSeconds": 5}
    )
    assert (
        "config.beatMaxLoopIntervalSeconds must be at most a third of config.beatLockTimeoutSeconds"
        in error
    )


def test_no_redis_at_all() -> None:
    error = render_error(values={"redis.bundled.enabled": False})
    assert "set redis.existingSecret or redis.url (or redis.bundled.enabled" in error


def test_no_database_at_all() -> None:
    error = render_error(values={"database.bundled.enabled": False})
    assert "set database.existingSecret or database.url (or database.bundled.enabled" in error


def test_keda_needs_a_redis_address() -> None:
    error = render_error(
        [VALUES_MAX],
        values={"redis.keda.address": "", "keda.force": True, "monitoring.force": True},
    )
    assert "set redis.keda.address (host:port) for KEDA's Redis triggers" in error


def test_the_schema_rejects_unknown_and_mistyped_values() -> None:
    assert "additional properties 'replica' not allowed" in render_error(values={"beat.replica": 1})
    assert "additional properties 'bogus' not allowed" in render_error(
        values={"workers.queues.daily.bogus": 1}
    )
    assert "additional properties 'nightly' not allowed" in render_error(
        values={"workers.queues.nightly": {}}
    )
    assert "/workers/defaults/concurrency" in render_error(
        values={"workers.defaults.concurrency": 0}
    )
    assert "/config/logLevel" in render_error(values={"config.logLevel": "LOUD"})
    # Only startup probes can be turned off.
    assert "additional properties 'enabled' not allowed" in render_error(
        values={"api.probes.liveness.enabled": False}
    )
