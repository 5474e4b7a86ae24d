"""What a job implementation gets besides its parameters."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session, sessionmaker

from marketq.common.calendar import MarketCalendar
from marketq.common.providers.base import MarketDataProvider
from marketq.common.settings import Settings

ProgressSink = Callable[[int, int | None], None]

# Progress is written to the ledger and the result store at most this often; the last
# step of a run is always written.
PROGRESS_MIN_INTERVAL_SECONDS = 0.5


@dataclass
class JobContext:
    run_id: str
    job: str
    queue: str | None  # the queue the message came from
    worker: str | None  # Celery node name
    as_of: datetime  # the run's reference time: its enqueue time, so redelivery agrees
    settings: Settings
    provider: MarketDataProvider
    calendar: MarketCalendar
    sessions: sessionmaker[Session]
    log: logging.LoggerAdapter[logging.Logger]
    _progress_sink: ProgressSink = field(repr=False)
    _last_progress: float = field(default=0.0, repr=False)

    @property
    def today(self) -> date:
        """The exchange-local date of the run's reference time."""
        return self.as_of.astimezone(self.calendar.tz).date()

    @property
    def last_session(self) -> date:
        """The last exchange session that had closed at the run's reference time.

        End-of-day jobs default to it, so a run during a session never stores that
        session's bar before it is complete.
        """
        return self.calendar.last_completed_session(self.as_of).day

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    def symbols(self, requested: list[str] | None) -> list[str]:
        return list(requested) if requested else list(self.settings.symbols)

    def progress(self, current: int, total: int | None) -> None:
        now = time.monotonic()
        last_step = total is not None and current >= total
        if last_step or now - self._last_progress >= PROGRESS_MIN_INTERVAL_SECONDS:
            self._last_progress = now
            self._progress_sink(current, total)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One database transaction: committed on success, rolled back on error."""
        with self.sessions.begin() as session:
            yield session
