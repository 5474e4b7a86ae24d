"""Every record a provider returns is checked before anything is written.

First its schema: a pydantic model generated from the record's own dataclass (strict
types, finite numbers, the allowed literals), so the record definition stays the one
source of truth. Then the rules a market-data row must obey: OHLC ordering, no negative
volume, sizes or prices, no timestamp in the future, daily bars on exchange sessions,
one ISO currency per symbol. A record that fails is rejected: counted in
``marketq_provider_rejected_rows_total``, reported to the run, never written.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import date, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from marketq.providers.base import (
    CompanyProfile,
    DailyBar,
    Dividend,
    EarningsReport,
    EconomicObservation,
    Fundamentals,
    NewsArticle,
    OptionContract,
    Quote,
)

__all__ = ["REJECTED_ROWS", "RecordValidator", "Rejection"]

REJECTED_ROWS = Counter(
    "marketq_provider_rejected_rows_total",
    "Provider records rejected by validation before writing, by provider and data kind.",
    ["vendor", "kind"],
)

# Clocks of vendors and workers disagree a little; a minute is not "the future".
CLOCK_SKEW = timedelta(minutes=1)
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class Rejection:
    kind: str
    source: str
    record: str  # the record's identity, e.g. "AAPL 2026-12-03"
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "source": self.source,
            "record": self.record,
            "reason": self.reason,
        }


_SCHEMAS: dict[type[Any], type[BaseModel]] = {}


def _schema(record_type: type[Any]) -> type[BaseModel]:
    """A strict pydantic model with the record dataclass's own fields and types."""
    if record_type not in _SCHEMAS:
        hints = typing.get_type_hints(record_type)
        _SCHEMAS[record_type] = create_model(  # type: ignore[call-overload]
            record_type.__name__,
            __config__=ConfigDict(strict=True, allow_inf_nan=False),
            **{field.name: (hints[field.name], ...) for field in fields(record_type)},
        )
    return _SCHEMAS[record_type]


def _identity(record: Any) -> str:
    values = asdict(record)
    for names in (
        ("symbol", "day"),
        ("symbol", "ts"),
        ("underlying", "expiration", "strike", "option_type"),
        ("symbol", "period_end"),
        ("symbol", "ex_date"),
        ("symbol", "fiscal_period"),
        ("symbol", "report_date"),
        ("article_id",),
        ("series", "period"),
        ("event_id",),
        ("symbol",),
    ):
        if all(name in values for name in names):
            return " ".join(str(values[name]) for name in names)
    return type(record).__name__


class RecordValidator:
    """Checks batches of records; ``is_session`` answers whether a day is a trading day."""

    def __init__(self, is_session: Callable[[date], bool], now: Callable[[], datetime]) -> None:
        self._is_session = is_session
        self._now = now

    def check(self, kind: str, records: Sequence[Any]) -> tuple[list[Any], list[Rejection]]:
        """The records that pass, and why each of the others was rejected."""
        now = self._now()
        accepted: list[Any] = []
        rejected: list[Rejection] = []
        currencies: dict[str, str] = {}
        for record in records:
            reason = self._reason(record, now) if is_dataclass(record) else "not a record"
            if reason is None and isinstance(record, Dividend):
                first = currencies.setdefault(record.symbol, record.currency)
                if record.currency != first:
                    reason = f"currency {record.currency} differs from {first} for {record.symbol}"
            if reason is None:
                accepted.append(record)
                continue
            source = getattr(record, "source", "") or "unknown"
            rejected.append(Rejection(kind, source, _identity(record), reason))
            REJECTED_ROWS.labels(vendor=source, kind=kind).inc()
        return accepted, rejected

    def _reason(self, record: Any, now: datetime) -> str | None:
        try:
            _schema(type(record)).model_validate(asdict(record))
        except ValidationError as exc:
            return "; ".join(
                f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            )
        rule = _RULES.get(type(record))
        return rule(self, record, now) if rule is not None else None

    # --- the rules, one per record type ---------------------------------------------------

    def _bar(self, bar: DailyBar, now: datetime) -> str | None:
        if not bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high:
            return (
                f"OHLC out of order (open {bar.open}, high {bar.high}, low {bar.low}, "
                f"close {bar.close})"
            )
        if bar.low <= 0 or bar.adj_close <= 0:
            return "non-positive price"
        if bar.volume < 0:
            return f"negative volume {bar.volume}"
        if bar.day > now.date():
            return f"day {bar.day} is in the future"
        if not self._is_session(bar.day):
            return f"{bar.day} is not an exchange session"
        return None

    def _quote(self, quote: Quote, now: datetime) -> str | None:
        if quote.price <= 0:
            return f"non-positive price {quote.price}"
        if quote.volume < 0 or min(quote.bid_size or 0, quote.ask_size or 0) < 0:
            return "negative volume or size"
        if quote.bid is not None and quote.ask is not None and 0 < quote.ask < quote.bid:
            return f"bid {quote.bid} above ask {quote.ask}"
        return _not_after(quote.ts, now, "ts")

    def _option(self, option: OptionContract, now: datetime) -> str | None:
        if option.strike <= 0 or option.underlying_price <= 0:
            return "non-positive strike or underlying price"
        if min(option.bid, option.ask, option.last, option.implied_volatility) < 0:
            return "negative price or volatility"
        if min(option.open_interest or 0, option.volume or 0) < 0:
            return "negative open interest or volume"
        if 0 < option.ask < option.bid:
            return f"bid {option.bid} above ask {option.ask}"
        return _not_after(option.as_of, now, "as_of")

    def _fundamentals(self, row: Fundamentals, now: datetime) -> str | None:
        if row.shares_outstanding is not None and row.shares_outstanding < 0:
            return "negative shares outstanding"
        return (
            None
            if row.period_end <= now.date()
            else f"period_end {row.period_end} is in the future"
        )

    def _dividend(self, row: Dividend, now: datetime) -> str | None:
        if row.amount <= 0:
            return f"non-positive amount {row.amount}"
        return (
            None if _CURRENCY.match(row.currency) else f"currency {row.currency!r} is not ISO 4217"
        )

    def _earnings(self, row: EarningsReport, now: datetime) -> str | None:
        if (
            row.eps_actual is not None
            and row.report_date is not None
            and row.report_date > now.date()
        ):
            return f"reported figures dated {row.report_date}, in the future"
        return None

    def _profile(self, row: CompanyProfile, now: datetime) -> str | None:
        if row.currency is not None and not _CURRENCY.match(row.currency):
            return f"currency {row.currency!r} is not ISO 4217"
        return None if row.employees is None or row.employees >= 0 else "negative employees"

    def _news(self, row: NewsArticle, now: datetime) -> str | None:
        if row.sentiment is not None and not -1.0 <= row.sentiment <= 1.0:
            return f"sentiment {row.sentiment} outside [-1, 1]"
        return _not_after(row.published_at, now, "published_at")

    def _observation(self, row: EconomicObservation, now: datetime) -> str | None:
        return None if row.period <= now.date() else f"period {row.period} is in the future"


def _not_after(at: datetime, now: datetime, name: str) -> str | None:
    if at.tzinfo is None:
        return f"{name} has no time zone"
    return f"{name} {at.isoformat()} is in the future" if at > now + CLOCK_SKEW else None


_RULES: dict[type[Any], Callable[[RecordValidator, Any, datetime], str | None]] = {
    DailyBar: RecordValidator._bar,
    Quote: RecordValidator._quote,
    OptionContract: RecordValidator._option,
    Fundamentals: RecordValidator._fundamentals,
    Dividend: RecordValidator._dividend,
    EarningsReport: RecordValidator._earnings,
    CompanyProfile: RecordValidator._profile,
    NewsArticle: RecordValidator._news,
    EconomicObservation: RecordValidator._observation,
}
