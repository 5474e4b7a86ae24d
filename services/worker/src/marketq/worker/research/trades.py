"""From predictions and the current portfolio to proposed orders, within limits and cash."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TradeRules:
    top_n: int
    max_position_weight: float  # of portfolio equity, per symbol


@dataclass(frozen=True, slots=True)
class Order:
    symbol: str
    side: str  # buy | sell
    quantity: float
    limit_price: float
    reason: str


def propose_orders(
    predicted: Mapping[str, float],
    prices: Mapping[str, float],
    holdings: Mapping[str, float],
    cash: float,
    rules: TradeRules,
) -> list[Order]:
    """Orders moving ``holdings`` towards the top predictions, sells first.

    Each chosen symbol gets ``min(1/top_n, max_position_weight)`` of equity in whole
    shares; held symbols not chosen are sold. Buys are cut to the cash available after
    the sells (the cash check), so no proposal needs margin."""
    equity = cash + sum(qty * prices[symbol] for symbol, qty in holdings.items() if qty)
    ranked = sorted(
        ((value, symbol) for symbol, value in predicted.items() if value > 0 and symbol in prices),
        key=lambda item: (-item[0], item[1]),
    )[: rules.top_n]
    weight = min(1.0 / rules.top_n, rules.max_position_weight)
    targets = {symbol: math.floor(weight * equity / prices[symbol]) for _, symbol in ranked}
    orders: list[Order] = []
    available = cash
    for symbol in sorted(holdings):
        excess = holdings[symbol] - targets.get(symbol, 0)
        if excess > 0 and symbol in prices:
            available += excess * prices[symbol]
            reason = "not among the top predictions" if symbol not in targets else "over target"
            orders.append(Order(symbol, "sell", float(excess), prices[symbol], reason))
    for value, symbol in ranked:
        wanted = targets[symbol] - holdings.get(symbol, 0)
        affordable = math.floor(available / prices[symbol])
        quantity = min(wanted, affordable)
        if quantity > 0:
            available -= quantity * prices[symbol]
            reason = f"predicted return {value:.5f}" + (
                " (cut to the cash available)" if quantity < wanted else ""
            )
            orders.append(Order(symbol, "buy", float(quantity), prices[symbol], reason))
    return orders
