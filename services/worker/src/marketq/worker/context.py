"""What a job implementation gets besides its parameters."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.settings import Settings
from marketq.providers.errors import NotOfferedError, PermanentProviderError
from marketq.providers.routing import RoutedProvider

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
    provider: RoutedProvider  # every read goes through routing: stamped and validated
    calendar: MarketCalendar
    sessions: sessionmaker[Session]
    log: logging.LoggerAdapter[logging.Logger]
    _progress_sink: ProgressSink = field(repr=False)
    failed_symbols: dict[str, str] = field(default_factory=dict)
    _symbol_errors: list[PermanentProviderError] = field(default_factory=list, repr=False)
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

    def each_symbol(self, symbols: list[str]) -> Iterator[str]:
        """The symbols one by one, with progress; ``failed`` records a permanent failure.

        Use as ``for symbol in ctx.each_symbol(s): with ctx.failed(symbol): ...``. If every
        symbol failed, the run fails with their reasons; a transient error is never caught
        here (the whole run is retried, and its upserts make the retry harmless).
        """
        for done, symbol in enumerate(symbols, start=1):
            yield symbol
            self.progress(done, len(symbols))
        if symbols and len(self.failed_symbols) == len(symbols):
            raise self._every_symbol_failed()

    def _every_symbol_failed(self) -> PermanentProviderError:
        """One error for the run: of the symbols' own class and vendor when they agree
        (every symbol unknown to one vendor is ``unknown_symbol`` from it, not a vaguer
        ``vendor_rejected``), naming each symbol's reason."""
        message = "every symbol failed: " + "; ".join(
            f"{s}: {r}" for s, r in self.failed_symbols.items()
        )
        kinds = {type(error) for error in self._symbol_errors}
        vendors = {error.vendor for error in self._symbol_errors}
        vendor = vendors.pop() if len(vendors) == 1 else None
        kind = kinds.pop() if len(kinds) == 1 else PermanentProviderError
        if kind is NotOfferedError:  # its own constructor; the message still says it all
            kind = PermanentProviderError
        return kind(message, vendor=vendor)

    @contextmanager
    def failed(self, symbol: str) -> Iterator[None]:
        """A permanent provider error for ``symbol`` is recorded, not raised."""
        try:
            yield
        except PermanentProviderError as error:
            self.failed_symbols[symbol] = str(error)
            self._symbol_errors.append(error)
            self.log.warning("%s skipped: %s", symbol, error)

    def result(self, **fields: Any) -> dict[str, Any]:
        """The run's result: ``fields`` plus the symbols that failed and the rows that
        validation rejected, when there were any."""
        out: dict[str, Any] = dict(fields)
        if self.failed_symbols:
            out["failed_symbols"] = dict(self.failed_symbols)
        if self.provider.rejections:
            out["rejected_rows"] = [r.as_dict() for r in self.provider.rejections]
        return out

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
