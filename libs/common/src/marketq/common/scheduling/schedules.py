"""The effective schedule: catalog defaults, then the schedule file, then runtime edits.

Each layer may change an entry; the last one wins, field by field:

1. **catalog** — every job with a ``Schedule`` is an entry of the same name, and so is
   every scheduled pipeline (an entry firing ``start_pipeline`` for it).
2. **schedule file** (``MARKETQ_SCHEDULE_FILE``, YAML, a ConfigMap in Kubernetes) — may
   change catalog entries (``enabled``, ``cron``, ``every_seconds``, ``params``, the two
   calendar flags) and add entries of its own for any catalog job (``job: stock_quotes``
   under a new name, say, for a second symbol list or an extended-hours window).
3. **runtime edits** (``PATCH /api/v1/schedules/{name}``) — ``enabled``, ``cron``,
   ``every_seconds`` and ``params`` of an existing entry, kept in Redis so they survive a
   beat restart, and dropped with ``DELETE /api/v1/schedules/{name}/override``.

The API and beat compute the same effective schedule from the same three inputs, so
what ``GET /api/v1/schedules`` shows is what beat fires. Everything is validated where it
enters: a bad file stops the process at start with the entry and field named; a bad edit
is refused before it is stored.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from marketq.common.catalog import CATALOG, Catalog, JobSpec, Schedule
from marketq.common.pipelines import PIPELINES, PipelineSpec
from marketq.common.publish import FieldError, InvalidParamsError, field_errors, validate_params
from marketq.common.scheduling.cron import CronError, CronExpression

__all__ = [
    "EntryPatch",
    "ScheduleEntry",
    "ScheduleError",
    "effective_entries",
    "load_schedule_file",
    "overrides_key",
    "parse_override",
    "version_key",
]

log = logging.getLogger(__name__)

Source = Literal["catalog", "file", "runtime"]
ENTRY_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class ScheduleError(ValueError):
    """An invalid schedule entry or edit; ``errors`` name the entry's fields."""

    def __init__(self, entry: str, errors: list[FieldError], where: str = "") -> None:
        listed = "; ".join(f"{e.field or '(entry)'}: {e.message}" for e in errors)
        super().__init__(f"schedule entry {entry!r}{where}: {listed}")
        self.entry = entry
        self.errors = errors


class EntryPatch(BaseModel):
    """What may change on an entry. Fields left out keep the value of the layer below."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = Field(default=None, description="Whether the entry fires at all.")
    cron: str | None = Field(
        default=None,
        description="Five-field cron in the exchange's time zone (replaces every_seconds).",
        examples=["*/5 * * * *"],
    )
    every_seconds: int | None = Field(
        default=None,
        ge=1,
        le=7 * 86_400,
        description="Fire every N seconds on the epoch grid (replaces cron).",
    )
    params: dict[str, Any] | None = Field(
        default=None, description="The job's parameters, replacing the layer below's."
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronExpression.parse(value)
            except CronError as exc:
                raise ValueError(str(exc)) from None
        return value

    def is_empty(self) -> bool:
        return not self.model_fields_set


class FileEntry(EntryPatch):
    """One entry of the schedule file: a patch, or a new entry for a catalog job."""

    job: str | None = Field(default=None, description="Catalog job (default: the entry name).")
    trading_days_only: bool | None = None
    market_hours_only: bool | None = None


class ScheduleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: dict[str, FileEntry] = Field(default_factory=dict)


class ScheduleEntry(BaseModel):
    """One effective entry: what beat fires and what the API shows."""

    model_config = ConfigDict(frozen=True)

    name: str
    job: str
    cron: str | None
    every_seconds: int | None
    trading_days_only: bool
    market_hours_only: bool
    enabled: bool
    params: dict[str, Any]
    source: Source  # the highest layer that changed the entry

    def definition_json(self) -> str:
        """A stable rendering of what the entry does (beat compares it to resync)."""
        return json.dumps(self.model_dump(exclude={"source"}), sort_keys=True)


def _catalog_entry(job: JobSpec, schedule: Schedule) -> ScheduleEntry:
    assert schedule.name is not None  # Catalog.default_schedules names every entry
    market_hours_only = schedule.market_hours_only
    return ScheduleEntry(
        name=schedule.name,
        job=job.name,
        cron=schedule.cron,
        every_seconds=None,
        trading_days_only=schedule.trading_days_only,
        market_hours_only=job.market_hours_only if market_hours_only is None else market_hours_only,
        enabled=schedule.enabled,
        params=dict(schedule.params),
        source="catalog",
    )


START_PIPELINE_JOB = "start_pipeline"
# Every message beat (or the API's "fire now") publishes for an entry names it, and the
# instant it was scheduled for.
ENTRY_HEADER = "marketq_schedule_entry"
SCHEDULED_FOR_HEADER = "marketq_scheduled_for"


def _pipeline_entry(spec: PipelineSpec) -> ScheduleEntry:
    schedule = spec.schedule
    assert schedule is not None
    return ScheduleEntry(
        name=spec.name,
        job=START_PIPELINE_JOB,
        cron=schedule.cron,
        every_seconds=None,
        trading_days_only=schedule.trading_days_only,
        market_hours_only=False,
        enabled=True,
        params={"pipeline": spec.name, "params": {}},
        source="catalog",
    )


def _validated_params(
    entry: ScheduleEntry, params: Mapping[str, Any], catalog: Catalog
) -> dict[str, Any]:
    """A patch's params as the entry stores them. A pipeline entry's params are the
    pipeline run's (``{"symbols": [...]}``); the pipeline it starts cannot change."""
    if entry.job == START_PIPELINE_JOB and "pipeline" in entry.params:
        spec = PIPELINES[entry.params["pipeline"]]
        unknown = sorted(set(params) - spec.accepted_params(catalog))
        if unknown:
            raise InvalidParamsError(
                entry.job,
                [FieldError(unknown[0], f"no step of {spec.name} takes it", "value_error")],
            )
        return {"pipeline": spec.name, "params": dict(params)}
    validated = validate_params(catalog[entry.job], params)
    return validated.model_dump(mode="json", exclude_unset=True)


def _apply(
    entry: ScheduleEntry,
    patch: EntryPatch,
    source: Source,
    catalog: Catalog,
    where: str,
) -> ScheduleEntry:
    fields = patch.model_fields_set
    if {"cron", "every_seconds"} <= fields and patch.cron and patch.every_seconds:
        raise ScheduleError(
            entry.name,
            [FieldError("cron", "give cron or every_seconds, not both", "value_error")],
            where,
        )
    changes: dict[str, Any] = {"source": source}
    if patch.enabled is not None:
        changes["enabled"] = patch.enabled
    if patch.cron is not None:
        changes.update(cron=patch.cron, every_seconds=None)
    if patch.every_seconds is not None:
        changes.update(every_seconds=patch.every_seconds, cron=None)
    if patch.params is not None:
        try:
            changes["params"] = _validated_params(entry, patch.params, catalog)
        except InvalidParamsError as exc:
            raise ScheduleError(
                entry.name,
                [
                    FieldError(f"params.{e.field}".rstrip("."), e.message, e.type)
                    for e in exc.errors
                ],
                where,
            ) from None
    if isinstance(patch, FileEntry):
        if patch.trading_days_only is not None:
            changes["trading_days_only"] = patch.trading_days_only
        if patch.market_hours_only is not None:
            changes["market_hours_only"] = patch.market_hours_only
    return entry.model_copy(update=changes)


def _new_file_entry(name: str, spec: FileEntry, catalog: Catalog, where: str) -> ScheduleEntry:
    job_name = spec.job or name
    if job_name not in catalog:
        raise ScheduleError(
            name, [FieldError("job", f"unknown job {job_name!r}", "value_error")], where
        )
    if spec.cron is None and spec.every_seconds is None:
        raise ScheduleError(
            name,
            [FieldError("cron", "a new entry needs cron or every_seconds", "missing")],
            where,
        )
    job = catalog[job_name]
    base = ScheduleEntry(
        name=name,
        job=job_name,
        cron=spec.cron,
        every_seconds=None if spec.cron else spec.every_seconds,
        trading_days_only=bool(job.schedule and job.schedule.trading_days_only),
        market_hours_only=job.market_hours_only,
        enabled=True,
        params={},
        source="file",
    )
    return _apply(base, spec, "file", catalog, where)


def load_schedule_file(path: str | Path) -> dict[str, FileEntry]:
    """The entries of a schedule file; raises ScheduleError naming the entry and field."""
    where = f" in {path}"
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ScheduleError("(file)", [FieldError("", str(exc), "file_error")], where) from None
    try:
        parsed = ScheduleFile.model_validate(raw)
    except ValidationError as exc:
        errors = field_errors(exc)
        first = errors[0].field.split(".")
        entry = first[1] if len(first) > 1 and first[0] == "entries" else "(file)"
        trimmed = [
            FieldError(".".join(e.field.split(".")[2:]) or e.field, e.message, e.type)
            for e in errors
        ]
        raise ScheduleError(entry, trimmed, where) from None
    for name in parsed.entries:
        if not _valid_name(name):
            raise ScheduleError(
                name,
                [FieldError("", "names are lower-case letters, digits and _", "value_error")],
                where,
            )
    return parsed.entries


def _valid_name(name: str) -> bool:
    return re.fullmatch(ENTRY_NAME_PATTERN, name) is not None


def parse_override(name: str, raw: Mapping[str, Any] | str) -> EntryPatch:
    """A stored or submitted runtime edit; raises ScheduleError naming the field."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else dict(raw)
        return EntryPatch.model_validate(data)
    except json.JSONDecodeError as exc:
        raise ScheduleError(name, [FieldError("", str(exc), "json_invalid")]) from None
    except ValidationError as exc:
        raise ScheduleError(name, field_errors(exc)) from None


def effective_entries(
    file_entries: Mapping[str, FileEntry] | None = None,
    overrides: Mapping[str, EntryPatch] | None = None,
    catalog: Catalog = CATALOG,
) -> dict[str, ScheduleEntry]:
    """Every entry after the three layers, by name (catalog order, then file order).

    A runtime edit of an entry that no longer exists (the file dropped it), or that no
    longer applies (params the job no longer takes), is logged and left out: a new
    release must not stop beat because of an old edit.
    """
    entries = {
        schedule.name or job.name: _catalog_entry(job, schedule)
        for job, schedule in catalog.default_schedules()
    }
    if START_PIPELINE_JOB in catalog:
        entries.update({p.name: _pipeline_entry(p) for p in PIPELINES.values() if p.schedule})
    for name, spec in (file_entries or {}).items():
        where = " in the schedule file"
        if name in entries:
            if spec.job is not None and spec.job != entries[name].job:
                raise ScheduleError(
                    name,
                    [FieldError("job", f"{name} is the catalog entry of {name}", "value_error")],
                    where,
                )
            entries[name] = _apply(entries[name], spec, "file", catalog, where)
        else:
            entries[name] = _new_file_entry(name, spec, catalog, where)
    for name, patch in (overrides or {}).items():
        if name not in entries:
            log.warning("runtime edit of %r ignored: no such entry", name)
            continue
        try:
            entries[name] = _apply(entries[name], patch, "runtime", catalog, " (runtime edit)")
        except ScheduleError as exc:
            log.warning("runtime edit ignored: %s", exc)
    return entries


def apply_patch(
    entries: Mapping[str, ScheduleEntry], name: str, patch: EntryPatch, catalog: Catalog = CATALOG
) -> ScheduleEntry:
    """The entry as it would be after a runtime edit (validates; stores nothing)."""
    return _apply(entries[name], patch, "runtime", catalog, "")


def merge_patches(old: EntryPatch | None, new: EntryPatch) -> EntryPatch:
    """A second edit on top of the first: fields given now win; cron and every_seconds
    replace each other."""
    data = old.model_dump(exclude_unset=True) if old is not None else {}
    update = new.model_dump(exclude_unset=True)
    if "cron" in update:
        data.pop("every_seconds", None)
    if "every_seconds" in update:
        data.pop("cron", None)
    data.update(update)
    return EntryPatch.model_validate(data)


# --- where runtime state lives in Redis (the API writes, beat reads) -----------------
def overrides_key(prefix: str) -> str:
    """Hash: entry name -> JSON of its runtime edit."""
    return f"{prefix}schedule:overrides"


def version_key(prefix: str) -> str:
    """Counter bumped on every runtime edit; beat resyncs when it changes."""
    return f"{prefix}schedule:version"


def fires_key(prefix: str) -> str:
    """Hash: entry name -> JSON of its last decision (fired or skipped), written by beat."""
    return f"{prefix}schedule:last"


def beat_status_key(prefix: str) -> str:
    """Hash written by the beat that holds the lock: who, last tick."""
    return f"{prefix}schedule:beat"


# --- fire times --------------------------------------------------------------------------
def next_interval_fire(after: datetime, every_seconds: int) -> datetime:
    """The first multiple of ``every_seconds`` since the epoch strictly after ``after``."""
    seconds = int(after.timestamp() // every_seconds + 1) * every_seconds
    return datetime.fromtimestamp(seconds, UTC)
