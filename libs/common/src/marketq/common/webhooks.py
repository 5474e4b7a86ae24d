"""Completion webhooks: who to tell when a run or a pipeline run ends, and how.

- **Registering.** A run or pipeline run request may carry ``notify: {url | target,
  events}``; ``target`` names one of the API key's configured targets. The URL is checked
  here (allowed host patterns, never link-local or metadata addresses) before anything
  is stored, and checked again when delivered (DNS may have changed).
- **Events.** When the subject ends in one of the subscribed states, one delivery row is
  written per subscription, its id ``uuid5(subscription, state)``: the event id receivers
  deduplicate on, the same however often the end is announced.
- **Signing.** ``Marketq-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
  "<t>.<body>")>`` over the exact body bytes, as Stripe signs; receivers recompute it
  and refuse stale timestamps.
Delivery itself is the ``deliver_webhook`` job (docs/design.md#webhooks).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import ipaddress
import json
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from marketq.common.db.models import WebhookDelivery, WebhookSubscription
from marketq.common.publish import publish
from marketq.common.settings import ApiKey, Settings

SIGNATURE_HEADER = "Marketq-Signature"
EVENT_ID_HEADER = "Marketq-Event-Id"
EVENT_NAMESPACE = uuid.UUID("3b8f6a52-2f0e-5c1d-8d47-59a0c1f3e2aa")
RUN_END_STATES = ("SUCCESS", "FAILURE", "REVOKED")
PIPELINE_END_STATES = ("SUCCESS", "FAILED", "REVOKED")

# Never reachable through a webhook, whatever the host patterns allow: cloud metadata
# services live on link-local addresses (169.254.169.254, fd00:ec2::254).
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class WebhookUrlError(ValueError):
    """A notify request that cannot be accepted; ``field`` names the culprit."""

    def __init__(self, message: str, field: str = "notify.url") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Notify:
    url: str
    events: tuple[str, ...]


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise WebhookUrlError(f"cannot resolve {host!r}: {exc}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_url(url: str, settings: Settings, *, resolve: bool = True) -> None:
    """Refuse a URL marketq must not call. Raises WebhookUrlError naming ``notify.url``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookUrlError("notify.url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise WebhookUrlError("notify.url must not carry credentials")
    host = parts.hostname.lower()
    if not any(fnmatch.fnmatchcase(host, pattern) for pattern in settings.webhook_allowed_hosts):
        raise WebhookUrlError(
            f"host {host!r} is not allowed for webhooks (MARKETQ_WEBHOOK_ALLOWED_HOSTS)"
        )
    if not resolve:
        return
    for address in _addresses(host):
        if (
            address in _METADATA
            or address.is_link_local
            or address.is_multicast
            or (address.is_unspecified)
        ):
            raise WebhookUrlError(f"host {host!r} resolves to {address}, which is refused")


def resolve_notify(
    raw: dict[str, Any] | None, key: ApiKey | None, settings: Settings, kind: str
) -> Notify | None:
    """The subscription a request asks for, validated; None without ``notify``."""
    if raw is None:
        return None
    if settings.webhook_secret is None:
        raise WebhookUrlError("webhooks are not enabled (MARKETQ_WEBHOOK_SECRET)", "notify")
    allowed = RUN_END_STATES if kind == "run" else PIPELINE_END_STATES
    url, events = raw.get("url"), raw.get("events")
    target = raw.get("target")
    if (url is None) == (target is None):
        raise WebhookUrlError("give notify.url or notify.target, not both", "notify")
    if target is not None:
        configured = (key.webhooks if key else {}).get(str(target))
        if configured is None:
            raise WebhookUrlError(f"no webhook target {target!r} for this API key", "notify.target")
        url = configured.url
        events = events or [e for e in configured.events if e in allowed]
    chosen = tuple(events or allowed)
    unknown = [e for e in chosen if e not in allowed]
    if unknown:
        raise WebhookUrlError(
            f"notify.events: {', '.join(unknown)} is not an end state of a {kind} "
            f"({', '.join(allowed)})",
            "notify.events",
        )
    check_url(str(url), settings)
    return Notify(str(url), chosen)


def subscribe(
    session: Session, kind: str, subject_id: str, notify: Notify, api_key: str | None
) -> None:
    now = datetime.now(UTC)
    existing = session.scalar(
        select(WebhookSubscription).where(
            WebhookSubscription.subject_id == subject_id, WebhookSubscription.url == notify.url
        )
    )
    if existing is not None:
        existing.events = sorted(set(existing.events) | set(notify.events))
        existing.updated_at = now
        return
    session.add(
        WebhookSubscription(
            subject_kind=kind,
            subject_id=subject_id,
            url=notify.url,
            events=list(notify.events),
            api_key=api_key,
            created_at=now,
            updated_at=now,
        )
    )


def event_id(subscription_id: int, state: str) -> str:
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{subscription_id}:{state}"))


def record_events(
    session: Session, kind: str, subject_id: str, state: str, data: dict[str, Any]
) -> list[str]:
    """One pending delivery per subscription that wants ``state``; returns the new event
    ids (an event already recorded is not recorded or returned again)."""
    now = datetime.now(UTC)
    created = []
    subscriptions: Iterable[WebhookSubscription] = session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.subject_id == subject_id)
    )
    for subscription in subscriptions:
        if state not in subscription.events:
            continue
        identifier = event_id(subscription.id, state)
        if session.get(WebhookDelivery, identifier) is not None:
            continue
        event_type = f"{kind}.{state.lower()}"
        session.add(
            WebhookDelivery(
                id=identifier,
                subscription_id=subscription.id,
                subject_id=subject_id,
                url=subscription.url,
                event_type=event_type,
                payload={
                    "id": identifier,
                    "type": event_type,
                    "created_at": now.isoformat(),
                    "data": data,
                },
                state="pending",
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
        created.append(identifier)
    return created


def body_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300) -> bool:
    """What a receiver does (the docs show it): recompute, compare in constant time, and
    refuse a timestamp older than ``tolerance`` seconds (a replayed request)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, fields.get("v1", ""))


def deliveries_of(session: Session, subject_id: str) -> Sequence[WebhookDelivery]:
    return session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.subject_id == subject_id)
        .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
    ).all()


def notify_key(prefix: str, run_id: str) -> str:
    """Redis mark: this run has subscriptions (the worker checks it, not the database)."""
    return f"{prefix}notify:{run_id}"


def delivery_run_id(event: str) -> str:
    """The run of an event's delivery: announcing an end twice publishes one delivery."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"deliver:{event}"))


def announce(
    sessions: sessionmaker[Session],
    app: Celery,
    kind: str,
    subject_id: str,
    state: str,
    data: dict[str, Any],
) -> list[str]:
    """Record the events of a subject's end and publish their deliveries."""
    with sessions.begin() as session:
        events = record_events(session, kind, subject_id, state, data)
    for event in events:
        publish(app, "deliver_webhook", {"event_id": event}, run_id=delivery_run_id(event))
    return events
