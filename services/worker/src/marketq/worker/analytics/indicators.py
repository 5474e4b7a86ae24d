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
    relative to the price; pandas' add/remove rolling variance carries the rounding of
    the largest prices seen into later windows (after a 1000-fold fall its sd was off
    by 7e-7 relative). We take each window's deviations from that window's own mean
    (two passes per window), so the sd is exact to a few ulps in every window and at
    least as close to the exact value as TA-Lib's.

TA-Lib keeps rolling sums (SMA, Bollinger) as a running total, adding the newest close
and subtracting the oldest, so its rounding error grows with the largest price seen: on
a series that spans several orders of magnitude (a price that falls 1000-fold) TA-Lib's
own error exceeds 1e-9 relative. Pandas' rolling mean is compensated, so there our
values are the closer ones to the exact mean; on realistic daily series both agree to
about 1e-14.

Missing closes: leading ``NaN`` are skipped as TA-Lib's wrapper skips them (every
output is ``NaN`` there and each indicator warms up from the first finite close, giving
exactly what the series without them gives). A ``NaN`` after the first finite close is a
gap and raises ``ValueError`` naming its position (TA-Lib would silently propagate it
through every later EMA value); infinities are refused anywhere. Periods follow TA-Lib's
ranges (2 to 100000; the MACD signal period may be 1). Where TA-Lib swaps ``fast`` and
``slow`` when given in the wrong order, :func:`macd` raises ``ValueError`` instead.

Implementation: rolling windows are ``pandas.Series.rolling``; the EMA and Wilder
recursions are ``pandas.Series.ewm(alpha=..., adjust=False)`` run on the series from the
seed index onwards with the seed substituted for the first value, which is exactly the
TA-Lib recursion; the Bollinger sd works on ``sliding_window_view`` blocks. No Python
loop runs over rows.
"""

from __future__ import annotations

from collections.abc import Callable
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
    """The closes as a float array: finite, after an optional run of leading ``NaN``."""
    values: FloatArray = np.asarray(close, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"close must be one-dimensional, got shape {values.shape}")
    if np.isinf(values).any():
        bad = int(np.flatnonzero(np.isinf(values))[0])
        raise ValueError(f"close must be finite; position {bad} is {values[bad]}")
    start = _first_valid(values)
    gaps = np.flatnonzero(np.isnan(values[start:]))
    if gaps.size:
        bad = start + int(gaps[0])
        raise ValueError(
            f"close at position {bad} is NaN: a gap inside the series (only leading NaNs "
            "are skipped); fill or drop the missing close"
        )
    return values


def _first_valid(values: FloatArray) -> int:
    """Index of the first non-``NaN`` value (``len(values)`` when there is none)."""
    finite = np.flatnonzero(~np.isnan(values))
    return int(finite[0]) if finite.size else len(values)


def _after_leading_nans(
    values: FloatArray, compute: Callable[[FloatArray], FloatArray]
) -> FloatArray:
    """``compute`` on the series from its first finite close, ``NaN``-padded in front
    (TA-Lib's wrapper skips leading ``NaN`` the same way)."""
    start = _first_valid(values)
    if start == 0:
        return compute(values)
    out = _nans(len(values))
    if start < len(values):
        out[start:] = compute(values[start:])
    return out


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
    return _after_leading_nans(_closes(close), lambda values: _sma(values, period))


def _sma(values: FloatArray, period: int) -> FloatArray:
    mean = pd.Series(values).rolling(period, min_periods=period).mean()
    result: FloatArray = mean.to_numpy(dtype=np.float64)
    return result


def ema(close: Closes, period: int) -> FloatArray:
    """Exponential moving average (``k = 2/(period+1)``) seeded with the first SMA.

    ``NaN`` before index ``period-1``.
    """
    _check_period("period", period)
    return _after_leading_nans(
        _closes(close), lambda values: _seeded_ewm(values, period, 2.0 / (period + 1))
    )


def rsi(close: Closes, period: int = 14) -> FloatArray:
    """Wilder's relative strength index in [0, 100]; ``NaN`` before index ``period``."""
    _check_period("period", period)
    return _after_leading_nans(_closes(close), lambda values: _rsi(values, period))


def _rsi(values: FloatArray, period: int) -> FloatArray:
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
    start = _first_valid(values)
    line, signal_line, histogram = _nans(len(values)), _nans(len(values)), _nans(len(values))
    if start < len(values):
        tail = _macd(values[start:], fast, slow, signal)
        line[start:], signal_line[start:], histogram[start:] = tail
    return line, signal_line, histogram


def _macd(
    values: FloatArray, fast: int, slow: int, signal: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
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
    middle = _after_leading_nans(values, lambda tail: _sma(tail, period))
    width = num_std * _after_leading_nans(values, lambda tail: _rolling_sd(tail, period))
    return middle + width, middle, middle - width


def _rolling_sd(values: FloatArray, period: int) -> FloatArray:
    """Population sd of each ``period``-window, two-pass per window.

    Each window's deviations are taken from that window's own mean, so no error carries
    from one window to the next (a running sum of squares, or an add/remove update,
    keeps the rounding of the largest prices seen long after a price has fallen).
    """
    out = _nans(len(values))
    if len(values) < period:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(values, period)
    # In blocks, so the temporary deviations stay small on long series.
    for lo in range(0, len(windows), _SD_BLOCK):
        block = windows[lo : lo + _SD_BLOCK]
        deviations = block - block.mean(axis=1, keepdims=True)
        out[period - 1 + lo : period - 1 + lo + len(block)] = np.sqrt(
            np.mean(deviations * deviations, axis=1)
        )
    return out


_SD_BLOCK: Final = 4096


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
    try:
        close = _closes(ordered["close"].to_numpy(dtype=np.float64))
    except ValueError:
        missing_close = ordered["close"].isna().to_numpy()
        first = _first_valid(np.where(missing_close, np.nan, 0.0))
        gaps = np.flatnonzero(missing_close[first:])
        if gaps.size:
            day = ordered["day"].iloc[first + int(gaps[0])]
            raise ValueError(
                f"close of {day} is missing between earlier and later closes; indicators "
                "skip only leading missing closes: fill or drop that day's bar"
            ) from None
        raise
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
