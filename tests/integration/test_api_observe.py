"""Services watch the system over HTTP: queues, workers, schedules, market, /metrics.

Real uvicorn, Redis and Celery worker processes. Expected numbers come from what the test
itself published, from Redis read directly, or from MarketCalendar, never from the API.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from marketq.common.catalog import CATALOG
from marketq.common.pipelines import PIPELINES
from marketq.common.publish import publish
from marketq.common.queues import Queue
from marketq.common.scheduling.calendar import MarketCalendar
from tests.fixtures.api import ApiProcess, start_api
from tests.fixtures.workers import Stack

pytestmark = pytest.mark.integration

NY = ZoneInfo("America/New_York")
SEP = "\x06\x16"


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar("XNYS")


def queues(client: httpx.Client, **params: str) -> dict[str, dict]:
    response = client.get("/api/v1/queues", params=params)
    assert response.status_code == 200, response.text
    return {q["name"]: q for q in response.json()["queues"]}


def trigger(client: httpx.Client, job: str, params: dict, **options: object) -> str:
    response = client.post(f"/api/v1/jobs/{job}/runs", json={"params": params, **options})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of GET /metrics (fetched without credentials): (name, labels) -> value."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- queues ----------------------------------------------------------------------


def test_queue_lengths_per_priority_and_the_age_of_the_oldest(
    stack: Stack, api: ApiProcess
) -> None:
    redis = stack.redis.client()
    with api.client("trigger") as client:
        empty = queues(client)
        assert set(empty) == {q.value for q in Queue}
        for queue in empty.values():
            assert queue["length"] == 0 and queue["oldest_age_seconds"] is None
            assert queue["by_priority"] == {"0": 0, "3": 0, "6": 0, "9": 0}
            assert queue["reserved"] == 0 and queue["consumers"] is None

        params = {"symbols": ["AAPL"]}
        for priority in (None, None, None, 3, 4, 7, 9):
            trigger(client, "stock_quotes", params, **({"priority": priority} if priority else {}))
        # Celery's own publish path lands in the same lists.
        producer = stack.producer()
        publish(producer, "news", {"symbols": ["AAPL"]}, priority=5)
        publish(producer, "news", {"symbols": ["AAPL"]})
        # Due in a minute: waiting, but not late.
        trigger(client, "health_check", {}, countdown=60)

        time.sleep(1.5)
        first = queues(client)
        time.sleep(1.0)
        second = queues(client)

    market = first["market_hours"]
    assert market["length"] == 7
    assert market["by_priority"] == {"0": 3, "3": 2, "6": 1, "9": 1}
    # Independently: the lists kombu reads.
    assert redis.llen("marketq:market_hours") == 3
    assert redis.llen(f"marketq:market_hours{SEP}3") == 2
    assert redis.llen(f"marketq:market_hours{SEP}6") == 1
    assert redis.llen(f"marketq:market_hours{SEP}9") == 1
    assert first["periodic"]["length"] == 2
    assert first["periodic"]["by_priority"] == {"0": 1, "3": 1, "6": 0, "9": 0}

    assert market["oldest_age_seconds"] >= 1.5
    assert first["periodic"]["oldest_age_seconds"] >= 1.5
    assert second["market_hours"]["oldest_age_seconds"] >= market["oldest_age_seconds"] + 0.9
    assert first["default"]["length"] == 1
    assert first["default"]["oldest_age_seconds"] == 0  # its ETA is still ahead
    assert first["daily"]["length"] == 0 and first["daily"]["oldest_age_seconds"] is None


def test_queues_drain_and_reserved_counts_what_workers_hold(stack: Stack, api: ApiProcess) -> None:
    with api.client("trigger") as client:
        for _ in range(4):
            trigger(client, "health_check", {"sleep_seconds": 2}, queue="periodic")
        assert queues(client)["periodic"]["length"] == 4

        stack.start_worker("periodic", name="periodic@drain", concurrency=1)

        def one_running() -> dict | None:
            periodic = queues(client)["periodic"]
            return periodic if periodic["reserved"] == 1 and periodic["length"] >= 1 else None

        # One pool process, prefetch multiplier 1: the worker holds exactly one message.
        holding = stack.wait_for(one_running, 20, "a worker holding one message")
        assert holding["length"] + holding["reserved"] <= 4
        assert stack.redis.client().hlen("marketq:unacked") == 1

        def drained() -> dict | None:
            periodic = queues(client)["periodic"]
            return periodic if periodic["length"] == 0 and periodic["reserved"] == 0 else None

        done = stack.wait_for(drained, 60, "the periodic queue to drain")
        assert done["oldest_age_seconds"] is None
        with_consumers = queues(client, consumers="true")
    assert with_consumers["periodic"]["consumers"] == 1
    assert with_consumers["daily"]["consumers"] == 0


# --- workers ---------------------------------------------------------------------


def test_workers_listed_cached_and_gone_once_stopped(stack: Stack) -> None:
    cache_seconds = 3.0
    api = start_api(stack, {"MARKETQ_API_WORKERS_CACHE_SECONDS": str(cache_seconds)})
    try:
        daily = stack.start_worker("daily", name="daily@observe", concurrency=1, wait_ready=False)
        periodic = stack.start_worker(
            "periodic", name="periodic@observe", concurrency=2, wait_ready=False
        )
        daily.wait_ready()
        periodic.wait_ready()
        with api.client("read") as client:
            inspections = sample(scrape(api.url), "marketq_api_worker_inspections_total")
            response = client.get("/api/v1/workers")
            assert response.status_code == 200, response.text
            body = response.json()
            workers = {w["name"]: w for w in body["workers"]}
            assert set(workers) == {"daily@observe", "periodic@observe"}
            assert workers["daily@observe"]["queues"] == ["daily"]
            assert workers["daily@observe"]["pool_size"] == 1
            assert workers["daily@observe"]["pid"] == daily.pid
            assert workers["periodic@observe"]["queues"] == ["periodic"]
            assert workers["periodic@observe"]["pool_size"] == 2
            assert workers["periodic@observe"]["active"] == 0
            assert workers["periodic@observe"]["uptime_seconds"] >= 0
            per_queue = {q["name"]: q for q in body["queues"]}
            assert per_queue["daily"]["workers"] == 1 and per_queue["periodic"]["pool_size"] == 2
            assert per_queue["default"]["workers"] == 0 == per_queue["market_hours"]["workers"]

            # Within the cache window: the same answer, no new broadcast.
            again = client.get("/api/v1/workers").json()
            assert again["fetched_at"] == body["fetched_at"]
            after = sample(scrape(api.url), "marketq_api_worker_inspections_total")
            assert after == inspections + 1

            periodic.stop()
            time.sleep(cache_seconds + 0.5)
            later = client.get("/api/v1/workers").json()
            assert later["fetched_at"] != body["fetched_at"]
            assert [w["name"] for w in later["workers"]] == ["daily@observe"]
            assert {q["name"]: q["workers"] for q in later["queues"]}["periodic"] == 0
    finally:
        api.stop()


def test_concurrent_requests_share_one_refresh_and_no_worker_is_an_empty_list(
    stack: Stack,
) -> None:
    api = start_api(stack)  # its own: a fresh worker cache, whatever the module asked before
    try:
        before = sample(scrape(api.url), "marketq_api_worker_inspections_total")
        answers: list[httpx.Response] = []

        def ask() -> None:
            with api.client("read") as client:
                answers.append(client.get("/api/v1/workers"))

        threads = [threading.Thread(target=ask) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [a.status_code for a in answers] == [200] * 6
        assert {a.json()["fetched_at"] for a in answers} == {answers[0].json()["fetched_at"]}
        assert answers[0].json()["workers"] == []
        assert all(q["workers"] == 0 for q in answers[0].json()["queues"])
        assert sample(scrape(api.url), "marketq_api_worker_inspections_total") == before + 1
    finally:
        api.stop()


# --- schedules and market ----------------------------------------------------------


def expected_market_minutes(cal: MarketCalendar, after: datetime, count: int) -> list[datetime]:
    """Every-minute fires while open, walked with MarketCalendar alone."""
    at = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    found: list[datetime] = []
    while len(found) < count:
        if cal.is_open(at):
            found.append(at)
            at += timedelta(minutes=1)
        else:
            at = cal.next_open(at)
    return found


def test_every_scheduled_job_is_listed_with_fires_the_calendar_allows(
    stack: Stack, api: ApiProcess, cal: MarketCalendar
) -> None:
    with api.client("read") as client:
        response = client.get("/api/v1/schedules")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timezone"] == "America/New_York" and body["exchange"] == "XNYS"
    entries = {e["name"]: e for e in body["schedules"]}
    # Every catalog schedule, and one entry per scheduled pipeline (it starts the run).
    pipelines = {spec.name for spec in PIPELINES.values() if spec.schedule}
    assert pipelines and set(entries) == pipelines | {
        schedule.name for _job, schedule in CATALOG.default_schedules()
    }
    for name in pipelines:
        assert entries[name]["job"] == "start_pipeline" and len(entries[name]["next_fires"]) == 3
    as_of = datetime.fromisoformat(body["as_of"]["utc"])
    for job in CATALOG.scheduled():
        entry = entries[job.name]
        assert entry["queue"] == job.queue.value
        assert entry["cron"] == job.schedule.cron
        assert entry["market_hours_only"] == job.market_hours_only
        assert entry["trading_days_only"] == job.schedule.trading_days_only
        fires = [datetime.fromisoformat(f["utc"]) for f in entry["next_fires"]]
        local = [datetime.fromisoformat(f["exchange_time"]) for f in entry["next_fires"]]
        assert len(fires) == 3 and fires == local and fires == sorted(fires)
        assert fires[0] > as_of
        assert all(t.utcoffset() == t.astimezone(NY).utcoffset() for t in local)
        if job.market_hours_only:
            assert all(cal.is_open(f) for f in fires)
        if job.schedule.trading_days_only:
            assert all(cal.is_trading_day(t.date()) for t in local)
    assert [datetime.fromisoformat(f["utc"]) for f in entries["stock_quotes"]["next_fires"]] == (
        expected_market_minutes(cal, as_of, 3)
    )


INSTANTS = (
    datetime(2026, 11, 25, 15, 58, tzinfo=NY),  # the eve of Thanksgiving
    datetime(2026, 11, 27, 12, 57, 30, tzinfo=NY),  # an early close (13:00)
    datetime(2026, 3, 6, 15, 59, tzinfo=NY),  # the Friday before DST starts
)


def test_schedules_at_an_instant_follow_holidays_early_closes_and_dst(
    stack: Stack, api: ApiProcess, cal: MarketCalendar
) -> None:
    with api.client("read") as client:
        answers = {
            at: client.get("/api/v1/schedules", params={"at": at.isoformat(), "count": 5})
            for at in INSTANTS
        }
        naive = client.get("/api/v1/schedules", params={"at": "2026-11-27T12:00:00"})
    assert naive.status_code == 422
    assert naive.json()["error"]["details"][0]["field"] == "at"
    for at, response in answers.items():
        assert response.status_code == 200, response.text
        entries = {e["name"]: e for e in response.json()["schedules"]}
        quotes = [datetime.fromisoformat(f["utc"]) for f in entries["stock_quotes"]["next_fires"]]
        assert quotes == expected_market_minutes(cal, at, 5), at
        closes = [
            datetime.fromisoformat(f["exchange_time"]) for f in entries["end_of_day"]["next_fires"]
        ]
        sessions = cal.session_days(at.date(), at.date() + timedelta(days=14))
        expected_days = [
            d for d in sessions if datetime(d.year, d.month, d.day, 17, 30, tzinfo=NY) > at
        ]
        assert [c.date() for c in closes] == expected_days[:5], at
        assert all((c.hour, c.minute) == (17, 30) for c in closes)


def test_market_status_agrees_with_the_calendar(
    stack: Stack, api: ApiProcess, cal: MarketCalendar
) -> None:
    with api.client("read") as client:
        now = client.get("/api/v1/market/status").json()
        holiday = client.get(
            "/api/v1/market/status", params={"at": "2026-11-26T12:00:00-05:00"}
        ).json()
        early = client.get("/api/v1/market/status", params={"at": "2026-11-27T17:59:00Z"}).json()
    at = datetime.fromisoformat(now["now"]["utc"])
    assert abs((datetime.now(UTC) - at).total_seconds()) < 30
    assert now["is_open"] == cal.is_open(at)
    assert datetime.fromisoformat(now["next_open"]["utc"]) == cal.next_open(at)
    assert datetime.fromisoformat(now["next_close"]["utc"]) == cal.next_close(at)
    assert (now["session"] is None) == (cal.current_session(at) is None)

    assert holiday["is_open"] is False and holiday["session"] is None
    assert holiday["next_open"]["exchange_time"] == "2026-11-27T09:30:00-05:00"
    assert holiday["next_close"]["exchange_time"] == "2026-11-27T13:00:00-05:00"

    assert early["is_open"] is True
    assert early["now"]["exchange_time"] == "2026-11-27T12:59:00-05:00"
    assert early["session"]["early_close"] is True
    assert early["session"]["close"]["utc"] == "2026-11-27T18:00:00Z"
    assert early["next_open"]["exchange_time"] == "2026-11-30T09:30:00-05:00"


# --- metrics ---------------------------------------------------------------------


def test_metrics_count_by_route_template_and_report_the_queues(
    stack: Stack, api: ApiProcess
) -> None:
    route = "/api/v1/jobs/{name}/runs"
    before = scrape(api.url)
    with api.client("trigger") as client:
        run_ids = [trigger(client, "news", {"symbols": ["AAPL"]}) for _ in range(5)]
        bad = client.post("/api/v1/jobs/news/runs", json={"params": {"symbols": "not a list"}})
        assert bad.status_code == 422
        for run_id in run_ids:
            assert client.get(f"/api/v1/runs/{run_id}").status_code == 200
        assert client.get(f"/no/such/path/{uuid.uuid4()}").status_code == 404
        listed = queues(client)
    after_response = httpx.get(f"{api.url}/metrics", timeout=10)
    after = scrape(api.url)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    total = "marketq_api_requests_total"
    assert delta(total, route=route, method="POST", status="202") == 5
    assert delta(total, route=route, method="POST", status="422") == 1
    assert delta(total, route="/api/v1/runs/{run_id}", method="GET", status="200") == 5
    assert delta(total, route="unmatched", method="GET", status="404") == 1
    assert delta("marketq_api_request_duration_seconds_count", route=route, method="POST") == 6
    # Raw paths never become label values: bounded cardinality.
    for run_id in run_ids:
        assert run_id not in after_response.text

    assert sample(after, "marketq_queue_stats_up") == 1
    for name, queue in listed.items():
        assert sample(after, "marketq_queue_length", queue=name) == queue["length"]
        assert sample(after, "marketq_queue_reserved", queue=name) == queue["reserved"]
        age = sample(after, "marketq_queue_oldest_age_seconds", queue=name)
        if queue["oldest_age_seconds"] is None:
            assert age == 0
        else:
            assert queue["oldest_age_seconds"] <= age <= queue["oldest_age_seconds"] + 5
    assert listed["periodic"]["length"] == 5
