"""The ledger's tables: accounts, batches, movements and the `balances_live` projection.

Amounts are integers in the account's smallest unit (exponent -2: pence). Movements are
insert-only; `balances_live` is derived from them (one row per account per day with activity,
holding that day's closing balance) and its invariant is tested as a property.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

# The tables referenced below: a foreign key column takes its type from the column it
# references, which must be known when these classes are made, whatever was imported first.
import worthline.auth.models  # noqa: F401
from worthline.kit.db import Base, CreatedAt, ExactDecimal, JSONType, UTCDateTime, utcnow
from worthline.kit.ids import uuid7

ACCOUNT_TYPES = ("Asset", "Liability", "Equity", "Income", "Expense")
DEFAULT_CODE = "PMNT:RCDT:BOOK"
INTEREST_CODE = "LDAS:FTDP:INTR"


class Account(CreatedAt, Base):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("user_id", "full_path"),
        CheckConstraint("exponent BETWEEN -18 AND 0", name="exponent_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    full_path: Mapped[str] = mapped_column(String(255))
    account_type: Mapped[str] = mapped_column(String(9))
    product: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64))
    is_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    currency: Mapped[str] = mapped_column(String(10))
    exponent: Mapped[int] = mapped_column(SmallInteger)
    annual_interest_rate: Mapped[Decimal | None] = mapped_column(ExactDecimal(10))
    name: Mapped[str | None] = mapped_column(String(200))
    opened_on: Mapped[date] = mapped_column(Date)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)


class AccountLike(Protocol):
    """What recording a movement reads of its accounts: an `Account`, or a row of the same
    columns (`ledger.direct`)."""

    @property
    def id(self) -> int: ...
    @property
    def public_id(self) -> uuid.UUID: ...
    @property
    def full_path(self) -> str: ...
    @property
    def account_type(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def exponent(self) -> int: ...


class Batch(Base):
    """Movements recorded together, all or nothing: a journal transaction or a batch call."""

    __tablename__ = "movement_batches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    description: Mapped[str | None] = mapped_column(String(500))
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Movement(Base):
    __tablename__ = "movements"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("from_account_id <> to_account_id", name="distinct_accounts"),
        Index("ix_movements_from_value", "from_account_id", "value_time"),
        Index("ix_movements_to_value", "to_account_id", "value_time"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    # No index: nothing looks movements up by batch, and each index slows every insert.
    batch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("movement_batches.id"))
    from_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    to_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    code: Mapped[str] = mapped_column(String(14), default=DEFAULT_CODE)
    value_time: Mapped[datetime] = mapped_column(UTCDateTime())
    knowledge_time: Mapped[datetime] = mapped_column(UTCDateTime())
    description: Mapped[str | None] = mapped_column(String(500))
    # The payee of a journal transaction that is this one movement (with no metadata, not
    # pending); any other transaction keeps its payee as its batch's description.
    payee: Mapped[str | None] = mapped_column(String(500))


class BalanceLive(Base):
    """Closing balance of an account on each day that has activity (go-luca's `balances_live`)."""

    __tablename__ = "balances_live"
    __table_args__ = {"sqlite_with_rowid": False}

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    balance_date: Mapped[date] = mapped_column(Date, primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InterestAccrual(Base):
    """One day of interest on one account: the closing balance it was computed on, what was
    posted in whole minor units, and the remainder carried to the next day.

    Actual/365 makes a day's accrual `balance × rate / 365`, which no decimal holds exactly. The
    rate has at most 10 decimals, so every accrual is a whole number of 1/(365·10¹⁰) of a minor
    unit: `carry` is kept in those units, as an integer, and nothing is ever rounded away.
    Unique per account and day: a rerun changes nothing."""

    __tablename__ = "interest_accruals"
    __table_args__ = {"sqlite_with_rowid": False}

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    accrual_date: Mapped[date] = mapped_column(Date, primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger)
    posted: Mapped[int] = mapped_column(BigInteger)
    carry: Mapped[int] = mapped_column(BigInteger)
    movement_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("movements.id"))
