"""Pipelines as one tracked run: real uvicorn, Redis, Celery workers and the database.

The pipelines are the shipped ones (``end_of_day``, then ``research_daily``, which follows
it); steps fail or wait because of what is stored or which workers run, never because
of a test double.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from marketq.common.db import models
from tests.fixtures.api import ApiProcess
from tests.fixtures.workers import Stack
from tests.integration.test_cli_api import as_json, cli_env, marketq

# Each test starts an API and workers and runs pipelines over stored data: a bound for a
# loaded, shared machine, not a timing assertion.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SYMBOLS = ["AAPL", "MSFT", "JPM"]
TERMINAL = {"SUCCESS", "FAILED", "REVOKED"}


def wait_pipeline(
    client: httpx.Client, run_id: str, states: set[str], timeout: float = 120
) -> dict[str, Any]:
    """The run once it is in one of ``states`` and, when that is an end, once the ledger
    has each ended step's details too (attempts, times, error: they trail a step's state
    by the ledger's lag, docs/pipelines.md)."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/pipeline-runs/{run_id}").json()
        if body.get("state") in states and (
            body["state"] not in TERMINAL or all(settled(step) for step in body["steps"])
        ):
            return body
        time.sleep(0.2)
    raise AssertionError(f"pipeline run {run_id} not in {states} after {timeout} s: {body}")


def settled(step: dict[str, Any]) -> bool:
    if step["state"] not in TERMINAL or step["run_id"] is None:
        return True
    return step["finished_at"] is not None


def start(client: httpx.Client, name: str, params: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/api/v1/pipelines/{name}/runs", json={"params": params})
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == response.json()["status_url"]
    body: dict[str, Any] = response.json()
    return body


def research_run_of(stack: Stack) -> str:
    def found() -> str | None:
        with stack.sessions()() as session:
            return (
                session.query(models.PipelineRun.id).filter_by(pipeline="research_daily").scalar()
            )

    run_id: str = stack.wait_for(found, 60, "research_daily to follow end_of_day")
    return run_id


def steps_by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in body["steps"]}


def test_end_of_day_then_research_daily_run_as_one_tracked_run_each(
    stack: Stack, api: ApiProcess
) -> None:
    worker = stack.start_worker("daily", name="daily@pipelines")
    with api.client("trigger") as client:
        accepted = start(client, "end_of_day", {"symbols": SYMBOLS, "lookback_days": 300})
        assert accepted["state"] in ("QUEUED", "RUNNING")
        assert accepted["progress"] == {"current": 0, "total": 3}
        eod = wait_pipeline(client, accepted["pipeline_run_id"], TERMINAL)
        assert eod["state"] == "SUCCESS", eod
        assert eod["progress"] == {"current": 3, "total": 3}
        steps = eod["steps"]
        assert [s["name"] for s in steps] == [
            "historical_prices",
            "technical_indicators",
            "trading_signals",
        ]
        assert all(s["state"] == "SUCCESS" and s["attempts"] == 1 for s in steps)
        # In order: each step started after the one it waits for had finished.
        for before, after in itertools.pairwise(steps):
            assert before["finished_at"] <= after["started_at"]
        # Every step is a run of its own, found under /runs, with the pipeline's symbols.
        signals = client.get(f"/api/v1/runs/{steps[2]['run_id']}").json()
        assert signals["job"] == "trading_signals" and signals["params"]["symbols"] == SYMBOLS

        research = wait_pipeline(client, research_run_of(stack), TERMINAL, timeout=240)
        assert research["state"] == "SUCCESS", research
        assert research["trigger"] == "pipeline" and research["params"] == {"symbols": SYMBOLS}
        assert research["progress"] == {"current": 7, "total": 7}
        model = client.get(f"/api/v1/runs/{steps_by_name(research)['model']['run_id']}").json()
        assert model["result"]["predictions"] > 0
    with stack.sessions()() as session:
        assert session.query(models.BacktestRow).count() == 1
        assert session.query(models.ProposedOrder).count() >= 1
    # The steps the worker published after their predecessors are counted as the
    # pipeline's, not as a CLI's.
    published = 'marketq_tasks_published_total{job_name="trading_signals",queue="daily",'
    assert published + 'source="pipeline"} 1.0' in worker.metrics()


def test_a_failed_step_fails_the_run_and_retry_resumes_from_it(
    stack: Stack, api: ApiProcess
) -> None:
    # A held symbol without a stored close makes generate_trades fail for good.
    now = datetime.now(UTC)
    with stack.sessions().begin() as session:
        portfolio = models.Portfolio(name="research", created_at=now, updated_at=now)
        session.add(portfolio)
        session.flush()
        session.add(
            models.Position(
                portfolio_id=portfolio.id, symbol="ZZZZ", quantity=5, cost_basis=50, updated_at=now
            )
        )
    stack.start_worker("daily", name="daily@retry")
    with api.client("trigger") as client:
        start(client, "end_of_day", {"symbols": SYMBOLS, "lookback_days": 300})
        research_id = research_run_of(stack)
        failed = wait_pipeline(client, research_id, TERMINAL, timeout=240)
        assert failed["state"] == "FAILED", failed
        steps = steps_by_name(failed)
        assert steps["trades"]["state"] == "FAILED" and "ZZZZ" in steps["trades"]["error"]
        assert steps["broker"]["state"] == "PENDING" and steps["broker"]["run_id"] is None
        assert failed["progress"] == {"current": 5, "total": 7}
        kept = {name: s["run_id"] for name, s in steps.items() if s["state"] == "SUCCESS"}
        assert set(kept) == {"universe", "fundamentals", "features", "model", "backtest"}

        assert client.post(f"/api/v1/pipeline-runs/{research_id}/cancel").status_code == 409
        with stack.sessions().begin() as session:
            session.query(models.Position).filter_by(symbol="ZZZZ").delete()
        retried = client.post(f"/api/v1/pipeline-runs/{research_id}/retry")
        assert retried.status_code == 202, retried.text
        assert retried.json()["state"] == "RUNNING"
        done = wait_pipeline(client, research_id, TERMINAL)
        assert done["state"] == "SUCCESS", done
        steps = steps_by_name(done)
        assert {n: steps[n]["run_id"] for n in kept} == kept  # succeeded steps kept
        assert steps["trades"]["attempt"] == 2 and steps["trades"]["state"] == "SUCCESS"
        assert steps["trades"]["run_id"] != failed["steps"][5]["run_id"]
        assert steps["broker"]["state"] == "SUCCESS"
        again = client.post(f"/api/v1/pipeline-runs/{research_id}/retry")
        assert again.status_code == 409


def test_cancel_revokes_queued_steps_and_publishes_no_more(stack: Stack, api: ApiProcess) -> None:
    # No daily worker yet: the first step waits in its queue.
    with api.client("trigger") as client:
        accepted = start(client, "end_of_day", {"symbols": SYMBOLS})
        run_id = accepted["pipeline_run_id"]
        first = accepted["steps"][0]
        assert first["state"] == "QUEUED" and first["run_id"]
        cancelled = client.post(f"/api/v1/pipeline-runs/{run_id}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        body = cancelled.json()
        assert body["state"] == "REVOKED" and body["cancel_requested"]
        assert [s["state"] for s in body["steps"]] == ["REVOKED", "PENDING", "PENDING"]

        # A worker started now discards the revoked message; nothing else is published.
        stack.start_worker("daily", name="daily@cancel")
        time.sleep(3)
        after = client.get(f"/api/v1/pipeline-runs/{run_id}").json()
        assert after["state"] == "REVOKED"
        assert [s["run_id"] for s in after["steps"][1:]] == [None, None]
        assert client.get(f"/api/v1/runs/{first['run_id']}").json()["state"] == "REVOKED"
        assert stack.redis.client().llen("marketq:daily") == 0


def test_a_running_step_is_terminated_only_with_terminate(stack: Stack, api: ApiProcess) -> None:
    stack.start_worker("daily", name="daily@terminate")
    many = [f"S{i:03d}" for i in range(400)]  # a first step that runs for a while
    with api.client("trigger") as client:
        run_id = start(client, "end_of_day", {"symbols": many, "lookback_days": 3000})[
            "pipeline_run_id"
        ]
        wait_pipeline(client, run_id, {"RUNNING"}, timeout=60)
        stack.wait_for(
            lambda: (
                client.get(f"/api/v1/pipeline-runs/{run_id}").json()["steps"][0]["state"]
                == "RUNNING"
            ),
            60,
            "the first step to start",
        )
        soft = client.post(f"/api/v1/pipeline-runs/{run_id}/cancel").json()
        assert soft["state"] == "RUNNING" and soft["cancel_requested"]
        assert soft["steps"][0]["state"] == "RUNNING"  # left to run without terminate
        hard = client.post(f"/api/v1/pipeline-runs/{run_id}/cancel", params={"terminate": "true"})
        assert hard.status_code == 202
        ended = wait_pipeline(client, run_id, TERMINAL, timeout=60)
        assert ended["state"] == "REVOKED", ended
        assert ended["steps"][0]["state"] == "REVOKED"
        assert [s["run_id"] for s in ended["steps"][1:]] == [None, None]


def test_bad_pipeline_requests_name_the_field(api: ApiProcess) -> None:
    with api.client("trigger") as client:
        unknown = client.post("/api/v1/pipelines/nope/runs", json={"params": {}})
        assert unknown.status_code == 404
        assert "end_of_day" in unknown.json()["error"]["message"]
        bad = client.post("/api/v1/pipelines/end_of_day/runs", json={"params": {"symbols": [1]}})
        assert bad.status_code == 422
        assert bad.json()["error"]["details"][0]["field"].startswith("params.symbols")
        extra = client.post("/api/v1/pipelines/end_of_day/runs", json={"params": {"bogus": 1}})
        assert extra.status_code == 422
        assert extra.json()["error"]["details"][0]["field"] == "params.bogus"
        missing = client.get("/api/v1/pipeline-runs/does-not-exist")
        assert missing.status_code == 404
        listed = client.get("/api/v1/pipelines").json()
        assert {p["name"] for p in listed} >= {"end_of_day", "research_daily"}


def test_the_cli_runs_a_pipeline_with_a_live_tree_and_exit_codes(
    stack: Stack, api: ApiProcess
) -> None:
    stack.start_worker("daily", name="daily@cli")
    env = cli_env(stack.env, api.url, "trigger")
    done = marketq(env, "pipeline", "run", "end_of_day", "-p", "symbols=AAPL,MSFT", "--wait")
    assert done.returncode == 0, done.stderr
    # The tree on stderr: the pipeline, then each step under the one it waits for.
    for name in ("end_of_day", "historical_prices", "technical_indicators", "trading_signals"):
        assert name in done.stderr
    run_id = done.stderr.split("started ", 1)[1].split()[0]
    status = marketq(env, "pipeline", "status", run_id, "--json")
    assert status.returncode == 0, status.stderr
    body = as_json(status)
    assert body["state"] == "SUCCESS" and body["params"] == {"symbols": ["AAPL", "MSFT"]}
    assert [s["state"] for s in body["steps"]] == ["SUCCESS"] * 3
    # Retrying a run that succeeded is refused: exit 2, the API's message on stderr.
    again = marketq(env, "pipeline", "retry", run_id)
    assert again.returncode == 2 and "only FAILED or REVOKED" in again.stderr
