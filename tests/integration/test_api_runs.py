"""Services trigger, follow and cancel runs over HTTP: real uvicorn, Redis and workers."""

from __future__ import annotations

import time

import pytest

from marketq.common.catalog import CATALOG
from marketq.common.queues import Queue
from tests.fixtures.api import ApiProcess
from tests.fixtures.workers import Stack

pytestmark = pytest.mark.integration


def wait_state(api: ApiProcess, run_id: str, states: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    with api.client("read") as client:
        while time.monotonic() < deadline:
            body = client.get(f"/api/v1/runs/{run_id}").json()
            if body.get("state") in states:
                return body
            time.sleep(0.1)
    raise AssertionError(f"run {run_id} not in {states} after {timeout} s: {body}")


def test_submit_runs_to_success_on_every_queue(stack: Stack, api: ApiProcess) -> None:
    workers = stack.start_queue_workers("api")
    one_job_per_queue = {q: CATALOG.on_queue(q)[0] for q in Queue}
    with api.client("trigger") as client:
        accepted = {}
        for queue, job in one_job_per_queue.items():
            response = client.post(
                f"/api/v1/jobs/{job.name}/runs", json={"params": dict(job.example)}
            )
            assert response.status_code == 202, response.text
            body = response.json()
            assert response.headers["Location"] == body["status_url"]
            assert body["state"] == "QUEUED" and body["queue"] == queue.value
            accepted[queue] = body["run_id"]
    for queue, run_id in accepted.items():
        done = wait_state(api, run_id, {"SUCCESS", "FAILURE"})
        assert done["state"] == "SUCCESS", done
        assert done["worker"] == workers[queue.value].hostname
        assert done["attempts"] == 1 and done["finished_at"]


def test_a_202_means_the_message_is_in_redis_and_the_run_is_found_at_once(
    stack: Stack, api: ApiProcess
) -> None:
    # No worker runs: the run must be visible as QUEUED straight from the 202.
    with api.client("trigger") as client:
        response = client.post("/api/v1/jobs/news/runs", json={"params": {"symbols": ["AAPL"]}})
        assert response.status_code == 202
        run_id = response.json()["run_id"]
        status = client.get(f"/api/v1/runs/{run_id}")
    assert status.status_code == 200 and status.json()["state"] == "QUEUED"
    assert stack.redis.client().llen("marketq:periodic") == 1


def test_an_id_never_issued_is_404_not_pending(stack: Stack, api: ApiProcess) -> None:
    with api.client("read") as client:
        response = client.get("/api/v1/runs/0b7e1a52-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_run"


@pytest.mark.parametrize(
    ("job", "body", "field"),
    [
        ("stock_quotes", {"params": {"symbols": ["AAPL", "bad symbol!"]}}, "params.symbols.1"),
        ("stock_quotes", {"params": {"symbol": "AAPL"}}, "params.symbol"),
        ("options_chain", {"params": {"expirations": 0}}, "params.expirations"),
        ("stock_quotes", {"params": {}, "priority": 11}, "priority"),
        ("stock_quotes", {"params": {}, "queue": "daily"}, "queue"),
        ("stock_quotes", {"params": {}, "countdown": 10_000_000}, "countdown"),
        ("stock_quotes", {"parms": {}}, "parms"),
    ],
)
def test_invalid_requests_get_422_naming_the_field_and_publish_nothing(
    stack: Stack, api: ApiProcess, job: str, body: dict, field: str
) -> None:
    with api.client("trigger") as client:
        response = client.post(f"/api/v1/jobs/{job}/runs", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in [d["field"] for d in error["details"]]
    assert "Traceback" not in response.text
    assert not list(stack.redis.client().scan_iter("marketq:market_hours*"))


def test_unknown_job_is_404(stack: Stack, api: ApiProcess) -> None:
    with api.client("trigger") as client:
        response = client.post("/api/v1/jobs/quotes/runs", json={})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_job"


def test_idempotency_key_replays_the_same_run_and_rejects_a_different_body(
    stack: Stack, api: ApiProcess
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    body = {"params": {"symbols": ["AAPL"]}}
    with api.client("trigger") as client:
        first = client.post("/api/v1/jobs/stock_quotes/runs", json=body, headers=headers)
        again = client.post("/api/v1/jobs/stock_quotes/runs", json=body, headers=headers)
        other = client.post(
            "/api/v1/jobs/stock_quotes/runs",
            json={"params": {"symbols": ["MSFT"]}},
            headers=headers,
        )
    assert first.status_code == again.status_code == 202
    assert again.json()["run_id"] == first.json()["run_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert stack.redis.client().llen("marketq:market_hours") == 1  # published once


def test_batch_publishes_valid_items_and_reports_invalid_ones(
    stack: Stack, api: ApiProcess
) -> None:
    stack.start_worker("market_hours", name="batch@x")
    items = [{"job": "stock_quotes", "params": {"symbols": [f"B{i:03d}"]}} for i in range(50)]
    items[7] = {"job": "stock_quotes", "params": {"symbols": ["no good"]}}
    items[20] = {"job": "nope", "params": {}}
    with api.client("trigger") as client:
        response = client.post("/api/v1/runs:batch", json={"runs": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 48 and body["rejected"] == 2
    assert body["results"][7]["status"] == 422
    assert body["results"][7]["error"]["details"][0]["field"] == "params.symbols.0"
    assert body["results"][20]["status"] == 404
    run_ids = [r["run"]["run_id"] for r in body["results"] if r["status"] == 202]
    finished = stack.wait_for_states(run_ids, {"SUCCESS", "FAILURE"}, timeout=90)
    assert all(finished[r].state == "SUCCESS" for r in run_ids)


def test_cancel_a_running_job_with_terminate(stack: Stack, api: ApiProcess) -> None:
    stack.start_worker("default", name="cancel@x")
    with api.client("trigger") as client:
        run_id = client.post(
            "/api/v1/jobs/health_check/runs", json={"params": {"sleep_seconds": 60}}
        ).json()["run_id"]
        wait_state(api, run_id, {"STARTED"})
        refused = client.post(f"/api/v1/runs/{run_id}/cancel")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "running"
        assert client.post(f"/api/v1/runs/{run_id}/cancel?terminate=true").status_code == 202
        done = wait_state(api, run_id, {"REVOKED", "SUCCESS", "FAILURE"}, timeout=30)
        assert done["state"] == "REVOKED"
        again = client.delete(f"/api/v1/runs/{run_id}")
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_finished"


def test_cancel_a_queued_run_before_any_worker_sees_it(stack: Stack, api: ApiProcess) -> None:
    with api.client("trigger") as client:
        run_id = client.post("/api/v1/jobs/health_check/runs", json={}).json()["run_id"]
        response = client.delete(f"/api/v1/runs/{run_id}")
        assert response.status_code == 202 and response.json()["state"] == "REVOKED"
    # A worker that starts afterwards never heard the broadcast; it must discard the run.
    stack.start_worker("default", name="late@x")
    client = stack.redis.client()
    stack.wait_for(
        lambda: client.llen("marketq:default") == 0 and not client.hlen("marketq:unacked"),
        30,
        "the worker to take the message",
    )
    result = stack.producer().AsyncResult(run_id)
    # The message leaves the list (BRPOP) before kombu records it in unacked: wait for
    # the outcome itself.
    stack.wait_for(lambda: result.state != "PENDING", 30, "the run's outcome")
    assert result.state == "REVOKED"  # not SUCCESS: the job body never ran
    run = stack.wait_for_states([run_id], {"REVOKED"}, timeout=30)[run_id]
    assert run.started_at is None and run.attempts == 0


def test_history_pages_with_a_cursor(stack: Stack, api: ApiProcess) -> None:
    stack.start_worker("default", name="history@x")
    with api.client("trigger") as client:
        ids = [
            client.post(
                "/api/v1/jobs/health_check/runs", json={"params": {"check_database": False}}
            ).json()["run_id"]
            for _ in range(7)
        ]
    stack.wait_for_states(ids, {"SUCCESS"}, timeout=60)
    seen: list[str] = []
    cursor = None
    with api.client("read") as client:
        while True:
            query = {"job": "health_check", "limit": 3, **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/v1/runs", params=query).json()
            seen += [r["run_id"] for r in page["runs"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert sorted(seen) == sorted(ids) and len(seen) == 7
        assert seen == list(reversed(ids))  # newest first
        failed = client.get("/api/v1/runs", params={"state": "FAILURE"}).json()
        assert failed["runs"] == []
