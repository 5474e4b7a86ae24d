"""The one place marketq builds a redis-py client from a configured URL.

Three forms of URL are accepted everywhere (broker, results, quota buckets):

* ``redis://[user:password@]host:port/db`` and ``rediss://...`` (TLS): one server;
* ``sentinel://[user:password@]host:port;sentinel://host2:port/db``: a group of Redis
  Sentinels (``;`` between them, kombu's and Celery's own syntax), asked for the current
  master of ``MARKETQ_REDIS_SENTINEL_MASTER``. The password in the URL is the master's;
  the sentinels' own password is ``MARKETQ_REDIS_SENTINEL_PASSWORD``.

A Sentinel client re-asks the sentinels on every new connection and drops its
connections when the server it reaches is no longer the master (redis-py's
``SentinelManagedConnection``), so a failover costs the commands in flight, never a
restart. Celery's broker and result backend and RedBeat do the same with their own
Sentinel support; ``marketq.common.celery_app`` and ``marketq.beat.app`` give them the
options built here (docs/design.md#redis-sentinel).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

if TYPE_CHECKING:
    from marketq.common.settings import Settings

SENTINEL_SCHEME = "sentinel"


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``sentinel://`` URL: the sentinels and the master's database and login."""

    sentinels: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return urlsplit(url.split(";", 1)[0]).scheme == SENTINEL_SCHEME


def parse_sentinel_url(url: str) -> SentinelUrl:
    """``sentinel://[user:pw@]h1:p1;sentinel://h2:p2/db`` -> the sentinels, db and login.

    The login and database come from the first part that gives them (kombu and Celery
    read the first; put them there). Every part must give its port: kombu's default
    (26379) and Celery's backend's (6379) differ."""
    sentinels: list[tuple[str, int]] = []
    db: int | None = None
    username: str | None = None
    password: str | None = None
    for chunk in (part.strip() for part in url.split(";")):
        if not chunk:
            continue
        parts = urlsplit(chunk)
        if parts.scheme != SENTINEL_SCHEME:
            raise ValueError(f"every part of a Sentinel URL must be sentinel://, not {chunk!r}")
        if not parts.hostname:
            raise ValueError(f"a Sentinel URL part names no host: {chunk!r}")
        if parts.port is None:
            # kombu defaults a sentinel's port to 26379 and Celery's backend to 6379: an
            # explicit port is the only way both reach the same sentinel.
            raise ValueError(f"every part of a Sentinel URL needs its port: {chunk!r}")
        sentinels.append((parts.hostname, parts.port))
        path = parts.path.strip("/")
        if path and db is None:
            if not path.isdigit():
                raise ValueError(f"the database of a Sentinel URL must be a number: {chunk!r}")
            db = int(path)
        if parts.password is not None and password is None:
            password = unquote(parts.password)
            username = unquote(parts.username) if parts.username else None
    if not sentinels:
        raise ValueError("a Sentinel URL names no sentinel")
    return SentinelUrl(tuple(sentinels), db or 0, username, password)


def redis_tls_options(url: str, settings: Settings) -> dict[str, Any] | None:
    """TLS options for a ``rediss://`` URL, or a ``sentinel://`` one with
    ``MARKETQ_REDIS_SENTINEL_TLS`` (None otherwise): verify the server, against
    ``MARKETQ_REDIS_TLS_CA_FILE`` when set. Celery, kombu, RedBeat and redis-py all take
    these keyword names, so every Redis client of every process uses this."""
    scheme = urlsplit(url.split(";", 1)[0]).scheme
    if scheme == "rediss" or (scheme == SENTINEL_SCHEME and settings.redis_sentinel_tls):
        options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        if settings.redis_tls_ca_file:
            options["ssl_ca_certs"] = settings.redis_tls_ca_file
        return options
    return None


def sentinel_kwargs(settings: Settings) -> dict[str, Any]:
    """Options of the connections to the sentinels themselves (not to the master):
    their password, timeouts and TLS. kombu, Celery and RedBeat all take this mapping."""
    options: dict[str, Any] = {
        "socket_timeout": settings.broker_socket_timeout_seconds,
        "socket_connect_timeout": settings.broker_connect_timeout_seconds,
    }
    if settings.redis_sentinel_password is not None:
        options["password"] = settings.redis_sentinel_password.get_secret_value()
    if settings.redis_sentinel_tls:
        options["ssl"] = True
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
        if settings.redis_tls_ca_file:
            options["ssl_ca_certs"] = settings.redis_tls_ca_file
    return options


def _master_options(url: str, settings: Settings, options: dict[str, Any]) -> dict[str, Any]:
    parsed = parse_sentinel_url(url)
    master: dict[str, Any] = {"db": parsed.db, **options}
    if parsed.password is not None:
        master["password"] = parsed.password
    if parsed.username is not None:
        master["username"] = parsed.username
    tls = redis_tls_options(url, settings)
    if tls is not None:
        master.update(tls, ssl=True)
    return master


def redis_client(url: str, settings: Settings, **options: Any) -> redis.Redis:
    """A client on ``url``: the server it names, or the current master of its sentinels.

    ``options`` are redis-py's connection options (timeouts, ``max_connections``...)."""
    if is_sentinel_url(url):
        parsed = parse_sentinel_url(url)
        manager = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(parsed.sentinels), sentinel_kwargs=sentinel_kwargs(settings)
        )
        client: redis.Redis = manager.master_for(  # type: ignore[no-untyped-call]
            settings.redis_sentinel_master,
            redis_class=redis.Redis,
            **_master_options(url, settings, options),
        )
        return client
    return redis.Redis.from_url(url, **{**(redis_tls_options(url, settings) or {}), **options})


def async_redis_client(url: str, settings: Settings, **options: Any) -> redis.asyncio.Redis:
    """The asyncio twin of :func:`redis_client` (the API's client)."""
    if is_sentinel_url(url):
        parsed = parse_sentinel_url(url)
        manager = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(parsed.sentinels), sentinel_kwargs=sentinel_kwargs(settings)
        )
        client: redis.asyncio.Redis = manager.master_for(
            settings.redis_sentinel_master,
            redis_class=redis.asyncio.Redis,
            **_master_options(url, settings, options),
        )
        return client
    return redis.asyncio.Redis.from_url(
        url, **{**(redis_tls_options(url, settings) or {}), **options}
    )


def broker_client(settings: Settings, **options: Any) -> redis.Redis:
    """A plain client on the broker's Redis with marketq's socket options (kombu's own
    client prefixes keys itself; this one does not)."""
    defaults: dict[str, Any] = {
        "socket_timeout": settings.broker_socket_timeout_seconds,
        "socket_connect_timeout": settings.broker_connect_timeout_seconds,
        "socket_keepalive": True,
        "health_check_interval": 30,
    }
    return redis_client(settings.effective_broker_url, settings, **{**defaults, **options})
