"""Choosing the research universe from stored daily bars."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd  # type: ignore[import-untyped]


@dataclass(frozen=True, slots=True)
class UniverseRules:
    min_price: float
    min_history_days: int
    liquidity_window: int
    size: int


@dataclass(frozen=True, slots=True)
class Member:
    symbol: str
    rank: int
    avg_dollar_volume: float
    last_close: float
    history_days: int


def select_universe(bars: pd.DataFrame, rules: UniverseRules) -> list[Member]:
    """The ``size`` most liquid symbols that pass the price floor and history length.

    ``bars`` has columns symbol, day, close, volume (any order of rows). Liquidity is the
    mean of close x volume over each symbol's last ``liquidity_window`` bars; ties are
    broken by symbol so the same bars always give the same universe.
    """
    candidates: list[tuple[float, str, float, int]] = []
    for symbol, frame in bars.groupby("symbol", sort=True):
        frame = frame.sort_values("day")
        history = len(frame)
        last_close = float(frame["close"].iloc[-1])
        if history < rules.min_history_days or last_close < rules.min_price:
            continue
        recent = frame.tail(rules.liquidity_window)
        dollar_volume = float((recent["close"] * recent["volume"]).mean())
        candidates.append((dollar_volume, str(symbol), last_close, history))
    candidates.sort(key=lambda c: (-c[0], c[1]))
    return [
        Member(symbol, rank, dollar_volume, last_close, history)
        for rank, (dollar_volume, symbol, last_close, history) in enumerate(
            candidates[: rules.size], start=1
        )
    ]
