"""Beat past the end of the exchange calendar (issue 13, defect 4).

exchange-calendars covers a finite range (XSHG, XBOM and XSES end 2026-12-31 in the
version the project pins). Fires that need the calendar are skipped with reason
``calendar_out_of_range``; fires that do not need it go on; start-up warns, or refuses,
when the calendar covers less than the configured horizon.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from marketq.beat.horizon import calendar_horizon_problem
from marketq.beat.schedule import ExchangeSchedule
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.scheduling.firing import Verdict, gate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shanghai() -> MarketCalendar:
    return MarketCalendar("XSHG")


def after_the_end(calendar: MarketCalendar, days: int = 60) -> datetime:
    return datetime.combine(calendar.last_session + timedelta(days=days), datetime.min.time(), UTC)


@pytest.mark.parametrize(
    ("market_hours_only", "trading_days_only", "verdict"),
    [
        (True, False, Verdict.CALENDAR_OUT_OF_RANGE),
        (False, True, Verdict.CALENDAR_OUT_OF_RANGE),
        (False, False, Verdict.FIRE),  # needs no calendar: goes on
    ],
)
def test_the_gate_skips_fires_that_need_a_calendar_it_does_not_have(
    shanghai: MarketCalendar, market_hours_only: bool, trading_days_only: bool, verdict: Verdict
) -> None:
    fire = after_the_end(shanghai) + timedelta(hours=2)
    assert (
        gate(
            fire,
            shanghai,
            market_hours_only=market_hours_only,
            trading_days_only=trading_days_only,
        )
        is verdict
    )


def test_a_schedule_past_the_calendar_decides_instead_of_raising(shanghai: MarketCalendar) -> None:
    now = after_the_end(shanghai) + timedelta(hours=2, seconds=5)
    gated = ExchangeSchedule(
        cron="* * * * *",
        timezone="Asia/Shanghai",
        market_hours_only=True,
        nowfun=lambda: now,
    )
    ungated = ExchangeSchedule(cron="* * * * *", timezone="Asia/Shanghai", nowfun=lambda: now)
    last_run = now - timedelta(minutes=1)

    gated_verdict, gated_fire = gated.decide(last_run, now, shanghai)
    ungated_verdict, ungated_fire = ungated.decide(last_run, now, shanghai)

    assert gated_verdict is Verdict.CALENDAR_OUT_OF_RANGE and gated_fire is not None
    assert ungated_verdict is Verdict.FIRE and ungated_fire == gated_fire


def test_the_horizon_check_names_the_calendar_its_end_and_the_setting(
    shanghai: MarketCalendar,
) -> None:
    today = shanghai.last_session - timedelta(days=27)
    problem = calendar_horizon_problem(shanghai, today, min_days=365)
    assert problem is not None
    assert "XSHG" in problem and shanghai.last_session.isoformat() in problem
    assert "27 days" in problem and "MARKETQ_BEAT_CALENDAR_MIN_HORIZON_DAYS" in problem
    assert calendar_horizon_problem(shanghai, today, min_days=20) is None
    assert "ended" in (calendar_horizon_problem(shanghai, date(2027, 2, 1), min_days=1) or "")


def run_check(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "marketq.beat.entrypoint", "--check"],
        env={**os.environ, "MARKETQ_EXCHANGE": "XSHG", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.integration  # three real marketq-beat start-ups
def test_beat_start_up_warns_or_refuses_below_the_horizon() -> None:
    horizon = str(max(1, (MarketCalendar("XSHG").last_session - date.today()).days + 30))

    warned = run_check(MARKETQ_BEAT_CALENDAR_MIN_HORIZON_DAYS=horizon)
    refused = run_check(
        MARKETQ_BEAT_CALENDAR_MIN_HORIZON_DAYS=horizon,
        MARKETQ_BEAT_CALENDAR_HORIZON_ACTION="refuse",
    )
    fine = run_check(MARKETQ_EXCHANGE="XNYS", MARKETQ_BEAT_CALENDAR_MIN_HORIZON_DAYS="365")

    assert warned.returncode == 0, warned.stderr
    assert "warning" in warned.stderr and "XSHG" in warned.stderr
    assert refused.returncode != 0 and "XSHG" in refused.stderr
    assert fine.returncode == 0 and "warning" not in fine.stderr
