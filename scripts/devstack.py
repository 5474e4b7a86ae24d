"""`make up`: the whole marketq stack on one machine, stopped with Ctrl-C.

Uses MARKETQ_REDIS_URL when it is set, else starts a private redis-server on loopback
(data under var/redis). Migrates the database (SQLite under var/ unless
MARKETQ_DATABASE_URL is set), starts one worker per queue exactly as the containers do
(`marketq-worker --queue <name>`), the API, and the scheduler (`marketq-beat`, unless
MARKETQ_BEAT_ENABLED=false), and prints where everything runs.

* Redis and the database are checked before anything starts; an error names the URL
  (password masked). Any failure stops every process already started.
* One stack per checkout: a second `make up` on the same var/ is refused with the pid and
  the API address of the running one.
* Ports and the development API key are stable: chosen once and kept in var/, so the
  variables in var/env (`source var/env`) keep working across restarts.
* Ctrl-C stops the stack with one message: beat and the API first, then the workers (an
  idle worker stops at once; a busy one finishes or re-queues its runs within its soft
  shutdown), Redis last. Every process is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
# Local state (database, Redis data, logs, ports, key); the tests point it elsewhere.
VAR = Path(os.environ.get("DEVSTACK_DIR", ROOT / "var")).resolve()
QUEUES = ("market_hours", "daily", "periodic", "default")
BIN = Path(sys.executable).parent
STATE = VAR / "devstack.json"  # pid and API address of the running stack
PORTS = VAR / "ports.json"  # the ports chosen on the first start, reused after
KEY = VAR / "api-key"  # the development API key (admin scope), mode 0600
ENV_FILE = VAR / "env"  # `source var/env`: the variables the printed commands use


class StackError(Exception):
    """A start-up failure with a message for the user; the stack is stopped."""


Process = tuple[str, "subprocess.Popen[bytes]"]


def masked(url: str) -> str:
    """The URL with its password replaced (for messages)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL SQLAlchemy parses: mask by hand
        scheme, sep, rest = url.partition("://")
        if not sep or "@" not in rest:
            return url
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"


# --- one stack per checkout --------------------------------------------------------------


def take_lock() -> IO[str]:
    """Hold var/devstack.lock for the stack's lifetime (released by the OS if it dies)."""
    VAR.mkdir(parents=True, exist_ok=True)
    handle = (VAR / "devstack.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        running: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            running = json.loads(STATE.read_text())
        where = f"pid {running.get('pid', '?')}, API at {running.get('api_url', '?')}"
        raise StackError(
            f"marketq is already running from {VAR} ({where}); stop it with Ctrl-C in its "
            "terminal, or use another DEVSTACK_DIR"
        ) from None
    return handle


# --- stable ports and key ------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers bind (SO_REUSEADDR): our own last run's TIME_WAIT is no obstacle.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stable_ports(names: list[str]) -> dict[str, int]:
    """A loopback port per name: the one var/ports.json remembers when it is still free."""
    saved: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        saved = {k: int(v) for k, v in json.loads(PORTS.read_text()).items()}
    ports: dict[str, int] = {}
    for name in names:
        port = saved.get(name)
        if port is None or not port_is_free(port) or port in ports.values():
            if port is not None:
                print(f"  port {port} ({name}) is taken; using another one", file=sys.stderr)
            port = free_port()
        ports[name] = port
    PORTS.write_text(json.dumps({**saved, **ports}, indent=1) + "\n")
    return ports


def development_key(env: dict[str, str]) -> str | None:
    """The checkout's admin key (created once), unless MARKETQ_API_KEYS(_FILE) is set."""
    if env.get("MARKETQ_API_KEYS") or env.get("MARKETQ_API_KEYS_FILE"):
        return None
    from marketq.api.auth import hash_key, new_key

    key = KEY.read_text().strip() if KEY.exists() else ""
    if not key:
        key, _digest = new_key()
        KEY.write_text(key + "\n")
        KEY.chmod(0o600)
    env["MARKETQ_API_KEYS"] = json.dumps(
        [{"name": "development", "sha256": hash_key(key), "scopes": ["admin"]}]
    )
    return key


def write_env_file(values: dict[str, str]) -> None:
    lines = ["# Written by `make up` (scripts/devstack.py): source it in another shell."]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    lines.append(f"export PATH={shlex.quote(str(BIN))}:$PATH")
    ENV_FILE.write_text("\n".join(lines) + "\n")
    ENV_FILE.chmod(0o600)


# --- preflight -------------------------------------------------------------------------------


def check_redis(url: str, source: str) -> None:
    import redis

    from marketq.common.redis_client import redis_client
    from marketq.common.settings import Settings

    try:
        # The processes' own factory: a sentinel:// URL is checked on its current master
        # (MARKETQ_REDIS_SENTINEL_* from the environment), TLS as the processes use it.
        settings = Settings(redis_url=url)
        client = redis_client(url, settings, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise StackError(
            f"cannot reach Redis at {masked(url)} ({source}): {exc}. Start it, fix the URL, "
            "or unset MARKETQ_REDIS_URL to let `make up` run its own."
        ) from None


def check_database(url: str, source: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        options = {"connect_timeout": 3} if url.startswith("postgresql") else {}
        engine = create_engine(url, connect_args=options)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except (SQLAlchemyError, OSError, ValueError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StackError(
            f"cannot use the database at {masked(url)} ({source}): {first_line}"
        ) from None


# --- processes --------------------------------------------------------------------------------


def spawn(
    processes: list[Process], name: str, argv: list[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    # A session of its own: Ctrl-C reaches only this script, which stops the stack in order.
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    processes.append((name, proc))
    return proc


def start_redis(processes: list[Process], port: int) -> str:
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        raise StackError(
            "redis-server not found: sudo apt-get install -y redis-server "
            "(or set MARKETQ_REDIS_URL to an existing Redis)"
        )
    data = VAR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
    argv += ["--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction"]
    spawn(processes, "redis", argv, dict(os.environ), VAR / "log" / "redis.log")
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(StackError):
            check_redis(url, "started by make up")
            return url
        time.sleep(0.1)
    raise StackError(f"redis-server did not start; see {VAR / 'log' / 'redis.log'}")


def wait_ready(name: str, log_path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{name} exited with {proc.returncode}; see {log_path}")
        if "ready." in log_path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise StackError(f"{name} not ready after {timeout:.0f} s; see {log_path}")


def wait_http(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{url} exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise StackError(f"no answer from {url} after {timeout:.0f} s; see {log_path}")


def terminate(group: list[Process], deadline: float) -> None:
    """SIGTERM each, then wait until ``deadline``; SIGKILL (and say so) only past it."""
    for _name, proc in group:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in group:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"  {name} (pid {proc.pid}) did not stop in time: killed", flush=True)
            proc.kill()
            proc.wait(5)


def stop(processes: list[Process], soft_shutdown: float) -> None:
    """Producers first (beat, API), then the workers, Redis last."""
    producers = [p for p in processes if p[0] in ("beat", "api")]
    workers = [p for p in processes if p[0].startswith("worker-")]
    rest = [p for p in processes if p not in producers and p not in workers]
    terminate(producers, time.monotonic() + 15)
    # A busy worker gets its soft shutdown to finish or re-queue; idle ones exit at once.
    terminate(workers, time.monotonic() + soft_shutdown + 15)
    terminate(rest, time.monotonic() + 10)


# --- the stack -------------------------------------------------------------------------------


def interrupt(signum: int, _frame: object) -> None:
    # Once: a second Ctrl-C (or the SIGINT uv forwards) must not restart the shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def run(processes: list[Process], env: dict[str, str]) -> None:
    redis_from_env = bool(env.get("MARKETQ_REDIS_URL"))
    names = ["api", "beat", *(f"worker-{q}" for q in QUEUES)]
    if not redis_from_env:
        names.insert(0, "redis")
    # Preflight: what the user pointed us at must work before anything starts.
    if redis_from_env:
        check_redis(env["MARKETQ_REDIS_URL"], "MARKETQ_REDIS_URL")
    database_source = "MARKETQ_DATABASE_URL" if env.get("MARKETQ_DATABASE_URL") else "var/"
    env.setdefault("MARKETQ_DATABASE_URL", f"sqlite:///{VAR / 'marketq.db'}")
    check_database(env["MARKETQ_DATABASE_URL"], database_source)

    ports = stable_ports(names)
    if redis_from_env:
        redis_where = f"{masked(env['MARKETQ_REDIS_URL'])} (MARKETQ_REDIS_URL)"
    else:
        env["MARKETQ_REDIS_URL"] = start_redis(processes, ports["redis"])
        redis_where = (
            f"{env['MARKETQ_REDIS_URL']} (pid {processes[-1][1].pid}, data in {VAR / 'redis'})"
        )

    for step in (["db", "upgrade"], ["db", "seed-demo"]):
        done = subprocess.run(
            [str(BIN / "marketq"), *step], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise StackError(f"marketq {' '.join(step)} failed:\n{done.stdout}{done.stderr}")

    workers = []
    for queue in QUEUES:
        log_path = VAR / "log" / f"worker-{queue}.log"
        log_path.write_bytes(b"")
        # Each worker its own /metrics port and multiprocess directory (one machine).
        port = ports[f"worker-{queue}"]
        env_worker = {
            **env,
            "MARKETQ_WORKER_HTTP_HOST": "127.0.0.1",
            "MARKETQ_WORKER_HTTP_PORT": str(port),
            "PROMETHEUS_MULTIPROC_DIR": str(VAR / "metrics" / queue),
        }
        argv = [str(BIN / "marketq-worker"), "--queue", queue]
        argv += ["--hostname", f"{queue}@{socket.gethostname()}"]
        proc = spawn(processes, f"worker-{queue}", argv, env_worker, log_path)
        workers.append((queue, proc, log_path, f"http://127.0.0.1:{port}"))

    api_key = development_key(env)
    api_port = int(env["MARKETQ_API_PORT"]) if env.get("MARKETQ_API_PORT") else ports["api"]
    api_url = f"http://127.0.0.1:{api_port}"
    api_log = VAR / "log" / "api.log"
    api_log.write_bytes(b"")
    argv = [str(BIN / "marketq-api"), "--host", "127.0.0.1", "--port", str(api_port)]
    api = spawn(processes, "api", argv, env, api_log)
    STATE.write_text(json.dumps({"pid": os.getpid(), "api_url": api_url}) + "\n")

    beat = None
    beat_url = f"http://127.0.0.1:{ports['beat']}"
    beat_log = VAR / "log" / "beat.log"
    if env.get("MARKETQ_BEAT_ENABLED", "true").lower() not in ("false", "0", "no"):
        beat_log.write_bytes(b"")
        env_beat = {
            **env,
            "MARKETQ_BEAT_HTTP_HOST": "127.0.0.1",
            "MARKETQ_BEAT_HTTP_PORT": str(ports["beat"]),
        }
        beat = spawn(processes, "beat", [str(BIN / "marketq-beat")], env_beat, beat_log)
    for queue, proc, log_path, _url in workers:
        wait_ready(f"worker {queue}", log_path, proc, timeout=90)
    wait_http(f"{api_url}/livez", api, api_log, timeout=90)
    if beat is not None:
        wait_http(f"{beat_url}/livez", beat, beat_log, timeout=60)

    exported = {"MARKETQ_API_URL": api_url}
    if api_key:
        exported["MARKETQ_API_KEY"] = api_key
    exported["MARKETQ_REDIS_URL"] = env["MARKETQ_REDIS_URL"]
    exported["MARKETQ_DATABASE_URL"] = env["MARKETQ_DATABASE_URL"]
    write_env_file(exported)

    print("\nmarketq is running (Ctrl-C stops everything)\n")
    print(f"  redis      {redis_where}")
    print(f"  database   {masked(env['MARKETQ_DATABASE_URL'])}")
    for queue, proc, log_path, _url in workers:
        print(f"  worker     queue {queue:<13} pid {proc.pid:<8} log {log_path}")
    print(f"  api        {api_url} (pid {api.pid}, docs {api_url}/docs, log {api_log})")
    if beat is not None:
        print(
            f"  beat       pid {beat.pid:<8} metrics {beat_url}/metrics "
            f"log {beat_log} (full schedule; `marketq schedules` shows the next fires)"
        )
    else:
        print("  beat       off (MARKETQ_BEAT_ENABLED=false): jobs run only when triggered")
    print("\nPrometheus metrics (no auth; workers also serve /livez and /readyz):\n")
    print(f"  metrics    api                 {api_url}/metrics")
    for queue, _proc, _log, url in workers:
        print(f"  metrics    worker {queue:<13} {url}/metrics")
    if beat is not None:
        print(f"  metrics    beat                {beat_url}/metrics")
    key_note = "" if api_key else " (MARKETQ_API_KEY: a key of your MARKETQ_API_KEYS)"
    print(f"\nin another shell (ports and key stay the same across restarts){key_note}:\n")
    print(f"  source {ENV_FILE}")
    print("  marketq run stock_quotes --param symbols=AAPL,MSFT --wait")
    print(
        '  curl -sS -X POST -H "Authorization: Bearer $MARKETQ_API_KEY" '
        '-H \'Content-Type: application/json\' -d \'{"params":{"symbols":["AAPL"]}}\' '
        "$MARKETQ_API_URL/api/v1/jobs/stock_quotes/runs"
    )
    print("  marketq submit stock_quotes --param symbols=AAPL --wait   # straight to Redis\n")
    sys.stdout.flush()
    while True:
        for name, proc in processes:
            if proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}; stopping the stack")
        time.sleep(0.5)


def main() -> int:
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    processes: list[Process] = []
    code = 0
    try:
        lock = take_lock()
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    env = dict(os.environ)
    env.setdefault("MARKETQ_IMPORT_DIR", str(VAR / "imports"))
    env.setdefault("MARKETQ_LOG_FORMAT", "text")  # a terminal; containers keep json
    Path(env["MARKETQ_IMPORT_DIR"]).mkdir(parents=True, exist_ok=True)
    (VAR / "log").mkdir(parents=True, exist_ok=True)
    try:
        run(processes, env)
    except KeyboardInterrupt:
        pass
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if processes:
            print("\nstopping marketq ...", flush=True)
            soft = float(env.get("MARKETQ_WORKER_SOFT_SHUTDOWN_SECONDS", "20"))
            stop(processes, soft)
            print("stopped", flush=True)
        STATE.unlink(missing_ok=True)
        lock.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
