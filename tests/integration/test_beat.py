"""Beat as it runs in production: real ``marketq-beat`` processes (Celery beat + RedBeat)
on a real Redis, with the API and workers where the behaviour involves them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.scheduling.schedules import ENTRY_HEADER, SCHEDULED_FOR_HEADER
from tests.fixtures.api import start_api
from tests.fixtures.beat import FAST_BEAT, BeatFleet, queued_messages, write_schedule
from tests.fixtures.workers import ROOT, Stack

pytestmark = pytest.mark.integration

LOCK_TIMEOUT = float(FAST_BEAT["MARKETQ_BEAT_LOCK_TIMEOUT_SECONDS"])
LOOP = float(FAST_BEAT["MARKETQ_BEAT_MAX_LOOP_INTERVAL_SECONDS"])


def fires_of(stack: Stack, entry: str, queue: str = "default") -> list[float]:
    """Scheduled instants (epoch s) of every message beat published for ``entry``."""
    return [
        float(m["headers"][SCHEDULED_FOR_HEADER])
        for m in queued_messages(stack, queue)
        if m["headers"].get(ENTRY_HEADER) == entry
    ]


def one_second_probe(stack: Stack) -> None:
    path = write_schedule(
        stack.logdir.parent / "schedule.yaml",
        {"probe": {"job": "health_check", "every_seconds": 1}},
    )
    stack.set_env(MARKETQ_SCHEDULE_FILE=str(path))


@pytest.mark.slow
def test_two_beats_never_publish_a_fire_twice_through_kill_and_stop(
    stack: Stack, beats: BeatFleet
) -> None:
    one_second_probe(stack)
    first, second = beats.start("a"), beats.start("b")
    holder = beats.holder()
    standby = second if holder is first else first
    assert not standby.holds_lock()
    assert httpx.get(standby.url("/livez")).status_code == 200  # waiting is alive
    time.sleep(15)

    # SIGKILL the holder: its lock lapses, the standby publishes within timeout + a loop.
    killed_at = time.time()
    holder.signal(signal.SIGKILL)
    stack.wait_for(
        lambda: any(f > killed_at for f in fires_of(stack, "probe")), 30, "a fire after the kill"
    )
    takeover = min(f for f in fires_of(stack, "probe") if f > killed_at) - killed_at
    assert takeover <= LOCK_TIMEOUT + LOOP + 1.0, takeover
    assert beats.holder() is standby

    # A fresh standby, then SIGSTOP the holder past its lock: on SIGCONT it finds the
    # lock gone and publishes nothing the new holder already did.
    replacement = beats.start("c")
    time.sleep(5)
    standby.signal(signal.SIGSTOP)
    time.sleep(LOCK_TIMEOUT + 4 * LOOP)
    assert replacement.holds_lock()
    standby.signal(signal.SIGCONT)
    time.sleep(15)
    assert not standby.holds_lock() and replacement.holds_lock()
    assert "lost the scheduler lock" in standby.log_text()

    started = min(fires_of(stack, "probe"))
    # On a loaded machine the steps above can take less than a minute of fires: keep
    # the surviving holder publishing until the run covers one.
    stack.wait_for(lambda: max(fires_of(stack, "probe")) - started >= 60, 40, "a minute of fires")
    fires = fires_of(stack, "probe")
    duplicated = [second for second, n in Counter(fires).items() if n > 1]
    assert duplicated == []
    assert all(f == int(f) for f in fires), "interval fires sit on whole seconds"
    # Apart from the two handovers every second was published.
    covered = set(fires)
    gaps = [s for s in range(int(started), int(max(fires))) if s not in covered]
    assert len(gaps) <= 2 * (LOCK_TIMEOUT + 2 * LOOP + 1), gaps


def test_sigterm_hands_over_at_once(stack: Stack, beats: BeatFleet) -> None:
    one_second_probe(stack)
    beats.start("a")
    beats.start("b")
    holder = beats.holder()
    time.sleep(3)
    stopped_at = time.time()
    holder.signal(signal.SIGTERM)
    assert holder.process is not None and holder.process.wait(15) == 0
    stack.wait_for(
        lambda: any(f > stopped_at + 1 for f in fires_of(stack, "probe")), 10, "the next fire"
    )
    # The lock was released, not left to expire.
    assert min(f for f in fires_of(stack, "probe") if f > stopped_at) - stopped_at < LOCK_TIMEOUT
    assert Counter(fires_of(stack, "probe")).most_common(1)[0][1] == 1


def test_runtime_edits_take_effect_in_a_loop_and_survive_a_restart(
    stack: Stack, beats: BeatFleet
) -> None:
    one_second_probe(stack)
    api = start_api(stack)
    try:
        beat = beats.start("a")
        beats.holder()
        stack.wait_for(lambda: len(fires_of(stack, "probe")) >= 2, 10, "the probe firing")
        with api.client("admin") as client:
            bad = client.patch("/api/v1/schedules/probe", json={"every_seconds": 0})
            assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == (
                "every_seconds"
            )
            bad_cron = client.patch("/api/v1/schedules/news", json={"cron": "61 * * * *"})
            assert bad_cron.status_code == 422
            assert bad_cron.json()["error"]["details"][0]["field"] == "cron"
            # A pipeline's entry starts that pipeline and no other.
            other = client.patch(
                "/api/v1/schedules/end_of_day", json={"params": {"pipeline": "research_daily"}}
            )
            assert other.status_code == 422, other.text
            bad_params = client.patch(
                "/api/v1/schedules/probe", json={"params": {"sleep_seconds": -1}}
            )
            assert bad_params.status_code == 422
            assert bad_params.json()["error"]["details"][0]["field"] == "params.sleep_seconds"
            missing = client.patch("/api/v1/schedules/nope", json={"enabled": False})
            assert missing.status_code == 404
            with api.client("read") as reader:
                assert (
                    reader.patch("/api/v1/schedules/probe", json={"enabled": False}).status_code
                    == 403
                )

            # Disable: no fire for the entry after one loop interval.
            edited = client.patch("/api/v1/schedules/probe", json={"enabled": False})
            assert edited.status_code == 200, edited.text
            assert edited.json()["enabled"] is False and edited.json()["source"] == "runtime"
            time.sleep(LOOP + 1)
            count = len(fires_of(stack, "probe"))
            time.sleep(3)
            assert len(fires_of(stack, "probe")) == count

            # Re-enable every 2 s with other params: new fires carry them.
            changed = client.patch(
                "/api/v1/schedules/probe",
                json={"enabled": True, "every_seconds": 2, "params": {"sleep_seconds": 0.01}},
            )
            assert changed.status_code == 200, changed.text
            edited_at = time.time()
            stack.wait_for(
                lambda: any(f > edited_at + LOOP for f in fires_of(stack, "probe")),
                10,
                "fires after re-enabling",
            )
            beat.stop()
            restarted = beats.start("a-again")
            beats.holder()
            restart_at = time.time()
            stack.wait_for(
                lambda: len([f for f in fires_of(stack, "probe") if f > restart_at]) >= 3,
                20,
                "fires after the restart",
            )
            after = sorted(f for f in fires_of(stack, "probe") if f > edited_at + LOOP)
            assert all(int(f) % 2 == 0 for f in after), after
            newest = [
                m
                for m in queued_messages(stack, "default")
                if m["headers"].get(SCHEDULED_FOR_HEADER) == after[-1]
            ]
            assert len(newest) == 1
            listed = client.get("/api/v1/schedules").json()
            probe = next(e for e in listed["schedules"] if e["name"] == "probe")
            assert probe["every_seconds"] == 2 and probe["params"] == {"sleep_seconds": 0.01}
            assert probe["last_fire"]["decision"] == "fire"
            assert listed["scheduler"]["holder"] and listed["scheduler"]["last_tick"]

            # Dropping the edit brings the file's definition back.
            reset = client.delete("/api/v1/schedules/probe/override")
            assert reset.status_code == 200 and reset.json()["every_seconds"] == 1
            assert reset.json()["source"] == "file"
            assert restarted.alive()
    finally:
        api.stop()


def test_fire_now_starts_the_end_of_day_pipeline(stack: Stack) -> None:
    """The end-of-day chain is the end_of_day pipeline: firing its entry starts one run
    whose steps run in order (historical_prices -> technical_indicators -> signals)."""
    stack.start_worker("periodic", name="periodic@eod")
    stack.start_worker("daily", name="daily@eod")
    api = start_api(stack)
    try:
        with api.client("trigger") as client:
            response = client.post("/api/v1/schedules/end_of_day/run")
            assert response.status_code == 202, response.text
            run_id = response.json()["run_id"]
            assert response.headers["Location"] == f"/api/v1/runs/{run_id}"
            assert client.post("/api/v1/schedules/nope/run").status_code == 404

        def pipeline_done() -> bool:
            runs = stack.runs().values()
            done = {r.job for r in runs if r.state == "SUCCESS"}
            return {"historical_prices", "technical_indicators", "trading_signals"} <= done

        stack.wait_for(pipeline_done, 120, "end_of_day: historical_prices -> ... -> signals")
        runs = stack.runs()
        assert runs[run_id].job == "start_pipeline" and runs[run_id].state == "SUCCESS"
        pipeline_run_id = runs[run_id].result["pipeline_run_id"]
        with api.client("read") as client:
            pipeline = client.get(f"/api/v1/pipeline-runs/{pipeline_run_id}").json()
        assert pipeline["pipeline"] == "end_of_day" and pipeline["trigger"] == "schedule"
        assert [s["state"] for s in pipeline["steps"]] == ["SUCCESS"] * 3
        assert pipeline["deadline_at"] is not None
    finally:
        api.stop()


def test_scheduled_fires_follow_the_market_gate(stack: Stack, beats: BeatFleet) -> None:
    """A market-hours entry fires only while the calendar says the market is open."""
    path = write_schedule(
        stack.logdir.parent / "schedule.yaml",
        {
            "quotes_fast": {"job": "stock_quotes", "every_seconds": 1},
            "quotes_fast_any_time": {
                "job": "stock_quotes",
                "every_seconds": 1,
                "market_hours_only": False,
            },
        },
    )
    stack.set_env(MARKETQ_SCHEDULE_FILE=str(path))
    calendar = MarketCalendar("XNYS")
    start = datetime.now(UTC)
    beat = beats.start("a")
    beats.holder()
    time.sleep(5)
    end = datetime.now(UTC)
    beat.stop()
    if calendar.is_open(start) != calendar.is_open(end + timedelta(seconds=5)):
        pytest.skip("the market opened or closed during the test's few seconds")
    gated = fires_of(stack, "quotes_fast", "market_hours")
    ungated = fires_of(stack, "quotes_fast_any_time", "market_hours")
    assert len(ungated) >= 3
    if calendar.is_open(start):
        assert len(gated) >= 3
    else:
        assert gated == []
    counted = stack.redis.client().hget(
        f"{stack.settings().redis_key_prefix}schedule:last", "quotes_fast"
    )
    assert counted is not None
    expected = "fire" if calendar.is_open(start) else "market_closed"
    assert f'"decision": "{expected}"' in counted.decode()


def test_beat_serves_metrics_and_liveness(stack: Stack, beats: BeatFleet) -> None:
    one_second_probe(stack)
    beat = beats.start("a")
    beats.holder()
    time.sleep(3)
    text = beat.metrics()
    for name in (
        "marketq_beat_last_tick_timestamp_seconds",
        "marketq_beat_lock_held 1.0",
        'marketq_beat_entries{state="enabled"}',
        'marketq_beat_fires_total{entry="probe",job_name="health_check"}',
        # From 0 before any skip, so the alert's increase() sees the first one.
        'marketq_beat_skipped_total{entry="probe",job_name="health_check",'
        'reason="calendar_out_of_range"} 0.0',
        'marketq_tasks_published_total{job_name="health_check",queue="default",source="beat"}',
    ):
        assert name in text, name
    tick = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("marketq_beat_last_tick_timestamp_seconds ")
    )
    assert time.time() - tick < 3 * LOOP
    assert httpx.get(beat.url("/livez")).status_code == 200
    assert httpx.get(beat.url("/nope")).status_code == 404


def test_disabled_beat_exits_cleanly_and_a_bad_file_names_the_field(stack: Stack) -> None:
    env = {**stack.env, "MARKETQ_BEAT_ENABLED": "false"}
    disabled = subprocess.run(
        [sys.executable, "-m", "marketq.beat.entrypoint"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert disabled.returncode == 0 and "disabled" in disabled.stdout
    bad = write_schedule(
        stack.logdir.parent / "bad.yaml", {"quotes": {"job": "stock_quotes", "cron": "* * *"}}
    )
    env = {**stack.env, "MARKETQ_SCHEDULE_FILE": str(bad)}
    failed = subprocess.run(
        [sys.executable, "-m", "marketq.beat.entrypoint", "--check"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode != 0
    assert "quotes" in failed.stderr and "cron" in failed.stderr and "five fields" in failed.stderr
