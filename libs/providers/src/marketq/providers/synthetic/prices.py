"""The price model every data kind builds on: per-symbol parameters, the daily log-price
random walk, daily bars and the intraday path of a session.

Each symbol has hash-derived parameters: a base price (20..600), an annual volatility
(0.15..0.55), a drift, an average daily volume. The log price follows a random walk with
fat-tailed (Student-t, 4 dof) daily returns on weekdays and no movement at weekends; the
level on ``ANCHOR_DATE`` is the base price. Returns are drawn in yearly blocks indexed by
day of year, so the close on a day is a pure function of ``(seed, symbol, day)`` whatever
range was asked for, and an exchange holiday does not shift any other day's price. Daily
bars exist on exchange sessions only; the open gaps from the previous close, and
high/low are exact draws of the maximum/minimum of a Brownian bridge from open to close.
Prices are rounded to cents (1/100 of a cent under $1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from marketq.common.scheduling.calendar import MarketCalendar
from marketq.providers.base import EarningsTime
from marketq.providers.synthetic.draws import rng, unit
from marketq.providers.synthetic.memo import LRU
from marketq.providers.synthetic.reference import KNOWN, is_payer

FloatArray = npt.NDArray[np.float64]

ANCHOR_DATE = date(2025, 1, 1)
"""The log-price level at the start of this day is the symbol's base price."""
_TRADING_DAYS = 252.0


def round_price(x: float) -> float:
    return round(x, 2) if x >= 1.0 else round(x, 4)


def round_prices(x: FloatArray) -> FloatArray:
    return np.where(x >= 1.0, np.round(x, 2), np.round(x, 4))


def tick_size(price: float) -> float:
    return 0.01 if price >= 1.0 else 0.0001


@dataclass(frozen=True, slots=True)
class Params:
    base_price: float
    volatility: float
    drift: float
    avg_volume: float
    spread_bps: float
    shares: float
    price_to_sales: float
    margin: float
    growth: float
    asset_turnover: float
    leverage: float
    dividend_yield: float
    div_month_offset: int
    div_day: int
    pay_lag: int
    declare_lag: int
    report_lag: int
    report_time: EarningsTime

    @property
    def sigma_d(self) -> float:
        return self.volatility / math.sqrt(_TRADING_DAYS)

    @property
    def mu_d(self) -> float:
        return (self.drift - 0.5 * self.volatility**2) / _TRADING_DAYS


@dataclass(frozen=True, slots=True)
class YearBars:
    """Daily bars of one (symbol, year); arrays aligned with ``days``."""

    days: list[date]
    ordinals: npt.NDArray[np.int64]
    index: dict[date, int]
    minutes: list[int]
    open_log: FloatArray
    high_log: FloatArray
    low_log: FloatArray
    close_log: FloatArray
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    close_array: FloatArray
    volume: list[int]


class PriceModel:
    """Parameters and price blocks of every symbol for one seed on one exchange calendar,
    memoised per (symbol, year) and (symbol, day)."""

    def __init__(self, seed: int, calendar: MarketCalendar) -> None:
        self.seed = seed
        self.calendar = calendar
        self._params: dict[str, Params] = {}
        self._year_start: dict[tuple[str, int], float] = {}
        self._levels: LRU[tuple[str, int], FloatArray] = LRU(8192)
        self._bars: LRU[tuple[str, int], YearBars] = LRU(8192)
        self._paths: LRU[tuple[str, date], list[float]] = LRU(4096)

    # --- parameters ---------------------------------------------------------------
    def params(self, symbol: str) -> Params:
        p = self._params.get(symbol)
        if p is None:
            p = self._params[symbol] = self._make_params(symbol)
        return p

    def _make_params(self, symbol: str) -> Params:
        s = self.seed

        def u(tag: str) -> float:
            return unit(s, symbol, "param", tag)

        known = KNOWN.get(symbol)
        vol = 0.15 + 0.40 * u("vol")
        if known is not None and known.volatility is not None:
            vol = known.volatility * (0.9 + 0.2 * u("vol"))
        if known is not None:
            dy = known.dividend_yield
        else:
            dy = 0.004 + 0.036 * u("yield") if is_payer(symbol) else 0.0
        return Params(
            base_price=20.0 * math.exp(math.log(30.0) * u("base")),  # 20..600, log-uniform
            volatility=vol,
            drift=0.02 + 0.10 * u("drift"),
            avg_volume=3e5 * math.exp(math.log(200.0) * u("volume")),  # 0.3M..60M shares
            spread_bps=1.0 + 9.0 * u("spread"),
            shares=2e8 * math.exp(math.log(60.0) * u("shares")),
            price_to_sales=1.0 + 9.0 * u("ps"),
            margin=-0.04 + 0.32 * u("margin"),
            growth=-0.01 + 0.13 * u("growth"),
            asset_turnover=0.3 + 1.5 * u("turnover"),
            leverage=0.3 + 0.5 * u("leverage"),
            dividend_yield=dy,
            div_month_offset=int(unit(symbol, "div-month") * 3),
            div_day=3 + int(unit(symbol, "div-day") * 20),
            pay_lag=14 + int(u("pay-lag") * 15),
            declare_lag=25 + int(u("declare-lag") * 8),
            report_lag=21 + int(u("report-lag") * 15),
            report_time="bmo" if unit(symbol, "report-time") < 0.45 else "amc",
        )

    # --- price path -----------------------------------------------------------------
    def returns(self, symbol: str, year: int) -> FloatArray:
        """Daily log returns of ``year`` indexed by day of year - 1 (0 at weekends)."""
        p = self.params(symbol)
        g = rng(self.seed, symbol, "returns", year)
        z = g.standard_t(4, 366) / math.sqrt(2.0)  # unit variance, fat tails
        r: FloatArray = p.mu_d + p.sigma_d * z
        first = date(year, 1, 1)
        n_days = (date(year + 1, 1, 1) - first).days
        weekday = (first.weekday() + np.arange(366)) % 7
        r[(weekday >= 5) | (np.arange(366) >= n_days)] = 0.0
        return r

    def start_level(self, symbol: str, year: int) -> float:
        """Log price at the start of 1 January of ``year``."""
        key = (symbol, year)
        cached = self._year_start.get(key)
        if cached is not None:
            return cached
        anchor = ANCHOR_DATE.year
        if year == anchor:
            level = math.log(self.params(symbol).base_price)
        elif year > anchor:
            level = self.start_level(symbol, year - 1) + float(self.returns(symbol, year - 1).sum())
        else:
            level = self.start_level(symbol, year + 1) - float(self.returns(symbol, year).sum())
        self._year_start[key] = level
        return level

    def warm_start_levels(self, symbol: str, year: int) -> None:
        # Fill the chain towards the anchor iteratively (no deep recursion).
        anchor = ANCHOR_DATE.year
        step = 1 if year > anchor else -1
        for y in range(anchor, year, step):
            self.start_level(symbol, y)

    def year_levels(self, symbol: str, year: int) -> FloatArray:
        """Log price at the end of each day of ``year`` (index: day of year - 1)."""

        def make() -> FloatArray:
            self.warm_start_levels(symbol, year)
            return self.start_level(symbol, year) + np.cumsum(self.returns(symbol, year))

        return self._levels.get((symbol, year), make)

    def level(self, symbol: str, day: date) -> float:
        return float(self.year_levels(symbol, day.year)[day.timetuple().tm_yday - 1])

    def year_bars(self, symbol: str, year: int) -> YearBars:
        return self._bars.get((symbol, year), lambda: self._make_bars(symbol, year))

    def _make_bars(self, symbol: str, year: int) -> YearBars:
        cal = self.calendar
        p = self.params(symbol)
        lo_day = max(date(year, 1, 1), cal.first_session)
        hi_day = min(date(year, 12, 31), cal.last_session)
        days = cal.session_days(lo_day, hi_day) if lo_day <= hi_day else []
        minutes = cal.session_minutes(lo_day, hi_day) if lo_day <= hi_day else []
        n = len(days)
        levels = self.year_levels(symbol, year)
        jan1 = date(year, 1, 1).toordinal()
        doy = np.array([d.toordinal() - jan1 for d in days], dtype=np.int64)
        close_log = levels[doy] if n else np.zeros(0)
        prev_log = np.empty(n)
        if n:
            prev_log[1:] = close_log[:-1]
            first = days[0]
            prev_day = (
                cal.previous_session(first)
                if first > cal.first_session
                else first - timedelta(days=1)
            )
            prev_log[0] = self.level(symbol, prev_day)
        regular = max(minutes) if minutes else 390
        frac = np.array(minutes, dtype=np.float64) / float(regular)
        g = rng(self.seed, symbol, "bars", year)
        z = g.standard_normal((2, 366))[:, doy]
        u = g.random((2, 366))[:, doy]
        sd = p.sigma_d
        open_log = prev_log + 0.3 * sd * z[0]
        var = (0.85 * sd) ** 2 * frac  # intraday variance of the log price
        a, b = open_log, close_log
        # Exact draws of the max / min of a Brownian bridge from a to b with variance var.
        high_log = 0.5 * (a + b + np.sqrt((b - a) ** 2 - 2.0 * var * np.log1p(-u[0])))
        low_log = 0.5 * (a + b - np.sqrt((b - a) ** 2 - 2.0 * var * np.log1p(-u[1])))
        move = np.abs(close_log - prev_log) / sd
        volume = p.avg_volume * np.exp(0.3 * z[1] - 0.045) * (0.8 + 0.25 * move) * frac
        close_rounded = round_prices(np.exp(close_log))
        return YearBars(
            days=days,
            ordinals=doy + jan1,
            index={d: i for i, d in enumerate(days)},
            minutes=minutes,
            open_log=open_log,
            high_log=high_log,
            low_log=low_log,
            close_log=close_log,
            open=round_prices(np.exp(open_log)).tolist(),
            high=round_prices(np.exp(high_log)).tolist(),
            low=round_prices(np.exp(low_log)).tolist(),
            close=close_rounded.tolist(),
            close_array=close_rounded,
            volume=np.maximum(np.rint(volume), 1000).astype(np.int64).tolist(),
        )

    def bar_at(self, symbol: str, day: date) -> tuple[YearBars, int]:
        bars = self.year_bars(symbol, day.year)
        i = bars.index.get(day)
        if i is None:
            raise ValueError(f"{day.isoformat()} is not a {self.calendar.code} session")
        return bars, i

    def close(self, symbol: str, day: date) -> float:
        bars, i = self.bar_at(symbol, day)
        return bars.close[i]

    def previous_close(self, symbol: str, day: date) -> float:
        cal = self.calendar
        if day > cal.first_session:
            return self.close(symbol, cal.previous_session(day))
        return round_price(math.exp(self.level(symbol, day - timedelta(days=1))))

    def day_path(self, symbol: str, day: date) -> list[float]:
        """Prices at each minute boundary of the session: [open, ..., close] (n + 1)."""

        def make() -> list[float]:
            bars, i = self.bar_at(symbol, day)
            n = bars.minutes[i]
            a, b = float(bars.open_log[i]), float(bars.close_log[i])
            hi, lo = float(bars.high_log[i]), float(bars.low_log[i])
            g = rng(self.seed, symbol, "path", day.isoformat())
            w = np.concatenate(([0.0], np.cumsum(g.standard_normal(n))))
            k = np.arange(n + 1) / n
            bridge = w - k * w[-1]
            line = a + (b - a) * k
            up, down = bridge > 0, bridge < 0
            alpha = float(np.min((hi - line[up]) / bridge[up])) if up.any() else 0.0
            beta = float(np.min((line[down] - lo) / -bridge[down])) if down.any() else 0.0
            y = line + np.where(up, alpha * bridge, beta * bridge)
            y[0], y[-1] = a, b
            prices = round_prices(np.exp(np.clip(y, lo, hi)))
            return list(prices.tolist())

        return self._paths.get((symbol, day), make)
