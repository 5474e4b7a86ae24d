"""Completion webhooks end to end: real uvicorn, Redis, Celery workers and a real HTTP
receiver on loopback that checks signatures and deduplicates by event id."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from marketq.api.auth import hash_key
from tests.fixtures.api import KEYS, ApiProcess, start_api
from tests.fixtures.workers import Stack

# Each test starts an API and workers and runs pipelines over stored data: a bound for a
# loaded, shared machine, not a timing assertion.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SECRET = "whsec_test_0123456789"


@dataclass
class Received:
    event_id: str
    signature: str
    body: bytes


@dataclass
class Receiver:
    """What a subscriber does: verify the signature, apply each event once (by id), and
    here, answer 500 to the first request of every event after applying it — the case
    where the sender cannot know the effect happened and must retry."""

    requests: list[Received] = field(default_factory=list)
    applied: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: Any, body: bytes) -> int:
        received = Received(headers["Marketq-Event-Id"], headers["Marketq-Signature"], body)
        parts = dict(p.split("=", 1) for p in received.signature.split(","))
        expected = hmac.new(
            SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        with self.lock:
            self.requests.append(received)
            fresh = abs(time.time() - int(parts["t"])) < 300
            if not (fresh and hmac.compare_digest(expected, parts["v1"])):
                self.bad_signatures += 1
                return 400
            first = received.event_id not in self.applied
            if first:
                self.applied[received.event_id] = json.loads(body)
            return 500 if first else 200

    def of(self, event_id: str) -> list[Received]:
        return [r for r in self.requests if r.event_id == event_id]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = state.handle(self.headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()
    server.server_close()
    thread.join()


def wait_delivered(client: httpx.Client, path: str, count: int, timeout: float = 180) -> list[Any]:
    deadline = time.monotonic() + timeout
    deliveries: list[Any] = []
    while time.monotonic() < deadline:
        deliveries = client.get(path).json()
        if len(deliveries) >= count and all(d["state"] != "pending" for d in deliveries):
            return deliveries
        time.sleep(0.5)
    raise AssertionError(f"{path}: not delivered after {timeout} s: {deliveries}")


def keys_with_target(url: str) -> str:
    keys = []
    for scope, key in KEYS.items():
        entry: dict[str, Any] = {"name": f"{scope}-key", "sha256": hash_key(key), "scopes": [scope]}
        if scope == "trigger":
            entry["webhooks"] = {"ops": {"url": url, "events": ["SUCCESS", "FAILED"]}}
        keys.append(entry)
    return json.dumps(keys)


def test_a_webhook_is_signed_retried_after_a_500_and_applied_once(
    stack: Stack, receiver: tuple[Receiver, str]
) -> None:
    received, url = receiver
    stack.set_env(MARKETQ_WEBHOOK_SECRET=SECRET, MARKETQ_WEBHOOK_ALLOWED_HOSTS="127.0.0.1")
    stack.start_worker("default", name="default@hooks")
    stack.start_worker("daily", name="daily@hooks")
    api: ApiProcess = start_api(stack, {"MARKETQ_API_KEYS": keys_with_target(url)})
    try:
        with api.client("trigger") as client:
            # Refused before anything is stored: the field is named.
            for bad in (
                "http://169.254.169.254/latest/meta-data/",  # metadata (host not allowed either)
                "http://hooks.example.com/x",  # not an allowed host
                "ftp://127.0.0.1/x",
            ):
                refused = client.post(
                    "/api/v1/jobs/health_check/runs", json={"notify": {"url": bad}}
                )
                assert refused.status_code == 422, refused.text
                assert refused.json()["error"]["details"][0]["field"] == "notify.url"

            run = client.post(
                "/api/v1/jobs/health_check/runs", json={"params": {}, "notify": {"url": url}}
            ).json()
            deliveries = wait_delivered(client, f"/api/v1/runs/{run['run_id']}/webhooks", 1)
            [delivery] = deliveries
            assert delivery["state"] == "delivered" and delivery["attempts"] == 2
            assert delivery["last_status"] == 200 and delivery["event_type"] == "run.success"

            # A pipeline run announces its end through the key's named target.
            pipeline = client.post(
                "/api/v1/pipelines/end_of_day/runs",
                json={"params": {"symbols": ["AAPL"]}, "notify": {"target": "ops"}},
            ).json()
            pipeline_path = f"/api/v1/pipeline-runs/{pipeline['pipeline_run_id']}/webhooks"
            [announced] = wait_delivered(client, pipeline_path, 1)
            assert announced["event_type"] == "pipeline_run.success"
            assert announced["state"] == "delivered"
    finally:
        api.stop()

    # Each event: two requests (the 500, then the retry), one signature scheme, one effect.
    assert received.bad_signatures == 0
    run_event = received.of(delivery["event_id"])
    assert len(run_event) == 2 and run_event[0].body == run_event[1].body
    assert len(received.applied) == 2
    payload = received.applied[delivery["event_id"]]
    assert payload["id"] == delivery["event_id"] and payload["type"] == "run.success"
    assert payload["data"]["run_id"] == run["run_id"] and payload["data"]["state"] == "SUCCESS"
    pipeline_payload = received.applied[announced["event_id"]]
    assert pipeline_payload["data"]["pipeline"] == "end_of_day"
    assert pipeline_payload["data"]["state"] == "SUCCESS"
