"""Chains: jobs scheduled "after <job>" run when their predecessor succeeds.

A scheduled (or fired-now) run carries its enabled followers as Celery ``link``
signatures; the worker publishes each one when the run succeeds, and each carries its
own followers in turn (historical_prices → technical_indicators → trading_signals). A
follower that takes ``symbols`` and has none of its own gets its predecessor's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery

from marketq.common.catalog import CATALOG
from marketq.common.publish import prepare_run
from marketq.common.schedules import ScheduleEntry, followers
from marketq.common.settings import Settings

# Every message beat (or the API's "fire now") publishes for an entry names it.
ENTRY_HEADER = "marketq_schedule_entry"
SCHEDULED_FOR_HEADER = "marketq_scheduled_for"


def chain_links(
    app: Celery,
    entries: Mapping[str, ScheduleEntry],
    job: str,
    params: Mapping[str, Any],
    settings: Settings,
) -> list[Any]:
    """Signatures of the followers of ``job``, validated like any other run."""
    links = []
    for follower in followers(entries, job):
        follower_params = dict(follower.params)
        if "symbols" in CATALOG[follower.job].params.model_fields and "symbols" in params:
            follower_params.setdefault("symbols", params["symbols"])
        run = prepare_run(follower.job, follower_params, settings=settings)
        links.append(
            app.signature(
                follower.job,
                kwargs=run.params,
                immutable=True,
                options={
                    "queue": run.queue.value,
                    "routing_key": run.queue.value,
                    "headers": {ENTRY_HEADER: follower.name},
                    "link": chain_links(app, entries, follower.job, run.params, settings) or None,
                },
            )
        )
    return links
