"""fx rates version

A one-row token that every FX rate upsert changes, so that a process can keep the rate tables
it has read until they change (`market.repository.fx_table`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 10:20:00
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    version = op.create_table(
        "fx_rates_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fx_rates_version")),
    )
    op.bulk_insert(version, [{"id": 1, "token": uuid.uuid4().hex}])  # the rates as they are


def downgrade() -> None:
    op.drop_table("fx_rates_version")
