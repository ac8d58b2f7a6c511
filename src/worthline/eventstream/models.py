"""The event log, stream tickets and the purge horizon."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

# The tables referenced below: a foreign key column takes its type from the column it
# references, which must be known when these classes are made, whatever was imported first.
import worthline.auth.models  # noqa: F401
from worthline.kit.db import Base, JSONType, UTCDateTime

# BIGINT on PostgreSQL (a sequence); SQLite's rowid alias must be spelled INTEGER.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class EventRecord(Base):
    """One recorded event. The id is global and only ever increases (a sequence; AUTOINCREMENT
    on SQLite, so that purging the newest rows never lets an id be handed out again): it is
    the SSE `id:`, and `Last-Event-ID` replays the ids above it."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_user_id_id", "user_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # Not indexed: `service.purge` walks the log in id order (every event would pay for it).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EventTicket(Base):
    """A single-use, short-lived credential for `GET /events?ticket=` (browsers' EventSource
    cannot send an Authorization header). Only its SHA-256 digest is stored."""

    __tablename__ = "event_tickets"

    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class EventPurge(Base):
    """Each purge that removed events, and the highest id it removed: a `Last-Event-ID` below
    that may have missed events that no longer exist (the stream says so)."""

    __tablename__ = "event_purges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    purged_through: Mapped[int] = mapped_column(BigInteger)
    purged_at: Mapped[datetime] = mapped_column(UTCDateTime())
