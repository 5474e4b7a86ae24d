"""The operator entry points as real processes: `marketq submit` and `make up`'s launcher."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from marketq.common.db import models
from tests.fixtures.api import KEYS, ApiProcess
from tests.fixtures.ports import free_port
from tests.fixtures.workers import ROOT, Stack

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


def test_devstack_runs_every_queue_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETQ_")}
    env["DEVSTACK_DIR"] = str(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "devstack.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    output = []
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "uv run marketq submit" in line:
                break
        text = "".join(output)
        assert "marketq is running" in text, text
        for queue in ("market_hours", "daily", "periodic", "default"):
            assert re.search(rf"worker\s+queue {queue}\s+pid \d+", text), text
        redis_url = re.search(r"MARKETQ_REDIS_URL=(\S+)", text)
        db_url = re.search(r"MARKETQ_DATABASE_URL=(\S+)", text)
        assert redis_url and db_url
        beat = re.search(r"beat\s+pid (\d+)\s+metrics (\S+)/metrics", text)
        assert beat, text
        # Every process prints its /metrics; each worker has its own port.
        worker_metrics = dict(re.findall(r"metrics\s+worker (\w+)\s+(\S+)/metrics", text))
        assert set(worker_metrics) == {"market_hours", "daily", "periodic", "default"}, text
        assert len(set(worker_metrics.values())) == 4
        for queue, url in worker_metrics.items():
            assert (
                f'marketq_worker_consuming{{queue="{queue}"}}' in httpx.get(f"{url}/metrics").text
            )
            assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        assert re.search(r"metrics\s+api\s+\S+/metrics", text), text
        assert re.search(r"metrics\s+beat\s+\S+/metrics", text), text
        assert httpx.get(f"{beat[2]}/livez", timeout=5).status_code == 200
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 7  # redis, the API, beat, four workers (+ pool processes)
        assert int(beat[1]) in {c.pid for c in children}

        # The API answers with the printed development key, and only with it.
        api_url = re.search(r"MARKETQ_API_URL=(\S+)", text)
        api_key = re.search(r"MARKETQ_API_KEY=(\S+)", text)
        assert api_url and api_key
        auth = {"Authorization": f"Bearer {api_key[1]}"}
        accepted = httpx.post(
            f"{api_url[1]}/api/v1/jobs/health_check/runs", json={}, headers=auth, timeout=10
        )
        assert accepted.status_code == 202, accepted.text
        status_url = api_url[1] + accepted.json()["status_url"]
        deadline = time.monotonic() + 60
        while httpx.get(status_url, headers=auth).json()["state"] != "SUCCESS":
            assert time.monotonic() < deadline, "health_check did not succeed via the API"
            time.sleep(0.2)
        assert httpx.get(status_url, headers={"Authorization": "Bearer nope"}).status_code == 401
        # Beat runs the full catalog schedule and holds the lock.
        schedules = httpx.get(f"{api_url[1]}/api/v1/schedules", headers=auth, timeout=10).json()
        assert {e["name"] for e in schedules["schedules"]} >= {"stock_quotes", "cleanup"}
        deadline = time.monotonic() + 30
        while "marketq_beat_lock_held 1.0" not in httpx.get(f"{beat[2]}/metrics").text:
            assert time.monotonic() < deadline, "beat did not take the scheduler lock"
            time.sleep(0.5)

        job_env = {**env, "MARKETQ_REDIS_URL": redis_url[1], "MARKETQ_DATABASE_URL": db_url[1]}
        done = cli(job_env, "submit", "portfolio_snapshot", "--wait")
        assert done.returncode == 0, done.stdout + done.stderr
        assert '"portfolios": 1' in done.stdout  # the seeded demo portfolio
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left running: {alive}"
