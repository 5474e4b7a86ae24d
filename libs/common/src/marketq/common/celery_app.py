"""The one Celery application factory every marketq process uses.

Delivery settings follow what was measured on Celery 5.7 / kombu 5.7 / Redis 7
(docs/design.md#delivery): at-least-once delivery with late acks, bounded
re-delivery of work whose process died, and fast recovery of messages a dead worker held.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from marketq.common.catalog import CATALOG, Catalog, JobSpec
from marketq.common.queues import ALL_QUEUES, Queue
from marketq.common.redis_client import is_sentinel_url, redis_tls_options, sentinel_kwargs
from marketq.common.results import RESULT_BACKEND_CLASS, SENTINEL_BACKEND_CLASS
from marketq.common.routing import DEFAULT_PRIORITY, PRIORITY_STEPS, task_queues, task_routes
from marketq.common.settings import Settings, get_settings


def _capped(job: JobSpec, cap: int | None) -> tuple[int, int]:
    """(soft, hard) of ``job`` under a queue's cap on the hard limit."""
    hard = job.time_limit
    soft = job.soft_time_limit
    if cap is not None and cap < hard:
        # Keep the job's proportion of soft to hard so it still gets its warning.
        soft = max(1, min(soft, int(cap * soft / hard)))
        hard = cap
        if soft >= hard:
            soft = hard - 1
    return soft, hard


def effective_time_limits(
    settings: Settings, catalog: Catalog = CATALOG
) -> dict[str, tuple[int, int]]:
    """(soft, hard) time limit of every job on its own queue, after that queue's cap."""
    return {
        job.name: _capped(job, settings.queues.for_queue(job.queue).max_time_limit_seconds)
        for job in catalog.values()
    }


def time_limits_on(
    queue: Queue, settings: Settings, catalog: Catalog = CATALOG
) -> dict[str, tuple[int, int]]:
    """(soft, hard) time limit of every job that may run on ``queue`` (its own jobs and the
    any-queue probes), after that queue's cap. The worker enforces the cap of the queue a
    probe was sent to (marketq.worker.queue_limits), so the queue's visibility timeout
    covers everything that runs there."""
    cap = settings.queues.for_queue(queue).max_time_limit_seconds
    return {
        job.name: _capped(job, cap)
        for job in catalog.values()
        if job.queue is queue or job.any_queue
    }


def visibility_timeouts(settings: Settings, catalog: Catalog = CATALOG) -> dict[Queue, int]:
    """Seconds before Redis hands an unacknowledged message of each queue to another worker.

    A message may wait for its ETA (at most half its queue's timeout, enforced at publish)
    and then run up to its hard time limit; the timeout must outlast both or a healthy run
    is delivered a second time. Hence twice the queue's longest hard limit plus a margin:
    a worker that dies holding a short queue's runs gives them back after that queue's
    timeout, not after the longest job anywhere (docs/design.md#per-queue-visibility).

    ``visibility_timeout_seconds``, when set, is one timeout for every queue (what it
    always meant); it must outlast twice the longest hard limit of all queues.
    """
    longest = {
        queue: max(
            (hard for _soft, hard in time_limits_on(queue, settings, catalog).values()), default=0
        )
        for queue in ALL_QUEUES
    }
    explicit = settings.visibility_timeout_seconds
    if explicit is None:
        margin = settings.visibility_timeout_margin_seconds
        return {queue: 2 * hard + margin for queue, hard in longest.items()}
    overall = max(longest.values())
    if explicit <= 2 * overall:
        raise ValueError(
            f"visibility_timeout_seconds ({explicit}) must be above twice the longest hard "
            f"time limit ({overall} s): a shorter one delivers healthy runs a second time"
        )
    return dict.fromkeys(longest, explicit)


def visibility_timeout(settings: Settings, catalog: Catalog = CATALOG) -> int:
    """The longest queue's visibility timeout: kombu's own ``visibility_timeout``, which
    is what a sweeper without the per-queue table (a stock kombu transport) applies."""
    return max(visibility_timeouts(settings, catalog).values())


def max_countdown_seconds(settings: Settings, queue: Queue, catalog: Catalog = CATALOG) -> int:
    """Longest countdown/ETA accepted for a run on ``queue``: half its visibility timeout.

    A worker moves a message whose ETA is ahead to the delayed set at once, but if that
    move fails it holds the message until the ETA (Celery's own behaviour), and then the
    queue's timeout must cover the wait plus the run."""
    return visibility_timeouts(settings, catalog)[queue] // 2


def _redis_connection_options(settings: Settings) -> dict[str, Any]:
    # Without a socket timeout a publish to a Redis that vanished without closing the
    # TCP connection (failover, NAT timeout) waits forever.
    return {
        "socket_timeout": settings.broker_socket_timeout_seconds,
        "socket_connect_timeout": settings.broker_connect_timeout_seconds,
        "socket_keepalive": True,
        "health_check_interval": 25,
    }


def _backend_class(url: str) -> str:
    return SENTINEL_BACKEND_CLASS if is_sentinel_url(url) else RESULT_BACKEND_CLASS


def _sentinel_options(settings: Settings) -> dict[str, Any]:
    """kombu's SentinelChannel and Celery's SentinelBackend both read these transport
    options: the master group to ask for, and the sentinels' own password/timeouts/TLS."""
    return {
        "master_name": settings.redis_sentinel_master,
        "sentinel_kwargs": sentinel_kwargs(settings),
    }


def celery_config(settings: Settings, catalog: Catalog = CATALOG) -> dict[str, Any]:
    """The Celery configuration mapping (lower-case setting names)."""
    broker_url = settings.effective_broker_url
    backend_url = settings.effective_result_backend_url
    prefix = settings.redis_key_prefix
    config: dict[str, Any] = {
        "broker_url": broker_url,
        # Producers never block on a result, so the backend does not subscribe to a
        # result channel per publish (results.py explains the cost of that).
        "result_backend": f"{_backend_class(backend_url)}+{backend_url}",
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
        # STARTED is a run event in the ledger (marketq.common.run_events); a second copy in
        # the result backend would cost a Redis write per run that nothing reads.
        "task_track_started": False,
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
            # Read by the workers' transport (marketq.worker.broker_transport), whose
            # sweep restores each message after its own queue's timeout; a stock kombu
            # transport ignores it.
            "queue_visibility_timeouts": {
                queue.value: seconds
                for queue, seconds in visibility_timeouts(settings, catalog).items()
            },
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
    if is_sentinel_url(broker_url):
        config["broker_transport_options"].update(_sentinel_options(settings))
    if is_sentinel_url(backend_url):
        config["result_backend_transport_options"].update(_sentinel_options(settings))
    broker_ssl = redis_tls_options(broker_url, settings)
    if broker_ssl is not None:
        config["broker_use_ssl"] = broker_ssl
    backend_ssl = redis_tls_options(backend_url, settings)
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
