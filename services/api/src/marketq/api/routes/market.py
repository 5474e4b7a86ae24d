"""Is the market open: the exchange calendar (holidays, early closes, DST) as services see it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo

from anyio import to_thread
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from marketq.api.access import Read
from marketq.api.errors import ApiError, ErrorDetail, ErrorResponse
from marketq.api.routes.runs import ERRORS
from marketq.api.state import State
from marketq.common.scheduling.calendar import CalendarRangeError, MarketCalendar
from marketq.common.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["observe"])


@lru_cache(maxsize=8)
def _calendar(code: str) -> MarketCalendar:
    return MarketCalendar(code)


async def market_calendar(settings: Settings) -> MarketCalendar:
    """The exchange's calendar, built once per process (in a thread: the first build of
    an exchange-calendars calendar takes a while and must not block the event loop)."""
    return await to_thread.run_sync(_calendar, settings.exchange)


class Instant(BaseModel):
    exchange_time: datetime = Field(description="In the exchange's time zone, with offset.")
    utc: datetime


def instant(value: datetime, tz: ZoneInfo) -> Instant:
    return Instant(exchange_time=value.astimezone(tz), utc=value.astimezone(UTC))


class SessionInfo(BaseModel):
    day: date = Field(description="The session's date on the exchange's calendar.")
    open: Instant
    close: Instant
    early_close: bool = Field(
        description="Closes early (e.g. 13:00 ET the day after Thanksgiving)."
    )


class MarketStatus(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "exchange": "XNYS",
                    "timezone": "America/New_York",
                    "is_open": True,
                    "now": {
                        "exchange_time": "2026-11-27T11:15:00-05:00",
                        "utc": "2026-11-27T16:15:00Z",
                    },
                    "session": {
                        "day": "2026-11-27",
                        "open": {
                            "exchange_time": "2026-11-27T09:30:00-05:00",
                            "utc": "2026-11-27T14:30:00Z",
                        },
                        "close": {
                            "exchange_time": "2026-11-27T13:00:00-05:00",
                            "utc": "2026-11-27T18:00:00Z",
                        },
                        "early_close": True,
                    },
                    "next_open": {
                        "exchange_time": "2026-11-30T09:30:00-05:00",
                        "utc": "2026-11-30T14:30:00Z",
                    },
                    "next_close": {
                        "exchange_time": "2026-11-27T13:00:00-05:00",
                        "utc": "2026-11-27T18:00:00Z",
                    },
                }
            ]
        }
    )

    exchange: str = Field(description="exchange-calendars code (MARKETQ_EXCHANGE).")
    timezone: str = Field(description="The zone schedules are written in.")
    is_open: bool
    now: Instant = Field(description="The instant answered for (now, or ?at=).")
    session: SessionInfo | None = Field(description="The session in progress, else null.")
    next_open: Instant = Field(description="The first open strictly after now.")
    next_close: Instant = Field(description="The close of the current session, else the next.")


def _invalid_at(message: str) -> ApiError:
    return ApiError(422, "invalid_request", message, [ErrorDetail(field="at", message=message)])


def parse_at(at: datetime | None, calendar: MarketCalendar) -> datetime:
    """``?at=`` as an aware instant (now when absent). 422 naming ``at`` when it has no
    UTC offset or lies outside the sessions the calendar covers."""
    if at is None:
        return datetime.now(UTC)
    if at.tzinfo is None or at.utcoffset() is None:
        raise _invalid_at("at must include a UTC offset")
    try:
        day = at.astimezone(calendar.tz).date()
        at.astimezone(UTC)
    except OverflowError:
        day = None
    if day is None or not calendar.first_session <= day <= calendar.last_session:
        raise _invalid_at(
            f"at must lie within the {calendar.code} calendar, "
            f"{calendar.first_session.isoformat()} to {calendar.last_session.isoformat()}"
        )
    return at


def out_of_range(exc: CalendarRangeError) -> ApiError:
    return _invalid_at(str(exc))


AtQuery = Annotated[
    datetime | None,
    Query(
        description="Answer for this instant instead of now (ISO 8601 with a UTC offset).",
        examples=["2026-11-27T12:59:00-05:00"],
    ),
]


@router.get(
    "/market/status",
    response_model=MarketStatus,
    summary="Whether the market is open, the current session, next open and close",
    responses={
        **ERRORS,
        422: {"model": ErrorResponse, "description": "`at` without an offset or off-calendar."},
    },
)
async def market_status(*, at: AtQuery = None, _principal: Read, state: State) -> MarketStatus:
    """From the exchange calendar (``MARKETQ_EXCHANGE``, default NYSE): open means
    ``open <= now < close`` of a session, with holidays, early closes and DST applied.
    Times are given in the exchange's zone and in UTC."""
    calendar = await market_calendar(state.settings)
    now = parse_at(at, calendar)
    tz = ZoneInfo(state.settings.timezone)
    try:
        current = calendar.current_session(now)
        is_open = calendar.is_open(now)
        next_open = calendar.next_open(now)
        next_close = calendar.next_close(now)
    except CalendarRangeError as exc:
        raise out_of_range(exc) from None
    return MarketStatus(
        exchange=calendar.code,
        timezone=str(tz),
        is_open=is_open,
        now=instant(now, tz),
        session=SessionInfo(
            day=current.day,
            open=instant(current.open, tz),
            close=instant(current.close, tz),
            early_close=current.early_close,
        )
        if current is not None
        else None,
        next_open=instant(next_open, tz),
        next_close=instant(next_close, tz),
    )
