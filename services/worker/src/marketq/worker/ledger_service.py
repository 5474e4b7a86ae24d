"""The ledger's home: the worker's main process runs the ledger writer, its heartbeat and
the reconciler, each in a thread (docs/design.md#run-ledger says why here).

Started by a worker bootstep after the pool (the pool's children are forked first and
inherit none of these threads) and stopped before the worker exits; a stop leaves at most
one batch pending, which the next writer claims.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery, bootsteps

from marketq.common.db.engine import get_sessionmaker
from marketq.common.ledger_writer import LedgerWriter
from marketq.common.reconciler import Reconciler, init_action_series, record_heartbeat
from marketq.common.run_events import EventLog, broker_redis
from marketq.common.settings import get_settings

log = logging.getLogger(__name__)

HEARTBEAT_RETRY_SECONDS = 1.0


class LedgerStep(bootsteps.StartStopStep):  # type: ignore[misc]
    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, worker: Any) -> None:
        settings = get_settings()
        hostname: str = worker.hostname
        sessions = get_sessionmaker(settings)
        writer = LedgerWriter(broker_redis(settings), sessions, settings, consumer=hostname)
        events = EventLog(broker_redis(settings), settings)
        reconciler = Reconciler(worker.app, broker_redis(settings), sessions, settings, events)
        beat_client = broker_redis(settings)
        init_action_series()

        def heartbeat() -> None:
            while True:
                pause = settings.worker_heartbeat_seconds
                try:
                    record_heartbeat(beat_client, settings.redis_key_prefix, hostname)
                except Exception:
                    # Tried again in a second, not a period: two beats missed to a Redis
                    # restart would make the reconciler judge this worker dead and its
                    # runs LOST (docs/design.md#redis-restarts).
                    log.warning("worker heartbeat not recorded", exc_info=True)
                    pause = min(pause, HEARTBEAT_RETRY_SECONDS)
                if self._stop.wait(pause):
                    return

        targets = {
            "ledger-writer": lambda: writer.run(self._stop),
            "worker-heartbeat": heartbeat,
            "reconciler": lambda: reconciler.run(self._stop),
        }
        for name, target in targets.items():
            thread = threading.Thread(target=target, name=f"marketq-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, worker: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def shutdown(self, worker: Any) -> None:
        self.stop(worker)


def install(app: Celery) -> None:
    app.steps["worker"].add(LedgerStep)
