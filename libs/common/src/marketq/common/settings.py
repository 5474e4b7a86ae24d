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

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from marketq.common.queues import Queue

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "JPM", "XOM", "JNJ", "SPY")


# Default target for the age of the oldest waiting message, per queue.
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
        description="Cap on the hard time limit of every job on this queue, probes sent here "
        "included (catalog value otherwise). Lowering it also lowers this queue's derived "
        "visibility timeout.",
    )
    task_events: bool = Field(
        default=False,
        description="Send Celery task events (`celery worker -E`) so Flower and `celery "
        "events` see this queue's tasks; costs a few Redis publishes per task.",
    )
    # --- observability ---
    target_age_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Target for the age of the oldest waiting message; exported as "
        "marketq_queue_target_age_seconds for alerts and autoscaling.",
    )


class PerQueueOptions(BaseModel):
    market_hours: QueueOptions = QueueOptions(concurrency=4, target_age_seconds=30)
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


class VendorQuota(BaseModel):
    """One vendor's shared token bucket: over any T seconds at most ``burst + rate * T``
    calls per API key, across every worker process and replica."""

    rate_per_second: float = Field(gt=0, description="Tokens added per second.")
    burst: int = Field(ge=1, le=10_000, description="Most tokens the bucket holds.")


# Defaults chosen so that burst + rate x window stays within each vendor's published limit
# (docs/configuration.md#vendor-quotas gives the sources).
DEFAULT_VENDOR_QUOTAS: dict[str, VendorQuota] = {
    # Free key: 25 requests/day; 20/day + a burst of 5 keeps any 24 h (and any minute) at 25/5.
    "alphavantage": VendorQuota(rate_per_second=20 / 86_400, burst=5),
    # SEC fair access: at most 10 requests/second; 8/s + a burst of 2 keeps any second at 10.
    "edgar": VendorQuota(rate_per_second=8.0, burst=2),
    # FRED: 120 requests/minute per key; 1.5/s + a burst of 30 keeps any minute at 120.
    "fred": VendorQuota(rate_per_second=1.5, burst=30),
    # Finnhub free plan: 60 calls/minute; 0.75/s + a burst of 15 keeps any minute at 60.
    "finnhub": VendorQuota(rate_per_second=0.75, burst=15),
    # Yahoo publishes no limit; a gentle pace that its unofficial endpoints tolerate.
    "yahoo": VendorQuota(rate_per_second=1.0, burst=5),
}


# Settings that MARKETQ_<NAME>_FILE may supply from a mounted file (a Secret).
SECRET_FILE_SETTINGS = (
    "redis_url",
    "broker_url",
    "result_backend_url",
    "quota_redis_url",
    "redis_sentinel_password",
    "database_url",
    "api_keys",
    "alphavantage_api_key",
    "fred_api_key",
    "finnhub_api_key",
    "edgar_user_agent",
    "alpaca_api_key",
    "alpaca_secret_key",
    "webhook_secret",
)

ProviderName = Literal["synthetic", "yahoo", "alphavantage", "fred", "finnhub", "edgar"]


def _provider_list(value: Any) -> Any:
    """``yahoo,alphavantage`` (an env value) or a list: the providers in order of preference."""
    if isinstance(value, str):
        return tuple(name.strip().lower() for name in value.split(",") if name.strip())
    return value


# An ordered fallback list: the first provider that serves a request wins.
ProviderChain = Annotated[
    tuple[ProviderName, ...], NoDecode, BeforeValidator(_provider_list), Field(min_length=1)
]


class ProviderRouting(BaseModel):
    """Which providers serve each kind of data, overriding ``MARKETQ_PROVIDER``; a job's own
    entry overrides both. Unset kinds use the default chain."""

    quotes: ProviderChain | None = None
    daily_bars: ProviderChain | None = None
    option_chains: ProviderChain | None = None
    fundamentals: ProviderChain | None = None
    dividends: ProviderChain | None = None
    earnings: ProviderChain | None = None
    earnings_calendar: ProviderChain | None = None
    earnings_transcripts: ProviderChain | None = None
    news: ProviderChain | None = None
    economic_series: ProviderChain | None = None
    economic_events: ProviderChain | None = None
    company_profiles: ProviderChain | None = None
    jobs: dict[str, ProviderChain] = Field(
        default_factory=dict,
        description="Per catalog job, e.g. MARKETQ_PROVIDERS__JOBS__HISTORICAL_PRICES=yahoo.",
    )

    @field_validator("jobs")
    @classmethod
    def _catalog_jobs(cls, value: dict[str, Any]) -> dict[str, Any]:
        from marketq.common.catalog import CATALOG  # the catalog imports settings' modules

        unknown = sorted(set(value) - set(CATALOG))
        if unknown:
            raise ValueError(f"not catalog jobs: {', '.join(unknown)}")
        return value


Scope = Literal["read", "trigger", "admin"]


WebhookEvent = Literal["SUCCESS", "FAILURE", "FAILED", "REVOKED"]


class WebhookTarget(BaseModel):
    """Where a service wants to hear that its runs ended (docs/webhooks.md)."""

    url: str = Field(min_length=1, max_length=2048)
    events: tuple[WebhookEvent, ...] = Field(
        default=("SUCCESS", "FAILURE", "FAILED", "REVOKED"),
        min_length=1,
        description="End states announced: SUCCESS, FAILURE (a run), FAILED (a pipeline "
        "run), REVOKED.",
    )


class ApiKey(BaseModel):
    """One API key as stored: its SHA-256 (hex), never the key itself."""

    name: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[Scope, ...] = Field(min_length=1)
    webhooks: dict[str, WebhookTarget] = Field(
        default_factory=dict, description="Named webhook targets (`notify: {target: name}`)."
    )


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
        "redis://user:password@host:port/db and rediss:// (TLS) both work, and so does "
        "sentinel://[:password@]host:port/db;sentinel://host2:port2: the current master of "
        "redis_sentinel_master, asked of those Sentinels (the password is the master's; "
        "every Sentinel needs its port).",
    )
    broker_url: str | None = Field(default=None, description="Broker URL; defaults to redis_url.")
    result_backend_url: str | None = Field(
        default=None, description="Result store URL; defaults to redis_url."
    )
    redis_tls_ca_file: str | None = Field(
        default=None, description="CA bundle to verify rediss:// servers (system store if unset)."
    )
    redis_sentinel_master: str = Field(
        default="mymaster",
        min_length=1,
        description="Name of the master group the Sentinels of a sentinel:// URL monitor.",
    )
    redis_sentinel_password: SecretStr | None = Field(
        default=None,
        description="Password of the Sentinels themselves (their requirepass), when they "
        "have one; usually from a mounted Secret via MARKETQ_REDIS_SENTINEL_PASSWORD_FILE.",
    )
    redis_sentinel_tls: bool = Field(
        default=False,
        description="Reach the Sentinels and the master of a sentinel:// URL over TLS, "
        "verified against redis_tls_ca_file.",
    )
    redis_key_prefix: str = Field(
        default="marketq:", description="Prefix of every key marketq writes to Redis."
    )
    database_url: str = Field(
        default="sqlite:///./var/marketq.db",
        description="SQLAlchemy URL. postgresql+psycopg://user:pass@host/db in production.",
    )

    # --- market data ------------------------------------------------------------
    provider: ProviderChain = Field(
        default=("synthetic",),
        description="Default provider chain for every kind of data (comma separated, "
        "first that serves a request wins): synthetic, yahoo, alphavantage, fred, finnhub, "
        "edgar.",
    )
    providers: ProviderRouting = Field(
        default_factory=ProviderRouting,
        description="Per data kind or per job, e.g. MARKETQ_PROVIDERS__DAILY_BARS=yahoo,"
        "alphavantage or MARKETQ_PROVIDERS__JOBS__NEWS=alphavantage (docs/providers.md).",
    )
    alphavantage_api_key: SecretStr | None = Field(
        default=None,
        description="Alpha Vantage API key; usually from a mounted Secret via "
        "MARKETQ_ALPHAVANTAGE_API_KEY_FILE.",
    )
    fred_api_key: SecretStr | None = Field(
        default=None,
        description="FRED API key; usually from a mounted Secret via MARKETQ_FRED_API_KEY_FILE.",
    )
    finnhub_api_key: SecretStr | None = Field(
        default=None,
        description="Finnhub API key; usually from a mounted Secret via "
        "MARKETQ_FINNHUB_API_KEY_FILE.",
    )
    edgar_user_agent: str | None = Field(
        default=None,
        description="User-Agent sent to SEC EDGAR: a company name and a contact e-mail, as "
        "the SEC's fair-access policy requires (e.g. 'Example Corp ops@example.com').",
    )
    provider_timeout_seconds: float = Field(
        default=20.0, gt=0, le=300, description="Timeout of one vendor HTTP request."
    )
    provider_seed: int = Field(
        default=0, description="Seed of the synthetic provider: same seed, same numbers."
    )
    exchange: str = Field(default="XNYS", description="exchange-calendars code of the exchange.")
    # --- vendor quotas (issue 10) ---------------------------------------------------
    quota_enabled: bool = Field(
        default=True,
        description="Pace vendor calls with the shared Redis token buckets below; false "
        "counts calls but never waits (for a vendor plan with no limits).",
    )
    quotas: dict[str, VendorQuota] = Field(
        default_factory=lambda: dict(DEFAULT_VENDOR_QUOTAS),
        description="Token bucket per vendor, e.g. MARKETQ_QUOTAS__ALPHAVANTAGE__RATE_PER_SECOND"
        "=0.5 and MARKETQ_QUOTAS__ALPHAVANTAGE__BURST=5 for a paid plan; a vendor missing "
        "here is not limited. Defaults: see docs/configuration.md#vendor-quotas.",
    )
    quota_redis_url: str | None = Field(
        default=None,
        description="Redis holding the quota buckets; defaults to redis_url (every worker of "
        "every replica must use the same one).",
    )
    quota_max_wait_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Longest one call waits for a token outside a job; inside a job the "
        "wait also ends before the job's soft time limit (then the run is retried later).",
    )

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
        description="Added to twice a queue's longest hard time limit to give that queue's "
        "visibility timeout (a message may wait up to half of it for its ETA, then run to "
        "its limit).",
    )
    # --- one explicit visibility timeout the Helm chart can guard --------------------
    visibility_timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        description="One visibility timeout for every queue instead of each queue's derived "
        "one (unset: derived per queue); must exceed twice the longest hard time limit of "
        "any queue or every process refuses to start.",
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

    # --- run ledger (events -> task_runs) and reconciler --------------------------------
    ledger_stream_max_len: int = Field(
        default=200_000,
        ge=1000,
        description="Last guard on the run-event stream's length (the writer trims what it "
        "has written); events beyond it are dropped oldest first (docs/delivery.md).",
    )
    ledger_batch_size: int = Field(
        default=500, ge=1, description="Most events the ledger writer commits in one batch."
    )
    ledger_linger_seconds: float = Field(
        default=0.1,
        ge=0,
        le=1.0,
        description="How long the ledger writer waits to fill a short batch (fewer, larger "
        "transactions; adds at most this to the ledger lag).",
    )
    ledger_claim_idle_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Events a writer read but did not acknowledge for this long are claimed "
        "by another writer (the first one died mid-batch).",
    )
    worker_heartbeat_seconds: float = Field(
        default=10.0, gt=0, description="How often a worker's main process records it is alive."
    )
    reconcile_interval_seconds: float = Field(
        default=30.0, gt=0, description="How often the reconciler checks runs against Redis."
    )
    reconcile_queued_after_seconds: int = Field(
        default=300,
        ge=1,
        description="A QUEUED run whose message is missing this long after it was queued is "
        "re-published or marked LOST (MARKETQ_RECONCILE_QUEUED_ACTION).",
    )
    reconcile_queued_action: Literal["republish", "lost"] = Field(
        default="republish",
        description="What the reconciler does with a QUEUED run whose message the broker "
        "lost: publish it again with the same run id, or mark it LOST.",
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
    benchmark_symbol: str = Field(
        default="SPY",
        pattern=r"^[A-Z^][A-Z0-9.\-^]{0,9}$",
        description="Index symbol portfolio_performance compares returns with.",
    )
    import_retention_days: int = Field(
        default=365,
        ge=1,
        description="cleanup deletes data_imports records (not the imported data) older "
        "than this; a file imported again after that is recorded as a new import.",
    )
    signal_ttl_sessions: int = Field(
        default=1,
        ge=1,
        le=250,
        description="A trading signal expires at the close of this many exchange sessions "
        "after the day it signals (1: the end of the next session).",
    )
    import_dir: str = Field(
        # Under /tmp: the only writable place in the images (the chart's emptyDir).
        default="/tmp/marketq-imports",  # noqa: S108  (a directory the worker reads)
        description="data_import reads files given by path from under this directory only.",
    )
    import_max_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="Largest CSV data_import accepts."
    )

    # --- API ----------------------------------------------------------------------
    api_host: str = Field(
        default="0.0.0.0",  # noqa: S104  (a pod's clients, probes and scrapes come from outside it)
        description="Address marketq-api listens on.",
    )
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port marketq-api listens on.")
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
    api_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body the API reads (413 above it; uploads have their own "
        "limit, MARKETQ_IMPORT_MAX_BYTES).",
    )
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
    beat_calendar_min_horizon_days: int = Field(
        default=365,
        ge=1,
        description="Beat checks at start-up that the exchange calendar covers at least "
        "this many days ahead (fires that need the calendar past its end are skipped).",
    )
    beat_calendar_horizon_action: Literal["warn", "refuse"] = Field(
        default="warn",
        description="What beat does at start-up when the calendar covers less than "
        "MARKETQ_BEAT_CALENDAR_MIN_HORIZON_DAYS: log a warning, or refuse to start.",
    )

    # --- worker HTTP endpoint and metrics ---------------------------------------
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

    # --- research workflow: broker (docs/research.md) ------------------------------
    trading_broker: Literal["paper", "alpaca"] = Field(
        default="paper",
        description="Broker `sync_broker` reconciles with: `paper` (kept in the database) or "
        "`alpaca` (Alpaca's paper-trading API through alpaca-py).",
    )
    trading_send_orders: bool = Field(
        default=False,
        description="Send proposed orders to the broker. Off: `sync_broker` only reconciles "
        "positions and cash, and proposed orders stay `proposed`.",
    )
    paper_starting_cash: float = Field(
        default=1_000_000.0, gt=0, description="Cash of a paper account when first opened."
    )
    alpaca_api_key: str | None = Field(default=None, description="Alpaca paper API key id.")
    alpaca_secret_key: str | None = Field(default=None, description="Alpaca paper secret key.")
    alpaca_url: str | None = Field(
        default=None,
        description="Alpaca trading API base URL; alpaca-py's paper URL if unset.",
    )

    # --- completion webhooks (docs/webhooks.md) -------------------------------------
    webhook_secret: str | None = Field(
        default=None,
        description="HMAC-SHA256 key that signs every webhook (header Marketq-Signature). "
        "Webhooks are refused while unset.",
    )
    webhook_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated host patterns (fnmatch: `hooks.example.com`, "
        "`*.internal.example`) a webhook URL may name; empty refuses every webhook. "
        "Link-local and metadata addresses are refused whatever the patterns say.",
    )
    webhook_retry_seconds: int = Field(
        default=3600, ge=10, le=7 * 86_400, description="How long a delivery is retried."
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="Timeout of one delivery attempt."
    )

    # --- process ----------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of every marketq process."
    )
    # --- logs and traces (tracing itself is configured by the OTEL_* variables) ---
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="Log lines on stderr: `json` (one object per line with time, level, "
        "logger, message and, when known, run_id, job_name, queue, trace_id, span_id) or "
        "`text` (readable; `make up` uses it).",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """``MARKETQ_X_FILE`` supplies ``x`` from a mounted file unless ``MARKETQ_X`` is set."""
        if not isinstance(data, dict):
            return data
        for name in SECRET_FILE_SETTINGS:
            path = os.environ.get(f"MARKETQ_{name.upper()}_FILE")
            if path and name not in data and f"MARKETQ_{name.upper()}" not in os.environ:
                if name == "api_keys":
                    # Several files (os.pathsep between them) hold one list: the operator's
                    # keys and the chart's generated helm-test key are separate Secrets.
                    data[name] = [
                        key
                        for part in path.split(os.pathsep)
                        for key in json.loads(Path(part).read_text(encoding="utf-8"))
                    ]
                else:
                    data[name] = Path(path).read_text(encoding="utf-8").strip()
        return data

    @field_validator("quotas", mode="before")
    @classmethod
    def _merge_vendor_quotas(cls, value: Any) -> Any:
        # MARKETQ_QUOTAS__FRED__BURST=10 alone must keep fred's rate and the other vendors.
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {k: v.model_dump() for k, v in DEFAULT_VENDOR_QUOTAS.items()}
        for vendor, options in value.items():
            name = vendor.lower()
            if isinstance(options, dict):
                merged[name] = {**merged.get(name, {}), **options}
            else:
                merged[name] = options
        return merged

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(h.strip().lower() for h in value.split(",") if h.strip())
        return value

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(s.strip().upper() for s in value.split(",") if s.strip())
        return value

    @field_validator("redis_url", "broker_url", "result_backend_url", "quota_redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("sentinel://"):
            from marketq.common.redis_client import parse_sentinel_url

            parse_sentinel_url(value)  # every part sentinel://, each with a host
        elif value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss://, sentinel:// or unix:// URL")
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
        from marketq.common.scheduling.calendar import exchange_calendar

        return str(exchange_calendar(self.exchange).tz)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
