"""``marketq-worker --queue <name>``: exec a Celery worker for one queue.

The process replaces itself with Celery (``os.execv``) so that, in a container, Celery is
PID 1 and receives SIGTERM directly. SIGTERM is remapped to SIGQUIT: Celery's cold
shutdown then starts with a soft shutdown (``worker_soft_shutdown_timeout``) that lets
running tasks finish and re-queues every message the worker holds, instead of the warm
shutdown that strands prefetched messages until the visibility timeout when Kubernetes
follows up with SIGKILL.

Before the exec it sets ``PROMETHEUS_MULTIPROC_DIR`` (default
``/tmp/marketq-metrics/<queue>``) when unset and empties it: every pool process then
records its task metrics in that directory and the main process serves their sum.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence

from marketq.common.logs import celery_quiet_option
from marketq.common.queues import Queue
from marketq.common.settings import Settings, get_settings
from marketq.worker import multiproc

WORKER_APP = "marketq.worker.app:app"


def worker_argv(
    queue: Queue,
    settings: Settings,
    *,
    app: str = WORKER_APP,
    hostname: str | None = None,
    concurrency: int | None = None,
    loglevel: str | None = None,
) -> list[str]:
    """The ``celery worker`` command line for one queue's Deployment."""
    options = settings.queues.for_queue(queue)
    argv = [
        sys.executable,
        "-m",
        "celery",
        *celery_quiet_option(settings.log_format),
        "-A",
        app,
        "worker",
        "--queues",
        queue.value,
        "--hostname",
        hostname or f"{queue.value}@{socket.gethostname()}",
        "--concurrency",
        str(concurrency or options.concurrency),
        "--pool",
        "prefork",
        "--loglevel",
        (loglevel or settings.log_level).upper(),
        # No start-up chatter with every other worker; `inspect` still works.
        "--without-gossip",
        "--without-mingle",
    ]
    if options.max_tasks_per_child is not None:
        argv += ["--max-tasks-per-child", str(options.max_tasks_per_child)]
    if options.max_memory_per_child_kb is not None:
        argv += ["--max-memory-per-child", str(options.max_memory_per_child_kb)]
    if options.task_events:
        argv += ["--task-events"]
    return argv


def worker_environ(
    base: dict[str, str] | None = None, *, queue: Queue = Queue.DEFAULT
) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["REMAP_SIGTERM"] = "SIGQUIT"
    # prometheus-client picks its multiprocess mode when it is first imported, so the
    # directory must be in the environment before Celery (and the pool) start.
    if not env.get(multiproc.ENV):
        env[multiproc.ENV] = multiproc.default_dir(queue.value)
    return env


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="marketq-worker", description="Run a Celery worker that consumes one marketq queue."
    )
    parser.add_argument("--queue", required=True, choices=[q.value for q in Queue])
    parser.add_argument("--hostname", help="Celery node name (default: <queue>@<host>)")
    parser.add_argument(
        "--concurrency", type=int, help="Overrides MARKETQ_QUEUES__<Q>__CONCURRENCY"
    )
    parser.add_argument("--loglevel", help="Overrides MARKETQ_LOG_LEVEL")
    parser.add_argument(
        "--app",
        default=WORKER_APP,
        help="Celery app to run; an extension module that imports marketq.worker.app and "
        "adds tasks or signal handlers (the test suite's fault injection does)",
    )
    parser.add_argument(
        "--print", action="store_true", help="Print the celery command instead of running it"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    command = worker_argv(
        Queue(args.queue),
        settings,
        app=args.app,
        hostname=args.hostname,
        concurrency=args.concurrency,
        loglevel=args.loglevel,
    )
    if args.print:
        print(" ".join(command))
        return
    env = worker_environ(queue=Queue(args.queue))
    # Files of a previous run name pids that no longer exist: start empty.
    multiproc.prepare_dir(env[multiproc.ENV])
    os.execve(command[0], command, env)  # noqa: S606  (exec, no shell)


if __name__ == "__main__":
    main()
