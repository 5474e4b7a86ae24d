"""Technical indicators on daily closes, numerically matching TA-Lib.

Every function takes a one-dimensional sequence of closes (oldest first) and returns a
``float64`` array of the same length, ``NaN`` where the indicator is still warming up,
exactly where TA-Lib's Python wrapper puts ``NaN``. After the warm-up the values agree
with TA-Lib (``SMA``, ``EMA``, ``RSI``, ``MACD``, ``BBANDS`` with ``matype=0``, default
compatibility, unstable period 0) to about 1e-12 relative; the unit tests hold them to
1e-9. The conventions matched, for a series ``x`` of length ``n``:

``sma(x, p)``
    Arithmetic mean of the last ``p`` closes; first value at index ``p-1``.
``ema(x, p)``
    ``k = 2/(p+1)``, ``y[t] = y[t-1] + k*(x[t] - y[t-1])``, seeded at index ``p-1`` with
    ``sma(x, p)[p-1]`` (TA-Lib's default, not the Metastock "first close" seed).
``rsi(x, p)``
    Wilder: the first ``p`` price changes are averaged simply (gains and losses
    separately), then smoothed with ``avg = (avg*(p-1) + change)/p``. The first value is
    at index ``p`` (it needs ``p`` changes, hence ``p+1`` closes). ``RSI = 100*g/(g+l)``
    and, as in TA-Lib, exactly ``0`` when ``g+l == 0`` (a perfectly flat window).
``macd(x, fast, slow, signal)``
    Both EMAs are aligned on index ``slow-1``: the slow EMA is seeded with the SMA of
    ``x[0:slow]``, the *fast* EMA with the SMA of ``x[slow-fast:slow]`` (not of
    ``x[0:fast]``, so its value differs from ``ema(x, fast)``, which starts earlier).
    The MACD line ``fast - slow`` therefore exists from ``slow-1``; the signal line is
    an EMA of it seeded with the SMA of its first ``signal`` values, first defined at
    ``slow+signal-2``. TA-Lib reports all three outputs (line, signal, histogram) only
    from ``slow+signal-2`` (index 33 for 12/26/9), and so do we: the MACD line at
    indices ``slow-1 .. slow+signal-3`` is computable but deliberately left ``NaN`` to
    agree with TA-Lib.
``bollinger(x, p, num_std)``
    Middle band ``sma(x, p)``; bands ``middle ± num_std * sd`` with sd the *population*
    standard deviation (``ddof=0``) of the same ``p`` closes; first value at ``p-1``.
    TA-Lib derives sd from ``E[x**2] - E[x]**2``, which loses precision when sd is tiny
    relative to the price (sd/price below ~1e-6); we use pandas' stable rolling variance,
    so there sd itself differs slightly, but the bands, dominated by the middle band,
    still agree to well under 1e-9 relative.

TA-Lib keeps rolling sums (SMA, Bollinger) as a running total, adding the newest close
and subtracting the oldest, so its rounding error grows with the largest price seen: on
a series that spans several orders of magnitude (a price that falls 1000-fold) TA-Lib's
own error exceeds 1e-9 relative. Pandas' rolling mean is compensated, so there our
values are the closer ones to the exact mean; on realistic daily series both agree to
about 1e-14.

Inputs must be finite (a ``NaN`` close raises ``ValueError``: TA-Lib would silently
propagate it through every later EMA value). Periods follow TA-Lib's ranges (2 to
100000; the MACD signal period may be 1). Where TA-Lib swaps ``fast`` and ``slow`` when
given in the wrong order, :func:`macd` raises ``ValueError`` instead.

Implementation: rolling windows are ``pandas.Series.rolling``; the EMA and Wilder
recursions are ``pandas.Series.ewm(alpha=..., adjust=False)`` run on the series from the
seed index onwards with the seed substituted for the first value, which is exactly the
TA-Lib recursion. No Python loop runs over rows.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]  # pandas ships no stubs/py.typed here

FloatArray = npt.NDArray[np.float64]
#: Anything numpy turns into a 1-d float array: a Series, an ndarray, a list of floats.
Closes = npt.ArrayLike

MIN_PERIOD: Final = 2
MAX_PERIOD: Final = 100_000

#: Output columns of :func:`compute_indicators`, in order (after ``day``).
INDICATOR_COLUMNS: Final[tuple[str, ...]] = (
    "sma_20",
    "sma_50",
    "sma_200",
    "ema_12",
    "ema_26",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
)


def _closes(close: Closes) -> FloatArray:
    values: FloatArray = np.asarray(close, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"close must be one-dimensional, got shape {values.shape}")
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f"close must be finite; position {bad} is {values[bad]}")
    return values


def _check_period(name: str, value: int, minimum: int = MIN_PERIOD) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not minimum <= value <= MAX_PERIOD:
        raise ValueError(f"{name} must be between {minimum} and {MAX_PERIOD}, got {value}")


def _nans(n: int) -> FloatArray:
    return np.full(n, np.nan, dtype=np.float64)


def _seeded_ewm(values: FloatArray, period: int, alpha: float, first: int = 0) -> FloatArray:
    """``y = y_prev + alpha*(x - y_prev)``, seeded with ``mean(values[first:first+period])``.

    The seed is placed at index ``first+period-1``; earlier outputs are ``NaN``. This is
    TA-Lib's ``INT_EMA`` (``alpha = 2/(period+1)``) and Wilder's smoothing
    (``alpha = 1/period``).
    """
    out = _nans(len(values))
    seed_at = first + period - 1
    if first < 0 or seed_at >= len(values):
        return out
    tail = values[seed_at:].copy()
    tail[0] = values[first : seed_at + 1].mean()
    smoothed = pd.Series(tail).ewm(alpha=alpha, adjust=False).mean()
    out[seed_at:] = smoothed.to_numpy(dtype=np.float64)
    return out


def sma(close: Closes, period: int) -> FloatArray:
    """Simple moving average; ``NaN`` before index ``period-1``."""
    _check_period("period", period)
    values = _closes(close)
    mean = pd.Series(values).rolling(period, min_periods=period).mean()
    result: FloatArray = mean.to_numpy(dtype=np.float64)
    return result


def ema(close: Closes, period: int) -> FloatArray:
    """Exponential moving average (``k = 2/(period+1)``) seeded with the first SMA.

    ``NaN`` before index ``period-1``.
    """
    _check_period("period", period)
    return _seeded_ewm(_closes(close), period, 2.0 / (period + 1))


def rsi(close: Closes, period: int = 14) -> FloatArray:
    """Wilder's relative strength index in [0, 100]; ``NaN`` before index ``period``."""
    _check_period("period", period)
    values = _closes(close)
    out = _nans(len(values))
    if len(values) <= period:
        return out
    change = np.diff(values)
    gains = np.where(change > 0.0, change, 0.0)
    losses = np.where(change < 0.0, -change, 0.0)
    avg_gain = _seeded_ewm(gains, period, 1.0 / period)[period - 1 :]
    avg_loss = _seeded_ewm(losses, period, 1.0 / period)[period - 1 :]
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        out[period:] = np.where(total == 0.0, 0.0, 100.0 * avg_gain / total)
    return out


def macd(
    close: Closes, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line, signal line and histogram, TA-Lib style (see the module docstring).

    All three are ``NaN`` before index ``slow+signal-2``.
    """
    _check_period("fast", fast)
    _check_period("slow", slow)
    _check_period("signal", signal, minimum=1)
    if fast >= slow:
        raise ValueError(f"fast ({fast}) must be shorter than slow ({slow})")
    values = _closes(close)
    slow_ema = _seeded_ewm(values, slow, 2.0 / (slow + 1))
    fast_ema = _seeded_ewm(values, fast, 2.0 / (fast + 1), first=slow - fast)
    line = fast_ema - slow_ema  # defined from slow-1
    signal_line = _seeded_ewm(line, signal, 2.0 / (signal + 1), first=slow - 1)
    line[: slow + signal - 2] = np.nan  # TA-Lib's output starts with the signal line
    return line, signal_line, line - signal_line


def bollinger(
    close: Closes, period: int = 20, num_std: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Upper, middle and lower Bollinger bands (SMA ± ``num_std`` population sd).

    ``NaN`` before index ``period-1``.
    """
    _check_period("period", period)
    if not np.isfinite(num_std) or num_std < 0:
        raise ValueError(f"num_std must be finite and >= 0, got {num_std}")
    values = _closes(close)
    window = pd.Series(values).rolling(period, min_periods=period)
    middle: FloatArray = window.mean().to_numpy(dtype=np.float64)
    sigma: FloatArray = window.std(ddof=0).to_numpy(dtype=np.float64)
    width = num_std * sigma
    return middle + width, middle, middle - width


def compute_indicators(bars: pd.DataFrame) -> pd.DataFrame:
    """Every stored indicator for one symbol's daily bars.

    ``bars`` needs columns ``day`` and ``close`` (other columns are ignored; order does
    not matter: rows are sorted by ``day``; a repeated day raises ``ValueError``). The
    result has one row per day, columns ``day`` followed by :data:`INDICATOR_COLUMNS`,
    ``float64`` values with ``NaN`` during each indicator's warm-up (stored as NULL).
    """
    missing = {"day", "close"} - set(bars.columns)
    if missing:
        raise ValueError(f"bars lack column(s): {', '.join(sorted(missing))}")
    ordered = bars.sort_values("day", kind="stable").reset_index(drop=True)
    duplicated = ordered["day"].duplicated()
    if duplicated.any():
        raise ValueError(f"bars repeat day {ordered['day'][duplicated].iloc[0]}")
    close = _closes(ordered["close"].to_numpy(dtype=np.float64))
    macd_line, macd_signal, macd_hist = macd(close, 12, 26, 9)
    bb_upper, bb_middle, bb_lower = bollinger(close, 20, 2.0)
    columns: dict[str, FloatArray] = {
        "sma_20": sma(close, 20),
        "sma_50": sma(close, 50),
        "sma_200": sma(close, 200),
        "ema_12": ema(close, 12),
        "ema_26": ema(close, 26),
        "rsi_14": rsi(close, 14),
        "macd": macd_line,
        "macd_signal": macd_signal,
        "macd_hist": macd_hist,
        "bb_upper": bb_upper,
        "bb_middle": bb_middle,
        "bb_lower": bb_lower,
    }
    return pd.DataFrame({"day": ordered["day"], **columns})
