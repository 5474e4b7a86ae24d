"""Parameter models of the catalog's jobs.

Every job takes keyword parameters validated by one of these models, at publish time (so
bad input never reaches Redis) and again in the worker (so a message from any producer
is checked). Models forbid unknown fields so a misspelt parameter is an error, not a
silently ignored value.
"""

from __future__ import annotations

import codecs
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
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
        description="Sessions of complete indicator history to guarantee: when fewer than "
        "these plus the longest warm-up (199 bars, sma_200) are stored, older bars are "
        "fetched. Indicators are always computed over every stored bar.",
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
    dataset: Literal["daily_bars", "positions"] = Field(description="What the file holds.")
    content: str | None = Field(
        default=None,
        max_length=48 * 1024,
        description="The CSV text itself, for small files (a run's message stays under "
        "64 KiB); larger files go through POST /api/v1/uploads and upload_id.",
    )
    upload_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="A file uploaded with POST /api/v1/uploads (up to MARKETQ_IMPORT_MAX_BYTES).",
    )
    path: str | None = Field(
        default=None,
        max_length=1024,
        description="A file under MARKETQ_IMPORT_DIR (relative path) instead of content: a "
        "CSV, or an Excel workbook (.xlsx, first sheet) with the same columns.",
    )
    portfolio: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Name of the portfolio the positions belong to (positions only; created "
        "if it does not exist). The file replaces the portfolio's positions.",
    )

    replace_all: bool = Field(
        default=False,
        description="Positions only: allow a file with no rows to remove every holding of "
        "the portfolio (without it such a file is refused).",
    )
    encoding: str | None = Field(
        default=None,
        max_length=32,
        description="Text encoding of the file (e.g. latin-1, cp1252, utf-16); UTF-8, with "
        "or without a byte-order mark, if omitted.",
        examples=["latin-1"],
    )
    delimiter: Literal[",", ";", "\t", "|"] = Field(
        default=",", description="Field separator of the CSV."
    )
    validate_only: bool = Field(
        default=False,
        description="Check the file and report every problem (up to 1000) without writing.",
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"encoding {value!r} is not a known text encoding (e.g. utf-8, latin-1, "
                "cp1252, utf-16)"
            ) from None
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if sum(v is not None for v in (self.content, self.path, self.upload_id)) != 1:
            raise ValueError("give exactly one of content, path and upload_id")
        if self.dataset == "positions" and self.portfolio is None:
            raise ValueError("portfolio is required for dataset 'positions'")
        if self.dataset != "positions" and self.portfolio is not None:
            raise ValueError("portfolio applies to dataset 'positions' only")
        if self.dataset != "positions" and self.replace_all:
            raise ValueError("replace_all applies to dataset 'positions' only")
        if self.content is not None and self.encoding is not None:
            raise ValueError("encoding applies to path only (content is already text)")
        if self.is_spreadsheet and (self.encoding is not None or self.delimiter != ","):
            raise ValueError("encoding and delimiter apply to CSV files, not to .xlsx")
        return self

    @property
    def is_spreadsheet(self) -> bool:
        """An Excel workbook (its first sheet is read), by the file's extension."""
        return self.path is not None and self.path.lower().endswith(".xlsx")


class PortfolioIntradayParams(JobParams):
    portfolio_ids: list[int] | None = Field(
        default=None, min_length=1, max_length=1000, description="All portfolios if omitted."
    )
    as_of: AwareDatetime | None = Field(
        default=None,
        description="Instant to value at (quotes of that minute); the enqueue time if omitted.",
    )


class PortfolioPerformanceParams(JobParams):
    portfolio_id: int = Field(ge=1, description="Portfolio to measure.")
    days: int | None = Field(
        default=None,
        ge=2,
        le=3650,
        description="Calendar days back from end; 365 when neither days nor start is given.",
    )
    start: date | None = Field(default=None, description="First day of the range (inclusive).")
    end: date | None = Field(
        default=None, description="Last day (inclusive); the last completed session if omitted."
    )
    benchmark: Symbol | None = Field(
        default=None,
        description="Index symbol to compare with; MARKETQ_BENCHMARK_SYMBOL if omitted.",
    )

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.days is not None and self.start is not None:
            raise ValueError("give days or start, not both")
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class PortfolioReportParams(JobParams):
    portfolio_id: int = Field(ge=1, description="Portfolio to report on.")
    as_of: date | None = Field(default=None, description="Report day; today if omitted.")


# --- research workflow (docs/research.md) ----------------------------------------------

ModelName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class RebuildUniverseParams(JobParams):
    as_of: date | None = Field(default=None, description="Universe day; last session if omitted.")
    size: int = Field(default=50, ge=1, le=2000, description="Most liquid symbols to keep.")
    min_price: float = Field(default=5.0, ge=0, description="Last close must be at least this.")
    min_history_days: int = Field(
        default=120, ge=21, le=5000, description="Stored bars a symbol needs."
    )
    liquidity_window: int = Field(
        default=20, ge=1, le=250, description="Bars averaged for dollar volume."
    )


class BuildFeaturesParams(SymbolParams):
    as_of: date | None = Field(
        default=None, description="Last feature day; last session if omitted."
    )
    window_days: int = Field(
        default=250, ge=60, le=3650, description="Stored bars used per symbol."
    )


class TrainAndPredictParams(SymbolParams):
    as_of: date | None = Field(default=None, description="Last prediction day; last session.")
    model: ModelName = Field(default="ridge_daily", description="Name the model is stored under.")
    test_days: int = Field(default=60, ge=1, le=1000, description="Days predicted walk-forward.")
    refit_every: int = Field(default=5, ge=1, le=250, description="Prediction days per refit.")
    min_train_rows: int = Field(default=100, ge=10, description="Labelled rows a fit needs.")
    alpha: float = Field(default=1.0, gt=0, le=1e6, description="Ridge regularisation.")


class RunBacktestParams(JobParams):
    as_of: date | None = Field(default=None, description="Backtest day; last session if omitted.")
    name: ModelName = Field(default="ridge_top5", description="Name the backtest is stored under.")
    model: ModelName = Field(default="ridge_daily", description="Predictions to trade on.")
    top_n: int = Field(default=5, ge=1, le=500, description="Symbols held per day.")
    cost_bps: float = Field(
        default=5.0, ge=0, le=1000, description="Cost per unit of traded weight, basis points."
    )


class GenerateTradesParams(JobParams):
    portfolio: str = Field(
        default="research", min_length=1, max_length=128, description="Portfolio traded."
    )
    as_of: date | None = Field(default=None, description="Trade day; last session if omitted.")
    model: ModelName = Field(default="ridge_daily", description="Predictions to trade on.")
    top_n: int = Field(default=5, ge=1, le=500, description="Symbols held.")
    max_position_weight: float = Field(
        default=0.2, gt=0, le=1, description="Largest share of equity in one symbol."
    )


class SyncBrokerParams(JobParams):
    portfolio: str = Field(
        default="research", min_length=1, max_length=128, description="Portfolio synced."
    )
    as_of: date | None = Field(default=None, description="Orders of this day; last session.")


# --- pipelines (docs/pipelines.md) ----------------------------------------------------


class StartPipelineParams(JobParams):
    pipeline: str = Field(min_length=1, max_length=64, description="Pipeline to start.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The pipeline run's params (flow into its steps)."
    )


class AdvancePipelinesParams(JobParams):
    pass


class DeliverWebhookParams(JobParams):
    event_id: str = Field(min_length=1, max_length=64, description="webhook_deliveries.id")
