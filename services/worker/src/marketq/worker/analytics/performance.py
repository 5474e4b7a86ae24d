"""Performance measures of a value series (see docs/jobs.md#conventions).

Pure and deterministic: the same values give the same numbers. ``values`` are a
portfolio's values at consecutive session closes, oldest first, with no cash flows in
between (constant holdings), so the time-weighted return is the chain of the daily
returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

SESSIONS_PER_YEAR: Final = 252


@dataclass(frozen=True, slots=True)
class Performance:
    time_weighted_return: float  # fraction: 0.0225 is +2.25 %
    pnl: float  # currency units: last value - first value
    volatility: float  # annualised sample sd of daily returns, fraction
    max_drawdown: float  # largest peak-to-trough fall, fraction >= 0
    benchmark_return: float  # fraction, over the same sessions
    relative_return: float  # time_weighted_return - benchmark_return


def daily_returns(values: Sequence[float]) -> list[float]:
    return [today / yesterday - 1.0 for yesterday, today in pairwise(values)]


def time_weighted_return(values: Sequence[float]) -> float:
    growth = 1.0
    for daily in daily_returns(values):
        growth *= 1.0 + daily
    return growth - 1.0


def annualised_volatility(values: Sequence[float]) -> float:
    """Sample standard deviation (n-1) of the daily returns times sqrt(252); 0 below two
    returns."""
    returns = daily_returns(values)
    if len(returns) < 2:
        return 0.0
    mean = math.fsum(returns) / len(returns)
    variance = math.fsum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return math.sqrt(variance) * math.sqrt(SESSIONS_PER_YEAR)


def max_drawdown(values: Sequence[float]) -> float:
    peak = -math.inf
    deepest = 0.0
    for value in values:
        peak = max(peak, value)
        deepest = max(deepest, 1.0 - value / peak)
    return deepest


def measure(values: Sequence[float], benchmark: Sequence[float]) -> Performance:
    """Every measure of ``values`` against ``benchmark`` (closes on the same sessions)."""
    if len(values) < 2 or len(benchmark) != len(values):
        raise ValueError("need at least two values and a benchmark close on each session")
    if min(values) <= 0 or min(benchmark) <= 0:
        raise ValueError("values and benchmark closes must be positive")
    twr = time_weighted_return(values)
    benchmark_return = benchmark[-1] / benchmark[0] - 1.0
    return Performance(
        time_weighted_return=twr,
        pnl=values[-1] - values[0],
        volatility=annualised_volatility(values),
        max_drawdown=max_drawdown(values),
        benchmark_return=benchmark_return,
        relative_return=twr - benchmark_return,
    )
