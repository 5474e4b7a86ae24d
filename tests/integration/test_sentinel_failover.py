"""Redis Sentinel end to end: the primary dies while runs flow, and nothing is lost or
run twice.

Real processes throughout (tests/fixtures/sentinel.py): a primary with a replica and
three sentinels (quorum 2, down after 1 s). Two `marketq-worker` processes (the chaos
app, which journals every execution to a file) and a producer reach Redis only through
``sentinel://`` URLs. The primary is SIGKILLed mid-flow; the sentinels promote the
replica; every run the producer was told was accepted must end SUCCESS with exactly one
recorded completion (as tests/integration/test_broker_restarts.py counts them).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
import yaml
from celery import Celery

from marketq.common.publish import publish
from marketq.common.redis_client import async_redis_client, broker_client, redis_client
from marketq.common.scheduling.schedules import ENTRY_HEADER, SCHEDULED_FOR_HEADER
from marketq.common.settings import Settings
from tests.fixtures.api import start_api
from tests.fixtures.beat import FAST_BEAT, BeatFleet
from tests.fixtures.sentinel import MASTER, SentinelGroup
from tests.fixtures.workers import CHAOS_APP, Stack, WorkerProcess, stack_on_url
from tests.support.chaos_app import read_journal

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

MINUTE0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@pytest.fixture
def sentinel_stack(
    sentinel_group: SentinelGroup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    with stack_on_url(
        sentinel_group.url,
        sentinel_group.primary,
        tmp_path,
        monkeypatch,
        MARKETQ_REDIS_SENTINEL_MASTER=MASTER,
        MARKETQ_UNACKED_RESTORE_INTERVAL_SECONDS="1",
        # A write the primary acknowledged but had not yet replicated is gone after the
        # failover; the reconciler re-publishes a QUEUED run whose message is gone.
        MARKETQ_RECONCILE_INTERVAL_SECONDS="2",
        MARKETQ_RECONCILE_QUEUED_AFTER_SECONDS="10",
        CHAOS_JOURNAL=str(tmp_path / "journal"),
        **{
            f"MARKETQ_QUEUES__{q.upper()}__MAX_TIME_LIMIT_SECONDS": "8"
            for q in ("market_hours", "daily", "periodic", "default")
        },
        MARKETQ_VISIBILITY_TIMEOUT_MARGIN_SECONDS="2",
    ) as stack:
        yield stack


def test_primary_killed_mid_flow_every_accepted_run_completes_once(
    sentinel_group: SentinelGroup, sentinel_stack: Stack
) -> None:
    stack = sentinel_stack
    workers = [
        stack.start_worker(
            "market_hours",
            name=f"w{i}@sentinel",
            app=CHAOS_APP,
            concurrency=2,
            extra_env={"CHAOS_PRERUN_SLEEP": "0.5"},
            wait_ready=False,
        )
        for i in range(2)
    ]
    for worker in workers:
        worker.wait_ready(timeout=180)
    producer: Celery = stack.producer()

    accepted: list[str] = []
    refused = 0
    counter = itertools.count()

    def publish_for(seconds: float) -> None:
        nonlocal refused
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            i = next(counter)
            as_of = (MINUTE0 + timedelta(minutes=i)).isoformat()
            try:
                run = publish(producer, "stock_quotes", {"symbols": [f"S{i:04d}"], "as_of": as_of})
            except Exception:  # no master right now: the producer was told no
                refused += 1
            else:
                accepted.append(run.run_id)
            time.sleep(0.1)

    publish_for(4)
    before = len(accepted)
    assert before >= 10
    done_at_kill = sum(read_journal(stack.env["CHAOS_JOURNAL"])["finished"].values())
    sentinel_group.kill_primary()
    publish_for(4)  # mostly refused while the sentinels agree the primary is down
    sentinel_group.wait_failover(timeout=30)
    publish_for(4)
    assert len(accepted) > before + 5, "nothing was accepted after the failover"

    # Each run takes ~0.5 s on four slots; a lost message is re-published after 10 s.
    finished = stack.wait_for_states(accepted, {"SUCCESS", "FAILURE", "REVOKED"}, timeout=90)
    not_successful = {
        r: (finished[r].state, finished[r].error)
        for r in accepted
        if finished[r].state != "SUCCESS"
    }
    assert not_successful == {}, _log_lines(workers, not_successful)

    # Counted as tests/integration/test_broker_restarts.py counts them: a run whose
    # SUCCESS was stored ran to that end once; a completion the primary died under before
    # its SUCCESS was stored is in no record, so that run (an upsert) ran once more.
    journal = read_journal(stack.env["CHAOS_JOURNAL"])
    recorded = {r: journal["recorded"].get(r, 0) for r in accepted}
    unrecorded = {r: journal["finished"].get(r, 0) - recorded[r] for r in accepted}
    twice = {r: n for r, n in recorded.items() if n > 1}
    twice |= {r: n for r, n in unrecorded.items() if n not in (0, 1)}
    assert done_at_kill < before, "no run was waiting or running at the kill: proved nothing"
    restarted = sorted(r for r in accepted if journal["started"].get(r, 0) > 1)

    # The workers are alive, on the new master, and hold nothing.
    for worker in workers:
        assert worker.process is not None and worker.process.poll() is None, worker.log_text()[
            -3000:
        ]
    later = publish(producer, "health_check", {"check_database": False}, queue="market_hours")
    stack.wait_for_states([later.run_id], {"SUCCESS"}, timeout=30)
    new_master = sentinel_group.replica.client()
    stack.wait_for(
        lambda: new_master.hlen("marketq:unacked") == 0, 20, "no message held on the new master"
    )
    print(
        f"accepted {len(accepted)} ({before} before the kill, {before - done_at_kill} of them "
        f"not yet done), refused during the failover {refused}, started again after "
        f"being interrupted {len(restarted)}"
    )
    assert twice == {}, f"a run ran to completion twice\n{_log_lines(workers, twice)}"


def _log_lines(workers: list[WorkerProcess], runs: Mapping[str, object]) -> str:
    """Every worker log line that names one of ``runs``: what a failure needs to be read."""
    return "\n".join(
        f"{worker.hostname}: {line[:600]}"
        for worker in workers
        for line in worker.log_text().splitlines()
        if any(r in line for r in runs)
    )


def test_every_redis_client_follows_the_failover(sentinel_group: SentinelGroup) -> None:
    """The factory's clients (the ledger writer's, reconciler's, CLI's: sync; the API's:
    asyncio, with its Lua scripts, XADD and SET NX) and RedBeat's lock client reach the
    primary, then the promoted replica, without being rebuilt."""
    from redbeat.schedulers import get_redis

    from marketq.beat.app import redbeat_config

    settings = Settings(redis_url=sentinel_group.url, redis_sentinel_master=MASTER)
    sync = broker_client(settings)
    quota = redis_client(settings.redis_url, settings, socket_timeout=2)
    beat_app = Celery("sentinel-redbeat", set_as_current=False)
    beat_app.conf.update(redbeat_config(settings))
    lock_client = get_redis(beat_app)
    script = "return redis.call('INCR', KEYS[1])"
    with asyncio.Runner() as runner:
        api = async_redis_client(settings.redis_url, settings, socket_timeout=2)
        incr = api.register_script(script)

        async def api_round(key: str) -> tuple[object, object, object]:
            return (
                await incr(keys=[key]),
                await api.xadd("marketq:events", {"k": key}),
                await api.set(f"idem:{key}", "1", nx=True, ex=60),
            )

        def round_trip(tag: str) -> None:
            assert sync.set(f"sync:{tag}", tag)
            assert quota.incr(f"quota:{tag}") == 1
            assert lock_client.set(f"lock:{tag}", tag, nx=True, px=60_000)
            first, _event, idem = runner.run(api_round(f"api:{tag}"))
            assert first == 1 and idem

        round_trip("before")
        assert sentinel_group.primary.client().get("sync:before") == b"before"
        sentinel_group.wait_replica_caught_up()
        sentinel_group.kill_primary()
        sentinel_group.wait_failover(timeout=30)

        # redis-py drops the dead primary's connections on first use: a command may fail
        # once per client, then the same client reaches the new master. A fresh tag per
        # attempt keeps the checks exact.
        deadline = time.monotonic() + 20
        for attempt in itertools.count():
            tag = f"after{attempt}"
            try:
                round_trip(tag)
                break
            except (redis.RedisError, OSError):
                assert time.monotonic() < deadline, "a client never reached the new master"
                time.sleep(0.2)
        runner.run(api.aclose())
    promoted = sentinel_group.replica.client()
    assert promoted.get(f"sync:{tag}") == tag.encode()
    assert promoted.get("sync:before") == b"before"  # replicated before the kill
    assert promoted.get(f"lock:{tag}") == tag.encode()
    assert promoted.get(f"api:{tag}") == b"1"
    assert promoted.xlen("marketq:events") >= 2


def _probe_fires(client: redis.Redis, entry: str) -> list[float]:
    """Scheduled instants of the messages beat published for ``entry`` on this server."""
    fires = []
    for key in client.scan_iter(match="marketq:default*"):
        if client.type(key) != b"list":
            continue
        for raw in client.lrange(key, 0, -1):
            headers = json.loads(raw)["headers"]
            if headers.get(ENTRY_HEADER) == entry:
                fires.append(float(headers[SCHEDULED_FOR_HEADER]))
    return fires


def test_api_and_beat_processes_work_on_the_promoted_replica(
    sentinel_group: SentinelGroup, sentinel_stack: Stack
) -> None:
    """A real `marketq-api` (its submit script, idempotency keys) and `marketq-beat`
    (RedBeat's lock, its fires) on a sentinel:// URL: both carry on on the new master
    after the primary is killed, without a restart."""
    stack = sentinel_stack
    schedule = stack.logdir.parent / "schedule.yaml"
    schedule.write_text(
        yaml.safe_dump({"entries": {"probe": {"job": "health_check", "every_seconds": 1}}})
    )
    stack.set_env(**FAST_BEAT, MARKETQ_SCHEDULE_FILE=str(schedule))
    api = start_api(stack)
    fleet = BeatFleet(stack=stack, env=stack.env)
    try:
        beat = fleet.start("beat@sentinel")
        fleet.holder(timeout=30)
        body = {"params": {"symbols": ["AAPL"]}}
        with api.client("trigger") as client:
            before = client.post(
                "/api/v1/jobs/stock_quotes/runs", json=body, headers={"Idempotency-Key": "before"}
            )
            assert before.status_code == 202, before.text
            stack.wait_for(
                lambda: _probe_fires(sentinel_group.primary.client(), "probe"), 15, "a beat fire"
            )
            sentinel_group.wait_replica_caught_up()
            sentinel_group.kill_primary()
            killed_at = time.time()
            sentinel_group.wait_failover(timeout=30)

            def accepted_after() -> httpx.Response | None:
                response = client.post(
                    "/api/v1/jobs/stock_quotes/runs",
                    json={"params": {"symbols": ["MSFT"]}},
                    headers={"Idempotency-Key": "after"},
                )
                if response.status_code == 503:  # the API's answer while no master is known
                    return None
                return response

            after = stack.wait_for(accepted_after, 30, "the API to accept a run again")
            assert after.status_code == 202, after.text
            # The idempotency keys live on the new master: the one written before the kill
            # (replicated) and the one written after both replay their run.
            again = client.post(
                "/api/v1/jobs/stock_quotes/runs", json=body, headers={"Idempotency-Key": "before"}
            )
            assert again.status_code == 202
            assert again.json()["run_id"] == before.json()["run_id"]
            assert again.headers["Idempotent-Replayed"] == "true"

        promoted = sentinel_group.replica.client()
        queued = [
            json.loads(m)["headers"]["id"] for m in promoted.lrange("marketq:market_hours", 0, -1)
        ]
        assert before.json()["run_id"] in queued and after.json()["run_id"] in queued
        # Beat holds its lock on the new master and publishes there.
        stack.wait_for(
            lambda: any(f > killed_at for f in _probe_fires(promoted, "probe")),
            30,
            "a beat fire on the promoted replica",
        )
        assert beat.alive() and beat.holds_lock(), beat.log_text()[-3000:]
        assert list(promoted.scan_iter(match="marketq:redbeat*lock")), "no RedBeat lock there"
        assert api.process.poll() is None, api.log_text()[-3000:]
    finally:
        fleet.close()
        api.stop()
