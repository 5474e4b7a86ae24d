"""Trading signals derived from one symbol's stored indicators.

:func:`derive_signals` looks at the indicator row for ``day`` and, for the crossing
strategies, the row just before it (the previous trading day present in the data, however
many calendar days earlier), and returns at most one :class:`SignalDecision` per strategy,
always in the order of :data:`STRATEGIES`. A strategy whose inputs are missing (``day``
absent, a ``NaN``/NULL warm-up value, no previous row, no close for ``day``) produces no
decision rather than a guess. The function is pure and deterministic.

Strategies (``buy``/``sell`` strength in ``(0, 1]``; ``hold`` always has strength ``0``):

``sma_cross``
    Inputs: ``sma_50`` and ``sma_200`` on ``day`` and on the previous row. Golden cross
    (``sma_50 - sma_200`` was ``<= 0`` and is now ``> 0``) → ``buy``; death cross (was
    ``>= 0``, now ``< 0``) → ``sell``; both strength 1 (a cross is an event, not a
    degree). Otherwise ``hold``, the reason naming the prevailing trend. A gap within
    :data:`CROSS_TOLERANCE` times the price level (the close, or the larger of the two
    values) counts as ``0``: rounding noise between converged averages is no cross.
``rsi``
    Input: ``rsi_14`` on ``day``. Below 30 → ``buy`` with strength ``(30 - rsi)/30``;
    above 70 → ``sell`` with strength ``(rsi - 70)/30`` (so 0 at the threshold, 1 at
    RSI 0 or 100); otherwise ``hold``. TA-Lib reports RSI 0 for a perfectly flat window;
    when the closes show the last 15 closes equal, the decision is ``hold`` instead of a
    full-strength ``buy`` (a halted or illiquid symbol is not oversold).
``macd_cross``
    Inputs: ``macd`` and ``macd_signal`` on ``day`` and on the previous row. The MACD line
    crossing above its signal line (difference ``<= 0`` then ``> 0``) → ``buy``, below
    (``>= 0`` then ``< 0``) → ``sell``, strength 1; otherwise ``hold``. The same tie
    tolerance as ``sma_cross`` applies (a linear ramp's converged MACD gives no cross).
``bollinger``
    Inputs: ``bb_upper``, ``bb_middle``, ``bb_lower`` and the close on ``day``. Close
    below the lower band → ``buy``, above the upper band → ``sell``; strength is the
    distance beyond the band in units of the band's half-width (``middle - lower``),
    capped at 1 (1 when the bands have zero width). A close on or inside the bands →
    ``hold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal, cast, get_args

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # pandas ships no stubs/py.typed here

Signal = Literal["buy", "sell", "hold"]

STRATEGIES: Final[tuple[str, ...]] = ("sma_cross", "rsi", "macd_cross", "bollinger")
RSI_OVERSOLD: Final = 30.0
RSI_OVERBOUGHT: Final = 70.0
RSI_WINDOW_CLOSES: Final = 15  # rsi_14 looks at 14 changes, i.e. 15 closes
#: Relative to the price level, a gap this small is a tie, not a side: the EMAs of a
#: steady trend converge and then differ only by rounding (about 1e-14 of the price),
#: which must not read as a cross. 1e-9 of the price is far below any real move.
CROSS_TOLERANCE: Final = 1e-9


@dataclass(frozen=True, slots=True)
class SignalDecision:
    """One strategy's verdict for one (symbol, day); the symbol is the caller's."""

    strategy: str
    signal: Signal
    strength: float
    reason: str

    def __post_init__(self) -> None:
        if self.signal not in get_args(Signal):
            raise ValueError(f"signal must be one of {get_args(Signal)}, got {self.signal!r}")
        if not 0.0 <= self.strength <= 1.0:  # also rejects NaN
            raise ValueError(f"strength must be in [0, 1], got {self.strength}")


def _day_key(value: object) -> pd.Timestamp:
    return pd.Timestamp(value).normalize()


def _by_day(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    if "day" not in frame.columns:
        raise ValueError(f"{what} need a 'day' column")
    keyed = frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame["day"])).normalize())
    keyed = keyed.sort_index(kind="stable")
    if keyed.index.has_duplicates:
        raise ValueError(f"{what} repeat day {keyed.index[keyed.index.duplicated()][0].date()}")
    return keyed


def _close_series(closes: pd.Series | pd.DataFrame) -> pd.Series:
    if isinstance(closes, pd.DataFrame):
        if "close" not in closes.columns:
            raise ValueError("closes need a 'close' column")
        series = _by_day(closes, "closes")["close"]
    else:
        series = closes.copy()
        series.index = pd.DatetimeIndex(pd.to_datetime(series.index)).normalize()
        series = series.sort_index(kind="stable")
        if series.index.has_duplicates:
            raise ValueError("closes repeat a day")
    return series.astype(np.float64)


def _finite(value: object) -> float | None:
    if value is None or pd.isna(value):
        return None
    number = float(cast(float, value))
    return number if math.isfinite(number) else None


def _number(row: pd.Series | None, column: str) -> float | None:
    """The finite value of ``column`` in ``row``, or None (missing row, column or value)."""
    if row is None or column not in row.index:
        return None
    return _finite(row[column])


def _cross(
    strategy: str,
    fast: str,
    slow: str,
    today: pd.Series,
    previous: pd.Series | None,
    up: str,
    down: str,
    scale: float,
) -> SignalDecision | None:
    values = (
        _number(today, fast),
        _number(today, slow),
        _number(previous, fast),
        _number(previous, slow),
    )
    if any(v is None for v in values):
        return None
    fast_now, slow_now, fast_before, slow_before = cast(tuple[float, float, float, float], values)
    tolerance = CROSS_TOLERANCE * max(abs(scale), abs(fast_now), abs(slow_now))
    gap_now = _level(fast_now - slow_now, tolerance)
    gap_before = _level(fast_before - slow_before, tolerance)
    state = f"{fast} {fast_now:.4f} vs {slow} {slow_now:.4f}"
    if gap_before <= 0.0 < gap_now:
        return SignalDecision(strategy, "buy", 1.0, f"{up}: {fast} crossed above {slow} ({state})")
    if gap_before >= 0.0 > gap_now:
        return SignalDecision(
            strategy, "sell", 1.0, f"{down}: {fast} crossed below {slow} ({state})"
        )
    side = "above" if gap_now > 0 else "below" if gap_now < 0 else "level with"
    return SignalDecision(strategy, "hold", 0.0, f"no cross: {fast} stays {side} {slow} ({state})")


def _level(gap: float, tolerance: float) -> float:
    """``gap``, or 0 when it is within rounding noise of a tie."""
    return 0.0 if abs(gap) <= tolerance else gap


def _sma_cross(today: pd.Series, previous: pd.Series | None, scale: float) -> SignalDecision | None:
    return _cross(
        "sma_cross", "sma_50", "sma_200", today, previous, "golden cross", "death cross", scale
    )


def _macd_cross(
    today: pd.Series, previous: pd.Series | None, scale: float
) -> SignalDecision | None:
    return _cross(
        "macd_cross",
        "macd",
        "macd_signal",
        today,
        previous,
        "bullish cross",
        "bearish cross",
        scale,
    )


def _rsi(today: pd.Series, recent_closes: pd.Series) -> SignalDecision | None:
    value = _number(today, "rsi_14")
    if value is None:
        return None
    if value < RSI_OVERSOLD:
        window = recent_closes.iloc[-RSI_WINDOW_CLOSES:]
        if value == 0.0 and len(window) == RSI_WINDOW_CLOSES and window.nunique() == 1:
            return SignalDecision("rsi", "hold", 0.0, "RSI 0 from a flat window: price unchanged")
        strength = min(1.0, (RSI_OVERSOLD - value) / RSI_OVERSOLD)
        return SignalDecision("rsi", "buy", strength, f"RSI {value:.2f} < 30 (oversold)")
    if value > RSI_OVERBOUGHT:
        strength = min(1.0, (value - RSI_OVERBOUGHT) / (100.0 - RSI_OVERBOUGHT))
        return SignalDecision("rsi", "sell", strength, f"RSI {value:.2f} > 70 (overbought)")
    return SignalDecision("rsi", "hold", 0.0, f"RSI {value:.2f} within [30, 70]")


def _bollinger(today: pd.Series, close: float | None) -> SignalDecision | None:
    upper = _number(today, "bb_upper")
    middle = _number(today, "bb_middle")
    lower = _number(today, "bb_lower")
    if upper is None or middle is None or lower is None or close is None:
        return None
    bands = f"close {close:.4f}, bands [{lower:.4f}, {upper:.4f}]"
    if close < lower:
        half_width = middle - lower
        strength = 1.0 if half_width <= 0 else min(1.0, (lower - close) / half_width)
        return SignalDecision("bollinger", "buy", strength, f"close below lower band ({bands})")
    if close > upper:
        half_width = upper - middle
        strength = 1.0 if half_width <= 0 else min(1.0, (close - upper) / half_width)
        return SignalDecision("bollinger", "sell", strength, f"close above upper band ({bands})")
    return SignalDecision("bollinger", "hold", 0.0, f"close within the bands ({bands})")


def derive_signals(
    indicators: pd.DataFrame, closes: pd.Series | pd.DataFrame, day: date
) -> list[SignalDecision]:
    """Each strategy's decision for ``day`` (see the module docstring for the rules).

    ``indicators`` has a ``day`` column and the indicator columns of
    :func:`marketq.worker.analytics.indicators.compute_indicators` (missing columns or
    ``NaN`` values just silence the strategies that need them). ``closes`` is either a
    Series of closes indexed by day or a DataFrame with ``day`` and ``close`` columns.
    Days may be ``datetime.date`` or timestamps, in any order; a repeated day raises
    ``ValueError``. Returns an empty list when ``day`` has no indicator row.
    """
    table = _by_day(indicators, "indicators")
    key = _day_key(day)
    if key not in table.index:
        return []
    position = int(table.index.get_loc(key))
    today = table.iloc[position]
    previous = table.iloc[position - 1] if position > 0 else None

    close_by_day = _close_series(closes)
    recent_closes = close_by_day.loc[:key].dropna()
    close = _finite(close_by_day[key]) if key in close_by_day.index else None

    # Crossing gaps are in price units: ties are judged relative to the price level.
    scale = close if close is not None else 0.0
    candidates = (
        _sma_cross(today, previous, scale),
        _rsi(today, recent_closes),
        _macd_cross(today, previous, scale),
        _bollinger(today, close),
    )
    return [decision for decision in candidates if decision is not None]
