"""Trigger, follow and cancel runs."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from anyio import to_thread
from fastapi import APIRouter, Header, Path, Query, Request, Response
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import and_, or_, select

from marketq.api.access import Read, Trigger, TriggerCountedBySubmit
from marketq.api.auth import Principal
from marketq.api.errors import (
    RETRY_AFTER_SECONDS,
    ApiError,
    ErrorBody,
    ErrorDetail,
    ErrorResponse,
)
from marketq.api.publisher import IdempotencyClaim, Outcome, RateLimited
from marketq.api.ratelimit import counted, window
from marketq.api.schemas import (
    BatchRequest,
    BatchResponse,
    NotifyRequest,
    Progress,
    RunAccepted,
    RunPage,
    RunRequest,
    RunStatus,
    WebhookDeliveryStatus,
)
from marketq.api.state import ApiState, State
from marketq.common.catalog import UnknownJobError
from marketq.common.db.models import RunState, TaskRun
from marketq.common.ledger import FINISHED_STATES
from marketq.common.publish import (
    InvalidParamsError,
    MessageTooLargeError,
    PreparedRun,
    PublishError,
    prepare_run,
    revoked_key,
)
from marketq.common.run_events import (
    DETAIL_FIELD,
    STATE_FIELD,
    detail,
    stream_key,
    terminating_key,
)
from marketq.common.webhooks import (
    Notify,
    WebhookUrlError,
    deliveries_of,
    notify_key,
    resolve_notify,
    subscribe,
)

router = APIRouter(prefix="/api/v1", tags=["runs"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No valid API key."},
    403: {"model": ErrorResponse, "description": "The key lacks the scope."},
    429: {"model": ErrorResponse, "description": "Rate limited; see Retry-After."},
    503: {
        "model": ErrorResponse,
        "description": "Redis or the database is unavailable (broker_unavailable: nothing "
        "was accepted), or Redis timed out after the submit may have run (outcome_unknown: "
        "retry with the same Idempotency-Key).",
    },
}
OUTCOME_UNKNOWN = (
    "Redis did not answer in time after the submit was sent: the run may have been "
    "accepted. Retry with the same Idempotency-Key to get its run id (without one, check "
    "GET /api/v1/runs before submitting again)."
)


async def _published(call: Awaitable[Outcome]) -> Outcome:
    """Await a publish script; a timeout is not "nothing was accepted" (the script may have
    run after the client gave up), so it is its own 503."""
    try:
        return await call
    except MessageTooLargeError as exc:  # found while encoding, before anything was sent
        raise ApiError(
            413, "message_too_large", str(exc), [ErrorDetail(field="params", message=str(exc))]
        ) from None
    except RedisTimeoutError:
        raise ApiError(
            503,
            "outcome_unknown",
            OUTCOME_UNKNOWN,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None


NOT_STARTED = {RunState.QUEUED, RunState.RECEIVED, RunState.RETRY}


def _prepare(state: ApiState, job: str, body: RunRequest) -> PreparedRun:
    """Validate a run request; raise the ApiError a client should see."""
    try:
        return prepare_run(
            job,
            body.params,
            run_id=state.publisher.messages.new_id(),
            countdown=body.countdown,
            eta=body.eta,
            priority=body.priority,
            queue=body.queue,
            settings=state.settings,
        )
    except UnknownJobError as exc:
        raise ApiError(404, "unknown_job", str(exc)) from None
    except InvalidParamsError as exc:
        details = [
            ErrorDetail(
                field=f"params.{e.field}" if e.field else "params", message=e.message, type=e.type
            )
            for e in exc.errors
        ]
        raise ApiError(422, "invalid_params", str(exc), details) from None
    except PublishError as exc:
        raise ApiError(
            422, "invalid_request", str(exc), [ErrorDetail(field=exc.field, message=str(exc))]
        ) from None


def resolve_notify_request(
    state: ApiState, principal: Principal, notify: NotifyRequest | None, kind: str
) -> Notify | None:
    """The request's webhook subscription, validated; 422 naming the field otherwise."""
    if notify is None:
        return None
    key = next((k for k in state.settings.api_keys if k.name == principal.name), None)
    try:
        return resolve_notify(notify.model_dump(exclude_none=True), key, state.settings, kind)
    except WebhookUrlError as exc:
        raise ApiError(
            422, "invalid_notify", str(exc), [ErrorDetail(field=exc.field, message=str(exc))]
        ) from None


async def subscribe_run(
    state: ApiState, principal: Principal, run_id: str, notify: Notify | None
) -> None:
    """Store the subscription and mark the run in Redis before its message exists."""
    if notify is None:
        return

    def store() -> None:
        with state.sessions.begin() as session:
            subscribe(session, "run", run_id, notify, principal.name)

    await to_thread.run_sync(store)
    await state.redis.set(
        notify_key(state.settings.redis_key_prefix, run_id),
        "1",
        ex=state.settings.webhook_retry_seconds + 7 * 86_400,
    )


def _accepted(run: PreparedRun) -> RunAccepted:
    return RunAccepted(
        run_id=run.run_id,
        job=run.job.name,
        queue=run.queue.value,
        enqueued_at=run.enqueued_at,
        eta=run.eta,
        status_url=f"/api/v1/runs/{run.run_id}",
    )


def _accepted_json(run: PreparedRun) -> dict[str, Any]:
    """RunAccepted as the dict its model would dump, without building the model (a batch
    builds hundreds); orjson's UTC "Z" matches pydantic's datetime format."""
    return {
        "run_id": run.run_id,
        "job": run.job.name,
        "queue": run.queue.value,
        "state": "QUEUED",
        "enqueued_at": run.enqueued_at,
        "eta": run.eta,
        "status_url": f"/api/v1/runs/{run.run_id}",
    }


def _json(content: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_UTC_Z),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def _fingerprint(job: str, body: RunRequest) -> str:
    canonical = json.dumps({"job": job, **body.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@router.post(
    "/jobs/{name}/runs",
    status_code=202,
    response_model=RunAccepted,
    summary="Trigger a run of a job",
    responses={
        **ERRORS,
        404: {"model": ErrorResponse, "description": "No such job."},
        409: {"model": ErrorResponse, "description": "Idempotency-Key reused with another body."},
        422: {"model": ErrorResponse, "description": "Invalid params or options; names the field."},
    },
)
async def trigger(
    *,
    body: RunRequest,
    request: Request,
    response: Response,
    name: Annotated[str, Path(description="Catalog job name.", examples=["stock_quotes"])],
    idempotency_key: Annotated[
        str | None,
        Header(max_length=255, description="Same key + same body: the same run, once."),
    ] = None,
    principal: TriggerCountedBySubmit,
    state: State,
) -> RunAccepted | Response:
    """Validate the params against the job's model and publish one run.

    202 means the message is in Redis. With an ``Idempotency-Key`` a repeated request
    returns the first run (header ``Idempotent-Replayed: true``) and a different body
    with the same key is a 409.
    """
    run = _prepare(state, name, body)
    await subscribe_run(
        state, principal, run.run_id, resolve_notify_request(state, principal, body.notify, "run")
    )
    settings = state.settings
    claim = None
    if idempotency_key is not None:
        claim = IdempotencyClaim(
            key=f"{settings.redis_key_prefix}idempotency:{principal.name}:{idempotency_key}",
            fingerprint=_fingerprint(name, body),
            ttl_seconds=settings.api_idempotency_ttl_seconds,
        )
    limit = window(settings.redis_key_prefix, principal.name, settings.api_rate_limit_per_minute)
    counted(request)  # the submit script counts it, whatever happens next
    outcome = await _published(state.publisher.submit(run, limit, claim))
    if isinstance(outcome, RateLimited):
        raise outcome.window.refusal(principal.name)
    if outcome is None:  # published: the answer is built without a response model
        answer = _accepted_json(run)
        return _json(answer, 202, {"Location": answer["status_url"]})
    # The key already names a run: the same request replays it, another one is a 409.
    if claim is None or outcome.fingerprint != claim.fingerprint:
        raise ApiError(409, "idempotency_conflict", "Idempotency-Key was used with another request")
    first = await _status(state, outcome.run_id)
    accepted = RunAccepted(
        run_id=outcome.run_id,
        job=run.job.name,
        queue=first.queue if first else run.queue.value,
        enqueued_at=(first.enqueued_at if first else None) or run.enqueued_at,
        eta=first.eta if first else None,
        status_url=f"/api/v1/runs/{outcome.run_id}",
    )
    response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = accepted.status_url
    return accepted


@router.post(
    "/runs:batch",
    response_model=BatchResponse,
    summary="Trigger many runs in one request",
    responses={**ERRORS, 413: {"model": ErrorResponse, "description": "Too many runs."}},
)
async def trigger_batch(
    body: BatchRequest,
    principal: Trigger,
    state: State,
) -> BatchResponse | Response:
    """Validate every item; publish the valid ones in one Redis transaction.

    Each item reports 202 with its run, or the error it alone would get. If Redis fails,
    the whole request is a 503 and nothing was published.
    """
    if len(body.runs) > state.settings.api_max_batch:
        raise ApiError(
            413, "batch_too_large", f"at most {state.settings.api_max_batch} runs per batch"
        )
    # Plain dicts, not a BatchItemResult/RunAccepted model per item: the same JSON at a
    # fraction of the cost for hundreds of runs (the response model documents the shape).
    results: list[dict[str, Any]] = []
    ready: list[PreparedRun] = []
    subscriptions: list[tuple[str, Notify]] = []
    for index, item in enumerate(body.runs):
        try:
            run = _prepare(state, item.job, item)
            notify = resolve_notify_request(state, principal, item.notify, "run")
        except ApiError as exc:
            error = ErrorBody(code=exc.code, message=exc.message, details=exc.details)
            results.append(
                {"index": index, "status": exc.status, "run": None, "error": error.model_dump()}
            )
            continue
        ready.append(run)
        if notify is not None:
            subscriptions.append((run.run_id, notify))
        results.append({"index": index, "status": 202, "run": _accepted_json(run), "error": None})
    for run_id, notify in subscriptions:
        await subscribe_run(state, principal, run_id, notify)
    if ready:
        await _published(state.publisher.publish(ready))
    rejected = len(body.runs) - len(ready)
    return _json({"accepted": len(ready), "rejected": rejected, "results": results}, 200)


def _from_row(row: TaskRun) -> RunStatus:
    progress = None
    if row.progress_current is not None or row.progress_total is not None:
        progress = Progress(current=row.progress_current, total=row.progress_total)
    return RunStatus(
        run_id=row.id,
        job=row.job,
        queue=row.queue,
        state=row.state,
        params=row.params or {},
        progress=progress,
        result=row.result,
        error=row.error,
        attempts=row.attempts,
        worker=row.worker,
        enqueued_at=row.enqueued_at,
        received_at=row.received_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        eta=row.eta,
    )


async def _status(state: ApiState, run_id: str) -> RunStatus | None:
    status = await _recorded_status(state, run_id)
    if status is None or RunState(status.state) not in NOT_STARTED:
        return status
    # A cancel is answered at once but reaches the ledger through the run-event stream:
    # until it does, the revoked mark says what the run's end is (read your own cancel).
    if await state.redis.exists(revoked_key(state.settings.redis_key_prefix, run_id)):
        return status.model_copy(update={"state": RunState.REVOKED.value})
    return status


async def _recorded_status(state: ApiState, run_id: str) -> RunStatus | None:
    row = await to_thread.run_sync(state.ledger.get, run_id)
    if row is not None:
        return _from_row(row)
    record = await state.publisher.record(run_id)
    if record is None:
        return None
    return RunStatus(
        run_id=record["id"],
        job=record["job"],
        queue=record["queue"],
        state="QUEUED",
        params=record["params"],
        enqueued_at=record["enqueued_at"],
        eta=record.get("eta"),
    )


RunId = Annotated[str, Path(max_length=64, description="Run id from the 202 answer.")]


@router.get(
    "/runs/{run_id}",
    response_model=RunStatus,
    summary="A run's state",
    responses={**ERRORS, 404: {"model": ErrorResponse, "description": "Unknown id."}},
)
async def get_run(
    run_id: RunId,
    _principal: Read,
    state: State,
) -> RunStatus:
    """State, progress, result or error, attempts, worker and timings of one run.

    A run accepted a moment ago is QUEUED; an id that was never issued is a 404.
    """
    status = await _status(state, run_id)
    if status is None:
        raise ApiError(404, "unknown_run", f"no run {run_id!r}")
    return status


def _encode_cursor(row: TaskRun) -> str:
    raw = json.dumps([row.enqueued_at.isoformat() if row.enqueued_at else None, row.id])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime | None, str]:
    try:
        when, run_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        instant = datetime.fromisoformat(when) if when else None
        if instant is not None:
            if instant.tzinfo is None:  # the ledger refuses naive times; ours never are
                raise ValueError("naive cursor time")
            instant = instant.astimezone(UTC)  # OverflowError at the ends of the calendar
        return instant, str(run_id)
    except (ValueError, TypeError, OverflowError, json.JSONDecodeError):
        raise ApiError(
            422,
            "invalid_request",
            "cursor is not one this API issued",
            [ErrorDetail(field="cursor", message="invalid cursor")],
        ) from None


@router.get(
    "/runs", response_model=RunPage, summary="Run history from the ledger", responses=ERRORS
)
async def list_runs(
    *,
    job: Annotated[str | None, Query(max_length=64)] = None,
    state_filter: Annotated[RunState | None, Query(alias="state")] = None,
    since: Annotated[datetime | None, Query(description="Enqueued at or after.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    _principal: Read,
    state: State,
) -> RunPage:
    """Newest first (by enqueue time); follow ``next_cursor`` for older runs."""
    after = _decode_cursor(cursor) if cursor else None
    if since is not None and since.tzinfo is None:
        raise ApiError(
            422,
            "invalid_request",
            "since must include a UTC offset",
            [ErrorDetail(field="since", message="must include a UTC offset")],
        )
    if since is not None:
        try:
            since = since.astimezone(UTC)  # the database compares UTC instants
        except OverflowError:
            raise ApiError(
                422,
                "invalid_request",
                "since is out of range",
                [ErrorDetail(field="since", message="out of range")],
            ) from None

    def query() -> list[TaskRun]:
        stmt = select(TaskRun)
        if job:
            stmt = stmt.where(TaskRun.job == job)
        if state_filter:
            stmt = stmt.where(TaskRun.state == state_filter.value)
        if since:
            stmt = stmt.where(TaskRun.enqueued_at >= since)
        if after is not None:
            when, run_id = after
            if when is None:
                stmt = stmt.where(TaskRun.enqueued_at.is_(None), TaskRun.id < run_id)
            else:
                stmt = stmt.where(
                    or_(
                        TaskRun.enqueued_at < when,
                        and_(TaskRun.enqueued_at == when, TaskRun.id < run_id),
                        TaskRun.enqueued_at.is_(None),
                    )
                )
        stmt = stmt.order_by(TaskRun.enqueued_at.desc().nulls_last(), TaskRun.id.desc())
        with state.sessions() as session:
            return list(session.scalars(stmt.limit(limit + 1)))

    rows = await to_thread.run_sync(query)
    page, more = rows[:limit], len(rows) > limit
    return RunPage(
        runs=[_from_row(r) for r in page], next_cursor=_encode_cursor(page[-1]) if more else None
    )


async def _cancel(state: ApiState, run_id: str, terminate: bool) -> RunStatus:
    status = await _status(state, run_id)
    if status is None:
        raise ApiError(404, "unknown_run", f"no run {run_id!r}")
    if RunState(status.state) in FINISHED_STATES:
        raise ApiError(409, "already_finished", f"run {run_id} already ended {status.state}")
    if RunState(status.state) not in NOT_STARTED and not terminate:
        raise ApiError(
            409, "running", f"run {run_id} is {status.state}; pass terminate=true to stop it"
        )

    prefix = state.settings.redis_key_prefix
    not_started = RunState(status.state) in NOT_STARTED
    # A redelivered message of a cancelled run is dropped by the worker that gets it.
    await state.redis.set(
        revoked_key(prefix, run_id), "1", ex=state.settings.result_expires_seconds
    )
    if not_started:
        await state.redis.xadd(
            stream_key(prefix),
            {STATE_FIELD: "REVOKED", DETAIL_FIELD: detail(run_id, error="revoked")},
            maxlen=state.settings.ledger_stream_max_len,
            approximate=True,
        )
    else:
        # If no process holds the run any more (its worker died), nobody will end it:
        # the reconciler does (REVOKED) once the holder's heartbeat is stale.
        await state.redis.zadd(terminating_key(prefix), {run_id: time.time()})

    def revoke() -> None:
        # SIGKILL: the workers remap SIGTERM to their soft shutdown (docs/delivery.md).
        state.celery.control.revoke(run_id, terminate=terminate, signal="SIGKILL")

    await to_thread.run_sync(revoke)
    if not_started:
        return status.model_copy(update={"state": RunState.REVOKED.value})
    return status


CANCEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorResponse, "description": "Unknown id."},
    409: {
        "model": ErrorResponse,
        "description": "Already finished, or running without terminate=true.",
    },
}


@router.post(
    "/runs/{run_id}/cancel",
    response_model=RunStatus,
    status_code=202,
    summary="Cancel a run",
    responses=CANCEL_RESPONSES,
)
async def cancel_run(
    *,
    run_id: RunId,
    terminate: Annotated[bool, Query(description="Also stop it if it is running.")] = False,
    _principal: Trigger,
    state: State,
) -> RunStatus:
    """Revoke a run. A run that has not started will not; a running one stops only with
    ``terminate=true`` (its process is killed and the run recorded REVOKED)."""
    return await _cancel(state, run_id, terminate)


@router.delete(
    "/runs/{run_id}",
    response_model=RunStatus,
    status_code=202,
    summary="Cancel a run (same as POST .../cancel)",
    responses=CANCEL_RESPONSES,
)
async def delete_run(
    *,
    run_id: RunId,
    terminate: Annotated[bool, Query(description="Also stop it if it is running.")] = False,
    _principal: Trigger,
    state: State,
) -> RunStatus:
    return await _cancel(state, run_id, terminate)


def delivery_statuses(state: ApiState, subject_id: str) -> list[WebhookDeliveryStatus]:
    with state.sessions() as session:
        return [
            WebhookDeliveryStatus(
                event_id=d.id,
                event_type=d.event_type,
                url=d.url,
                state=d.state,
                attempts=d.attempts,
                last_status=d.last_status,
                last_error=d.last_error,
                created_at=d.created_at,
                delivered_at=d.delivered_at,
            )
            for d in deliveries_of(session, subject_id)
        ]


@router.get(
    "/runs/{run_id}/webhooks",
    response_model=list[WebhookDeliveryStatus],
    summary="The webhook deliveries of a run",
    responses=ERRORS,
)
async def run_webhooks(
    *, run_id: RunId, _principal: Read, state: State
) -> list[WebhookDeliveryStatus]:
    """Every event sent (or being sent) about the run: its state, attempts and the last
    answer. Empty until the run ends, or when its request carried no ``notify``."""
    return await to_thread.run_sync(delivery_statuses, state, run_id)
