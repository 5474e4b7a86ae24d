"""The schedule: read it with next fires and last runs, edit it at runtime, fire an entry.

What is shown is the effective schedule beat fires (catalog, then the schedule file,
then runtime edits: ``marketq.common.scheduling.schedules``). Edits are stored in Redis and bump a
counter beat checks once per loop, so they take effect within one loop interval and
survive a beat restart.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from marketq.api.access import Admin, Read, Trigger
from marketq.api.errors import ApiError, ErrorDetail, ErrorResponse
from marketq.api.routes.market import (
    AtQuery,
    Instant,
    instant,
    market_calendar,
    out_of_range,
    parse_at,
)
from marketq.api.routes.runs import ERRORS, _accepted
from marketq.api.schemas import RunAccepted
from marketq.api.state import ApiState, State
from marketq.common.catalog import CATALOG
from marketq.common.publish import InvalidParamsError, prepare_run
from marketq.common.scheduling.calendar import CalendarRangeError
from marketq.common.scheduling.firing import entry_next_fires
from marketq.common.scheduling.schedules import (
    ENTRY_HEADER,
    EntryPatch,
    ScheduleEntry,
    ScheduleError,
    apply_patch,
    beat_status_key,
    effective_entries,
    fires_key,
    merge_patches,
    overrides_key,
    parse_override,
    version_key,
)

router = APIRouter(prefix="/api/v1", tags=["schedules"])

EntryName = Annotated[str, Path(description="Schedule entry name.", examples=["stock_quotes"])]


class LastDecision(BaseModel):
    decision: str = Field(description="fire, market_closed, not_trading_day, missed or duplicate.")
    fire_at: datetime | None = Field(description="The scheduled instant it was about.")
    decided_at: datetime
    run_id: str | None = Field(description="The run published, when it fired.")


class ScheduleView(BaseModel):
    name: str = Field(description="Entry name (a catalog job's own entry has its name).")
    job: str
    queue: str
    description: str
    enabled: bool
    cron: str | None = Field(
        description="Five-field cron in the exchange's time zone; null with every_seconds."
    )
    every_seconds: int | None = Field(description="Fixed interval instead of cron.")
    trading_days_only: bool = Field(description="Fires only on sessions (no weekends, holidays).")
    market_hours_only: bool = Field(
        description="Fires only while the market is open (early closes honoured)."
    )
    params: dict[str, Any] = Field(description="Params of every fire (defaults omitted).")
    source: str = Field(description="Highest layer that changed it: catalog, file, runtime.")
    next_fires: list[Instant] = Field(description="The next fires; empty for a disabled entry.")
    last_fire: LastDecision | None = Field(description="The last fire beat published.")
    last_decision: LastDecision | None = Field(
        description="The last time beat looked at a due fire, published or skipped."
    )


class SchedulerView(BaseModel):
    enabled: bool = Field(description="MARKETQ_BEAT_ENABLED as this API sees it.")
    holder: str | None = Field(description="host:pid of the beat holding the lock, if any.")
    last_tick: datetime | None = Field(description="Last loop of the lock holder.")


class SchedulesResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "exchange": "XNYS",
                    "timezone": "America/New_York",
                    "as_of": {
                        "exchange_time": "2026-11-25T15:58:00-05:00",
                        "utc": "2026-11-25T20:58:00Z",
                    },
                    "scheduler": {
                        "enabled": True,
                        "holder": "marketq-beat-7d9f:1",
                        "last_tick": "2026-11-25T20:57:59Z",
                    },
                    "schedules": [
                        {
                            "name": "stock_quotes",
                            "job": "stock_quotes",
                            "queue": "market_hours",
                            "description": "Latest quote of every symbol, once a minute.",
                            "enabled": True,
                            "cron": "* * * * *",
                            "every_seconds": None,
                            "trading_days_only": False,
                            "market_hours_only": True,
                            "params": {},
                            "source": "catalog",
                            "next_fires": [
                                {
                                    "exchange_time": "2026-11-25T15:59:00-05:00",
                                    "utc": "2026-11-25T20:59:00Z",
                                },
                                {
                                    "exchange_time": "2026-11-27T09:30:00-05:00",
                                    "utc": "2026-11-27T14:30:00Z",
                                },
                            ],
                            "last_fire": {
                                "decision": "fire",
                                "fire_at": "2026-11-25T20:57:00Z",
                                "decided_at": "2026-11-25T20:57:00.2Z",
                                "run_id": "9b2f3c4e-0d7a-4d8e-9a51-6f1c2b3d4e5f",
                            },
                            "last_decision": None,
                        }
                    ],
                }
            ]
        }
    )

    exchange: str
    timezone: str = Field(description="The zone cron expressions are read in.")
    as_of: Instant = Field(description="Fires are strictly after this instant.")
    scheduler: SchedulerView
    schedules: list[ScheduleView]


class SchedulePatch(EntryPatch):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"enabled": False},
                {"cron": "*/2 * * * *", "params": {"symbols": ["AAPL", "MSFT"]}},
            ]
        },
    )


def _schedule_error(exc: ScheduleError) -> ApiError:
    details = [
        ErrorDetail(field=e.field or None, message=e.message, type=e.type) for e in exc.errors
    ]
    return ApiError(422, "invalid_schedule", str(exc), details)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _hash(state: ApiState, key: str) -> dict[str, str]:
    """A Redis hash with text keys and values (the API's client returns bytes)."""
    raw = await state.redis.hgetall(key)
    return {_text(k): _text(v) for k, v in raw.items()}


async def _store_edit(state: ApiState, name: str, patch: EntryPatch | None) -> None:
    """Store (or with None drop) an entry's runtime edit and tell beat to resync."""
    prefix = state.settings.redis_key_prefix
    async with state.redis.pipeline(transaction=True) as pipe:
        if patch is None:
            pipe.hdel(overrides_key(prefix), name)
        else:
            pipe.hset(overrides_key(prefix), name, patch.model_dump_json(exclude_unset=True))
        pipe.incr(version_key(prefix))
        await pipe.execute()


async def _overrides(state: ApiState) -> dict[str, EntryPatch]:
    overrides = {}
    for name, text in (await _hash(state, overrides_key(state.settings.redis_key_prefix))).items():
        try:
            overrides[name] = parse_override(name, text)
        except ScheduleError:
            continue  # beat ignores it too (and logs it)
    return overrides


async def _entries(state: ApiState) -> tuple[dict[str, ScheduleEntry], dict[str, EntryPatch]]:
    overrides = await _overrides(state)
    return effective_entries(state.schedule_file, overrides), overrides


def _entry(entries: dict[str, ScheduleEntry], name: str) -> ScheduleEntry:
    if name not in entries:
        raise ApiError(
            404,
            "unknown_schedule",
            f"no schedule entry {name!r}; entries: {', '.join(entries)}",
        )
    return entries[name]


def _decision(raw: Any) -> LastDecision | None:
    if raw is None:
        return None
    try:
        return LastDecision.model_validate(json.loads(raw))
    except ValueError:
        return None


async def _views(
    state: ApiState, entries: dict[str, ScheduleEntry], now: datetime, count: int
) -> list[ScheduleView]:
    calendar = await market_calendar(state.settings)
    tz = ZoneInfo(state.settings.timezone)
    last = await _hash(state, fires_key(state.settings.redis_key_prefix))
    views = []
    for entry in entries.values():
        job = CATALOG[entry.job]
        fires = (
            entry_next_fires(entry, after=now, calendar=calendar, tz=tz, count=count)
            if entry.enabled
            else []
        )
        views.append(
            ScheduleView(
                name=entry.name,
                job=entry.job,
                queue=job.queue.value,
                description=job.description,
                enabled=entry.enabled,
                cron=entry.cron,
                every_seconds=entry.every_seconds,
                trading_days_only=entry.trading_days_only,
                market_hours_only=entry.market_hours_only,
                params=entry.params,
                source=entry.source,
                next_fires=[instant(fire, tz) for fire in fires],
                last_fire=_decision(last.get(f"{entry.name}:fired")),
                last_decision=_decision(last.get(entry.name)),
            )
        )
    return views


@router.get(
    "/schedules",
    response_model=SchedulesResponse,
    summary="Schedule entries, their next fire times and last runs",
    responses={
        **ERRORS,
        422: {"model": ErrorResponse, "description": "`at` without an offset or off-calendar."},
    },
)
async def list_schedules(
    *,
    at: AtQuery = None,
    count: Annotated[int, Query(ge=1, le=20, description="Fire times per entry.")] = 3,
    _principal: Read,
    state: State,
) -> SchedulesResponse:
    """Every entry beat fires — the catalog's, the schedule file's and runtime edits —
    with its cron in exchange time, its calendar flags, its next
    ``count`` fires in exchange time and UTC, and what beat last did with it.

    Fires follow the exchange calendar: ``market_hours_only`` entries fire only inside
    sessions (holidays skipped, early closes honoured: every-minute quotes end at 12:59
    ET on a 13:00 close), ``trading_days_only`` entries only on sessions. Cron is read on
    the exchange's wall clock through DST (a fixed-time job in a skipped hour fires once
    when the clock jumps; in a repeated hour, once).
    """
    calendar = await market_calendar(state.settings)
    now = parse_at(at, calendar)
    tz = ZoneInfo(state.settings.timezone)
    entries, _ = await _entries(state)
    try:
        views = await _views(state, entries, now, count)
    except CalendarRangeError as exc:
        raise out_of_range(exc) from None
    status = await _hash(state, beat_status_key(state.settings.redis_key_prefix))
    tick = status.get("tick")
    return SchedulesResponse(
        exchange=calendar.code,
        timezone=str(tz),
        as_of=instant(now, tz),
        scheduler=SchedulerView(
            enabled=state.settings.beat_enabled,
            holder=status.get("holder"),
            last_tick=datetime.fromtimestamp(float(tick), UTC) if tick else None,
        ),
        schedules=views,
    )


async def _one(state: ApiState, name: str) -> ScheduleView:
    entries, _ = await _entries(state)
    _entry(entries, name)
    views = await _views(state, {name: entries[name]}, datetime.now(UTC), 3)
    return views[0]


@router.get(
    "/schedules/{name}",
    response_model=ScheduleView,
    summary="One schedule entry",
    responses={**ERRORS, 404: {"model": ErrorResponse, "description": "No such entry."}},
)
async def get_schedule(*, name: EntryName, _principal: Read, state: State) -> ScheduleView:
    """One entry as ``GET /schedules`` shows it, with its next three fires."""
    return await _one(state, name)


@router.patch(
    "/schedules/{name}",
    response_model=ScheduleView,
    summary="Edit a schedule entry at runtime",
    responses={
        **ERRORS,
        404: {"model": ErrorResponse, "description": "No such entry."},
        422: {"model": ErrorResponse, "description": "Invalid edit; names the field."},
    },
)
async def patch_schedule(
    *, name: EntryName, body: SchedulePatch, _principal: Admin, state: State
) -> ScheduleView:
    """Enable or disable an entry, change its cron (or interval) or its params.

    The edit is layered over the catalog and the schedule file, stored in Redis, and
    picked up by beat within one loop interval; it survives beat restarts until
    ``DELETE /schedules/{name}/override`` drops it. A changed clock starts from now (no
    catch-up of fires the old clock missed). Fields left out are kept.
    """
    if body.is_empty():
        raise ApiError(
            422,
            "invalid_schedule",
            "the edit changes nothing; give enabled, cron, every_seconds or params",
            [ErrorDetail(field=None, message="empty edit")],
        )
    entries, overrides = await _entries(state)
    _entry(entries, name)
    merged = merge_patches(
        overrides.get(name), EntryPatch.model_validate(body.model_dump(exclude_unset=True))
    )
    try:
        apply_patch(entries, name, merged)
    except ScheduleError as exc:
        raise _schedule_error(exc) from None
    await _store_edit(state, name, merged)
    return await _one(state, name)


@router.delete(
    "/schedules/{name}/override",
    response_model=ScheduleView,
    summary="Drop the runtime edit of an entry",
    responses={**ERRORS, 404: {"model": ErrorResponse, "description": "No such entry."}},
)
async def reset_schedule(*, name: EntryName, _principal: Admin, state: State) -> ScheduleView:
    """Back to the catalog and schedule file's definition (idempotent)."""
    entries, _ = await _entries(state)
    _entry(entries, name)
    await _store_edit(state, name, None)
    return await _one(state, name)


@router.post(
    "/schedules/{name}/run",
    status_code=202,
    response_model=RunAccepted,
    summary="Fire a schedule entry now",
    responses={
        **ERRORS,
        404: {"model": ErrorResponse, "description": "No such entry."},
        422: {"model": ErrorResponse, "description": "The entry's params no longer validate."},
    },
)
async def run_schedule(
    *, name: EntryName, response: Response, _principal: Trigger, state: State
) -> RunAccepted:
    """Publish one run of the entry with its params right away, whatever the market and
    the entry's clock say (a pipeline's entry starts a pipeline run). Beat's own fires
    are unaffected."""
    entries, _ = await _entries(state)
    entry = _entry(entries, name)
    try:
        run = prepare_run(entry.job, entry.params, settings=state.settings)
        run = replace(
            run,
            headers={**run.headers, ENTRY_HEADER: entry.name},
        )
    except InvalidParamsError as exc:
        raise ApiError(422, "invalid_params", str(exc)) from None
    await state.publisher.publish([run])
    accepted = _accepted(run)
    response.headers["Location"] = accepted.status_url
    return accepted
