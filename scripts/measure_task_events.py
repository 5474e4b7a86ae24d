"""What Celery task events cost Redis: commands, PUBLISHes and bytes per task, counted.

``uv run python scripts/measure_task_events.py on|off [--tasks N]``: a fresh redis-server
and one ``marketq-worker --queue default`` (with or without
MARKETQ_QUEUES__DEFAULT__TASK_EVENTS), N health_check runs, then Redis' own INFO
commandstats and total_net_input_bytes over the runs. Counts, not timing: the machine's
load does not change them. The run of record is in docs/performance.md#task-events.
One mode per process: the settings are read once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def measure(events: bool, tasks: int) -> dict[str, int]:
    workdir = Path(tempfile.mkdtemp(prefix="marketq-events-"))
    port = _free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    env = {
        **os.environ,
        "MARKETQ_REDIS_URL": url,
        "MARKETQ_DATABASE_URL": f"sqlite:///{workdir}/marketq.db",
        "MARKETQ_WORKER_HTTP_PORT": str(_free_port()),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        "MARKETQ_LOG_LEVEL": "WARNING",
    }
    if events:
        env["MARKETQ_QUEUES__DEFAULT__TASK_EVENTS"] = "true"
    os.environ.update({k: v for k, v in env.items() if k.startswith("MARKETQ_")})
    subprocess.run([str(BIN / "marketq"), "db", "upgrade"], env=env, check=True)
    worker = subprocess.Popen(
        [sys.executable, "-m", "marketq.worker.entrypoint", "--queue", "default"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from marketq.common.celery_app import create_celery_app
        from marketq.common.publish import publish
        from marketq.common.settings import get_settings

        client = redis.Redis.from_url(url)
        app = create_celery_app("measure-task-events", settings=get_settings())
        time.sleep(15)  # the worker connects and settles: only the runs are counted
        client.config_resetstat()
        runs = [
            app.AsyncResult(publish(app, "health_check", {"check_database": False}).run_id)
            for _ in range(tasks)
        ]
        deadline = time.monotonic() + 300
        while not all(r.ready() for r in runs) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)  # the last events
        commands = client.info("commandstats")
        stats = client.info("stats")
        return {
            "tasks": tasks,
            "done": sum(r.ready() for r in runs),
            "commands": sum(v["calls"] for v in commands.values()),
            "publish": commands.get("cmdstat_publish", {}).get("calls", 0),
            "bytes_in": stats["total_net_input_bytes"],
        }
    finally:
        worker.terminate()
        worker.wait(60)
        server.terminate()
        server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", choices=["on", "off"])
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps({"events": args.events, **measure(args.events == "on", args.tasks)}))


if __name__ == "__main__":
    main()
