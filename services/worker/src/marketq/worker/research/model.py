"""Walk-forward training of a ridge regression that predicts next-day returns.

For each prediction day ``d`` the model is fitted only on rows whose label was known at
the close of ``d`` (feature day before ``d``), then predicts the rows of ``d``: no
look-ahead. It is refitted every ``refit_every`` prediction days. Ridge has a closed-form
solution, so the same rows give the same coefficients on every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from marketq.worker.research.features import FEATURE_COLUMNS, LABEL_COLUMN

MODEL_KIND = "ridge"


@dataclass(frozen=True, slots=True)
class WalkForwardConfig:
    test_days: int
    refit_every: int
    min_train_rows: int
    alpha: float


@dataclass
class WalkForwardResult:
    predictions: pd.DataFrame  # symbol, day, predicted_return, realised_return
    parameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    train_start: Any = None
    test_start: Any = None
    test_end: Any = None


class NotEnoughDataError(ValueError):
    pass


def _fit(rows: pd.DataFrame, alpha: float) -> Any:
    # Imported here: every worker imports the job modules at start, only this job needs
    # scikit-learn (seconds of start-up on a busy node).
    from sklearn.linear_model import Ridge  # type: ignore[import-untyped]
    from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    model = Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=alpha))])
    model.fit(rows[list(FEATURE_COLUMNS)].to_numpy(), rows[LABEL_COLUMN].to_numpy())
    return model


def model_parameters(model: Any, alpha: float) -> dict[str, Any]:
    """The fitted model as plain numbers: enough to recompute a prediction by hand.

    prediction = intercept + sum(coef[f] * (x[f] - mean[f]) / scale[f])."""
    import sklearn  # type: ignore[import-untyped]

    scaler = model.named_steps["scale"]
    ridge = model.named_steps["ridge"]
    return {
        "kind": MODEL_KIND,
        "alpha": alpha,
        "intercept": float(ridge.intercept_),
        "coefficients": dict(zip(FEATURE_COLUMNS, map(float, ridge.coef_), strict=True)),
        "mean": dict(zip(FEATURE_COLUMNS, map(float, scaler.mean_), strict=True)),
        "scale": dict(zip(FEATURE_COLUMNS, map(float, scaler.scale_), strict=True)),
        "sklearn_version": sklearn.__version__,
    }


def prediction_metrics(predictions: pd.DataFrame) -> dict[str, Any]:
    """Out-of-sample quality on the predictions whose outcome is known."""
    known = predictions.dropna(subset=["realised_return"])
    if known.empty:
        return {"evaluated": 0}
    predicted = known["predicted_return"].to_numpy()
    realised = known["realised_return"].to_numpy()
    correlation = (
        float(np.corrcoef(predicted, realised)[0, 1])
        if len(known) > 1 and predicted.std() > 0 and realised.std() > 0
        else None
    )
    return {
        "evaluated": len(known),
        "mse": float(np.mean((predicted - realised) ** 2)),
        "direction_hit_rate": float(np.mean(np.sign(predicted) == np.sign(realised))),
        "information_coefficient": correlation,
    }


def walk_forward(rows: pd.DataFrame, config: WalkForwardConfig) -> WalkForwardResult:
    """Predictions for the last ``test_days`` feature days, each from a model fitted before it.

    ``rows`` holds symbol, day, the feature columns and the label (NaN when unknown)."""
    rows = rows.sort_values(["day", "symbol"]).reset_index(drop=True)
    days = sorted(rows["day"].unique())
    test_days = days[-config.test_days :]
    if not test_days:
        raise NotEnoughDataError("no feature rows to predict")
    labelled = rows.dropna(subset=[LABEL_COLUMN])
    model: Any = None
    predicted: list[pd.DataFrame] = []
    for index, day in enumerate(test_days):
        if model is None or index % config.refit_every == 0:
            train = labelled[labelled["day"] < day]
            if len(train) < config.min_train_rows:
                continue
            model = _fit(train, config.alpha)
        today = rows[rows["day"] == day]
        frame = today[["symbol", "day"]].copy()
        frame["predicted_return"] = model.predict(today[list(FEATURE_COLUMNS)].to_numpy())
        frame["realised_return"] = today[LABEL_COLUMN].to_numpy()
        predicted.append(frame)
    if model is None or not predicted:
        raise NotEnoughDataError(
            f"fewer than {config.min_train_rows} labelled rows before the first prediction day"
        )
    predictions = pd.concat(predicted, ignore_index=True)
    return WalkForwardResult(
        predictions=predictions,
        parameters=model_parameters(model, config.alpha),
        metrics=prediction_metrics(predictions),
        train_start=rows["day"].min(),
        test_start=predictions["day"].min(),
        test_end=predictions["day"].max(),
    )


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value
