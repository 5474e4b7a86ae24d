"""`marketq` over the HTTP API, as a real process against a real API, Redis and workers.

Scripts rely on three things checked here: `--json` puts the API's JSON (and nothing
else) on stdout, errors name the API's message and fields on stderr, and the exit codes:
0 ok, 1 run failed, 2 invalid input, 3 unavailable, 4 --wait timeout, 5 auth, 6 rate limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.api import KEYS, ApiProcess, start_api
from tests.fixtures.ports import free_port
from tests.fixtures.redis import RedisServer
from tests.fixtures.workers import Stack

pytestmark = pytest.mark.integration

MARKETQ = str(Path(sys.executable).parent / "marketq")
BAD_CSV = "symbol,date,open,high,low,close,volume\nAAPL,2026-11-20,1,2,3,1.5,10\n"  # high < low


def marketq(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MARKETQ, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def cli_env(base: dict[str, str], url: str, scope: str | None = "admin") -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in {"MARKETQ_API_URL", "MARKETQ_API_KEY"}}
    env["MARKETQ_API_URL"] = url
    env["COLUMNS"] = "240"  # wide enough that no table cell is cut
    if scope is not None:
        env["MARKETQ_API_KEY"] = KEYS[scope]
    return env


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    """The whole stdout is one JSON document (json.loads fails on anything extra)."""
    return json.loads(done.stdout)


def test_jobs_lists_the_catalog_as_a_table_and_as_the_apis_json(
    stack: Stack, api: ApiProcess
) -> None:
    env = cli_env(stack.env, api.url, "read")
    table = marketq(env, "jobs")
    assert table.returncode == 0, table.stderr
    for name in ("stock_quotes", "portfolio_report", "cleanup", "health_check"):
        assert name in table.stdout
    assert "on demand" in table.stdout and "market_hours" in table.stdout

    raw = marketq(env, "jobs", "--json")
    assert raw.returncode == 0, raw.stderr
    with api.client("read") as client:
        assert as_json(raw) == client.get("/api/v1/jobs").json()


def test_run_wait_follows_the_run_to_success_and_prints_the_result(
    stack: Stack, api: ApiProcess
) -> None:
    worker = stack.start_worker("market_hours", name="cli-api@x")
    env = cli_env(stack.env, api.url, "trigger")
    done = marketq(env, "run", "stock_quotes", "-p", "symbols=aapl,msft", "--wait")
    assert done.returncode == 0, done.stderr
    assert "SUCCESS" in done.stdout and '"symbols": 2' in done.stdout
    assert worker.hostname in done.stdout

    scripted = marketq(
        env, "run", "stock_quotes", "--params-json", '{"symbols": ["NVDA"]}', "--wait", "--json"
    )
    assert scripted.returncode == 0, scripted.stderr
    body = as_json(scripted)  # the final GET /runs/{id}, nothing else on stdout
    assert body["state"] == "SUCCESS" and body["params"]["symbols"] == ["NVDA"]
    assert body["result"]["symbols"] == 1


def test_exit_codes_of_run_for_scripts(stack: Stack, api: ApiProcess) -> None:
    env = cli_env(stack.env, api.url, "trigger")

    invalid = marketq(env, "run", "stock_quotes", "-p", "symbols=AAPL,not a symbol")
    assert invalid.returncode == 2
    assert "params.symbols.1" in invalid.stderr and invalid.stdout == ""
    assert stack.redis.client().llen("marketq:market_hours") == 0  # nothing published
    misspelt = marketq(env, "run", "stock_quotes", "-p", "symbol=AAPL")
    assert misspelt.returncode == 2 and "params.symbol" in misspelt.stderr
    option = marketq(env, "run", "stock_quotes", "--priority", "11")
    assert option.returncode == 2 and "priority" in option.stderr
    unknown = marketq(env, "run", "quotes")
    assert unknown.returncode == 2 and "unknown job" in unknown.stderr
    not_json = marketq(env, "run", "health_check", "--params-json", "{nope")
    assert not_json.returncode == 2 and "invalid parameters" in not_json.stderr

    stack.start_worker("default", name="cli-api-default@x")
    failed = marketq(
        env,
        "run",
        "data_import",
        "-p",
        "dataset=daily_bars",
        "-p",
        f"content={BAD_CSV}",
        "--wait",
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAILURE" in failed.stdout

    slow = marketq(
        env, "run", "health_check", "-p", "sleep_seconds=5", "--wait", "--timeout", "1", "--json"
    )
    assert slow.returncode == 4, slow.stdout + slow.stderr
    run = as_json(slow)  # the last status seen, so a script still has the run id
    assert run["state"] in {"QUEUED", "RECEIVED", "STARTED"}
    assert "still" in slow.stderr and run["run_id"] in slow.stderr
    finished = marketq(env, "run", "health_check", "--wait", "--timeout", "60")
    assert finished.returncode == 0, finished.stderr  # the slow one ran on and freed the worker


def test_status_and_cancel(stack: Stack, api: ApiProcess) -> None:
    env = cli_env(stack.env, api.url, "trigger")
    queued = marketq(env, "run", "news", "-p", "symbols=AAPL", "--json")  # no worker: waits
    assert queued.returncode == 0, queued.stderr
    run_id = as_json(queued)["run_id"]

    shown = marketq(env, "status", run_id)
    assert shown.returncode == 0, shown.stderr
    assert run_id in shown.stdout and "QUEUED" in shown.stdout and "news" in shown.stdout

    cancelled = marketq(env, "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "REVOKED" in cancelled.stdout
    assert as_json(marketq(env, "status", run_id, "--json"))["state"] == "REVOKED"

    again = marketq(env, "cancel", run_id)
    assert again.returncode == 2
    assert "already ended REVOKED" in again.stderr and "already_finished" in again.stderr

    missing = marketq(env, "status", "0b7e1a52-0000-4000-8000-000000000000", "--json")
    assert missing.returncode == 2 and "no run" in missing.stderr
    assert as_json(missing)["error"]["code"] == "unknown_run"  # the API's error body


def test_runs_pages_and_all_follows_the_cursor(stack: Stack, api: ApiProcess) -> None:
    stack.start_worker("default", name="cli-api-runs@x")
    with api.client("trigger") as client:
        ids = [
            client.post("/api/v1/jobs/health_check/runs", json={}).json()["run_id"]
            for _ in range(5)
        ]
    stack.wait_for_states(ids, {"SUCCESS"}, timeout=60)
    env = cli_env(stack.env, api.url, "read")

    first = marketq(env, "runs", "--job", "health_check", "--limit", "2", "--json")
    assert first.returncode == 0, first.stderr
    page = as_json(first)
    assert len(page["runs"]) == 2 and page["next_cursor"]

    every = marketq(env, "runs", "--job", "health_check", "--limit", "2", "--all", "--json")
    assert every.returncode == 0, every.stderr
    merged = as_json(every)  # one page-shaped object: every run, no cursor left
    assert sorted(r["run_id"] for r in merged["runs"]) == sorted(ids)
    assert merged["next_cursor"] is None

    table = marketq(env, "runs", "--limit", "2", "--all", "--state", "success", "--since", "1h")
    assert table.returncode == 0, table.stderr
    for run_id in ids:
        assert run_id in table.stdout
    assert "cli-api-runs@x" in table.stdout

    partial = marketq(env, "runs", "--limit", "2")
    assert partial.returncode == 0 and "--all" in partial.stderr
    assert sum(run_id in partial.stdout for run_id in ids) == 2

    future = marketq(env, "runs", "--since", "2999-01-01T00:00:00+00:00")
    assert future.returncode == 0 and "no runs" in future.stdout
    naive = marketq(env, "runs", "--since", "2026-01-01T00:00:00")
    assert naive.returncode == 2 and "since" in naive.stderr
    bad_state = marketq(env, "runs", "--state", "DONE")
    assert bad_state.returncode == 2 and "state" in bad_state.stderr


def test_queues_and_workers_views(stack: Stack, api: ApiProcess) -> None:
    worker = stack.start_worker("periodic", name="cli-api-view@x")
    with api.client("trigger") as client:  # waits on a queue nobody consumes
        client.post("/api/v1/jobs/stock_quotes/runs", json={"params": {"symbols": ["AAPL"]}})
    env = cli_env(stack.env, api.url, "read")

    queues = marketq(env, "queues", "--consumers")
    assert queues.returncode == 0, queues.stderr
    rows = {line.split()[1]: line for line in queues.stdout.splitlines() if "│" in line[:2]}
    assert set(rows) >= {"market_hours", "daily", "periodic", "default"}
    raw = as_json(marketq(env, "queues", "--consumers", "--json"))
    by_name = {q["name"]: q for q in raw["queues"]}
    assert by_name["market_hours"]["length"] == 1 and by_name["market_hours"]["consumers"] == 0
    assert by_name["periodic"]["consumers"] == 1 and by_name["daily"]["length"] == 0

    workers = marketq(env, "workers")
    assert workers.returncode == 0, workers.stderr
    assert worker.hostname in workers.stdout and "consumers per queue" in workers.stdout
    listed = as_json(marketq(env, "workers", "--json"))
    assert [w["name"] for w in listed["workers"]] == [worker.hostname]
    assert listed["workers"][0]["queues"] == ["periodic"]


def test_schedules_and_market_views(stack: Stack, api: ApiProcess) -> None:
    env = cli_env(stack.env, api.url, "read")
    day_after_thanksgiving = "2026-11-27T12:59:00-05:00"  # an early close at 13:00

    market = marketq(env, "market", "--at", day_after_thanksgiving)
    assert market.returncode == 0, market.stderr
    assert "open" in market.stdout and "early close" in market.stdout and "XNYS" in market.stdout
    raw = marketq(env, "market", "--at", day_after_thanksgiving, "--json")
    with api.client("read") as client:
        expected = client.get("/api/v1/market/status", params={"at": day_after_thanksgiving})
    assert as_json(raw) == expected.json()  # the same instant, so the same answer
    naive = marketq(env, "market", "--at", "2026-11-27T12:59:00")
    assert naive.returncode == 2 and "at" in naive.stderr

    schedules = marketq(env, "schedules", "--at", day_after_thanksgiving, "--count", "2")
    assert schedules.returncode == 0, schedules.stderr
    assert "stock_quotes" in schedules.stdout and "end_of_day" in schedules.stdout
    quotes = next(line for line in schedules.stdout.splitlines() if "stock_quotes" in line)
    assert "Mon 2026-11-30 09:30" in quotes  # nothing after Friday's early close
    end_of_day = next(line for line in schedules.stdout.splitlines() if "end_of_day" in line)
    assert "Fri 2026-11-27 17:30" in end_of_day  # an early close is still a trading day
    raw = marketq(env, "schedules", "--at", day_after_thanksgiving, "--count", "2", "--json")
    with api.client("read") as client:
        expected = client.get(
            "/api/v1/schedules", params={"at": day_after_thanksgiving, "count": 2}
        )
    assert as_json(raw) == expected.json()


def test_schedule_edit_reset_and_fire_from_the_cli(stack: Stack, api: ApiProcess) -> None:
    admin = cli_env(stack.env, api.url, "admin")
    disabled = marketq(admin, "schedule", "news", "--disable", "-p", "symbols=msft")
    assert disabled.returncode == 0, disabled.stderr
    assert "disabled" in disabled.stdout and "edited" in disabled.stdout
    shown = as_json(marketq(admin, "schedule", "news", "--json"))
    assert shown["enabled"] is False and shown["params"] == {"symbols": ["MSFT"]}
    assert shown["next_fires"] == [] and shown["source"] == "runtime"
    bad = marketq(admin, "schedule", "news", "--cron", "*/5 * *")
    assert bad.returncode == 2 and "cron" in bad.stderr
    reset = as_json(marketq(admin, "schedule", "news", "--reset", "--json"))
    assert reset["enabled"] is True and reset["source"] == "catalog" and reset["params"] == {}
    fired = marketq(admin, "schedule", "health_check", "--run")
    assert fired.returncode == 2  # an on-demand job has no schedule entry
    fired = marketq(admin, "schedule", "news", "--run", "--json")
    assert fired.returncode == 0, fired.stderr
    with api.client("read") as client:
        assert client.get(f"/api/v1/runs/{as_json(fired)['run_id']}").json()["state"] == "QUEUED"
    reader = marketq(cli_env(stack.env, api.url, "read"), "schedule", "news", "--enable")
    assert reader.returncode == 5


def test_authentication_and_authorization_exit_5(stack: Stack, api: ApiProcess) -> None:
    no_key = marketq(cli_env(stack.env, api.url, None), "jobs")
    assert no_key.returncode == 5
    assert "missing Authorization" in no_key.stderr and "MARKETQ_API_KEY" in no_key.stderr

    wrong = marketq(cli_env(stack.env, api.url, None), "jobs", "--api-key", "mq_nope")
    assert wrong.returncode == 5 and "invalid API key" in wrong.stderr

    read_only = marketq(cli_env(stack.env, api.url, "read"), "run", "health_check")
    assert read_only.returncode == 5 and "lacks the 'trigger' scope" in read_only.stderr
    assert stack.redis.client().llen("marketq:default") == 0


def test_api_or_broker_unavailable_exit_3(stack: Stack, tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MARKETQ_")}
    down = marketq(cli_env(base, f"http://127.0.0.1:{free_port()}"), "jobs")
    assert down.returncode == 3 and "cannot reach the API" in down.stderr
    assert down.stdout == ""
    flag = marketq(cli_env(base, "http://127.0.0.1:1"), "jobs", "--api-url", "http://nope:x")
    assert flag.returncode == 2 and "invalid --api-url" in flag.stderr

    broker = RedisServer(tmp_path / "own-redis")  # not the shared server: this one goes down
    broker.start()
    api = start_api(stack, {"MARKETQ_REDIS_URL": broker.url})
    try:
        env = cli_env(stack.env, api.url, "trigger")
        assert marketq(env, "jobs").returncode == 0
        broker.stop()
        unavailable = marketq(env, "run", "health_check")
        assert unavailable.returncode == 3
        assert "broker is unavailable" in unavailable.stderr and "retry after" in unavailable.stderr
    finally:
        api.stop()
        broker.stop()


def test_rate_limited_exit_6(stack: Stack) -> None:
    api = start_api(stack, {"MARKETQ_API_RATE_LIMIT_PER_MINUTE": "2"})
    try:
        env = cli_env(stack.env, api.url, "read")
        calls = [marketq(env, "jobs") for _ in range(5)]  # a minute boundary resets the count
    finally:
        api.stop()
    codes = [call.returncode for call in calls]
    assert codes[:2] == [0, 0] and 6 in codes and set(codes) <= {0, 6}, codes
    limited = calls[codes.index(6)]
    assert "exceeded 2 requests per minute" in limited.stderr and "retry after" in limited.stderr


def test_short_ids_status_wait_and_unknown_names(stack: Stack, api: ApiProcess) -> None:
    stack.start_worker("default", name="cli-short@x")
    env = cli_env(stack.env, api.url, "admin")
    queued = marketq(env, "run", "health_check", "-p", "check_database=false", "--json")
    assert queued.returncode == 0, queued.stderr
    run_id = as_json(queued)["run_id"]

    # The 8 characters the progress bar prints are enough, and --wait follows the run.
    followed = marketq(env, "status", run_id[:8], "--wait", "--timeout", "60")
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert "SUCCESS" in followed.stdout and run_id in followed.stdout
    nothing = marketq(env, "status", "ffffffff")
    assert nothing.returncode == 2 and "starting with 'ffffffff'" in nothing.stderr

    # Near misses get a suggestion; an unknown job is an error, not "no runs".
    typo = marketq(env, "run", "stock_quote")
    assert typo.returncode == 2 and "did you mean 'stock_quotes'?" in typo.stderr
    runs = marketq(env, "runs", "--job", "helth_check")
    assert runs.returncode == 2, runs.stdout
    assert "unknown job 'helth_check'" in runs.stderr
    assert "did you mean 'health_check'?" in runs.stderr
    entry = marketq(env, "schedule", "newz")
    assert entry.returncode == 2 and "did you mean 'news'?" in entry.stderr
