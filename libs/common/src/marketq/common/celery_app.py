"""The one Celery application factory every marketq process uses.

Delivery settings follow what was measured on Celery 5.7 / kombu 5.7 / Redis 7
(DESIGN.md, "Facts measured here"): at-least-once delivery with late acks, bounded
re-delivery of work whose process died, and fast recovery of messages a dead worker held.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

from celery import Celery

from marketq.common.catalog import CATALOG, Catalog
from marketq.common.queues import Queue
from marketq.common.results import RESULT_BACKEND_CLASS
from marketq.common.routing import DEFAULT_PRIORITY, PRIORITY_STEPS, task_queues, task_routes
from marketq.common.settings import Settings, get_settings


def effective_time_limits(
    settings: Settings, catalog: Catalog = CATALOG
) -> dict[str, tuple[int, int]]:
    """(soft, hard) time limit of every job after the per-queue caps are applied."""
    limits: dict[str, tuple[int, int]] = {}
    for job in catalog.values():
        hard = job.time_limit
        soft = job.soft_time_limit
        cap = settings.queues.for_queue(job.queue).max_time_limit_seconds
        if cap is not None and cap < hard:
            # Keep the job's proportion of soft to hard so it still gets its warning.
            soft = max(1, min(soft, int(cap * soft / hard)))
            hard = cap
            if soft >= hard:
                soft = hard - 1
        limits[job.name] = (soft, hard)
    return limits


def visibility_timeout(settings: Settings, catalog: Catalog = CATALOG) -> int:
    """Seconds before Redis hands an unacknowledged message to another worker.

    A message may wait for its ETA (at most half this timeout, enforced at publish) and
    then run up to its hard time limit; the timeout must outlast both or a healthy run is
    delivered a second time. Hence twice the longest hard limit plus a margin.
    """
    longest = max(hard for _soft, hard in effective_time_limits(settings, catalog).values())
    explicit = settings.visibility_timeout_seconds
    if explicit is None:
        return 2 * longest + settings.visibility_timeout_margin_seconds
    if explicit <= 2 * longest:
        raise ValueError(
            f"visibility_timeout_seconds ({explicit}) must be above twice the longest hard "
            f"time limit ({longest} s): a shorter one delivers healthy runs a second time"
        )
    return explicit


def max_countdown_seconds(settings: Settings, catalog: Catalog = CATALOG) -> int:
    """Longest countdown/ETA accepted at publish time (half the visibility timeout)."""
    return visibility_timeout(settings, catalog) // 2


def _redis_connection_options(settings: Settings) -> dict[str, Any]:
    # Without a socket timeout a publish to a Redis that vanished without closing the
    # TCP connection (failover, NAT timeout) waits forever.
    return {
        "socket_timeout": settings.broker_socket_timeout_seconds,
        "socket_connect_timeout": settings.broker_connect_timeout_seconds,
        "socket_keepalive": True,
        "health_check_interval": 25,
    }


def _ssl_options(url: str, settings: Settings) -> dict[str, Any] | None:
    if urlsplit(url).scheme != "rediss":
        return None
    options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    if settings.redis_tls_ca_file:
        options["ssl_ca_certs"] = settings.redis_tls_ca_file
    return options


def celery_config(settings: Settings, catalog: Catalog = CATALOG) -> dict[str, Any]:
    """The Celery configuration mapping (lower-case setting names)."""
    broker_url = settings.effective_broker_url
    backend_url = settings.effective_result_backend_url
    prefix = settings.redis_key_prefix
    config: dict[str, Any] = {
        "broker_url": broker_url,
        # Producers never block on a result, so the backend does not subscribe to a
        # result channel per publish (results.py explains the cost of that).
        "result_backend": f"{RESULT_BACKEND_CLASS}+{backend_url}",
        # JSON only: a pickle payload from a compromised producer would run code.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "timezone": settings.timezone,
        "enable_utc": True,
        # Queues and routes come from the catalog.
        "task_queues": task_queues(),
        "task_routes": task_routes(catalog),
        "task_default_queue": Queue.DEFAULT.value,
        "task_default_exchange": Queue.DEFAULT.value,
        "task_default_routing_key": Queue.DEFAULT.value,
        "task_create_missing_queues": False,
        "task_default_priority": DEFAULT_PRIORITY,
        # At least once: ack after the run, re-deliver when the process running it died,
        # but through the retry path so max_retries bounds a job that always kills it.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_retry_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        "result_expires": settings.result_expires_seconds,
        "result_extended": False,
        # A broker connection reset otherwise lets the message be re-delivered while the
        # first run continues: two parallel runs of one job.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # SIGTERM is remapped to SIGQUIT by the worker entrypoint: a soft shutdown gives
        # running tasks this long, then re-queues every prefetched and running message.
        "worker_soft_shutdown_timeout": settings.worker_soft_shutdown_seconds,
        "worker_enable_soft_shutdown_on_idle": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_channel_error_retry": True,
        "broker_transport_options": {
            "visibility_timeout": visibility_timeout(settings, catalog),
            "global_keyprefix": prefix,
            "priority_steps": list(PRIORITY_STEPS),
            "queue_order_strategy": "priority",
            # kombu's default sweep runs every 10 x 10 s; one interval, one scan.
            "unacked_restore_interval": settings.unacked_restore_interval_seconds,
            "unacked_restore_throttle": 1,
            # A producer facing a dead broker fails fast (the API answers 503) instead of
            # retrying the connection for Celery's default 4 s and then some.
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "connect_retries_timeout": settings.broker_connect_timeout_seconds,
            **_redis_connection_options(settings),
        },
        "result_backend_transport_options": {
            "global_keyprefix": prefix,
            "retry_policy": {"timeout": settings.broker_socket_timeout_seconds},
            **_redis_connection_options(settings),
        },
        "redis_socket_timeout": settings.broker_socket_timeout_seconds,
        "redis_socket_connect_timeout": settings.broker_connect_timeout_seconds,
        "redis_socket_keepalive": True,
        "redis_retry_on_timeout": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
    }
    broker_ssl = _ssl_options(broker_url, settings)
    if broker_ssl is not None:
        config["broker_use_ssl"] = broker_ssl
    backend_ssl = _ssl_options(backend_url, settings)
    if backend_ssl is not None:
        config["redis_backend_use_ssl"] = backend_ssl
    return config


def create_celery_app(
    name: str = "marketq", settings: Settings | None = None, catalog: Catalog = CATALOG
) -> Celery:
    """A configured Celery app. Producers use it as is; the worker registers jobs on it."""
    settings = settings or get_settings()
    app = Celery(name, set_as_current=False)
    app.config_from_object(celery_config(settings, catalog))
    return app
