"""Publishing validates before Redis, names the bad field, and writes a complete message.

Against a real redis-server; no worker runs, so what the test reads is exactly what a
worker would receive.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from celery import Celery
from redis.exceptions import ConnectionError as RedisConnectionError

from marketq.common.catalog import CATALOG, UnknownJobError
from marketq.common.celery_app import create_celery_app, max_countdown_seconds
from marketq.common.publish import (
    ENQUEUED_AT_HEADER,
    MAX_MESSAGE_BYTES,
    InvalidParamsError,
    MessageTooLargeError,
    PublishError,
    publish,
)
from marketq.common.queues import Queue
from marketq.common.run_events import stream_key
from marketq.common.settings import Settings
from tests.fixtures.ports import free_port
from tests.fixtures.redis import RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture
def app(redis_url: str) -> Celery:
    return create_celery_app(settings=Settings(redis_url=redis_url))


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings(redis_url=redis_url)


def all_keys(server: RedisServer) -> list[bytes]:
    return list(server.client().scan_iter("*"))


def queued_messages(server: RedisServer, queue: str) -> list[dict[str, object]]:
    client = server.client()
    keys = [k for k in client.scan_iter(f"marketq:{queue}*") if client.type(k) == b"list"]
    return [json.loads(raw) for key in keys for raw in client.lrange(key, 0, -1)]


@pytest.mark.parametrize(
    ("job", "params", "field"),
    [
        ("stock_quotes", {"symbols": ["AAPL", "not a symbol"]}, "symbols.1"),
        ("stock_quotes", {"symbol": ["AAPL"]}, "symbol"),
        ("historical_prices", {"start": "2026-02-01", "end": "2026-01-01"}, ""),
        ("options_chain", {"expirations": 99}, "expirations"),
        ("data_import", {"dataset": "positions", "content": "x"}, ""),
        ("portfolio_report", {}, "portfolio_id"),
        ("stock_quotes", {"as_of": "2026-11-20T15:30:00"}, "as_of"),
    ],
)
def test_invalid_params_name_the_field_and_never_reach_redis(
    app: Celery,
    settings: Settings,
    redis_server: RedisServer,
    job: str,
    params: dict[str, object],
    field: str,
) -> None:
    with pytest.raises(InvalidParamsError) as error:
        publish(app, job, params, settings=settings)
    assert error.value.errors[0].field == field
    assert job in str(error.value)
    assert all_keys(redis_server) == []


def test_unknown_job_never_reaches_redis(
    app: Celery, settings: Settings, redis_server: RedisServer
) -> None:
    with pytest.raises(UnknownJobError):
        publish(app, "quotes", {}, settings=settings)
    assert all_keys(redis_server) == []


def test_countdown_beyond_half_the_visibility_timeout_is_refused(
    app: Celery, settings: Settings, redis_server: RedisServer
) -> None:
    limit = max_countdown_seconds(settings, Queue.DEFAULT)
    with pytest.raises(PublishError) as error:
        publish(app, "health_check", {}, countdown=limit + 1, settings=settings)
    assert error.value.field == "countdown"
    with pytest.raises(PublishError) as error:
        publish(
            app,
            "health_check",
            {},
            eta=datetime.now(UTC) + timedelta(seconds=limit + 60),
            settings=settings,
        )
    assert error.value.field == "eta"
    assert all_keys(redis_server) == []
    publish(app, "health_check", {}, countdown=limit - 5, settings=settings)
    assert all_keys(redis_server)  # within the limit it is accepted


def test_the_countdown_ceiling_is_the_target_queues(app: Celery, settings: Settings) -> None:
    # The probe's own queue (default) allows more than market_hours, whose jobs are short:
    # the same countdown is refused when the probe is sent there.
    short = max_countdown_seconds(settings, Queue.MARKET_HOURS)
    assert short < max_countdown_seconds(settings, Queue.DEFAULT)
    publish(app, "health_check", {}, countdown=short + 1, settings=settings)
    with pytest.raises(PublishError, match="market_hours") as error:
        publish(
            app,
            "health_check",
            {},
            countdown=short + 1,
            queue=Queue.MARKET_HOURS,
            settings=settings,
        )
    assert error.value.field == "countdown"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"priority": 10}, "priority"),
        ({"queue": "daily"}, "queue"),
        ({"queue": "nope"}, "queue"),
        ({"countdown": -1}, "countdown"),
        ({"eta": datetime(2026, 1, 1)}, "eta"),
    ],
)
def test_bad_options_name_the_option(
    app: Celery,
    settings: Settings,
    redis_server: RedisServer,
    kwargs: dict[str, object],
    field: str,
) -> None:
    with pytest.raises(PublishError) as error:
        publish(app, "stock_quotes", {}, settings=settings, **kwargs)
    assert error.value.field == field
    assert all_keys(redis_server) == []


def test_message_carries_validated_params_enqueue_time_and_expiry(
    app: Celery, settings: Settings, redis_server: RedisServer
) -> None:
    run = publish(app, "stock_quotes", {"symbols": ["aapl"]}, settings=settings)
    [message] = queued_messages(redis_server, "market_hours")
    headers = message["headers"]
    assert isinstance(headers, dict)
    assert headers["id"] == run.run_id and headers["task"] == "stock_quotes"
    assert abs(headers[ENQUEUED_AT_HEADER] - run.enqueued_at.timestamp()) < 1e-6
    assert headers["expires"] is not None  # a quote older than its expiry is worthless
    body = json.loads(base64.b64decode(message["body"]))  # type: ignore[arg-type]
    assert body[1] == {"symbols": ["AAPL"]}  # normalised by the params model
    assert message["content-type"] == "application/json"


def test_health_check_may_target_any_queue_and_priority_uses_sub_lists(
    app: Celery, settings: Settings, redis_server: RedisServer
) -> None:
    for queue in Queue:
        publish(app, "health_check", {}, queue=queue, settings=settings)
    publish(app, "health_check", {}, queue=Queue.DAILY, priority=9, settings=settings)
    for queue in Queue:
        expected = 2 if queue is Queue.DAILY else 1
        assert len(queued_messages(redis_server, queue.value)) == expected
    client = redis_server.client()
    assert client.llen("marketq:daily\x06\x169") == 1  # kombu's list for priority step 9


def test_publish_writes_the_queued_event_with_the_message(
    app: Celery, settings: Settings, redis_server: RedisServer
) -> None:
    """The message and the run's QUEUED event go to Redis in one script, whoever publishes."""
    run = publish(app, "health_check", {}, settings=settings)
    events = redis_server.client().xrange(stream_key(settings.redis_key_prefix))
    assert [(f[b"s"], json.loads(f[b"d"])["id"]) for _id, f in events] == [(b"QUEUED", run.run_id)]
    assert len(queued_messages(redis_server, "default")) == 1


def test_no_broker_message_exceeds_64_kib(
    app: Celery, settings: Settings, redis_server: RedisServer
) -> None:
    for name, spec in CATALOG.items():
        publish(app, name, dict(spec.example), settings=settings)
    oversized = {"dataset": "daily_bars", "content": '"' * 40_000}  # JSON doubles it
    with pytest.raises(MessageTooLargeError) as refused:
        publish(app, "data_import", oversized, settings=settings)
    assert refused.value.field == "params"
    client = redis_server.client()
    lists = [k for k in client.scan_iter("marketq:*") if client.type(k) == b"list"]
    messages = [m for key in lists for m in client.lrange(key, 0, -1)]
    assert len(messages) == len(CATALOG)  # the refused run published nothing
    assert max(len(m) for m in messages) <= MAX_MESSAGE_BYTES


def test_publish_to_a_stopped_redis_fails_instead_of_retrying() -> None:
    """A producer (the API) must be able to answer 503 within 2 s, so no retry loop."""
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = create_celery_app(settings=settings)
    started = time.monotonic()
    with pytest.raises(RedisConnectionError, match="refused"):
        publish(app, "health_check", {}, settings=settings)
    assert time.monotonic() - started < 2
