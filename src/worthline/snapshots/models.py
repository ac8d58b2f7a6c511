"""The `balance_snapshots` table (seed `balance_snapshot_model.txt`).

A snapshot is an immutable point-in-time record of an account's balance: insert-only, and the
database itself refuses an UPDATE (a trigger on both engines, created by the migration).
Amounts are exact decimals (scale 8) quantized to the account's exponent; `currency` always
equals the account's currency.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

# The tables referenced below: a foreign key column takes its type from the column it
# references, which must be known when these classes are made, whatever was imported first.
import worthline.ledger.models  # noqa: F401
from worthline.kit.db import Base, ExactDecimal, JSONType, UTCDateTime, utcnow
from worthline.kit.ids import uuid7

ACCOUNT_SYNC = "account_sync"
HOLDINGS_SYNC = "holdings_sync"
MANUAL_SYNC = "manual_sync"
SCHEDULED_SYNC = "scheduled_sync"
INITIAL_CONNECTION = "initial_connection"
SOURCES = (ACCOUNT_SYNC, HOLDINGS_SYNC, MANUAL_SYNC, SCHEDULED_SYNC, INITIAL_CONNECTION)

AMOUNT_SCALE = 8
"""Decimals every amount column holds: accounts with a finer exponent cannot be snapshotted."""


def _sources_check() -> str:
    return "source IN ({})".format(", ".join(f"'{s}'" for s in SOURCES))


class BalanceSnapshot(Base):
    __tablename__ = "balance_snapshots"
    __table_args__ = (
        CheckConstraint(_sources_check(), name="source_known"),
        # At most one scheduled capture per account per UTC day: what makes the daily job
        # idempotent (NULLs, i.e. every other capture, never collide).
        UniqueConstraint("account_id", "scheduled_on"),
        Index("idx_balance_snapshots_account_time", "account_id", "captured_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    balance_amount: Mapped[Decimal] = mapped_column(ExactDecimal(AMOUNT_SCALE))
    available_balance_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal(AMOUNT_SCALE))
    holdings_value_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal(AMOUNT_SCALE))
    cash_value_amount: Mapped[Decimal | None] = mapped_column(ExactDecimal(AMOUNT_SCALE))
    currency: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(20), index=True)
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    scheduled_on: Mapped[date | None] = mapped_column(Date)
    """The UTC day of a scheduled capture; NULL for every other kind."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    provider_metadata: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    json_head: Mapped[str | None] = mapped_column(Text, default=None)
    """The snapshot's JSON as the API writes it, up to (without) its change from the previous
    one, written once at insert (`schemas.snapshot_head`): reads append the change. NULL for
    snapshots stored before it existed; reads then write it themselves."""
