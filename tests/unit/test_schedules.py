"""The effective schedule: catalog, then the schedule file, then runtime edits."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from marketq.beat.schedule import ExchangeSchedule
from marketq.common.catalog import CATALOG
from marketq.common.pipelines import PIPELINES
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.scheduling.firing import Verdict, entry_next_fires
from marketq.common.scheduling.schedules import (
    EntryPatch,
    ScheduleError,
    apply_patch,
    effective_entries,
    load_schedule_file,
    merge_patches,
    parse_override,
)

NY = ZoneInfo("America/New_York")


def write(tmp_path: Path, entries: object) -> Path:
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump({"entries": entries}))
    return path


def test_the_catalog_alone_gives_one_entry_per_scheduled_job_and_its_extras() -> None:
    entries = effective_entries()
    scheduled_pipelines = {p.name for p in PIPELINES.values() if p.schedule}
    catalog_entries = {schedule.name for _job, schedule in CATALOG.default_schedules()}
    assert set(entries) == catalog_entries | scheduled_pipelines
    assert {job.name for job in CATALOG.scheduled()} <= set(entries)
    quotes = entries["stock_quotes"]
    assert (quotes.cron, quotes.market_hours_only, quotes.source) == ("* * * * *", True, "catalog")
    # The end-of-day chain is the end_of_day pipeline, fired at the same time.
    end_of_day = entries["end_of_day"]
    assert (end_of_day.job, end_of_day.cron) == ("start_pipeline", "30 17 * * *")
    assert end_of_day.trading_days_only and end_of_day.cron is not None
    assert end_of_day.params == {"pipeline": "end_of_day", "params": {}}
    assert "historical_prices" not in entries and "technical_indicators" not in entries


def test_a_pipeline_entry_takes_its_runs_params_and_refuses_others() -> None:
    entries = effective_entries(overrides={"end_of_day": EntryPatch(params={"symbols": ["AAPL"]})})
    assert entries["end_of_day"].params == {
        "pipeline": "end_of_day",
        "params": {"symbols": ["AAPL"]},
    }
    with pytest.raises(ScheduleError, match="bogus"):
        apply_patch(entries, "end_of_day", EntryPatch(params={"bogus": 1}))


def test_the_file_changes_catalog_entries_and_adds_its_own(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "fundamentals": {"enabled": False},
            "stock_quotes": {"params": {"symbols": ["aapl"]}},
            "quotes_every_minute_extended": {
                "job": "stock_quotes",
                "cron": "* 6-19 * * *",
                "trading_days_only": True,
                "market_hours_only": False,
            },
        },
    )
    entries = effective_entries(load_schedule_file(path))
    assert entries["fundamentals"].enabled is False
    assert entries["fundamentals"].source == "file"
    assert entries["stock_quotes"].params == {"symbols": ["AAPL"]}  # validated by the model
    extended = entries["quotes_every_minute_extended"]
    assert (extended.job, extended.market_hours_only, extended.trading_days_only) == (
        "stock_quotes",
        False,
        True,
    )
    # The extended window (06:00-20:00 ET) on trading days: Thanksgiving is skipped, the
    # day after runs from 06:00 though the market opens at 09:30.
    calendar = MarketCalendar("XNYS")
    fires = entry_next_fires(
        extended,
        after=datetime(2026, 11, 25, 19, 58, tzinfo=NY),
        calendar=calendar,
        tz=NY,
        count=3,
    )
    assert [f.strftime("%m-%d %H:%M") for f in fires] == [
        "11-25 19:59",
        "11-27 06:00",
        "11-27 06:01",
    ]


@pytest.mark.parametrize(
    ("entries", "entry", "field", "message"),
    [
        ({"news": {"cron": "*/5 * *"}}, "news", "cron", "five fields"),
        ({"news": {"params": {"symbols": ["not a symbol!"]}}}, "news", "params.symbols.0", ""),
        ({"news": {"every_second": 5}}, "news", "every_second", "Extra inputs"),
        ({"extra": {"job": "nope", "cron": "* * * * *"}}, "extra", "job", "unknown job"),
        ({"extra": {"job": "news"}}, "extra", "cron", "needs cron or every_seconds"),
        # A pipeline's entry takes the pipeline run's params: one no step takes is refused.
        ({"end_of_day": {"params": {"bogus": 1}}}, "end_of_day", "params.bogus", "no step"),
        ({"Bad-Name": {"job": "news", "cron": "* * * * *"}}, "Bad-Name", "", "lower-case"),
    ],
)
def test_an_invalid_file_names_the_entry_and_the_field(
    tmp_path: Path, entries: object, entry: str, field: str, message: str
) -> None:
    path = write(tmp_path, entries)
    with pytest.raises(ScheduleError) as caught:
        effective_entries(load_schedule_file(path))
    error = caught.value
    assert error.entry == entry
    assert error.errors[0].field == field
    assert message in str(error)
    if entry != "(file)":
        assert str(path) in str(error) or "schedule file" in str(error)


def test_runtime_edits_layer_over_the_file_and_merge(tmp_path: Path) -> None:
    file_entries = load_schedule_file(write(tmp_path, {"news": {"cron": "*/10 * * * *"}}))
    first = parse_override("news", '{"params": {"symbols": ["MSFT"]}}')
    entries = effective_entries(file_entries, {"news": first})
    assert entries["news"].cron == "*/10 * * * *" and entries["news"].source == "runtime"
    second = merge_patches(first, EntryPatch(every_seconds=120))
    merged = effective_entries(file_entries, {"news": second})["news"]
    assert (merged.cron, merged.every_seconds, merged.params) == (None, 120, {"symbols": ["MSFT"]})
    back = merge_patches(second, EntryPatch(cron="0 * * * *"))
    assert back.model_dump(exclude_unset=True) == {
        "params": {"symbols": ["MSFT"]},
        "cron": "0 * * * *",
    }


def test_an_edit_that_does_not_apply_is_refused_or_ignored() -> None:
    entries = effective_entries()
    with pytest.raises(ScheduleError) as caught:
        apply_patch(entries, "end_of_day", EntryPatch(params={"bogus": 1}))
    assert caught.value.errors[0].field == "params.bogus"
    with pytest.raises(ScheduleError) as bad_cron:
        parse_override("news", {"cron": "60 * * * *"})
    assert bad_cron.value.errors[0].field == "cron"
    # Stored before a release made it invalid: ignored, beat keeps running.
    stale = {"end_of_day": EntryPatch(params={"bogus": 1}), "gone": EntryPatch(enabled=False)}
    assert effective_entries(overrides=stale)["end_of_day"].params == {
        "pipeline": "end_of_day",
        "params": {},
    }


def test_interval_fires_sit_on_the_epoch_grid_and_a_new_entry_waits() -> None:
    now = datetime(2026, 12, 2, 1, 0, 0, 400_000, tzinfo=NY)
    schedule = ExchangeSchedule(every_seconds=2, nowfun=lambda: now)
    # Never run: not due at once, due at the next even second.
    due, next_in = schedule.is_due(None)
    assert not due and 0 < next_in <= 2
    assert schedule.due_fire(now.replace(second=0, microsecond=0), now) is None
    later = now.replace(second=7)
    fire = schedule.due_fire(now, later)
    assert fire is not None and fire.timestamp() % 2 == 0 and fire <= later


def test_a_fire_older_than_the_catchup_window_is_missed() -> None:
    monday_open = datetime(2026, 11, 30, 9, 30, tzinfo=NY)
    calendar = MarketCalendar("XNYS")
    schedule = ExchangeSchedule(cron="* * * * *", market_hours_only=True, catchup_seconds=60)
    # Beat was down all weekend: the first decision after Monday's open is a fire, not
    # a replay of Friday's closing minutes.
    verdict, fire = schedule.decide(
        datetime(2026, 11, 27, 12, 59, tzinfo=NY), monday_open.replace(second=5), calendar
    )
    assert verdict is Verdict.FIRE and fire == monday_open
    verdict, fire = schedule.decide(
        datetime(2026, 11, 27, 12, 0, tzinfo=NY), datetime(2026, 11, 28, 12, 0, tzinfo=NY), calendar
    )
    assert verdict is Verdict.MARKET_CLOSED
    stale = ExchangeSchedule(cron="0 18 * * *", catchup_seconds=600)
    verdict, fire = stale.decide(
        datetime(2026, 11, 30, 17, 0, tzinfo=NY), datetime(2026, 11, 30, 19, 0, tzinfo=NY), calendar
    )
    assert (verdict, fire) == (Verdict.MISSED, None)


def test_the_schedule_round_trips_through_redbeat_json() -> None:
    schedule = ExchangeSchedule(cron="*/5 * * * *", market_hours_only=True, catchup_seconds=90)
    assert ExchangeSchedule.from_json(schedule.to_json()) == schedule
    assert "market hours" in repr(schedule)
