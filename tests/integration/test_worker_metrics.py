"""A worker's /metrics, /livez and /readyz: real ``marketq-worker`` processes on real Redis.

Expected numbers are the runs this test published; the worker's numbers are read from its
HTTP endpoint (the main process) although the runs executed in pool children.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from marketq.common.catalog import CATALOG
from marketq.common.publish import publish
from tests.fixtures.workers import Stack, WorkerProcess

pytestmark = pytest.mark.integration

METRICS_APP = "tests.support.metrics_app:app"


def scrape(worker: WorkerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(worker.url("/metrics"), timeout=10)
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def outcome(samples: dict, job: str, what: str, queue: str = "default") -> float:
    return value(samples, "marketq_task_outcomes_total", queue=queue, job_name=job, outcome=what)


def test_outcomes_failures_retries_revokes_and_histograms(stack: Stack) -> None:
    worker = stack.start_worker("default", app=METRICS_APP, concurrency=2)
    assert httpx.get(worker.url("/readyz"), timeout=5).status_code == 200
    assert httpx.get(worker.url("/livez"), timeout=5).status_code == 200
    before = scrape(worker)
    assert outcome(before, "health_check", "succeeded") == 0
    assert value(before, "marketq_worker_consuming", queue="default") == 1
    assert value(before, "marketq_worker_pool_processes", queue="default") == 2
    assert value(
        before, "marketq_task_soft_time_limit_seconds", queue="default", job_name="health_check"
    ) == float(CATALOG["health_check"].soft_time_limit)

    producer = stack.producer()
    ok = [publish(producer, "health_check", {}).run_id for _ in range(3)]
    # A producer that skipped validation: the worker refuses the params (PermanentJobError).
    bad = producer.send_task(
        "health_check", kwargs={"sleep_seconds": "soon"}, queue="default", routing_key="default"
    ).id
    flaky = publish(producer, "data_import", CATALOG["data_import"].example).run_id
    # A run with a chain follower: the worker publishes the follower when it succeeds.
    follower = producer.signature(
        "health_check", kwargs={}, immutable=True, options={"queue": "default"}
    )
    leader = producer.send_task(
        "health_check", kwargs={}, queue="default", routing_key="default", link=follower
    ).id
    expired = producer.send_task(
        "health_check",
        kwargs={},
        queue="default",
        routing_key="default",
        expires=datetime.now(UTC) - timedelta(seconds=30),
    ).id
    stack.wait_for_states([*ok, bad, flaky, leader], {"SUCCESS", "FAILURE"}, timeout=60)

    def settled() -> dict | None:
        samples = scrape(worker)
        revoked = outcome(samples, "health_check", "revoked")
        if revoked >= 1 and outcome(samples, "health_check", "succeeded") >= 5:
            return samples
        return None

    after = stack.wait_for(settled, 30, f"the expired run {expired} and the chain counted")
    # 3 plain runs, the leader and its follower.
    assert outcome(after, "health_check", "succeeded") == 5
    assert outcome(after, "health_check", "failed") == 1
    assert outcome(after, "health_check", "revoked") == 1
    assert outcome(after, "data_import", "retried") == 1
    assert outcome(after, "data_import", "succeeded") == 1
    assert (
        value(
            after,
            "marketq_task_failures_total",
            queue="default",
            job_name="health_check",
            exception="PermanentJobError",
        )
        == 1
    )
    labels = {"queue": "default", "job_name": "health_check"}
    # Every attempt that ran is timed (5 successes + 1 failure); the expired one never ran.
    assert value(after, "marketq_task_runtime_seconds_count", **labels) == 6
    assert value(after, "marketq_task_runtime_seconds_sum", **labels) > 0
    assert value(after, "marketq_task_runtime_seconds_bucket", le="+Inf", **labels) == 6
    # Queue wait comes from the enqueue header only the marketq publisher adds (3 runs).
    assert value(after, "marketq_task_queue_wait_seconds_count", **labels) == 3
    assert value(after, "marketq_task_queue_wait_seconds_bucket", le="+Inf", **labels) == 3
    flaky_labels = {"queue": "default", "job_name": "data_import"}
    assert value(after, "marketq_task_runtime_seconds_count", **flaky_labels) == 2
    # The follower is a new run published by the worker; the retry of data_import is not.
    published = "marketq_tasks_published_total"
    assert value(after, published, queue="default", job_name="health_check", source="chain") == 1
    assert value(after, published, queue="default", job_name="data_import", source="chain") == 0
    # No pid or hostname label anywhere.
    assert not any(dict(labels).keys() & {"pid", "hostname", "job"} for _name, labels in after)
    assert flaky in stack.runs()


def test_recycled_children_lose_no_counts_and_leave_a_bounded_directory(stack: Stack) -> None:
    runs = 12
    worker = stack.start_worker(
        "default",
        concurrency=2,
        extra_env={"MARKETQ_QUEUES__DEFAULT__MAX_TASKS_PER_CHILD": "1"},
    )
    directory = Path(worker.env["PROMETHEUS_MULTIPROC_DIR"])
    producer = stack.producer()
    run_ids = [publish(producer, "health_check", {}).run_id for _ in range(runs)]
    stack.wait_for_states(run_ids, {"SUCCESS"}, timeout=90)

    def counted() -> dict | None:
        samples = scrape(worker)
        done = value(
            samples,
            "marketq_task_runtime_seconds_count",
            queue="default",
            job_name="health_check",
        )
        if outcome(samples, "health_check", "succeeded") == runs and done == runs:
            return samples
        return None

    stack.wait_for(counted, 90, f"{runs} successes on the worker's /metrics")

    def only_live_files() -> list[str] | None:
        scrape(worker)  # a scrape folds the files of dead children first
        alive = {str(pid) for pid in (worker.pid, *worker.children())}
        files = sorted(p.name for p in directory.glob("*.db"))
        owners = {name.rsplit("_", 1)[-1][: -len(".db")] for name in files}
        return files if owners <= alive | {"archive"} else None

    # Every child ran one task and was replaced: 12+ processes wrote files. Left are the
    # two archives plus the files of processes still alive (main + 2 children at most).
    files = stack.wait_for(only_live_files, 90, "only live processes' files and archives")
    assert "counter_archive.db" in files and "histogram_archive.db" in files
    assert len(files) <= 2 + 2 * 3, files
    # The folded counts survive further scrapes unchanged (no double counting).
    again = scrape(worker)
    assert outcome(again, "health_check", "succeeded") == runs


def test_liveness_holds_and_readiness_fails_while_redis_is_down(stack: Stack) -> None:
    worker = stack.start_worker("default", concurrency=1)
    assert httpx.get(worker.url("/readyz"), timeout=5).status_code == 200

    def status(path: str) -> int:
        return httpx.get(worker.url(path), timeout=5).status_code

    stack.redis.stop()
    try:
        stack.wait_for(lambda: status("/readyz") == 503, 30, "/readyz to fail without Redis")
        # Several seconds into the outage the process is still live, its gauge says why.
        for _ in range(3):
            assert status("/livez") == 200
        samples = scrape(worker)
        assert value(samples, "marketq_worker_consuming", queue="default") == 0
    finally:
        stack.redis.start()
    # Celery's reconnect back-off reaches ~10 s after a few failed attempts.
    stack.wait_for(lambda: status("/readyz") == 200, 60, "/readyz after Redis returned")
    assert status("/livez") == 200
    assert value(scrape(worker), "marketq_worker_consuming", queue="default") == 1
    run_id = publish(stack.producer(), "health_check", {}).run_id
    stack.wait_for_states([run_id], {"SUCCESS"}, timeout=30)


def test_entrypoint_sets_and_empties_the_multiprocess_directory(tmp_path: Path) -> None:
    from marketq.common.queues import Queue
    from marketq.worker import multiproc
    from marketq.worker.entrypoint import worker_environ

    env = worker_environ({}, queue=Queue.DAILY)
    assert env["PROMETHEUS_MULTIPROC_DIR"] == os.path.join(multiproc.DEFAULT_ROOT, "daily")
    assert worker_environ({"PROMETHEUS_MULTIPROC_DIR": "/x"})["PROMETHEUS_MULTIPROC_DIR"] == "/x"
    stale = tmp_path / "counter_4242.db"
    stale.write_bytes(b"old")
    multiproc.prepare_dir(str(tmp_path))
    assert list(tmp_path.iterdir()) == []
