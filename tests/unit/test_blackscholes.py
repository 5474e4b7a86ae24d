"""Black-Scholes(-Merton) against textbook values, finite differences and parity."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pytest

from marketq.providers import blackscholes as bs

Kind = Literal["call", "put"]
KINDS: tuple[Kind, Kind] = ("call", "put")


def test_textbook_at_the_money() -> None:
    # S=100, K=100, r=5%, sigma=20%, T=1 (e.g. Hull; widely tabulated).
    assert bs.price("call", 100, 100, 1.0, 0.05, 0.2) == pytest.approx(10.450584, abs=1e-5)
    assert bs.price("put", 100, 100, 1.0, 0.05, 0.2) == pytest.approx(5.573526, abs=1e-5)


def test_hull_example() -> None:
    # Hull, Options Futures and Other Derivatives: S=42, K=40, r=10%, sigma=20%, T=0.5.
    assert bs.price("call", 42, 40, 0.5, 0.10, 0.2) == pytest.approx(4.7594, abs=1e-4)
    assert bs.price("put", 42, 40, 0.5, 0.10, 0.2) == pytest.approx(0.8086, abs=1e-4)


def test_merton_with_dividend_yield() -> None:
    # Hull: European index call S=930, K=900, r=8%, q=3%, sigma=20%, T=2/12 -> ~51.83.
    assert bs.price("call", 930, 900, 2 / 12, 0.08, 0.2, 0.03) == pytest.approx(51.83, abs=0.01)


def test_norm_cdf_is_accurate_in_both_tails() -> None:
    assert float(bs.norm_cdf(0.0)) == 0.5
    assert float(bs.norm_cdf(1.959963984540054)) == pytest.approx(0.975, rel=1e-14)
    # Lower tail keeps relative precision (1 + erf(x) would return 0 here).
    assert float(bs.norm_cdf(-10.0)) == pytest.approx(7.619853024160527e-24, rel=1e-12)
    assert float(bs.norm_cdf(-38.0)) > 0.0
    assert float(bs.norm_cdf(10.0)) == 1.0
    x = np.linspace(-5, 5, 101)
    assert np.allclose(bs.norm_cdf(x) + bs.norm_cdf(-x), 1.0, atol=1e-15)
    assert float(bs.norm_pdf(0.0)) == pytest.approx(1 / math.sqrt(2 * math.pi))


CASES = [
    # spot, strike, time, rate, vol, dividend yield
    (100.0, 100.0, 1.0, 0.05, 0.2, 0.0),
    (100.0, 120.0, 0.25, 0.03, 0.35, 0.01),
    (50.0, 40.0, 0.1, 0.04, 0.6, 0.02),
    (250.0, 260.0, 2.0, 0.01, 0.15, 0.03),
    (20.0, 25.0, 0.05, 0.05, 0.9, 0.0),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("s", "k", "t", "r", "v", "q"), CASES)
def test_greeks_match_finite_differences(
    kind: Kind, s: float, k: float, t: float, r: float, v: float, q: float
) -> None:
    g = bs.greeks(kind, s, k, t, r, v, q)

    def p(s_: float = s, t_: float = t, r_: float = r, v_: float = v) -> float:
        return bs.price(kind, s_, k, t_, r_, v_, q)

    h = s * 1e-4
    assert g.price == pytest.approx(p())
    assert g.delta == pytest.approx((p(s_=s + h) - p(s_=s - h)) / (2 * h), abs=1e-6)
    assert g.gamma == pytest.approx(
        (p(s_=s + h) - 2 * p() + p(s_=s - h)) / (h * h), rel=1e-3, abs=1e-6
    )
    dv = 1e-5
    assert g.vega == pytest.approx((p(v_=v + dv) - p(v_=v - dv)) / (2 * dv), rel=1e-5)
    dt = 1e-6
    # theta is the derivative with respect to calendar time: -dP/dT, per year.
    assert g.theta == pytest.approx(-(p(t_=t + dt) - p(t_=t - dt)) / (2 * dt), rel=1e-4)
    dr = 1e-6
    assert g.rho == pytest.approx((p(r_=r + dr) - p(r_=r - dr)) / (2 * dr), rel=1e-5)


@pytest.mark.parametrize(("s", "k", "t", "r", "v", "q"), CASES)
def test_put_call_parity_and_bounds(
    s: float, k: float, t: float, r: float, v: float, q: float
) -> None:
    call = bs.greeks("call", s, k, t, r, v, q)
    put = bs.greeks("put", s, k, t, r, v, q)
    forward_value = s * math.exp(-q * t) - k * math.exp(-r * t)
    assert call.price - put.price == pytest.approx(forward_value, abs=1e-9)
    assert max(0.0, forward_value) <= call.price <= s * math.exp(-q * t)
    assert call.delta - put.delta == pytest.approx(math.exp(-q * t))
    assert call.gamma == pytest.approx(put.gamma)
    assert call.vega == pytest.approx(put.vega)
    assert 0 < call.delta < 1
    assert -1 < put.delta < 0
    assert call.gamma > 0
    assert call.vega > 0


def test_arrays_match_scalars() -> None:
    strikes = np.array([80.0, 90.0, 100.0, 110.0, 120.0])
    vols = np.array([0.3, 0.25, 0.2, 0.22, 0.26])
    for kind in KINDS:
        arr = bs.greeks_array(kind, 100.0, strikes, 0.5, 0.03, vols, 0.01)
        assert arr.price.shape == (5,)
        for i, (k, v) in enumerate(zip(strikes, vols, strict=True)):
            one = bs.greeks(kind, 100.0, float(k), 0.5, 0.03, float(v), 0.01)
            assert arr.price[i] == pytest.approx(one.price, rel=1e-14)
            assert arr.delta[i] == pytest.approx(one.delta, rel=1e-14)
            assert arr.theta[i] == pytest.approx(one.theta, rel=1e-14)
        assert np.allclose(
            bs.price_array(kind, 100.0, strikes, 0.5, 0.03, vols, 0.01), arr.price, rtol=0
        )
    # Prices increase with volatility and decrease (calls) with the strike.
    calls = bs.price_array("call", 100.0, strikes, 0.5, 0.03, 0.2)
    assert np.all(np.diff(calls) < 0)


def test_expiry_and_zero_volatility_are_intrinsic() -> None:
    assert bs.price("call", 110, 100, 0.0, 0.05, 0.3) == pytest.approx(10.0)
    assert bs.price("put", 110, 100, 0.0, 0.05, 0.3) == 0.0
    assert bs.price("put", 90, 100, 0.0, 0.05, 0.3) == pytest.approx(10.0)
    at_expiry = bs.greeks("call", 110, 100, 0.0, 0.05, 0.3)
    assert (at_expiry.delta, at_expiry.gamma, at_expiry.vega) == (1.0, 0.0, 0.0)
    # sigma = 0: discounted intrinsic value of the forward.
    expected = 100 - 95 * math.exp(-0.05)
    assert bs.price("call", 100, 95, 1.0, 0.05, 0.0) == pytest.approx(expected)
    assert bs.price("put", 100, 95, 1.0, 0.05, 0.0) == 0.0


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="spot"):
        bs.price("call", 0.0, 100, 1, 0.05, 0.2)
    with pytest.raises(ValueError, match="strike"):
        bs.price("call", 100, -1.0, 1, 0.05, 0.2)
    with pytest.raises(ValueError, match="time"):
        bs.price("call", 100, 100, -0.1, 0.05, 0.2)
    with pytest.raises(ValueError, match="volatility"):
        bs.price("call", 100, 100, 1, 0.05, -0.2)
    with pytest.raises(ValueError, match="kind"):
        bs.price("straddle", 100, 100, 1, 0.05, 0.2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="spot"):
        bs.price("call", float("nan"), 100, 1, 0.05, 0.2)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("vol", [0.05, 0.2, 0.55, 1.5])
def test_implied_volatility_round_trip(kind: Kind, vol: float) -> None:
    target = bs.price(kind, 100, 105, 0.4, 0.03, vol, 0.01)
    assert bs.implied_volatility(kind, target, 100, 105, 0.4, 0.03, 0.01) == pytest.approx(
        vol, abs=1e-7
    )


def test_implied_volatility_rejects_impossible_prices() -> None:
    with pytest.raises(ValueError, match="outside"):
        bs.implied_volatility("call", 150.0, 100, 100, 1.0, 0.05)
    with pytest.raises(ValueError, match="time"):
        bs.implied_volatility("call", 5.0, 100, 100, 0.0, 0.05)
