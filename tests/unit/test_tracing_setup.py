"""When tracing is on (decided from OTEL_* alone), that off costs nothing, and the log
formats."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from marketq.common.logs import ContextFilter, TextFormatter, json_formatter
from marketq.common.tracing import tracing_config
from tests.fixtures.workers import ROOT

ENDPOINT = "http://127.0.0.1:4318"


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, None),  # nothing set: off
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{ENDPOINT}/v1/traces"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",)),  # the SDK's default endpoint
        ({"OTEL_TRACES_EXPORTER": "console"}, ("console",)),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ("otlp", "console")),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, None),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, None),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, None),  # unsupported: refused, logged
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            None,
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",  # the specific wins
            },
            ("otlp",),
        ),
    ],
)
def test_tracing_is_on_only_when_otel_asks_for_an_exporter(
    environ: dict[str, str], exporters: tuple[str, ...] | None
) -> None:
    config = tracing_config(environ)
    assert (config.exporters if config else None) == exporters


# Every process's start-up path with OTEL_* unset, then a publish: no SDK, no
# instrumentation module may be imported and the message headers must stay as they were.
OFF_PROBE = """
import sys
from celery import signals
from marketq.api.app import create_served_app
from marketq.common import tracing
from marketq.common.publish import prepare_run, publish_span
import marketq.worker.app as worker
import marketq.beat.app as beat

create_served_app()
signals.worker_process_init.send(sender=None)
signals.beat_init.send(sender=None)
run = prepare_run("health_check", {})
headers = dict(run.headers)
with publish_span([run]):
    tracing.inject_trace_headers(headers)
assert headers == run.headers, headers
assert not tracing.enabled()
# redis-py imports opentelemetry.sdk.metrics on its own if installed; nothing of ours may
# load the tracing SDK, an exporter or an instrumentation, or set a provider.
prefixes = ("opentelemetry.sdk.trace", "opentelemetry.instrumentation", "opentelemetry.exporter")
loaded = sorted(m for m in sys.modules if m.startswith(prefixes))
assert not loaded, loaded
from opentelemetry import trace
assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
import threading
assert not [t.name for t in threading.enumerate() if "Otel" in t.name or "otel" in t.name]
print("off ok")
"""


@pytest.mark.integration
def test_with_otel_unset_no_sdk_is_loaded_and_headers_are_untouched(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        MARKETQ_BEAT_HTTP_PORT="0",
        MARKETQ_BEAT_HTTP_HOST="127.0.0.1",
        MARKETQ_DATABASE_URL="sqlite://",
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run(
        [sys.executable, "-c", OFF_PROBE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "off ok" in result.stdout


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("marketq.test", logging.INFO, __file__, 1, "ran %s", ("x",), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_the_standard_and_context_fields() -> None:
    line = json_formatter().format(
        _record(run_id="r1", job_name="news", queue="periodic", trace_id="ab" * 16)
    )
    value = json.loads(line)
    assert value["level"] == "INFO" and value["logger"] == "marketq.test"
    assert value["message"] == "ran x"
    assert value["time"].endswith("+00:00")  # ISO 8601, UTC
    assert (value["run_id"], value["job_name"], value["queue"]) == ("r1", "news", "periodic")
    assert value["trace_id"] == "ab" * 16
    assert "\n" not in line


def test_text_lines_end_with_the_context() -> None:
    line = TextFormatter().format(_record(run_id="r1", job_name="news"))
    assert line.endswith("INFO marketq.test: ran x [run_id=r1 job_name=news]")


def test_celery_lines_of_the_worker_main_process_name_their_run() -> None:
    # "Task x[id] received" is logged outside any task, with the task in extra["data"].
    record = _record(data={"id": "r9", "name": "news", "args": "()"})
    assert ContextFilter(with_celery=True).filter(record)
    assert (record.__dict__["run_id"], record.__dict__["job_name"]) == ("r9", "news")
