"""index updated_at of every data table for the freshness gauges

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:56:30.003935

"""

from collections.abc import Sequence

from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("company_info", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_company_info_updated_at"), ["updated_at"], unique=False
        )

    with op.batch_alter_table("daily_bars", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_daily_bars_updated_at"), ["updated_at"], unique=False)

    with op.batch_alter_table("data_imports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_data_imports_updated_at"), ["updated_at"], unique=False
        )

    with op.batch_alter_table("dividends", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dividends_updated_at"), ["updated_at"], unique=False)

    with op.batch_alter_table("earnings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_earnings_updated_at"), ["updated_at"], unique=False)

    with op.batch_alter_table("earnings_calendar", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_earnings_calendar_updated_at"), ["updated_at"], unique=False
        )

    with op.batch_alter_table("earnings_transcripts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_earnings_transcripts_updated_at"), ["updated_at"], unique=False
        )

    with op.batch_alter_table("economic_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_economic_events_updated_at"), ["updated_at"], unique=False
        )

    with op.batch_alter_table("economic_indicators", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_economic_indicators_updated_at"), ["updated_at"], unique=False
        )

    with op.batch_alter_table("fundamentals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fundamentals_updated_at"), ["updated_at"], unique=False
        )

    with op.batch_alter_table("news_articles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_news_articles_updated_at"), ["updated_at"], unique=False
        )

    with op.batch_alter_table("option_quotes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_option_quotes_updated_at"), ["updated_at"], unique=False
        )

    with op.batch_alter_table("portfolio_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_portfolio_reports_updated_at"), ["updated_at"], unique=False
        )

    with op.batch_alter_table("portfolio_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_portfolio_snapshots_updated_at"), ["updated_at"], unique=False
        )

    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_positions_updated_at"), ["updated_at"], unique=False)

    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quotes_updated_at"), ["updated_at"], unique=False)

    with op.batch_alter_table("technical_indicators", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_technical_indicators_updated_at"), ["updated_at"], unique=False
        )

    with op.batch_alter_table("trading_signals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_trading_signals_updated_at"), ["updated_at"], unique=False
        )



def downgrade() -> None:
    with op.batch_alter_table("trading_signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trading_signals_updated_at"))

    with op.batch_alter_table("technical_indicators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_technical_indicators_updated_at"))

    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quotes_updated_at"))

    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_positions_updated_at"))

    with op.batch_alter_table("portfolio_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portfolio_snapshots_updated_at"))

    with op.batch_alter_table("portfolio_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portfolio_reports_updated_at"))

    with op.batch_alter_table("option_quotes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_option_quotes_updated_at"))

    with op.batch_alter_table("news_articles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_news_articles_updated_at"))

    with op.batch_alter_table("fundamentals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fundamentals_updated_at"))

    with op.batch_alter_table("economic_indicators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_economic_indicators_updated_at"))

    with op.batch_alter_table("economic_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_economic_events_updated_at"))

    with op.batch_alter_table("earnings_transcripts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_earnings_transcripts_updated_at"))

    with op.batch_alter_table("earnings_calendar", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_earnings_calendar_updated_at"))

    with op.batch_alter_table("earnings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_earnings_updated_at"))

    with op.batch_alter_table("dividends", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dividends_updated_at"))

    with op.batch_alter_table("data_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_imports_updated_at"))

    with op.batch_alter_table("daily_bars", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_daily_bars_updated_at"))

    with op.batch_alter_table("company_info", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_company_info_updated_at"))

