"""ledger

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 04:52:49.054248
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import worthline.kit.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("full_path", sa.String(length=255), nullable=False),
        sa.Column("account_type", sa.String(length=9), nullable=False),
        sa.Column("product", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("is_pending", sa.Boolean(), nullable=False),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("exponent", sa.SmallInteger(), nullable=False),
        sa.Column("annual_interest_rate", worthline.kit.db.ExactDecimal(10), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column(
            "metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("exponent BETWEEN -18 AND 0", name=op.f("ck_accounts_exponent_range")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_accounts_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("public_id", name=op.f("uq_accounts_public_id")),
        sa.UniqueConstraint("user_id", "full_path", name=op.f("uq_accounts_user_id_full_path")),
    )
    op.create_table(
        "movement_batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column(
            "metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_movement_batches_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_movement_batches")),
    )
    with op.batch_alter_table("movement_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_movement_batches_user_id"), ["user_id"], unique=False)

    op.create_table(
        "balances_live",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("balance_date", sa.Date(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_balances_live_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "balance_date", name=op.f("pk_balances_live")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "movements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.Column("from_account_id", sa.Integer(), nullable=False),
        sa.Column("to_account_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=14), nullable=False),
        sa.Column("value_time", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("knowledge_time", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_movements_amount_positive")),
        sa.CheckConstraint(
            "from_account_id <> to_account_id", name=op.f("ck_movements_distinct_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["movement_batches.id"],
            name=op.f("fk_movements_batch_id_movement_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["from_account_id"], ["accounts.id"], name=op.f("fk_movements_from_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["to_account_id"], ["accounts.id"], name=op.f("fk_movements_to_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_movements")),
    )
    with op.batch_alter_table("movements", schema=None) as batch_op:
        batch_op.create_index(
            "ix_movements_from_value", ["from_account_id", "value_time"], unique=False
        )
        batch_op.create_index(
            "ix_movements_to_value", ["to_account_id", "value_time"], unique=False
        )

    op.create_table(
        "interest_accruals",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("accrual_date", sa.Date(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("posted", sa.BigInteger(), nullable=False),
        sa.Column("carry", sa.BigInteger(), nullable=False),
        sa.Column("movement_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_interest_accruals_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["movement_id"],
            ["movements.id"],
            name=op.f("fk_interest_accruals_movement_id_movements"),
        ),
        sa.PrimaryKeyConstraint("account_id", "accrual_date", name=op.f("pk_interest_accruals")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("interest_accruals")
    with op.batch_alter_table("movements", schema=None) as batch_op:
        batch_op.drop_index("ix_movements_to_value")
        batch_op.drop_index("ix_movements_from_value")

    op.drop_table("movements")
    op.drop_table("balances_live")
    with op.batch_alter_table("movement_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_movement_batches_user_id"))

    op.drop_table("movement_batches")
    op.drop_table("accounts")
