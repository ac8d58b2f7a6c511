"""balance range

`balances_live.balance` holds whole minor units within ±(2^63 − 1). PostgreSQL's BIGINT refuses
anything past that by itself; SQLite turns an integer sum that overflows into a float and
would store it. These triggers refuse any balance that is not an integer there, so that the
write fails (and the ledger answers a problem) instead of keeping an inexact balance.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21 15:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

MESSAGE = "balance out of range"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for event in ("INSERT", "UPDATE"):
        op.execute(
            f"CREATE TRIGGER balances_live_integer_{event.lower()} BEFORE {event} "
            "ON balances_live WHEN typeof(NEW.balance) != 'integer' "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for event in ("insert", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS balances_live_integer_{event}")
