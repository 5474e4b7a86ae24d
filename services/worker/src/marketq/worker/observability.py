"""The worker's HTTP endpoint (``/metrics``, ``/livez``, ``/readyz``) and the state behind it.

One server, in the worker's main process only: it is started by a worker bootstep after
the pool exists, and every pool child closes its inherited copy of the listening socket
(``worker_process_init``), so recycled children never hold the port.

- ``/livez``: the main process is alive and not wedged. A thread of the main process
  ticks every second, and while the consumer runs the event loop ticks too (a hub timer);
  stale ticks mean a hung process. It never touches Redis: during a broker outage the
  consumer stops (``/readyz`` 503) but the process is healthy and must not be restarted.
  A consumer that died of an error (Celery's "Unrecoverable error") fails it at once:
  the process may linger in its shutdown, but it will never consume again.
- ``/readyz``: 200 only while the consumer consumes the queue (a consumer bootstep after
  the task consumer started; Celery stops it when the broker connection is lost and
  starts it again once reconnected), else 503.
- ``/metrics``: the sum of every process's files (``multiproc``), after folding dead
  children's files into the archive, plus gauges computed here at scrape time: pool
  processes, active tasks, consuming, and each job's soft time limit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from celery import Celery, bootsteps, signals
from celery.worker import state as worker_state
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from marketq.common import probe_server
from marketq.common.catalog import CATALOG
from marketq.common.probe_server import PLAIN_TEXT, Answer, Route, metrics_route
from marketq.common.settings import get_settings
from marketq.providers import metrics as vendor_metrics
from marketq.worker import metrics, multiproc
from marketq.worker.queue_limits import limits_for_delivery

log = logging.getLogger("marketq.worker.http")

COMPACT_INTERVAL_SECONDS = 15.0
HEARTBEAT_SECONDS = 1.0


@dataclass
class WorkerHealth:
    queues: list[str] = field(default_factory=list)
    consuming: bool = False
    heartbeat_at: float = field(default_factory=time.monotonic)
    loop_at: float = field(default_factory=time.monotonic)
    pool: Any = None
    soft_limits: dict[tuple[str, str], float] = field(default_factory=dict)
    consumer_died: bool = False

    def pool_pids(self) -> list[int]:
        processes = getattr(getattr(self.pool, "_pool", None), "_pool", None) or []
        return [p.pid for p in list(processes) if getattr(p, "pid", None)]

    def pool_size(self) -> int:
        inner = getattr(self.pool, "_pool", None)
        processes = getattr(inner, "_pool", None)
        if processes is not None:
            return sum(1 for p in list(processes) if p.is_alive())
        return int(getattr(self.pool, "limit", 0) or 0)

    def liveness(self, limit: float) -> tuple[bool, str]:
        now = time.monotonic()
        if self.consumer_died:
            return False, "the consumer stopped on an error and will not consume again"
        if not threading.main_thread().is_alive():
            return False, "main thread exited"
        beat = now - self.heartbeat_at
        if beat > limit:
            return False, f"main process heartbeat {beat:.1f} s old"
        if self.consuming and now - self.loop_at > limit:
            return False, f"event loop stalled for {now - self.loop_at:.1f} s"
        return True, f"ok: heartbeat {beat:.1f} s ago"


HEALTH = WorkerHealth()


class WorkerCollector(Collector):
    """Gauges the main process knows at scrape time."""

    def __init__(self, health: WorkerHealth) -> None:
        self._health = health

    def collect(self) -> Iterable[Metric]:
        health = self._health
        pool = GaugeMetricFamily(
            "marketq_worker_pool_processes",
            "Pool processes of the worker (prefork children alive).",
            labels=["queue"],
        )
        active = GaugeMetricFamily(
            "marketq_worker_active_tasks",
            "Tasks running in the worker's pool right now.",
            labels=["queue"],
        )
        consuming = GaugeMetricFamily(
            "marketq_worker_consuming",
            "1 while the worker consumes its queue (connected to the broker), else 0; "
            "the same condition as /readyz.",
            labels=["queue"],
        )
        soft = GaugeMetricFamily(
            "marketq_task_soft_time_limit_seconds",
            "Soft time limit each job runs under on this worker (catalog value after the "
            "queue's cap).",
            labels=["queue", "job_name"],
        )
        size = health.pool_size()
        running = len(worker_state.active_requests)
        for queue in health.queues:
            pool.add_metric([queue], size)
            active.add_metric([queue], running)
            consuming.add_metric([queue], 1 if health.consuming else 0)
        for (queue, job), limit in sorted(health.soft_limits.items()):
            soft.add_metric([queue, job], limit)
        return [pool, active, consuming, soft]


def build_registry(health: WorkerHealth) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    path = os.environ.get(multiproc.ENV)
    if path:
        registry.register(multiproc.LockedMultiProcessCollector(path))
    else:
        # Not started by marketq-worker: the children's counts cannot be seen from here.
        log.warning(
            "%s is not set: task metrics recorded in pool processes are not served; "
            "start the worker with marketq-worker",
            multiproc.ENV,
        )
        registry.register(_Forward(REGISTRY))
    registry.register(WorkerCollector(health))
    return registry


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return list(self._registry.collect())


def compact_now(health: WorkerHealth) -> None:
    path = os.environ.get(multiproc.ENV)
    if not path:
        return
    try:
        removed = multiproc.compact(path, alive=health.pool_pids())
    except OSError as exc:
        log.warning("metrics: compacting %s failed: %s", path, exc)
        return
    if removed:
        log.debug("metrics: folded %d files of dead pool processes", removed)


_server: ThreadingHTTPServer | None = None


def _livez(health: WorkerHealth, liveness_seconds: float) -> Route:
    def answer() -> Answer:
        ok, why = health.liveness(liveness_seconds)
        return (200 if ok else 503), f"{why}\n".encode(), PLAIN_TEXT

    return answer


def _readyz(health: WorkerHealth) -> Route:
    def answer() -> Answer:
        if health.consuming:
            return 200, b"ok: consuming\n", PLAIN_TEXT
        return 503, b"not consuming: starting, or the broker is unreachable\n", PLAIN_TEXT

    return answer


def serve(
    host: str, port: int, liveness_seconds: float, health: WorkerHealth
) -> ThreadingHTTPServer:
    routes = {
        # Dead pool children's files are folded in before each scrape reads them.
        "/metrics": metrics_route([build_registry(health)], before=lambda: compact_now(health)),
        "/livez": _livez(health, liveness_seconds),
        "/readyz": _readyz(health),
    }
    return probe_server.serve(host, port, routes, name="worker-http")


def _housekeeping(health: WorkerHealth) -> None:
    """Heartbeat of the main process, and compaction even when nobody scrapes."""
    last_compact = time.monotonic()
    while True:
        time.sleep(HEARTBEAT_SECONDS)
        health.heartbeat_at = time.monotonic()
        if health.heartbeat_at - last_compact >= COMPACT_INTERVAL_SECONDS:
            last_compact = health.heartbeat_at
            compact_now(health)


class HttpStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: the HTTP endpoint, in the main process, once the pool exists."""

    requires = ("celery.worker.components:Pool",)

    def start(self, worker: Any) -> None:
        global _server
        settings = get_settings()
        health = HEALTH
        health.pool = worker.pool
        health.queues = sorted(worker.app.amqp.queues.consume_from) or ["default"]
        vendor_metrics.init_vendor_series(get_settings().quotas)
        for queue in health.queues:
            metrics.init_series(queue)
            for name, task in worker.app.tasks.items():
                if name not in CATALOG:  # Celery's own tasks (celery.chord, ...)
                    continue
                limits = limits_for_delivery(name, queue)  # a probe on another queue
                spec = CATALOG[name]
                if limits is not None:
                    health.soft_limits[(queue, name)] = float(limits[0])
                elif spec.queue.value == queue:
                    health.soft_limits[(queue, name)] = float(task.soft_time_limit or 0)
        threading.Thread(
            target=_housekeeping, args=(health,), name="worker-heartbeat", daemon=True
        ).start()
        try:
            _server = serve(
                settings.worker_http_host,
                settings.worker_http_port,
                settings.worker_liveness_seconds,
                health,
            )
        except OSError as exc:
            # Probes then fail and say why; the worker itself can still do its work.
            log.error(
                "worker: cannot serve /metrics on %s:%s: %s",
                settings.worker_http_host,
                settings.worker_http_port,
                exc,
            )
            return
        host, port = _server.server_address[:2]
        log.info("worker: /metrics, /livez and /readyz on http://%s:%s", host, port)

    def stop(self, worker: Any) -> None:
        HEALTH.consuming = False
        # Celery stops the worker with a failure exit code only when a step (the
        # consumer) raised; a requested shutdown leaves it unset or 0.
        if getattr(worker, "exitcode", None) not in (None, 0):
            HEALTH.consumer_died = True
            log.error("worker: the consumer died; /livez now fails")


class ConsumingStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer bootstep: started once the task consumer consumes (after every
    (re)connection), stopped when the consumer stops or restarts for a lost connection."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._tick: Any = None

    def start(self, consumer: Any) -> None:
        HEALTH.loop_at = time.monotonic()
        timer = getattr(consumer, "timer", None)
        if timer is not None:
            self._tick = timer.call_repeatedly(HEARTBEAT_SECONDS, _loop_tick)
        HEALTH.consuming = True

    def stop(self, consumer: Any) -> None:
        HEALTH.consuming = False
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None

    def shutdown(self, consumer: Any) -> None:
        self.stop(consumer)


def _loop_tick() -> None:
    HEALTH.loop_at = time.monotonic()


def _close_inherited_socket(**_: Any) -> None:
    # A pool child is a fork of the main process: drop its copy of the listening socket.
    if _server is not None:
        with contextlib.suppress(OSError):
            _server.socket.close()


def install(app: Celery) -> None:
    """Add the endpoint and the metric signal handlers to the worker app."""
    if get_settings().worker_task_metrics:
        metrics.connect_metric_signals()
    app.steps["worker"].add(HttpStep)
    app.steps["consumer"].add(ConsumingStep)
    signals.worker_process_init.connect(
        _close_inherited_socket, weak=False, dispatch_uid="marketq.worker.http.close"
    )
