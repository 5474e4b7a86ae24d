"""initial schema: market data, derived data, portfolios, imports and the run ledger

Revision ID: 0001
Revises:
Create Date: 2026-11-22 03:12:35.142872

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "company_info",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("sector", sa.String(length=128), nullable=False),
        sa.Column("industry", sa.String(length=128), nullable=False),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("country", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("employees", sa.BigInteger(), nullable=False),
        sa.Column("website", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_company_info")),
        sa.UniqueConstraint("symbol", name="uq_company_info_natural_key"),
    )
    op.create_table(
        "daily_bars",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("adj_close", sa.Double(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_bars")),
        sa.UniqueConstraint("symbol", "day", name="uq_daily_bars_natural_key"),
    )
    op.create_table(
        "data_imports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column("checksum", sa.String(length=128), nullable=False),
        sa.Column("filename", sa.String(length=1024), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_imports")),
        sa.UniqueConstraint("checksum", "dataset", name="uq_data_imports_natural_key"),
    )
    op.create_table(
        "dividends",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("ex_date", sa.Date(), nullable=False),
        sa.Column("record_date", sa.Date(), nullable=False),
        sa.Column("pay_date", sa.Date(), nullable=False),
        sa.Column("declared_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Double(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dividends")),
        sa.UniqueConstraint("symbol", "ex_date", name="uq_dividends_natural_key"),
    )
    op.create_table(
        "earnings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("fiscal_period", sa.String(length=16), nullable=False),
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("eps_estimate", sa.Double(), nullable=False),
        sa.Column("eps_actual", sa.Double(), nullable=True),
        sa.Column("revenue_estimate", sa.Double(), nullable=False),
        sa.Column("revenue_actual", sa.Double(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_earnings")),
        sa.UniqueConstraint("symbol", "fiscal_period", name="uq_earnings_natural_key"),
    )
    op.create_table(
        "earnings_calendar",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("fiscal_period", sa.String(length=16), nullable=False),
        sa.Column("time_of_day", sa.String(length=3), nullable=False),
        sa.Column("eps_estimate", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "time_of_day IN ('bmo', 'amc')", name=op.f("ck_earnings_calendar_time_of_day")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_earnings_calendar")),
        sa.UniqueConstraint("symbol", "report_date", name="uq_earnings_calendar_natural_key"),
    )
    op.create_table(
        "earnings_transcripts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("fiscal_period", sa.String(length=16), nullable=False),
        sa.Column("call_date", sa.Date(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_earnings_transcripts")),
        sa.UniqueConstraint("symbol", "fiscal_period", name="uq_earnings_transcripts_natural_key"),
    )
    op.create_table(
        "economic_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("country", sa.String(length=8), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("importance", sa.String(length=8), nullable=False),
        sa.Column("forecast", sa.Double(), nullable=True),
        sa.Column("previous", sa.Double(), nullable=True),
        sa.Column("actual", sa.Double(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "importance IN ('low', 'medium', 'high')", name=op.f("ck_economic_events_importance")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_economic_events")),
        sa.UniqueConstraint("event_id", name="uq_economic_events_natural_key"),
    )
    with op.batch_alter_table("economic_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_economic_events_scheduled_at"), ["scheduled_at"], unique=False
        )

    op.create_table(
        "economic_indicators",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("series", sa.String(length=64), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("unit", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_economic_indicators")),
        sa.UniqueConstraint("series", "period", name="uq_economic_indicators_natural_key"),
    )
    op.create_table(
        "fundamentals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("period_type", sa.String(length=16), nullable=False),
        sa.Column("revenue", sa.Double(), nullable=False),
        sa.Column("net_income", sa.Double(), nullable=False),
        sa.Column("eps", sa.Double(), nullable=False),
        sa.Column("total_assets", sa.Double(), nullable=False),
        sa.Column("total_liabilities", sa.Double(), nullable=False),
        sa.Column("shares_outstanding", sa.BigInteger(), nullable=False),
        sa.Column("market_cap", sa.Double(), nullable=False),
        sa.Column("pe_ratio", sa.Double(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "period_type IN ('quarter', 'annual')", name=op.f("ck_fundamentals_period_type")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fundamentals")),
        sa.UniqueConstraint(
            "symbol", "period_end", "period_type", name="uq_fundamentals_natural_key"
        ),
    )
    op.create_table(
        "news_articles",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("article_id", sa.String(length=255), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("headline", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("sentiment", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_news_articles")),
        sa.UniqueConstraint("article_id", name="uq_news_articles_natural_key"),
    )
    with op.batch_alter_table("news_articles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_news_articles_symbol_published_at"),
            ["symbol", "published_at"],
            unique=False,
        )

    op.create_table(
        "option_quotes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("underlying", sa.String(length=32), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expiration", sa.Date(), nullable=False),
        sa.Column("strike", sa.Double(), nullable=False),
        sa.Column("option_type", sa.String(length=4), nullable=False),
        sa.Column("bid", sa.Double(), nullable=False),
        sa.Column("ask", sa.Double(), nullable=False),
        sa.Column("last", sa.Double(), nullable=False),
        sa.Column("implied_volatility", sa.Double(), nullable=False),
        sa.Column("delta", sa.Double(), nullable=False),
        sa.Column("gamma", sa.Double(), nullable=False),
        sa.Column("theta", sa.Double(), nullable=False),
        sa.Column("vega", sa.Double(), nullable=False),
        sa.Column("open_interest", sa.BigInteger(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("underlying_price", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "option_type IN ('call', 'put')", name=op.f("ck_option_quotes_option_type")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_option_quotes")),
        sa.UniqueConstraint(
            "underlying",
            "as_of",
            "expiration",
            "strike",
            "option_type",
            name="uq_option_quotes_natural_key",
        ),
    )
    op.create_table(
        "portfolios",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("base_currency", sa.String(length=3), server_default="USD", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolios")),
        sa.UniqueConstraint("name", name="uq_portfolios_natural_key"),
    )
    op.create_table(
        "quotes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("bid", sa.Double(), nullable=False),
        sa.Column("ask", sa.Double(), nullable=False),
        sa.Column("bid_size", sa.BigInteger(), nullable=False),
        sa.Column("ask_size", sa.BigInteger(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("change", sa.Double(), nullable=False),
        sa.Column("change_percent", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quotes")),
        sa.UniqueConstraint("symbol", "ts", name="uq_quotes_natural_key"),
    )
    op.create_table(
        "task_runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=32), nullable=False),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress_current", sa.Integer(), nullable=True),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("eta", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_runs")),
    )
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_runs_finished_at"), ["finished_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_task_runs_job_enqueued_at"), ["job", "enqueued_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_task_runs_state"), ["state"], unique=False)

    op.create_table(
        "technical_indicators",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sma_20", sa.Double(), nullable=True),
        sa.Column("sma_50", sa.Double(), nullable=True),
        sa.Column("sma_200", sa.Double(), nullable=True),
        sa.Column("ema_12", sa.Double(), nullable=True),
        sa.Column("ema_26", sa.Double(), nullable=True),
        sa.Column("rsi_14", sa.Double(), nullable=True),
        sa.Column("macd", sa.Double(), nullable=True),
        sa.Column("macd_signal", sa.Double(), nullable=True),
        sa.Column("macd_hist", sa.Double(), nullable=True),
        sa.Column("bb_upper", sa.Double(), nullable=True),
        sa.Column("bb_middle", sa.Double(), nullable=True),
        sa.Column("bb_lower", sa.Double(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_technical_indicators")),
        sa.UniqueConstraint("symbol", "day", name="uq_technical_indicators_natural_key"),
    )
    op.create_table(
        "trading_signals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("signal", sa.String(length=4), nullable=False),
        sa.Column("strength", sa.Double(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expired", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "signal IN ('buy', 'sell', 'hold')", name=op.f("ck_trading_signals_signal")
        ),
        sa.CheckConstraint(
            "strength >= 0 AND strength <= 1", name=op.f("ck_trading_signals_strength")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trading_signals")),
        sa.UniqueConstraint("symbol", "day", "strategy", name="uq_trading_signals_natural_key"),
    )
    with op.batch_alter_table("trading_signals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_trading_signals_expired_expires_at"),
            ["expired", "expires_at"],
            unique=False,
        )

    op.create_table(
        "portfolio_reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("portfolio_id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column(
            "report",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["portfolio_id"],
            ["portfolios.id"],
            name=op.f("fk_portfolio_reports_portfolio_id_portfolios"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolio_reports")),
        sa.UniqueConstraint("portfolio_id", "as_of", name="uq_portfolio_reports_natural_key"),
    )
    op.create_table(
        "portfolio_snapshots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("portfolio_id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("market_value", sa.Double(), nullable=False),
        sa.Column("cost_basis", sa.Double(), nullable=False),
        sa.Column("unrealized_pnl", sa.Double(), nullable=False),
        sa.Column("day_change", sa.Double(), nullable=False),
        sa.Column("positions_count", sa.Integer(), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["portfolio_id"],
            ["portfolios.id"],
            name=op.f("fk_portfolio_snapshots_portfolio_id_portfolios"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolio_snapshots")),
        sa.UniqueConstraint("portfolio_id", "as_of", name="uq_portfolio_snapshots_natural_key"),
    )
    op.create_table(
        "positions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("portfolio_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("cost_basis", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["portfolio_id"],
            ["portfolios.id"],
            name=op.f("fk_positions_portfolio_id_portfolios"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.UniqueConstraint("portfolio_id", "symbol", name="uq_positions_natural_key"),
    )


def downgrade() -> None:
    op.drop_table("positions")
    op.drop_table("portfolio_snapshots")
    op.drop_table("portfolio_reports")
    with op.batch_alter_table("trading_signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trading_signals_expired_expires_at"))

    op.drop_table("trading_signals")
    op.drop_table("technical_indicators")
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_runs_state"))
        batch_op.drop_index(batch_op.f("ix_task_runs_job_enqueued_at"))
        batch_op.drop_index(batch_op.f("ix_task_runs_finished_at"))

    op.drop_table("task_runs")
    op.drop_table("quotes")
    op.drop_table("portfolios")
    op.drop_table("option_quotes")
    with op.batch_alter_table("news_articles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_news_articles_symbol_published_at"))

    op.drop_table("news_articles")
    op.drop_table("fundamentals")
    op.drop_table("economic_indicators")
    with op.batch_alter_table("economic_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_economic_events_scheduled_at"))

    op.drop_table("economic_events")
    op.drop_table("earnings_transcripts")
    op.drop_table("earnings_calendar")
    op.drop_table("earnings")
    op.drop_table("dividends")
    op.drop_table("data_imports")
    op.drop_table("daily_bars")
    op.drop_table("company_info")
