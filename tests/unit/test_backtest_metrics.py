"""Backtest arithmetic against independent references.

- a tiny case worked out by hand (the numbers in the comments are the working);
- empyrical (Quantopian's library, maintained as empyrical-reloaded) on long synthetic
  series, for the metrics it defines the same way (CAGR, annual volatility, Sharpe, max
  drawdown);
- closed forms: a constant return compounds to ``(1+r)**252 - 1`` a year with no
  volatility and no drawdown.
Everything is held to 1e-9 relative.
"""

from __future__ import annotations

import math
from datetime import date

import empyrical
import numpy as np
import pandas as pd
import pytest

from marketq.worker.research.backtest import (
    StrategyRules,
    performance,
    strategy_returns,
    target_weights,
)

REL = 1e-9


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-15)


def test_metrics_of_a_hand_computed_four_day_series() -> None:
    # equity 1.1, 1.045, 1.0659, 1.0659; mean 0.0175; squared deviations sum 0.011675
    result = performance([0.10, -0.05, 0.02, 0.0], turnover=[1, 0, 0.5, 1], exposure=[1, 1, 1, 0])
    sample_sd = math.sqrt(0.011675 / 3)
    assert result.periods == 4
    assert close(result.final_equity, 1.0659)
    assert close(result.cagr, 1.0659**63 - 1)  # 252 / 4 periods = 63
    assert close(result.annual_volatility, sample_sd * math.sqrt(252))
    assert close(result.sharpe, 0.0175 / sample_sd * math.sqrt(252))
    assert close(result.max_drawdown, 1.045 / 1.1 - 1)  # -0.05, from the 1.1 peak
    assert close(result.hit_rate, 2 / 3)  # the flat last day held nothing: not counted
    assert close(result.turnover, 2.5 / 4)


def test_a_first_day_loss_is_a_drawdown_from_the_starting_equity() -> None:
    result = performance([-0.1, 0.05], turnover=[1, 0], exposure=[1, 1])
    assert close(result.max_drawdown, -0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_agree_with_empyrical_on_synthetic_series(seed: int) -> None:
    returns = np.random.default_rng(seed).normal(0.0004, 0.012, 1500)
    ones = np.ones_like(returns)
    result = performance(returns, turnover=ones, exposure=ones)
    assert close(result.cagr, empyrical.annual_return(returns, period="daily"))
    assert close(result.annual_volatility, empyrical.annual_volatility(returns, period="daily"))
    assert close(result.sharpe, empyrical.sharpe_ratio(returns, period="daily"))
    assert close(result.max_drawdown, empyrical.max_drawdown(returns))


def test_constant_returns_match_the_closed_form() -> None:
    r = 0.001
    result = performance([r] * 504, turnover=[0.0] * 504, exposure=[1.0] * 504)
    assert close(result.cagr, (1 + r) ** 252 - 1)
    assert close(result.final_equity, (1 + r) ** 504)
    assert result.max_drawdown == 0.0
    assert result.annual_volatility < 1e-12
    assert result.sharpe == 0.0  # no variation: defined as 0, not infinite
    assert result.hit_rate == 1.0


def test_strategy_returns_of_a_hand_computed_two_symbol_case() -> None:
    days = [date(2026, 11, d) for d in (16, 17, 18, 19)]
    closes = pd.DataFrame({"A": [100, 110, 99, 99], "B": [50, 50, 55, 60.5]}, index=days)
    predictions = pd.DataFrame(
        {
            "symbol": ["A", "B"] * 4,
            "day": [d for d in days for _ in range(2)],
            "predicted_return": [0.01, -0.02, -0.01, 0.02, 0.0, 0.0, 0.1, 0.0],
        }
    )
    rules = StrategyRules(top_n=1, cost_bps=10)  # 0.001 per unit of traded weight
    periods = strategy_returns(target_weights(predictions, rules), closes, rules)
    # day 16: hold A (+10%), bought 1.0;  day 17: hold B (+10%), sold A and bought B (2.0);
    # day 18: nothing predicted up, sell B (1.0); day 19: no next close, no period.
    assert list(periods["day"]) == days[:3]
    assert list(periods["exposure"]) == [1.0, 1.0, 0.0]
    assert list(periods["turnover"]) == [1.0, 2.0, 1.0]
    expected = [0.10 - 0.001, 0.10 - 0.002, -0.001]
    assert all(close(a, b) for a, b in zip(periods["net_return"], expected, strict=True))


def test_ties_pick_the_same_symbols_every_time() -> None:
    day = date(2026, 11, 16)
    predictions = pd.DataFrame(
        {"symbol": ["C", "A", "B"], "day": [day] * 3, "predicted_return": [0.01] * 3}
    )
    weights = target_weights(predictions, StrategyRules(top_n=2, cost_bps=0))
    assert weights.loc[day].to_dict() == {"A": 0.5, "B": 0.5}


def test_the_same_inputs_give_the_same_numbers() -> None:
    returns = np.random.default_rng(7).normal(0.0, 0.01, 300)
    first = performance(returns, np.abs(returns), np.ones_like(returns))
    second = performance(returns.copy(), np.abs(returns), np.ones_like(returns))
    assert first == second
