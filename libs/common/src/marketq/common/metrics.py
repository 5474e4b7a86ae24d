"""Metrics shared by every process that publishes runs (API, beat, CLI, worker chains).

Defined once here so the name, help and labels cannot drift between processes. The
catalog job is the label ``job_name``: Prometheus attaches its own ``job`` label to every
series of a target, and a metric label of that name would be renamed ``exported_job``.

Counting costs one dict lookup and one increment: the labelled children are bound once
per (queue, job, source) and kept (``prometheus_client``'s ``labels()`` costs several
microseconds per call, which the API's publish path does not want to pay per run).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from prometheus_client import Counter

from marketq.common.catalog import CATALOG, Catalog

Source = Literal["api", "beat", "cli", "chain", "pipeline", "reconciler"]
SOURCES: tuple[Source, ...] = ("api", "beat", "cli", "chain", "pipeline", "reconciler")

TASKS_PUBLISHED = Counter(
    "marketq_tasks_published",
    "Runs published to the broker, by queue, catalog job and producer "
    "(api, beat, cli, chain: a Celery link the worker published when its run succeeded; "
    "pipeline: a pipeline's step; reconciler: a QUEUED run re-published after the broker "
    "lost its message).",
    ["queue", "job_name", "source"],
)
TASK_PUBLISH_ERRORS = Counter(
    "marketq_task_publish_errors",
    "Runs whose publish to the broker failed (nothing was queued), by queue, catalog job "
    "and producer.",
    ["queue", "job_name", "source"],
)

_Key = tuple[str, str, str]
_published: dict[_Key, Counter] = {}
_errors: dict[_Key, Counter] = {}


def _child(cache: dict[_Key, Counter], family: Counter, key: _Key) -> Counter:
    child = cache.get(key)
    if child is None:
        child = cache[key] = family.labels(*key)
    return child


def count_published(queue: str, job_name: str, source: Source, amount: int = 1) -> None:
    _child(_published, TASKS_PUBLISHED, (queue, job_name, source)).inc(amount)


def count_publish_error(queue: str, job_name: str, source: Source, amount: int = 1) -> None:
    _child(_errors, TASK_PUBLISH_ERRORS, (queue, job_name, source)).inc(amount)


def count_runs(runs: Iterable[tuple[str, str]], source: Source, *, failed: bool = False) -> None:
    """Count (queue, job) pairs of one publish call: a batch is one call."""
    tally: dict[tuple[str, str], int] = {}
    for pair in runs:
        tally[pair] = tally.get(pair, 0) + 1
    count = count_publish_error if failed else count_published
    for (queue, job_name), amount in tally.items():
        count(queue, job_name, source, amount)


def init_publish_series(source: Source, catalog: Catalog = CATALOG) -> None:
    """Create the zero series of every job on its home queue for one producer, so that
    ``rate()`` and ``increase()`` see the first publish instead of a series appearing."""
    for spec in catalog.values():
        key = (spec.queue.value, spec.name, source)
        _child(_published, TASKS_PUBLISHED, key)
        _child(_errors, TASK_PUBLISH_ERRORS, key)


__all__ = [
    "SOURCES",
    "TASKS_PUBLISHED",
    "TASK_PUBLISH_ERRORS",
    "Source",
    "count_publish_error",
    "count_published",
    "count_runs",
    "init_publish_series",
]
