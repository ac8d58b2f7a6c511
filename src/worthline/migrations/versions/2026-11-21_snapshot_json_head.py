"""snapshot json head

The unchanging part of each snapshot's JSON, written once when the snapshot is inserted, so that
a balance history does not write it again on every read (`snapshots.schemas.snapshot_head`).
Snapshots stored before this revision keep NULL: their heads are written at read time as before
(the UPDATE trigger forbids filling them in, on purpose).

Plain ADD/DROP COLUMN, not a batch: on SQLite a batch copies the table and would lose the
immutability trigger.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21 12:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("balance_snapshots", sa.Column("json_head", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("balance_snapshots", "json_head")
