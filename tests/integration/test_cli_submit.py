"""The operator entry points as real processes: `marketq submit` and `marketq jobs`
(`make up`'s launcher: tests/integration/test_devstack.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from marketq.common.db import models
from tests.fixtures.api import KEYS, ApiProcess
from tests.fixtures.ports import free_port
from tests.fixtures.workers import Stack

pytestmark = pytest.mark.integration

MARKETQ = str(Path(sys.executable).parent / "marketq")


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MARKETQ, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_submit_and_wait_reports_success_with_the_result(stack: Stack) -> None:
    stack.start_worker("market_hours", name="cli@x")
    done = cli(stack.env, "submit", "stock_quotes", "-p", "symbols=aapl,msft", "--wait")
    assert done.returncode == 0, done.stderr
    assert "SUCCESS" in done.stdout and '"symbols": 2' in done.stdout
    with stack.sessions()() as session:
        assert session.scalar(select(func.count()).select_from(models.QuoteRow)) == 2


def test_submit_exit_codes_for_scripts(stack: Stack) -> None:
    stack.start_worker("default", name="cli-codes@x")
    invalid = cli(stack.env, "submit", "stock_quotes", "-p", "symbols=not a symbol")
    assert invalid.returncode == 2 and "symbols.0" in invalid.stderr
    client = stack.redis.client()
    assert not list(client.scan_iter("marketq:market_hours*"))  # nothing published
    unknown = cli(stack.env, "submit", "quotes")
    assert unknown.returncode == 2 and "unknown job" in unknown.stderr

    bad_csv = "symbol,date,open,high,low,close,volume\nAAPL,2026-11-20,1,2,3,1.5,10\n"
    failed = cli(
        stack.env,
        "submit",
        "data_import",
        "-p",
        "dataset=daily_bars",
        "-p",
        f"content={bad_csv}",
        "--wait",
    )
    assert failed.returncode == 1 and "FAILURE" in failed.stdout

    down = {**stack.env, "MARKETQ_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    unavailable = cli(down, "submit", "health_check")
    assert unavailable.returncode == 3 and "nothing was published" in unavailable.stderr
    assert not [r for r in stack.runs().values() if r.job == "health_check"]  # no ghost row


def test_jobs_lists_the_catalog(stack: Stack, api: ApiProcess) -> None:
    env = {**stack.env, "MARKETQ_API_URL": api.url, "MARKETQ_API_KEY": KEYS["read"]}
    listed = cli(env, "jobs")  # over the API (tests/integration/test_cli_api.py has the rest)
    assert listed.returncode == 0, listed.stderr
    for name in ("stock_quotes", "portfolio_report", "cleanup"):
        assert name in listed.stdout


def test_submit_with_an_idempotency_key_publishes_once(stack: Stack) -> None:
    args = ("submit", "health_check", "--idempotency-key", "nightly-1", "--json")
    first = cli(stack.env, *args)
    assert first.returncode == 0, first.stderr
    again = cli(stack.env, *args)
    assert again.returncode == 0, again.stderr
    first_run, replay = json.loads(first.stdout), json.loads(again.stdout)
    assert replay == {"run_id": first_run["run_id"], "job": "health_check", "replayed": True}
    assert "already queued" in again.stderr
    client = stack.redis.client()

    def published() -> int:
        lists = sum(client.llen(key) for key in client.scan_iter("marketq:default*"))
        return lists + client.zcard("marketq:delayed")

    assert published() == 1  # once

    other = cli(
        stack.env, "submit", "health_check", "--countdown", "5", "--idempotency-key", "nightly-1"
    )
    assert other.returncode == 2 and "another job or options" in other.stderr
    assert published() == 1

    down = {**stack.env, "MARKETQ_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    unavailable = cli(down, "submit", "health_check", "--idempotency-key", "nightly-2")
    assert unavailable.returncode == 3 and "nothing was published" in unavailable.stderr
