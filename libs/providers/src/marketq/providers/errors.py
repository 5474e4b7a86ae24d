"""The errors a market-data provider raises, by what a retry can do about them.

Adapters translate each vendor's answers into these classes (a 429 or a 5xx into
``TransientProviderError``, an unknown ticker into ``UnknownSymbolError``, ...), so the
worker decides between "retry with backoff" and "fail now" without knowing any vendor.
See docs/design.md#failure-classes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = [
    "InvalidKeyError",
    "NotOfferedError",
    "PermanentProviderError",
    "ProviderError",
    "TransientProviderError",
    "UnknownSymbolError",
    "error_for_status",
    "retry_after_seconds",
]


class ProviderError(Exception):
    """A vendor call that did not produce data. ``vendor`` names who answered."""

    def __init__(self, message: str, *, vendor: str | None = None) -> None:
        super().__init__(message)
        self.vendor = vendor


class TransientProviderError(ProviderError):
    """Worth retrying: rate limited (429), a 5xx, a timeout, a dropped connection.

    ``retry_after`` is the vendor's own hint in seconds (its Retry-After header), if any.
    """

    def __init__(
        self, message: str, *, vendor: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, vendor=vendor)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """Retrying cannot help: the request itself is wrong for this vendor."""


class NotOfferedError(PermanentProviderError):
    """The vendor has no such data (a method its adapter cannot serve)."""

    def __init__(self, vendor: str, what: str) -> None:
        super().__init__(f"{what} is not offered by {vendor}", vendor=vendor)
        self.what = what


class UnknownSymbolError(PermanentProviderError):
    """The vendor does not know the symbol."""


class InvalidKeyError(PermanentProviderError):
    """The API key is missing, wrong, revoked, or its plan lacks the endpoint."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date, RFC 9110
    section 10.2.3); None when absent or unreadable. A date in the past means 0."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_for_status(
    vendor: str | None, status: int, *, retry_after: str | None = None, detail: str = ""
) -> ProviderError | None:
    """The error an HTTP status from a vendor means, or None for a success.

    The generic reading every adapter starts from: 429 and 5xx (and 408) are transient,
    with the Retry-After header's wait; 401/403 an invalid key or a plan without the
    endpoint; 404 an unknown symbol; any other 4xx a request the vendor rejects. Vendors
    that signal errors inside a 200 body translate those themselves.
    """
    if status < 400:
        return None
    who = vendor or "the vendor"
    message = f"{who} answered HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429 or status == 408 or status >= 500:
        return TransientProviderError(
            message, vendor=vendor, retry_after=retry_after_seconds(retry_after)
        )
    if status in (401, 403):
        return InvalidKeyError(message, vendor=vendor)
    if status == 404:
        return UnknownSymbolError(message, vendor=vendor)
    return PermanentProviderError(message, vendor=vendor)
