"""movement payee

A journal transaction of one movement keeps its payee on the movement instead of a
`movement_batches` row of its own: a bank statement's transactions are nearly all of one
movement, and on import that row (with its foreign-key check on PostgreSQL) cost a third of
the time. Longer transactions, pending ones and those with metadata keep a batch, whose
description is the payee, as before. Existing single-movement batches stay as they are; export
reads the payee from either place.

Plain ADD/DROP COLUMN, not a batch: on SQLite a batch copies the table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("movements", sa.Column("payee", sa.String(500), nullable=True))


def downgrade() -> None:
    op.drop_column("movements", "payee")
