"""The job catalog: every job marketq runs, declared once.

The API validates and routes with it, beat builds its schedule from it, the worker
registers one implementation per entry, and the docs and the chart's queue list are
derived from it. Adding a job means adding an entry here and an implementation in
``marketq.worker.jobs``; a test fails if either is missing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from marketq.common import params as p
from marketq.common.queues import Queue


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a job runs by itself. Cron fields are in the exchange's time zone."""

    cron: str | None = None
    after: str | None = None  # run as a chain link after this job succeeds
    trading_days_only: bool = False

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.after is None):
            raise ValueError("a schedule is either a cron expression or 'after <job>'")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(f"cron {self.cron!r} must have five fields")

    def describe(self) -> str:
        if self.after:
            return f"after {self.after}"
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

    def __post_init__(self) -> None:
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
    # --- daily: after the close ------------------------------------------------------
    JobSpec(
        name="historical_prices",
        queue=Queue.DAILY,
        params=p.HistoricalPricesParams,
        description="End-of-day OHLCV bars.",
        schedule=Schedule(cron="30 17 * * *", trading_days_only=True),
        soft_time_limit=600,
        time_limit=660,
        example={"symbols": ["AAPL"], "lookback_days": 10},
    ),
    JobSpec(
        name="technical_indicators",
        queue=Queue.DAILY,
        params=p.TechnicalIndicatorsParams,
        description="SMA, EMA, RSI, MACD and Bollinger bands from the stored daily bars.",
        schedule=Schedule(after="historical_prices"),
        soft_time_limit=600,
        time_limit=660,
        example={"symbols": ["AAPL"]},
    ),
    JobSpec(
        name="trading_signals",
        queue=Queue.DAILY,
        params=p.TradingSignalsParams,
        description="Buy/sell signals derived from the technical indicators.",
        schedule=Schedule(after="technical_indicators"),
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
        description="Prune the run ledger and expired data (quotes, news).",
        schedule=Schedule(cron="15 3 * * *"),
        soft_time_limit=600,
        time_limit=660,
        example={"dry_run": True},
    ),
    # --- default: on demand -----------------------------------------------------------
    JobSpec(
        name="health_check",
        queue=Queue.DEFAULT,
        params=p.HealthCheckParams,
        description="Round trip through a queue and the database; may be sent to any queue.",
        soft_time_limit=150,
        time_limit=180,
        retry=RetryPolicy(max_retries=0),
        any_queue=True,
        example={"sleep_seconds": 0},
    ),
    JobSpec(
        name="data_import",
        queue=Queue.DEFAULT,
        params=p.DataImportParams,
        description="Import a CSV of daily bars or portfolio positions; all rows or none.",
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
        for job in jobs:
            if job.schedule and job.schedule.after and job.schedule.after not in self._jobs:
                raise ValueError(f"{job.name} runs after unknown job {job.schedule.after}")

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


CATALOG = Catalog(_JOBS)
