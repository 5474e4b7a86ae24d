"""The Celery app beat runs: the common factory plus RedBeat's settings.

RedBeat's Redis is the broker's, with explicit socket timeouts (without one, a Redis
that vanished without closing the connection stalls the scheduler loop), its keys carry
marketq's prefix, and the lock timeout is marketq's (about a minute) rather than RedBeat's 25
minutes, so a standby takes over within lock timeout + one loop interval.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import beat_init

from marketq.beat import observability
from marketq.common import tracing
from marketq.common.celery_app import create_celery_app
from marketq.common.logs import connect_celery_logging
from marketq.common.metrics import init_publish_series
from marketq.common.redis_client import (
    is_sentinel_url,
    parse_sentinel_url,
    redis_tls_options,
    sentinel_kwargs,
)
from marketq.common.settings import Settings, get_settings

log = logging.getLogger("marketq.beat")


def redbeat_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "redbeat_redis_url": settings.effective_broker_url,
        "redbeat_redis_options": {
            "socket_timeout": settings.broker_socket_timeout_seconds,
            "socket_connect_timeout": settings.broker_connect_timeout_seconds,
            "socket_keepalive": True,
            "health_check_interval": 25,
        },
        "redbeat_key_prefix": f"{settings.redis_key_prefix}redbeat:",
        "redbeat_lock_timeout": settings.beat_lock_timeout_seconds,
        "beat_max_loop_interval": settings.beat_max_loop_interval_seconds,
        "beat_scheduler": "marketq.beat.scheduler:ExchangeScheduler",
    }
    url = settings.effective_broker_url
    if is_sentinel_url(url):
        config.update(_redbeat_sentinel(url, settings, config["redbeat_redis_options"]))
    tls = redis_tls_options(url, settings)
    if tls is not None:
        config["redbeat_redis_use_ssl"] = tls
    return config


def _redbeat_sentinel(url: str, settings: Settings, options: dict[str, Any]) -> dict[str, Any]:
    """RedBeat's own Sentinel form: a ``redis-sentinel://`` URL plus the sentinels,
    ``service_name`` (the master group) and the master's password in its options; the
    lock then lives on whichever server is the master (redbeat.schedulers.get_redis)."""
    parsed = parse_sentinel_url(url)
    host, port = parsed.sentinels[0]
    sentinel_options: dict[str, Any] = {
        **options,
        "sentinels": list(parsed.sentinels),
        "service_name": settings.redis_sentinel_master,
        "sentinel_kwargs": sentinel_kwargs(settings),
        "db": parsed.db,
    }
    if parsed.password is not None:
        sentinel_options["password"] = parsed.password
    if parsed.username is not None:
        sentinel_options["username"] = parsed.username
    return {
        "redbeat_redis_url": f"redis-sentinel://{host}:{port}/{parsed.db}",
        "redbeat_redis_options": sentinel_options,
    }


def create_beat_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = create_celery_app("marketq-beat", settings)
    app.conf.update(redbeat_config(settings))
    return app


app = create_beat_app()


def _serve_http(sender: Any = None, **_kwargs: Any) -> None:
    settings = get_settings()
    init_publish_series("beat")
    server = observability.serve(
        settings.beat_http_host, settings.beat_http_port, settings.beat_liveness_seconds
    )
    host, port = server.server_address[:2]
    log.info("beat: /metrics and /livez on http://%s:%s", host, port)


def _setup_tracing(sender: Any = None, **_kwargs: Any) -> None:
    # Beat runs in one process: the provider's exporter thread starts here, after any
    # daemonising fork, and the SDK flushes it at exit.
    tracing.setup_tracing("marketq-beat", {"marketq.component": "beat"})


connect_celery_logging()
beat_init.connect(_serve_http, weak=False, dispatch_uid="marketq.beat.http")
beat_init.connect(_setup_tracing, weak=False, dispatch_uid="marketq.beat.tracing")
