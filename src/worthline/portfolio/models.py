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

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

# The tables referenced below: a foreign key column takes its type from the column it
# references, which must be known when these classes are made, whatever was imported first.
import worthline.auth.models
import worthline.ledger.models  # noqa: F401
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
    comes first. NULL: recompute in full at the next write."""


# ------------------------------------------------------------------------------ the series
#
# What GET /net-worth/history reads: per user, what changed on each day, maintained in the same
# transaction as the writes that change it (`portfolio.series`). Days are epoch days (days
# since 1970-01-01), which both engines compare and return as plain integers.


class NetWorthCash(Base):
    """How much the closing balances of a user's Asset and Liability accounts in `currency`
    (with `exponent`) changed on `day`, in minor units."""

    __tablename__ = "net_worth_cash"
    __table_args__ = ({"sqlite_with_rowid": False},)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    currency: Mapped[str] = mapped_column(String(10), primary_key=True)  # as accounts.currency
    exponent: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    change: Mapped[str] = mapped_column(String(40))
    """Decimal text: a day's sum over many accounts can exceed 64 bits."""


class NetWorthHeld(Base):
    """How much Σ quantity × close in force of a user's holdings in assets priced in
    `currency` changed on `day`: an exact integer in 10⁻¹⁶ units (a quantity's 8 places times
    a price's 8), as decimal text since it exceeds 64 bits."""

    __tablename__ = "net_worth_held"
    __table_args__ = ({"sqlite_with_rowid": False},)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    change: Mapped[str] = mapped_column(String(60))


class NetWorthStale(Base):
    """Days [`since`, `until`) on which an asset the user holds has no price, or only one
    over 7 days old (`until` NULL: from `since` on, until a newer price arrives)."""

    __tablename__ = "net_worth_stale"
    __table_args__ = ({"sqlite_with_rowid": False},)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    since: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    until: Mapped[int | None] = mapped_column(Integer)


class NetWorthSeries(Base):
    """The user's series tables are complete (built from everything once, then maintained).
    A user without this row is built on the first read of the series (after an upgrade,
    say)."""

    __tablename__ = "net_worth_series"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    built_at: Mapped[datetime] = mapped_column(UTCDateTime())
