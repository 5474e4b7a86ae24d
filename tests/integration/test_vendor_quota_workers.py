"""Two real worker processes share one vendor quota through a real redis-server.

Both workers (two pool processes each) run ``stock_quotes`` through
tests/support/vendor_app.py, whose every quote takes a token from the shared bucket of
``testvendor`` and then calls tests/support/scripted_vendor.py, which records when each
call arrived and from which worker. With far more runs queued than the quota allows, the
vendor must see the configured pace and never more, over 30 s, from both workers together.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from marketq.common.publish import publish
from tests.fixtures.workers import Stack
from tests.support.scripted_vendor import ScriptedVendor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VENDOR_APP = "tests.support.vendor_app:app"
RATE, BURST, WINDOW = 4.0, 2, 15.0
RUNS = 75  # 19 s of calls at 4/s: the quota binds for the whole 15 s window


@pytest.fixture
def vendor() -> Iterator[ScriptedVendor]:
    server = ScriptedVendor().start()
    try:
        yield server
    finally:
        server.stop()


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_two_workers_never_exceed_the_shared_rate(stack: Stack, vendor: ScriptedVendor) -> None:
    stack.set_env(
        MARKETQ_TEST_VENDOR_URL=vendor.url,
        MARKETQ_TEST_VENDOR_TIMEOUT="10",
        MARKETQ_QUOTAS__TESTVENDOR__RATE_PER_SECOND=str(RATE),
        MARKETQ_QUOTAS__TESTVENDOR__BURST=str(BURST),
    )
    workers = [
        stack.start_worker(
            "market_hours", name=f"quota{i}@test", app=VENDOR_APP, concurrency=2, wait_ready=False
        )
        for i in (1, 2)
    ]
    for worker in workers:
        worker.wait_ready(timeout=180)  # a shared CI machine can be slow to import
    producer = stack.producer()
    run_ids = [
        publish(producer, "stock_quotes", {"symbols": [f"Q{i:03d}"]}).run_id for i in range(RUNS)
    ]

    stack.wait_for(lambda: vendor.calls(), timeout=60, what="the first vendor call")
    first = vendor.calls()[0].at
    time.sleep(max(0.0, first + WINDOW + 1 - time.monotonic()))
    in_window = [c for c in vendor.calls() if c.at < first + WINDOW]
    times = [c.at for c in in_window]

    # Never above the configured rate: burst + rate x T in every window of T seconds
    # (+1 for a call whose request left its worker late after its turn came).
    assert most_in_any_window(times, WINDOW) <= BURST + RATE * WINDOW + 1
    for window in (1.0, 5.0, 10.0):
        assert most_in_any_window(times, window) <= BURST + RATE * window + 1, window
    # ...and the quota, not a lack of work, set the pace: close to the full rate.
    assert len(in_window) >= 0.8 * RATE * WINDOW, len(in_window)
    callers = {c.caller.split("/")[0] for c in in_window}
    assert callers == {"quota1@test", "quota2@test"}, callers  # both workers drew tokens

    # Every run waited for its token and none failed.
    runs = stack.wait_for_states(run_ids, {"SUCCESS", "FAILURE"}, timeout=120)
    assert {runs[r].state for r in run_ids} == {"SUCCESS"}
    assert len(vendor.calls()) == RUNS
