"""portfolio_intraday_values: hourly valuations of each portfolio while the exchange is open

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 17:25:00

The contract chains this revision after 0004; this branch has only 0002 yet, so
down_revision is 0002 here and the merge re-chains it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portfolio_intraday_values",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("portfolio_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("market_value", sa.Double(), nullable=False),
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
            name=op.f("fk_portfolio_intraday_values_portfolio_id_portfolios"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolio_intraday_values")),
        sa.UniqueConstraint(
            "portfolio_id", "at", name="uq_portfolio_intraday_values_natural_key"
        ),
    )
    with op.batch_alter_table("portfolio_intraday_values", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_portfolio_intraday_values_updated_at"), ["updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("portfolio_intraday_values", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portfolio_intraday_values_updated_at"))
    op.drop_table("portfolio_intraday_values")
