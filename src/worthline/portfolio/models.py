"""Holdings of an account, their history, and each user's last computed net worth.

`holdings` is an account's current position per asset (one row per account and asset; a
symbol missing from a sync is deactivated, not deleted). `holding_history` keeps the quantity
in force from each sync's date on, so that net worth on a past day values what was held then.
`net_worth_state` is the last net worth computed for a user (what the next
`PortfolioNetWorthRecalculated` reports as `previous_net_worth`, also after a restart), with
its exact unrounded value and how long ledger writes may update it incrementally.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from worthline.kit.db import Base, CreatedAt, ExactDecimal, UTCDateTime, utcnow
from worthline.market.models import PRICE_SCALE


class Holding(CreatedAt, Base):
    __tablename__ = "holdings"
    __table_args__ = (
        UniqueConstraint("account_id", "asset_id"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal(PRICE_SCALE))
    cost_basis: Mapped[Decimal | None] = mapped_column(ExactDecimal(PRICE_SCALE))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    """When the sync that last set this row said the position was so."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HoldingHistory(Base):
    """The quantity of an asset in an account from `effective_date` on (0: not held)."""

    __tablename__ = "holding_history"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        {"sqlite_with_rowid": False},
    )

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    effective_date: Mapped[date] = mapped_column(Date, primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal(PRICE_SCALE))


class NetWorthState(Base):
    """A user's last computed net worth. Stored as decimal text: exact at any size."""

    __tablename__ = "net_worth_state"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    net_worth: Mapped[str] = mapped_column(String(64))
    account_count: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    exact: Mapped[str | None] = mapped_column(String(400))
    """The unrounded total as a fraction `numerator/denominator`: what a ledger write adds its
    converted changes to, so that repeated updates never accumulate rounding."""
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """Until when `exact` can be updated from writes alone: the next UTC midnight (prices and
    rates of a new day come into force) or the user's next future-dated movement, whichever
    comes first. NULL: recompute in full (an account was opened, say)."""
