"""`make up`'s launcher (scripts/devstack.py) as a user runs it: a real stack of processes.

Covered: every queue, the API and beat run and answer; Ctrl-C stops everything with one
message and no SIGKILL; a second stack on the same var/ is refused; ports and the API key
survive a restart (var/env); a failed start names the cause and leaves no process behind.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fixtures.ports import free_port
from tests.fixtures.startup import STARTUP_SECONDS
from tests.fixtures.workers import ROOT

pytestmark = pytest.mark.integration

QUEUES = ("market_hours", "daily", "periodic", "default")
READY_LINE = "marketq submit stock_quotes"  # the last line `make up` prints when ready
# An idle stack stops in about a second; the margin is for a loaded test machine.
IDLE_STOP_SECONDS = 15


def clean_env(var: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETQ_")}
    return {**env, "DEVSTACK_DIR": str(var), **extra}


@dataclass
class Devstack:
    proc: subprocess.Popen[str]
    var: Path
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def read_until(self, marker: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if marker in line:
                return self.text
        raise AssertionError(f"no {marker!r} in the output:\n{self.text}")

    def rest(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        out, _ = self.proc.communicate(timeout=timeout)
        self.lines.append(out)
        return self.text

    def descendants(self) -> list[psutil.Process]:
        return started_by(self.proc.pid, self.var)


def started_by(pid: int, var: Path) -> list[psutil.Process]:
    """Processes the launcher started: its children run in sessions of their own, so they
    are found by the DEVSTACK_DIR in their environment rather than by parentage. The marker
    is the directory this test gave, not one read from the launcher: once the launcher has
    exited its environment reads as empty, and an absent marker would match every process."""
    marker = str(var)
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != pid and proc.environ().get("DEVSTACK_DIR") == marker:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def launch(var: Path, **extra: str) -> Devstack:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "devstack.py")],
        env=clean_env(var, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    return Devstack(proc, var)


def sourced(env_file: Path) -> dict[str, str]:
    """The variables var/env exports (what `source var/env` sets)."""
    done = subprocess.run(
        ["bash", "-c", f"source {env_file} && env -0"], capture_output=True, text=True, check=True
    )
    pairs = (item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)
    return {k: v for k, v in pairs if k.startswith("MARKETQ_") or k == "PATH"}


def stop_with_ctrl_c(stack: Devstack) -> tuple[float, str]:
    children = stack.descendants()
    started = time.monotonic()
    stack.proc.send_signal(signal.SIGINT)
    text = stack.rest(timeout=120)
    took = time.monotonic() - started
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left running: {alive}"
    return took, text


def test_devstack_runs_every_queue_and_stops_fast_and_cleanly(tmp_path: Path) -> None:
    stack = launch(tmp_path)
    try:
        text = stack.read_until(READY_LINE, timeout=2 * STARTUP_SECONDS)
        assert "marketq is running" in text, text
        for queue in QUEUES:
            assert re.search(rf"worker\s+queue {queue}\s+pid \d+", text), text
        worker_metrics = dict(re.findall(r"metrics\s+worker (\w+)\s+(\S+)/metrics", text))
        assert set(worker_metrics) == set(QUEUES), text
        for queue, url in worker_metrics.items():
            metrics = httpx.get(f"{url}/metrics", timeout=10).text
            assert f'marketq_worker_consuming{{queue="{queue}"}}' in metrics
        beat = re.search(r"beat\s+pid (\d+)\s+metrics (\S+)/metrics", text)
        assert beat, text
        assert httpx.get(f"{beat[2]}/livez", timeout=10).status_code == 200

        # The printed commands work as printed: `source var/env`, then `marketq ...`.
        env_file = Path(re.search(r"source (\S+)", text)[1])  # type: ignore[index]
        exported = sourced(env_file)
        assert Path(exported["PATH"].split(":")[0], "marketq").is_file()
        run = subprocess.run(
            ["bash", "-c", f"source {env_file} && marketq run health_check --wait"],
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env(tmp_path),
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "SUCCESS" in run.stdout
        unauthorised = httpx.get(
            f"{exported['MARKETQ_API_URL']}/api/v1/runs",
            headers={"Authorization": "Bearer nope"},
            timeout=10,
        )
        assert unauthorised.status_code == 401
    finally:
        took, text = stop_with_ctrl_c(stack)
    assert stack.proc.returncode == 0, text
    assert text.count("stopping marketq") == 1, text
    assert "killed" not in text, text
    assert took < IDLE_STOP_SECONDS, f"an idle stack took {took:.1f} s to stop:\n{text}"


def test_a_second_stack_is_refused_and_ports_and_key_survive_a_restart(
    tmp_path: Path,
) -> None:
    first = launch(tmp_path)
    try:
        first.read_until(READY_LINE, timeout=2 * STARTUP_SECONDS)
        before = sourced(tmp_path / "env")
        second = launch(tmp_path)
        out = second.rest(timeout=60)
        assert second.proc.returncode == 1, out
        assert f"already running from {tmp_path}" in out, out
        assert f"pid {first.proc.pid}, API at {before['MARKETQ_API_URL']}" in out, out
    finally:
        stop_with_ctrl_c(first)

    again = launch(tmp_path)
    try:
        again.read_until(READY_LINE, timeout=2 * STARTUP_SECONDS)
        after = sourced(tmp_path / "env")
        for name in ("MARKETQ_API_URL", "MARKETQ_API_KEY", "MARKETQ_REDIS_URL"):
            assert after[name] == before[name], name
        answer = httpx.get(
            f"{after['MARKETQ_API_URL']}/api/v1/jobs",
            headers={"Authorization": f"Bearer {before['MARKETQ_API_KEY']}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
    finally:
        stop_with_ctrl_c(again)


def test_an_unreachable_redis_is_named_before_anything_starts(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://:s3cret@127.0.0.1:{port}/0"
    started = time.monotonic()
    stack = launch(tmp_path, MARKETQ_REDIS_URL=url)
    out = stack.rest(timeout=60)
    assert stack.proc.returncode == 1, out
    assert time.monotonic() - started < 30
    assert f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0" in out, out
    assert "MARKETQ_REDIS_URL" in out and "s3cret" not in out
    assert not (tmp_path / "env").exists()


def test_a_failure_after_start_stops_every_process(tmp_path: Path) -> None:
    # The API's port is taken: the API exits, and everything started before it stops.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    try:
        stack = launch(tmp_path, MARKETQ_API_PORT=str(taken))
        # Process objects, not pids: a pid freed by the stop may be reused by another test's
        # process by the time we look; is_running() checks it is still the same process.
        seen: dict[int, psutil.Process] = {}
        deadline = time.monotonic() + 2 * STARTUP_SECONDS
        while stack.proc.poll() is None and time.monotonic() < deadline:
            try:
                seen |= {p.pid: p for p in stack.descendants()}
            except psutil.NoSuchProcess:
                break
            time.sleep(0.5)
        out = stack.rest(timeout=120)
    finally:
        blocker.close()
    assert stack.proc.returncode == 1, out
    assert "error:" in out and "api" in out.lower(), out
    assert seen, "the launcher started nothing before the failure"
    _gone, left = psutil.wait_procs([p for p in seen.values() if p.is_running()], 10)
    assert not left, f"processes left behind: {left}\n{out}"
