"""Delivering a completion webhook: one signed POST per attempt, retried with backoff."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx

from marketq.common.db.models import WebhookDelivery
from marketq.common.params import DeliverWebhookParams
from marketq.common.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    WebhookUrlError,
    body_bytes,
    check_url,
    signature,
)
from marketq.worker.context import JobContext
from marketq.worker.errors import PermanentJobError, TransientJobError
from marketq.worker.metrics import WEBHOOK_DELIVERIES
from marketq.worker.registry import JobResult, implements

# Answers worth another attempt; any other 4xx will not change by retrying.
_RETRYABLE = frozenset({408, 425, 429})


def _record(
    ctx: JobContext, event: str, *, state: str, status: int | None, error: str | None
) -> None:
    with ctx.transaction() as session:
        delivery = session.get(WebhookDelivery, event)
        assert delivery is not None
        now = datetime.now(UTC)
        delivery.attempts += 1
        delivery.state = state
        delivery.last_status = status
        delivery.last_error = error[:2000] if error else None
        delivery.delivered_at = now if state == "delivered" else None
        delivery.updated_at = now


def _fail(ctx: JobContext, event: str, reason: str, status: int | None = None) -> PermanentJobError:
    _record(ctx, event, state="failed", status=status, error=reason)
    WEBHOOK_DELIVERIES.labels("failed").inc()
    return PermanentJobError(f"webhook {event} not delivered: {reason}")


@implements("deliver_webhook")
def deliver_webhook(ctx: JobContext, params: DeliverWebhookParams) -> JobResult:
    settings = ctx.settings
    with ctx.transaction() as session:
        delivery = session.get(WebhookDelivery, params.event_id)
        if delivery is None:  # nothing recorded under this id: nothing to send
            return {"event_id": params.event_id, "skipped": "no such event"}
        if delivery.state != "pending":  # a redelivered message: already settled
            return {"event_id": delivery.id, "state": delivery.state}
        url, payload, created_at = delivery.url, delivery.payload, delivery.created_at
    if datetime.now(UTC) > created_at + timedelta(seconds=settings.webhook_retry_seconds):
        raise _fail(ctx, params.event_id, "out of time (MARKETQ_WEBHOOK_RETRY_SECONDS)")
    if settings.webhook_secret is None:
        raise _fail(ctx, params.event_id, "MARKETQ_WEBHOOK_SECRET is not set")
    try:
        check_url(url, settings)  # again: the name may resolve elsewhere by now
    except WebhookUrlError as exc:
        raise _fail(ctx, params.event_id, str(exc)) from None
    body = body_bytes(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "marketq-webhooks",
        EVENT_ID_HEADER: params.event_id,
        SIGNATURE_HEADER: signature(settings.webhook_secret, int(time.time()), body),
    }
    try:
        response = httpx.post(
            url,
            content=body,
            headers=headers,
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,  # a redirect could point anywhere (SSRF)
        )
    except httpx.HTTPError as exc:
        _record(ctx, params.event_id, state="pending", status=None, error=repr(exc))
        WEBHOOK_DELIVERIES.labels("retried").inc()
        raise TransientJobError(f"webhook {params.event_id}: {exc!r}") from None
    status = response.status_code
    if 200 <= status < 300:
        _record(ctx, params.event_id, state="delivered", status=status, error=None)
        WEBHOOK_DELIVERIES.labels("delivered").inc()
        return {"event_id": params.event_id, "state": "delivered", "status": status}
    if status >= 500 or status in _RETRYABLE:
        _record(ctx, params.event_id, state="pending", status=status, error=response.text[:500])
        WEBHOOK_DELIVERIES.labels("retried").inc()
        raise TransientJobError(f"webhook {params.event_id}: HTTP {status}")
    raise _fail(ctx, params.event_id, f"HTTP {status}: {response.text[:200]}", status)
