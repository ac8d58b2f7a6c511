"""balance snapshots

Immutable point-in-time captures of account balances (seed `balance_snapshot_model.txt`). The
database refuses any UPDATE of a snapshot with a trigger on both engines; rows still go when
their account is deleted (ON DELETE CASCADE).

Note for later migrations: SQLite alters a table by copying it (batch mode), which drops its
triggers; a migration that alters `balance_snapshots` on SQLite must create the trigger again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 05:22:21.750229
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import worthline.kit.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SOURCES = ("account_sync", "holdings_sync", "manual_sync", "scheduled_sync", "initial_connection")
TRIGGER = "balance_snapshots_immutable"
MESSAGE = "balance snapshots are immutable"


def upgrade() -> None:
    op.create_table(
        "balance_snapshots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("balance_amount", worthline.kit.db.ExactDecimal(8), nullable=False),
        sa.Column("available_balance_amount", worthline.kit.db.ExactDecimal(8), nullable=True),
        sa.Column("holdings_value_amount", worthline.kit.db.ExactDecimal(8), nullable=True),
        sa.Column("cash_value_amount", worthline.kit.db.ExactDecimal(8), nullable=True),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("captured_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("scheduled_on", sa.Date(), nullable=True),
        sa.Column("created_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "provider_metadata",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "source IN ({})".format(", ".join(f"'{s}'" for s in SOURCES)),
            name=op.f("ck_balance_snapshots_source_known"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_balance_snapshots_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_snapshots")),
        sa.UniqueConstraint(
            "account_id",
            "scheduled_on",
            name=op.f("uq_balance_snapshots_account_id_scheduled_on"),
        ),
    )
    with op.batch_alter_table("balance_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            "idx_balance_snapshots_account_time", ["account_id", "captured_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_balance_snapshots_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_balance_snapshots_captured_at"), ["captured_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_balance_snapshots_source"), ["source"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation';
            END
            $$
            """
        )
        op.execute(
            f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE ON balance_snapshots "
            f"FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()"
        )
    else:
        op.execute(
            f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE ON balance_snapshots "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON balance_snapshots")
        op.execute(f"DROP FUNCTION IF EXISTS {TRIGGER}()")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER}")
    with op.batch_alter_table("balance_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_balance_snapshots_source"))
        batch_op.drop_index(batch_op.f("ix_balance_snapshots_captured_at"))
        batch_op.drop_index(batch_op.f("ix_balance_snapshots_account_id"))
        batch_op.drop_index("idx_balance_snapshots_account_time")

    op.drop_table("balance_snapshots")
