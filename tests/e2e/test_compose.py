"""deploy/compose.yaml, tested the way the chart is: the file against the Compose
Specification's JSON schema (vendored: tests/e2e/compose/SOURCE.md), its shutdown rules
against the job catalog, and every marketq service run as a process with exactly its
interpolated command and environment against a real redis-server and PostgreSQL.

What cannot stay as written when every service shares one host is changed and printed:
the Redis and database URLs name the test's servers (the compose file's `redis` and
`postgres` services are what they stand for), listen ports become free loopback ports,
the API keys secret is a file under the test's directory.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from marketq.api.auth import hash_key
from marketq.common.catalog import CATALOG
from marketq.common.queues import Queue
from tests.e2e.helm import ROOT
from tests.e2e.pods import VENV_BIN, image_command, image_service
from tests.fixtures.api import KEYS
from tests.fixtures.ports import free_port
from tests.fixtures.postgres import scratch_database
from tests.fixtures.redis import RedisServer

COMPOSE = ROOT / "deploy" / "compose.yaml"
SCHEMA = json.loads((Path(__file__).parent / "compose" / "compose-spec.json").read_text())
# What an operator exports (deploy/compose.yaml's header).
OPERATOR_ENV = {
    "MARKETQ_POSTGRES_PASSWORD": "compose-test",
    "MARKETQ_TASK_EVENTS": "true",
    "FLOWER_BASIC_AUTH": "ops:compose-flower",
}
# Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$.
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
# The HTTP port setting of each marketq service (a free loopback port on one host).
PORT_SETTINGS = {
    "api": ("MARKETQ_API_PORT", "MARKETQ_API_HOST"),
    "worker": ("MARKETQ_WORKER_HTTP_PORT", "MARKETQ_WORKER_HTTP_HOST"),
    "beat": ("MARKETQ_BEAT_HTTP_PORT", "MARKETQ_BEAT_HTTP_HOST"),
    "flower": ("FLOWER_PORT", "FLOWER_ADDRESS"),
}


def interpolate(text: str, env: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        current = env.get(name)
        if operator in (":-", "-"):
            unset = current is None or (operator == ":-" and current == "")
            return argument if unset else str(current)
        if operator in (":?", "?") and (current is None or (operator == ":?" and not current)):
            raise ValueError(f"{name}: {argument}")
        return current or ""

    return _VARIABLE.sub(value, text)


def load(env: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE.read_text(), env))
    return data


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match.group(1))


def test_the_compose_file_matches_the_compose_specification() -> None:
    validator_class = jsonschema.validators.validator_for(SCHEMA)
    validator = validator_class(SCHEMA)
    document = load(OPERATOR_ENV)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert not errors, errors
    # The check catches a mistake.
    document["services"]["api"]["restart_policy"] = "always"
    assert not validator.is_valid(document)


def test_the_compose_file_needs_the_database_password() -> None:
    with pytest.raises(ValueError, match="MARKETQ_POSTGRES_PASSWORD"):
        load({})


def test_one_worker_service_per_queue_whose_shutdown_covers_its_jobs() -> None:
    services = load(OPERATOR_ENV)["services"]
    workers = {
        s["command"][1]: s for s in services.values() if (s.get("command") or [""])[0] == "--queue"
    }
    assert sorted(workers) == sorted(q.value for q in Queue)
    for queue, service in workers.items():
        longest = max(job.time_limit for job in CATALOG.values() if job.queue.value == queue)
        soft = int(service["environment"]["MARKETQ_WORKER_SOFT_SHUTDOWN_SECONDS"])
        assert soft >= longest, queue
        assert _seconds(service["stop_grace_period"]) > soft, queue


def test_services_have_healthchecks_volumes_and_the_flower_profile() -> None:
    document = load(OPERATOR_ENV)
    services = document["services"]
    for name, service in services.items():
        if name != "migrate":  # a one-shot job
            assert "healthcheck" in service, name
    assert services["flower"]["profiles"] == ["flower"]
    assert all("profiles" not in s for n, s in services.items() if n != "flower")
    assert set(document["volumes"]) == {"redis-data", "postgres-data"}
    assert services["redis"]["volumes"] == ["redis-data:/data"]
    assert "ports" not in services["redis"] and "ports" not in services["postgres"]
    # The same images the chart runs.
    for name, service in services.items():
        if name not in ("redis", "postgres"):
            assert image_service(service["image"]) in ("api", "worker", "beat"), name


# --- the services as processes ----------------------------------------------------------


@dataclass
class ServiceProcess:
    name: str
    argv: list[str]
    env: dict[str, str]
    overrides: list[str] = field(default_factory=list)
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    last_check: str = ""

    def start(self, logdir: Path) -> None:
        self.log = logdir / f"{self.name}.log"
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log else ""

    def diagnosis(self) -> str:
        """Why the service is not healthy: the probe's last answer, the log's warnings
        and errors from the start (a failed bind is logged once, early), and its tail."""
        text = self.log.read_text(errors="replace") if self.log else ""
        alarms = [
            line[:400]
            for line in text.splitlines()
            if '"WARNING"' in line or '"ERROR"' in line or "Traceback" in line
        ]
        return (
            f"probe: {self.last_check[-600:]}\n"
            f"warnings and errors:\n" + "\n".join(alarms[:20]) + f"\nlog tail:\n{text[-1500:]}"
        )

    def healthy(self, check: list[str]) -> bool:
        assert check[0] == "CMD", check
        result = subprocess.run(check[1:], env=self.env, capture_output=True, timeout=10)
        self.last_check = (result.stdout + result.stderr).decode(errors="replace")
        return result.returncode == 0


def service_process(
    name: str, service: dict[str, Any], root: Path, redis_url: str, database_url: str
) -> ServiceProcess:
    """A compose service as a process: its image's entrypoint/command unless the service
    sets them, its interpolated environment, and the recorded one-host overrides."""
    image = image_service(service["image"])
    entry, cmd = image_command(image)
    entrypoint = service.get("entrypoint", entry)
    command = service.get("command", [] if "entrypoint" in service else cmd)
    env = {k: str(v) for k, v in service.get("environment", {}).items()}
    kind = "flower" if name == "flower" else image
    svc = ServiceProcess(name, [*entrypoint, *command], env)
    home = root / name
    (home / "tmp").mkdir(parents=True)
    keys = root / "api-keys.json"
    for key, value in (
        ("MARKETQ_REDIS_URL", redis_url),
        ("MARKETQ_DATABASE_URL", database_url),
        ("MARKETQ_API_KEYS_FILE", str(keys)),
    ):
        svc.overrides.append(f"{key}: {env.get(key)} -> {value}")
        env[key] = value
    if kind in PORT_SETTINGS and name != "migrate":
        port_var, host_var = PORT_SETTINGS[kind]
        svc.port = free_port()
        svc.overrides.append(f"{port_var}: {env.get(port_var)} -> {svc.port}")
        env[port_var], env[host_var] = str(svc.port), "127.0.0.1"
    # read_only with a tmpfs /tmp: each service its own.
    env["TMPDIR"] = str(home / "tmp")
    if kind == "worker":  # marketq-worker's default directory, one per service here
        env["PROMETHEUS_MULTIPROC_DIR"] = str(home / "tmp" / "metrics")
    env["PATH"] = f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin"
    env["HOME"] = str(home / "tmp")
    return svc


@pytest.fixture
def compose_stack(tmp_path: Path, postgres_admin_url: str) -> Iterator[dict[str, ServiceProcess]]:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    keys = [
        {"name": f"{scope}-key", "sha256": hash_key(key), "scopes": [scope]}
        for scope, key in KEYS.items()
    ]
    (tmp_path / "api-keys.json").write_text(json.dumps(keys))
    services = load(OPERATOR_ENV)["services"]
    logdir = tmp_path / "logs"
    logdir.mkdir()
    running: dict[str, ServiceProcess] = {}
    try:
        with scratch_database(postgres_admin_url, f"marketq_compose_{uuid.uuid4().hex[:8]}") as db:
            # depends_on: migrate completes first, then everything else.
            migrate = service_process("migrate", services["migrate"], tmp_path, redis.url, db)
            done = subprocess.run(migrate.argv, env=migrate.env, capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr
            for name, service in services.items():
                if name in ("redis", "postgres", "migrate"):
                    continue
                running[name] = service_process(name, service, tmp_path, redis.url, db)
                running[name].start(logdir)
            # Every service started at once; a loaded machine may need minutes for all.
            deadline = time.monotonic() + 240
            for name, svc in running.items():
                check = services[name]["healthcheck"]["test"]
                while not svc.healthy(check):
                    assert svc.process is not None and svc.process.poll() is None, (
                        f"{name} exited:\n{svc.log_text()}"
                    )
                    assert time.monotonic() < deadline, f"{name} unhealthy:\n{svc.diagnosis()}"
                    time.sleep(0.5)
                print(f"{name}: {' '.join(svc.argv)}\n  overrides: {'; '.join(svc.overrides)}")
            yield running
    finally:
        for svc in running.values():
            if svc.process is not None and svc.process.poll() is None:
                svc.process.send_signal(signal.SIGTERM)
        for svc in running.values():
            if svc.process is not None:
                try:
                    svc.process.wait(40)
                except subprocess.TimeoutExpired:
                    svc.process.kill()
                    svc.process.wait(10)
        redis.stop()


@pytest.mark.integration
@pytest.mark.postgres
def test_the_compose_services_run_jobs_on_every_queue(
    compose_stack: dict[str, ServiceProcess],
) -> None:
    api = f"http://127.0.0.1:{compose_stack['api'].port}"
    headers = {"Authorization": f"Bearer {KEYS['trigger']}"}
    runs = {}
    with httpx.Client(base_url=api, headers=headers, timeout=10) as http:
        for queue in Queue:
            answer = http.post(
                "/api/v1/jobs/health_check/runs",
                json={"params": {"check_database": True}, "queue": queue.value},
            )
            assert answer.status_code == 202, answer.text
            runs[queue.value] = answer.json()["run_id"]
        for queue, run_id in runs.items():
            deadline = time.monotonic() + 60
            run: dict[str, Any] = {}
            while run.get("state") not in ("SUCCESS", "FAILURE") and time.monotonic() < deadline:
                run = http.get(f"/api/v1/runs/{run_id}").json()
                time.sleep(0.2)
            assert run["state"] == "SUCCESS", (queue, run)
            assert run["worker"].startswith(f"{queue}@"), run
    # The flower profile: authenticated, and it saw the runs (task events are on).
    flower = f"http://127.0.0.1:{compose_stack['flower'].port}"
    user, password = OPERATOR_ENV["FLOWER_BASIC_AUTH"].split(":")
    assert httpx.get(f"{flower}/api/tasks", timeout=10).status_code == 401
    deadline = time.monotonic() + 30
    tasks: dict[str, Any] = {}
    while not set(runs.values()) <= set(tasks) and time.monotonic() < deadline:
        tasks = httpx.get(f"{flower}/api/tasks", auth=(user, password), timeout=10).json()
        time.sleep(0.5)
    assert set(runs.values()) <= set(tasks), sorted(tasks)
