"""Per-queue visibility timeouts (issue 16): the table every process derives, the restore
sweep that applies it (against a real redis-server through kombu), the probe limits that
keep it sound, and the reconciler that judges a dead worker's run by its queue's timeout.
The real-process proof is tests/integration/test_delivery.py::
test_killed_market_hours_worker_is_back_within_its_queues_timeout_not_the_longest."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from kombu import Connection, Exchange
from kombu import Queue as KombuQueue

from marketq.common.catalog import CATALOG
from marketq.common.celery_app import (
    celery_config,
    create_celery_app,
    max_countdown_seconds,
    time_limits_on,
    visibility_timeout,
    visibility_timeouts,
)
from marketq.common.db.engine import create_db_engine, session_factory
from marketq.common.db.models import RunState, TaskRun
from marketq.common.queues import Queue
from marketq.common.reconciler import Reconciler
from marketq.common.run_events import DETAIL_FIELD, STATE_FIELD, EventLog, stream_key
from marketq.common.settings import QueueOptions, Settings, get_settings
from marketq.worker import queue_limits
from marketq.worker.broker_transport import TRANSPORT_PATH, due_tags, held_queue
from tests.fixtures.postgres import DIALECTS


def longest_on(queue: Queue) -> int:
    """The catalog's longest hard limit among the jobs that may run on ``queue``."""
    return max(job.time_limit for job in CATALOG.values() if job.queue is queue or job.any_queue)


# --- the table -------------------------------------------------------------------------


def test_each_queue_gets_twice_its_own_longest_limit_plus_the_margin() -> None:
    settings = Settings()
    timeouts = visibility_timeouts(settings)
    margin = settings.visibility_timeout_margin_seconds
    assert timeouts == {q: 2 * longest_on(q) + margin for q in Queue}
    assert timeouts[Queue.MARKET_HOURS] == 2 * 280 + 60  # not the daily 2 x 1260 + 60
    assert visibility_timeout(settings) == max(timeouts.values()) == timeouts[Queue.DAILY]


def test_capping_one_queue_shortens_only_its_timeout_probes_included() -> None:
    settings = Settings(queues={"market_hours": QueueOptions(max_time_limit_seconds=5)})
    timeouts = visibility_timeouts(settings)
    assert timeouts[Queue.MARKET_HOURS] == 2 * 5 + 60
    assert {q: timeouts[q] for q in Queue if q is not Queue.MARKET_HOURS} == {
        q: 2 * longest_on(q) + 60 for q in Queue if q is not Queue.MARKET_HOURS
    }
    # health_check (180 s on default) runs on market_hours under market_hours' cap.
    on_market_hours = time_limits_on(Queue.MARKET_HOURS, settings)
    assert on_market_hours["health_check"] == (4, 5)
    assert "data_import" not in on_market_hours
    assert time_limits_on(Queue.DEFAULT, settings)["health_check"] == (150, 180)


def test_an_explicit_timeout_is_one_value_for_every_queue() -> None:
    longest = max(job.time_limit for job in CATALOG.values())
    settings = Settings(visibility_timeout_seconds=2 * longest + 1)
    assert visibility_timeouts(settings) == dict.fromkeys(Queue, 2 * longest + 1)
    with pytest.raises(ValueError, match="visibility_timeout_seconds"):
        visibility_timeouts(Settings(visibility_timeout_seconds=2 * longest))


def test_countdown_ceiling_and_run_fit_in_each_queues_timeout() -> None:
    settings = Settings()
    for queue, timeout in visibility_timeouts(settings).items():
        assert max_countdown_seconds(settings, queue) + longest_on(queue) < timeout
    assert max_countdown_seconds(settings, Queue.MARKET_HOURS) == 310


def test_the_transport_options_carry_the_table() -> None:
    settings = Settings(queues={"market_hours": QueueOptions(max_time_limit_seconds=5)})
    options = celery_config(settings)["broker_transport_options"]
    assert options["queue_visibility_timeouts"] == {
        q.value: t for q, t in visibility_timeouts(settings).items()
    }
    assert options["visibility_timeout"] == visibility_timeout(settings)


# --- which held messages the sweep restores --------------------------------------------


def entry(routing_key: str) -> bytes:
    return json.dumps([{"body": "…"}, routing_key, routing_key]).encode()


def test_held_queue_reads_kombus_entry() -> None:
    assert held_queue(entry("daily")) == "daily"
    assert held_queue(json.dumps([{}, "market_hours", ""]).encode()) == "market_hours"
    assert held_queue(None) is None
    assert held_queue(b"not json") is None


def test_due_tags_apply_each_messages_own_queue_timeout() -> None:
    timeouts = {"market_hours": 12.0, "daily": 100.0}
    now = 1_000.0
    held = [
        (b"mh-old", now - 13, entry("market_hours")),
        (b"mh-young", now - 11, entry("market_hours")),
        (b"daily-13", now - 13, entry("daily")),
        (b"daily-old", now - 101, entry("daily")),
        (b"unknown-50", now - 50, entry("elsewhere")),
        (b"unknown-old", now - 101, entry("elsewhere")),
        (b"no-entry-50", now - 50, None),
    ]
    assert due_tags(held, now, timeouts, unknown=100.0) == [b"mh-old", b"daily-old", b"unknown-old"]


# --- the sweep, on a real redis-server through kombu -----------------------------------


@pytest.fixture
def broker(redis_url: str) -> Iterator[Connection]:
    options = {
        "global_keyprefix": "marketq:",
        "visibility_timeout": 100,
        "queue_visibility_timeouts": {"market_hours": 12, "daily": 100},
    }
    connection = Connection(redis_url, transport=TRANSPORT_PATH, transport_options=options)
    try:
        yield connection
    finally:
        connection.release()


def deliver(broker: Connection, queues: list[str]) -> dict[str, str]:
    """Publish one message to each queue and take it unacknowledged, as a worker does:
    {queue: delivery tag}."""
    channel = broker.default_channel
    tags = {}
    for name in queues:
        queue = KombuQueue(name, Exchange(name, type="direct"), routing_key=name)
        queue(channel).declare()
        broker.Producer(channel).publish({"q": name}, exchange=name, routing_key=name)
        message = channel.basic_get(name, no_ack=False)
        assert message is not None
        tags[name] = message.delivery_tag
    return tags


def age(client: redis.Redis, tags: dict[str, str], seconds: float) -> None:
    client.zadd("marketq:unacked_index", {tag: time.time() - seconds for tag in tags.values()})


def test_sweep_restores_each_message_after_its_own_queues_timeout(
    broker: Connection, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    tags = deliver(broker, ["market_hours", "daily", "elsewhere"])
    qos = broker.default_channel.qos

    # Older than market_hours' 12 s, younger than daily's (and the longest, 100 s).
    age(client, tags, 50)
    qos.restore_visible(num=None, interval=1)
    assert client.llen("marketq:market_hours") == 1
    assert client.hexists("marketq:unacked", tags["market_hours"]) == 0
    assert client.hlen("marketq:unacked") == 2
    assert client.llen("marketq:daily") == 0 and client.llen("marketq:elsewhere") == 0

    # Past the longest: the rest come back too; an unknown queue waited the longest.
    age(client, {k: v for k, v in tags.items() if k != "market_hours"}, 101)
    qos.restore_visible(num=None, interval=1)
    assert client.llen("marketq:daily") == 1 and client.llen("marketq:elsewhere") == 1
    assert client.hlen("marketq:unacked") == 0 and client.zcard("marketq:unacked_index") == 0


def test_sweep_keeps_kombus_mutex(broker: Connection, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    tags = deliver(broker, ["market_hours"])
    age(client, tags, 50)
    client.set("marketq:unacked_mutex", "another worker sweeps", ex=30)
    broker.default_channel.qos.restore_visible(num=None, interval=1)
    assert client.llen("marketq:market_hours") == 0 and client.hlen("marketq:unacked") == 1
    client.delete("marketq:unacked_mutex")
    broker.default_channel.qos.restore_visible(num=None, interval=1)
    assert client.llen("marketq:market_hours") == 1


# --- a probe runs under the limits of the queue it was sent to ---------------------------


def test_a_probe_on_another_queue_gets_that_queues_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARKETQ_QUEUES__MARKET_HOURS__MAX_TIME_LIMIT_SECONDS", "5")
    get_settings.cache_clear()
    queue_limits._limits_on.cache_clear()
    try:
        assert queue_limits.limits_for_delivery("health_check", "market_hours") == (4, 5)
        assert queue_limits.limits_for_delivery("health_check", "default") is None  # its own
        assert queue_limits.limits_for_delivery("stock_quotes", "market_hours") is None
        assert queue_limits.limits_for_delivery("health_check", "nowhere") is None
        assert queue_limits.limits_for_delivery("celery.ping", "market_hours") is None
    finally:
        get_settings.cache_clear()
        queue_limits._limits_on.cache_clear()


# --- the reconciler judges a dead worker by its run's queue ----------------------------


@pytest.mark.parametrize("db_url", DIALECTS, indirect=True)
def test_reconciler_judges_a_run_by_its_queues_timeout(db_url: str, redis_url: str) -> None:
    settings = Settings(
        database_url=db_url,
        redis_url=redis_url,
        queues={"market_hours": QueueOptions(max_time_limit_seconds=5)},
        visibility_timeout_margin_seconds=2,
    )
    assert visibility_timeouts(settings)[Queue.MARKET_HOURS] == 12
    client = redis.Redis.from_url(redis_url)
    sessions = session_factory(create_db_engine(db_url))
    # Both held by a worker that never beat, unchanged for a minute; neither message is
    # anywhere in Redis any more.
    a_minute_ago = datetime.now(UTC) - timedelta(seconds=60)
    runs = {"market_hours": str(uuid.uuid4()), "daily": str(uuid.uuid4())}
    with sessions.begin() as session:
        for queue, run_id in runs.items():
            session.add(
                TaskRun(
                    id=run_id,
                    job="stock_quotes" if queue == "market_hours" else "historical_prices",
                    queue=queue,
                    params={},
                    state=RunState.STARTED.value,
                    worker="gone@x",
                    updated_at=a_minute_ago,
                )
            )
    app = create_celery_app("marketq-test", settings=settings)
    try:
        reconciler = Reconciler(app, client, sessions, settings, EventLog(client, settings))
        assert reconciler.run_once()
    finally:
        app.close()
    events = client.xrange(stream_key(settings.redis_key_prefix))
    lost = [f[DETAIL_FIELD.encode()] for _id, f in events if f[STATE_FIELD.encode()] == b"LOST"]
    # market_hours' 12 s have passed: the run is settled. daily's 2 x 1260 + 2 s have not.
    assert len(lost) == 1 and runs["market_hours"].encode() in lost[0]


# --- one Redis client per pool ---------------------------------------------------------


def test_acknowledgements_reuse_one_redis_client_per_pool(
    broker: Connection, redis_url: str
) -> None:
    """kombu builds a client for every acknowledgement; redis-py 8's constructor made that
    the consumer loop's largest cost (docs/performance.md). The channel keeps one per
    pool, and a pool dropped after a connection loss gets a new one."""
    client = redis.Redis.from_url(redis_url)
    channel = broker.default_channel
    built: list[object] = []
    make_client = channel.Client

    def counting_client(**kwargs: object) -> object:
        built.append(kwargs["connection_pool"])
        return make_client(**kwargs)

    channel.Client = counting_client
    tags = [deliver(broker, [f"q{i}"])[f"q{i}"] for i in range(5)]
    for tag in tags[:3]:
        channel.basic_ack(tag)
    assert client.hlen("marketq:unacked") == 2
    assert len(built) == 1

    channel._disconnect_pools()  # what kombu does when the connection is lost
    for tag in tags[3:]:
        channel.basic_ack(tag)
    assert client.hlen("marketq:unacked") == 0 and client.zcard("marketq:unacked_index") == 0
    assert len(built) == 2 and built[1] is channel.pool is not built[0]
