"""The worker's indicators agree with TA-Lib: same NaN warm-up, same values after it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

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

RTOL = 1e-9
# Lengths around every warm-up boundary: SMA/EMA 20/26/50/200, RSI 14 (first value at
# 14), MACD 12/26/9 (first value at 33), plus long series.
LENGTHS = [0, 1, 2, 13, 14, 15, 19, 20, 25, 26, 33, 34, 35, 49, 50, 199, 200, 201, 750, 3000]


def random_walk(n: int, seed: int, *, start: float = 100.0, vol: float = 0.02) -> np.ndarray:
    """A geometric random walk of daily closes (log returns ~ N(0, vol))."""
    rng = np.random.default_rng(seed)
    return start * np.exp(np.cumsum(rng.normal(0.0, vol, n)))


def assert_same(ours: np.ndarray, theirs: np.ndarray, *, scale: float = 0.0) -> None:
    """Identical NaN positions; values equal to RTOL (plus an absolute floor of 1e-10 of
    ``scale`` for series that cross zero, like MACD, whose relative error is meaningless
    near zero)."""
    assert ours.dtype == np.float64
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg="NaN positions")
    valid = ~np.isnan(theirs)
    np.testing.assert_allclose(ours[valid], theirs[valid], rtol=RTOL, atol=1e-10 * scale)


SERIES = [
    pytest.param(random_walk(n, seed=n, vol=vol, start=start), id=f"n{n}-vol{vol}-start{start}")
    for n in LENGTHS
    for vol, start in [(0.02, 100.0), (0.005, 3.5), (0.04, 2500.0)]
]


@pytest.mark.parametrize("close", SERIES)
@pytest.mark.parametrize("period", [2, 5, 20, 50, 200])
def test_sma_matches_talib(close: np.ndarray, period: int) -> None:
    assert_same(sma(close, period), talib.SMA(close, timeperiod=period))


@pytest.mark.parametrize("close", SERIES)
@pytest.mark.parametrize("period", [2, 5, 12, 26])
def test_ema_matches_talib(close: np.ndarray, period: int) -> None:
    assert_same(ema(close, period), talib.EMA(close, timeperiod=period))


@pytest.mark.parametrize("close", SERIES)
@pytest.mark.parametrize("period", [2, 7, 14])
def test_rsi_matches_talib(close: np.ndarray, period: int) -> None:
    assert_same(rsi(close, period), talib.RSI(close, timeperiod=period))


@pytest.mark.parametrize("close", SERIES)
@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 1)])
def test_macd_matches_talib(close: np.ndarray, fast: int, slow: int, signal: int) -> None:
    ours = macd(close, fast, slow, signal)
    theirs = talib.MACD(close, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    scale = float(np.max(close, initial=1.0))
    for name, mine, reference in zip(("macd", "signal", "hist"), ours, theirs, strict=True):
        try:
            assert_same(mine, reference, scale=scale)
        except AssertionError as failure:
            raise AssertionError(f"{name}: {failure}") from None


@pytest.mark.parametrize("close", SERIES)
@pytest.mark.parametrize(("period", "num_std"), [(20, 2.0), (10, 1.5), (5, 3.0)])
def test_bollinger_matches_talib_bbands_sma(close: np.ndarray, period: int, num_std: float) -> None:
    ours = bollinger(close, period, num_std)
    theirs = talib.BBANDS(close, timeperiod=period, nbdevup=num_std, nbdevdn=num_std, matype=0)
    for mine, reference in zip(ours, theirs, strict=True):
        assert_same(mine, reference)


# A walk with exact repeats (zero returns), as hypothesis likes to generate, exercises the
# flat-window conventions (RSI 0, zero-width bands) as well as ordinary moves.
walks = st.tuples(
    st.floats(min_value=1.0, max_value=5000.0),
    st.lists(st.floats(min_value=-0.05, max_value=0.05), max_size=260),
).map(lambda args: args[0] * np.exp(np.cumsum(np.asarray(args[1], dtype=np.float64))))


@settings(max_examples=150, deadline=None)
@given(close=walks)
def test_all_indicators_match_talib_on_generated_walks(close: np.ndarray) -> None:
    scale = float(np.max(close, initial=1.0))
    assert_same(sma(close, 20), talib.SMA(close, 20))
    assert_same(ema(close, 12), talib.EMA(close, 12))
    assert_same(rsi(close, 14), talib.RSI(close, 14))
    for mine, reference in zip(macd(close), talib.MACD(close, 12, 26, 9), strict=True):
        assert_same(mine, reference, scale=scale)
    for mine, reference in zip(bollinger(close), talib.BBANDS(close, 20, 2.0, 2.0, 0), strict=True):
        assert_same(mine, reference, scale=scale)


# --- the conventions, stated directly ------------------------------------------------------


def first_valid(values: np.ndarray) -> int:
    return int(np.flatnonzero(~np.isnan(values))[0])


def test_warm_up_lengths_are_talibs() -> None:
    close = random_walk(300, seed=1)
    assert first_valid(sma(close, 200)) == 199
    assert first_valid(ema(close, 26)) == 25
    assert first_valid(rsi(close, 14)) == 14  # needs 14 changes, i.e. 15 closes
    line, signal, hist = macd(close, 12, 26, 9)
    assert first_valid(line) == first_valid(signal) == first_valid(hist) == 33
    upper, middle, lower = bollinger(close, 20)
    assert first_valid(upper) == first_valid(middle) == first_valid(lower) == 19


def test_ema_is_seeded_with_the_sma_of_the_first_period_closes() -> None:
    close = np.array([1.0, 2.0, 3.0, 10.0])
    result = ema(close, 3)
    assert np.isnan(result[:2]).all()
    assert result[2] == pytest.approx(2.0)  # mean(1, 2, 3), not the first close
    assert result[3] == pytest.approx(2.0 + 0.5 * (10.0 - 2.0))  # k = 2/(3+1)


def test_rsi_seeds_with_simple_averages_then_smooths_wilder_style() -> None:
    # Changes: +1, -1, +2, then +1. Period 3: avg gain 1, avg loss 1/3 -> RSI 75.
    close = np.array([10.0, 11.0, 10.0, 12.0, 13.0])
    result = rsi(close, 3)
    assert np.isnan(result[:3]).all()
    assert result[3] == pytest.approx(75.0)
    gain, loss = (1.0 * 2 + 1.0) / 3, (1 / 3 * 2 + 0.0) / 3  # (avg*(p-1) + change)/p
    assert result[4] == pytest.approx(100.0 * gain / (gain + loss))


def test_macd_starts_the_fast_ema_where_the_slow_one_starts() -> None:
    close = random_walk(120, seed=7)
    line, _, _ = macd(close, 12, 26, 9)
    aligned_fast = ema(close[26 - 12 :], 12)  # seeded with mean(close[14:26]), at index 25
    aligned = np.concatenate([np.full(26 - 12, np.nan), aligned_fast]) - ema(close, 26)
    naive = ema(close, 12) - ema(close, 26)  # fast EMA seeded at index 11
    np.testing.assert_allclose(line[33:], aligned[33:], rtol=1e-12)
    assert not np.allclose(line[33:40], naive[33:40], rtol=1e-9, atol=0.0)
    np.testing.assert_allclose(line[33:], talib.MACD(close)[0][33:], rtol=RTOL)


def test_flat_prices_give_rsi_zero_and_collapsed_bands_like_talib() -> None:
    close = np.full(40, 42.0)
    np.testing.assert_array_equal(rsi(close)[14:], 0.0)
    np.testing.assert_array_equal(talib.RSI(close)[14:], 0.0)
    upper, middle, lower = bollinger(close)
    np.testing.assert_allclose(upper[19:], 42.0, rtol=1e-15)
    np.testing.assert_allclose(lower[19:], 42.0, rtol=1e-15)
    np.testing.assert_allclose(middle[19:], 42.0, rtol=1e-15)


def test_bollinger_uses_the_population_standard_deviation() -> None:
    close = np.array([1.0, 2.0, 3.0, 4.0])
    upper, middle, lower = bollinger(close, 4, 2.0)
    sd = np.sqrt(np.mean((close - 2.5) ** 2))  # ddof=0: sqrt(1.25)
    assert middle[3] == pytest.approx(2.5)
    assert upper[3] == pytest.approx(2.5 + 2 * sd)
    assert lower[3] == pytest.approx(2.5 - 2 * sd)


def test_accepts_series_lists_and_arrays_alike() -> None:
    close = random_walk(60, seed=3)
    expected = sma(close, 20)
    np.testing.assert_array_equal(sma(pd.Series(close, index=range(100, 160)), 20), expected)
    np.testing.assert_array_equal(sma(close.tolist(), 20), expected)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_closes_are_refused(bad: float) -> None:
    close = random_walk(50, seed=2)
    close[30] = bad
    with pytest.raises(ValueError, match="position 30"):
        ema(close, 12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: sma(c, 1), "period must be between 2"),
        (lambda c: ema(c, 0), "period must be between 2"),
        (lambda c: rsi(c, 100_001), "period must be between 2"),
        (lambda c: macd(c, 26, 12, 9), "fast .* must be shorter than slow"),
        (lambda c: macd(c, 12, 26, 0), "signal must be between 1"),
        (lambda c: bollinger(c, 20, -1.0), "num_std"),
    ],
)
def test_invalid_parameters_are_refused(call: Callable[[np.ndarray], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(random_walk(50, seed=2))


def test_two_dimensional_input_is_refused() -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        sma(np.ones((30, 2)), 20)


# --- compute_indicators ------------------------------------------------------------------


def bars_frame(close: np.ndarray, first_day: date = date(2024, 1, 2)) -> pd.DataFrame:
    days = [first_day + timedelta(days=i) for i in range(len(close))]
    return pd.DataFrame({"day": days, "close": close, "volume": 1000})


def test_compute_indicators_returns_every_column_matching_talib() -> None:
    close = random_walk(260, seed=11)
    result = compute_indicators(bars_frame(close))
    assert list(result.columns) == ["day", *INDICATOR_COLUMNS]
    assert len(result) == 260
    assert result["day"].tolist() == bars_frame(close)["day"].tolist()
    scale = float(close.max())
    macd_line, macd_signal, macd_hist = talib.MACD(close, 12, 26, 9)
    bb_upper, bb_middle, bb_lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    expected = {
        "sma_20": talib.SMA(close, 20),
        "sma_50": talib.SMA(close, 50),
        "sma_200": talib.SMA(close, 200),
        "ema_12": talib.EMA(close, 12),
        "ema_26": talib.EMA(close, 26),
        "rsi_14": talib.RSI(close, 14),
        "macd": macd_line,
        "macd_signal": macd_signal,
        "macd_hist": macd_hist,
        "bb_upper": bb_upper,
        "bb_middle": bb_middle,
        "bb_lower": bb_lower,
    }
    for column, reference in expected.items():
        try:
            assert_same(result[column].to_numpy(), reference, scale=scale)
        except AssertionError as failure:
            raise AssertionError(f"{column}: {failure}") from None


def test_compute_indicators_sorts_by_day_first() -> None:
    close = random_walk(80, seed=5)
    ordered = bars_frame(close)
    shuffled = ordered.sample(frac=1.0, random_state=3)
    assert shuffled["day"].tolist() != ordered["day"].tolist()
    result = compute_indicators(shuffled)
    assert result["day"].tolist() == ordered["day"].tolist()
    assert_same(result["ema_12"].to_numpy(), talib.EMA(close, 12))
    assert_same(result["rsi_14"].to_numpy(), talib.RSI(close, 14))


def test_compute_indicators_leaves_the_warm_up_nan_on_short_history() -> None:
    result = compute_indicators(bars_frame(random_walk(30, seed=9)))
    assert result["sma_50"].isna().all()
    assert result["sma_200"].isna().all()
    assert result["macd"].isna().all()  # MACD needs 34 days
    assert result["sma_20"].notna().sum() == 11
    assert result["rsi_14"].notna().sum() == 16


def test_compute_indicators_on_no_bars_is_an_empty_frame() -> None:
    result = compute_indicators(pd.DataFrame({"day": [], "close": []}))
    assert list(result.columns) == ["day", *INDICATOR_COLUMNS]
    assert result.empty


def test_compute_indicators_refuses_a_repeated_day() -> None:
    frame = bars_frame(random_walk(10, seed=1))
    frame.loc[5, "day"] = frame.loc[4, "day"]
    with pytest.raises(ValueError, match="repeat day"):
        compute_indicators(frame)


def test_compute_indicators_needs_day_and_close() -> None:
    with pytest.raises(ValueError, match="close"):
        compute_indicators(pd.DataFrame({"day": [date(2024, 1, 2)], "adj_close": [1.0]}))
