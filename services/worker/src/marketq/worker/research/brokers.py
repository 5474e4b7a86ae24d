"""Broker adapters ``sync_broker`` reconciles with: a paper broker kept in the database
(the default) and Alpaca's paper-trading API through alpaca-py.

An adapter reports the account (cash and positions) and submits orders. Whether orders
are submitted at all is decided by the caller from ``MARKETQ_TRADING_SEND_ORDERS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketq.common.db.models import BrokerAccount, Position
from marketq.common.settings import Settings


@dataclass(frozen=True, slots=True)
class AccountState:
    cash: float
    positions: dict[str, float]  # symbol -> quantity


@dataclass(frozen=True, slots=True)
class OrderTicket:
    client_order_id: str  # deterministic: a re-sent order is recognised by the broker
    symbol: str
    side: str
    quantity: float
    limit_price: float


@dataclass(frozen=True, slots=True)
class OrderReceipt:
    broker_order_id: str
    status: str  # sent | filled | rejected


class Broker(Protocol):
    name: str

    def account(self) -> AccountState: ...

    def submit(self, ticket: OrderTicket) -> OrderReceipt: ...


def broker_account(
    session: Session, portfolio_id: int, broker: str, settings: Settings
) -> BrokerAccount:
    """The portfolio's cash row at ``broker``; a paper account opens with the starting cash."""
    account = session.scalar(
        select(BrokerAccount).where(
            BrokerAccount.portfolio_id == portfolio_id, BrokerAccount.broker == broker
        )
    )
    if account is None:
        account = BrokerAccount(
            portfolio_id=portfolio_id,
            broker=broker,
            cash=settings.paper_starting_cash,
            updated_at=datetime.now(UTC),
        )
        session.add(account)
        session.flush()
    return account


class PaperBroker:
    """Fills every order at once at its limit price, in the portfolio's own tables."""

    name = "paper"

    def __init__(self, session: Session, portfolio_id: int, settings: Settings) -> None:
        self._session = session
        self._portfolio_id = portfolio_id
        self._settings = settings

    def account(self) -> AccountState:
        cash = broker_account(self._session, self._portfolio_id, self.name, self._settings).cash
        rows = self._session.scalars(
            select(Position).where(Position.portfolio_id == self._portfolio_id)
        ).all()
        return AccountState(cash, {row.symbol: row.quantity for row in rows if row.quantity})

    def submit(self, ticket: OrderTicket) -> OrderReceipt:
        now = datetime.now(UTC)
        account = broker_account(self._session, self._portfolio_id, self.name, self._settings)
        position = self._session.scalar(
            select(Position).where(
                Position.portfolio_id == self._portfolio_id, Position.symbol == ticket.symbol
            )
        )
        signed = ticket.quantity if ticket.side == "buy" else -ticket.quantity
        value = ticket.quantity * ticket.limit_price
        if ticket.side == "buy" and value > account.cash + 1e-9:
            return OrderReceipt(ticket.client_order_id, "rejected")
        if position is None:
            if ticket.side == "sell":
                return OrderReceipt(ticket.client_order_id, "rejected")
            position = Position(
                portfolio_id=self._portfolio_id,
                symbol=ticket.symbol,
                quantity=0.0,
                cost_basis=0.0,
                updated_at=now,
            )
            self._session.add(position)
        elif ticket.side == "sell" and ticket.quantity > position.quantity + 1e-9:
            return OrderReceipt(ticket.client_order_id, "rejected")
        if ticket.side == "buy":
            position.cost_basis += value
        elif position.quantity:
            position.cost_basis *= 1 - ticket.quantity / position.quantity
        position.quantity += signed
        position.updated_at = now
        account.cash -= signed * ticket.limit_price
        account.updated_at = now
        self._session.flush()
        return OrderReceipt(ticket.client_order_id, "filled")


class AlpacaBroker:
    """Alpaca's Trading API (paper endpoint unless ``MARKETQ_ALPACA_URL`` says otherwise)."""

    name = "alpaca"

    def __init__(self, settings: Settings) -> None:
        from alpaca.trading.client import TradingClient

        if not settings.alpaca_api_key or not settings.alpaca_secret_key:
            raise ValueError(
                "MARKETQ_ALPACA_API_KEY and MARKETQ_ALPACA_SECRET_KEY are required for the "
                "alpaca broker"
            )
        self._client = TradingClient(
            api_key=settings.alpaca_api_key,
            secret_key=settings.alpaca_secret_key,
            paper=True,
            url_override=settings.alpaca_url,
        )

    def account(self) -> AccountState:
        account: Any = self._client.get_account()
        positions: Any = self._client.get_all_positions()
        return AccountState(
            float(account.cash), {str(p.symbol): float(p.qty) for p in positions if float(p.qty)}
        )

    def submit(self, ticket: OrderTicket) -> OrderReceipt:
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import LimitOrderRequest

        order: Any = self._client.submit_order(
            LimitOrderRequest(
                symbol=ticket.symbol,
                qty=ticket.quantity,
                side=OrderSide.BUY if ticket.side == "buy" else OrderSide.SELL,
                time_in_force=TimeInForce.DAY,
                limit_price=round(ticket.limit_price, 2),
                client_order_id=ticket.client_order_id,
            )
        )
        status = str(getattr(order.status, "value", order.status))
        return OrderReceipt(str(order.id), "filled" if status == "filled" else "sent")
