"""kombu's Redis transport, with one failure turned into the connection error it is.

When the broker connection is lost, Celery collects the connection (a socket timeout
there is swallowed after the transport has dropped its client) and then closes it; the
close restores the channel's unacknowledged messages, which builds a Redis client from
the transport's client, now ``None``. The ``AttributeError`` that follows is not a
connection error, so it escapes Celery's ``ignore_errors`` and ends the worker's main
process (kombu 5.7.0, the newest release; see docs/design.md#redis-restarts). Raising
Redis's ``ConnectionError`` instead lets the close fail the way a close during an
outage should; ``connection_loss.RestoreHeldMessages`` puts the messages back once the
worker is connected again.

Its restore sweep also gives each queue its own visibility timeout (``QueueVisibilityQoS``),
and it reuses one Redis client per connection pool (``Channel._create_client``).

``SentinelTransport`` is the same channel on the current master of a group of Redis
Sentinels (a ``sentinel://`` broker URL): kombu's ``SentinelChannel`` with these
options and behaviour added (``transport_path`` picks one or the other).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from time import time
from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

# (delivery tag, delivery time, the ``unacked`` hash's entry or None)
Held = tuple[bytes, float, bytes | None]


def held_queue(entry: bytes | None) -> str | None:
    """The queue of a held message, from kombu's ``[payload, exchange, routing_key]``
    entry: marketq routes every queue by its own name (marketq.common.routing)."""
    if entry is None:
        return None
    try:
        _payload, exchange, routing_key = json.loads(entry)
    except (ValueError, TypeError):
        return None
    name = routing_key or exchange
    return str(name) if name else None


def due_tags(
    held: Iterable[Held], now: float, timeouts: Mapping[str, float], unknown: float
) -> list[bytes]:
    """Tags whose message has been held longer than its queue's visibility timeout; a
    message of a queue the table does not name (or without an entry) waits ``unknown``,
    the longest."""
    due = []
    for tag, delivered, entry in held:
        queue = held_queue(entry)
        timeout = timeouts.get(queue, unknown) if queue is not None else unknown
        if delivered <= now - timeout:
            due.append(tag)
    return due


class QueueVisibilityQoS(kombu_redis.QoS):
    """kombu's Redis QoS whose restore sweep applies each queue's visibility timeout.

    kombu restores every message delivered more than ``visibility_timeout`` ago, one value
    for the whole Redis. Here the candidates are the messages older than the shortest
    queue timeout, and each is restored only once older than its own queue's (the table
    ``queue_visibility_timeouts``, which every worker derives from the same settings:
    celery_app.visibility_timeouts), so whichever worker sweeps restores alike. kombu's
    mutex still keeps sweeps of several workers from restoring one message twice.
    """

    def restore_visible(
        self, start: int = 0, num: int | None = 10, interval: int | None = 10
    ) -> None:
        timeouts: Mapping[str, float] = self.channel.queue_visibility_timeouts
        if not timeouts:  # no table: kombu's own sweep with the one timeout
            super().restore_visible(start=start, num=num, interval=interval)  # type: ignore[no-untyped-call]
            return
        # kombu's throttle: scan on every ``interval``-th call.
        self._vrestore_count += 1
        if (self._vrestore_count - 1) % (interval or 1):
            return
        with self.channel.conn_or_acquire() as client:
            try:
                with kombu_redis.Mutex(client, self.unacked_mutex_key, self.unacked_mutex_expire):
                    now = time()
                    held = self._held_since(client, now - min(timeouts.values()))
                    longest = max(*timeouts.values(), self.visibility_timeout)
                    due = due_tags(held, now, timeouts, unknown=longest)
                    # kombu's own limit (``unacked_restore_limit``) counts restores.
                    for tag in due[start : start + num] if num else due:
                        self.restore_by_tag(tag, client)  # type: ignore[no-untyped-call]
            except kombu_redis.MutexHeld:
                pass

    def _held_since(self, client: Any, ceiling: float) -> list[Held]:
        """Messages delivered at or before ``ceiling``, newest first (kombu's order), with
        their ``unacked`` entries. Held messages number at most the workers' pool slots."""
        delivered = client.zrange(
            self.unacked_index_key, ceiling, 0, desc=True, byscore=True, withscores=True
        )
        if not delivered:
            return []
        # One HGET per tag in a pipeline: kombu's key prefixing covers HGET, not HMGET.
        with client.pipeline() as pipe:
            for tag, _score in delivered:
                pipe.hget(self.unacked_key, tag)
            entries = pipe.execute()
        return [
            (tag, float(score), entry)
            for (tag, score), entry in zip(delivered, entries, strict=True)
        ]


class Channel(kombu_redis.Channel):
    QoS = QueueVisibilityQoS
    # queue name -> seconds; empty (a producer's options, or none given): kombu's sweep.
    queue_visibility_timeouts: Mapping[str, float] = {}
    # (kombu types the option list as a tuple of exactly its own names.)
    from_transport_options = (  # type: ignore[assignment]
        *kombu_redis.Channel.from_transport_options,
        "queue_visibility_timeouts",
    )

    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        """One client object per connection pool, not one per call.

        kombu builds a new client for every synchronous command it sends outside a pipeline
        it was given: each acknowledgement, each delivery's bookkeeping. redis-py 8's
        client constructor fills a table of ~200 response callbacks, which made it the
        largest single cost of the worker's consumer loop (docs/design.md#transport-client).
        A client holds no connection of its own (its pool does), so one per pool is
        equivalent; a pool kombu drops after a connection loss gets a new client with it."""
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[no-untyped-call]
        pool = self.pool
        client = self._sync_client
        if client is None or client.connection_pool is not pool:
            client = self._sync_client = super()._create_client()  # type: ignore[no-untyped-call]
        return client

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection is closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """Channel's per-queue sweep and close behaviour, on the master kombu's
    SentinelChannel finds; the options are the union of both."""

    from_transport_options = (  # type: ignore[assignment]
        *kombu_redis.SentinelChannel.from_transport_options,
        "queue_visibility_timeouts",
    )


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


# The value of Celery's ``broker_transport`` setting that selects this transport.
TRANSPORT_PATH = f"{__name__}:Transport"
SENTINEL_TRANSPORT_PATH = f"{__name__}:SentinelTransport"


def transport_path(broker_url: str) -> str:
    """The transport for a broker URL: the Sentinel one for ``sentinel://``."""
    return SENTINEL_TRANSPORT_PATH if broker_url.startswith("sentinel://") else TRANSPORT_PATH
