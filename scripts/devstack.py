"""`make up`: the whole marketq stack on one machine, stopped with Ctrl-C.

Uses MARKETQ_REDIS_URL when it is set, else starts a private redis-server on a free
loopback port (data under var/redis). Migrates the database (SQLite under var/ unless
MARKETQ_DATABASE_URL is set), starts one worker per queue exactly as the containers do
(`marketq-worker --queue <name>`) and the scheduler (`marketq-beat`, unless
MARKETQ_BEAT_ENABLED=false), prints where everything runs, and stops every process it
started, by PID, when interrupted. The API gets a fresh development key (admin scope)
each time unless MARKETQ_API_KEYS is set; it is printed with a curl example.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Local state (database, Redis data, logs); the tests point it at a temporary directory.
VAR = Path(os.environ.get("DEVSTACK_DIR", ROOT / "var")).resolve()
QUEUES = ("market_hours", "daily", "periodic", "default")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit(
            "redis-server not found: sudo apt-get install -y redis-server "
            "(or set MARKETQ_REDIS_URL to an existing Redis)"
        )
    port = free_port()
    data = VAR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    log = (VAR / "log" / "redis.log").open("ab")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    processes.append(("redis", proc))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.1)
    sys.exit(f"redis-server did not start; see {VAR / 'log' / 'redis.log'}")


def wait_ready(name: str, log_path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited with {proc.returncode}; see {log_path}")
        if "ready." in log_path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    sys.exit(f"{name} not ready after {timeout:.0f} s; see {log_path}")


def wait_http(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{url} exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"no answer from {url} after {timeout:.0f} s; see {log_path}")


def development_key(env: dict[str, str]) -> str | None:
    """A fresh admin key for this run (its hash goes to the API), unless keys are set."""
    if env.get("MARKETQ_API_KEYS") or env.get("MARKETQ_API_KEYS_FILE"):
        return None
    from marketq.api.auth import new_key

    key, digest = new_key()
    env["MARKETQ_API_KEYS"] = json.dumps(
        [{"name": "development", "sha256": digest, "scopes": ["admin"]}]
    )
    return key


def stop(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _name, proc in reversed(processes):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for name, proc in reversed(processes):
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"  {name} did not stop in time; killing pid {proc.pid}")
            proc.kill()


def main() -> None:
    (VAR / "log").mkdir(parents=True, exist_ok=True)
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    env = dict(os.environ)
    env.setdefault("MARKETQ_DATABASE_URL", f"sqlite:///{VAR / 'marketq.db'}")
    env.setdefault("MARKETQ_IMPORT_DIR", str(VAR / "imports"))
    Path(env["MARKETQ_IMPORT_DIR"]).mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent

    def shutdown(signum: int, _frame: object) -> None:
        print("\nstopping marketq ...")
        stop(processes)
        sys.exit(0)

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)

    if env.get("MARKETQ_REDIS_URL"):
        redis_where = f"{env['MARKETQ_REDIS_URL'].split('@')[-1]} (MARKETQ_REDIS_URL)"
    else:
        env["MARKETQ_REDIS_URL"] = start_redis(processes)
        redis_where = (
            f"{env['MARKETQ_REDIS_URL']} (pid {processes[-1][1].pid}, data in {VAR / 'redis'})"
        )

    subprocess.run([str(bin_dir / "marketq"), "db", "upgrade"], env=env, check=True)
    subprocess.run([str(bin_dir / "marketq"), "db", "seed-demo"], env=env, check=True)

    workers = []
    for queue in QUEUES:
        log_path = VAR / "log" / f"worker-{queue}.log"
        log_path.write_bytes(b"")
        # Each worker its own /metrics port and multiprocess directory (one machine).
        metrics_port = free_port()
        env_worker = {
            **env,
            "MARKETQ_WORKER_HTTP_HOST": "127.0.0.1",
            "MARKETQ_WORKER_HTTP_PORT": str(metrics_port),
            "PROMETHEUS_MULTIPROC_DIR": str(VAR / "metrics" / queue),
        }
        proc = subprocess.Popen(
            [
                str(bin_dir / "marketq-worker"),
                "--queue",
                queue,
                "--hostname",
                f"{queue}@{socket.gethostname()}",
            ],
            env=env_worker,
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        processes.append((f"worker-{queue}", proc))
        workers.append((queue, proc, log_path, f"http://127.0.0.1:{metrics_port}"))
    api_key = development_key(env)
    api_port = int(env.get("MARKETQ_API_PORT", "0")) or free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    api_log = VAR / "log" / "api.log"
    api = subprocess.Popen(
        [str(bin_dir / "marketq-api"), "--host", "127.0.0.1", "--port", str(api_port)],
        env=env,
        stdout=api_log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    processes.append(("api", api))
    beat = None
    beat_enabled = env.get("MARKETQ_BEAT_ENABLED", "true").lower() not in ("false", "0", "no")
    if beat_enabled:
        beat_port = free_port()
        env_beat = {
            **env,
            "MARKETQ_BEAT_HTTP_HOST": "127.0.0.1",
            "MARKETQ_BEAT_HTTP_PORT": str(beat_port),
        }
        beat_log = VAR / "log" / "beat.log"
        beat = subprocess.Popen(
            [str(bin_dir / "marketq-beat")],
            env=env_beat,
            stdout=beat_log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        processes.append(("beat", beat))
    for queue, proc, log_path, _url in workers:
        wait_ready(f"worker {queue}", log_path, proc, timeout=90)
    wait_http(f"{api_url}/livez", api, api_log, timeout=60)
    if beat is not None:
        wait_http(f"http://127.0.0.1:{beat_port}/livez", beat, beat_log, timeout=60)

    print("\nmarketq is running (Ctrl-C stops everything)\n", flush=False)
    print(f"  redis      {redis_where}")
    print(f"  database   {env['MARKETQ_DATABASE_URL']}")
    for queue, proc, log_path, _url in workers:
        print(f"  worker     queue {queue:<13} pid {proc.pid:<8} log {log_path}")
    print(f"  api        {api_url} (pid {api.pid}, docs {api_url}/docs, log {api_log})")
    if beat is not None:
        print(
            f"  beat       pid {beat.pid:<8} metrics http://127.0.0.1:{beat_port}/metrics "
            f"log {beat_log} (full schedule; `marketq schedules` shows the next fires)"
        )
    else:
        print("  beat       off (MARKETQ_BEAT_ENABLED=false): jobs run only when triggered")
    print("\nPrometheus metrics (no auth; workers also serve /livez and /readyz):\n")
    print(f"  metrics    api                 {api_url}/metrics")
    for queue, _proc, _log, url in workers:
        print(f"  metrics    worker {queue:<13} {url}/metrics")
    if beat is not None:
        print(f"  metrics    beat                http://127.0.0.1:{beat_port}/metrics")
    print("\ntrigger a job (another shell):\n")
    shown_key = api_key or "<a key from MARKETQ_API_KEYS>"
    print(f"  export MARKETQ_API_URL={api_url} MARKETQ_API_KEY={shown_key}")
    print(
        '  curl -sS -X POST -H "Authorization: Bearer $MARKETQ_API_KEY" '
        '-H \'Content-Type: application/json\' -d \'{"params":{"symbols":["AAPL"]}}\' '
        "$MARKETQ_API_URL/api/v1/jobs/stock_quotes/runs"
    )
    print("  uv run marketq run stock_quotes --param symbols=AAPL,MSFT --wait")
    print("\nor straight to the broker, without the API:\n")
    print(
        f"  export MARKETQ_REDIS_URL={env['MARKETQ_REDIS_URL']} "
        f"MARKETQ_DATABASE_URL={env['MARKETQ_DATABASE_URL']}"
    )
    print("  uv run marketq submit stock_quotes --param symbols=AAPL,MSFT --wait\n", flush=True)
    while True:
        for name, proc in processes:
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping the stack")
                stop(processes)
                sys.exit(1)
        time.sleep(1)


if __name__ == "__main__":
    main()
