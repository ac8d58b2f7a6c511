"""Snapshot bodies, exactly as the seed `balance_snapshots_api.txt` names them.

Money is a decimal string with exactly the account's decimals; `change_percent` is a JSON
number, computed exactly with `Decimal` and rounded half-up (away from zero) to two decimals,
turned into a float only at the edge.

The Pydantic models are the contract (OpenAPI, request validation); the read endpoints write
their bodies with the plain functions at the bottom, which build exactly those models' JSON
without validating each of hundreds of rows again (a year of history is 365 of them).
balance-history goes further: the database writes its snapshots' JSON
(`repository.history_array`), the same bytes, and Python splices them in unread.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from worthline.kit.money import DecimalString, percent_change
from worthline.kit.schemas import Timestamp
from worthline.ledger.models import Account
from worthline.snapshots.jsontext import money
from worthline.snapshots.models import SOURCES
from worthline.snapshots.repository import HistoryArray, SnapshotRow
from worthline.snapshots.service import Discrepancy

# ---------------------------------------------------------------------------------- inputs


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


# ---------------------------------------------------------------------------------- outputs


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


class LatestSnapshots(BaseModel):
    snapshots: list[SnapshotOut] = Field(description="The newest snapshot of each account")
    total_count: int
    total_balance_by_currency: dict[str, str]


class SnapshotHistory(BaseModel):
    """Snapshots with the change over them: `start_balance` is the oldest snapshot's balance,
    `end_balance` the newest's, whatever order `snapshots` is listed in."""

    snapshots: list[SnapshotOut]
    total_count: int = Field(
        description="Snapshots the query matches (recent snapshots: beyond the page too)"
    )
    start_balance: str | None
    end_balance: str | None
    total_change_amount: str | None
    total_change_percent: float | None
    currency: str


class DiscrepancyOut(BaseModel):
    snapshot_id: uuid.UUID
    captured_at: Timestamp
    reported_balance: str
    ledger_balance: str
    difference: str = Field(description="reported_balance − ledger_balance")


class Reconciliation(BaseModel):
    account_id: uuid.UUID
    currency: str
    checked_count: int = Field(description="Reported snapshots compared with the ledger")
    discrepancies: list[DiscrepancyOut] = Field(description="Those that disagree, oldest first")
    total_count: int


# ---------------------------------------------------------------------------------- writing


def snapshot_json(row: SnapshotRow) -> dict[str, Any]:
    """One snapshot as `SnapshotOut` writes it. The database has written the ids, the money
    and the percentage (`repository._columns`); orjson writes the UTC datetimes the way the
    model does (ISO 8601 with `Z`)."""
    (
        _,
        snapshot_id,
        account_id,
        balance,
        available_balance,
        holdings_value,
        cash_value,
        currency,
        source,
        captured_at,
        created_at,
        change_amount,
        change_percent,
    ) = row
    return {
        "id": snapshot_id,
        "account_id": account_id,
        "balance": balance,
        "available_balance": available_balance,
        "holdings_value": holdings_value,
        "cash_value": cash_value,
        "currency": currency,
        "source": source,
        "captured_at": captured_at,
        "created_at": created_at,
        "change_amount": change_amount,
        "change_percent": change_percent,
    }


def latest_json(rows: Sequence[SnapshotRow]) -> dict[str, Any]:
    """`LatestSnapshots`: accounts of one currency may differ in exponent, so totals are summed
    exactly and written at the finest."""
    totals: dict[str, tuple[Decimal, int]] = {}
    for row in rows:
        total, exponent = totals.get(row.currency, (Decimal(0), row.exponent))
        totals[row.currency] = (total + Decimal(row.balance), min(exponent, row.exponent))
    return {
        "snapshots": [snapshot_json(r) for r in rows],
        "total_count": len(rows),
        "total_balance_by_currency": {c: money(t, e) for c, (t, e) in sorted(totals.items())},
    }


def history_json(
    currency: str,
    exponent: int,
    rows: Sequence[SnapshotRow],
    *,
    newest_first: bool,
    total_count: int | None = None,
) -> dict[str, Any]:
    """`SnapshotHistory` of one account's rows, listed oldest first (balance-history) or newest
    first (recent snapshots); the start and end balances are the oldest's and the newest's
    either way. `total_count`: the snapshots the rows are a page of (default: the rows)."""
    snapshots = [snapshot_json(r) for r in rows]
    count = len(rows) if total_count is None else total_count
    if not rows:
        return _history_body(snapshots, count, currency, exponent, None, None)
    oldest, newest = (rows[-1], rows[0]) if newest_first else (rows[0], rows[-1])
    return _history_body(snapshots, count, currency, exponent, oldest.balance, newest.balance)


def history_array_json(currency: str, exponent: int, history: HistoryArray) -> dict[str, Any]:
    """`SnapshotHistory` of `repository.history_array`: the database has written the
    snapshots' JSON array, spliced into the body as it is (`orjson.Fragment`)."""
    snapshots = orjson.Fragment(history.snapshots or "[]")
    start, end = history.start_balance, history.end_balance
    return _history_body(snapshots, history.total_count, currency, exponent, start, end)


def _history_body(
    snapshots: Any,
    count: int,
    currency: str,
    exponent: int,
    oldest: str | None,
    newest: str | None,
) -> dict[str, Any]:
    """The body around `snapshots`, from the oldest's and the newest's balance (as text)."""
    start = end = change = None
    if oldest is not None and newest is not None:
        start, end = Decimal(oldest), Decimal(newest)
        change = end - start
    return {
        "snapshots": snapshots,
        "total_count": count,
        "start_balance": money(start, exponent),
        "end_balance": money(end, exponent),
        "total_change_amount": money(change, exponent),
        "total_change_percent": percent_change(change, start),
        "currency": currency,
    }


def reconciliation_json(account: Account, checked: int, drifts: Sequence[Discrepancy]) -> dict:
    exponent = account.exponent
    return {
        "account_id": account.public_id,
        "currency": account.currency,
        "checked_count": checked,
        "discrepancies": [
            {
                "snapshot_id": d.snapshot.id,
                "captured_at": d.snapshot.captured_at,
                "reported_balance": money(d.snapshot.balance_amount, exponent),
                "ledger_balance": money(d.ledger_balance, exponent),
                "difference": money(d.difference, exponent),
            }
            for d in drifts
        ],
        "total_count": len(drifts),
    }
