"""TLS to Redis end to end, verified against a private CA.

A real `redis-server` serving TLS only (``--port 0 --tls-port``), with a CA and server
certificate made by openssl; every process gets ``rediss://`` and
``MARKETQ_REDIS_TLS_CA_FILE`` as the chart passes them. The API, a worker, beat and the
CLI's ``submit`` each complete a round trip. (The chart side, the CA mounted in every
Deployment and handed to KEDA's TriggerAuthentication with ``enableTLS`` on every
trigger, is rendered by tests/chart/test_keda.py and tests/chart/test_workloads.py.)
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from marketq.common.db.models import TaskRun
from tests.fixtures.api import start_api
from tests.fixtures.beat import FAST_BEAT, BeatFleet, write_schedule
from tests.fixtures.redis import RedisServer, make_tls_files
from tests.fixtures.workers import ROOT, Stack, own_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def tls_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    files = make_tls_files(tmp_path / "tls")
    server = RedisServer(tmp_path / "redis", tls=files)
    schedule = write_schedule(
        tmp_path / "schedule.yaml", {"tls_probe": {"job": "health_check", "every_seconds": 1}}
    )
    with own_stack(
        server,
        tmp_path,
        monkeypatch,
        MARKETQ_REDIS_TLS_CA_FILE=str(files.ca),
        MARKETQ_SCHEDULE_FILE=str(schedule),
        **FAST_BEAT,
    ) as stack:
        yield stack


def test_api_worker_beat_and_cli_work_over_tls_with_a_private_ca(tls_stack: Stack) -> None:
    stack = tls_stack
    assert stack.redis.url.startswith("rediss://")
    # The server really is TLS only with a certificate no public store trusts.
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(stack.redis.url, socket_timeout=3).ping()

    worker = stack.start_worker("default", name="tls@x")
    api = start_api(stack)
    try:
        with api.client("trigger") as client:
            response = client.post(
                "/api/v1/jobs/health_check/runs", json={"params": {"check_database": True}}
            )
            assert response.status_code == 202, response.text
            via_api = response.json()["run_id"]
            assert client.get("/readyz").status_code == 200
        stack.wait_for_states([via_api], {"SUCCESS"}, timeout=60)
    finally:
        api.stop()

    submitted = subprocess.run(
        [sys.executable, "-m", "marketq.cli", "submit", "health_check", "--wait"],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr

    fleet = BeatFleet(stack=stack, env=stack.env)
    try:
        fleet.start("tls-beat")
        fleet.holder(timeout=30)  # took its RedBeat lock over TLS

        def fired_runs_succeeded() -> bool:
            with stack.sessions()() as session:
                states = session.scalars(
                    select(TaskRun.state).where(TaskRun.id.not_in([via_api]))
                ).all()
            return states.count("SUCCESS") >= 3  # the CLI's run and beat's fires

        stack.wait_for(fired_runs_succeeded, 60, "beat's fires to run over TLS")
    finally:
        fleet.close()
    assert worker.process is not None and worker.process.poll() is None
