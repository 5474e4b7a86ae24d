"""The research workflow on stored data: universe, features, model, backtest, trades, broker.

Every job reads what earlier steps stored and writes keyed rows, so a re-run with the same
stored inputs writes the same numbers (docs/research.md).
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from marketq.common.db.models import (
    BacktestEquityRow,
    BacktestRow,
    DailyBarRow,
    FeatureRow,
    ModelRun,
    Portfolio,
    Position,
    PredictionRow,
    ProposedOrder,
    UniverseMember,
)
from marketq.common.params import (
    BuildFeaturesParams,
    GenerateTradesParams,
    RebuildUniverseParams,
    RunBacktestParams,
    SyncBrokerParams,
    TrainAndPredictParams,
)
from marketq.worker.context import JobContext
from marketq.worker.errors import PermanentJobError
from marketq.worker.jobs._rows import write
from marketq.worker.registry import JobResult, implements
from marketq.worker.research.backtest import (
    StrategyRules,
    performance,
    strategy_returns,
    target_weights,
)
from marketq.worker.research.brokers import (
    AlpacaBroker,
    Broker,
    OrderTicket,
    PaperBroker,
    broker_account,
)
from marketq.worker.research.features import FEATURE_COLUMNS, LABEL_COLUMN, compute_features
from marketq.worker.research.model import NotEnoughDataError, WalkForwardConfig, walk_forward
from marketq.worker.research.trades import TradeRules, propose_orders
from marketq.worker.research.universe import UniverseRules, select_universe


def _calendar_days_for(sessions: int) -> int:
    # 252 sessions a year, with slack for holidays.
    return math.ceil(sessions * 365 / 245) + 10


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _skipped(as_of: date, reason: str) -> JobResult:
    """The result of a step with nothing to work on yet: a success that says why."""
    return {"as_of": as_of.isoformat(), "skipped": reason}


def _research_symbols(
    session: Session, ctx: JobContext, requested: list[str] | None, as_of: date
) -> list[str]:
    """The requested symbols, else the newest stored universe, else the configured symbols."""
    if requested:
        return list(requested)
    newest = session.scalar(
        select(func.max(UniverseMember.as_of)).where(UniverseMember.as_of <= as_of)
    )
    if newest is not None:
        return list(
            session.scalars(
                select(UniverseMember.symbol)
                .where(UniverseMember.as_of == newest)
                .order_by(UniverseMember.rank)
            )
        )
    return list(ctx.settings.symbols)


@implements("rebuild_universe")
def rebuild_universe(ctx: JobContext, params: RebuildUniverseParams) -> JobResult:
    as_of = params.as_of or ctx.last_session
    since = as_of - timedelta(days=_calendar_days_for(params.min_history_days))
    with ctx.transaction() as session:
        rows = session.execute(
            select(
                DailyBarRow.symbol, DailyBarRow.day, DailyBarRow.close, DailyBarRow.volume
            ).where(DailyBarRow.day <= as_of, DailyBarRow.day > since)
        ).all()
        bars = pd.DataFrame(rows, columns=["symbol", "day", "close", "volume"])
        rules = UniverseRules(
            min_price=params.min_price,
            min_history_days=params.min_history_days,
            liquidity_window=params.liquidity_window,
            size=params.size,
        )
        members = select_universe(bars, rules) if not bars.empty else []
        # The universe of a day is replaced whole: a re-run with other rules leaves no
        # member of the previous one behind.
        session.execute(delete(UniverseMember).where(UniverseMember.as_of == as_of))
        write(
            session,
            UniverseMember,
            [
                {
                    "as_of": as_of,
                    "symbol": m.symbol,
                    "rank": m.rank,
                    "avg_dollar_volume": m.avg_dollar_volume,
                    "last_close": m.last_close,
                    "history_days": m.history_days,
                }
                for m in members
            ],
        )
    return {
        "as_of": as_of.isoformat(),
        "candidates": int(bars["symbol"].nunique()) if not bars.empty else 0,
        "members": len(members),
    }


def _bars(session: Session, symbol: str, until: date, limit: int) -> pd.DataFrame:
    rows = session.execute(
        select(DailyBarRow.day, DailyBarRow.close, DailyBarRow.volume)
        .where(DailyBarRow.symbol == symbol, DailyBarRow.day <= until)
        .order_by(DailyBarRow.day.desc())
        .limit(limit)
    ).all()
    return pd.DataFrame(rows, columns=["day", "close", "volume"]).iloc[::-1].reset_index(drop=True)


@implements("build_features")
def build_features(ctx: JobContext, params: BuildFeaturesParams) -> JobResult:
    as_of = params.as_of or ctx.last_session
    with ctx.transaction() as session:
        symbols = _research_symbols(session, ctx, params.symbols, as_of)
    written = 0
    for done, symbol in enumerate(symbols, start=1):
        with ctx.transaction() as session:
            frame = compute_features(_bars(session, symbol, as_of, params.window_days))
            rows = [
                {
                    "symbol": symbol,
                    "day": record["day"],
                    **{c: float(record[c]) for c in FEATURE_COLUMNS},
                    LABEL_COLUMN: _finite(float(record[LABEL_COLUMN])),
                }
                for record in frame.to_dict("records")
            ]
            written += write(session, FeatureRow, rows)
        ctx.progress(done, len(symbols))
    return {"as_of": as_of.isoformat(), "symbols": len(symbols), "rows": written}


@implements("train_and_predict")
def train_and_predict(ctx: JobContext, params: TrainAndPredictParams) -> JobResult:
    as_of = params.as_of or ctx.last_session
    with ctx.transaction() as session:
        symbols = _research_symbols(session, ctx, params.symbols, as_of)
        rows = session.execute(
            select(
                FeatureRow.symbol,
                FeatureRow.day,
                *(getattr(FeatureRow, c) for c in FEATURE_COLUMNS),
                getattr(FeatureRow, LABEL_COLUMN),
            ).where(FeatureRow.symbol.in_(symbols), FeatureRow.day <= as_of)
        ).all()
    frame = pd.DataFrame(rows, columns=["symbol", "day", *FEATURE_COLUMNS, LABEL_COLUMN])
    frame[LABEL_COLUMN] = frame[LABEL_COLUMN].astype("float64")
    # The label of the last day stored is only known once the next bar is: never train on it.
    frame.loc[frame["day"] >= as_of, LABEL_COLUMN] = float("nan")
    config = WalkForwardConfig(
        test_days=params.test_days,
        refit_every=params.refit_every,
        min_train_rows=params.min_train_rows,
        alpha=params.alpha,
    )
    try:
        result = walk_forward(frame, config)
    except NotEnoughDataError as exc:
        return _skipped(as_of, f"{exc}; run build_features over a longer window first")
    version = hashlib.sha256(json.dumps(result.parameters, sort_keys=True).encode()).hexdigest()[
        :16
    ]
    with ctx.transaction() as session:
        write(
            session,
            PredictionRow,
            [
                {
                    "model": params.model,
                    "symbol": record["symbol"],
                    "day": record["day"],
                    "predicted_return": float(record["predicted_return"]),
                    "realised_return": _finite(float(record["realised_return"])),
                }
                for record in result.predictions.to_dict("records")
            ],
        )
        write(
            session,
            ModelRun,
            [
                {
                    "model": params.model,
                    "as_of": as_of,
                    "version": version,
                    "features": list(FEATURE_COLUMNS),
                    "parameters": result.parameters,
                    "metrics": result.metrics,
                    "train_start": result.train_start,
                    "test_start": result.test_start,
                    "test_end": result.test_end,
                }
            ],
        )
    return {
        "as_of": as_of.isoformat(),
        "model": params.model,
        "version": version,
        "predictions": len(result.predictions),
        **{k: v for k, v in result.metrics.items() if v is not None},
    }


@implements("run_backtest")
def run_backtest(ctx: JobContext, params: RunBacktestParams) -> JobResult:
    as_of = params.as_of or ctx.last_session
    rules = StrategyRules(top_n=params.top_n, cost_bps=params.cost_bps)
    with ctx.transaction() as session:
        predictions = pd.DataFrame(
            session.execute(
                select(
                    PredictionRow.symbol, PredictionRow.day, PredictionRow.predicted_return
                ).where(PredictionRow.model == params.model, PredictionRow.day <= as_of)
            ).all(),
            columns=["symbol", "day", "predicted_return"],
        )
        if predictions.empty:
            return _skipped(as_of, f"no predictions of model {params.model!r} yet")
        symbols = sorted(predictions["symbol"].unique())
        closes = (
            pd.DataFrame(
                session.execute(
                    select(DailyBarRow.day, DailyBarRow.symbol, DailyBarRow.close).where(
                        DailyBarRow.symbol.in_(symbols),
                        DailyBarRow.day >= predictions["day"].min(),
                        DailyBarRow.day <= as_of,
                    )
                ).all(),
                columns=["day", "symbol", "close"],
            )
            .pivot(index="day", columns="symbol", values="close")
            .sort_index()
        )
    periods = strategy_returns(target_weights(predictions, rules), closes, rules)
    if len(periods) < 2:
        return _skipped(as_of, "fewer than two backtest periods with a known outcome")
    result = performance(periods["net_return"], periods["turnover"], periods["exposure"])
    equity = (1.0 + periods["net_return"]).cumprod()
    # The curve is replaced whole, so it always matches the metrics stored beside it.
    with ctx.transaction() as session:
        session.execute(
            delete(BacktestEquityRow).where(
                BacktestEquityRow.name == params.name, BacktestEquityRow.as_of == as_of
            )
        )
        write(
            session,
            BacktestEquityRow,
            [
                {
                    "name": params.name,
                    "as_of": as_of,
                    "day": day,
                    "equity": float(value),
                    "net_return": float(net),
                    "turnover": float(traded),
                }
                for day, value, net, traded in zip(
                    periods["day"], equity, periods["net_return"], periods["turnover"], strict=True
                )
            ],
        )
        write(
            session,
            BacktestRow,
            [
                {
                    "name": params.name,
                    "as_of": as_of,
                    "model": params.model,
                    "settings": {"top_n": params.top_n, "cost_bps": params.cost_bps},
                    "start": periods["day"].iloc[0],
                    "end": periods["day"].iloc[-1],
                    "periods": result.periods,
                    "cagr": result.cagr,
                    "annual_volatility": result.annual_volatility,
                    "sharpe": result.sharpe,
                    "max_drawdown": result.max_drawdown,
                    "hit_rate": result.hit_rate,
                    "turnover": result.turnover,
                    "final_equity": result.final_equity,
                }
            ],
        )
    return {
        "as_of": as_of.isoformat(),
        "name": params.name,
        "periods": result.periods,
        "cagr": result.cagr,
        "sharpe": result.sharpe,
        "max_drawdown": result.max_drawdown,
    }


def _portfolio(session: Session, name: str) -> Portfolio:
    portfolio = session.scalar(select(Portfolio).where(Portfolio.name == name))
    if portfolio is None:
        # Insert-if-missing on the natural key: two jobs creating the same portfolio at
        # once (generate_trades and sync_broker) must not fail on the unique name.
        now = datetime.now(UTC)
        write(
            session,
            Portfolio,
            [{"name": name, "created_at": now, "updated_at": now}],
            keep_existing=True,
        )
        portfolio = session.scalars(select(Portfolio).where(Portfolio.name == name)).one()
    return portfolio


@implements("generate_trades")
def generate_trades(ctx: JobContext, params: GenerateTradesParams) -> JobResult:
    as_of = params.as_of or ctx.last_session
    with ctx.transaction() as session:
        portfolio = _portfolio(session, params.portfolio)
        already_sent = session.scalar(
            select(func.count()).where(
                ProposedOrder.portfolio_id == portfolio.id,
                ProposedOrder.as_of == as_of,
                ProposedOrder.status != "proposed",
            )
        )
        if already_sent:
            return {"as_of": as_of.isoformat(), "orders": 0, "skipped": "orders already sent"}
        day = session.scalar(
            select(func.max(PredictionRow.day)).where(
                PredictionRow.model == params.model, PredictionRow.day <= as_of
            )
        )
        if day is None:
            return _skipped(as_of, f"no predictions of model {params.model!r} yet")
        predicted: dict[str, float] = {
            symbol: value
            for symbol, value in session.execute(
                select(PredictionRow.symbol, PredictionRow.predicted_return).where(
                    PredictionRow.model == params.model, PredictionRow.day == day
                )
            )
        }
        # Cash as of the broker's last sync (the paper broker's own books by default).
        cash = broker_account(session, portfolio.id, ctx.settings.trading_broker, ctx.settings).cash
        holdings = {
            row.symbol: row.quantity
            for row in session.scalars(
                select(Position).where(Position.portfolio_id == portfolio.id)
            )
            if row.quantity
        }
        wanted = sorted(set(predicted) | set(holdings))
        prices = {
            symbol: close
            for symbol, close in session.execute(
                select(DailyBarRow.symbol, DailyBarRow.close).where(
                    DailyBarRow.symbol.in_(wanted), DailyBarRow.day == day
                )
            )
        }
        missing = sorted(s for s in holdings if s not in prices)
        if missing:
            raise PermanentJobError(
                f"no stored close on {day} for held symbols {', '.join(missing)}"
            )
        orders = propose_orders(
            predicted,
            prices,
            holdings,
            cash,
            TradeRules(top_n=params.top_n, max_position_weight=params.max_position_weight),
        )
        session.execute(
            delete(ProposedOrder).where(
                ProposedOrder.portfolio_id == portfolio.id, ProposedOrder.as_of == as_of
            )
        )
        write(
            session,
            ProposedOrder,
            [
                {
                    "portfolio_id": portfolio.id,
                    "as_of": as_of,
                    "symbol": order.symbol,
                    "side": order.side,
                    "quantity": order.quantity,
                    "limit_price": order.limit_price,
                    "reason": order.reason,
                    "status": "proposed",
                    "broker": None,
                    "broker_order_id": None,
                }
                for order in orders
            ],
        )
    return {
        "as_of": as_of.isoformat(),
        "predictions_of": day.isoformat(),
        "orders": len(orders),
        "buys": sum(o.side == "buy" for o in orders),
        "sells": sum(o.side == "sell" for o in orders),
    }


def _broker(ctx: JobContext, session: Session, portfolio_id: int) -> Broker:
    if ctx.settings.trading_broker == "alpaca":
        return AlpacaBroker(ctx.settings)
    return PaperBroker(session, portfolio_id, ctx.settings)


@implements("sync_broker")
def sync_broker(ctx: JobContext, params: SyncBrokerParams) -> JobResult:
    as_of = params.as_of or ctx.last_session
    sent = 0
    result: dict[str, Any] = {"as_of": as_of.isoformat(), "broker": ctx.settings.trading_broker}
    with ctx.transaction() as session:
        portfolio = _portfolio(session, params.portfolio)
        broker = _broker(ctx, session, portfolio.id)
        pending = session.scalars(
            select(ProposedOrder)
            .where(
                ProposedOrder.portfolio_id == portfolio.id,
                ProposedOrder.as_of == as_of,
                ProposedOrder.status == "proposed",
            )
            .order_by(ProposedOrder.side.desc(), ProposedOrder.symbol)  # sells first
        ).all()
        if ctx.settings.trading_send_orders:
            for order in pending:
                receipt = broker.submit(
                    OrderTicket(
                        client_order_id=f"marketq-{portfolio.id}-{as_of:%Y%m%d}-{order.symbol}",
                        symbol=order.symbol,
                        side=order.side,
                        quantity=order.quantity,
                        limit_price=order.limit_price,
                    )
                )
                order.status = receipt.status
                order.broker = broker.name
                order.broker_order_id = receipt.broker_order_id
                order.updated_at = datetime.now(UTC)
                sent += 1
        else:
            result["not_sent"] = len(pending)
        # Reconcile: the broker's account is the truth the portfolio tables follow.
        state = broker.account()
        account = broker_account(session, portfolio.id, broker.name, ctx.settings)
        account.cash = state.cash
        changed = _reconcile_positions(session, portfolio.id, state.positions)
    return {
        **result,
        "sent": sent,
        "cash": state.cash,
        "positions": len(state.positions),
        "positions_changed": changed,
    }


def _reconcile_positions(session: Session, portfolio_id: int, held: dict[str, float]) -> int:
    now = datetime.now(UTC)
    rows = {
        row.symbol: row
        for row in session.scalars(select(Position).where(Position.portfolio_id == portfolio_id))
    }
    changed = 0
    for symbol, row in rows.items():
        quantity = held.get(symbol, 0.0)
        if abs(row.quantity - quantity) > 1e-9:
            row.quantity, row.updated_at = quantity, now
            changed += 1
    for symbol, quantity in held.items():
        if symbol not in rows:
            session.add(
                Position(
                    portfolio_id=portfolio_id,
                    symbol=symbol,
                    quantity=quantity,
                    cost_basis=0.0,
                    updated_at=now,
                )
            )
            changed += 1
    return changed
