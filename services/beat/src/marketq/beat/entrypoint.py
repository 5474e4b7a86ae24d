"""``marketq-beat``: exec Celery beat with marketq's exchange-aware RedBeat scheduler.

The process replaces itself with Celery (``os.execv``), so in a container beat is PID 1
and SIGTERM reaches it: beat then releases its lock and the standby (if any) takes over
at its next poll instead of waiting for the lock to expire.

Before that it checks the exchange calendar reaches ``MARKETQ_BEAT_CALENDAR_MIN_HORIZON_DAYS``
ahead (``marketq.beat.horizon``): a warning, or a refusal to start with
``MARKETQ_BEAT_CALENDAR_HORIZON_ACTION=refuse``.

``MARKETQ_BEAT_ENABLED=false`` turns the scheduler off cleanly: the command says so and
exits 0 (the chart renders no beat Deployment in that case; ``make up`` starts none).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import date

from marketq.beat.horizon import calendar_horizon_problem
from marketq.common.logs import celery_quiet_option
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.scheduling.schedules import effective_entries, load_schedule_file
from marketq.common.settings import Settings, get_settings

BEAT_APP = "marketq.beat.app:app"
SCHEDULER = "marketq.beat.scheduler:ExchangeScheduler"


def beat_argv(settings: Settings, *, app: str = BEAT_APP, loglevel: str | None = None) -> list[str]:
    # The loop interval, the lock and RedBeat's Redis come from the app's configuration.
    return [
        sys.executable,
        "-m",
        "celery",
        *celery_quiet_option(settings.log_format),
        "-A",
        app,
        "beat",
        "--scheduler",
        SCHEDULER,
        "--loglevel",
        (loglevel or settings.log_level).upper(),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="marketq-beat", description="Run marketq's scheduler (Celery beat with RedBeat)."
    )
    parser.add_argument("--loglevel", help="Overrides MARKETQ_LOG_LEVEL")
    parser.add_argument(
        "--check", action="store_true", help="Validate the schedule (file included) and exit"
    )
    parser.add_argument(
        "--print", action="store_true", help="Print the celery command instead of running it"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    if not settings.beat_enabled:
        print("marketq-beat: the scheduler is disabled (MARKETQ_BEAT_ENABLED=false); exiting")
        return
    # Fail here, naming the entry and field, rather than inside Celery's start-up.
    try:
        file_entries = load_schedule_file(settings.schedule_file) if settings.schedule_file else {}
        entries = effective_entries(file_entries)
    except ValueError as exc:
        sys.exit(f"marketq-beat: {exc}")
    problem = calendar_horizon_problem(
        MarketCalendar(settings.exchange), date.today(), settings.beat_calendar_min_horizon_days
    )
    if problem is not None:
        if settings.beat_calendar_horizon_action == "refuse":
            sys.exit(f"marketq-beat: refusing to start: {problem}")
        print(f"marketq-beat: warning: {problem}", file=sys.stderr)
    if args.check:
        print(f"marketq-beat: schedule ok, {len(entries)} entries")
        return
    command = beat_argv(settings, loglevel=args.loglevel)
    if args.print:
        print(" ".join(command))
        return
    # Celery beat writes no files with RedBeat (no shelve); run from a writable cwd anyway.
    os.execv(command[0], command)  # noqa: S606  (exec, no shell)


if __name__ == "__main__":
    main()
