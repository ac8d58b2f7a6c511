"""net worth increments

The exact (unrounded) net worth and how long ledger writes may update it incrementally.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 08:47:51.475377
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import worthline.kit.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("net_worth_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exact", sa.String(length=400), nullable=True))
        batch_op.add_column(
            sa.Column("valid_until", worthline.kit.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("net_worth_state", schema=None) as batch_op:
        batch_op.drop_column("valid_until")
        batch_op.drop_column("exact")
