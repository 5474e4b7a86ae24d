"""Numerical edge cases of the indicators (issue 13: Bollinger precision, MACD crossover
tolerance, NaN closes), each checked against TA-Lib or an exact rational computation."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from marketq.worker.analytics.indicators import (
    INDICATOR_COLUMNS,
    bollinger,
    compute_indicators,
    ema,
    macd,
    rsi,
    sma,
)
from marketq.worker.analytics.signals import derive_signals


def exact_population_sd(window: np.ndarray) -> float:
    """The population standard deviation of ``window`` from exact rationals."""
    values = [Fraction(float(v)) for v in window]
    mean = sum(values, Fraction(0)) / len(values)
    variance = sum(((v - mean) ** 2 for v in values), Fraction(0)) / len(values)
    return float(np.sqrt(float(variance)))


def thousandfold_move(n_before: int = 400, n_after: int = 200) -> np.ndarray:
    """Closes near 100,000 that fall 1000-fold to near 100, then wander with small moves."""
    rng = np.random.default_rng(7)
    high = 100_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n_before)))
    fall = np.geomspace(high[-1], high[-1] / 1000.0, 50)
    low = fall[-1] * np.exp(np.cumsum(rng.normal(0.0, 0.0001, n_after)))
    return np.concatenate([high, fall, low])


def test_bollinger_width_after_a_thousandfold_move_is_as_exact_as_talibs() -> None:
    close = thousandfold_move()
    upper, middle, _ = bollinger(close, 20, 2.0)
    t_upper, t_middle, _ = talib.BBANDS(close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)
    # The last 100 windows lie entirely after the fall.
    ours, theirs = [], []
    for end in range(len(close) - 100, len(close)):
        exact = exact_population_sd(close[end - 19 : end + 1])
        ours.append(abs((upper[end] - middle[end]) / 2.0 - exact) / exact)
        theirs.append(abs((t_upper[end] - t_middle[end]) / 2.0 - exact) / exact)
    # TA-Lib restarts its sums per window's running total; ours must be at least as good.
    assert max(ours) <= max(max(theirs), 1e-12), (max(ours), max(theirs))


@settings(max_examples=40, deadline=None)
@given(
    scale=st.floats(min_value=1e-2, max_value=1e6),
    drop=st.floats(min_value=10.0, max_value=1e4),
    seed=st.integers(0, 2**32 - 1),
)
def test_bollinger_sd_stays_exact_to_1e_9_across_any_large_move(
    scale: float, drop: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    high = scale * np.exp(np.cumsum(rng.normal(0.0, 0.02, 120)))
    low = high[-1] / drop * np.exp(np.cumsum(rng.normal(0.0, 0.001, 60)))
    close = np.concatenate([high, low])
    upper, middle, _ = bollinger(close, 20, 1.0)
    end = len(close) - 1
    exact = exact_population_sd(close[end - 19 : end + 1])
    assert abs((upper[end] - middle[end]) - exact) <= 1e-9 * exact


# --- MACD crossover tolerance ------------------------------------------------------------


def indicator_frame(close: np.ndarray, first_day: date = date(2024, 1, 2)) -> pd.DataFrame:
    days = [first_day + timedelta(days=i) for i in range(len(close))]
    return compute_indicators(pd.DataFrame({"day": days, "close": close}))


@pytest.mark.parametrize(("start", "step"), [(100.0, 0.5), (50.0, -0.01), (3000.0, 1.25)])
def test_a_linear_ramp_gives_no_macd_or_sma_crosses(start: float, step: float) -> None:
    close = start + step * np.arange(400, dtype=np.float64)
    frame = indicator_frame(close)
    closes = pd.Series(close, index=pd.to_datetime(frame["day"]))
    crosses = []
    for day in frame["day"].iloc[34:]:
        for decision in derive_signals(frame, closes, day):
            if decision.strategy in {"macd_cross", "sma_cross"} and decision.signal != "hold":
                crosses.append((day, decision))
    assert crosses == []


def test_a_real_macd_cross_is_still_found() -> None:
    close = np.concatenate([np.linspace(100.0, 150.0, 80), np.linspace(150.0, 110.0, 40)])
    frame = indicator_frame(close)
    closes = pd.Series(close, index=pd.to_datetime(frame["day"]))
    sells = [
        day
        for day in frame["day"]
        for d in derive_signals(frame, closes, day)
        if d.strategy == "macd_cross" and d.signal == "sell"
    ]
    assert len(sells) == 1


# --- NaN closes ----------------------------------------------------------------------------


@pytest.mark.parametrize("leading", [1, 5, 40])
def test_leading_nans_are_skipped_as_talib_skips_them(leading: int) -> None:
    rng = np.random.default_rng(leading)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, 300)))
    close[:leading] = np.nan
    pairs = [
        (sma(close, 20), talib.SMA(close, 20)),
        (ema(close, 12), talib.EMA(close, 12)),
        (rsi(close, 14), talib.RSI(close, 14)),
        (bollinger(close, 20, 2.0)[0], talib.BBANDS(close, 20, 2.0, 2.0, 0)[0]),
        *zip(macd(close, 12, 26, 9), talib.MACD(close, 12, 26, 9), strict=True),
    ]
    for ours, theirs in pairs:
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        valid = ~np.isnan(theirs)
        np.testing.assert_allclose(ours[valid], theirs[valid], rtol=1e-9, atol=1e-9)


def test_an_all_nan_series_gives_all_nan() -> None:
    assert np.isnan(ema(np.full(30, np.nan), 12)).all()


def test_an_interior_gap_is_refused_naming_its_position() -> None:
    close = np.linspace(100.0, 120.0, 60)
    close[:3] = np.nan
    close[30] = np.nan
    with pytest.raises(ValueError, match=r"position 30 .*gap"):
        sma(close, 20)


def test_compute_indicators_names_the_day_of_an_interior_gap() -> None:
    close = np.linspace(100.0, 120.0, 60)
    close[10] = np.nan
    with pytest.raises(ValueError, match="2024-01-12"):
        indicator_frame(close)


def test_compute_indicators_skips_leading_nan_days() -> None:
    close = np.linspace(100.0, 120.0, 260)
    close[:5] = np.nan
    frame = indicator_frame(close)
    full = indicator_frame(close[5:], first_day=date(2024, 1, 7))
    for column in INDICATOR_COLUMNS:
        np.testing.assert_array_equal(frame[column].to_numpy()[5:], full[column].to_numpy())
        assert frame[column].iloc[:5].isna().all()
