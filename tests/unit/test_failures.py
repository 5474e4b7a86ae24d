"""Failure classes: every exception a job can meet maps to retry-with-backoff or fail-now.

Real exceptions of the real libraries (an httpx request to a closed port, a SQLAlchemy
connect to a closed port, a redis-py connect to a closed port), not hand-made look-alikes.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy
from sqlalchemy.pool import NullPool

from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.settings import Settings
from marketq.providers.errors import (
    InvalidKeyError,
    NotOfferedError,
    PermanentProviderError,
    TransientProviderError,
    UnknownSymbolError,
    retry_after_seconds,
)
from marketq.providers.metrics import VENDOR_ERROR_REASONS
from marketq.providers.quota import QuotaDeferredError
from marketq.providers.synthetic import SyntheticProvider
from marketq.worker.errors import PermanentJobError, TransientJobError
from marketq.worker.failures import classify, retry_countdown
from tests.fixtures.ports import free_port
from tests.support.job_context import job_context


def _raised(call: object) -> BaseException:
    try:
        call()  # type: ignore[operator]
    except BaseException as exc:
        return exc
    pytest.fail("expected an exception")


def test_vendor_429_is_transient_and_keeps_retry_after() -> None:
    failure = classify(TransientProviderError("429", vendor="fred", retry_after=17))
    assert failure is not None
    assert (failure.kind, failure.reason, failure.retry_after, failure.vendor) == (
        "transient",
        "rate_limited",
        17,
        "fred",
    )


def test_vendor_5xx_without_hint_is_transient() -> None:
    failure = classify(TransientProviderError("HTTP 503", vendor="edgar"))
    assert failure is not None and failure.transient
    assert failure.reason == "vendor_unavailable" and failure.retry_after is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (UnknownSymbolError("no symbol ZZZZ", vendor="yahoo"), "unknown_symbol"),
        (InvalidKeyError("key rejected", vendor="alphavantage"), "invalid_key"),
        (NotOfferedError("fred", "option chains"), "not_offered"),
        (PermanentProviderError("plan lacks endpoint", vendor="alphavantage"), "vendor_rejected"),
    ],
)
def test_permanent_vendor_errors_fail_at_once_with_their_reason(
    error: Exception, reason: str
) -> None:
    failure = classify(error)
    assert failure is not None
    assert (failure.kind, failure.reason) == ("permanent", reason)
    assert str(error) in failure.describe()


def test_not_offered_names_the_vendor() -> None:
    assert str(NotOfferedError("fred", "option chains")) == "option chains is not offered by fred"


def test_quota_deferral_is_transient_with_its_wait() -> None:
    failure = classify(QuotaDeferredError("later", vendor="alphavantage", retry_after=40))
    assert failure is not None and failure.transient
    assert (failure.reason, failure.retry_after) == ("quota_deferred", 40)


def test_http_connection_refused_is_transient() -> None:
    port = free_port()  # nothing listens there
    exc = _raised(lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=2))
    assert isinstance(exc, httpx.ConnectError)
    failure = classify(exc)
    assert failure is not None and (failure.kind, failure.reason) == ("transient", "connection")


def test_http_timeout_is_transient() -> None:
    exc = httpx.ReadTimeout("read timed out", request=httpx.Request("GET", "http://v.test/q"))
    failure = classify(exc)
    assert failure is not None and (failure.kind, failure.reason) == ("transient", "timeout")


@pytest.mark.parametrize(
    ("status", "headers", "kind", "reason", "retry_after"),
    [
        (429, {"Retry-After": "30"}, "transient", "rate_limited", 30.0),
        (503, {}, "transient", "vendor_unavailable", None),
        (500, {}, "transient", "vendor_unavailable", None),
        (401, {}, "permanent", "invalid_key", None),
        (404, {}, "permanent", "unknown_symbol", None),
        (400, {}, "permanent", "vendor_rejected", None),
    ],
)
def test_untranslated_http_status_errors(
    status: int, headers: dict[str, str], kind: str, reason: str, retry_after: float | None
) -> None:
    request = httpx.Request("GET", "https://vendor.test/query?apikey=secret")
    response = httpx.Response(status, headers=headers, request=request)
    exc = _raised(response.raise_for_status)
    failure = classify(exc)
    assert failure is not None
    assert (failure.kind, failure.reason, failure.retry_after) == (kind, reason, retry_after)
    assert "secret" not in failure.describe()  # the key in the query never reaches the ledger


def test_refused_database_connection_is_transient() -> None:
    engine = sqlalchemy.create_engine(
        f"postgresql+psycopg://u:p@127.0.0.1:{free_port()}/db",
        poolclass=NullPool,
        connect_args={"connect_timeout": 2},
    )
    exc = _raised(engine.connect)
    assert isinstance(exc, sqlalchemy.exc.OperationalError)
    failure = classify(exc)
    assert failure is not None and (failure.kind, failure.reason) == ("transient", "database")


def test_wrong_sql_is_a_defect_not_a_retry() -> None:
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect() as connection:
        exc = _raised(lambda: connection.exec_driver_sql("SELECT * FROM no_such_table"))
    assert isinstance(exc, sqlalchemy.exc.OperationalError)  # SQLite's class for it
    assert classify(exc) is None


def test_locked_sqlite_database_is_transient(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    holder = sqlalchemy.create_engine(url, poolclass=NullPool)
    waiter = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args={"timeout": 0})
    with holder.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        connection.commit()
        connection.exec_driver_sql("BEGIN EXCLUSIVE")
        with waiter.connect() as other:
            exc = _raised(lambda: other.exec_driver_sql("INSERT INTO t VALUES (1)"))
        connection.rollback()
    failure = classify(exc)
    assert failure is not None and (failure.kind, failure.reason) == ("transient", "database")


def test_dropped_redis_connection_is_transient() -> None:
    client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=None)
    exc = _raised(client.ping)
    assert isinstance(exc, redis.ConnectionError)
    failure = classify(exc)
    assert failure is not None and (failure.kind, failure.reason) == ("transient", "redis")


def test_explicit_cause_is_classified() -> None:
    try:
        try:
            raise TransientProviderError("503", vendor="fred")
        except TransientProviderError as inner:
            raise RuntimeError("while writing bars") from inner
    except RuntimeError as outer:
        failure = classify(outer)
    assert failure is not None and failure.vendor == "fred"


def test_job_errors_keep_their_class_and_other_exceptions_are_defects() -> None:
    transient = classify(TransientJobError("busy"))
    permanent = classify(PermanentJobError("bad csv"))
    assert transient is not None and transient.transient
    assert permanent is not None and not permanent.transient
    assert classify(ValueError("bug")) is None
    assert classify(KeyError("bug")) is None


def test_retry_after_header_forms() -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None


def test_countdown_honours_retry_after_within_the_bounds() -> None:
    rng = random.Random(1)
    common = {"backoff_seconds": 5, "backoff_max_seconds": 60, "ceiling_seconds": 30, "rng": rng}
    # Retry-After above the jittered backoff wins...
    assert retry_countdown(retries=0, retry_after=12, **common) == 12  # type: ignore[arg-type]
    # ...but never beyond half the visibility timeout or the job's backoff maximum.
    assert retry_countdown(retries=0, retry_after=3600, **common) == 30  # type: ignore[arg-type]
    small = {**common, "ceiling_seconds": 1000, "backoff_max_seconds": 20}
    assert retry_countdown(retries=0, retry_after=3600, **small) == 20  # type: ignore[arg-type]


def test_countdown_without_jitter_doubles_per_attempt() -> None:
    delays = [
        retry_countdown(
            retries=n,
            backoff_seconds=5,
            backoff_max_seconds=30,
            ceiling_seconds=1000,
            retry_after=None,
            jitter=False,
        )
        for n in range(4)
    ]
    assert delays == [5, 10, 20, 30]


def test_jittered_countdown_is_never_below_half_the_backoff() -> None:
    rng = random.Random(7)
    delays = [
        retry_countdown(
            retries=1,
            backoff_seconds=5,
            backoff_max_seconds=60,
            ceiling_seconds=1000,
            retry_after=None,
            rng=rng,
        )
        for _ in range(200)
    ]
    assert min(delays) >= 5 and max(delays) <= 10
    assert len({round(d, 3) for d in delays}) > 100  # jittered, not a constant


def test_every_vendor_failure_reason_has_a_zeroed_metric_series() -> None:
    errors: list[Exception] = [
        TransientProviderError("429", vendor="v", retry_after=1),
        TransientProviderError("503", vendor="v"),
        UnknownSymbolError("x", vendor="v"),
        InvalidKeyError("x", vendor="v"),
        NotOfferedError("v", "x"),
        PermanentProviderError("x", vendor="v"),
        httpx.ReadTimeout("t", request=httpx.Request("GET", "http://v.test/")),
        httpx.ConnectError("c", request=httpx.Request("GET", "http://v.test/")),
    ]
    for error in errors:
        failure = classify(error)
        assert failure is not None
        assert failure.reason in VENDOR_ERROR_REASONS[failure.kind], failure


def _every_symbol_failing(errors: dict[str, PermanentProviderError]) -> BaseException:
    """What a job's symbol loop raises when each symbol fails with ``errors[symbol]``."""
    calendar = MarketCalendar("XNYS")
    as_of = datetime.combine(date(2026, 12, 4), datetime.min.time(), UTC)
    engine = sqlalchemy.create_engine("sqlite://", poolclass=NullPool)
    ctx = job_context(
        engine,
        as_of=as_of,
        provider=SyntheticProvider(seed=0, calendar=calendar),
        calendar=calendar,
        settings=Settings(database_url="sqlite://"),
    )

    def loop() -> None:
        for symbol in ctx.each_symbol(list(errors)):
            with ctx.failed(symbol):
                raise errors[symbol]

    return _raised(loop)


def test_every_symbol_unknown_to_one_vendor_fails_as_unknown_symbol_from_it() -> None:
    raised = _every_symbol_failing(
        {s: UnknownSymbolError(f"symbol {s}", vendor="yahoo") for s in ("NOPE", "NADA")}
    )
    failure = classify(raised)
    assert failure is not None and not failure.transient
    assert failure.describe().startswith("permanent failure (unknown_symbol from yahoo)")
    assert "NOPE: symbol NOPE" in failure.message and "NADA: symbol NADA" in failure.message


def test_symbols_failing_for_different_reasons_fail_as_vendor_rejected() -> None:
    raised = _every_symbol_failing(
        {
            "NOPE": UnknownSymbolError("symbol NOPE", vendor="yahoo"),
            "IBM": InvalidKeyError("bad key", vendor="alphavantage"),
        }
    )
    failure = classify(raised)
    assert failure is not None and failure.reason == "vendor_rejected"
    assert failure.vendor is None and "IBM: bad key" in failure.message
