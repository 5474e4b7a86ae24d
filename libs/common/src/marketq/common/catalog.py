"""The job catalog: every job marketq runs, declared once.

The API validates and routes with it, beat builds its schedule from it, the worker
registers one implementation per entry, and the docs and the chart's queue list are
derived from it. Adding a job means adding an entry here and an implementation in
``marketq.worker.jobs``; a test fails if either is missing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from marketq.common import params as p
from marketq.common.queues import Queue


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a job runs by itself. Cron fields are in the exchange's time zone.

    A job's ``schedule`` is its entry named after it; ``extra_schedules`` are further
    entries of the same job, each with its own ``name`` (possibly shipped disabled, as an
    option a schedule edit turns on), ``params`` and market-hours gate.
    """

    cron: str
    trading_days_only: bool = False
    name: str | None = None  # the entry's name; the job's own for its main schedule
    enabled: bool = True
    market_hours_only: bool | None = None  # None: the job's own market_hours_only
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.cron.split()) != 5:
            raise ValueError(f"cron {self.cron!r} must have five fields")

    def describe(self) -> str:
        suffix = " on trading days" if self.trading_days_only else ""
        return f"cron {self.cron}{suffix}"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of transient failures (and of a lost pool process): exponential backoff."""

    max_retries: int = 3
    backoff_seconds: int = 10  # first delay; doubled per attempt
    backoff_max_seconds: int = 600


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    queue: Queue
    params: type[p.JobParams]
    description: str
    schedule: Schedule | None = None
    market_hours_only: bool = False
    soft_time_limit: int = 300
    time_limit: int = 360
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: str | None = None  # Celery syntax per worker process, e.g. "30/m"
    expires_seconds: int | None = None  # drop a message still queued after this long
    any_queue: bool = False  # may be sent to any queue (probes)
    example: Mapping[str, Any] = field(default_factory=dict)  # valid params, for docs/tests
    extra_schedules: tuple[Schedule, ...] = ()  # further named entries of this job

    def __post_init__(self) -> None:
        if any(extra.name is None for extra in self.extra_schedules):
            raise ValueError(f"{self.name}: every extra schedule needs a name")
        if not 0 < self.soft_time_limit < self.time_limit:
            raise ValueError(f"{self.name}: need 0 < soft_time_limit < time_limit")
        if self.market_hours_only and self.queue is not Queue.MARKET_HOURS:
            raise ValueError(f"{self.name}: market-hours jobs belong on the market_hours queue")


_FAST = RetryPolicy(max_retries=2, backoff_seconds=5, backoff_max_seconds=20)

_JOBS: tuple[JobSpec, ...] = (
    # --- market_hours: intraday, only while the exchange is in session ------------
    JobSpec(
        name="stock_quotes",
        queue=Queue.MARKET_HOURS,
        params=p.StockQuotesParams,
        description="Latest quote of every symbol, once a minute while the market is open.",
        schedule=Schedule(cron="* * * * *"),
        market_hours_only=True,
        soft_time_limit=45,
        time_limit=55,
        retry=_FAST,
        expires_seconds=120,
        example={"symbols": ["AAPL", "MSFT"]},
        extra_schedules=(
            # Pre-market and after-hours quotes: every 30 minutes from 06:00 to 20:00 on
            # every session's date, whatever the regular hours (early closes included).
            Schedule(
                name="quotes_extended",
                cron="*/30 6-19 * * *",
                trading_days_only=True,
                market_hours_only=False,
            ),
        ),
    ),
    JobSpec(
        name="options_chain",
        queue=Queue.MARKET_HOURS,
        params=p.OptionsChainParams,
        description="Option chains with greeks for the nearest expiries, every 5 minutes.",
        schedule=Schedule(cron="*/5 * * * *"),
        market_hours_only=True,
        soft_time_limit=240,
        time_limit=280,
        retry=_FAST,
        expires_seconds=600,
        example={"symbols": ["AAPL"], "expirations": 2, "strikes_per_side": 5},
    ),
    JobSpec(
        name="portfolio_intraday",
        queue=Queue.MARKET_HOURS,
        params=p.PortfolioIntradayParams,
        description="Every portfolio valued at the latest quotes, hourly while the market is open.",
        schedule=Schedule(cron="0 * * * *"),
        market_hours_only=True,
        soft_time_limit=240,
        time_limit=280,
        retry=_FAST,
        expires_seconds=1800,
        example={"portfolio_ids": [1]},
    ),
    # --- daily: after the close ------------------------------------------------------
    JobSpec(
        name="historical_prices",
        queue=Queue.DAILY,
        params=p.HistoricalPricesParams,
        description="End-of-day OHLCV bars (scheduled as the first step of end_of_day).",
        soft_time_limit=600,
        time_limit=660,
        example={"symbols": ["AAPL"], "lookback_days": 10},
    ),
    JobSpec(
        name="technical_indicators",
        queue=Queue.DAILY,
        params=p.TechnicalIndicatorsParams,
        description="SMA, EMA, RSI, MACD and Bollinger bands from the stored daily bars.",
        soft_time_limit=600,
        time_limit=660,
        example={"symbols": ["AAPL"]},
    ),
    JobSpec(
        name="trading_signals",
        queue=Queue.DAILY,
        params=p.TradingSignalsParams,
        description="Buy/sell signals derived from the technical indicators.",
        soft_time_limit=300,
        time_limit=360,
        example={"symbols": ["AAPL"]},
    ),
    JobSpec(
        name="portfolio_snapshot",
        queue=Queue.DAILY,
        params=p.PortfolioSnapshotParams,
        description="Value of every portfolio at the close.",
        schedule=Schedule(cron="30 16 * * *", trading_days_only=True),
        soft_time_limit=600,
        time_limit=660,
        example={},
    ),
    JobSpec(
        name="fundamentals",
        queue=Queue.DAILY,
        params=p.FundamentalsParams,
        description="Quarterly statements and valuation ratios.",
        schedule=Schedule(cron="0 18 * * *"),
        soft_time_limit=600,
        time_limit=660,
        rate_limit="30/m",
        example={"symbols": ["AAPL"], "periods": 4},
    ),
    JobSpec(
        name="dividends",
        queue=Queue.DAILY,
        params=p.DividendsParams,
        description="Declared and paid dividends.",
        schedule=Schedule(cron="0 19 * * *"),
        soft_time_limit=600,
        time_limit=660,
        example={"symbols": ["AAPL"], "lookback_days": 365},
    ),
    JobSpec(
        name="earnings_transcripts",
        queue=Queue.DAILY,
        params=p.EarningsTranscriptsParams,
        description="Earnings call transcripts of the last quarter.",
        schedule=Schedule(cron="0 20 * * *"),
        soft_time_limit=600,
        time_limit=660,
        example={"symbols": ["AAPL"]},
    ),
    JobSpec(
        name="economic_indicators",
        queue=Queue.DAILY,
        params=p.EconomicIndicatorsParams,
        description="Macroeconomic series (GDP, CPI, unemployment, rates, payrolls).",
        schedule=Schedule(cron="0 21 * * *"),
        soft_time_limit=600,
        time_limit=660,
        example={"series": ["CPI", "UNRATE"], "lookback_days": 365},
    ),
    # --- daily: the research workflow, run by the research_daily pipeline -------------
    # (on the daily queue: docs/design.md#research-queue)
    JobSpec(
        name="rebuild_universe",
        queue=Queue.DAILY,
        params=p.RebuildUniverseParams,
        description="Research universe: the most liquid symbols over a price floor with "
        "enough stored history.",
        soft_time_limit=300,
        time_limit=360,
        example={"size": 10, "min_history_days": 60},
    ),
    JobSpec(
        name="build_features",
        queue=Queue.DAILY,
        params=p.BuildFeaturesParams,
        description="Return, volatility, trend, RSI and volume features per symbol and day.",
        soft_time_limit=600,
        time_limit=660,
        example={"symbols": ["AAPL"]},
    ),
    JobSpec(
        name="train_and_predict",
        queue=Queue.DAILY,
        params=p.TrainAndPredictParams,
        description="Ridge regression trained walk-forward; stores next-day return "
        "predictions, the fitted parameters and out-of-sample metrics.",
        soft_time_limit=1200,
        time_limit=1260,
        retry=RetryPolicy(max_retries=1),
        example={"symbols": ["AAPL", "MSFT"], "test_days": 20},
    ),
    JobSpec(
        name="run_backtest",
        queue=Queue.DAILY,
        params=p.RunBacktestParams,
        description="Walk-forward backtest of the predictions with transaction costs: "
        "CAGR, volatility, Sharpe, drawdown, hit rate, turnover and the equity curve.",
        soft_time_limit=600,
        time_limit=660,
        retry=RetryPolicy(max_retries=1),
        example={"top_n": 2, "cost_bps": 5},
    ),
    JobSpec(
        name="generate_trades",
        queue=Queue.DAILY,
        params=p.GenerateTradesParams,
        description="Proposed orders towards the top predictions, within position limits "
        "and the cash available.",
        soft_time_limit=300,
        time_limit=360,
        example={"portfolio": "research", "top_n": 2},
    ),
    JobSpec(
        name="sync_broker",
        queue=Queue.DAILY,
        params=p.SyncBrokerParams,
        description="Reconcile positions and cash with the broker; sends proposed orders "
        "only when MARKETQ_TRADING_SEND_ORDERS is on.",
        soft_time_limit=300,
        time_limit=360,
        retry=RetryPolicy(max_retries=2, backoff_seconds=30),
        example={"portfolio": "research"},
    ),
    # --- periodic: through the day, every day -----------------------------------
    JobSpec(
        name="earnings",
        queue=Queue.PERIODIC,
        params=p.EarningsParams,
        description="Reported and estimated earnings per quarter.",
        schedule=Schedule(cron="0 */6 * * *"),
        example={"symbols": ["AAPL"], "quarters": 4},
    ),
    JobSpec(
        name="earnings_calendar",
        queue=Queue.PERIODIC,
        params=p.EarningsCalendarParams,
        description="Upcoming earnings dates.",
        schedule=Schedule(cron="0 */12 * * *"),
        example={"symbols": ["AAPL", "MSFT"], "days_ahead": 90},
    ),
    JobSpec(
        name="news",
        queue=Queue.PERIODIC,
        params=p.NewsParams,
        description="Company news with sentiment.",
        schedule=Schedule(cron="*/30 * * * *"),
        soft_time_limit=240,
        time_limit=280,
        expires_seconds=1800,
        example={"symbols": ["AAPL"], "lookback_hours": 24},
    ),
    JobSpec(
        name="economic_events",
        queue=Queue.PERIODIC,
        params=p.EconomicEventsParams,
        description="Upcoming economic releases and central-bank events.",
        schedule=Schedule(cron="0 */12 * * *"),
        example={"days_ahead": 14},
    ),
    JobSpec(
        name="company_info",
        queue=Queue.PERIODIC,
        params=p.CompanyInfoParams,
        description="Company profiles (name, sector, industry, size).",
        schedule=Schedule(cron="0 22 * * 0"),
        example={"symbols": ["AAPL"]},
    ),
    JobSpec(
        name="expire_signals",
        queue=Queue.PERIODIC,
        params=p.ExpireSignalsParams,
        description="Retire trading signals past their expiry.",
        schedule=Schedule(cron="5 * * * *"),
        soft_time_limit=120,
        time_limit=150,
        example={},
    ),
    JobSpec(
        name="cleanup",
        queue=Queue.PERIODIC,
        params=p.CleanupParams,
        description="Prune the run ledger, expired data (quotes, news, signals) and old "
        "import records; daily, or weekly on Sunday (entry cleanup_weekly).",
        schedule=Schedule(cron="15 3 * * *"),
        soft_time_limit=600,
        time_limit=660,
        example={"dry_run": True},
        extra_schedules=(
            # The weekly option: enable it and disable "cleanup" by schedule edit.
            Schedule(name="cleanup_weekly", cron="15 3 * * 0", enabled=False),
        ),
    ),
    JobSpec(
        name="start_pipeline",
        queue=Queue.PERIODIC,
        params=p.StartPipelineParams,
        description="Start a pipeline run; what a pipeline's schedule entry fires "
        "(docs/pipelines.md).",
        soft_time_limit=60,
        time_limit=90,
        retry=_FAST,
        example={"pipeline": "end_of_day", "params": {"symbols": ["AAPL"]}},
    ),
    JobSpec(
        name="advance_pipelines",
        queue=Queue.PERIODIC,
        params=p.AdvancePipelinesParams,
        description="Advance every unfinished pipeline run whose step ended without the "
        "worker advancing it (a crash between the two).",
        schedule=Schedule(cron="* * * * *"),
        soft_time_limit=50,
        time_limit=58,
        retry=RetryPolicy(max_retries=0),
        expires_seconds=55,
        example={},
    ),
    # --- default: on demand -----------------------------------------------------------
    JobSpec(
        name="health_check",
        queue=Queue.DEFAULT,
        params=p.HealthCheckParams,
        description="Round trip through a queue and the database; may be sent to any queue.",
        soft_time_limit=150,
        time_limit=180,
        # One retry: a probe whose pool process was killed says nothing about the path.
        retry=RetryPolicy(max_retries=1, backoff_seconds=1, backoff_max_seconds=1),
        any_queue=True,
        example={"sleep_seconds": 0},
    ),
    JobSpec(
        name="data_import",
        queue=Queue.DEFAULT,
        params=p.DataImportParams,
        description="Import a CSV or .xlsx of daily bars or portfolio positions; all rows "
        "or none (validate_only: check and report, write nothing).",
        soft_time_limit=840,
        time_limit=900,
        retry=RetryPolicy(max_retries=1),
        example={
            "dataset": "daily_bars",
            "content": (
                "symbol,date,open,high,low,close,volume\n"
                "AAPL,2026-11-20,190.1,192.5,189.7,191.9,51234000\n"
            ),
        },
    ),
    JobSpec(
        name="portfolio_performance",
        queue=Queue.DEFAULT,
        params=p.PortfolioPerformanceParams,
        description="Time-weighted return, P&L, volatility, max drawdown and return "
        "relative to a benchmark index, over N days or a date range.",
        soft_time_limit=300,
        time_limit=360,
        example={"portfolio_id": 1, "days": 90},
    ),
    JobSpec(
        name="deliver_webhook",
        queue=Queue.DEFAULT,
        params=p.DeliverWebhookParams,
        description="POST one signed completion event to its subscriber; retried with "
        "backoff until MARKETQ_WEBHOOK_RETRY_SECONDS (docs/webhooks.md).",
        soft_time_limit=60,
        time_limit=90,
        # Backoff 5 s doubling to 10 minutes: 20 attempts outlast the default hour; the
        # job itself gives up once the configured time has passed.
        retry=RetryPolicy(max_retries=20, backoff_seconds=5, backoff_max_seconds=600),
        example={"event_id": "00000000-0000-5000-8000-000000000000"},
    ),
    JobSpec(
        name="portfolio_report",
        queue=Queue.DEFAULT,
        params=p.PortfolioReportParams,
        description="Performance and allocation report of one portfolio.",
        soft_time_limit=300,
        time_limit=360,
        example={"portfolio_id": 1},
    ),
)


class UnknownJobError(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown job {name!r}; known jobs: {', '.join(sorted(CATALOG))}")
        self.name = name


class Catalog(Mapping[str, JobSpec]):
    def __init__(self, jobs: tuple[JobSpec, ...]) -> None:
        self._jobs = {job.name: job for job in jobs}
        if len(self._jobs) != len(jobs):
            raise ValueError("duplicate job name in the catalog")
        names = [schedule.name for _job, schedule in self.default_schedules()]
        if len(set(names)) != len(names):
            raise ValueError("duplicate schedule entry name in the catalog")

    def __getitem__(self, name: str) -> JobSpec:
        try:
            return self._jobs[name]
        except KeyError:
            raise UnknownJobError(name) from None

    def __contains__(self, name: object) -> bool:
        # Mapping's default asks __getitem__ for a KeyError; ours raises UnknownJobError.
        return name in self._jobs

    def __iter__(self) -> Iterator[str]:
        return iter(self._jobs)

    def __len__(self) -> int:
        return len(self._jobs)

    def on_queue(self, queue: Queue) -> list[JobSpec]:
        return [job for job in self._jobs.values() if job.queue is queue]

    def scheduled(self) -> list[JobSpec]:
        return [job for job in self._jobs.values() if job.schedule is not None]

    def default_schedules(self) -> list[tuple[JobSpec, Schedule]]:
        """Every shipped schedule entry (main and extra) with its job; each ``name`` set."""
        found: list[tuple[JobSpec, Schedule]] = []
        for job in self._jobs.values():
            if job.schedule is not None:
                found.append((job, replace(job.schedule, name=job.name)))
            found.extend((job, extra) for extra in job.extra_schedules)
        return found


CATALOG = Catalog(_JOBS)
