"""Signals derived from indicator rows whose outcome is known by construction."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from marketq.worker.analytics.indicators import compute_indicators
from marketq.worker.analytics.signals import STRATEGIES, SignalDecision, derive_signals

FRI = date(2024, 3, 1)
MON = date(2024, 3, 4)  # the next trading day: "previous row" is Friday, not Sunday


def frame(*rows: dict[str, object]) -> pd.DataFrame:
    """Indicator rows; unspecified indicators are NaN (still warming up)."""
    return pd.DataFrame(list(rows))


def only(decisions: list[SignalDecision], strategy: str) -> SignalDecision:
    matching = [d for d in decisions if d.strategy == strategy]
    assert len(matching) == 1, decisions
    return matching[0]


def no_closes() -> pd.Series:
    return pd.Series([], dtype=float)


# --- sma_cross ---------------------------------------------------------------------------


def sma_rows(before: tuple[float, float], today: tuple[float, float]) -> pd.DataFrame:
    return frame(
        {"day": FRI, "sma_50": before[0], "sma_200": before[1]},
        {"day": MON, "sma_50": today[0], "sma_200": today[1]},
    )


def test_golden_cross_is_a_buy() -> None:
    decision = only(
        derive_signals(sma_rows((99.0, 100.0), (101.0, 100.0)), no_closes(), MON), "sma_cross"
    )
    assert (decision.signal, decision.strength) == ("buy", 1.0)
    assert "golden cross" in decision.reason


def test_death_cross_is_a_sell() -> None:
    decision = only(
        derive_signals(sma_rows((101.0, 100.0), (99.0, 100.0)), no_closes(), MON), "sma_cross"
    )
    assert (decision.signal, decision.strength) == ("sell", 1.0)
    assert "death cross" in decision.reason


def test_leaving_a_touch_counts_as_the_cross() -> None:
    decision = only(
        derive_signals(sma_rows((100.0, 100.0), (100.5, 100.0)), no_closes(), MON), "sma_cross"
    )
    assert decision.signal == "buy"


@pytest.mark.parametrize(
    ("before", "today", "side"),
    [
        ((105.0, 100.0), (106.0, 100.0), "above"),  # established uptrend
        ((95.0, 100.0), (94.0, 100.0), "below"),  # established downtrend
        ((99.0, 100.0), (100.0, 100.0), "level with"),  # touching is not crossing
    ],
)
def test_no_cross_is_a_trend_hold(
    before: tuple[float, float], today: tuple[float, float], side: str
) -> None:
    decision = only(derive_signals(sma_rows(before, today), no_closes(), MON), "sma_cross")
    assert (decision.signal, decision.strength) == ("hold", 0.0)
    assert f"sma_50 stays {side} sma_200" in decision.reason


def test_a_cross_before_the_day_is_not_repeated() -> None:
    rows = frame(
        {"day": FRI - timedelta(days=1), "sma_50": 99.0, "sma_200": 100.0},
        {"day": FRI, "sma_50": 101.0, "sma_200": 100.0},  # crossed on Friday
        {"day": MON, "sma_50": 102.0, "sma_200": 100.0},
    )
    assert only(derive_signals(rows, no_closes(), FRI), "sma_cross").signal == "buy"
    assert only(derive_signals(rows, no_closes(), MON), "sma_cross").signal == "hold"


def test_sma_cross_needs_yesterday_too() -> None:
    first_day_with_sma_200 = frame(
        {"day": FRI, "sma_50": 99.0, "sma_200": np.nan},
        {"day": MON, "sma_50": 101.0, "sma_200": 100.0},
    )
    assert derive_signals(first_day_with_sma_200, no_closes(), MON) == []
    assert (
        derive_signals(frame({"day": MON, "sma_50": 101.0, "sma_200": 100.0}), no_closes(), MON)
        == []
    )


# --- rsi ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "signal", "strength"),
    [
        (25.0, "buy", 5 / 30),
        (10.0, "buy", 20 / 30),
        (1e-9, "buy", pytest.approx(1.0)),
        (30.0, "hold", 0.0),  # thresholds are exclusive
        (50.0, "hold", 0.0),
        (70.0, "hold", 0.0),
        (85.0, "sell", 0.5),
        (100.0, "sell", 1.0),
    ],
)
def test_rsi_thresholds_and_strength(value: float, signal: str, strength: float) -> None:
    decision = only(derive_signals(frame({"day": MON, "rsi_14": value}), no_closes(), MON), "rsi")
    assert decision.signal == signal
    assert decision.strength == pytest.approx(strength)


def test_rsi_zero_from_a_falling_price_is_a_full_strength_buy() -> None:
    days = [MON - timedelta(days=i) for i in range(15)][::-1]
    falling = pd.Series(np.linspace(100.0, 80.0, 15), index=days)
    decision = only(derive_signals(frame({"day": MON, "rsi_14": 0.0}), falling, MON), "rsi")
    assert (decision.signal, decision.strength) == ("buy", 1.0)


def test_rsi_zero_from_a_flat_price_is_a_hold() -> None:
    # TA-Lib reports 0 when nothing moved in the window; a halted stock is not oversold.
    days = [MON - timedelta(days=i) for i in range(15)][::-1]
    flat = pd.Series(np.full(15, 100.0), index=days)
    decision = only(derive_signals(frame({"day": MON, "rsi_14": 0.0}), flat, MON), "rsi")
    assert (decision.signal, decision.strength) == ("hold", 0.0)


# --- macd_cross --------------------------------------------------------------------------


def macd_rows(before: tuple[float, float], today: tuple[float, float]) -> pd.DataFrame:
    return frame(
        {"day": FRI, "macd": before[0], "macd_signal": before[1]},
        {"day": MON, "macd": today[0], "macd_signal": today[1]},
    )


@pytest.mark.parametrize(
    ("before", "today", "signal"),
    [
        ((-0.5, -0.2), (0.1, -0.1), "buy"),  # line crosses above its signal
        ((0.3, 0.1), (-0.2, 0.0), "sell"),  # line crosses below its signal
        ((0.3, 0.1), (0.4, 0.2), "hold"),  # stays above
        ((-0.3, 0.1), (-0.4, 0.2), "hold"),  # stays below
    ],
)
def test_macd_cross(before: tuple[float, float], today: tuple[float, float], signal: str) -> None:
    decision = only(derive_signals(macd_rows(before, today), no_closes(), MON), "macd_cross")
    assert decision.signal == signal
    assert decision.strength == (0.0 if signal == "hold" else 1.0)


def test_macd_cross_is_silent_during_the_warm_up() -> None:
    rows = macd_rows((np.nan, np.nan), (0.1, -0.1))
    assert derive_signals(rows, no_closes(), MON) == []


# --- bollinger ---------------------------------------------------------------------------


def bollinger_case(close: float) -> SignalDecision:
    rows = frame({"day": MON, "bb_upper": 110.0, "bb_middle": 100.0, "bb_lower": 90.0})
    return only(derive_signals(rows, pd.Series([close], index=[MON]), MON), "bollinger")


@pytest.mark.parametrize(
    ("close", "signal", "strength"),
    [
        (85.0, "buy", 0.5),  # half a band-width below the lower band
        (60.0, "buy", 1.0),  # capped
        (90.0, "hold", 0.0),  # on the band is inside
        (100.0, "hold", 0.0),
        (110.0, "hold", 0.0),
        (112.0, "sell", 0.2),
        (150.0, "sell", 1.0),
    ],
)
def test_bollinger_band_breaks(close: float, signal: str, strength: float) -> None:
    decision = bollinger_case(close)
    assert (decision.signal, decision.strength) == (signal, pytest.approx(strength))


def test_bollinger_needs_the_close_of_the_day() -> None:
    rows = frame({"day": MON, "bb_upper": 110.0, "bb_middle": 100.0, "bb_lower": 90.0})
    assert derive_signals(rows, pd.Series([50.0], index=[FRI]), MON) == []


def test_zero_width_bands_give_full_strength_on_any_break() -> None:
    rows = frame({"day": MON, "bb_upper": 100.0, "bb_middle": 100.0, "bb_lower": 100.0})
    decision = only(derive_signals(rows, pd.Series([99.0], index=[MON]), MON), "bollinger")
    assert (decision.signal, decision.strength) == ("buy", 1.0)


# --- derive_signals as a whole -----------------------------------------------------------


def crash_history() -> tuple[pd.DataFrame, pd.Series, list[date]]:
    """250 days flat at 100, then one close at 50.

    On the last day, by construction: sma_50 (99) falls below sma_200 (99.75) from equal
    → death cross; every change in the RSI window is a loss → RSI 0 → buy; the MACD line
    drops below its signal from 0 = 0 → sell; 50 is far below the lower band → buy.
    """
    days = [date(2023, 1, 2) + timedelta(days=i) for i in range(251)]
    close = np.r_[np.full(250, 100.0), 50.0]
    indicators = compute_indicators(pd.DataFrame({"day": days, "close": close}))
    return indicators, pd.Series(close, index=days), days


def test_a_crash_after_a_flat_year_triggers_every_strategy() -> None:
    indicators, closes, days = crash_history()
    decisions = derive_signals(indicators, closes, days[-1])
    assert [(d.strategy, d.signal) for d in decisions] == [
        ("sma_cross", "sell"),
        ("rsi", "buy"),
        ("macd_cross", "sell"),
        ("bollinger", "buy"),
    ]
    assert all(d.strength == 1.0 for d in decisions)


def test_the_flat_day_before_the_crash_holds_everywhere() -> None:
    indicators, closes, days = crash_history()
    decisions = derive_signals(indicators, closes, days[-2])
    assert [d.strategy for d in decisions] == list(STRATEGIES)
    assert {(d.signal, d.strength) for d in decisions} == {("hold", 0.0)}


def test_spike_mirrors_the_crash() -> None:
    days = [date(2023, 1, 2) + timedelta(days=i) for i in range(251)]
    close = np.r_[np.full(250, 100.0), 150.0]
    indicators = compute_indicators(pd.DataFrame({"day": days, "close": close}))
    decisions = derive_signals(indicators, pd.Series(close, index=days), days[-1])
    assert [(d.strategy, d.signal) for d in decisions] == [
        ("sma_cross", "buy"),
        ("rsi", "sell"),
        ("macd_cross", "buy"),
        ("bollinger", "sell"),
    ]


def test_warm_up_days_produce_no_decisions() -> None:
    indicators, closes, days = crash_history()
    assert derive_signals(indicators, closes, days[5]) == []


def test_a_day_without_indicators_gives_nothing() -> None:
    indicators, closes, _ = crash_history()
    assert derive_signals(indicators, closes, date(2030, 1, 1)) == []


def test_order_and_day_types_do_not_matter() -> None:
    indicators, closes, days = crash_history()
    expected = derive_signals(indicators, closes, days[-1])
    shuffled = indicators.sample(frac=1.0, random_state=1)
    as_timestamps = shuffled.assign(day=pd.to_datetime(shuffled["day"]))
    closes_frame = pd.DataFrame({"day": closes.index, "close": closes.to_numpy()})[::-1]
    assert derive_signals(as_timestamps, closes_frame, days[-1]) == expected


def test_repeated_days_are_refused() -> None:
    rows = frame({"day": MON, "rsi_14": 50.0}, {"day": MON, "rsi_14": 51.0})
    with pytest.raises(ValueError, match="repeat day"):
        derive_signals(rows, no_closes(), MON)


def test_decisions_are_validated_and_frozen() -> None:
    with pytest.raises(ValueError, match="strength"):
        SignalDecision("rsi", "buy", 1.5, "too strong")
    with pytest.raises(ValueError, match="strength"):
        SignalDecision("rsi", "buy", float("nan"), "undefined")
    with pytest.raises(ValueError, match="signal"):
        SignalDecision("rsi", "short", 0.5, "not a signal")  # type: ignore[arg-type]
    decision = SignalDecision("rsi", "hold", 0.0, "ok")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.signal = "buy"  # type: ignore[misc]
