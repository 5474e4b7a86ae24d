"""Metrics about the data a job produced (as opposed to how its task ran).

Recorded by the job itself, in the pool process; under ``PROMETHEUS_MULTIPROC_DIR`` the
worker's main process serves the sum over its children like every other task metric.
"""

from __future__ import annotations

from prometheus_client import Counter

STALE_RESULTS = Counter(
    "marketq_stale_results",
    "Symbols a successful run could compute only as of an earlier day than it was asked "
    "for (the vendor had no bar for the requested session yet); the run's result names "
    "them under stale_as_of.",
    ["job_name"],
)
