"""Parameter models of the catalog's jobs.

Every job takes keyword parameters validated by one of these models, at publish time (so
bad input never reaches Redis) and again in the worker (so a message from any producer
is checked). Models forbid unknown fields so a misspelt parameter is an error, not a
silently ignored value.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


# Normalised before the pattern is checked, so "aapl " is accepted as AAPL.
Symbol = Annotated[
    str, BeforeValidator(_upper), StringConstraints(pattern=r"^[A-Z][A-Z0-9.\-]{0,9}$")
]
FiscalPeriod = Annotated[str, StringConstraints(pattern=r"^\d{4}Q[1-4]$")]
SeriesCode = Annotated[
    str, BeforeValidator(_upper), StringConstraints(pattern=r"^[A-Z0-9_]{1,32}$")
]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must include a UTC offset, e.g. 2026-11-20T15:30:00Z")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class JobParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SymbolParams(JobParams):
    symbols: list[Symbol] | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="Symbols to process; the configured universe (MARKETQ_SYMBOLS) if omitted.",
        examples=[["AAPL", "MSFT"]],
    )


class StockQuotesParams(SymbolParams):
    as_of: AwareDatetime | None = Field(
        default=None,
        description="Minute to quote; the minute the run was enqueued if omitted, so a "
        "redelivered message writes the same rows.",
    )


class OptionsChainParams(SymbolParams):
    expirations: int = Field(default=4, ge=1, le=12, description="Nearest expiries to fetch.")
    strikes_per_side: int = Field(
        default=10, ge=1, le=50, description="Strikes above and below the money per expiry."
    )
    as_of: AwareDatetime | None = Field(
        default=None, description="Snapshot time; the enqueue time if omitted."
    )


class HistoricalPricesParams(SymbolParams):
    start: date | None = Field(default=None, description="First day (inclusive).")
    end: date | None = Field(default=None, description="Last day (inclusive); today if omitted.")
    lookback_days: int = Field(
        default=30, ge=1, le=3650, description="Days before end when start is omitted."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start and self.end and self.start > self.end:
            raise ValueError("start must not be after end")
        return self


class FundamentalsParams(SymbolParams):
    periods: int = Field(default=4, ge=1, le=40, description="Quarterly statements to fetch.")


class DividendsParams(SymbolParams):
    lookback_days: int = Field(default=365, ge=1, le=3650, description="History to fetch.")


class EarningsTranscriptsParams(SymbolParams):
    fiscal_period: FiscalPeriod | None = Field(
        default=None, description="e.g. 2026Q3; the last completed quarter if omitted."
    )


class EconomicIndicatorsParams(JobParams):
    series: list[SeriesCode] = Field(
        default_factory=lambda: ["GDP", "CPI", "UNRATE", "FEDFUNDS", "PAYEMS"],
        min_length=1,
        max_length=100,
        description="Series codes to fetch.",
    )
    lookback_days: int = Field(default=730, ge=1, le=36500, description="History to fetch.")


class PortfolioSnapshotParams(JobParams):
    portfolio_ids: list[int] | None = Field(
        default=None, min_length=1, max_length=1000, description="All portfolios if omitted."
    )
    as_of: date | None = Field(default=None, description="Valuation day; today if omitted.")


class TechnicalIndicatorsParams(SymbolParams):
    as_of: date | None = Field(default=None, description="Last day computed; today if omitted.")
    window_days: int = Field(
        default=250,
        ge=60,
        le=3650,
        description="Stored daily bars used per symbol (indicators need a warm-up).",
    )


class TradingSignalsParams(SymbolParams):
    as_of: date | None = Field(default=None, description="Day signalled; today if omitted.")


class EarningsParams(SymbolParams):
    quarters: int = Field(default=4, ge=1, le=40, description="Reported quarters to fetch.")


class EarningsCalendarParams(SymbolParams):
    days_ahead: int = Field(default=30, ge=1, le=365, description="Calendar horizon.")


class NewsParams(SymbolParams):
    lookback_hours: int = Field(default=24, ge=1, le=720, description="Window to fetch.")
    limit_per_symbol: int = Field(default=20, ge=1, le=200, description="Articles per symbol.")


class EconomicEventsParams(JobParams):
    days_ahead: int = Field(default=14, ge=1, le=180, description="Calendar horizon.")


class CompanyInfoParams(SymbolParams):
    pass


class ExpireSignalsParams(JobParams):
    pass


class CleanupParams(JobParams):
    ledger_retention_days: int | None = Field(
        default=None, ge=1, le=3650, description="Overrides MARKETQ_LEDGER_RETENTION_DAYS."
    )
    dry_run: bool = Field(default=False, description="Count what would go, delete nothing.")


class HealthCheckParams(JobParams):
    sleep_seconds: float = Field(
        default=0.0, ge=0, le=120, description="Hold the worker this long (latency probes)."
    )
    check_database: bool = Field(default=True, description="Run a query against the database.")


class DataImportParams(JobParams):
    dataset: Literal["daily_bars", "positions"] = Field(description="What the CSV holds.")
    content: str | None = Field(
        default=None, max_length=20 * 1024 * 1024, description="The CSV text itself."
    )
    path: str | None = Field(
        default=None,
        max_length=1024,
        description="A file under MARKETQ_IMPORT_DIR (relative path) instead of content.",
    )
    portfolio: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Name of the portfolio the positions belong to (positions only; created "
        "if it does not exist). The file replaces the portfolio's positions.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.content is None) == (self.path is None):
            raise ValueError("give exactly one of content and path")
        if self.dataset == "positions" and self.portfolio is None:
            raise ValueError("portfolio is required for dataset 'positions'")
        if self.dataset != "positions" and self.portfolio is not None:
            raise ValueError("portfolio applies to dataset 'positions' only")
        return self


class PortfolioReportParams(JobParams):
    portfolio_id: int = Field(ge=1, description="Portfolio to report on.")
    as_of: date | None = Field(default=None, description="Report day; today if omitted.")
