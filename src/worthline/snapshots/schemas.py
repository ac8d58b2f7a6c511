"""Snapshot bodies, exactly as the seed `balance_snapshots_api.txt` names them.

Money is a decimal string with exactly the account's decimals; `change_percent` is a JSON
number, computed exactly with `Decimal` and rounded half-up to two decimals, turned into a
float only here at the edge.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from worthline.kit.money import DecimalString, format_minor, to_minor
from worthline.kit.schemas import Timestamp
from worthline.ledger.models import Account
from worthline.snapshots.models import SOURCES
from worthline.snapshots.repository import SnapshotRow
from worthline.snapshots.service import Discrepancy

_CENT = Decimal("0.01")


def money(value: Decimal | None, exponent: int) -> str | None:
    """`Decimal("22500")`, -2 → `"22500.00"`: exactly the account's decimals (never rounded:
    stored amounts are already quantized to the exponent)."""
    if value is None:
        return None
    return format_minor(to_minor(value, exponent), exponent)


def percent(change: Decimal | None, previous: Decimal | None) -> float | None:
    """`change` as a percentage of `previous`'s magnitude, two decimals, half-up; None without a
    previous balance or when it is zero. The magnitude keeps the sign of the change: a debt
    going from -1000 to -500 is +50 %."""
    if change is None or previous is None or previous == 0:
        return None
    with localcontext(Context(prec=60)):
        value = (change * 100 / abs(previous)).quantize(_CENT, rounding=ROUND_HALF_UP)
    return float(value)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Source = Annotated[
    str,
    Field(
        max_length=64,
        description="How the snapshot came about; an unknown value answers 400",
        examples=list(SOURCES),
    ),
]


class SyncIn(Strict):
    source: Source | None = Field(
        default=None,
        description="manual_sync (default), account_sync or holdings_sync. An account's first "
        "snapshot is recorded as initial_connection.",
    )


class ReportedSnapshotIn(Strict):
    """A balance reported from outside Worthline (a bank feed, a statement). `captured_at` may
    lie in the past to back-fill history; it defaults to now."""

    balance: DecimalString
    available_balance: DecimalString | None = None
    holdings_value: DecimalString | None = None
    cash_value: DecimalString | None = None
    currency: str | None = Field(
        default=None, max_length=10, description="Must be the account's currency"
    )
    source: Source
    captured_at: Timestamp | None = Field(
        default=None, description="ISO 8601; not in the future; default now"
    )
    provider_metadata: dict[str, Any] | None = Field(
        default=None, description="A JSON object of at most 16 KB, kept with the snapshot"
    )


class SnapshotOut(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    balance: str
    available_balance: str | None
    holdings_value: str | None
    cash_value: str | None
    currency: str
    source: str
    captured_at: Timestamp
    created_at: Timestamp
    change_amount: str | None = Field(description="Change from the previous snapshot")
    change_percent: float | None = Field(
        description="Percentage change from the previous snapshot; null when it was zero"
    )

    @classmethod
    def of(cls, row: SnapshotRow) -> SnapshotOut:
        s, exponent = row.snapshot, row.exponent
        return cls(
            id=s.id,
            account_id=row.account_public_id,
            balance=money(s.balance_amount, exponent),  # type: ignore[arg-type]
            available_balance=money(s.available_balance_amount, exponent),
            holdings_value=money(s.holdings_value_amount, exponent),
            cash_value=money(s.cash_value_amount, exponent),
            currency=s.currency,
            source=s.source,
            captured_at=s.captured_at,
            created_at=s.created_at,
            change_amount=money(row.change, exponent),
            change_percent=percent(row.change, row.previous_balance),
        )


class LatestSnapshots(BaseModel):
    snapshots: list[SnapshotOut] = Field(description="The newest snapshot of each account")
    total_count: int
    total_balance_by_currency: dict[str, str]

    @classmethod
    def of(cls, rows: Sequence[SnapshotRow]) -> LatestSnapshots:
        # Accounts of one currency may differ in exponent: sum exactly, write at the finest.
        totals: dict[str, tuple[Decimal, int]] = {}
        for row in rows:
            total, exponent = totals.get(row.snapshot.currency, (Decimal(0), row.exponent))
            totals[row.snapshot.currency] = (
                total + row.snapshot.balance_amount,
                min(exponent, row.exponent),
            )
        return cls(
            snapshots=[SnapshotOut.of(r) for r in rows],
            total_count=len(rows),
            total_balance_by_currency={
                c: money(t, e)  # type: ignore[misc]
                for c, (t, e) in sorted(totals.items())
            },
        )


class SnapshotHistory(BaseModel):
    """Snapshots with the change over them: `start_balance` is the oldest snapshot's balance,
    `end_balance` the newest's, whatever order `snapshots` is listed in."""

    snapshots: list[SnapshotOut]
    total_count: int
    start_balance: str | None
    end_balance: str | None
    total_change_amount: str | None
    total_change_percent: float | None
    currency: str

    @classmethod
    def of(cls, account: Account, oldest_first: Sequence[SnapshotRow]) -> SnapshotHistory:
        return cls._build(account, oldest_first, list(oldest_first))

    @classmethod
    def of_newest_first(
        cls, account: Account, newest_first: Sequence[SnapshotRow]
    ) -> SnapshotHistory:
        return cls._build(account, list(reversed(newest_first)), list(newest_first))

    @classmethod
    def _build(
        cls, account: Account, oldest_first: list[SnapshotRow], listed: list[SnapshotRow]
    ) -> SnapshotHistory:
        exponent = account.exponent
        start = oldest_first[0].snapshot.balance_amount if oldest_first else None
        end = oldest_first[-1].snapshot.balance_amount if oldest_first else None
        change = None if start is None or end is None else end - start
        return cls(
            snapshots=[SnapshotOut.of(r) for r in listed],
            total_count=len(listed),
            start_balance=money(start, exponent),
            end_balance=money(end, exponent),
            total_change_amount=money(change, exponent),
            total_change_percent=percent(change, start),
            currency=account.currency,
        )


class DiscrepancyOut(BaseModel):
    snapshot_id: uuid.UUID
    captured_at: Timestamp
    reported_balance: str
    ledger_balance: str
    difference: str = Field(description="reported_balance − ledger_balance")

    @classmethod
    def of(cls, drift: Discrepancy, exponent: int) -> DiscrepancyOut:
        return cls(
            snapshot_id=drift.snapshot.id,
            captured_at=drift.snapshot.captured_at,
            reported_balance=money(drift.snapshot.balance_amount, exponent),  # type: ignore[arg-type]
            ledger_balance=money(drift.ledger_balance, exponent),  # type: ignore[arg-type]
            difference=money(drift.difference, exponent),  # type: ignore[arg-type]
        )


class Reconciliation(BaseModel):
    account_id: uuid.UUID
    currency: str
    checked_count: int = Field(description="Reported snapshots compared with the ledger")
    discrepancies: list[DiscrepancyOut] = Field(description="Those that disagree, oldest first")
    total_count: int
