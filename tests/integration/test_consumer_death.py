"""A worker's consumer must not die of a broker restart, and if it dies, /livez says so.

Real redis-server; the transport tests drive kombu's Redis transport directly into the
state Celery's reconnect path leaves it in (docs/design.md#redis-restarts); the liveness
test runs a real `marketq-worker` whose consumer dies on its next reconnection.
"""

from __future__ import annotations

import time

import httpx
import pytest
from celery import Celery
from kombu.common import ignore_errors
from kombu.transport import redis as kombu_redis

from marketq.common.celery_app import create_celery_app
from marketq.common.settings import get_settings
from marketq.worker.broker_transport import TRANSPORT_PATH
from tests.fixtures.workers import CHAOS_APP, Stack

pytestmark = pytest.mark.integration


def _hold_one_message(app: Celery) -> tuple[object, str]:
    """A read connection holding one delivered, unacknowledged message."""
    with app.connection_for_write() as connection:
        connection.SimpleQueue("held").put({"n": 1})
    connection = app.connection_for_read()
    connection.ensure_connection(max_retries=1)
    message = connection.default_channel.basic_get("held", no_ack=False)
    assert message is not None
    return connection, message.delivery_tag


def _close_as_after_a_lost_connection(connection: object) -> None:
    # Celery's reconnect path: collect() drops the transport's client when a socket
    # timeout cuts it short, then close() closes the channels it left open.
    connection._do_close_transport()  # type: ignore[attr-defined]
    ignore_errors(connection, connection.close)  # type: ignore[attr-defined]


def test_kombu_transport_raises_attribute_error_closing_after_collect(stack: Stack) -> None:
    """The upstream defect this repository works around (kombu 5.7.0). If this test
    starts failing, kombu fixed it: drop marketq.worker.broker_transport."""
    app = create_celery_app("stock-transport", settings=get_settings())
    assert app.connection_for_read().get_transport_cls() is kombu_redis.Transport
    connection, _tag = _hold_one_message(app)
    with pytest.raises(AttributeError, match="hostname"):
        _close_as_after_a_lost_connection(connection)


def test_worker_transport_turns_it_into_a_connection_error_and_keeps_the_message(
    stack: Stack,
) -> None:
    app = create_celery_app("worker-transport", settings=get_settings())
    app.conf.broker_transport = TRANSPORT_PATH
    connection, tag = _hold_one_message(app)
    _close_as_after_a_lost_connection(connection)  # does not raise
    # The message is still held, for the worker to restore on its next connection.
    assert stack.redis.client().hexists("marketq:unacked", tag)


def test_worker_whose_consumer_died_fails_its_liveness_probe(stack: Stack) -> None:
    worker = stack.start_worker(
        "default",
        name="dying@x",
        app=CHAOS_APP,
        extra_env={"CHAOS_CRASH_ON_RECONNECT": "1", "CHAOS_SHUTDOWN_SLEEP": "10"},
    )
    assert httpx.get(worker.url("/livez"), timeout=5).status_code == 200

    # A lost connection: the consumer reconnects and dies doing so.
    stack.redis.client().client_kill_filter(_type="normal", skipme=True)
    stack.wait_for(lambda: "Unrecoverable error" in worker.log_text(), 30, "the consumer to die")
    deadline = time.monotonic() + 5
    answer = httpx.get(worker.url("/livez"), timeout=5)
    while answer.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = httpx.get(worker.url("/livez"), timeout=5)
    assert worker.process is not None and worker.process.poll() is None, "it did not linger"
    assert answer.status_code == 503, answer.text
    assert "consumer" in answer.text
