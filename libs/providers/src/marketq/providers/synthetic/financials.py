"""Quarterly fundamentals: calendar quarters (fiscal == calendar) grown from the symbol's
parameters, with the quarter-end close for market cap and P/E."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from marketq.providers.base import Fundamentals
from marketq.providers.synthetic.dates import quarter_end, quarter_index
from marketq.providers.synthetic.draws import normal
from marketq.providers.synthetic.memo import LRU
from marketq.providers.synthetic.prices import ANCHOR_DATE, PriceModel
from marketq.providers.synthetic.reference import check_symbol


@dataclass(frozen=True, slots=True)
class Quarter:
    revenue: float
    net_income: float
    eps: float
    eps_raw: float
    total_assets: float
    total_liabilities: float
    shares: int
    price: float


class Financials:
    """``fundamentals`` and the per-quarter statements earnings reports share."""

    def __init__(self, model: PriceModel) -> None:
        self.model = model
        self.seed = model.seed
        self.calendar = model.calendar
        self._quarters: LRU[tuple[str, int], Quarter] = LRU(16384)

    def quarter(self, symbol: str, qi: int) -> Quarter:
        return self._quarters.get((symbol, qi), lambda: self._make_quarter(symbol, qi))

    def _make_quarter(self, symbol: str, qi: int) -> Quarter:
        p = self.model.params(symbol)
        s = self.seed
        years = (qi - quarter_index(ANCHOR_DATE)) / 4.0
        season = (0.96, 0.98, 1.0, 1.06)[qi % 4]
        annual_revenue = p.base_price * p.shares / p.price_to_sales
        revenue = (
            annual_revenue / 4.0
            * math.exp(p.growth * years)
            * season
            * math.exp(0.03 * normal(s, symbol, "revenue", qi))
        )  # fmt: skip
        margin = max(-0.5, min(0.5, p.margin + 0.035 * normal(s, symbol, "margin", qi)))
        net_income = revenue * margin
        shares = p.shares * math.exp(-0.008 * years)
        assets = 4.0 * revenue / p.asset_turnover * math.exp(0.02 * normal(s, symbol, "assets", qi))
        end = quarter_end(qi)
        price = self.model.close(symbol, self.calendar.session_on_or_before(end))
        return Quarter(
            revenue=round(revenue, -3),
            net_income=round(net_income, -3),
            eps=round(net_income / shares, 2),
            eps_raw=net_income / shares,
            total_assets=round(assets, -3),
            total_liabilities=round(assets * p.leverage, -3),
            shares=int(shares),
            price=price,
        )

    def fundamentals(self, symbol: str, as_of: date, periods: int) -> list[Fundamentals]:
        """The last ``periods`` quarterly statements whose period ended before ``as_of``,
        oldest first. ``pe_ratio`` is price / trailing-four-quarter EPS (None when <= 0)."""
        check_symbol(symbol)
        if periods < 0:
            raise ValueError("periods must be >= 0")
        last = quarter_index(as_of) - 1
        out: list[Fundamentals] = []
        for qi in range(last - periods + 1, last + 1):
            f = self.quarter(symbol, qi)
            ttm = sum(self.quarter(symbol, k).eps_raw for k in range(qi - 3, qi + 1))
            out.append(
                Fundamentals(
                    symbol=symbol,
                    period_end=quarter_end(qi),
                    period_type="quarter",
                    revenue=f.revenue,
                    net_income=f.net_income,
                    eps=f.eps,
                    total_assets=f.total_assets,
                    total_liabilities=f.total_liabilities,
                    shares_outstanding=f.shares,
                    market_cap=round(f.shares * f.price, -3),
                    pe_ratio=round(f.price / ttm, 2) if ttm > 0 else None,
                )
            )
        return out
