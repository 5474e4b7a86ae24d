"""Pipeline runs: starting, advancing, cancelling and retrying them.

A pipeline run is a ``pipeline_runs`` row with one ``pipeline_steps`` row per step. A
step's run id is ``uuid5(pipeline run id, step:attempt)``: publishing a step twice (two
advancers racing, a sweep after a lost update) publishes the same run, never a second
one. Steps are published through the one publisher (``marketq.common.publish``) when
every step they wait for has succeeded; their state is read from the run ledger
(``task_runs``), and the parent's state is derived from theirs:

- SUCCESS: every step succeeded;
- FAILED / REVOKED: nothing is running any more and a step failed / was cancelled (or
  the run was cancelled before its remaining steps were published);
- RUNNING: a step is running or has succeeded and the run is not over;
- QUEUED: nothing has started yet.

``advance`` is idempotent: the worker calls it when a step's run ends, and the
``advance_pipelines`` job sweeps every unfinished run each minute for advances a crashed
worker missed (docs/design.md#pipelines).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from marketq.common.db.models import PipelineRun, PipelineStep, RunState, TaskRun
from marketq.common.pipelines import PIPELINES, Pipelines, PipelineSpec
from marketq.common.publish import (
    FieldError,
    InvalidParamsError,
    PublishError,
    prepare_run,
    publish,
    revoked_key,
)
from marketq.common.settings import Settings
from marketq.common.webhooks import announce

log = logging.getLogger(__name__)

STEP_NAMESPACE = uuid.UUID("6f1c1b0e-6c33-5d4e-9f0a-7a1e2c3d4b5f")

# Step states as the API shows them.
PENDING, QUEUED, RUNNING, SUCCESS, FAILED, REVOKED = (
    "PENDING",
    "QUEUED",
    "RUNNING",
    "SUCCESS",
    "FAILED",
    "REVOKED",
)
TERMINAL = frozenset({SUCCESS, FAILED, REVOKED})
_FROM_LEDGER = {
    RunState.QUEUED.value: QUEUED,
    RunState.RECEIVED.value: QUEUED,
    RunState.STARTED.value: RUNNING,
    RunState.PROGRESS.value: RUNNING,
    RunState.RETRY.value: RUNNING,
    RunState.SUCCESS.value: SUCCESS,
    RunState.FAILURE.value: FAILED,
    RunState.REVOKED.value: REVOKED,
    # A run the ledger's reconciler gave up on (its message is gone): the step failed,
    # and a retry of the pipeline run publishes it again.
    "LOST": FAILED,
}


class PipelineRunError(Exception):
    """A request that does not fit the run's state (answered 409)."""


def step_run_id(pipeline_run_id: str, step: str, attempt: int) -> str:
    return str(uuid.uuid5(STEP_NAMESPACE, f"{pipeline_run_id}:{step}:{attempt}"))


def is_step_run_id(run_id: str) -> bool:
    """Cheap pre-check before a database lookup: step runs have version-5 uuids."""
    try:
        return uuid.UUID(run_id).version == 5
    except ValueError:
        return False


@dataclass
class StepView:
    name: str
    job: str
    after: tuple[str, ...]
    state: str
    attempt: int
    run_id: str | None
    run: TaskRun | None


@dataclass
class PipelineView:
    run: PipelineRun
    steps: list[StepView] = field(default_factory=list)


def derive_state(spec: PipelineSpec, steps: list[StepView], cancel_requested: bool) -> str:
    states = [s.state for s in steps]
    active = any(s in (QUEUED, RUNNING) for s in states)
    if all(s == SUCCESS for s in states):
        return SUCCESS
    if not active:
        if FAILED in states:
            return FAILED
        if REVOKED in states or cancel_requested:
            return REVOKED
    return RUNNING if any(s in (RUNNING, SUCCESS) for s in states) else QUEUED


class PipelineEngine:
    """Pipeline runs on one database and one broker; safe to call from any process."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        app: Celery,
        settings: Settings,
        pipelines: Pipelines = PIPELINES,
        on_finished: Callable[[PipelineRun], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._app = app
        self._settings = settings
        self._pipelines = pipelines
        self._on_finished = on_finished

    # --- starting -------------------------------------------------------------------

    def resolve(self, name: str, params: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
        """Each step's params, validated like any run. Raises a PublishError naming the field."""
        spec = self._pipelines[name]
        params = dict(params or {})
        unknown = sorted(set(params) - spec.accepted_params())
        if unknown:
            raise PublishError(
                f"no step of pipeline {name!r} takes {', '.join(unknown)}", f"params.{unknown[0]}"
            )
        resolved = {}
        for step in spec.steps:
            try:
                run = prepare_run(step.job, spec.step_params(step, params), settings=self._settings)
            except InvalidParamsError as exc:
                raise InvalidParamsError(
                    step.job,
                    [FieldError(f"params.{e.field}", e.message, e.type) for e in exc.errors],
                ) from None
            resolved[step.name] = run.params
        return resolved

    def start(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        trigger: str = "api",
        scheduled_for: datetime | None = None,
    ) -> PipelineView:
        """Create the run (once per ``run_id``) and publish its first steps."""
        resolved = self.resolve(name, params)
        run_id = run_id or str(uuid.uuid4())
        with self._sessions.begin() as session:
            self._create(session, name, params, resolved, run_id, trigger, scheduled_for)
        return self.advance(run_id)

    def _create(
        self,
        session: Session,
        name: str,
        params: Mapping[str, Any] | None,
        resolved: Mapping[str, dict[str, Any]],
        run_id: str,
        trigger: str,
        scheduled_for: datetime | None = None,
    ) -> None:
        """The run's rows, QUEUED with every step unpublished, unless the run exists."""
        if session.get(PipelineRun, run_id) is not None:
            return
        spec = self._pipelines[name]
        now = datetime.now(UTC)
        deadline = None
        if spec.deadline_minutes is not None and trigger == "schedule":
            deadline = (scheduled_for or now) + timedelta(minutes=spec.deadline_minutes)
        session.add(
            PipelineRun(
                id=run_id,
                pipeline=name,
                params=dict(params or {}),
                state=QUEUED,
                steps_total=len(spec.steps),
                steps_done=0,
                trigger=trigger,
                created_at=now,
                deadline_at=deadline,
                updated_at=now,
            )
        )
        session.flush()
        for position, step in enumerate(spec.steps):
            session.add(
                PipelineStep(
                    pipeline_run_id=run_id,
                    step=step.name,
                    job=step.job,
                    params=resolved[step.name],
                    position=position,
                    attempt=1,
                    updated_at=now,
                )
            )

    def _record_followers(self, session: Session, run: PipelineRun) -> list[str]:
        """The runs of the pipelines that follow ``run``'s, created in the transaction that
        ends it: once its end is visible so are they, and a crash before they are
        advanced leaves them QUEUED for the sweep, never unstarted. Their ids derive from
        the parent's, so a second end of the parent creates nothing new."""
        created = []
        for follower in self._pipelines.followers(run.pipeline):
            follower_id = str(uuid.uuid5(STEP_NAMESPACE, f"{run.id}:then:{follower.name}"))
            params = {k: v for k, v in run.params.items() if k in follower.accepted_params()}
            try:
                resolved = self.resolve(follower.name, params)
            except PublishError as exc:
                # Not a reason to leave the parent unfinished: said, and skipped.
                log.error("pipeline %s: cannot start %s: %s", run.id, follower.name, exc)
                continue
            self._create(session, follower.name, params, resolved, follower_id, "pipeline")
            created.append(follower_id)
        return created

    # --- advancing ------------------------------------------------------------------

    def _lock(self, session: Session, run_id: str) -> PipelineRun | None:
        """The run, locked for this transaction: two advances of one run (two steps ending
        at once in two processes) go one after the other, so the second sees the first's
        step states and none leaves the run unfinished."""
        if session.get_bind().dialect.name == "sqlite":
            # SQLite has no row locks (FOR UPDATE is dropped): a write as the
            # transaction's first statement takes the database's write lock instead, and
            # every read after it sees what the previous holder committed.
            session.execute(text("UPDATE pipeline_runs SET id = id WHERE id = :id"), {"id": run_id})
        return session.scalar(select(PipelineRun).where(PipelineRun.id == run_id).with_for_update())

    def _steps(
        self, session: Session, run: PipelineRun, known: Mapping[str, str] | None = None
    ) -> list[StepView]:
        spec = self._pipelines[run.pipeline]
        rows = session.execute(
            select(PipelineStep, TaskRun)
            .outerjoin(TaskRun, TaskRun.id == PipelineStep.run_id)
            .where(PipelineStep.pipeline_run_id == run.id)
            .order_by(PipelineStep.position)
        ).all()
        views = []
        for step, task in rows:
            ledger = _FROM_LEDGER.get(task.state, QUEUED) if task is not None else None
            if step.run_id is None:
                state = PENDING
            elif known and step.run_id in known:
                state = _FROM_LEDGER[known[step.run_id]]
                if state in TERMINAL:
                    step.ended_state = known[step.run_id]
            elif ledger in TERMINAL:
                state = ledger
            elif step.ended_state is not None:
                state = _FROM_LEDGER[step.ended_state]  # the ledger has not caught up yet
            else:
                state = ledger or QUEUED  # None: published; the ledger has not seen it yet
            after = spec.step(step.step).after if step.step in {s.name for s in spec.steps} else ()
            views.append(
                StepView(step.step, step.job, after, state, step.attempt, step.run_id, task)
            )
        return views

    def advance(self, run_id: str, known: Mapping[str, str] | None = None) -> PipelineView:
        """Publish every step whose predecessors succeeded; refresh the derived state.

        ``known`` maps step run ids to ledger states the caller knows first-hand (the
        worker, about the run that just ended)."""
        finished: PipelineRun | None = None
        followers: list[str] = []
        with self._sessions.begin() as session:
            run = self._lock(session, run_id)
            if run is None:
                raise KeyError(run_id)
            spec = self._pipelines[run.pipeline]
            steps = self._steps(session, run, known)
            blocked = run.cancel_requested or any(s.state in (FAILED, REVOKED) for s in steps)
            if not blocked:
                done = {s.name for s in steps if s.state == SUCCESS}
                for pending in steps:
                    if pending.state == PENDING and set(pending.after) <= done:
                        self._publish_step(session, run, pending)
            now = datetime.now(UTC)
            state = derive_state(spec, steps, run.cancel_requested)
            run.state = state
            run.steps_done = sum(s.state == SUCCESS for s in steps)
            if run.started_at is None and state != QUEUED:
                run.started_at = now
            if state in TERMINAL:
                run.finished_at = run.finished_at or now
                if not run.outcome_counted:
                    run.outcome_counted = True
                    finished = run
                    if state == SUCCESS:
                        followers = self._record_followers(session, run)
            run.updated_at = now
            result = PipelineView(run, steps)
            session.flush()
            session.expunge_all()
        if finished is not None:
            self._finished(finished)
        for follower_id in followers:
            try:
                self.advance(follower_id)
            except Exception:
                # Recorded QUEUED with the parent's end: the sweep publishes its steps.
                log.exception("pipeline %s: advancing follower %s failed", run_id, follower_id)
        return result

    def _publish_step(self, session: Session, run: PipelineRun, view: StepView) -> None:
        step = session.get(PipelineStep, (run.id, view.name))
        assert step is not None
        step_id = step_run_id(run.id, step.step, step.attempt)
        try:
            publish(self._app, step.job, step.params, run_id=step_id, source="pipeline")
        except Exception:
            # Left PENDING: the next advance (at the latest the sweep) publishes it.
            log.exception("pipeline %s: publishing step %s failed", run.id, step.step)
            return
        now = datetime.now(UTC)
        step.run_id = step_id
        step.published_at = now
        step.updated_at = now
        view.run_id, view.state = step_id, QUEUED

    def _finished(self, run: PipelineRun) -> None:
        log.info(
            "pipeline %s (%s) ended %s",
            run.id,
            run.pipeline,
            run.state,
            extra={"pipeline": run.pipeline, "pipeline_run_id": run.id},
        )
        if self._on_finished is not None:
            try:
                self._on_finished(run)
            except Exception:
                log.exception("pipeline %s: on-finished hook failed", run.id)
        try:
            announce(
                self._sessions,
                self._app,
                "pipeline_run",
                run.id,
                run.state,
                {
                    "pipeline_run_id": run.id,
                    "pipeline": run.pipeline,
                    "state": run.state,
                    "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                    "status_url": f"/api/v1/pipeline-runs/{run.id}",
                },
            )
        except Exception:
            # The events stay recorded or not; a subscriber can read the run's state.
            log.exception("pipeline %s: announcing its end failed", run.id)

    def pipeline_run_of(self, step_run: str) -> str | None:
        """The pipeline run a step's run belongs to, if any."""
        if not is_step_run_id(step_run):
            return None
        with self._sessions() as session:
            return session.scalar(
                select(PipelineStep.pipeline_run_id).where(PipelineStep.run_id == step_run)
            )

    def unfinished(self) -> list[str]:
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(PipelineRun.id).where(PipelineRun.state.in_([QUEUED, RUNNING]))
                )
            )

    # --- reading --------------------------------------------------------------------

    def _current(self, session: Session, run: PipelineRun) -> PipelineView:
        """The run as its steps say now (the row's cached state is from the last advance,
        which happens when a step ends, not when one starts). Reads only."""
        steps = self._steps(session, run)
        session.expunge(run)
        if run.state not in TERMINAL:
            run.state = derive_state(self._pipelines[run.pipeline], steps, run.cancel_requested)
            run.steps_done = sum(s.state == SUCCESS for s in steps)
            started = [s.run.started_at for s in steps if s.run and s.run.started_at]
            if run.started_at is None and started:
                run.started_at = min(started)
        return PipelineView(run, steps)

    def get(self, run_id: str) -> PipelineView | None:
        with self._sessions() as session:
            run = session.get(PipelineRun, run_id)
            if run is None:
                return None
            view = self._current(session, run)
            session.expunge_all()
            return view

    def recent(self, pipeline: str | None, limit: int) -> list[PipelineView]:
        """The newest runs (of one pipeline), newest first."""
        with self._sessions() as session:
            query = select(PipelineRun).order_by(PipelineRun.created_at.desc()).limit(limit)
            if pipeline is not None:
                query = query.where(PipelineRun.pipeline == pipeline)
            views = [self._current(session, run) for run in session.scalars(query).all()]
            session.expunge_all()
            return views

    # --- cancelling and retrying ----------------------------------------------------

    def cancel(self, run_id: str, *, terminate: bool = False) -> PipelineView:
        """Revoke queued steps, publish no more; stop a running step only if ``terminate``."""
        from marketq.common.run_events import EventLog, broker_redis, terminating_key

        broker = broker_redis(self._settings)
        events = EventLog(broker, self._settings)
        with self._sessions.begin() as session:
            run = self._lock(session, run_id)
            if run is None:
                raise KeyError(run_id)
            if run.state in TERMINAL:
                raise PipelineRunError(f"pipeline run {run_id} already ended {run.state}")
            run.cancel_requested = True
            steps = self._steps(session, run)
            queued = [s.run_id for s in steps if s.state == QUEUED and s.run_id]
            running = [s.run_id for s in steps if s.state == RUNNING and s.run_id]
        for step_id in queued:
            # A broadcast revoke reaches only the workers up now; the mark in Redis (on
            # the broker, as the API leaves it) is checked by whichever worker takes the
            # message later.
            broker.set(
                revoked_key(self._settings.redis_key_prefix, step_id),
                "1",
                ex=self._settings.result_expires_seconds,
            )
            self._app.control.revoke(step_id)
            # The ledger is written from run events, like every other transition.
            events.append(step_id, "REVOKED", error="pipeline run cancelled")
        if terminate:
            for step_id in running:
                # The reconciler ends it REVOKED if no live process holds it any more.
                broker.zadd(
                    terminating_key(self._settings.redis_key_prefix), {step_id: time.time()}
                )
                # SIGKILL: the workers remap SIGTERM to their soft shutdown.
                self._app.control.revoke(step_id, terminate=True, signal="SIGKILL")
        return self.advance(run_id, known=dict.fromkeys(queued, RunState.REVOKED.value))

    def retry(self, run_id: str) -> PipelineView:
        """Run the failed or cancelled steps again (new attempts); succeeded steps stay."""
        with self._sessions.begin() as session:
            run = self._lock(session, run_id)
            if run is None:
                raise KeyError(run_id)
            if run.state not in (FAILED, REVOKED):
                raise PipelineRunError(
                    f"pipeline run {run_id} is {run.state}; only FAILED or REVOKED runs are retried"
                )
            now = datetime.now(UTC)
            for view in self._steps(session, run):
                if view.state in (FAILED, REVOKED):
                    step = session.get(PipelineStep, (run.id, view.name))
                    assert step is not None
                    step.attempt += 1
                    step.run_id = None
                    step.published_at = None
                    step.ended_state = None
                    step.updated_at = now
            run.cancel_requested = False
            run.outcome_counted = False
            run.finished_at = None
            run.updated_at = now
        return self.advance(run_id)
