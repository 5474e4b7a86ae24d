"""Vendor call metrics: calls, errors by class, throttle waits and tokens left, per vendor.

Recorded by the process that calls the vendor (a worker's pool child; the multiprocess
collector of the worker sums them). Labels are the vendor and the failure class only.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

# The (class, reason) pairs a vendor error is counted under (marketq.worker.failures).
VENDOR_ERROR_REASONS: dict[str, tuple[str, ...]] = {
    "transient": ("rate_limited", "vendor_unavailable", "timeout", "connection"),
    "permanent": ("unknown_symbol", "invalid_key", "not_offered", "vendor_rejected"),
}

VENDOR_CALLS = Counter(
    "marketq_vendor_calls",
    "Calls made to a market-data vendor (each took a token from its quota first).",
    ["vendor"],
)
VENDOR_ERRORS = Counter(
    "marketq_vendor_errors",
    "Failed vendor calls by class (transient: retried; permanent: failed at once) and "
    "reason (rate_limited, vendor_unavailable, timeout, connection, unknown_symbol, "
    "invalid_key, not_offered, vendor_rejected).",
    ["vendor", "error_class", "reason"],
)
VENDOR_THROTTLE_WAIT = Histogram(
    "marketq_vendor_throttle_wait_seconds",
    "Time a call waited for a token of its vendor's shared quota (0 when one was free).",
    ["vendor"],
    buckets=(0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
VENDOR_QUOTA_DEFERRED = Counter(
    "marketq_vendor_quota_deferred",
    "Calls not made because the next token came after the job's soft time limit; the run "
    "was retried later instead.",
    ["vendor"],
)
VENDOR_TOKENS = Gauge(
    "marketq_vendor_tokens",
    "Tokens left in a vendor's shared bucket after the last call (below 0: calls already "
    "waiting for their turn).",
    ["vendor"],
    multiprocess_mode="mostrecent",
)


def count_call(vendor: str) -> None:
    VENDOR_CALLS.labels(vendor).inc()


def count_error(vendor: str, error_class: str, reason: str) -> None:
    VENDOR_ERRORS.labels(vendor, error_class, reason).inc()


def observe_wait(vendor: str, seconds: float) -> None:
    VENDOR_THROTTLE_WAIT.labels(vendor).observe(seconds)


def count_deferred(vendor: str) -> None:
    VENDOR_QUOTA_DEFERRED.labels(vendor).inc()


def set_tokens(vendor: str, tokens: float) -> None:
    VENDOR_TOKENS.labels(vendor).set(tokens)


def init_vendor_series(vendors: Iterable[str]) -> None:
    """Zero series for every configured vendor, made before the first call, so ``rate()``
    sees the first call and error of each (tokens left stay unknown until a call)."""
    for vendor in vendors:
        VENDOR_CALLS.labels(vendor)
        VENDOR_THROTTLE_WAIT.labels(vendor)
        VENDOR_QUOTA_DEFERRED.labels(vendor)
        for error_class, reasons in VENDOR_ERROR_REASONS.items():
            for reason in reasons:
                VENDOR_ERRORS.labels(vendor, error_class, reason)
