"""Freshness gauges of ``/metrics``: is every scheduled job succeeding, is the data new.

Read at scrape time, but the database reads (the ledger's last success per job, the
newest row per data table) and the schedule's last-due instants are reused for
``metrics_freshness_cache_seconds`` (15 s): Prometheus scrapes every API replica every
few seconds and none of these needs to be fresher than that. The reads run in a worker
thread, never on the event loop, and one refresh at a time (concurrent scrapes wait for
it). ``marketq_market_open`` is computed on every scrape (a calendar lookup).

The schedule's last-due instant of each enabled entry comes from
``marketq.common.scheduling.firing.entry_last_due`` on the effective schedule (catalog, schedule
file, runtime edits from Redis): the same clock and calendar gate beat fires with.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from anyio import to_thread
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, literal, select, union_all
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from marketq.common.db.models import DATA_MODELS, PipelineRun, RunState, TaskRun
from marketq.common.pipelines import PIPELINES
from marketq.common.scheduling.calendar import CalendarRangeError, MarketCalendar
from marketq.common.scheduling.firing import entry_last_due
from marketq.common.scheduling.schedules import ScheduleEntry

log = logging.getLogger("marketq.api.metrics")


@dataclass(frozen=True, slots=True)
class LedgerAndData:
    last_success: list[tuple[str, str, float]]  # job, queue, epoch seconds
    datasets: list[tuple[str, float]]  # table, epoch seconds of its newest write
    # pipeline -> 1 when its newest scheduled run passed its deadline without succeeding
    overdue_pipelines: list[tuple[str, int]] = field(default_factory=list)


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive UTC for aggregates
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def read_ledger_and_data(sessions: sessionmaker[Session]) -> LedgerAndData:
    """Two queries: last success per (job, queue), newest ``updated_at`` per data table."""
    with sessions() as session:
        rows = session.execute(
            select(TaskRun.job, TaskRun.queue, func.max(TaskRun.finished_at))
            .where(TaskRun.state == RunState.SUCCESS.value)
            .group_by(TaskRun.job, TaskRun.queue)
        ).all()
        last_success = [
            (job, queue, at) for job, queue, raw in rows if (at := _epoch(raw)) is not None
        ]
        newest = union_all(
            *(
                select(
                    literal(model.__tablename__).label("dataset"),
                    func.max(model.updated_at).label("newest"),  # type: ignore[attr-defined]
                )
                for model in DATA_MODELS
            )
        ).subquery()
        datasets = [
            (name, at)
            for name, raw in session.execute(select(newest.c.dataset, newest.c.newest)).all()
            if (at := _epoch(raw)) is not None
        ]
        overdue = [
            (spec.name, _overdue(session, spec.name))
            for spec in PIPELINES.values()
            if spec.schedule is not None and spec.deadline_minutes is not None
        ]
    return LedgerAndData(last_success=last_success, datasets=datasets, overdue_pipelines=overdue)


def _overdue(session: Session, pipeline: str) -> int:
    """1 if the pipeline's newest scheduled run is past its deadline and not a success."""
    newest = session.execute(
        select(PipelineRun.state, PipelineRun.deadline_at)
        .where(PipelineRun.pipeline == pipeline, PipelineRun.trigger == "schedule")
        .order_by(PipelineRun.created_at.desc())
        .limit(1)
    ).first()
    if newest is None or newest.deadline_at is None:
        return 0
    late = (_epoch(newest.deadline_at) or 0.0) < datetime.now(UTC).timestamp()
    return int(late and newest.state != "SUCCESS")


def last_due(
    entries: Iterable[ScheduleEntry], now: datetime, calendar: MarketCalendar, tz: ZoneInfo
) -> list[tuple[str, str, float]]:
    """(job, entry, epoch seconds) of every enabled entry with a due instant."""
    found = []
    for entry in entries:
        if not entry.enabled:
            continue
        try:
            due = entry_last_due(entry, now=now, calendar=calendar, tz=tz)
        except CalendarRangeError:
            continue
        if due is not None:
            found.append((entry.job, entry.name, due.timestamp()))
    return found


@dataclass
class FreshnessSnapshot:
    data: LedgerAndData | None  # None: the database could not be read
    schedule: list[tuple[str, str, float]] | None  # None: the schedule could not be read
    taken_at: float


@dataclass
class FreshnessCache:
    ttl_seconds: float
    _snapshot: FreshnessSnapshot | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(
        self,
        sessions: sessionmaker[Session],
        load_entries: Callable[[], Awaitable[Iterable[ScheduleEntry] | None]],
        calendar: MarketCalendar,
        tz: ZoneInfo,
    ) -> FreshnessSnapshot:
        """The cached snapshot, refreshed when older than the TTL (``load_entries`` is
        awaited only then: the effective schedule needs a Redis read)."""
        if self._fresh():
            assert self._snapshot is not None
            return self._snapshot
        async with self._lock:
            if self._fresh():  # another scrape refreshed it while this one waited
                assert self._snapshot is not None
                return self._snapshot
            entries = await load_entries()
            self._snapshot = await to_thread.run_sync(
                _refresh, sessions, list(entries) if entries is not None else None, calendar, tz
            )
            return self._snapshot

    def _fresh(self) -> bool:
        snapshot = self._snapshot
        return snapshot is not None and time.monotonic() - snapshot.taken_at < self.ttl_seconds


def _refresh(
    sessions: sessionmaker[Session],
    entries: list[ScheduleEntry] | None,
    calendar: MarketCalendar,
    tz: ZoneInfo,
) -> FreshnessSnapshot:
    data: LedgerAndData | None
    try:
        data = read_ledger_and_data(sessions)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("metrics: cannot read the ledger/data tables: %s", exc)
        data = None
    schedule = None
    if entries is not None:
        schedule = last_due(entries, datetime.now(UTC), calendar, tz)
    return FreshnessSnapshot(data=data, schedule=schedule, taken_at=time.monotonic())


class FreshnessCollector(Collector):
    def __init__(
        self, snapshot: FreshnessSnapshot, calendar: MarketCalendar | None, exchange: str
    ) -> None:
        self._snapshot = snapshot
        self._calendar = calendar
        self._exchange = exchange

    def collect(self) -> Iterable[Metric]:
        data = self._snapshot.data
        yield GaugeMetricFamily(
            "marketq_freshness_up",
            "1 when the last read of the task_runs ledger and the data tables worked.",
            value=0 if data is None else 1,
        )
        if data is not None:
            success = GaugeMetricFamily(
                "marketq_job_last_success_timestamp_seconds",
                "When the latest successful run of the job finished (Unix time; task_runs "
                "ledger; absent until it first succeeds).",
                labels=["job_name", "queue"],
            )
            for job, queue, at in data.last_success:
                success.add_metric([job, queue], at)
            yield success
            newest = GaugeMetricFamily(
                "marketq_dataset_newest_timestamp_seconds",
                "When the newest row of the dataset (data table) was written (Unix time of "
                "its latest updated_at; absent while the table is empty).",
                labels=["dataset"],
            )
            for name, at in data.datasets:
                newest.add_metric([name], at)
            yield newest
            overdue = GaugeMetricFamily(
                "marketq_pipeline_overdue_runs",
                "1 when the pipeline's newest scheduled run is past its deadline "
                "(deadline_minutes after its scheduled start) and has not succeeded.",
                labels=["pipeline"],
            )
            for pipeline, value in data.overdue_pipelines:
                overdue.add_metric([pipeline], value)
            yield overdue
        if self._snapshot.schedule is not None:
            due = GaugeMetricFamily(
                "marketq_schedule_last_due_timestamp_seconds",
                "Latest instant at or before now at which the enabled schedule entry was due "
                "(its clock and the exchange calendar, as beat fires it; Unix time).",
                labels=["job_name", "entry"],
            )
            for job, entry, at in self._snapshot.schedule:
                due.add_metric([job, entry], at)
            yield due
        if self._calendar is not None:
            try:
                is_open = self._calendar.is_open(datetime.now(UTC))
            except CalendarRangeError:
                return
            yield _market(self._exchange, is_open)


def _market(exchange: str, is_open: bool) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "marketq_market_open",
        "1 while the exchange's regular session is open (holidays, early closes and DST "
        "from the exchange calendar), else 0.",
        labels=["exchange"],
    )
    family.add_metric([exchange], 1 if is_open else 0)
    return family
