"""event log

The event log (`events`: the SSE ids and the replay source for `Last-Event-ID`), single-use
stream tickets, and the purge horizon. `events.id` is a BIGINT sequence on PostgreSQL and an
AUTOINCREMENT rowid on SQLite: ids only ever increase, even after the newest rows are purged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 05:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import worthline.kit.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_events_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_user_id_id", "events", ["user_id", "id"], unique=False)
    op.create_index(op.f("ix_events_created_at"), "events", ["created_at"], unique=False)

    op.create_table(
        "event_tickets",
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_event_tickets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_event_tickets")),
    )
    op.create_index(op.f("ix_event_tickets_user_id"), "event_tickets", ["user_id"], unique=False)
    op.create_index(
        op.f("ix_event_tickets_expires_at"), "event_tickets", ["expires_at"], unique=False
    )

    op.create_table(
        "event_purges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("purged_through", sa.BigInteger(), nullable=False),
        sa.Column("purged_at", worthline.kit.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_purges")),
    )


def downgrade() -> None:
    op.drop_table("event_purges")
    op.drop_index(op.f("ix_event_tickets_expires_at"), table_name="event_tickets")
    op.drop_index(op.f("ix_event_tickets_user_id"), table_name="event_tickets")
    op.drop_table("event_tickets")
    op.drop_index(op.f("ix_events_created_at"), table_name="events")
    op.drop_index("ix_events_user_id_id", table_name="events")
    op.drop_table("events")
