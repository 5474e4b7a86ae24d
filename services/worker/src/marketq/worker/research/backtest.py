"""Walk-forward backtest of a long-only strategy driven by next-day return predictions.

At the close of day ``d`` the strategy holds the ``top_n`` symbols with the highest
positive predicted return, ``1/top_n`` of equity each (cash for the rest), and earns
their close-to-close return to the next stored session. Rebalancing costs
``cost_bps`` basis points of the traded weight, ``sum |w_d - w_(d-1)|``, charged on day
``d``'s period. Metric conventions (daily periods, ``periods_per_year`` = 252, risk-free
rate 0) are written out in :func:`performance`; the tests hold them to an independent
library and to hand-computed cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

PERIODS_PER_YEAR = 252
# Below this sample standard deviation returns are flat but for rounding: Sharpe is 0
# rather than a ratio of rounding errors.
FLAT_RETURNS_SD = 1e-12


@dataclass(frozen=True, slots=True)
class StrategyRules:
    top_n: int
    cost_bps: float


@dataclass(frozen=True, slots=True)
class Performance:
    periods: int
    cagr: float
    annual_volatility: float
    sharpe: float
    max_drawdown: float
    hit_rate: float
    turnover: float
    final_equity: float


def target_weights(predictions: pd.DataFrame, rules: StrategyRules) -> pd.DataFrame:
    """Weights per day (rows) and symbol (columns) from predictions (symbol, day, value).

    Ties are broken by symbol, so equal predictions always pick the same names."""
    chosen = (
        predictions[predictions["predicted_return"] > 0]
        .sort_values(["day", "predicted_return", "symbol"], ascending=[True, False, True])
        .groupby("day")
        .head(rules.top_n)
    )
    weights = (
        chosen.assign(weight=1.0 / rules.top_n)
        .pivot(index="day", columns="symbol", values="weight")
        .reindex(index=sorted(predictions["day"].unique()))
    )
    return weights.fillna(0.0)


def strategy_returns(
    weights: pd.DataFrame, closes: pd.DataFrame, rules: StrategyRules
) -> pd.DataFrame:
    """Per period: day, gross exposure, turnover and net return (after costs).

    ``closes`` is wide (day x symbol). Periods whose next close is not stored yet are
    left out: their outcome is unknown."""
    closes = closes.sort_index()
    forward = closes.shift(-1) / closes - 1.0  # return from day d's close to the next
    days = [d for d in weights.index if d in forward.index and forward.loc[d].notna().any()]
    weights = weights.loc[days]
    symbols = list(weights.columns)
    realised = forward.reindex(index=days, columns=symbols).fillna(0.0)
    previous = weights.shift(1).fillna(0.0)
    traded = (weights - previous).abs().sum(axis=1)
    gross = (weights * realised).sum(axis=1)
    net = gross - traded * rules.cost_bps / 10_000.0
    return pd.DataFrame(
        {
            "day": days,
            "exposure": weights.sum(axis=1).to_numpy(),
            "turnover": traded.to_numpy(),
            "net_return": net.to_numpy(),
        }
    )


def performance(
    net_returns: np.ndarray | list[float],
    turnover: np.ndarray | list[float],
    exposure: np.ndarray | list[float],
    periods_per_year: int = PERIODS_PER_YEAR,
) -> Performance:
    """Metrics of a series of periodic net returns.

    - CAGR: ``final_equity ** (periods_per_year / n) - 1``, equity starting at 1;
    - annual volatility: sample standard deviation (ddof 1) x sqrt(periods_per_year);
    - Sharpe: mean / sample standard deviation x sqrt(periods_per_year), risk-free 0
      (0 when the returns do not vary beyond rounding, sd <= 1e-12);
    - max drawdown: the deepest fall of equity below its running peak, the starting
      equity of 1 included, as a negative fraction;
    - hit rate: share of periods with a position (exposure > 0) whose return is > 0;
    - turnover: mean traded weight per period, ``sum |w_d - w_(d-1)|``.
    """
    returns = np.asarray(net_returns, dtype="float64")
    n = len(returns)
    if n < 2:
        raise ValueError("performance needs at least two periods")
    equity = np.cumprod(1.0 + returns)
    final = float(equity[-1])
    deviation = float(np.std(returns, ddof=1))
    peaks = np.maximum.accumulate(np.concatenate(([1.0], equity)))[1:]
    held = np.asarray(exposure, dtype="float64") > 0
    return Performance(
        periods=n,
        cagr=final ** (periods_per_year / n) - 1.0,
        annual_volatility=deviation * math.sqrt(periods_per_year),
        sharpe=(float(np.mean(returns)) / deviation * math.sqrt(periods_per_year))
        if deviation > FLAT_RETURNS_SD
        else 0.0,
        max_drawdown=float(np.min(np.minimum(equity / peaks - 1.0, 0.0))),
        hit_rate=float(np.mean(returns[held] > 0)) if held.any() else 0.0,
        turnover=float(np.mean(np.asarray(turnover, dtype="float64"))),
        final_equity=final,
    )
