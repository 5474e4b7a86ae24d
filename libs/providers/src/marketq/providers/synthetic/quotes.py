"""Quotes and daily bars.

Inside a session, minute ``t`` reads a one-minute Brownian-bridge path from the day's open
to its close that is scaled to touch exactly the day's high and low, so every quote lies
within that day's bar. Volume is cumulative within the session along a U-shaped intraday
profile (strictly increasing, reaching the bar's volume in the last minute). **Outside a
session** (before the open, after the close, weekends, holidays) the quote is the last
completed session's closing state: ``price`` = that close, ``volume`` = that session's
total volume, ``change`` = that close vs the close before it, with the usual bid/ask
spread around the close; ``ts`` is still the requested minute. Bid < price < ask always.

``adj_close`` is the close adjusted (multiplicatively) for the synthetic dividends with an
ex-date after the bar and on or before ``ADJ_REFERENCE_DATE`` (4 decimals); bars after
that date have ``adj_close == close``. A fixed reference keeps bars immutable (an upsert of
an old bar never changes); the price path itself does not drop on ex-dates.
"""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from marketq.providers.base import DailyBar, Quote
from marketq.providers.synthetic.dates import aware_utc, floor_minute
from marketq.providers.synthetic.dividends import Dividends
from marketq.providers.synthetic.draws import units
from marketq.providers.synthetic.prices import FloatArray, PriceModel, round_price, tick_size
from marketq.providers.synthetic.reference import check_symbol

ADJ_REFERENCE_DATE = date(2026, 1, 1)
"""``adj_close`` accounts for dividends with ex-dates up to this day."""

_MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_VOLUME_PROFILE_C = 3.0  # U-shaped intraday volume density 1 + c (2x - 1)^2


class Quotes:
    """``quote`` and ``daily_bars`` on the price model."""

    def __init__(self, model: PriceModel, dividends: Dividends) -> None:
        self.model = model
        self.seed = model.seed
        self.calendar = model.calendar
        self._dividends = dividends

    def quote(self, symbol: str, at: datetime) -> Quote:
        """The quote at the minute containing ``at`` (see the module doc off-session)."""
        check_symbol(symbol)
        ts = floor_minute(aware_utc(at, "at"))
        cal = self.calendar
        session = cal.current_session(ts)
        if session is not None:
            bars, i = self.model.bar_at(symbol, session.day)
            n = bars.minutes[i]
            t = int((ts - session.open) // _MINUTE)
            price = self.model.day_path(symbol, session.day)[t]
            x = (t + 1) / n
            c = _VOLUME_PROFILE_C
            share = (x + c * ((2 * x - 1) ** 3 + 1) / 6) / (1 + c / 3)
            volume = int(bars.volume[i] * share)
            day = session.day
        else:
            day = cal.last_completed_session(ts).day
            bars, i = self.model.bar_at(symbol, day)
            price = bars.close[i]
            volume = bars.volume[i]
        prev_close = self.model.previous_close(symbol, day)
        p = self.model.params(symbol)
        tick = tick_size(price)
        half = max(tick, round(price * p.spread_bps / 2e4 / tick) * tick)
        minute_key = int((ts - _EPOCH) // _MINUTE)
        u1, u2 = units(self.seed, symbol, "size", minute_key)
        change = price - prev_close
        return Quote(
            symbol=symbol,
            ts=ts,
            price=price,
            bid=round_price(price - half),
            ask=round_price(price + half),
            bid_size=100 * (1 + int(u1 * 40)),
            ask_size=100 * (1 + int(u2 * 40)),
            volume=volume,
            change=round(change, 4),
            change_percent=round(100.0 * change / prev_close, 4),
        )

    def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        """Bars of every exchange session in [start, end]."""
        check_symbol(symbol)
        if start > end:
            return []
        cal = self.calendar
        # Validate the range against the calendar (clear error outside it).
        cal.is_trading_day(start)
        cal.is_trading_day(end)
        ex_ords, suffix = self._adjustment(symbol, start)
        ref = ADJ_REFERENCE_DATE.toordinal()
        out: list[DailyBar] = []
        for year in range(start.year, end.year + 1):
            bars = self.model.year_bars(symbol, year)
            lo = bisect.bisect_left(bars.days, start)
            hi = bisect.bisect_right(bars.days, end)
            if lo >= hi:
                continue
            ords = bars.ordinals[lo:hi]
            close = bars.close_array[lo:hi]
            factor = suffix[np.searchsorted(ex_ords, ords, side="right")]
            adj = np.where(ords < ref, np.round(close * factor, 4), close).tolist()
            for j, i in enumerate(range(lo, hi)):
                out.append(
                    DailyBar(
                        symbol=symbol,
                        day=bars.days[i],
                        open=bars.open[i],
                        high=bars.high[i],
                        low=bars.low[i],
                        close=bars.close[i],
                        adj_close=adj[j],
                        volume=bars.volume[i],
                    )
                )
        return out

    def _adjustment(self, symbol: str, start: date) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """For ``adj_close``: ex-date ordinals in [start, ADJ_REFERENCE_DATE] and ``suffix``,
        where ``suffix[k]`` is the product of the (1 - amount / previous close) factors of
        dividends k, k+1, ...: the adjustment of a day before the k-th ex-date."""
        if start >= ADJ_REFERENCE_DATE or self.model.params(symbol).dividend_yield <= 0:
            return np.zeros(0, dtype=np.int64), np.ones(1)
        end = min(ADJ_REFERENCE_DATE, self.calendar.last_session)
        divs = self._dividends.dividends(symbol, start, end)
        ex_ords = np.array([d.ex_date.toordinal() for d in divs], dtype=np.int64)
        factors = [1.0 - d.amount / self.model.previous_close(symbol, d.ex_date) for d in divs]
        suffix = np.ones(len(divs) + 1)
        for k in range(len(divs) - 1, -1, -1):
            suffix[k] = suffix[k + 1] * factors[k]
        return ex_ords, suffix
