"""One trace from the API request (or a beat fire) through the publish into the task run,
exported over OTLP/HTTP by the real processes to a real protocol peer; JSON logs that
carry the run, job, queue and trace ids; and nothing at all when OTEL_* asks for nothing.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from tests.fixtures.api import start_api
from tests.fixtures.beat import FAST_BEAT, BeatFleet, write_schedule
from tests.fixtures.otlp import OtlpReceiver
from tests.fixtures.workers import Stack

pytestmark = pytest.mark.integration

JOB = "health_check"  # default queue, runs in milliseconds
FOLLOWER = "portfolio_report"  # default queue too; fails fast without a portfolio
CALLER_TRACE, CALLER_SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


def tracing_env(receiver: OtlpReceiver, delay_ms: int = 100) -> dict[str, str]:
    # Only the standard variables: marketq reads no tracing setting of its own.
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": str(delay_ms),  # export within ~0.1 s instead of 5 s
    }


# What Celery writes to the terminal without logging: its signal handlers' shutdown notice
# (logging from a signal handler is unsafe, so it prints) and, as root (the test machine;
# the images run as a user), the privileges warning issued before logging is set up.
CELERY_PRINTS = re.compile(
    r"^worker: |SecurityWarning: You're running the worker with "
    r"superuser|^absolutely not recommended!$|^Please specify a different user|"
    r"^User information: uid=|^Waiting gracefully for cold shutdown|"
    r"^\s+_warn_or_raise_security_error\("
)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every log line as JSON; any other line fails the test unless Celery printed it."""
    parsed = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith("{"):
            assert CELERY_PRINTS.search(line), f"not a JSON log line: {line!r}"
            continue
        value = json.loads(line)
        assert isinstance(value, dict), line
        assert {"time", "level", "logger", "message"} <= value.keys(), line
        parsed.append(value)
    return parsed


def test_api_run_is_one_trace_from_request_to_task_with_json_logs(
    stack: Stack, otlp_receiver: OtlpReceiver
) -> None:
    stack.set_env(**tracing_env(otlp_receiver))
    worker = stack.start_worker("default")
    api = start_api(stack, extra_env={"MARKETQ_LOG_LEVEL": "DEBUG"})
    try:
        with api.client("trigger") as client:
            response = client.post(f"/api/v1/jobs/{JOB}/runs", json={"params": {}})
            # A caller already in a trace: the run joins it (W3C traceparent on the request).
            joined = client.post(
                f"/api/v1/jobs/{JOB}/runs",
                json={"params": {}},
                headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
            )
        assert response.status_code == 202, response.text
        assert joined.status_code == 202, joined.text
        run_id = response.json()["run_id"]
        stack.wait_for_states([run_id, joined.json()["run_id"]], {"SUCCESS"}, timeout=60)

        # A run with a Celery link, sent by a plain Celery client from this untraced
        # process: the worker publishes the link inside the task's span.
        producer = stack.producer()
        link = producer.signature(FOLLOWER, kwargs={"portfolio_id": 1}, immutable=True)
        leader = producer.send_task(
            JOB, kwargs={}, queue="default", routing_key="default", link=link
        ).id
        linked = otlp_receiver.wait_for_span(
            lambda s: s.kind == "CONSUMER" and s.attributes.get("celery.task_name") == FOLLOWER,
            "for the chain link's task run",
        )

        joined_task = otlp_receiver.wait_for_span(
            lambda s: s.kind == "CONSUMER" and s.trace_id == CALLER_TRACE,
            "for the task run of the request that came with a traceparent",
        )
        task = otlp_receiver.wait_for_span(
            lambda s: s.kind == "CONSUMER" and s.attributes.get("messaging.message.id") == run_id,
            "for the task run",
        )
        spans = {s.span_id: s for s in otlp_receiver.snapshot()}
        publish = spans.get(task.parent_span_id) or otlp_receiver.wait_for_span(
            lambda s: s.span_id == task.parent_span_id, "for the task's parent"
        )
        request = otlp_receiver.wait_for_span(
            lambda s: s.span_id == publish.parent_span_id, "for the publish's parent"
        )
    finally:
        api.stop()
        worker.stop()

    # API request (SERVER) -> publish (PRODUCER) -> task run (CONSUMER), one trace id.
    assert request.kind == "SERVER" and request.service == "marketq-api", request
    assert request.attributes.get("http.route") == "/api/v1/jobs/{name}/runs", request
    assert request.parent_span_id == ""  # the client sent no traceparent: the trace starts here
    assert publish.kind == "PRODUCER" and publish.service == "marketq-api", publish
    assert publish.name == f"publish {JOB}"
    assert publish.attributes["messaging.message.id"] == run_id
    assert publish.attributes["messaging.destination.name"] == "default"
    assert task.service == "marketq-worker" and task.resource["marketq.queue"] == "default"
    assert task.attributes["celery.task_name"] == JOB
    assert len({request.trace_id, publish.trace_id, task.trace_id}) == 1
    trace_id = task.trace_id
    joined_spans = [s for s in otlp_receiver.snapshot() if s.trace_id == CALLER_TRACE]
    joined_request = next(s for s in joined_spans if s.kind == "SERVER")
    assert joined_request.parent_span_id == CALLER_SPAN
    assert joined_task.attributes["messaging.message.id"] == joined.json()["run_id"]
    assert otlp_receiver.bad_requests == 0

    # The chain: the linked run is a child of the task that published it, in its trace.
    # (Each pool child exports on its own: a parent may arrive after its child.)
    link_publish = otlp_receiver.wait_for_span(
        lambda s: s.span_id == linked.parent_span_id, "for the link's publish"
    )
    predecessor = otlp_receiver.wait_for_span(
        lambda s: s.span_id == link_publish.parent_span_id, "for the task that published it"
    )
    assert link_publish.kind == "PRODUCER" and link_publish.service == "marketq-worker"
    assert predecessor.kind == "CONSUMER"
    assert predecessor.attributes["messaging.message.id"] == leader
    assert predecessor.parent_span_id == ""  # its producer (this test) traces nothing
    assert len({linked.trace_id, link_publish.trace_id, predecessor.trace_id}) == 1

    # JSON logs on both processes: every line one object, the run's lines carry its ids.
    worker_lines = json_lines(worker.log_text())
    run_lines = [line for line in worker_lines if line.get("run_id") == run_id]
    assert all(line["job_name"] == JOB for line in run_lines), run_lines
    # Lines of the running task (pool child) carry the queue and the task span's ids; the
    # main process's "received" line names the run only.
    in_task = [line for line in run_lines if "trace_id" in line]
    assert in_task and len(in_task) < len(run_lines), worker_lines[-20:]
    for line in in_task:
        assert line["queue"] == "default", line
        assert line["trace_id"] == trace_id and len(line["span_id"]) == 16, line
    assert any(line["message"].endswith(" ready.") for line in worker_lines)
    api_lines = json_lines(api.log_text())
    published = [line for line in api_lines if line.get("run_id") == run_id]
    assert published, api_lines[-20:]
    assert published[0]["job_name"] == JOB and published[0]["queue"] == "default"
    assert published[0]["trace_id"] == trace_id
    assert any(line["logger"].startswith("uvicorn") for line in api_lines)  # uvicorn too


def test_beat_fire_is_one_trace_through_the_task(
    stack: Stack, beats: BeatFleet, otlp_receiver: OtlpReceiver
) -> None:
    schedule = write_schedule(
        stack.logdir.parent / "schedule.yaml", {"probe": {"job": JOB, "every_seconds": 1}}
    )
    # Spans are exported only every 10 minutes here: they reach the receiver only because
    # beat and the worker's pool children flush what they hold when they stop.
    stack.set_env(
        MARKETQ_SCHEDULE_FILE=str(schedule),
        **FAST_BEAT,
        **tracing_env(otlp_receiver, delay_ms=600_000),
    )
    worker = stack.start_worker("default")
    beat = beats.start()
    stack.wait_for(
        lambda: any(r.state == "SUCCESS" for r in stack.runs().values()),
        60,
        "a run fired by beat to succeed",
    )
    beat.stop()
    worker.stop()
    assert beat.process is not None and beat.process.returncode == 0
    assert worker.process is not None and worker.process.returncode == 0

    task = otlp_receiver.wait_for_span(
        lambda s: s.kind == "CONSUMER" and s.service == "marketq-worker",
        "for a task run fired by beat",
        timeout=5,
    )
    publish = otlp_receiver.wait_for_span(
        lambda s: s.span_id == task.parent_span_id, "for the task's parent"
    )
    fire = otlp_receiver.wait_for_span(
        lambda s: s.span_id == publish.parent_span_id, "for the publish's parent"
    )
    assert fire.service == "marketq-beat" and fire.name == "beat fire probe", fire
    assert fire.parent_span_id == ""  # the fire is the root of its trace
    assert fire.attributes["marketq.job_name"] == JOB
    assert publish.kind == "PRODUCER" and publish.service == "marketq-beat", publish
    assert task.attributes["celery.task_name"] == JOB
    assert len({fire.trace_id, publish.trace_id, task.trace_id}) == 1
    run_id = publish.attributes["messaging.message.id"]
    assert task.attributes["messaging.message.id"] == run_id

    beat_lines = json_lines(beat.log_text())
    fired = [line for line in beat_lines if line.get("run_id") == run_id]
    assert fired, beat_lines[-20:]
    assert (fired[0]["job_name"], fired[0]["queue"]) == (JOB, "default")
    assert fired[0]["trace_id"] == fire.trace_id


def test_without_otel_settings_nothing_is_exported(
    stack: Stack, otlp_receiver: OtlpReceiver
) -> None:
    # The endpoint is there, but the SDK is disabled: the processes must not export.
    stack.set_env(**tracing_env(otlp_receiver), OTEL_SDK_DISABLED="true")
    worker = stack.start_worker("default")
    api = start_api(stack)
    try:
        with api.client("trigger") as client:
            response = client.post(f"/api/v1/jobs/{JOB}/runs", json={"params": {}})
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]
        stack.wait_for_states([run_id], {"SUCCESS"}, timeout=60)
        time.sleep(1)  # ten export intervals
    finally:
        api.stop()
        worker.stop()
    assert otlp_receiver.requests == 0 and otlp_receiver.bad_requests == 0
    run_lines = [line for line in json_lines(worker.log_text()) if line.get("run_id") == run_id]
    assert run_lines and all("trace_id" not in line for line in run_lines), run_lines
