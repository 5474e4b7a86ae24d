"""``ExchangeScheduler``: RedBeat with the exchange's clock, one holder, and no double fire.

RedBeat keeps the schedule (one hash per entry, a sorted set of due times) and a lock in
Redis. marketq adds, on top:

* **The effective schedule** (catalog, schedule file, runtime edits:
  ``marketq.common.scheduling.schedules``) written into RedBeat's entries when this process takes
  the lock and whenever the API bumps the edit counter, checked once per loop.
* **The lock, held the whole time and polled by the standby** instead of RedBeat's
  blocking acquire at start: the standby's loop keeps running (its liveness stays
  true) and takes over within lock timeout + one loop interval when the holder dies.
  A holder that finds its lock gone (it was stopped past the timeout, or Redis lost it)
  stops publishing at once and becomes the standby.
* **A claim per fire**: before publishing, a Lua script checks that this process still
  holds the lock *and* records (entry, scheduled instant) in a small sorted set. A fire
  already claimed is never published again, so even two beats that both believe they
  hold the lock (a process resumed after SIGSTOP in the middle of a tick) publish each
  fire once. Claim first, advance after: a beat killed between the two leaves a claimed
  fire that its successor skips instead of losing it or firing it twice.
* **The calendar gate** (``marketq.common.scheduling.firing.gate``): market-hours entries fire only
  inside sessions, trading-day entries only on sessions; every refused fire is counted.

Jobs that run one after another are a pipeline (``marketq.common.pipelines``): its entry
fires ``start_pipeline`` like any other job.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis.exceptions
from celery.signals import beat_init
from redbeat.decoder import RedBeatJSONDecoder, RedBeatJSONEncoder
from redbeat.schedulers import (
    RedBeatScheduler,
    RedBeatSchedulerEntry,
    acquire_distributed_beat_lock,
    get_redis,
)

from marketq.beat import observability as obs
from marketq.beat.schedule import JSON_TYPE, ExchangeSchedule
from marketq.common import tracing
from marketq.common.catalog import CATALOG
from marketq.common.publish import PublishError, prepare_run, send_run
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.scheduling.firing import Verdict
from marketq.common.scheduling.schedules import (
    ENTRY_HEADER,
    SCHEDULED_FOR_HEADER,
    EntryPatch,
    ScheduleEntry,
    beat_status_key,
    effective_entries,
    fires_key,
    load_schedule_file,
    overrides_key,
    parse_override,
    version_key,
)
from marketq.common.settings import Settings, get_settings

# The reasons a due fire is not published (DISABLED entries are not evaluated).
SKIP_VERDICTS = tuple(v for v in Verdict if v not in (Verdict.FIRE, Verdict.DISABLED))

log = logging.getLogger("marketq.beat")

# RedBeat acquires its lock by blocking inside beat_init; this scheduler holds the lock
# from its own loop instead (see the module docstring).
beat_init.disconnect(acquire_distributed_beat_lock)

# KEYS: the entry's claim set, the lock. ARGV: fire (epoch s), prune below, ttl, token.
_CLAIM_SCRIPT = """
if redis.call('GET', KEYS[2]) ~= ARGV[4] then return -1 end
local added = redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return added
"""


class _LockLostError(Exception):
    """This process no longer holds the scheduler lock: stop the tick."""


class _Encoder(RedBeatJSONEncoder):  # type: ignore[misc]
    def default(self, obj: Any) -> Any:
        if isinstance(obj, ExchangeSchedule):
            return obj.to_json()
        return super().default(obj)


class ExchangeEntry(RedBeatSchedulerEntry):  # type: ignore[misc]
    """RedBeat's entry, stored with ``ExchangeSchedule`` as its schedule."""

    @staticmethod
    def decode_definition(definition: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(definition, cls=RedBeatJSONDecoder)
        schedule = data.get("schedule")
        if isinstance(schedule, dict) and schedule.get("__type__") == JSON_TYPE:
            data["schedule"] = ExchangeSchedule.from_json(schedule)
        return data

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "args": self.args,
            "kwargs": self.kwargs,
            "options": self.options,
            "schedule": self.schedule,
            "enabled": self.enabled,
        }

    def save(self) -> ExchangeEntry:
        meta = {"last_run_at": self.last_run_at}
        with get_redis(self.app).pipeline() as pipe:
            pipe.hset(self.key, "definition", json.dumps(self.definition(), cls=_Encoder))
            pipe.hset(self.key, "meta", json.dumps(meta, cls=RedBeatJSONEncoder))
            # A disabled entry gets a negative score: RedBeat never loads it.
            pipe.zadd(
                self.app.redbeat_conf.schedule_key, {self.key: self.score if self.enabled else -1}
            )
            pipe.execute()
        return self


def _catchup_seconds(entry: ScheduleEntry, settings: Settings) -> int:
    """How late a fire may still be published (after a restart or a takeover)."""
    job = CATALOG[entry.job]
    window = settings.beat_catchup_seconds
    if job.expires_seconds is not None:
        window = min(window, job.expires_seconds)
    if entry.every_seconds is not None:
        window = min(window, max(1, entry.every_seconds))
    return window


class ExchangeScheduler(RedBeatScheduler):  # type: ignore[misc]
    Entry = ExchangeEntry
    lock: Any = None  # redis-py's Lock while this process holds the scheduler lock

    def __init__(self, app: Any, **kwargs: Any) -> None:
        self.settings = get_settings()
        self.tz = ZoneInfo(self.settings.timezone)
        self.calendar = MarketCalendar(self.settings.exchange)
        prefix = self.settings.redis_key_prefix
        self._keys = {
            "overrides": overrides_key(prefix),
            "version": version_key(prefix),
            "fires": fires_key(prefix),
            "status": beat_status_key(prefix),
            "claims": f"{prefix}schedule:claimed:",
        }
        # Fails the start, naming the entry and field, when the file is invalid.
        path = self.settings.schedule_file
        self._file_entries = load_schedule_file(path) if path else {}
        self._entries: dict[str, ScheduleEntry] = effective_entries(self._file_entries)
        self._version: str | None = None
        self._claim: Any = None
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        super().__init__(app, lock_timeout=self.settings.beat_lock_timeout_seconds, **kwargs)

    # --- lifecycle ---------------------------------------------------------------------
    def setup_schedule(self) -> None:
        """Nothing is written before this process holds the lock (the first tick)."""
        log.info(
            "beat: %d schedule entries (%s); lock %s, %ss",
            len(self._entries),
            f"file {self.settings.schedule_file}" if self.settings.schedule_file else "no file",
            self.app.redbeat_conf.lock_key,
            self.settings.beat_lock_timeout_seconds,
        )

    def close(self) -> None:
        obs.LOCK_HELD.set(0)
        try:
            super().close()  # releases the lock: the standby takes over at its next poll
        except redis.exceptions.RedisError as exc:
            log.warning("beat: could not release the lock: %s", exc)

    def tick(self, min: Any = min, **kwargs: Any) -> float:
        obs.mark_loop()
        try:
            if not self._hold_lock():
                return float(self.max_interval)
            self._resync_if_edited()
            remaining: list[float] = []
            try:
                for entry in self.schedule.values():
                    next_time = self.maybe_due(entry)
                    if next_time:
                        remaining.append(next_time)
            except _LockLostError:
                return float(self.max_interval)
            now = time.time()
            obs.LAST_TICK.set(now)
            client = get_redis(self.app)
            with client.pipeline() as pipe:
                pipe.hset(self._keys["status"], mapping={"holder": self.holder, "tick": now})
                pipe.expire(self._keys["status"], max(60, 3 * int(self.lock_timeout)))
                pipe.execute()
            return float(min([*remaining, self.max_interval]))
        except redis.exceptions.RedisError as exc:
            obs.REDIS_ERRORS.inc()
            log.warning("beat: Redis unavailable (%s); retrying", exc)
            return float(min(self.max_interval, 2.0))

    # --- the lock ----------------------------------------------------------------------
    def _hold_lock(self) -> bool:
        client = get_redis(self.app)
        if self.lock is not None:
            try:
                self.lock.extend(self.lock_timeout, replace_ttl=True)
                return True
            except redis.exceptions.LockError:
                log.error("beat: lost the scheduler lock; publishing stops (now the standby)")
                self.lock = None
                obs.LOCK_HELD.set(0)
                return False
        lock = client.lock(self.lock_key, timeout=self.lock_timeout, thread_local=False)
        if not lock.acquire(blocking=False):
            obs.LOCK_HELD.set(0)
            return False
        self.lock = lock
        self._claim = client.register_script(_CLAIM_SCRIPT)
        obs.LOCK_HELD.set(1)
        log.info("beat: acquired the scheduler lock as %s", self.holder)
        self._sync_entries()
        return True

    def _token(self) -> str:
        token = self.lock.local.token if self.lock is not None else None
        if isinstance(token, bytes):
            return token.decode()
        return str(token)

    # --- the schedule ------------------------------------------------------------------
    def _resync_if_edited(self) -> None:
        version = get_redis(self.app).get(self._keys["version"])
        if version != self._version:
            self._sync_entries()

    def _read_overrides(self) -> tuple[str | None, dict[str, EntryPatch]]:
        client = get_redis(self.app)
        with client.pipeline() as pipe:
            pipe.get(self._keys["version"])
            pipe.hgetall(self._keys["overrides"])
            version, raw = pipe.execute()
        overrides = {}
        for name, text in raw.items():
            try:
                overrides[name] = parse_override(name, text)
            except ValueError as exc:
                log.warning("beat: ignoring a stored runtime edit: %s", exc)
        return version, overrides

    def _sync_entries(self) -> None:
        """Write the effective schedule into RedBeat's entries; drop what is gone."""
        version, overrides = self._read_overrides()
        self._entries = effective_entries(self._file_entries, overrides)
        client = get_redis(self.app)
        statics = self.app.redbeat_conf.statics_key
        wanted: set[str] = set()
        now = datetime.now(UTC)
        for spec in self._entries.values():
            wanted.add(spec.name)
            entry = self._build(spec)
            try:
                stored = self.Entry.from_key(entry.key, app=self.app)
            except KeyError:
                stored = None
            if stored is not None and stored.definition() == entry.definition():
                continue  # unchanged: keep its place
            if stored is not None and stored.enabled and stored.schedule == entry.schedule:
                entry.last_run_at = stored.last_run_at  # only params changed: same clock
            else:
                entry.last_run_at = now  # a new or changed clock starts from now
            entry.save()
            log.info(
                "beat: entry %s -> %r%s",
                spec.name,
                entry.schedule,
                "" if spec.enabled else " (disabled)",
            )
        for name in set(client.smembers(statics)) - wanted:
            self.Entry(name, app=self.app).delete()
            client.srem(statics, name)
            log.info("beat: entry %s removed", name)
        if wanted:
            client.sadd(statics, *wanted)
        self._version = version
        obs.ENTRIES.labels("enabled").set(sum(e.enabled for e in self._entries.values()))
        obs.ENTRIES.labels("disabled").set(sum(not e.enabled for e in self._entries.values()))
        # Every entry's counters exist from 0, so the first fire or skip is an increase
        # (an alert on increase() never sees a series' first sample as one).
        for known in self._entries.values():
            obs.FIRES.labels(known.job, known.name)
            for verdict in SKIP_VERDICTS:
                obs.SKIPPED.labels(known.job, known.name, verdict.value)

    def _build(self, spec: ScheduleEntry) -> ExchangeEntry:
        job = CATALOG[spec.job]
        schedule = ExchangeSchedule(
            cron=spec.cron,
            every_seconds=spec.every_seconds,
            timezone=self.settings.timezone,
            market_hours_only=spec.market_hours_only,
            trading_days_only=spec.trading_days_only,
            catchup_seconds=_catchup_seconds(spec, self.settings),
        )
        return self.Entry(
            name=spec.name,
            task=job.name,
            schedule=schedule,
            args=[],
            kwargs=dict(spec.params),
            options={"queue": job.queue.value},
            enabled=spec.enabled,
            app=self.app,
        )

    # --- firing ------------------------------------------------------------------------
    def maybe_due(self, entry: ExchangeEntry, **_kwargs: Any) -> float:
        is_due, next_time_to_run = entry.is_due()
        if is_due:
            self.fire(entry)
        return float(next_time_to_run)

    def apply_async(
        self, entry: ExchangeEntry, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> Any:
        return self.fire(entry)

    def fire(self, entry: ExchangeEntry) -> str | None:
        """Publish the fire that is due for ``entry`` (or record why not); the run id."""
        schedule: ExchangeSchedule = entry.schedule
        now = datetime.now(UTC)
        spec = self._entries.get(entry.name)
        if spec is None or not spec.enabled:
            return None
        verdict, fire = schedule.decide(entry.last_run_at, now, self.calendar)
        run_id = None
        if fire is None or verdict is not Verdict.FIRE:
            self._record(entry, verdict, fire, now)
        else:
            claimed = self._claim_fire(entry, fire)
            if claimed is None:
                # The lock is gone: the new holder owns this entry's state now.
                raise _LockLostError
            if claimed:
                # The root of the fire's trace: publish span and task span hang below it.
                attributes = {"marketq.entry": entry.name, "marketq.job_name": spec.job}
                with tracing.span(f"beat fire {entry.name}", attributes):
                    run_id = self._publish(entry, spec, fire, now)
            else:
                self._record(entry, Verdict.DUPLICATE, fire, now)
        # Advance only after the claim: a beat killed in between leaves a claimed fire
        # its successor skips, never one it fires again or loses.
        self.reserve(entry)
        return run_id

    def _claim_fire(self, entry: ExchangeEntry, fire: datetime) -> bool | None:
        """True: ours to publish; False: already claimed; None: this beat lost the lock."""
        schedule: ExchangeSchedule = entry.schedule
        keep = schedule.catchup_seconds + 2 * int(self.lock_timeout) + 60
        result = self._claim(
            keys=[self._keys["claims"] + entry.name, self.lock_key],
            args=[f"{fire.timestamp():.6f}", f"{fire.timestamp() - keep:.6f}", keep, self._token()],
        )
        if result == -1:
            log.error("beat: lock lost before firing %s; not published", entry.name)
            self.lock = None
            obs.LOCK_HELD.set(0)
            return None
        return bool(result)

    def _publish(
        self, entry: ExchangeEntry, spec: ScheduleEntry, fire: datetime, now: datetime
    ) -> str | None:
        try:
            run = prepare_run(spec.job, spec.params, settings=self.settings, now=now)
            run = replace(
                run,
                headers={
                    **run.headers,
                    ENTRY_HEADER: entry.name,
                    SCHEDULED_FOR_HEADER: fire.timestamp(),
                },
            )
            send_run(self.app, run, source="beat")
        except PublishError as exc:
            obs.PUBLISH_ERRORS.labels(spec.job, entry.name).inc()
            log.error("beat: entry %s has invalid params: %s", entry.name, exc)
            return None
        except Exception as exc:  # the broker: kombu raises many kinds
            obs.PUBLISH_ERRORS.labels(spec.job, entry.name).inc()
            log.error("beat: publishing %s failed: %s", entry.name, exc)
            return None
        obs.FIRES.labels(spec.job, entry.name).inc()
        obs.LAST_FIRE.labels(spec.job, entry.name).set(fire.timestamp())
        self._record(entry, Verdict.FIRE, fire, now, run_id=run.run_id)
        log.info(
            "beat: fired %s (%s) for %s as run %s",
            entry.name,
            spec.job,
            fire.astimezone(self.tz).isoformat(),
            run.run_id,
            extra={"run_id": run.run_id, "job_name": spec.job, "queue": run.queue.value},
        )
        return run.run_id

    def _record(
        self,
        entry: ExchangeEntry,
        verdict: Verdict,
        fire: datetime | None,
        now: datetime,
        run_id: str | None = None,
    ) -> None:
        if verdict is not Verdict.FIRE:
            obs.SKIPPED.labels(entry.task, entry.name, verdict.value).inc()
            # Past the calendar's end every gated fire is skipped: loud, not debug.
            level = logging.WARNING if verdict is Verdict.CALENDAR_OUT_OF_RANGE else logging.DEBUG
            log.log(level, "beat: %s not fired at %s: %s", entry.name, fire, verdict.value)
        record = {
            "decision": verdict.value,
            "fire_at": fire.isoformat() if fire else None,
            "decided_at": now.isoformat(),
            "run_id": run_id,
        }
        fields = {entry.name: json.dumps(record)}
        if verdict is Verdict.FIRE:
            fields[f"{entry.name}:fired"] = fields[entry.name]
        get_redis(self.app).hset(self._keys["fires"], mapping=fields)
