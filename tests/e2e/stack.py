"""The rendered chart running as processes: one per Deployment, after the migration hook."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.e2e.pods import Objects, Pod, PodBuilder

PROBE_TIMEOUT = 90.0


@dataclass
class Process:
    pod: Pod
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.popen = subprocess.Popen(
            self.pod.argv,
            env=self.pod.env,
            cwd=self.pod.workdir,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tree(self) -> list[psutil.Process]:
        try:
            main = psutil.Process(self.pid)
            return [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def local_ports(self, remote_port: int) -> set[int]:
        """Local TCP ports of the connections to ``remote_port`` that the process and its
        children hold. Only those: Linux gives one ephemeral port to several connections
        when their destinations differ, so another process's connection to that server
        may share a port this process uses for its database connection."""
        ports = set()
        for proc in self.tree():
            try:
                connections = proc.net_connections(kind="tcp")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            ports |= {c.laddr.port for c in connections if c.raddr and c.raddr.port == remote_port}
        return ports

    def terminate(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)

    def wait_or_kill(self, timeout: float) -> None:
        if self.popen is None:
            return
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(5)


@dataclass
class ChartStack:
    objects: Objects
    builder: PodBuilder
    logdir: Path
    processes: dict[str, Process] = field(default_factory=dict)  # by Deployment name
    probes: dict[str, list[str]] = field(default_factory=dict)  # probes that passed
    migration: tuple[Pod, subprocess.CompletedProcess[str]] | None = None

    def run_to_completion(self, pod: Pod, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            pod.argv,
            env=pod.env,
            cwd=pod.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, name: str, pod: Pod) -> Process:
        process = Process(pod, self.logdir / f"{name}.log").start()
        self.processes[name] = process
        return process

    def wait_probes(self, name: str) -> list[str]:
        """Poll every probe the container declares until it passes; the probes checked."""
        process = self.processes[name]
        container = process.pod.container
        probes = [
            (kind, container[kind])
            for kind in ("startupProbe", "livenessProbe", "readinessProbe")
            if kind in container
        ]
        assert probes, f"{name} declares no probes"
        checked = []
        deadline = time.monotonic() + PROBE_TIMEOUT
        for kind, probe in probes:
            while not probe_passes(process.pod, probe):
                if not process.alive():
                    pytest.fail(f"{name} exited:\n{process.log_text()[-4000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"{name}: {kind} {describe(probe)} did not pass in {PROBE_TIMEOUT} s\n"
                        f"{process.log_text()[-4000:]}"
                    )
                time.sleep(0.25)
            checked.append(f"{kind} {describe(probe)}")
        return checked

    def close(self) -> None:
        # SIGTERM to every pod at once, as a namespace deletion does; workers then take up
        # to their soft-shutdown time, so waiting one by one would add those up.
        for process in self.processes.values():
            process.terminate()
        deadline = time.monotonic() + 40
        for process in self.processes.values():
            process.wait_or_kill(max(0.1, deadline - time.monotonic()))


def describe(probe: dict[str, Any]) -> str:
    if "httpGet" in probe:
        return f"GET {probe['httpGet'].get('path', '/')} on port {probe['httpGet']['port']}"
    if "tcpSocket" in probe:
        return f"TCP port {probe['tcpSocket']['port']}"
    return f"exec {probe.get('exec', {}).get('command')}"


def probe_passes(pod: Pod, probe: dict[str, Any]) -> bool:
    if "httpGet" in probe:
        get = probe["httpGet"]
        url = f"http://127.0.0.1:{pod.host_port(get['port'])}{get.get('path', '/')}"
        try:
            status = httpx.get(url, timeout=probe.get("timeoutSeconds", 1)).status_code
        except httpx.TransportError:
            return False
        return 200 <= status < 400
    if "tcpSocket" in probe:
        try:
            with socket.create_connection(
                ("127.0.0.1", pod.host_port(probe["tcpSocket"]["port"])), 1
            ):
                return True
        except OSError:
            return False
    if "exec" in probe:
        result = subprocess.run(
            probe["exec"]["command"], env=pod.env, cwd=pod.workdir, capture_output=True
        )
        return result.returncode == 0
    raise AssertionError(f"unsupported probe {probe}")
