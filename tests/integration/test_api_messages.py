"""The API's fast publish path: its messages are Celery's own, and its one-script submit
keeps every promise of the slow path (rate limit, idempotency, a 202 only once the
message is in Redis) when many submits share one EVALSHA.

Real redis-server; the worker test runs a real worker on the messages.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import redis
from celery import Celery
from celery.utils.saferepr import saferepr
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError

from marketq.api.publisher import (
    ExistingRun,
    IdempotencyClaim,
    RateLimited,
    RunPublisher,
)
from marketq.api.ratelimit import window
from marketq.api.schemas import BatchResponse, RunAccepted
from marketq.common.catalog import CATALOG
from marketq.common.celery_app import create_celery_app
from marketq.common.messages import kwargs_repr, queue_key
from marketq.common.publish import PreparedRun, prepare_run
from marketq.common.settings import Settings
from tests.fixtures.api import ApiProcess, start_api
from tests.fixtures.ports import free_port
from tests.fixtures.redis import RedisServer
from tests.fixtures.workers import Stack

pytestmark = pytest.mark.integration

PREFIX = "marketq:"


@pytest.fixture
def settings_(redis_url: str) -> Settings:
    return Settings(redis_url=redis_url)


@pytest.fixture
def app(settings_: Settings) -> Iterator[Celery]:
    app = create_celery_app("marketq-api", settings=settings_)
    yield app
    app.close()


def celery_message(app: Celery, run: PreparedRun) -> dict[str, Any]:
    """The reference: Celery's own as_task_v2 (with saferepr) in kombu's Redis envelope,
    as the API published before the fast path."""
    task = app.amqp.as_task_v2(
        run.run_id,
        run.job.name,
        args=(),
        kwargs=run.params,
        eta=run.eta,
        expires=run.expires,
        origin="marketq-api",
    )
    return {
        "body": list(json.loads(json.dumps(task.body))),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": json.loads(json.dumps({**task.headers, **run.headers})),
        "properties": {
            "correlation_id": run.run_id,
            "reply_to": None,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": run.queue.value},
            "priority": run.priority or 0,
            "body_encoding": "base64",
        },
    }


def decoded(message: str) -> dict[str, Any]:
    parsed = json.loads(message)
    parsed["body"] = json.loads(base64.b64decode(parsed["body"]))
    assert parsed["properties"].pop("delivery_tag")  # a fresh uuid per message
    return dict(parsed)


def variants(settings_: Settings) -> Iterator[PreparedRun]:
    for name in CATALOG:
        yield prepare_run(name, dict(CATALOG[name].example), settings=settings_)
    yield prepare_run(
        "stock_quotes", {"symbols": ["AAPL"]}, countdown=30, priority=7, settings=settings_
    )
    yield prepare_run(
        "health_check",
        {},
        eta=datetime.now(UTC) + timedelta(seconds=5),
        queue="daily",
        priority=1,
        settings=settings_,
    )


def test_every_jobs_message_is_what_celerys_own_builder_gives(
    app: Celery, settings_: Settings, redis_server: RedisServer
) -> None:
    publisher = RunPublisher(app, AsyncRedis.from_url(settings_.effective_broker_url), settings_)
    runs = list(variants(settings_))
    assert (
        any(r.eta for r in runs) and any(r.expires for r in runs) and any(r.priority for r in runs)
    )
    for run in runs:
        encoded = publisher.encode(run)
        assert decoded(encoded.message) == celery_message(app, run), run.job.name
        assert encoded.queue_key == queue_key(PREFIX, run.queue.value, run.priority)

    # And against what Celery's own send_task really puts in Redis, for every variant: the
    # whole envelope (body, headers, properties) is the same, except where marketq is not
    # a Celery client (origin: the hostname; ignore_result: None vs False; the random
    # delivery tag). This is the gate for upgrading Celery or kombu.
    for run in runs:
        redis_server.client().flushall()
        options: dict[str, Any] = {
            "kwargs": run.params,
            "task_id": run.run_id,
            "queue": run.queue.value,
            "routing_key": run.queue.value,
            "headers": dict(run.headers),
            "retry": False,
        }
        if run.eta is not None:
            options["eta"] = run.eta
        if run.expires is not None:
            options["expires"] = run.expires
        if run.priority is not None:
            options["priority"] = run.priority
        app.send_task(run.job.name, **options)
        lists = [
            k
            for k in redis_server.client().scan_iter(f"{PREFIX}*")
            if redis_server.client().type(k) == b"list"
        ]
        assert lists == [encoded_key(publisher, run)], run.job.name
        sent = decoded(redis_server.client().lrange(lists[0], 0, -1)[0].decode())
        ours = decoded(publisher.encode(run).message)
        assert ours["body"] == sent["body"], run.job.name
        assert set(ours["headers"]) == set(sent["headers"])
        differ = {k for k in sent["headers"] if sent["headers"][k] != ours["headers"][k]}
        assert differ <= {"origin", "ignore_result"}, differ
        assert {k: v for k, v in sent.items() if k not in {"body", "headers", "properties"}} == {
            k: v for k, v in ours.items() if k not in {"body", "headers", "properties"}
        }
        # Not compared: the random delivery tag; reply_to (Celery names its result
        # consumer for RPC-style backends; marketq's results live in Redis keys, which the
        # worker writes whatever reply_to says); expiration (AMQP's per-message TTL, which
        # kombu's Redis transport ignores: the worker discards a late run by its `expires`
        # header, compared above).
        unused = {"delivery_tag", "reply_to", "expiration"}
        sent_props = {k: v for k, v in sent["properties"].items() if k not in unused}
        ours_props = {k: v for k, v in ours["properties"].items() if k not in unused}
        assert ours_props == sent_props, run.job.name
        assert ours["headers"]["marketq_enqueued_at"] == run.enqueued_at.timestamp()


def encoded_key(publisher: RunPublisher, run: PreparedRun) -> bytes:
    return publisher.encode(run).queue_key.encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=60,
)


@settings(max_examples=600, deadline=None)
@given(
    st.dictionaries(st.text(max_size=10), json_values, max_size=8), st.sampled_from([40, 200, 1024])
)
def test_kwargs_repr_is_celerys_saferepr(kwargs: dict[str, Any], maxsize: int) -> None:
    assert kwargs_repr(kwargs, maxsize, 3) == saferepr(kwargs, maxsize, maxlevels=3)


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


async def _publisher(url: str, app: Celery) -> tuple[RunPublisher, AsyncRedis]:
    client = AsyncRedis.from_url(url)
    return RunPublisher(app, client, Settings(redis_url=url)), client


def messages(server: RedisServer) -> list[dict[str, Any]]:
    client = server.client()
    return [
        json.loads(raw)
        for key in client.scan_iter(f"{PREFIX}*")
        if client.type(key) == b"list"
        for raw in client.lrange(key, 0, -1)
    ]


def evalsha_calls(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_submits_of_one_loop_iteration_share_one_evalsha_and_each_gets_its_run(
    app: Celery, settings_: Settings, redis_server: RedisServer
) -> None:
    async def scenario() -> list[Any]:
        publisher, client = await _publisher(redis_server.url, app)
        # Load the script first, so the count below is of submits only.
        await publisher.submit(
            prepare_run("news", {}, settings=settings_), window(PREFIX, "warm", 10**6)
        )
        redis_server.client().flushall()
        redis_server.client().config_resetstat()
        runs = [
            prepare_run("stock_quotes", {"symbols": [f"S{i}"]}, settings=settings_)
            for i in range(40)
        ]
        limit = window(PREFIX, "k", 10**6)
        outcomes = await asyncio.gather(*(publisher.submit(r, limit) for r in runs))
        await client.aclose()
        return [runs, outcomes]

    runs, outcomes = run_async(scenario())
    assert outcomes == [None] * 40
    assert evalsha_calls(redis_server.client()) == 1
    in_redis = {m["headers"]["id"] for m in messages(redis_server)}
    assert in_redis == {r.run_id for r in runs}
    client = redis_server.client()
    assert all(client.exists(f"{PREFIX}run:{r.run_id}") for r in runs)
    counters = client.keys(f"{PREFIX}ratelimit:k:*")  # one window, or two if it rolled
    assert sum(int(client.get(key) or 0) for key in counters) == 40  # each submit counted


def test_the_rate_limit_inside_the_script_refuses_exactly_the_excess(
    app: Celery, settings_: Settings, redis_server: RedisServer
) -> None:
    async def scenario() -> list[Any]:
        publisher, client = await _publisher(redis_server.url, app)
        limit = window(PREFIX, "small", 5)
        runs = [prepare_run("news", {}, settings=settings_) for _ in range(12)]
        outcomes = await asyncio.gather(*(publisher.submit(r, limit) for r in runs))
        await client.aclose()
        return list(outcomes)

    if 60 - time.time() % 60 < 3:  # do not straddle a window boundary
        time.sleep(60 - time.time() % 60 + 0.05)
    outcomes = run_async(scenario())
    assert outcomes[:5] == [None] * 5
    assert all(isinstance(o, RateLimited) for o in outcomes[5:])
    assert len(messages(redis_server)) == 5


def test_one_idempotency_key_in_many_concurrent_submits_publishes_once(
    app: Celery, settings_: Settings, redis_server: RedisServer
) -> None:
    async def scenario() -> tuple[list[PreparedRun], list[Any]]:
        publisher, client = await _publisher(redis_server.url, app)
        limit = window(PREFIX, "k", 10**6)
        claim = IdempotencyClaim(
            key=f"{PREFIX}idempotency:k:same", fingerprint="f1", ttl_seconds=60
        )
        other = IdempotencyClaim(
            key=f"{PREFIX}idempotency:k:same", fingerprint="f2", ttl_seconds=60
        )
        runs = [prepare_run("news", {}, settings=settings_) for _ in range(20)]
        outcomes = await asyncio.gather(
            *(publisher.submit(r, limit, claim if i % 4 else other) for i, r in enumerate(runs))
        )
        await client.aclose()
        return runs, list(outcomes)

    runs, outcomes = run_async(scenario())
    # The first in the script claims the key; every other sees the run it names.
    assert outcomes[0] is None
    assert all(o == ExistingRun(runs[0].run_id, "f2") for o in outcomes[1:])
    assert [m["headers"]["id"] for m in messages(redis_server)] == [runs[0].run_id]


def test_a_redis_failure_reaches_every_coalesced_submit_and_publishes_nothing(
    app: Celery, settings_: Settings
) -> None:
    async def scenario() -> list[Any]:
        client = AsyncRedis(port=free_port(), socket_connect_timeout=1)  # nothing listens
        publisher = RunPublisher(app, client, settings_)
        limit = window(PREFIX, "k", 100)
        runs = [prepare_run("news", {}, settings=settings_) for _ in range(8)]
        outcomes = await asyncio.gather(
            *(publisher.submit(r, limit) for r in runs), return_exceptions=True
        )
        await client.aclose()
        return list(outcomes)

    outcomes = run_async(scenario())
    assert len(outcomes) == 8
    assert all(isinstance(o, RedisConnectionError) for o in outcomes), outcomes
    assert len({id(o) for o in outcomes}) == 8  # each request raises its own error


def test_batch_pushes_every_queue_in_order_with_records(
    app: Celery, settings_: Settings, redis_server: RedisServer
) -> None:
    runs = [
        prepare_run("stock_quotes", {"symbols": [f"S{i}"]}, settings=settings_) for i in range(1500)
    ]
    runs += [prepare_run("news", {}, settings=settings_) for _ in range(3)]
    runs += [prepare_run("stock_quotes", {}, priority=6, settings=settings_) for _ in range(2)]

    async def scenario() -> None:
        publisher, client = await _publisher(redis_server.url, app)
        await publisher.publish(runs)
        await client.aclose()

    run_async(scenario())
    client = redis_server.client()
    consumed_first = [
        json.loads(m)["headers"]["id"]
        for m in reversed(client.lrange(f"{PREFIX}market_hours", 0, -1))
    ]
    assert consumed_first == [r.run_id for r in runs[:1500]]  # BRPOP takes them in order
    assert client.llen(f"{PREFIX}periodic") == 3
    assert client.llen(f"{PREFIX}market_hours\x06\x166") == 2
    assert all(client.ttl(f"{PREFIX}run:{r.run_id}") > 0 for r in runs)


# --- over HTTP, with a real worker --------------------------------------------------


def test_a_worker_runs_fast_path_messages_with_eta_priority_and_expiry(
    stack: Stack, api: ApiProcess
) -> None:
    stack.start_worker("daily", name="fast@x")
    bodies = [
        ("health_check", {"params": {}, "countdown": 1, "priority": 3, "queue": "daily"}),
        ("health_check", {"params": {}, "queue": "daily"}),
    ]
    with api.client("trigger") as client:
        run_ids = []
        for job, body in bodies:
            response = client.post(f"/api/v1/jobs/{job}/runs", json=body)
            assert response.status_code == 202, response.text
            run_ids.append(response.json()["run_id"])
    finished = stack.wait_for_states(run_ids, {"SUCCESS", "FAILURE"}, timeout=90)
    assert all(finished[r].state == "SUCCESS" for r in run_ids), finished


def test_concurrent_http_submits_each_get_their_run_and_all_are_in_redis(
    stack: Stack, api: ApiProcess
) -> None:
    def post(i: int) -> Any:
        with api.client("trigger") as client:
            return client.post(
                "/api/v1/jobs/stock_quotes/runs", json={"params": {"symbols": [f"C{i}"]}}
            )

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(post, range(64)))
    assert [r.status_code for r in responses] == [202] * 64
    run_ids = [r.json()["run_id"] for r in responses]
    assert len(set(run_ids)) == 64
    client = stack.redis.client()
    queued = {
        json.loads(m)["headers"]["id"]: json.loads(m)
        for m in client.lrange("marketq:market_hours", 0, -1)
    }
    assert set(queued) == set(run_ids)
    for response in responses:  # each answer names its own params' run
        run_id = response.json()["run_id"]
        kwargs = json.loads(base64.b64decode(queued[run_id]["body"]))[1]
        assert client.exists(f"marketq:run:{run_id}")
        assert kwargs["symbols"][0].startswith("C")


def test_concurrent_http_replays_of_one_key_share_one_run(stack: Stack, api: ApiProcess) -> None:
    def post(_: int) -> Any:
        with api.client("trigger") as client:
            return client.post(
                "/api/v1/jobs/stock_quotes/runs",
                json={"params": {"symbols": ["AAPL"]}},
                headers={"Idempotency-Key": "fan-out-1"},
            )

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(post, range(24)))
    assert [r.status_code for r in responses] == [202] * 24
    assert len({r.json()["run_id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 23
    assert stack.redis.client().llen("marketq:market_hours") == 1


def test_submit_rate_limit_counts_refused_requests_and_answers_429(stack: Stack) -> None:
    limited = start_api(stack, {"MARKETQ_API_RATE_LIMIT_PER_MINUTE": "4"})
    try:
        if 60 - time.time() % 60 < 10:
            time.sleep(60 - time.time() % 60 + 0.05)
        url = "/api/v1/jobs/stock_quotes/runs"
        with limited.client("trigger") as client:
            ok = client.post(url, json={"params": {"symbols": ["AAPL"]}})
            bad_params = client.post(url, json={"params": {"symbols": ["not a symbol"]}})
            bad_body = client.post(url, json={"parms": {}})
            unknown = client.post("/api/v1/jobs/nope/runs", json={})
            refused = client.post(url, json={"params": {"symbols": ["AAPL"]}})
            refused_invalid = client.post(url, json={"parms": {}})
        assert [
            ok.status_code,
            bad_params.status_code,
            bad_body.status_code,
            unknown.status_code,
        ] == [
            202,
            422,
            422,
            404,
        ]
        for response in (refused, refused_invalid):  # the 429 wins, as on every route
            assert response.status_code == 429, response.text
            assert response.json()["error"]["code"] == "rate_limited"
            retry_after = response.headers["retry-after"]
            assert retry_after.isdigit() and 1 <= int(retry_after) <= 60
        assert stack.redis.client().llen("marketq:market_hours") == 1
    finally:
        limited.stop()


def test_answers_built_without_models_are_what_the_models_would_send(
    stack: Stack, api: ApiProcess
) -> None:
    eta = (datetime.now(timezone(timedelta(hours=2))) + timedelta(seconds=60)).isoformat()
    with api.client("trigger") as client:
        single = client.post("/api/v1/jobs/news/runs", json={"params": {}, "countdown": 30})
        batch = client.post(
            "/api/v1/runs:batch",
            json={"runs": [{"job": "news", "eta": eta}, {"job": "nope"}]},
        )
    assert single.status_code == 202 and batch.status_code == 200
    assert single.headers["content-type"] == "application/json"
    assert single.headers["Location"] == single.json()["status_url"]
    for response, model in ((single, RunAccepted), (batch, BatchResponse)):
        body = response.json()
        assert model.model_validate(body).model_dump(mode="json") == body
    assert single.json()["eta"].endswith("Z")
    first = batch.json()["results"][0]["run"]
    assert first["eta"] == eta and first["enqueued_at"].endswith("Z")
    assert batch.json()["results"][1]["error"]["code"] == "unknown_job"
