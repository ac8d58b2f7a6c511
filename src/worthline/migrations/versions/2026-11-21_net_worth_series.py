"""net worth series

Per-user daily projections for the net-worth series (`portfolio.series`): cash changes, holdings
value changes, stale-price spans, and which users' tables are complete. Existing users have no
`net_worth_series` row, so their tables are built from the ledger, holdings and prices on their
first read of the series.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 10:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import worthline.kit.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "net_worth_cash",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("exponent", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("change", sa.String(length=40), nullable=False),
        _user_fk("net_worth_cash"),
        sa.PrimaryKeyConstraint(
            "user_id", "day", "currency", "exponent", name=op.f("pk_net_worth_cash")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "net_worth_held",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("change", sa.String(length=60), nullable=False),
        _user_fk("net_worth_held"),
        sa.PrimaryKeyConstraint("user_id", "day", "currency", name=op.f("pk_net_worth_held")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "net_worth_stale",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("since", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("until", sa.Integer(), nullable=True),
        _user_fk("net_worth_stale"),
        sa.PrimaryKeyConstraint("user_id", "symbol", "since", name=op.f("pk_net_worth_stale")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "net_worth_series",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("built_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        _user_fk("net_worth_series"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_net_worth_series")),
    )


def downgrade() -> None:
    op.drop_table("net_worth_series")
    op.drop_table("net_worth_stale")
    op.drop_table("net_worth_held")
    op.drop_table("net_worth_cash")
