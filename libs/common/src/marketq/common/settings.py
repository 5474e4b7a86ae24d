"""Process configuration: every setting is a ``MARKETQ_`` environment variable.

Secrets (Redis and database URLs with passwords) come from the environment or from a
mounted file: ``MARKETQ_<NAME>_FILE=/path`` reads the value from that file, which is how a
Kubernetes Secret mounted as a volume is consumed without putting it in the pod spec.

Every field here is listed in ``docs/configuration.md``; a test fails when one is not.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from marketq.common.queues import Queue

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "JPM", "XOM", "JNJ", "SPY")


# Default target for the age of the oldest waiting message, per queue (O1).
QUEUE_TARGET_AGE_SECONDS = {
    "market_hours": 30.0,
    "daily": 900.0,
    "periodic": 600.0,
    "default": 300.0,
}


class QueueOptions(BaseModel):
    """Worker options for the Deployment that consumes one queue."""

    concurrency: int = Field(default=2, ge=1, le=64, description="Pool processes.")
    max_tasks_per_child: int | None = Field(
        default=None, ge=1, description="Recycle a pool process after this many tasks."
    )
    max_memory_per_child_kb: int | None = Field(
        default=None, ge=1024, description="Recycle a pool process above this resident size."
    )
    max_time_limit_seconds: int | None = Field(
        default=None,
        ge=2,
        description="Cap on the hard time limit of every job on this queue (catalog value "
        "otherwise). Lowering it also lowers the derived visibility timeout.",
    )
    # --- observability (O1) ---
    target_age_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Target for the age of the oldest waiting message; exported as "
        "marketq_queue_target_age_seconds for alerts and autoscaling.",
    )


class PerQueueOptions(BaseModel):
    market_hours: QueueOptions = QueueOptions(concurrency=2, target_age_seconds=30)
    daily: QueueOptions = QueueOptions(concurrency=2, target_age_seconds=900)
    periodic: QueueOptions = QueueOptions(concurrency=2, target_age_seconds=600)
    default: QueueOptions = QueueOptions(concurrency=2, target_age_seconds=300)

    @model_validator(mode="before")
    @classmethod
    def _queue_target_ages(cls, data: Any) -> Any:
        # MARKETQ_QUEUES__DAILY__CONCURRENCY=4 alone builds ``daily`` from the field
        # defaults; keep the queue's own target age unless it is set too.
        if isinstance(data, dict):
            for name, age in QUEUE_TARGET_AGE_SECONDS.items():
                options = data.get(name)
                if isinstance(options, dict) and "target_age_seconds" not in options:
                    data = {**data, name: {**options, "target_age_seconds": age}}
        return data

    def for_queue(self, queue: Queue) -> QueueOptions:
        options: QueueOptions = getattr(self, queue.value)
        return options


Scope = Literal["read", "trigger", "admin"]


class ApiKey(BaseModel):
    """One API key as stored: its SHA-256 (hex), never the key itself."""

    name: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[Scope, ...] = Field(min_length=1)


class Settings(BaseSettings):
    """All marketq settings. Field names map to ``MARKETQ_<FIELD>`` (upper case)."""

    model_config = SettingsConfigDict(
        env_prefix="MARKETQ_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    # --- stores -----------------------------------------------------------------
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis for the broker and results unless the two below are set. "
        "redis://user:password@host:port/db and rediss:// (TLS) both work.",
    )
    broker_url: str | None = Field(default=None, description="Broker URL; defaults to redis_url.")
    result_backend_url: str | None = Field(
        default=None, description="Result store URL; defaults to redis_url."
    )
    redis_tls_ca_file: str | None = Field(
        default=None, description="CA bundle to verify rediss:// servers (system store if unset)."
    )
    redis_key_prefix: str = Field(
        default="marketq:", description="Prefix of every key marketq writes to Redis."
    )
    database_url: str = Field(
        default="sqlite:///./var/marketq.db",
        description="SQLAlchemy URL. postgresql+psycopg://user:pass@host/db in production.",
    )

    # --- market data ------------------------------------------------------------
    provider: Literal["synthetic"] = Field(
        default="synthetic", description="Market-data provider adapter."
    )
    provider_seed: int = Field(
        default=0, description="Seed of the synthetic provider: same seed, same numbers."
    )
    exchange: str = Field(default="XNYS", description="exchange-calendars code of the exchange.")
    exchange_timezone: str | None = Field(
        default=None,
        description="IANA zone schedules are written in; the exchange calendar's own if unset.",
    )
    symbols: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_SYMBOLS,
        description="Default symbol universe of scheduled jobs (comma separated).",
    )
    portfolio_symbols_limit: int = Field(
        default=500, ge=1, description="Most positions a portfolio job handles in one run."
    )

    # --- delivery ---------------------------------------------------------------
    queues: PerQueueOptions = Field(
        default_factory=PerQueueOptions,
        description="Per-queue worker options, e.g. MARKETQ_QUEUES__DAILY__CONCURRENCY=4.",
    )
    visibility_timeout_margin_seconds: int = Field(
        default=60,
        ge=1,
        description="Added to twice the longest hard time limit to give the visibility "
        "timeout (a message may wait up to half of it for its ETA, then run to its limit).",
    )
    unacked_restore_interval_seconds: int = Field(
        default=10,
        ge=1,
        description="How often a worker sweeps for messages whose visibility timeout passed.",
    )
    worker_soft_shutdown_seconds: float = Field(
        default=20.0,
        ge=0,
        description="On SIGTERM, running tasks get this long before their messages are "
        "re-queued. Keep it below the pod's termination grace period.",
    )
    broker_socket_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Socket timeout of broker and result connections."
    )
    broker_connect_timeout_seconds: float = Field(
        default=3.0, gt=0, description="Connect timeout of broker and result connections."
    )
    result_expires_seconds: int = Field(
        default=86_400, ge=60, description="Task results expire from Redis after this long."
    )

    # --- data lifecycle ---------------------------------------------------------
    ledger_retention_days: int = Field(
        default=30, ge=1, description="cleanup deletes finished task_runs older than this."
    )
    news_retention_days: int = Field(
        default=90, ge=1, description="cleanup deletes news articles older than this."
    )
    quote_retention_days: int = Field(
        default=30, ge=1, description="cleanup deletes intraday quotes older than this."
    )
    signal_ttl_hours: int = Field(
        default=24, ge=1, description="A trading signal expires this long after it is made."
    )
    import_dir: str = Field(
        default="./var/imports",
        description="data_import reads files given by path from under this directory only.",
    )
    import_max_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="Largest CSV data_import accepts."
    )

    # --- API ----------------------------------------------------------------------
    api_keys: tuple[ApiKey, ...] = Field(
        default=(),
        description="JSON list of {name, sha256, scopes}; scopes from read, trigger, admin. "
        "Usually from a mounted file via MARKETQ_API_KEYS_FILE.",
    )
    api_rate_limit_per_minute: int = Field(
        default=6000, ge=1, description="Requests one API key may make per minute."
    )
    api_idempotency_ttl_seconds: int = Field(
        default=86_400, ge=60, description="How long an Idempotency-Key is remembered."
    )
    api_redis_timeout_seconds: float = Field(
        default=1.0, gt=0, description="Timeout of the API's Redis calls (then 503)."
    )
    api_max_batch: int = Field(default=1000, ge=1, description="Most runs in one batch request.")
    api_inspect_timeout_seconds: float = Field(
        default=1.0, gt=0, description="How long GET /workers waits for worker replies."
    )
    api_workers_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long a GET /workers answer is reused."
    )

    # --- scheduler (beat) ------------------------------------------------------------
    beat_enabled: bool = Field(
        default=True,
        description="Run the scheduler; false makes marketq-beat exit at once and make up "
        "start none (jobs then run only when triggered).",
    )
    schedule_file: str | None = Field(
        default=None,
        description="YAML schedule file layered over the catalog (a mounted ConfigMap); "
        "see docs/schedules.md.",
    )
    beat_lock_timeout_seconds: int = Field(
        default=60,
        ge=5,
        le=3600,
        description="The scheduler lock expires this long after the holder's last renewal; "
        "a standby takes over within this plus one loop interval.",
    )
    beat_max_loop_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Longest sleep of the scheduler loop (also the standby's lock poll).",
    )
    beat_catchup_seconds: int = Field(
        default=3600,
        ge=0,
        description="A fire missed while no beat ran is still published this late (a job's "
        "expiry shortens it); older ones are skipped as missed.",
    )
    beat_http_host: str = Field(
        default="0.0.0.0",  # noqa: S104  (a pod's probes and scrapes come from outside it)
        description="Address of beat's /metrics and /livez endpoint.",
    )
    beat_http_port: int = Field(
        default=9102, ge=0, le=65535, description="Port of beat's /metrics and /livez."
    )
    beat_liveness_seconds: float = Field(
        default=60.0,
        gt=0,
        description="/livez fails when the scheduler loop has not run for this long.",
    )

    # --- worker HTTP endpoint and metrics (O1) ----------------------------------
    worker_http_host: str = Field(
        default="0.0.0.0",  # noqa: S104  (a pod's probes and scrapes come from outside it)
        description="Address of a worker's /metrics, /livez and /readyz endpoint.",
    )
    worker_http_port: int = Field(
        default=9101,
        ge=0,
        le=65535,
        description="Port of a worker's /metrics, /livez and /readyz (served by the main "
        "process only; 0 picks a free port).",
    )
    worker_task_metrics: bool = Field(
        default=True,
        description="Record task metrics in the worker (outcomes, failures, runtime and "
        "queue wait); off leaves the endpoint, probes and worker gauges.",
    )
    worker_liveness_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A worker's /livez fails when its main process has not ticked for this "
        "long (never checks Redis).",
    )
    metrics_freshness_cache_seconds: float = Field(
        default=15.0,
        ge=0,
        description="How long the API reuses its database reads for the freshness gauges "
        "of /metrics (ledger last successes, newest data per dataset).",
    )

    # --- process ----------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of every marketq process."
    )

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """``MARKETQ_X_FILE`` supplies ``x`` from a mounted file unless ``MARKETQ_X`` is set."""
        if not isinstance(data, dict):
            return data
        for name in ("redis_url", "broker_url", "result_backend_url", "database_url", "api_keys"):
            path = os.environ.get(f"MARKETQ_{name.upper()}_FILE")
            if path and name not in data and f"MARKETQ_{name.upper()}" not in os.environ:
                text = Path(path).read_text(encoding="utf-8").strip()
                # Complex fields arrive as JSON text, as they would from the environment.
                data[name] = json.loads(text) if name == "api_keys" else text
        return data

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(s.strip().upper() for s in value.split(",") if s.strip())
        return value

    @field_validator("redis_url", "broker_url", "result_backend_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @model_validator(mode="after")
    def _beat_loop_inside_lock(self) -> Settings:
        # The holder renews the lock once per loop; a loop as long as the lock lets it lapse.
        if self.beat_max_loop_interval_seconds * 3 > self.beat_lock_timeout_seconds:
            raise ValueError(
                "beat_max_loop_interval_seconds must be at most a third of "
                "beat_lock_timeout_seconds (the holder renews the lock once per loop)"
            )
        return self

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def effective_result_backend_url(self) -> str:
        return self.result_backend_url or self.redis_url

    @property
    def timezone(self) -> str:
        if self.exchange_timezone:
            return self.exchange_timezone
        from marketq.common.calendar import exchange_calendar

        return str(exchange_calendar(self.exchange).tz)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
