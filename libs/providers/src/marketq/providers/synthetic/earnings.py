"""Earnings: reports 3-6 weeks after each calendar quarter, the calendar of upcoming
reports and generated call transcripts. ``eps_actual`` equals that quarter's fundamentals
``eps``; ``earnings`` leaves the actuals None for the first quarter not reported by
``as_of``."""

from __future__ import annotations

import re
from datetime import date, timedelta

from marketq.providers.base import EarningsCalendarEntry, EarningsReport, EarningsTranscript
from marketq.providers.synthetic.companies import Companies
from marketq.providers.synthetic.dates import fiscal_period, quarter_end, quarter_index
from marketq.providers.synthetic.draws import normal, unit
from marketq.providers.synthetic.financials import Financials
from marketq.providers.synthetic.prices import PriceModel
from marketq.providers.synthetic.reference import check_symbol
from marketq.providers.synthetic.transcripts import transcript

_PERIOD_RE = re.compile(r"^(\d{4})Q([1-4])$")


class Earnings:
    """``earnings``, ``earnings_calendar`` and ``earnings_transcript``."""

    def __init__(self, model: PriceModel, financials: Financials, companies: Companies) -> None:
        self.model = model
        self.seed = model.seed
        self.calendar = model.calendar
        self._financials = financials
        self._companies = companies

    def report_date(self, symbol: str, qi: int) -> date:
        p = self.model.params(symbol)
        jitter = int(unit(self.seed, symbol, "report-jitter", qi) * 7)
        nominal = quarter_end(qi) + timedelta(days=p.report_lag + jitter)
        return self.calendar.session_on_or_after(nominal)

    def eps_estimate(self, symbol: str, qi: int) -> tuple[float, float]:
        f = self._financials.quarter(symbol, qi)
        surprise = 0.02 + 0.05 * normal(self.seed, symbol, "surprise", qi)
        rev_surprise = 0.005 + 0.015 * normal(self.seed, symbol, "rev-surprise", qi)
        eps_estimate = round(f.eps_raw - abs(f.eps_raw) * surprise, 2)
        return eps_estimate, round(f.revenue * (1.0 - rev_surprise), -3)

    def earnings(self, symbol: str, as_of: date, quarters: int) -> list[EarningsReport]:
        """The ``quarters`` fiscal quarters up to and including the first one not yet
        reported on ``as_of`` (its actuals are None), oldest first."""
        check_symbol(symbol)
        if quarters < 0:
            raise ValueError("quarters must be >= 0")
        nxt = quarter_index(as_of) - 1
        if self.report_date(symbol, nxt) <= as_of:
            nxt += 1
        out: list[EarningsReport] = []
        for qi in range(nxt - quarters + 1, nxt + 1):
            report = self.report_date(symbol, qi)
            f = self._financials.quarter(symbol, qi)
            eps_estimate, revenue_estimate = self.eps_estimate(symbol, qi)
            reported = report <= as_of
            out.append(
                EarningsReport(
                    symbol=symbol,
                    fiscal_period=fiscal_period(qi),
                    report_date=report,
                    eps_estimate=eps_estimate,
                    eps_actual=f.eps if reported else None,
                    revenue_estimate=revenue_estimate,
                    revenue_actual=f.revenue if reported else None,
                )
            )
        return out

    def earnings_calendar(
        self, symbols: list[str], start: date, end: date
    ) -> list[EarningsCalendarEntry]:
        """Reports scheduled in [start, end], ordered by date then symbol."""
        out: list[EarningsCalendarEntry] = []
        if start > end:
            return out
        for symbol in symbols:
            check_symbol(symbol)
            for qi in range(quarter_index(start) - 2, quarter_index(end) + 1):
                report = self.report_date(symbol, qi)
                if start <= report <= end:
                    out.append(
                        EarningsCalendarEntry(
                            symbol=symbol,
                            report_date=report,
                            fiscal_period=fiscal_period(qi),
                            time_of_day=self.model.params(symbol).report_time,
                            eps_estimate=self.eps_estimate(symbol, qi)[0],
                        )
                    )
        out.sort(key=lambda e: (e.report_date, e.symbol))
        return out

    def earnings_transcript(self, symbol: str, fiscal_period: str) -> EarningsTranscript:
        """A generated call transcript for ``fiscal_period`` ("YYYYQn") on its report date."""
        check_symbol(symbol)
        m = _PERIOD_RE.match(fiscal_period)
        if m is None:
            raise ValueError(f"fiscal_period must look like '2026Q3', got {fiscal_period!r}")
        qi = int(m.group(1)) * 4 + int(m.group(2)) - 1
        call_date = self.report_date(symbol, qi)
        content = transcript(
            self.seed,
            symbol,
            fiscal_period,
            qi,
            call_date,
            profile=self._companies.company_profile(symbol),
            quarter=self._financials.quarter(symbol, qi),
            year_ago=self._financials.quarter(symbol, qi - 4),
            eps_estimate=self.eps_estimate(symbol, qi)[0],
        )
        return EarningsTranscript(
            symbol=symbol, fiscal_period=fiscal_period, call_date=call_date, content=content
        )
