"""The API while Redis or the database is down: a fast 503 with a retry hint, never a
stack trace, nothing half-accepted, and recovery without a restart.

Real processes: uvicorn, redis-server (stopped and started on the same port), and for
the database a real PostgreSQL reached through a TCP relay that the test cuts and
restores, the way a database failover or a network partition looks to the API.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from marketq.common.db.migrate import upgrade
from tests.fixtures.api import ApiProcess, start_api
from tests.fixtures.ports import free_port
from tests.fixtures.postgres import create_database, drop_database
from tests.fixtures.workers import Stack

pytestmark = pytest.mark.integration

BOUND_SECONDS = 2.0  # a behaviour bound (answer fast instead of hanging), not a benchmark
RUN = "/api/v1/jobs/stock_quotes/runs"
BODY = {"params": {"symbols": ["AAPL"]}}


def assert_unavailable(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    assert "Traceback" not in response.text and 'File "' not in response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    retry_after = response.headers.get("retry-after", "")
    assert retry_after.isdigit() and int(retry_after) >= 1, response.headers


def timed(request: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = request()
    return response, time.monotonic() - started


def messages_in_redis(client: redis.Redis) -> dict[str, str]:
    """Run id -> queue list of every task message in Redis (all lists, all priorities)."""
    found: dict[str, str] = {}
    for key in client.scan_iter(count=1000):
        if client.type(key) != b"list":
            continue
        for raw in client.lrange(key, 0, -1):
            message = json.loads(raw)
            found[message["headers"]["id"]] = key.decode()
    return found


def run_records(client: redis.Redis) -> set[str]:
    return {k.decode().rsplit(":", 1)[1] for k in client.scan_iter("marketq:run:*")}


@contextlib.contextmanager
def redis_down(stack: Stack) -> Iterator[None]:
    """Stop redis-server; start it again on the same port, with the data it had.

    The test Redis runs without persistence; production Redis keeps its data over a
    restart (AOF/RDB), which SAVE before the stop stands in for. The snapshot is removed
    after the restart so no later test of this session reloads it.
    """
    stack.redis.client().save()
    stack.redis.stop()
    try:
        yield
    finally:
        stack.redis.start()
        (stack.redis.workdir / "dump.rdb").unlink(missing_ok=True)


def test_a_redis_outage_is_a_fast_503_and_the_api_recovers_by_itself(
    stack: Stack, api: ApiProcess
) -> None:
    r = stack.redis.client()
    with api.client("trigger") as client:
        accepted = []
        for _ in range(3):
            response = client.post(RUN, json=BODY)
            assert response.status_code == 202, response.text
            accepted.append(response.json()["run_id"])
        batch = client.post("/api/v1/runs:batch", json={"runs": [{"job": "news"}] * 2})
        assert batch.status_code == 200 and batch.json()["accepted"] == 2, batch.text
        accepted += [item["run"]["run_id"] for item in batch.json()["results"]]
        assert set(messages_in_redis(r)) == set(accepted)

        with redis_down(stack):
            attempts = {
                "trigger": lambda: client.post(RUN, json=BODY),
                "trigger with Idempotency-Key": lambda: client.post(
                    RUN, json=BODY, headers={"Idempotency-Key": "during-outage"}
                ),
                "batch": lambda: client.post(
                    "/api/v1/runs:batch", json={"runs": [{"job": "news"}]}
                ),
                "status": lambda: client.get(f"/api/v1/runs/{accepted[0]}"),
            }
            for what, attempt in attempts.items():
                response, seconds = timed(attempt)
                assert seconds < BOUND_SECONDS, f"{what} took {seconds:.2f} s"
                assert_unavailable(response, "broker_unavailable")

            ready, seconds = timed(lambda: client.get("/readyz"))
            assert seconds < BOUND_SECONDS, f"/readyz took {seconds:.2f} s"
            assert ready.status_code == 503, ready.text
            checks = ready.json()["checks"]
            assert checks["redis"]["ok"] is False and checks["redis"]["error"]
            assert checks["database"]["ok"] is True
            assert client.get("/livez").status_code == 200  # alive: no restart wanted

        # Same process, no restart: the first request after Redis is back succeeds.
        assert api.process.poll() is None
        recovered = client.post(RUN, json=BODY)
        assert recovered.status_code == 202, recovered.text
        assert client.get("/readyz").status_code == 200

        # Every 202 from before the outage is still there; nothing answered 503 is.
        in_redis = messages_in_redis(r)
        assert set(in_redis) == {*accepted, recovered.json()["run_id"]}
        assert run_records(r) == set(in_redis)
        assert not list(r.scan_iter("marketq:idempotency:*"))
        # The key of the refused request was never claimed: it publishes now, not replays.
        retried = client.post(RUN, json=BODY, headers={"Idempotency-Key": "during-outage"})
        assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers
    assert "Traceback" not in api.log_text()  # handled as an outage, not as a crash


class Relay:
    """A TCP relay on a fixed loopback port: ``cut()`` closes it and every connection
    through it (the database is gone); ``restore()`` listens on the same port again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by cut()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def relayed_postgres(postgres_admin_url: str) -> Iterator[tuple[str, Relay]]:
    """A fresh migrated PostgreSQL database, and its URL through a relay the test controls."""
    from sqlalchemy.engine import make_url

    name = f"outage_{time.monotonic_ns()}"
    direct = create_database(postgres_admin_url, name)
    upgrade(direct)
    parsed = make_url(direct)
    relay = Relay(parsed.host or "127.0.0.1", parsed.port or 5432)
    relay.restore()
    try:
        yield parsed.set(port=relay.port).render_as_string(hide_password=False), relay
    finally:
        relay.cut()
        drop_database(postgres_admin_url, name)


@pytest.mark.postgres
def test_a_database_outage_is_a_fast_503_and_the_api_recovers_by_itself(
    stack: Stack, relayed_postgres: tuple[str, Relay]
) -> None:
    database_url, relay = relayed_postgres
    api = start_api(stack, {"MARKETQ_DATABASE_URL": database_url})
    try:
        with api.client("trigger") as client:
            assert client.get("/api/v1/runs").status_code == 200  # pooled connections exist
            run_id = client.post(RUN, json=BODY).json()["run_id"]

            relay.cut()
            history, seconds = timed(lambda: client.get("/api/v1/runs"))
            assert seconds < BOUND_SECONDS, f"GET /runs took {seconds:.2f} s"
            assert_unavailable(history, "database_unavailable")
            assert_unavailable(client.get(f"/api/v1/runs/{run_id}"), "database_unavailable")

            ready = client.get("/readyz")
            assert ready.status_code == 503, ready.text
            checks = ready.json()["checks"]
            assert checks["database"]["ok"] is False and checks["redis"]["ok"] is True
            assert client.get("/livez").status_code == 200
            # Publishing needs Redis only: triggering still works, and is 202 for real.
            during = client.post(RUN, json=BODY)
            assert during.status_code == 202, during.text
            assert during.json()["run_id"] in messages_in_redis(stack.redis.client())

            relay.restore()
            assert api.process.poll() is None
            assert client.get("/api/v1/runs").status_code == 200
            assert client.get(f"/api/v1/runs/{run_id}").json()["state"] == "QUEUED"
            assert client.get("/readyz").status_code == 200
    finally:
        api.stop()


def test_an_unreachable_database_at_startup_is_503_not_a_crash(stack: Stack) -> None:
    """The database URL names a server that is not there (not up yet, wrong host)."""
    nobody = f"postgresql+psycopg://marketq:secret@127.0.0.1:{free_port()}/marketq"
    api = start_api(stack, {"MARKETQ_DATABASE_URL": nobody})
    try:
        with api.client("read") as client:
            response, seconds = timed(lambda: client.get("/api/v1/runs"))
            assert seconds < BOUND_SECONDS, f"GET /runs took {seconds:.2f} s"
            assert_unavailable(response, "database_unavailable")
            assert client.get("/readyz").status_code == 503
            assert client.get("/livez").status_code == 200
            assert "secret" not in response.text  # the URL's password is never shown
    finally:
        api.stop()
