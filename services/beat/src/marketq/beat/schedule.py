"""``ExchangeSchedule``: a Celery schedule that reads cron on the exchange's wall clock.

Celery's ``crontab`` evaluates in the app's time zone with its own DST handling; this
one delegates to ``marketq.common.scheduling.firing`` (and so to the stated DST rules of
``marketq.common.scheduling.cron``), the same code the API previews with. The schedule
answers only "is a raw fire due"; the exchange calendar's gate is applied by the
scheduler when it fires, so every refused fire is counted with its reason.

RedBeat stores schedules as JSON in Redis; ``to_json``/``from_json`` give this class its
own ``__type__`` there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from celery.schedules import BaseSchedule, schedstate

from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.scheduling.firing import Clock, Verdict, gate

JSON_TYPE = "marketq_exchange_schedule"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ExchangeSchedule(BaseSchedule):  # type: ignore[misc]  # celery ships no types
    def __init__(
        self,
        *,
        cron: str | None = None,
        every_seconds: int | None = None,
        timezone: str = "America/New_York",
        market_hours_only: bool = False,
        trading_days_only: bool = False,
        catchup_seconds: int = 3600,
        nowfun: Callable[[], datetime] | None = None,
        app: Any = None,
    ) -> None:
        super().__init__(nowfun=nowfun, app=app)
        self.cron = cron
        self.every_seconds = every_seconds
        self.timezone = timezone
        self.market_hours_only = market_hours_only
        self.trading_days_only = trading_days_only
        self.catchup_seconds = catchup_seconds
        self.clock = Clock(cron=cron, every_seconds=every_seconds, tz=ZoneInfo(timezone))

    # --- Celery's schedule protocol --------------------------------------------------
    def now(self) -> datetime:
        value = self.nowfun() if self.nowfun is not None else datetime.now(UTC)
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def _baseline(self, last_run_at: datetime | None, now: datetime) -> datetime:
        # Never run (RedBeat passes year 1): wait for the next fire instead of firing now.
        if last_run_at is None or last_run_at < _EPOCH:
            return now
        return last_run_at if last_run_at.tzinfo else last_run_at.replace(tzinfo=UTC)

    def remaining_estimate(self, last_run_at: datetime | None) -> timedelta:
        now = self.now()
        return self.clock.next_after(self._baseline(last_run_at, now)) - now

    def is_due(self, last_run_at: datetime | None) -> schedstate:
        now = self.now()
        baseline = self._baseline(last_run_at, now)
        if self.clock.next_after(baseline) <= now:
            next_in = (self.clock.next_after(now) - now).total_seconds()
            return schedstate(is_due=True, next=max(next_in, 0.0))
        return schedstate(
            is_due=False, next=(self.clock.next_after(baseline) - now).total_seconds()
        )

    def due_fire(self, last_run_at: datetime | None, now: datetime) -> datetime | None:
        """The fire being made now: the latest raw fire since the last run, if it is
        within the catch-up window (None: it is stale, skipped as missed)."""
        baseline = self._baseline(last_run_at, now)
        window_start = now - timedelta(seconds=self.catchup_seconds)
        return self.clock.latest_at_or_before(now, max(baseline, window_start))

    def decide(
        self, last_run_at: datetime | None, now: datetime, calendar: MarketCalendar
    ) -> tuple[Verdict, datetime | None]:
        """What to do with the fire due now: publish it, or why not (before the claim)."""
        fire = self.due_fire(last_run_at, now)
        if fire is None:
            return Verdict.MISSED, None
        verdict = gate(
            fire,
            calendar,
            market_hours_only=self.market_hours_only,
            trading_days_only=self.trading_days_only,
            tz=self.clock.tz,
        )
        return verdict, fire

    # --- RedBeat storage ---------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "__type__": JSON_TYPE,
            "cron": self.cron,
            "every_seconds": self.every_seconds,
            "timezone": self.timezone,
            "market_hours_only": self.market_hours_only,
            "trading_days_only": self.trading_days_only,
            "catchup_seconds": self.catchup_seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExchangeSchedule:
        fields = {k: v for k, v in data.items() if k != "__type__"}
        return cls(**fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExchangeSchedule) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.to_json().items())))

    def __repr__(self) -> str:
        rule = f"cron {self.cron!r}" if self.cron else f"every {self.every_seconds}s"
        flags = [
            name
            for name, on in (
                ("market hours", self.market_hours_only),
                ("trading days", self.trading_days_only),
            )
            if on
        ]
        return f"<ExchangeSchedule {rule} {self.timezone}{' ' + ', '.join(flags) if flags else ''}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.to_json(),))


def _rebuild(data: dict[str, Any]) -> ExchangeSchedule:
    return ExchangeSchedule.from_json(data)
