"""Option chains on standard monthly expiries.

Expirations are standard monthly expiries (third Friday, moved to the previous session
when the Friday is a holiday) strictly after the as-of exchange date. Strikes are centred
on the underlying at a price-dependent increment. Mid prices are Black-Scholes-Merton with
``RISK_FREE_RATE`` and the symbol's continuous ``dividend_yield`` on an IV smile around
the symbol's volatility; time to expiry runs to the expiry session's close over a 365-day
year. bid <= model price - half spread and ask >= model price + half spread (cents), so
``(bid + ask) / 2`` is within half the spread of the model and put-call parity holds
within the spreads.
"""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np

from marketq.common.scheduling.calendar import MarketCalendar
from marketq.providers import blackscholes as bs
from marketq.providers.base import OptionContract, OptionType
from marketq.providers.synthetic.dates import aware_utc, floor_minute, nth_weekday
from marketq.providers.synthetic.draws import normal, unit, units
from marketq.providers.synthetic.prices import FloatArray, PriceModel
from marketq.providers.synthetic.quotes import Quotes
from marketq.providers.synthetic.reference import check_symbol

RISK_FREE_RATE = 0.04
"""Continuously compounded rate used to price options."""


def monthly_expirations(calendar: MarketCalendar, after: date, count: int) -> list[date]:
    """The next ``count`` standard monthly expiries strictly after ``after``.

    A standard expiry is the third Friday of the month, or the session before it when the
    exchange is closed that Friday (e.g. Good Friday 2025-04-18 -> 2025-04-17).
    """
    out: list[date] = []
    year, month = after.year, after.month
    while len(out) < count:
        expiry = calendar.session_on_or_before(nth_weekday(year, month, 4, 3))
        if expiry > after:
            out.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


class Options:
    """``option_chain`` and the implied-volatility surface behind it."""

    def __init__(self, model: PriceModel, quotes: Quotes) -> None:
        self.model = model
        self.seed = model.seed
        self.calendar = model.calendar
        self._quotes = quotes

    @staticmethod
    def strike_increment(price: float) -> float:
        """Listed strike spacing for an underlying at ``price``."""
        for limit, inc in ((5.0, 0.5), (25.0, 1.0), (60.0, 2.5), (200.0, 5.0), (1000.0, 10.0)):
            if price < limit:
                return inc
        return 50.0

    def implied_volatility(self, symbol: str, as_of: datetime, strike: float, time: float) -> float:
        """The synthetic IV surface at ``as_of``: a term structure around the symbol's
        volatility with a skewed smile in standardised moneyness."""
        check_symbol(symbol)
        ts = floor_minute(aware_utc(as_of, "as_of"))
        spot = self._quotes.quote(symbol, ts).price
        return float(self._smile(symbol, ts, spot, np.array([strike]), time)[0])

    def _smile(
        self, symbol: str, ts: datetime, spot: float, strikes: FloatArray, time: float
    ) -> FloatArray:
        p = self.model.params(symbol)
        local_day = ts.astimezone(self.calendar.tz).date()
        day_noise = 1.0 + 0.04 * normal(self.seed, symbol, "iv", local_day.isoformat())
        atm = p.volatility * day_noise * (1.0 + 0.12 * math.exp(-4.0 * time))
        forward = spot * math.exp((RISK_FREE_RATE - p.dividend_yield) * time)
        x = np.clip(np.log(strikes / forward) / (atm * math.sqrt(time)), -3.0, 3.0)
        iv: FloatArray = np.clip(atm * (1.0 - 0.08 * x + 0.05 * x * x), 0.05, 2.5)
        return iv

    def option_chain(
        self, symbol: str, as_of: datetime, expirations: int, strikes_per_side: int
    ) -> list[OptionContract]:
        """Calls and puts for the next ``expirations`` monthly expiries at
        ``2 * strikes_per_side + 1`` strikes around the underlying (non-positive strikes
        dropped), ordered by expiration, strike, call before put. ``as_of`` is floored to
        the minute."""
        check_symbol(symbol)
        if expirations < 0 or strikes_per_side < 0:
            raise ValueError("expirations and strikes_per_side must be >= 0")
        ts = floor_minute(aware_utc(as_of, "as_of"))
        cal = self.calendar
        quote = self._quotes.quote(symbol, ts)
        spot = quote.price
        p = self.model.params(symbol)
        q = p.dividend_yield
        local_day = ts.astimezone(cal.tz).date()
        inc = self.strike_increment(spot)
        centre = round(spot / inc) * inc
        strikes = [
            round(centre + k * inc, 2)
            for k in range(-strikes_per_side, strikes_per_side + 1)
            if centre + k * inc > 0
        ]
        # Share of the trading day elapsed, for cumulative option volume.
        session = cal.current_session(ts)
        today = cal.session(local_day)
        if session is not None:
            elapsed = (ts - session.open) / (session.close - session.open)
        else:
            elapsed = 0.0 if today is not None and ts < today.open else 1.0
        out: list[OptionContract] = []
        for n_exp, expiry in enumerate(monthly_expirations(cal, local_day, expirations)):
            exp_session = cal.session(expiry)
            assert exp_session is not None
            t = (exp_session.close - ts).total_seconds() / (365.0 * 86_400.0)
            k = np.array(strikes, dtype=np.float64)
            iv = self._smile(symbol, ts, spot, k, t)
            for kind in ("call", "put"):
                g = bs.greeks_array(kind, spot, k, t, RISK_FREE_RATE, iv, q)
                for j, strike in enumerate(strikes):
                    out.append(
                        self._contract(
                            symbol, ts, expiry, strike, kind, g, j, iv[j], spot, n_exp, elapsed
                        )
                    )
        out.sort(key=lambda c: (c.expiration, c.strike, c.option_type != "call"))
        return out

    def _contract(
        self,
        symbol: str,
        ts: datetime,
        expiry: date,
        strike: float,
        kind: OptionType,
        g: bs.GreeksArray,
        j: int,
        iv: float,
        spot: float,
        n_exp: int,
        elapsed: float,
    ) -> OptionContract:
        mid = float(g.price[j])
        half = max(0.01, min(0.025 * mid, 0.25))
        bid = max(0.0, math.floor((mid - half) * 100.0 + 1e-9) / 100.0)
        ask = math.ceil((mid + half) * 100.0 - 1e-9) / 100.0
        u_last, u_oi = units(self.seed, symbol, "opt", expiry, strike, kind, ts.isoformat())
        u_vol = unit(self.seed, symbol, "opt-oi", expiry, strike, kind, ts.date().isoformat())
        moneyness = math.log(strike / spot)
        weight = math.exp(-0.5 * (moneyness / 0.15) ** 2) / (1.0 + n_exp)
        base = self.model.params(symbol).avg_volume / 200.0 * weight
        open_interest = int(base * (0.5 + u_vol) * 5.0)
        volume = int(base * (0.2 + u_oi) * elapsed)
        return OptionContract(
            underlying=symbol,
            as_of=ts,
            expiration=expiry,
            strike=strike,
            option_type=kind,
            bid=round(bid, 2),
            ask=round(ask, 2),
            last=round(bid + u_last * (ask - bid), 2),
            implied_volatility=round(float(iv), 6),
            delta=float(g.delta[j]),
            gamma=float(g.gamma[j]),
            theta=float(g.theta[j]) / 365.0,
            vega=float(g.vega[j]),
            open_interest=open_interest,
            volume=volume,
            underlying_price=spot,
        )
