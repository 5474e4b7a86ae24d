"""Per-symbol daily features from stored bars: returns, volatility, trend, RSI, volume."""

from __future__ import annotations

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from marketq.worker.analytics.indicators import rsi

FEATURE_COLUMNS: tuple[str, ...] = (
    "return_1d",
    "return_5d",
    "return_20d",
    "volatility_20d",
    "sma_gap_20",
    "rsi_14",
    "volume_ratio_20",
)
LABEL_COLUMN = "next_return_1d"
# Bars a symbol needs before its first complete feature row (20-day windows plus one change).
WARM_UP_BARS = 21


def compute_features(bars: pd.DataFrame) -> pd.DataFrame:
    """Feature rows of one symbol: columns day, the features and the next-day label.

    ``bars`` holds day, close and volume, oldest first. Rows whose features are still
    warming up are dropped; the label is NaN on the last day (no next bar yet).
    """
    close = bars["close"].astype("float64").reset_index(drop=True)
    volume = bars["volume"].astype("float64").reset_index(drop=True)
    daily = close.pct_change()
    frame = pd.DataFrame(
        {
            "day": bars["day"].reset_index(drop=True),
            "return_1d": daily,
            "return_5d": close.pct_change(5),
            "return_20d": close.pct_change(20),
            "volatility_20d": daily.rolling(20).std(ddof=1),
            "sma_gap_20": close / close.rolling(20).mean() - 1.0,
            "rsi_14": rsi(close.to_numpy(), 14) / 100.0,
            "volume_ratio_20": volume / volume.rolling(20).mean(),
            LABEL_COLUMN: daily.shift(-1),
        }
    )
    complete = frame[list(FEATURE_COLUMNS)].replace([np.inf, -np.inf], np.nan).notna().all(axis=1)
    return frame[complete].reset_index(drop=True)
