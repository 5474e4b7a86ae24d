"""Queues and routes, derived from the catalog and nowhere else."""

from __future__ import annotations

from kombu.entity import Exchange
from kombu.entity import Queue as KombuQueue

from marketq.common.catalog import CATALOG, Catalog
from marketq.common.queues import ALL_QUEUES

# Redis emulates priorities with one list per step; four steps keep the number of lists
# (and of BRPOP keys per worker) small. Priority 0 is the highest, as in Celery.
PRIORITY_STEPS: tuple[int, ...] = (0, 3, 6, 9)
DEFAULT_PRIORITY = 0


def task_queues() -> tuple[KombuQueue, ...]:
    """One direct queue per marketq queue, routing key equal to its name."""
    # kombu's constructors carry no annotations.
    return tuple(
        KombuQueue(  # type: ignore[no-untyped-call]
            q.value,
            Exchange(q.value, type="direct"),  # type: ignore[no-untyped-call]
            routing_key=q.value,
        )
        for q in ALL_QUEUES
    )


def task_routes(catalog: Catalog = CATALOG) -> dict[str, dict[str, str]]:
    """Celery ``task_routes``: each job name to its catalog queue."""
    return {
        job.name: {"queue": job.queue.value, "routing_key": job.queue.value}
        for job in catalog.values()
    }
