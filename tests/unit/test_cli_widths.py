"""CLI tables at the terminal widths people use: names and ids are never split across
lines (a cell may be cut with an ellipsis), and one row stays one line."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from rich.console import Console

from marketq.cli import render
from marketq.common.catalog import CATALOG
from marketq.common.queues import Queue

WIDTHS = (80, 100, 120, 150)
# A worker name as Kubernetes makes it: the queue, a Deployment's pod name.
POD = "market_hours@marketq-worker-market-hours-7d9f8c6b5-x2x9z"


def lines_at(
    width: int, monkeypatch: pytest.MonkeyPatch, draw: Callable[[Console], Any]
) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False)
    monkeypatch.setattr(render, "console", console)
    draw(console)
    lines = out.getvalue().splitlines()
    assert all(len(line) <= width for line in lines), "a line is wider than the terminal"
    return lines


def shown_whole_or_cut(value: str, lines: list[str], shortest: int) -> bool:
    """``value`` on one line, or its first ``shortest``+ characters then an ellipsis."""
    if any(value in line for line in lines):
        return True
    return any(value[:k] + "…" in line for line in lines for k in range(shortest, len(value)))


def jobs_listing() -> list[dict[str, Any]]:
    return [
        {
            "name": job.name,
            "queue": job.queue.value,
            "description": job.description,
            "schedule": job.schedule.cron if job.schedule else None,
            "trading_days_only": bool(job.schedule and job.schedule.trading_days_only),
            "market_hours_only": job.market_hours_only,
        }
        for job in CATALOG.values()
    ]


def runs_listing() -> list[dict[str, Any]]:
    return [
        {
            "run_id": str(uuid.uuid4()),
            "job": job.name,
            "queue": job.queue.value,
            "state": "SUCCESS",
            "attempts": 1,
            "progress": {"current": 3, "total": 4},
            "enqueued_at": "2026-12-04T14:30:00.123456+00:00",
            "started_at": "2026-12-04T14:30:01+00:00",
            "finished_at": "2026-12-04T14:30:03.5+00:00",
            "worker": POD,
        }
        for job in CATALOG.values()
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_jobs_keeps_every_name_whole_on_one_line_per_job(
    width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = jobs_listing()
    lines = lines_at(width, monkeypatch, lambda _: render.render_jobs(jobs))
    for job in jobs:
        rows = [line for line in lines if line.split() and line.split()[0] == job["name"]]
        assert len(rows) == 1, f"{job['name']} at {width} columns"
        assert job["queue"] in rows[0]
    assert len(lines) <= len(jobs) + 6  # title, header, rule: no row wraps


@pytest.mark.parametrize("width", WIDTHS)
def test_runs_keep_ids_and_job_names_whole(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = runs_listing()
    lines = lines_at(width, monkeypatch, lambda console: console.print(render.runs_table(runs)))
    for run in runs:
        # The whole id, or the 8-character one the progress bar prints and commands accept.
        row = [line for line in lines if run["run_id"][: render.SHORT_ID] in line]
        assert len(row) == 1, f"run id of {run['job']} at {width} columns"
        assert run["run_id"] in row[0] or width < 150, f"short id at {width} columns"
        assert f" {run['job']} " in row[0], f"{run['job']} at {width} columns"
        if width >= 120:  # room for the worker: readable
            assert shown_whole_or_cut(POD, row, render.WORKER_MIN - 1), f"worker at {width}"
    assert len(lines) <= len(runs) + 6


@pytest.mark.parametrize("width", WIDTHS)
def test_queues_and_workers_keep_names_whole(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    queues = {
        "read_at": "2026-12-04T14:30:00+00:00",
        "reserved_total": 3,
        "queues": [
            {
                "name": q.value,
                "length": 1200,
                "by_priority": {"0": 1000, "3": 0, "6": 200, "9": 0},
                "oldest_age_seconds": 4000.5,
                "reserved": 1,
                "consumers": 2,
            }
            for q in Queue
        ],
    }
    workers: dict[str, Any] = {
        "fetched_at": "2026-12-04T14:30:00+00:00",
        "cache_seconds": 5,
        "workers": [
            {
                "name": f"{q.value}@marketq-worker-{q.value.replace('_', '-')}-7d9f8c6b5-x2x9z",
                "queues": [q.value],
                "pool_size": 2,
                "active": 1,
                "reserved": 0,
                "processed": 123456,
                "uptime_seconds": 86400,
                "pid": 1,
            }
            for q in Queue
        ],
        "queues": [
            {"name": q.value, "workers": 1, "pool_size": 2, "worker_names": [f"{q.value}@a"]}
            for q in Queue
        ],
    }
    lines = lines_at(width, monkeypatch, lambda _: render.render_queues(queues))
    for q in Queue:
        assert any(line.split("│")[1].strip() == q.value for line in lines if "│" in line)
    lines = lines_at(width, monkeypatch, lambda _: render.render_workers(workers))
    for worker in workers["workers"]:
        assert shown_whole_or_cut(worker["name"], lines, 16), f"{worker['name']} at {width}"
