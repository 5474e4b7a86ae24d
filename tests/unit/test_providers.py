"""The synthetic provider: determinism, plausibility and consistency between methods."""

from __future__ import annotations

import inspect
import itertools
import math
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from marketq.common.scheduling.calendar import MarketCalendar
from marketq.providers import blackscholes as bs
from marketq.providers import get_provider
from marketq.providers.base import DailyBar, MarketDataProvider, OptionContract, Quote
from marketq.providers.synthetic import (
    ADJ_REFERENCE_DATE,
    ECONOMIC_SERIES,
    RISK_FREE_RATE,
    SyntheticProvider,
)

NY = ZoneInfo("America/New_York")
SYMBOLS = ("AAPL", "MSFT", "SPY", "XOM", "AMZN", "ZZZT", "QWER")


def et(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=NY)


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar("XNYS")


@pytest.fixture(scope="module")
def provider(cal: MarketCalendar) -> SyntheticProvider:
    return SyntheticProvider(seed=0, calendar=cal)


def fresh(seed: int = 0) -> SyntheticProvider:
    """A provider with empty caches (so equality is not just a cache hit)."""
    return SyntheticProvider(seed=seed, calendar=MarketCalendar("XNYS"))


# --- interface ----------------------------------------------------------------------


def test_implements_the_protocol(provider: SyntheticProvider) -> None:
    typed: MarketDataProvider = provider  # mypy checks the structural match
    assert typed.name == "synthetic"
    members = [
        n for n, v in vars(MarketDataProvider).items() if not n.startswith("_") and callable(v)
    ]
    assert len(members) == 12
    for name in members:
        expected = inspect.signature(getattr(MarketDataProvider, name))
        actual = inspect.signature(getattr(SyntheticProvider, name))
        assert list(actual.parameters) == list(expected.parameters), name


def test_get_provider_uses_the_settings() -> None:
    from marketq.common.settings import Settings

    routed = get_provider(Settings(provider="synthetic", provider_seed=7, exchange="XNYS"))
    (p,) = routed.chain("daily_bars")
    assert isinstance(p, SyntheticProvider)
    assert p.name == "synthetic"
    assert p.seed == 7
    assert p.calendar.code == "XNYS"
    # One synthetic provider per (seed, exchange) in a process: its price paths are shared.
    assert get_provider(Settings(provider_seed=7, exchange="XNYS")).chain("quotes") == [p]
    (other,) = get_provider(Settings(provider_seed=8, exchange="XNYS")).chain("quotes")
    assert isinstance(other, SyntheticProvider)
    assert other.seed == 8


def test_invalid_arguments(provider: SyntheticProvider) -> None:
    with pytest.raises(ValueError, match="symbol"):
        provider.quote("aapl", et(2026, 3, 10, 11))
    with pytest.raises(ValueError, match="symbol"):
        provider.daily_bars("", date(2026, 1, 1), date(2026, 1, 31))
    with pytest.raises(ValueError, match="naive"):
        provider.quote("AAPL", datetime(2026, 3, 10, 11))
    with pytest.raises(ValueError, match="naive"):
        provider.option_chain("AAPL", datetime(2026, 3, 10, 11), 1, 1)
    with pytest.raises(ValueError, match="naive"):
        provider.news("AAPL", datetime(2026, 3, 10), datetime(2026, 3, 11, tzinfo=UTC), 5)
    with pytest.raises(ValueError, match="outside"):
        provider.daily_bars("AAPL", date(1970, 1, 1), date(1970, 12, 31))


# --- determinism --------------------------------------------------------------------


def _sample(p: SyntheticProvider) -> list[object]:
    at = et(2026, 3, 10, 11, 7, 42)
    return [
        p.daily_bars("AAPL", date(2024, 12, 20), date(2025, 1, 10)),
        p.quote("MSFT", at),
        p.quote("MSFT", et(2026, 3, 14, 12)),
        p.option_chain("SPY", at, 2, 2),
        p.fundamentals("XOM", date(2026, 6, 1), 3),
        p.dividends("JNJ", date(2025, 1, 1), date(2025, 12, 31)),
        p.earnings("NVDA", date(2026, 6, 1), 3),
        p.earnings_calendar(["AAPL", "QWER"], date(2026, 4, 1), date(2026, 6, 30)),
        p.earnings_transcript("ZZZT", "2025Q4"),
        p.news("AAPL", datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC), 20),
        p.economic_series("CPI", date(2025, 1, 1), date(2025, 6, 1)),
        p.economic_events(date(2026, 3, 1), date(2026, 3, 31)),
        p.company_profile("QWER"),
    ]


def test_same_inputs_same_records(provider: SyntheticProvider) -> None:
    first = _sample(provider)
    assert _sample(provider) == first
    assert _sample(fresh(0)) == first


def test_different_seed_different_numbers() -> None:
    a = fresh(0).daily_bars("AAPL", date(2025, 1, 1), date(2025, 3, 31))
    b = fresh(1).daily_bars("AAPL", date(2025, 1, 1), date(2025, 3, 31))
    assert [x.day for x in a] == [x.day for x in b]
    assert all(x.close != y.close for x, y in zip(a, b, strict=True))
    qa = fresh(0).quote("AAPL", et(2026, 3, 10, 11))
    qb = fresh(1).quote("AAPL", et(2026, 3, 10, 11))
    assert qa.price != qb.price
    assert fresh(0).news("AAPL", et(2026, 3, 1), et(2026, 3, 8), 50) != fresh(1).news(
        "AAPL", et(2026, 3, 1), et(2026, 3, 8), 50
    )


@pytest.mark.integration
def test_determinism_across_processes(provider: SyntheticProvider) -> None:
    code = (
        "from datetime import date, datetime, UTC\n"
        "from marketq.common.scheduling.calendar import MarketCalendar\n"
        "from marketq.providers.synthetic import SyntheticProvider\n"
        "p = SyntheticProvider(seed=42, calendar=MarketCalendar('XNYS'))\n"
        "at = datetime(2026, 3, 10, 15, 7, tzinfo=UTC)\n"
        "print(repr(p.daily_bars('AAPL', date(2025, 6, 2), date(2025, 6, 6))))\n"
        "print(repr(p.quote('QWER', at)))\n"
        "print(repr(p.option_chain('MSFT', at, 1, 1)))\n"
        "print(repr(p.news('AAPL', datetime(2026, 3, 9, tzinfo=UTC), at, 5)))\n"
        "print(repr(p.dividends('XOM', date(2025, 1, 1), date(2025, 12, 31))))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # a different str hash than ours
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    p = fresh(42)
    at = datetime(2026, 3, 10, 15, 7, tzinfo=UTC)
    expected = [
        repr(p.daily_bars("AAPL", date(2025, 6, 2), date(2025, 6, 6))),
        repr(p.quote("QWER", at)),
        repr(p.option_chain("MSFT", at, 1, 1)),
        repr(p.news("AAPL", datetime(2026, 3, 9, tzinfo=UTC), at, 5)),
        repr(p.dividends("XOM", date(2025, 1, 1), date(2025, 12, 31))),
    ]
    assert out.splitlines() == expected


# --- daily bars ---------------------------------------------------------------------


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_bars_are_plausible_over_ten_years(
    provider: SyntheticProvider, cal: MarketCalendar, symbol: str
) -> None:
    start, end = date(2016, 1, 1), date(2025, 12, 31)
    bars = provider.daily_bars(symbol, start, end)
    assert [b.day for b in bars] == [s.day for s in cal.sessions(start, end)]
    for b in bars:
        assert b.symbol == symbol
        assert 0 < b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert b.volume > 0
        assert 0.4 * b.close <= b.adj_close <= b.close
    closes = np.array([b.close for b in bars])
    log_returns = np.diff(np.log(closes))
    annual_vol = float(np.std(log_returns) * math.sqrt(252))
    assert 0.08 < annual_vol < 0.9
    assert float(np.max(np.abs(log_returns))) < 0.5
    # Around the anchor the price is near the 20..600 base range.
    assert 10 < provider.daily_bars(symbol, date(2025, 1, 2), date(2025, 1, 2))[0].close < 1200


def test_bars_do_not_depend_on_the_requested_range(provider: SyntheticProvider) -> None:
    year = provider.daily_bars("MSFT", date(2019, 1, 1), date(2020, 12, 31))
    june = fresh().daily_bars("MSFT", date(2020, 6, 1), date(2020, 6, 30))
    assert june == [b for b in year if date(2020, 6, 1) <= b.day <= date(2020, 6, 30)]
    assert provider.daily_bars("MSFT", date(2026, 3, 14), date(2026, 3, 15)) == []
    assert provider.daily_bars("MSFT", date(2026, 3, 20), date(2026, 3, 19)) == []


def test_open_gaps_from_the_previous_close(provider: SyntheticProvider) -> None:
    bars = provider.daily_bars("AAPL", date(2024, 1, 1), date(2024, 12, 31))
    gaps = [abs(math.log(b.open / a.close)) for a, b in itertools.pairwise(bars)]
    assert max(gaps) < 0.2
    assert sum(g > 0 for g in gaps) > len(gaps) / 2


def test_adj_close_reflects_dividends(provider: SyntheticProvider, cal: MarketCalendar) -> None:
    start, end = date(2023, 1, 1), date(2025, 12, 31)
    bars = {b.day: b for b in provider.daily_bars("XOM", start, end)}
    divs = provider.dividends("XOM", start, end)
    assert len(divs) == 12
    for d in divs:
        before = bars[cal.previous_session(d.ex_date)]
        on = bars[d.ex_date]
        ratio_before = before.adj_close / before.close
        ratio_on = on.adj_close / on.close
        # Crossing an ex-date multiplies the adjustment by (1 - amount / previous close).
        assert ratio_before / ratio_on == pytest.approx(1 - d.amount / before.close, abs=5e-5)
    after = provider.daily_bars("XOM", ADJ_REFERENCE_DATE, ADJ_REFERENCE_DATE + timedelta(days=60))
    assert all(b.adj_close == b.close for b in after)
    assert all(b.adj_close == b.close for b in provider.daily_bars("AMZN", start, end))


# --- quotes -------------------------------------------------------------------------


def _session_quotes(
    p: SyntheticProvider, symbol: str, day: date, cal: MarketCalendar
) -> list[Quote]:
    session = cal.session(day)
    assert session is not None
    return [
        p.quote(symbol, session.open + timedelta(minutes=m, seconds=17))
        for m in range(session.minutes)
    ]


@pytest.mark.parametrize("symbol", ["AAPL", "SPY", "QWER"])
@pytest.mark.parametrize("day", [date(2026, 3, 10), date(2025, 11, 28)])
def test_quotes_follow_the_days_bar(
    provider: SyntheticProvider, cal: MarketCalendar, symbol: str, day: date
) -> None:
    bar: DailyBar = provider.daily_bars(symbol, day, day)[0]
    prev: DailyBar = provider.daily_bars(symbol, cal.previous_session(day), day)[0]
    quotes = _session_quotes(provider, symbol, day, cal)
    session = cal.session(day)
    assert session is not None
    assert len(quotes) == session.minutes  # 210 on the early close
    assert quotes[0].price == bar.open
    for i, q in enumerate(quotes):
        assert q.ts == session.open + timedelta(minutes=i)
        assert q.ts.tzinfo == UTC
        assert bar.low <= q.price <= bar.high
        assert q.bid < q.price < q.ask
        assert (q.ask - q.bid) / q.price < 0.01
        assert q.bid_size > 0
        assert q.ask_size > 0
        assert q.change == pytest.approx(q.price - prev.close, abs=1e-9)
        assert q.change_percent == pytest.approx(
            100 * (q.price - prev.close) / prev.close, abs=1e-3
        )
    volumes = [q.volume for q in quotes]
    assert all(b > a for a, b in itertools.pairwise(volumes))
    assert volumes[0] > 0
    assert volumes[-1] == bar.volume
    # The intraday path touches the day's high and low.
    touched = [q.price for q in quotes] + [bar.close]
    assert max(touched) == bar.high
    assert min(touched) == bar.low


def test_quote_outside_the_session_is_the_last_close(
    provider: SyntheticProvider, cal: MarketCalendar
) -> None:
    friday, thursday = date(2026, 3, 13), date(2026, 3, 12)
    fri = provider.daily_bars("AAPL", friday, friday)[0]
    thu = provider.daily_bars("AAPL", thursday, thursday)[0]
    for at in (et(2026, 3, 13, 16, 0), et(2026, 3, 14, 12, 0), et(2026, 3, 16, 9, 29, 59)):
        q = provider.quote("AAPL", at)
        assert q.ts == at.astimezone(UTC).replace(second=0)
        assert q.price == fri.close
        assert q.volume == fri.volume
        assert q.bid < q.price < q.ask
        assert q.change == pytest.approx(fri.close - thu.close, abs=1e-9)
    # On the next session's open the quote is that session's open.
    monday = provider.daily_bars("AAPL", date(2026, 3, 16), date(2026, 3, 16))[0]
    assert provider.quote("AAPL", et(2026, 3, 16, 9, 30)).price == monday.open
    # Early close: 12:59 is inside, 13:00 is the close.
    early = provider.daily_bars("AAPL", date(2025, 11, 28), date(2025, 11, 28))[0]
    assert provider.quote("AAPL", et(2025, 11, 28, 13, 0)).price == early.close
    assert provider.quote("AAPL", et(2025, 11, 28, 13, 0)).volume == early.volume
    # The last minute's cumulative volume (through 12:59:59) is the whole session's.
    assert provider.quote("AAPL", et(2025, 11, 28, 12, 59)).volume == early.volume
    assert provider.quote("AAPL", et(2025, 11, 28, 12, 58)).volume < early.volume
    # A holiday reads the previous session.
    assert (
        provider.quote("AAPL", et(2025, 12, 25, 12)).price
        == provider.daily_bars("AAPL", date(2025, 12, 24), date(2025, 12, 24))[0].close
    )


# --- options ------------------------------------------------------------------------


def _third_friday(year: int, month: int) -> date:
    fridays = [date(year, month, d) for d in range(15, 22) if date(year, month, d).weekday() == 4]
    return fridays[0]


def _years_to_expiry(contract: OptionContract) -> float:
    e = contract.expiration
    close = datetime.combine(e, time(16, 0), tzinfo=NY)  # no monthly expiry is an early close
    return (close - contract.as_of).total_seconds() / (365 * 86_400)


@pytest.mark.parametrize("symbol", ["AAPL", "SPY", "AMZN", "QWER"])
def test_option_chain_is_consistent(provider: SyntheticProvider, symbol: str) -> None:
    as_of = et(2026, 3, 10, 11, 7, 42)
    chain = provider.option_chain(symbol, as_of, 3, 4)
    quote = provider.quote(symbol, as_of)
    q = provider.dividend_yield(symbol)
    expiries = sorted({c.expiration for c in chain})
    assert expiries == [_third_friday(2026, m) for m in (3, 4, 5)]
    assert len(chain) == 3 * 9 * 2
    assert chain == sorted(chain, key=lambda c: (c.expiration, c.strike, c.option_type != "call"))
    strikes = sorted({c.strike for c in chain})
    assert strikes[0] < quote.price < strikes[-1]
    steps = {round(b - a, 6) for a, b in itertools.pairwise(strikes)}
    assert len(steps) == 1
    for c in chain:
        assert c.underlying == symbol
        assert c.as_of == datetime(2026, 3, 10, 15, 7, tzinfo=UTC)
        assert c.underlying_price == quote.price
        assert 0.05 <= c.implied_volatility <= 2.5
        assert 0 <= c.bid < c.ask
        assert c.bid <= c.last <= c.ask
        assert c.open_interest >= 0
        assert c.volume >= 0
        t = _years_to_expiry(c)
        g = bs.greeks(
            c.option_type, c.underlying_price, c.strike, t, RISK_FREE_RATE, c.implied_volatility, q
        )
        assert c.bid - 1e-6 <= g.price <= c.ask + 1e-6
        assert c.delta == pytest.approx(g.delta, rel=1e-4, abs=1e-7)
        assert c.gamma == pytest.approx(g.gamma, rel=1e-4, abs=1e-7)
        assert c.vega == pytest.approx(g.vega, rel=1e-4, abs=1e-6)
        assert c.theta == pytest.approx(g.theta / 365, rel=1e-4, abs=1e-7)
        assert c.gamma >= 0
        assert c.vega >= 0
        if c.option_type == "call":
            assert 0 <= c.delta <= 1
        else:
            assert -1 <= c.delta <= 0
        if abs(math.log(c.strike / c.underlying_price)) < 0.15:
            assert 0 < abs(c.delta) < 1
            assert c.gamma > 0
            assert c.vega > 0
            assert c.theta < 0 or c.option_type == "put"
    # Put-call parity on mid prices, within the two spreads.
    by_key = {(c.expiration, c.strike, c.option_type): c for c in chain}
    for (expiry, strike, kind), call in by_key.items():
        if kind != "call":
            continue
        put = by_key[(expiry, strike, "put")]
        t = _years_to_expiry(call)
        parity = quote.price * math.exp(-q * t) - strike * math.exp(-RISK_FREE_RATE * t)
        mids = (call.bid + call.ask) / 2 - (put.bid + put.ask) / 2
        spreads = (call.ask - call.bid + put.ask - put.bid) / 2
        assert abs(mids - parity) <= spreads + 1e-9


def test_option_smile_and_term_structure_are_plausible(provider: SyntheticProvider) -> None:
    chain = provider.option_chain("MSFT", et(2026, 3, 10, 11), 2, 6)
    first = [c for c in chain if c.expiration == chain[0].expiration and c.option_type == "call"]
    ivs = [c.implied_volatility for c in first]
    atm = min(first, key=lambda c: abs(c.strike - c.underlying_price)).implied_volatility
    assert 0.1 < atm < 0.8
    assert ivs[0] > atm  # downside skew
    calls = [c.bid + c.ask for c in first]
    assert all(b <= a for a, b in itertools.pairwise(calls))


def test_holiday_expiry_moves_to_the_previous_session(provider: SyntheticProvider) -> None:
    # The third Friday of April 2025 was Good Friday: the expiry is Thursday 17 April.
    chain = provider.option_chain("AAPL", et(2025, 4, 1, 12), 2, 1)
    assert sorted({c.expiration for c in chain}) == [date(2025, 4, 17), date(2025, 5, 16)]
    # On an expiry day itself, that expiry is no longer listed.
    later = provider.option_chain("AAPL", et(2025, 4, 17, 12), 1, 1)
    assert {c.expiration for c in later} == {date(2025, 5, 16)}


def test_option_volume_before_the_open_is_zero(provider: SyntheticProvider) -> None:
    chain = provider.option_chain("AAPL", et(2026, 3, 10, 8, 0), 1, 2)
    assert all(c.volume == 0 for c in chain)
    assert any(c.open_interest > 0 for c in chain)


# --- fundamentals, dividends, earnings ------------------------------------------------


def _quarter_end(d: date) -> bool:
    return d.month in (3, 6, 9, 12) and (d + timedelta(days=1)).day == 1


def test_fundamentals(provider: SyntheticProvider) -> None:
    rows = provider.fundamentals("AAPL", date(2026, 3, 31), 8)
    assert len(rows) == 8
    assert rows[-1].period_end == date(2025, 12, 31)
    assert rows[0].period_end == date(2024, 3, 31)
    assert all(_quarter_end(r.period_end) and r.period_type == "quarter" for r in rows)
    assert provider.fundamentals("AAPL", date(2026, 4, 1), 1)[0].period_end == date(2026, 3, 31)
    assert provider.fundamentals("AAPL", date(2026, 4, 1), 0) == []
    for r in rows:
        assert r.revenue > 0
        assert r.total_assets > r.total_liabilities > 0
        assert r.shares_outstanding > 0
        assert r.eps == pytest.approx(r.net_income / r.shares_outstanding, abs=0.006)
    # pe_ratio = price / trailing four quarters of EPS, price = market cap / shares.
    last = rows[-1]
    ttm = sum(r.net_income / r.shares_outstanding for r in rows[-4:])
    assert last.pe_ratio is not None
    price = last.market_cap / last.shares_outstanding
    assert last.pe_ratio == pytest.approx(price / ttm, rel=0.01)


def test_negative_earnings_have_no_pe(provider: SyntheticProvider) -> None:
    seen_negative = False
    for i in range(80):
        rows = provider.fundamentals(f"S{i:03d}", date(2026, 1, 15), 4)
        ttm = sum(r.net_income for r in rows)
        assert (rows[-1].pe_ratio is None) == (ttm <= 0)
        seen_negative |= ttm <= 0
        if rows[-1].pe_ratio is not None:
            assert rows[-1].pe_ratio > 0
    assert seen_negative


@pytest.mark.parametrize("symbol", ["AAPL", "XOM", "JNJ", "SPY", "MSFT"])
def test_dividends_of_payers(provider: SyntheticProvider, cal: MarketCalendar, symbol: str) -> None:
    start, end = date(2022, 1, 1), date(2025, 12, 31)
    divs = provider.dividends(symbol, start, end)
    assert len(divs) == 16
    assert [d.ex_date for d in divs] == sorted(d.ex_date for d in divs)
    for d in divs:
        assert start <= d.ex_date <= end
        assert cal.is_trading_day(d.ex_date)
        assert d.record_date == cal.next_session(d.ex_date)
        assert cal.is_trading_day(d.pay_date)
        assert 14 <= (d.pay_date - d.ex_date).days <= 35
        assert cal.is_trading_day(d.declared_date)
        assert 21 <= (d.ex_date - d.declared_date).days <= 40
        assert d.amount > 0
        assert d.currency == "USD"
    # Quarterly: ex-dates roughly three months apart.
    gaps = [(b.ex_date - a.ex_date).days for a, b in itertools.pairwise(divs)]
    assert all(80 <= g <= 100 for g in gaps)
    # A sub-range is a subset (pure function of the quarter).
    assert fresh().dividends(symbol, date(2024, 1, 1), date(2024, 12, 31)) == [
        d for d in divs if d.ex_date.year == 2024
    ]


def test_non_payers_pay_nothing(provider: SyntheticProvider) -> None:
    for symbol in ("AMZN", "GOOGL", "TSLA"):
        assert provider.dividends(symbol, date(2015, 1, 1), date(2026, 12, 31)) == []
        assert provider.dividend_yield(symbol) == 0.0
    payers = sum(bool(provider.dividends(f"P{i:03d}", date(2025, 1, 1), date(2025, 12, 31)))
                 for i in range(60))  # fmt: skip
    assert 10 < payers < 55  # a hash-based mix of payers and non-payers


def test_earnings(provider: SyntheticProvider, cal: MarketCalendar) -> None:
    as_of = date(2026, 6, 1)
    reports = provider.earnings("MSFT", as_of, 5)
    assert len(reports) == 5
    periods = [r.fiscal_period for r in reports]
    assert all(re.fullmatch(r"\d{4}Q[1-4]", p) for p in periods)
    assert periods == sorted(periods)
    assert [r.eps_actual is None for r in reports] == [False] * 4 + [True]
    assert [r.revenue_actual is None for r in reports] == [False] * 4 + [True]
    fundamentals = {f.period_end: f for f in provider.fundamentals("MSFT", date(2026, 6, 1), 8)}
    for r in reports:
        year, q = int(r.fiscal_period[:4]), int(r.fiscal_period[-1])
        quarter_end = date(year, 3 * q, 1) + timedelta(days=31)
        quarter_end = quarter_end.replace(day=1) - timedelta(days=1)
        assert cal.is_trading_day(r.report_date)
        assert 14 <= (r.report_date - quarter_end).days <= 50
        assert (r.report_date <= as_of) == (r.eps_actual is not None)
        if r.eps_actual is not None:
            assert r.eps_actual == fundamentals[quarter_end].eps
            assert r.revenue_actual == fundamentals[quarter_end].revenue
        actual = fundamentals[quarter_end].eps if quarter_end in fundamentals else None
        if actual is not None:
            assert abs(r.eps_estimate - actual) <= 0.3 * abs(actual) + 0.02
    # On its report date the pending quarter counts as reported.
    pending = reports[-1]
    on_day, following = provider.earnings("MSFT", pending.report_date, 2)
    assert following.eps_actual is None
    assert on_day.fiscal_period == pending.fiscal_period
    assert on_day.eps_actual is not None
    assert on_day.eps_estimate == pending.eps_estimate


def test_earnings_calendar(provider: SyntheticProvider) -> None:
    symbols = ["AAPL", "MSFT", "QWER", "ZZZT"]
    start, end = date(2026, 1, 1), date(2026, 12, 31)
    entries = provider.earnings_calendar(symbols, start, end)
    assert entries == sorted(entries, key=lambda e: (e.report_date, e.symbol))
    for symbol in symbols:
        mine = [e for e in entries if e.symbol == symbol]
        assert len(mine) == 4
        assert len({e.time_of_day for e in mine}) == 1
        assert {e.time_of_day for e in mine} <= {"bmo", "amc"}
        for e in mine:
            assert start <= e.report_date <= end
            report = next(
                r
                for r in provider.earnings(symbol, e.report_date - timedelta(days=1), 1)
                if r.fiscal_period == e.fiscal_period
            )
            assert report.report_date == e.report_date
            assert report.eps_estimate == e.eps_estimate


def test_transcript(provider: SyntheticProvider) -> None:
    t = provider.earnings_transcript("AAPL", "2025Q4")
    assert t.symbol == "AAPL"
    assert t.fiscal_period == "2025Q4"
    assert "AAPL" in t.content
    assert "2025Q4" in t.content
    assert 2_000 <= len(t.content.encode()) <= 10_000
    assert t.call_date == provider.earnings("AAPL", date(2026, 1, 2), 1)[0].report_date
    assert t.content != provider.earnings_transcript("AAPL", "2025Q3").content
    with pytest.raises(ValueError, match="fiscal_period"):
        provider.earnings_transcript("AAPL", "2025-Q4")


# --- news -----------------------------------------------------------------------------


def test_news_window_and_order(provider: SyntheticProvider) -> None:
    since = datetime(2026, 3, 2, 13, 17, tzinfo=UTC)
    until = datetime(2026, 3, 9, 2, 41, tzinfo=UTC)
    articles = provider.news("AAPL", since, until, 1_000)
    assert len(articles) > 10
    assert len({a.article_id for a in articles}) == len(articles)
    stamps = [a.published_at for a in articles]
    assert stamps == sorted(stamps, reverse=True)
    for a in articles:
        assert since <= a.published_at < until
        assert a.published_at.tzinfo is not None
        assert -1.0 <= a.sentiment <= 1.0
        assert a.symbol == "AAPL"
        assert a.headline
        assert a.url.startswith("https://")
        assert a.article_id in a.url or a.article_id[4:12] in a.url
    assert provider.news("AAPL", since, until, 3) == articles[:3]
    assert provider.news("AAPL", until, since, 10) == []
    assert provider.news("AAPL", since, until, 0) == []


def test_news_overlapping_windows_agree(provider: SyntheticProvider) -> None:
    a = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    b = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    c = datetime(2026, 3, 6, 18, 45, tzinfo=UTC)
    whole = provider.news("MSFT", a, c, 10_000)
    left = fresh().news("MSFT", a, b, 10_000)
    right = fresh().news("MSFT", b, c, 10_000)
    assert whole == right + left
    lo, hi = a + timedelta(hours=20), c - timedelta(hours=20)
    middle = provider.news("MSFT", lo, hi, 10_000)
    assert middle == [x for x in whole if lo <= x.published_at < hi]


def test_news_sentiment_varies(provider: SyntheticProvider) -> None:
    articles = provider.news(
        "SPY", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC), 10_000
    )
    sentiments = [a.sentiment for a in articles]
    assert min(sentiments) < -0.3
    assert max(sentiments) > 0.3


# --- economy --------------------------------------------------------------------------


RANGES = {
    "GDP": (15_000, 45_000),
    "CPI": (200, 400),
    "UNRATE": (2, 12),
    "FEDFUNDS": (0, 8),
    "PAYEMS": (120_000, 200_000),
}


@pytest.mark.parametrize("series", sorted(ECONOMIC_SERIES))
def test_economic_series(provider: SyntheticProvider, series: str) -> None:
    start, end = date(2015, 1, 1), date(2030, 12, 31)
    obs = provider.economic_series(series, start, end)
    frequency, unit = ECONOMIC_SERIES[series]
    months = [o.period.year * 12 + o.period.month for o in obs]
    step = 3 if frequency == "quarterly" else 1
    assert len(obs) == 16 * 12 // step
    assert all(b - a == step for a, b in itertools.pairwise(months))
    lo, hi = RANGES[series]
    for o in obs:
        assert o.series == series
        assert o.unit == unit
        assert o.period.day == 1
        assert lo <= o.value <= hi
    if series == "GDP":
        assert {o.period.month for o in obs} == {1, 4, 7, 10}
    assert provider.economic_series(series, date(2020, 2, 1), date(2020, 6, 30)) == [
        o for o in obs if date(2020, 2, 1) <= o.period <= date(2020, 6, 30)
    ]


def test_unknown_series_is_rejected(provider: SyntheticProvider) -> None:
    with pytest.raises(ValueError, match="NOPE") as err:
        provider.economic_series("NOPE", date(2025, 1, 1), date(2025, 12, 31))
    assert "CPI" in str(err.value)


def test_economic_events(provider: SyntheticProvider, cal: MarketCalendar) -> None:
    start, end = date(2026, 1, 1), date(2026, 12, 31)
    events = provider.economic_events(start, end)
    assert len({e.event_id for e in events}) == len(events)
    assert events == sorted(events, key=lambda e: (e.scheduled_at, e.name))
    names = {e.name for e in events}
    assert {"CPI", "Nonfarm Payrolls", "FOMC Rate Decision", "GDP (Advance)"} <= names
    for e in events:
        local = e.scheduled_at.astimezone(NY)
        assert e.scheduled_at.utcoffset() == timedelta(0)
        assert start <= local.date() <= end
        assert cal.is_trading_day(local.date())
        assert e.country == "US"
        assert e.importance in ("low", "medium", "high")
    by_name: dict[str, list[datetime]] = {}
    for e in events:
        by_name.setdefault(e.name, []).append(e.scheduled_at.astimezone(NY))
    assert len(by_name["FOMC Rate Decision"]) == 8
    assert all(t.time() == time(14, 0) for t in by_name["FOMC Rate Decision"])
    assert len(by_name["CPI"]) == 12
    assert all(t.time() == time(8, 30) for t in by_name["CPI"])
    assert len(by_name["GDP (Advance)"]) == 4
    # Payrolls: the first Friday of the month at 08:30 New York time (both DST regimes),
    # the Thursday before when that Friday is a holiday (3 July 2026).
    assert len(by_name["Nonfarm Payrolls"]) == 12
    for t in by_name["Nonfarm Payrolls"]:
        first_friday = next(
            date(t.year, t.month, d) for d in range(1, 8) if date(t.year, t.month, d).weekday() == 4
        )
        expected = first_friday
        if not cal.is_trading_day(first_friday):
            expected = first_friday - timedelta(days=1)
        assert (t.date(), t.time()) == (expected, time(8, 30))
    assert date(2026, 7, 2) in {t.date() for t in by_name["Nonfarm Payrolls"]}
    # Thanksgiving week: jobless claims move to Wednesday 25 November.
    claims = {t.date() for t in by_name["Initial Jobless Claims"]}
    assert date(2026, 11, 25) in claims
    assert date(2026, 11, 26) not in claims
    # Stable ids: a narrower window returns the same events.
    march = provider.economic_events(date(2026, 3, 1), date(2026, 3, 31))
    assert march == [e for e in events if e.scheduled_at.astimezone(NY).month == 3]


def test_fomc_decisions_are_quarter_point_rates(provider: SyntheticProvider) -> None:
    events = provider.economic_events(date(2025, 1, 1), date(2026, 12, 31))
    decisions = [e for e in events if e.name == "FOMC Rate Decision"]
    assert len(decisions) == 16
    for e in decisions:
        assert e.actual is not None
        assert (e.actual * 4) == pytest.approx(round(e.actual * 4))
        assert 0 < e.actual <= 6
    # "previous" is the decision of the meeting before.
    for before, after in itertools.pairwise(decisions):
        assert after.previous == before.actual


# --- profiles -------------------------------------------------------------------------


def test_company_profiles(provider: SyntheticProvider) -> None:
    apple = provider.company_profile("AAPL")
    assert apple.name == "Apple Inc."
    assert apple.sector == "Technology"
    assert apple.exchange == "NASDAQ"
    generated = provider.company_profile("QWER")
    assert generated.name
    assert generated.sector
    assert generated.industry
    assert generated.employees > 0
    assert generated.currency == "USD"
    assert "QWER" in generated.description
    # Identity depends on the symbol only; a different seed names it the same.
    assert fresh(99).company_profile("QWER") == generated
    names = {provider.company_profile(f"G{i:03d}").name for i in range(50)}
    assert len(names) > 25
