"""Quarterly dividends of payers: ex-dates on sessions, amounts from the yearly level."""

from __future__ import annotations

import math
from datetime import date, timedelta

from marketq.providers.base import Dividend
from marketq.providers.synthetic.draws import unit
from marketq.providers.synthetic.memo import LRU
from marketq.providers.synthetic.prices import PriceModel
from marketq.providers.synthetic.reference import check_symbol, is_payer


class Dividends:
    """``dividends`` and ``dividend_yield``."""

    def __init__(self, model: PriceModel, currency: str) -> None:
        self.model = model
        self.seed = model.seed
        self.calendar = model.calendar
        self.currency = currency
        self._dividends: LRU[tuple[str, int, int], Dividend | None] = LRU(16384)

    def dividend_yield(self, symbol: str) -> float:
        """The symbol's annual dividend yield (0 for non-payers); options use it as q."""
        return self.model.params(check_symbol(symbol)).dividend_yield

    def _dividend(self, symbol: str, year: int, q: int) -> Dividend | None:
        return self._dividends.get((symbol, year, q), lambda: self._make_dividend(symbol, year, q))

    def _make_dividend(self, symbol: str, year: int, q: int) -> Dividend | None:
        p = self.model.params(symbol)
        if p.dividend_yield <= 0:
            return None
        cal = self.calendar
        month = 3 * q + 1 + p.div_month_offset
        jitter = int(unit(self.seed, symbol, "div-jitter", year, q) * 4)
        ex = cal.session_on_or_after(date(year, month, p.div_day + jitter))
        reference = math.exp(self.model.start_level(symbol, year))  # steps once a year
        amount = max(0.01, round(p.dividend_yield * reference / 4.0, 2))
        declared = cal.session_on_or_before(ex - timedelta(days=p.declare_lag))
        return Dividend(
            symbol=symbol,
            ex_date=ex,
            record_date=cal.next_session(ex),
            pay_date=cal.session_on_or_after(ex + timedelta(days=p.pay_lag)),
            declared_date=declared,
            amount=amount,
            currency=self.currency,
        )

    def dividends(self, symbol: str, start: date, end: date) -> list[Dividend]:
        """Quarterly dividends with an ex-date in [start, end] (none for non-payers)."""
        check_symbol(symbol)
        if start > end or not is_payer(symbol):
            return []
        self.model.warm_start_levels(symbol, start.year)
        out: list[Dividend] = []
        for year in range(start.year, end.year + 1):
            for q in range(4):
                d = self._dividend(symbol, year, q)
                if d is not None and start <= d.ex_date <= end:
                    out.append(d)
        return out
