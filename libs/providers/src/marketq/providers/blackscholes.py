"""Black-Scholes(-Merton) prices and greeks of European calls and puts.

Conventions (all inputs annualised, continuously compounded):

- ``spot`` S > 0, ``strike`` K > 0, ``time`` T in years (>= 0), ``rate`` r,
  ``volatility`` sigma (>= 0), ``dividend_yield`` q (continuous, default 0).
- ``theta`` is per year (divide by 365 for per calendar day); ``vega`` and ``rho`` are per
  1.00 change of volatility and rate (divide by 100 for "per vol point").
- At expiry (T == 0) or with zero volatility the price is the discounted intrinsic value
  of the forward, gamma and vega are 0 and delta is the step function.

The normal CDF is ``erfc(-x / sqrt(2)) / 2`` (``math.erfc``), which keeps full relative
precision in the lower tail where ``1 + erf(x)`` would cancel; no scipy needed.

``price``/``greeks`` take and return floats; ``price_array``/``greeks_array`` broadcast
numpy arrays (a chain's strikes, for instance) and return arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "Greeks",
    "GreeksArray",
    "greeks",
    "greeks_array",
    "implied_volatility",
    "norm_cdf",
    "norm_pdf",
    "price",
    "price_array",
]

OptionKind = Literal["call", "put"]
FloatArray = npt.NDArray[np.float64]
ArrayLike = float | npt.ArrayLike

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_erfc = np.frompyfunc(math.erfc, 1, 1)


def norm_cdf(x: ArrayLike) -> FloatArray:
    """Standard normal CDF, elementwise."""
    arr = np.asarray(x, dtype=np.float64)
    return np.asarray(0.5 * _erfc(-arr / _SQRT2), dtype=np.float64)


def norm_pdf(x: ArrayLike) -> FloatArray:
    """Standard normal density, elementwise."""
    arr = np.asarray(x, dtype=np.float64)
    return np.asarray(_INV_SQRT_2PI * np.exp(-0.5 * arr * arr), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Greeks:
    """Price and sensitivities of one option (theta per year, vega/rho per 1.00)."""

    price: float
    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float


@dataclass(frozen=True, slots=True)
class GreeksArray:
    """``Greeks`` for arrays of options (same conventions)."""

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    theta: FloatArray
    vega: FloatArray
    rho: FloatArray


def _check_kind(kind: str) -> bool:
    if kind == "call":
        return True
    if kind == "put":
        return False
    raise ValueError(f"option kind must be 'call' or 'put', got {kind!r}")


def _inputs(
    spot: ArrayLike,
    strike: ArrayLike,
    time: ArrayLike,
    volatility: ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    s, k, t, v = np.broadcast_arrays(
        np.asarray(spot, dtype=np.float64),
        np.asarray(strike, dtype=np.float64),
        np.asarray(time, dtype=np.float64),
        np.asarray(volatility, dtype=np.float64),
    )
    if np.any(~(s > 0)):
        raise ValueError("spot must be > 0")
    if np.any(~(k > 0)):
        raise ValueError("strike must be > 0")
    if np.any(~(t >= 0)):
        raise ValueError("time to expiry must be >= 0")
    if np.any(~(v >= 0)):
        raise ValueError("volatility must be >= 0")
    return s, k, t, v


def greeks_array(
    kind: OptionKind,
    spot: ArrayLike,
    strike: ArrayLike,
    time: ArrayLike,
    rate: ArrayLike,
    volatility: ArrayLike,
    dividend_yield: ArrayLike = 0.0,
) -> GreeksArray:
    """Price and greeks, broadcasting every argument."""
    is_call = _check_kind(kind)
    s, k, t, v = _inputs(spot, strike, time, volatility)
    r = np.broadcast_to(np.asarray(rate, dtype=np.float64), s.shape)
    q = np.broadcast_to(np.asarray(dividend_yield, dtype=np.float64), s.shape)

    disc_r = np.exp(-r * t)
    disc_q = np.exp(-q * t)
    sd = v * np.sqrt(t)
    live = sd > 0
    safe_sd = np.where(live, sd, 1.0)
    d1 = np.where(live, (np.log(s / k) + (r - q) * t + 0.5 * sd * sd) / safe_sd, 0.0)
    d2 = d1 - sd
    pdf_d1 = norm_pdf(d1)
    # Degenerate (no uncertainty left): the forward's intrinsic value, step-function delta.
    forward_itm = s * disc_q > k * disc_r
    sign = 1.0 if is_call else -1.0
    n_d1 = np.where(live, norm_cdf(sign * d1), np.where(forward_itm == is_call, 1.0, 0.0))
    n_d2 = np.where(live, norm_cdf(sign * d2), np.where(forward_itm == is_call, 1.0, 0.0))

    price_ = sign * (s * disc_q * n_d1 - k * disc_r * n_d2)
    delta = sign * disc_q * n_d1
    gamma = np.where(live, disc_q * pdf_d1 / (s * safe_sd), 0.0)
    vega = np.where(live, s * disc_q * pdf_d1 * np.sqrt(t), 0.0)
    safe_t = np.where(t > 0, t, 1.0)
    theta_diffusion = np.where(live, -s * disc_q * pdf_d1 * v / (2.0 * np.sqrt(safe_t)), 0.0)
    theta = theta_diffusion + sign * (q * s * disc_q * n_d1 - r * k * disc_r * n_d2)
    rho = sign * k * t * disc_r * n_d2
    return GreeksArray(
        price=np.maximum(price_, 0.0),
        delta=delta,
        gamma=gamma,
        theta=theta,
        vega=vega,
        rho=rho,
    )


def price_array(
    kind: OptionKind,
    spot: ArrayLike,
    strike: ArrayLike,
    time: ArrayLike,
    rate: ArrayLike,
    volatility: ArrayLike,
    dividend_yield: ArrayLike = 0.0,
) -> FloatArray:
    """Option prices, broadcasting every argument."""
    return greeks_array(kind, spot, strike, time, rate, volatility, dividend_yield).price


def greeks(
    kind: OptionKind,
    spot: float,
    strike: float,
    time: float,
    rate: float,
    volatility: float,
    dividend_yield: float = 0.0,
) -> Greeks:
    """Price and greeks of one option."""
    g = greeks_array(kind, spot, strike, time, rate, volatility, dividend_yield)
    return Greeks(
        price=float(g.price),
        delta=float(g.delta),
        gamma=float(g.gamma),
        theta=float(g.theta),
        vega=float(g.vega),
        rho=float(g.rho),
    )


def price(
    kind: OptionKind,
    spot: float,
    strike: float,
    time: float,
    rate: float,
    volatility: float,
    dividend_yield: float = 0.0,
) -> float:
    """Price of one option."""
    return greeks(kind, spot, strike, time, rate, volatility, dividend_yield).price


def implied_volatility(
    kind: OptionKind,
    option_price: float,
    spot: float,
    strike: float,
    time: float,
    rate: float,
    dividend_yield: float = 0.0,
    *,
    tol: float = 1e-10,
    max_volatility: float = 10.0,
) -> float:
    """The volatility at which ``price`` equals ``option_price`` (bisection; robust).

    Raises ``ValueError`` when the price is outside the no-arbitrage bounds or T <= 0.
    """
    if time <= 0:
        raise ValueError("implied volatility needs time to expiry > 0")
    lo_price = price(kind, spot, strike, time, rate, 0.0, dividend_yield)
    hi_price = price(kind, spot, strike, time, rate, max_volatility, dividend_yield)
    if not lo_price - tol <= option_price <= hi_price + tol:
        raise ValueError(
            f"option price {option_price} is outside the attainable range "
            f"[{lo_price:.6g}, {hi_price:.6g}]"
        )
    lo, hi = 0.0, max_volatility
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if price(kind, spot, strike, time, rate, mid, dividend_yield) < option_price:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol:
            break
    return 0.5 * (lo + hi)
