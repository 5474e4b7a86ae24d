"""Pure analytics for the worker: technical indicators (TA-Lib compatible) and signals."""

from .indicators import (
    INDICATOR_COLUMNS,
    bollinger,
    compute_indicators,
    ema,
    macd,
    rsi,
    sma,
)
from .signals import STRATEGIES, SignalDecision, derive_signals

__all__ = [
    "INDICATOR_COLUMNS",
    "STRATEGIES",
    "SignalDecision",
    "bollinger",
    "compute_indicators",
    "derive_signals",
    "ema",
    "macd",
    "rsi",
    "sma",
]
