"""One chart stack per session: charts/marketq rendered by helm and run as processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from marketq.api.auth import hash_key
from tests.e2e.helm import render
from tests.e2e.pods import Objects, PodBuilder
from tests.e2e.stack import ChartStack
from tests.fixtures.api import KEYS
from tests.fixtures.postgres import scratch_database
from tests.fixtures.redis import RedisServer

RELEASE = "mq"
FLOWER_AUTH = "ops:e2e-flower"
NAMESPACE = "marketq"


def process_values(redis: RedisServer, database_url: str) -> dict[str, Any]:
    """Values for the process run: the test's Redis and database, KEDA and monitoring on."""
    return {
        "redis": {
            "url": redis.url,
            "bundled": {"enabled": False},
            "keda": {"address": f"127.0.0.1:{redis.port}", "databaseIndex": 0},
        },
        "database": {"url": database_url},
        "api": {
            "replicas": 1,
            "auth": {
                "keys": [
                    {"name": f"{scope}-key", "sha256": hash_key(key), "scopes": [scope]}
                    for scope, key in KEYS.items()
                ]
            },
        },
        "keda": {"force": True},
        # Task events on one queue only: Flower sees daily's tasks, not default's.
        "workers": {
            "defaults": {"autoscaling": {"keda": {"enabled": True}}},
            "queues": {"daily": {"taskEvents": True}},
        },
        "flower": {"enabled": True, "auth": {"basicAuth": FLOWER_AUTH}},
        "monitoring": {
            "force": True,
            "serviceMonitor": {"enabled": True},
            "podMonitor": {"enabled": True},
        },
        # Beat's lock and loop short enough that it holds the lock within the run. Idle
        # workers leave at once on SIGTERM (the soft shutdown waits only for running jobs).
        "config": {"beatLockTimeoutSeconds": 15, "beatMaxLoopIntervalSeconds": 2},
    }


@pytest.fixture(scope="session")
def e2e_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    # Its own server: other tests in the session flush theirs.
    server = RedisServer(tmp_path_factory.mktemp("e2e-redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def e2e_database_url(postgres_admin_url: str) -> Iterator[str]:
    with scratch_database(postgres_admin_url, f"marketq_e2e_{uuid.uuid4().hex[:8]}") as url:
        yield url


@pytest.fixture(scope="session")
def rendered(
    e2e_redis: RedisServer, e2e_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Objects:
    workdir = tmp_path_factory.mktemp("e2e-render")
    values = process_values(e2e_redis, e2e_database_url)
    return Objects(render(values, release=RELEASE, namespace=NAMESPACE, workdir=workdir))


@pytest.fixture(scope="session")
def chart_stack(
    rendered: Objects, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChartStack]:
    root: Path = tmp_path_factory.mktemp("e2e-pods")
    builder = PodBuilder(rendered, root, NAMESPACE)
    stack = ChartStack(objects=rendered, builder=builder, logdir=root / "logs")
    stack.logdir.mkdir()
    migrations = [job for job in rendered.of_kind("Job") if rendered.is_hook(job, "pre-install")]
    assert len(migrations) == 1, "expected one pre-install hook Job (the migration)"
    job = migrations[0]
    pod = builder.pod(job["metadata"]["name"], job["spec"]["template"]["spec"])
    result = stack.run_to_completion(pod)
    assert result.returncode == 0, (
        f"migration hook {pod.argv} failed:\n{result.stdout}{result.stderr}"
    )
    stack.migration = (pod, result)
    try:
        for deployment in rendered.deployments():
            name = deployment["metadata"]["name"]
            stack.start(name, builder.pod(name, deployment["spec"]["template"]["spec"]))
        stack.probes = {name: stack.wait_probes(name) for name in stack.processes}
        yield stack
    finally:
        stack.close()
