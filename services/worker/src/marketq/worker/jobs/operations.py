"""Operational jobs: health probes and retention."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import delete, func, select, text

from marketq.common.db.models import (
    DataImport,
    NewsArticleRow,
    QuoteRow,
    TaskRun,
    TradingSignal,
)
from marketq.common.ledger import FINISHED_STATES
from marketq.common.params import CleanupParams, HealthCheckParams
from marketq.worker.context import JobContext
from marketq.worker.registry import JobResult, implements

EXPIRED_SIGNAL_RETENTION_DAYS = 30


@implements("health_check")
def health_check(ctx: JobContext, params: HealthCheckParams) -> JobResult:
    started = time.monotonic()
    if params.sleep_seconds:
        time.sleep(params.sleep_seconds)
    database = "skipped"
    if params.check_database:
        with ctx.transaction() as session:
            session.execute(text("SELECT 1"))
        database = "ok"
    return {
        "worker": ctx.worker,
        "queue": ctx.queue,
        "database": database,
        "seconds": round(time.monotonic() - started, 3),
    }


@implements("cleanup")
def cleanup(ctx: JobContext, params: CleanupParams) -> JobResult:
    now = ctx.now()
    settings = ctx.settings
    ledger_days = params.ledger_retention_days or settings.ledger_retention_days
    targets = {
        "task_runs": (
            TaskRun,
            (
                TaskRun.state.in_([s.value for s in FINISHED_STATES]),
                TaskRun.finished_at < now - timedelta(days=ledger_days),
            ),
        ),
        "quotes": (QuoteRow, (QuoteRow.ts < now - timedelta(days=settings.quote_retention_days),)),
        "news_articles": (
            NewsArticleRow,
            (NewsArticleRow.published_at < now - timedelta(days=settings.news_retention_days),),
        ),
        "trading_signals": (
            TradingSignal,
            (
                TradingSignal.expired.is_(True),
                TradingSignal.expires_at < now - timedelta(days=EXPIRED_SIGNAL_RETENTION_DAYS),
            ),
        ),
        # The record of an import, not the rows it wrote.
        "data_imports": (
            DataImport,
            (DataImport.created_at < now - timedelta(days=settings.import_retention_days),),
        ),
    }
    removed: dict[str, int] = {}
    for done, (name, (model, conditions)) in enumerate(targets.items(), start=1):
        with ctx.transaction() as session:
            if params.dry_run:
                count = session.scalar(select(func.count()).select_from(model).where(*conditions))
                removed[name] = int(count or 0)
            else:
                result = session.execute(delete(model).where(*conditions))
                removed[name] = int(result.rowcount or 0)  # type: ignore[attr-defined]
        ctx.progress(done, len(targets))
    return {"dry_run": params.dry_run, "removed": removed}
