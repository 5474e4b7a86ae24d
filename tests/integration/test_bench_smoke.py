"""Every benchmark in bench/ runs in its smoke mode: a few seconds of real processes,
asserting only that it produced its table (numbers from a smoke run mean nothing)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.fixtures.workers import ROOT

pytestmark = pytest.mark.integration


def run_smoke(script: str) -> str:
    done = subprocess.run(
        [sys.executable, f"bench/{script}", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def test_bench_worker_smoke_produces_its_table() -> None:
    out = run_smoke("worker_drain.py")
    assert "| worker | runs/s | x bare Celery | worker CPU ms/run |" in out
    assert "| bare Celery |" in out and "| marketq (SQLite) |" in out


def test_bench_metrics_smoke_produces_its_tables() -> None:
    out = run_smoke("metrics_cost.py")
    assert "| messages waiting | p50 ms |" in out
    assert "| 1,000 |" in out


def test_broker_durability_benchmark_smoke() -> None:
    out = run_smoke("broker_durability.py")
    rows = [line for line in out.splitlines() if line.startswith("| `")]
    assert [row.split("|")[1].strip() for row in rows] == ["`publish`", "`lpush`"]
