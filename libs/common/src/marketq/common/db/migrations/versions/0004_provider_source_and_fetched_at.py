"""source and fetched_at on provider data; fields vendors do not publish become nullable

Every row a provider produced records the adapter (``source``) and when the vendor
answered (``fetched_at``). Rows written before this revision all came from the synthetic
provider (daily bars already had ``source``). news_articles' old ``source`` named the
outlet: it is renamed ``publisher`` before the new ``source`` is added.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 16:43:04.364741

"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAND_EDITED_BECAUSE = (
    "autogenerate would add NOT NULL columns without values for existing rows and would "
    "drop news_articles.source instead of renaming it to publisher"
)

_NEW_SOURCE = (
    "company_info",
    "dividends",
    "earnings",
    "earnings_calendar",
    "earnings_transcripts",
    "economic_events",
    "economic_indicators",
    "fundamentals",
    "news_articles",
    "option_quotes",
    "quotes",
)
_FETCHED_AT = (*_NEW_SOURCE, "daily_bars")

# Columns that were NOT NULL and may now be NULL: (table, column, type).
_NOW_NULLABLE: tuple[tuple[str, str, Any], ...] = (
    ("company_info", "currency", sa.String(length=3)),
    ("company_info", "employees", sa.BigInteger()),
    ("dividends", "record_date", sa.Date()),
    ("dividends", "pay_date", sa.Date()),
    ("dividends", "declared_date", sa.Date()),
    ("earnings", "report_date", sa.Date()),
    ("earnings", "eps_estimate", sa.Double()),
    ("earnings", "revenue_estimate", sa.Double()),
    ("earnings_calendar", "time_of_day", sa.String(length=3)),
    ("earnings_calendar", "eps_estimate", sa.Double()),
    ("fundamentals", "eps", sa.Double()),
    ("fundamentals", "total_assets", sa.Double()),
    ("fundamentals", "total_liabilities", sa.Double()),
    ("fundamentals", "shares_outstanding", sa.BigInteger()),
    ("fundamentals", "market_cap", sa.Double()),
    ("news_articles", "sentiment", sa.Double()),
    ("option_quotes", "open_interest", sa.BigInteger()),
    ("option_quotes", "volume", sa.BigInteger()),
    ("quotes", "bid", sa.Double()),
    ("quotes", "ask", sa.Double()),
    ("quotes", "bid_size", sa.BigInteger()),
    ("quotes", "ask_size", sa.BigInteger()),
)


def upgrade() -> None:
    with op.batch_alter_table("news_articles", schema=None) as batch_op:
        batch_op.alter_column(
            "source",
            new_column_name="publisher",
            existing_type=sa.String(length=255),
            existing_nullable=False,
        )
    for table in _FETCHED_AT:
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table in _NEW_SOURCE:
                batch_op.add_column(
                    sa.Column(
                        "source", sa.String(length=32), nullable=False, server_default="synthetic"
                    )
                )
            batch_op.add_column(sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True))
            for nullable_table, column, type_ in _NOW_NULLABLE:
                if nullable_table == table:
                    batch_op.alter_column(column, existing_type=type_, nullable=True)
    # The default only back-filled existing rows; every writer names its source.
    for table in _NEW_SOURCE:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "source", existing_type=sa.String(length=32), server_default=None
            )


def downgrade() -> None:
    # Rows with a NULL where the old schema had NOT NULL cannot go back: they are dropped.
    for table, column, _ in _NOW_NULLABLE:
        op.execute(sa.text(f"DELETE FROM {table} WHERE {column} IS NULL"))
    for table in reversed(_FETCHED_AT):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for nullable_table, column, type_ in _NOW_NULLABLE:
                if nullable_table == table:
                    batch_op.alter_column(column, existing_type=type_, nullable=False)
            batch_op.drop_column("fetched_at")
            if table in _NEW_SOURCE:
                batch_op.drop_column("source")
    with op.batch_alter_table("news_articles", schema=None) as batch_op:
        batch_op.alter_column(
            "publisher",
            new_column_name="source",
            existing_type=sa.String(length=255),
            existing_nullable=False,
        )
