"""Run one ``data_import`` of a file in this process and print the peak RSS it added.

``python -m tests.support.import_rss <database-url> <import-dir> <relative-path>``: the
database must be migrated. Everything the job needs (modules, engine, calendar, the
provider) is loaded and warmed up first, so the number printed (kibibytes of peak RSS
above the warmed-up baseline) is what the import itself costs.
"""

from __future__ import annotations

import resource
import sys
from datetime import UTC, datetime

from marketq.common.db.engine import create_db_engine
from marketq.common.params import DataImportParams
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.settings import Settings
from marketq.providers import SyntheticProvider
from marketq.worker.jobs import imports
from tests.support.job_context import job_context


def main(database_url: str, import_dir: str, path: str) -> None:
    calendar = MarketCalendar("XNYS")
    settings = Settings(database_url=database_url, import_dir=import_dir)
    engine = create_db_engine(database_url)
    ctx = job_context(
        engine,
        as_of=datetime(2026, 11, 20, 21, 30, tzinfo=UTC),
        provider=SyntheticProvider(seed=0, calendar=calendar),
        calendar=calendar,
        settings=settings,
        job="data_import",
    )
    # Warm-up: the same code paths on a tiny file.
    tiny = "symbol,date,open,high,low,close,volume\nWARM,2020-01-02,1,1,1,1,1\n"
    imports.data_import(ctx, DataImportParams(dataset="daily_bars", content=tiny))
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = imports.data_import(ctx, DataImportParams(dataset="daily_bars", path=path))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{peak - baseline} {result['rows']}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
