"""Classify a job's exception once: retry it with backoff, or fail the run now.

The one mapping from what went wrong to what the worker does (docs/design.md#failure-classes):

* transient, retried with the job's backoff: a vendor's ``TransientProviderError`` (429,
  5xx; its Retry-After is honoured), an HTTP timeout or connection error, a dropped or
  refused database connection, a dropped Redis connection, ``TransientJobError``;
* permanent, failed at once with the reason: ``PermanentProviderError`` (unknown symbol,
  invalid key, a plan that lacks the endpoint, a method the vendor does not offer),
  ``PermanentJobError``;
* anything else is a defect, not a failure class: it fails the run with its traceback.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import httpx
import redis.exceptions
import sqlalchemy.exc

from marketq.providers.errors import (
    InvalidKeyError,
    NotOfferedError,
    ProviderError,
    TransientProviderError,
    UnknownSymbolError,
    error_for_status,
)
from marketq.providers.quota import QuotaDeferredError
from marketq.worker.errors import PermanentJobError, TransientJobError

Kind = Literal["transient", "permanent"]


@dataclass(frozen=True)
class Failure:
    """What the worker does about one exception, and the words it records."""

    kind: Kind
    reason: str  # short and stable: a metric label and the ledger's prefix
    message: str
    retry_after: float | None = None
    vendor: str | None = None

    @property
    def transient(self) -> bool:
        return self.kind == "transient"

    def describe(self) -> str:
        source = f" from {self.vendor}" if self.vendor else ""
        return f"{self.kind} failure ({self.reason}{source}): {self.message}"


def _text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _provider_failure(exc: ProviderError) -> Failure:
    if isinstance(exc, QuotaDeferredError):
        return Failure("transient", "quota_deferred", str(exc), exc.retry_after, exc.vendor)
    if isinstance(exc, TransientProviderError):
        reason = "rate_limited" if exc.retry_after is not None else "vendor_unavailable"
        return Failure("transient", reason, str(exc), exc.retry_after, exc.vendor)
    reason = "vendor_rejected"
    if isinstance(exc, UnknownSymbolError):
        reason = "unknown_symbol"
    elif isinstance(exc, InvalidKeyError):
        reason = "invalid_key"
    elif isinstance(exc, NotOfferedError):
        reason = "not_offered"
    return Failure("permanent", reason, str(exc), None, exc.vendor)


def _http_status_failure(exc: httpx.HTTPStatusError) -> Failure | None:
    """An adapter's ``raise_for_status()`` that it did not translate itself."""
    response = exc.response
    # The URL without its query: API keys travel there and must not reach the ledger.
    where = str(exc.request.url.copy_with(query=None))
    error = error_for_status(
        None, response.status_code, retry_after=response.headers.get("Retry-After"), detail=where
    )
    return None if error is None else _provider_failure(error)


# SQLSTATE classes that mean "try again": connection exception (08), operator intervention
# such as a server shutting down (57P), transaction rollback -- serialization failure,
# deadlock (40), insufficient resources (53).
_TRANSIENT_SQLSTATES = ("08", "57P", "40", "53")


def _database_says_try_again(exc: sqlalchemy.exc.DBAPIError) -> bool:
    """A refused, dropped or busy connection -- not a wrong statement (a missing table is
    an OperationalError too on SQLite, and must fail the run, not loop on retries)."""
    if exc.connection_invalidated:
        return True
    original = exc.orig
    if isinstance(original, sqlite3.Error):
        text = str(original).lower()
        return "locked" in text or "busy" in text
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate.startswith(_TRANSIENT_SQLSTATES)
    # No SQLSTATE: the server never answered (refused, reset, closed mid-query).
    return isinstance(exc, sqlalchemy.exc.OperationalError)


def _classify_one(exc: BaseException) -> Failure | None:
    if isinstance(exc, TransientJobError):
        return Failure("transient", "job", str(exc) or "transient job error")
    if isinstance(exc, PermanentJobError):
        return Failure("permanent", "job", str(exc) or "permanent job error")
    if isinstance(exc, ProviderError):
        return _provider_failure(exc)
    if isinstance(exc, httpx.HTTPStatusError):
        return _http_status_failure(exc)
    if isinstance(exc, httpx.TimeoutException):
        return Failure("transient", "timeout", _text(exc))
    if isinstance(exc, httpx.TransportError):
        # Connect/read/write errors, protocol errors from a dropped connection.
        return Failure("transient", "connection", _text(exc))
    if isinstance(exc, sqlalchemy.exc.DisconnectionError | sqlalchemy.exc.TimeoutError):
        return Failure("transient", "database", _text(exc))
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and _database_says_try_again(exc):
        return Failure("transient", "database", _text(exc.orig or exc))
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return Failure("transient", "redis", _text(exc))
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


def classify(exc: BaseException) -> Failure | None:
    """The failure class of ``exc`` (or of an exception it was explicitly raised from)."""
    for candidate in _causes(exc):
        failure = _classify_one(candidate)
        if failure is not None:
            return failure
    return None


def retry_countdown(
    *,
    retries: int,
    backoff_seconds: float,
    backoff_max_seconds: float,
    ceiling_seconds: float,
    retry_after: float | None,
    jitter: bool = True,
    rng: random.Random | None = None,
) -> float:
    """Seconds before the next attempt: the job's exponential backoff with "equal jitter"
    (between half and all of it, so an outage is never retried at once), at least the
    vendor's Retry-After, never above the job's backoff maximum nor ``ceiling_seconds``
    (half the visibility timeout: a longer countdown would let Redis hand the waiting
    message to a second worker)."""
    backoff = min(backoff_max_seconds, backoff_seconds * 2.0**retries)
    if jitter:
        backoff = (rng or random).uniform(backoff / 2, backoff)
    wanted = max(backoff, retry_after or 0.0)
    return max(0.0, min(wanted, backoff_max_seconds, ceiling_seconds))
