"""Catalog jobs run on real vendor adapters whose HTTP is replayed from the recorded
fixtures: the job function, the routing and validation layer, the adapter and the
database, exactly as a worker runs them (only the vendors' network is replayed).

Every catalog job that reads a provider has a case here unless it only derives from data
another job fetches, or no vendor offers its data (the lists below say which and why);
a new catalog job fails ``test_every_fetching_job_has_a_vendor_case`` until it is placed.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import responses
import respx
import yfinance
from sqlalchemy import select

from marketq.common.catalog import CATALOG
from marketq.common.db.engine import create_db_engine, session_factory
from marketq.common.db.models import (
    Base,
    CompanyInfo,
    DailyBarRow,
    DividendRow,
    EarningsCalendarRow,
    EarningsRow,
    EarningsTranscriptRow,
    EconomicEventRow,
    EconomicIndicatorRow,
    FundamentalsRow,
    NewsArticleRow,
    OptionQuoteRow,
    QuoteRow,
)
from marketq.common.params import (
    CompanyInfoParams,
    DividendsParams,
    EarningsCalendarParams,
    EarningsParams,
    EarningsTranscriptsParams,
    EconomicEventsParams,
    EconomicIndicatorsParams,
    FundamentalsParams,
    HistoricalPricesParams,
    JobParams,
    NewsParams,
    OptionsChainParams,
    StockQuotesParams,
)
from marketq.common.scheduling.calendar import MarketCalendar
from marketq.common.settings import Settings
from marketq.providers.alphavantage import AlphaVantageProvider
from marketq.providers.base import MarketDataProvider
from marketq.providers.edgar import EdgarProvider
from marketq.providers.finnhub import FinnhubProvider
from marketq.providers.fred import FredProvider
from marketq.providers.routing import RoutedProvider
from marketq.providers.validation import RecordValidator
from marketq.providers.yahoo import YahooProvider
from marketq.worker.context import JobContext
from marketq.worker.registry import implementations
from tests.support.vendor_replay import responses_add, respx_route

# Jobs that read only what other jobs fetched (they back-fill bars through the same
# daily_bars path historical_prices covers), and jobs that read no provider at all.
# portfolio_performance back-fills bars the same way; portfolio_intraday reads quotes
# through the quote path stock_quotes covers.
DERIVED = {
    "technical_indicators",
    "trading_signals",
    "portfolio_snapshot",
    "portfolio_report",
    "portfolio_performance",
    "portfolio_intraday",
}
# Bookkeeping, pipelines, webhooks and the research jobs (they read stored bars; the
# broker sync talks to a broker, not a market-data vendor).
READS_NO_PROVIDER = {
    "expire_signals",
    "cleanup",
    "health_check",
    "data_import",
    "advance_pipelines",
    "start_pipeline",
    "deliver_webhook",
    "rebuild_universe",
    "build_features",
    "train_and_predict",
    "run_backtest",
    "generate_trades",
    "sync_broker",
}
# Jobs no vendor adapter serves (none left: Finnhub serves economic_events).
NO_VENDOR: set[str] = set()

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


@dataclass
class Case:
    job: str
    params: JobParams
    as_of: datetime
    adapter: str  # yahoo, alphavantage, fred, finnhub or edgar
    fixtures: list[str]
    model: type[Base]
    check: Callable[[list[dict[str, Any]], dict[str, Any]], None]
    extra: dict[str, Any] = field(default_factory=dict)


def _events(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    assert len(rows) == 5 and result["rows"] == 5
    by_name = {r["name"]: r for r in rows}
    # Released before the run (15:00 UTC): its actual is kept; later releases have none.
    assert by_name["Unemployment Rate"]["actual"] == 4.3
    assert by_name["Fed Interest Rate Decision"]["importance"] == "high"
    assert all(r["actual"] is None for n, r in by_name.items() if n != "Unemployment Rate")


def _quotes(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    assert [(r["symbol"], r["price"], r["bid"]) for r in rows] == [("IBM", 303.41, None)]


def _options(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    assert sorted((r["option_type"], r["strike"]) for r in rows) == [
        ("call", 280.0),
        ("call", 285.0),
        ("put", 280.0),
        ("put", 285.0),
    ]


def _bars(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    assert [r["day"] for r in rows] == [date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)]
    # The unknown symbol is reported with the vendor's reason; the known one is written.
    assert list(result["failed_symbols"]) == ["NOSUCH"]
    assert "Invalid API call" in result["failed_symbols"]["NOSUCH"]
    assert result["rows"] == 3


def _fundamentals(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    assert [(r["period_end"], r["revenue"]) for r in rows] == [(date(2026, 6, 27), 94036000000.0)]


def _dividends(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    assert [(r["ex_date"], r["amount"], r["currency"]) for r in rows] == [
        (date(2026, 5, 9), 1.68, "USD"),
        (date(2026, 8, 8), 1.68, "USD"),
        (date(2026, 11, 10), 1.68, "USD"),
    ]


def _earnings(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    assert sorted(r["fiscal_period"] for r in rows) == ["2025Q4", "2026Q1", "2026Q2", "2026Q3"]


def _transcripts(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    assert [(r["fiscal_period"], r["call_date"]) for r in rows] == [("2026Q3", date(2026, 10, 21))]
    assert rows[0]["word_count"] == len(rows[0]["content"].split()) > 20


def _calendar(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    assert sorted((r["symbol"], r["report_date"]) for r in rows) == [
        ("AAPL", date(2027, 1, 28)),
        ("IBM", date(2027, 1, 27)),
    ]


def _news(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    assert sorted((r["publisher"], r["sentiment"]) for r in rows) == [
        ("Example Markets", -0.031),
        ("Example Wire", 0.264),
    ]


def _indicators(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    assert sorted({(r["series"], r["unit"]) for r in rows}) == [
        ("CPI", "Index 1982-1984=100"),
        ("UNRATE", "Percent"),
    ]
    assert len(rows) == 7  # 4 UNRATE months, 3 CPI months (October's "." is no value)


def _company(rows: list[dict[str, Any]], result: dict[str, Any]) -> None:
    assert [(r["symbol"], r["name"], r["exchange"]) for r in rows] == [
        ("AAPL", "Apple Inc.", "Nasdaq")
    ]


CASES = [
    Case(
        "stock_quotes",
        StockQuotesParams(symbols=["IBM"]),
        datetime(2026, 12, 3, 15, 41, tzinfo=UTC),
        "alphavantage",
        ["global_quote_IBM"],
        QuoteRow,
        _quotes,
    ),
    Case(
        "options_chain",
        OptionsChainParams(symbols=["AAPL"], expirations=1, strikes_per_side=1),
        datetime(2026, 12, 3, 18, 41, tzinfo=UTC),
        "yahoo",
        ["cookie", "crumb", "options_AAPL"],
        OptionQuoteRow,
        _options,
    ),
    Case(
        "historical_prices",
        HistoricalPricesParams(
            symbols=["IBM", "NOSUCH"], start=date(2026, 12, 1), end=date(2026, 12, 3)
        ),
        NOW,
        "alphavantage",
        ["time_series_daily_adjusted_IBM", "error_invalid_call"],
        DailyBarRow,
        _bars,
    ),
    Case(
        "fundamentals",
        FundamentalsParams(symbols=["AAPL"]),
        NOW,
        "edgar",
        ["company_tickers", "companyfacts_CIK0000320193"],
        FundamentalsRow,
        _fundamentals,
    ),
    Case(
        "dividends",
        DividendsParams(symbols=["IBM"], lookback_days=365),
        NOW,
        "alphavantage",
        ["dividends_IBM", "overview_IBM"],
        DividendRow,
        _dividends,
    ),
    Case(
        "earnings",
        EarningsParams(symbols=["IBM"], quarters=4),
        NOW,
        "alphavantage",
        ["earnings_IBM"],
        EarningsRow,
        _earnings,
    ),
    Case(
        "earnings_transcripts",
        EarningsTranscriptsParams(symbols=["IBM"]),
        NOW,
        "alphavantage",
        ["earnings_IBM", "earnings_call_transcript_IBM_2026Q3"],
        EarningsTranscriptRow,
        _transcripts,
    ),
    Case(
        "earnings_calendar",
        EarningsCalendarParams(symbols=["IBM", "AAPL"], days_ahead=90),
        NOW,
        "alphavantage",
        ["earnings_calendar_3month"],
        EarningsCalendarRow,
        _calendar,
    ),
    Case(
        "news",
        NewsParams(symbols=["IBM"], lookback_hours=24, limit_per_symbol=10),
        datetime(2026, 12, 4, 0, 0, tzinfo=UTC),
        "alphavantage",
        ["news_sentiment_IBM"],
        NewsArticleRow,
        _news,
    ),
    Case(
        "economic_indicators",
        EconomicIndicatorsParams(series=["UNRATE", "CPI"], lookback_days=156),
        NOW,
        "fred",
        [
            "series_UNRATE",
            "series_observations_UNRATE",
            "series_CPIAUCSL",
            "series_observations_CPIAUCSL",
        ],
        EconomicIndicatorRow,
        _indicators,
    ),
    Case(
        "economic_events",
        EconomicEventsParams(days_ahead=14),
        NOW,
        "finnhub",
        ["calendar_economic"],
        EconomicEventRow,
        _events,
    ),
    Case(
        "company_info",
        CompanyInfoParams(symbols=["AAPL"]),
        NOW,
        "edgar",
        ["company_tickers", "submissions_CIK0000320193"],
        CompanyInfo,
        _company,
    ),
]


def test_every_fetching_job_has_a_vendor_case() -> None:
    covered = {case.job for case in CASES}
    assert covered | DERIVED | READS_NO_PROVIDER | NO_VENDOR == set(CATALOG)
    assert not covered & (DERIVED | READS_NO_PROVIDER | NO_VENDOR)


@pytest.fixture(scope="module", autouse=True)
def _yfinance_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    yfinance.set_tz_cache_location(str(tmp_path_factory.mktemp("yfinance-cache")))


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template_path: Path) -> str:
    path = tmp_path / "marketq.db"
    shutil.copyfile(sqlite_template_path, path)  # migrated once per session
    return f"sqlite:///{path}"


def _adapter(name: str) -> MarketDataProvider:
    client = httpx.Client(timeout=5)
    if name == "alphavantage":
        return AlphaVantageProvider("demo-key", client=client, today=NOW.date)
    if name == "fred":
        return FredProvider("abcdefghijklmnopqrstuvwxyz123456", client=client)
    if name == "finnhub":
        return FinnhubProvider("finnhub-test-key-0123456789", client=client)
    if name == "edgar":
        return EdgarProvider("marketq tests ops@marketq.example", client=client)
    return YahooProvider(session=requests.Session())


def _run(case: Case, db_url: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    engine = create_db_engine(db_url)
    calendar = MarketCalendar("XNYS")
    routed = RoutedProvider.over(
        _adapter(case.adapter), RecordValidator(calendar.is_trading_day, lambda: NOW)
    )
    ctx = JobContext(
        run_id="run-vendor",
        job=case.job,
        queue=CATALOG[case.job].queue.value,
        worker="tests@localhost",
        as_of=case.as_of,
        settings=Settings(database_url=db_url),
        provider=routed,
        calendar=calendar,
        sessions=session_factory(engine),
        log=logging.LoggerAdapter(logging.getLogger("tests"), {}),
        _progress_sink=lambda current, total: None,
    )
    try:
        result = implementations()[case.job](ctx, case.params)
        with ctx.sessions() as session:
            table = case.model.__table__
            order = [c for c in table.columns if c.name != "updated_at"]
            rows = [dict(r) for r in session.execute(select(*order).order_by(*order)).mappings()]
    finally:
        engine.dispose()
    return rows, result


@pytest.mark.parametrize("case", CASES, ids=[case.job for case in CASES])
def test_job_runs_on_the_replayed_vendor(case: Case, db_url: str) -> None:
    if case.adapter == "yahoo":
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            for name in case.fixtures:
                responses_add(mock, "yahoo", name)
            rows, result = _run(case, db_url)
    else:
        with respx.mock(assert_all_mocked=True, assert_all_called=True) as router:
            for name in case.fixtures:
                respx_route(router, case.adapter, name)
            rows, result = _run(case, db_url)
    assert rows, f"{case.job} wrote nothing"
    # Every row names the vendor that produced it and when it was fetched.
    assert {r["source"] for r in rows} == {case.adapter}
    assert all(r["fetched_at"] is not None for r in rows)
    assert "rejected_rows" not in result
    case.check(rows, result)
