"""Snapshot statements. Every read is scoped to the caller's user id through the account; each
answers in one query whatever the number of accounts or snapshots:

- latest per account: two index probes per account (latest and the one before it, ordered by
  `captured_at DESC, id DESC`, so ties on `captured_at` resolve to exactly one row);
- history and recent lists: one range scan, changes from `LAG()` over the filtered rows;
- reconciliation: each reported snapshot with the ledger's balance at its `captured_at`,
  computed in the same query.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select, tuple_, type_coerce
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from worthline.kit.db import ExactDecimal, UTCDateTime
from worthline.ledger.models import Account, Movement
from worthline.ledger.repository import balance_at_column, balance_expr
from worthline.snapshots.models import AMOUNT_SCALE, BalanceSnapshot

Amount = ExactDecimal(AMOUNT_SCALE)
S = BalanceSnapshot


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """A snapshot with its account's public id and exponent, and the balance of the snapshot
    before it (None for the first one), as every read endpoint answers it."""

    snapshot: BalanceSnapshot
    account_public_id: uuid.UUID
    exponent: int
    previous_balance: Decimal | None
    change: Decimal | None


@dataclass(frozen=True, slots=True)
class LedgerState:
    """What a capture is based on: the ledger's balance (minor units) at an instant and the
    last movement counted in it."""

    account: Account
    balance: int
    last_movement_id: uuid.UUID | None
    last_movement_value_time: datetime | None
    has_snapshots: bool


def _newest_first() -> tuple[Any, Any]:
    return S.captured_at.desc(), S.id.desc()


def _lag(column: Any, *order: Any) -> Any:
    return type_coerce(func.lag(column).over(order_by=order), Amount)


# ------------------------------------------------------------------------------ reads


async def latest_per_account(session: AsyncSession, user_id: uuid.UUID) -> list[SnapshotRow]:
    """The newest snapshot of each of the caller's accounts that has one (by `captured_at`,
    then id), with the balance of the one before it; ordered by account path."""

    def nth_newest(offset: int) -> Any:
        query = select(S.id).where(S.account_id == Account.id).order_by(*_newest_first())
        return (query.offset(offset) if offset else query).limit(1).scalar_subquery()

    picks = (
        select(
            Account.public_id,
            Account.exponent,
            Account.full_path,
            nth_newest(0).label("latest_id"),
            nth_newest(1).label("previous_id"),
        )
        .where(Account.user_id == user_id)
        .subquery()
    )
    current = aliased(S)
    previous = aliased(S)
    rows = await session.execute(
        select(
            current,
            picks.c.public_id,
            picks.c.exponent,
            previous.balance_amount,
            type_coerce(current.balance_amount - previous.balance_amount, Amount),
        )
        .join(current, current.id == picks.c.latest_id)
        .outerjoin(previous, previous.id == picks.c.previous_id)
        .order_by(picks.c.full_path)
    )
    return [SnapshotRow(*row) for row in rows]


def _filtered(account: Account, source: str | None) -> list[ColumnElement[bool]]:
    where = [S.account_id == account.id]
    if source is not None:
        where.append(S.source == source)
    return where


async def history(
    session: AsyncSession,
    account: Account,
    start: datetime,
    end: datetime,
    source: str | None,
    limit: int,
) -> list[SnapshotRow]:
    """Snapshots of the account with `start <= captured_at <= end`, oldest first, each with the
    balance of the previous one in that (filtered) range. At most `limit` rows."""
    order = (S.captured_at, S.id)
    previous = _lag(S.balance_amount, *order)
    query = (
        select(S, previous, type_coerce(S.balance_amount - previous, Amount))
        .where(*_filtered(account, source), S.captured_at >= start, S.captured_at <= end)
        .order_by(*order)
        .limit(limit)
    )
    rows = await session.execute(query)
    return [SnapshotRow(s, account.public_id, account.exponent, p, c) for s, p, c in rows]


async def recent(
    session: AsyncSession, account: Account, limit: int, source: str | None
) -> list[SnapshotRow]:
    """The newest `limit` snapshots of the account, newest first, each with the balance of the
    one before it among the filtered snapshots (one more row is read so that the oldest
    returned has its predecessor)."""
    window = (
        select(S).where(*_filtered(account, source)).order_by(*_newest_first()).limit(limit + 1)
    ).subquery()
    s = aliased(S, window)
    previous = _lag(s.balance_amount, s.captured_at, s.id)
    query = (
        select(s, previous, type_coerce(s.balance_amount - previous, Amount))
        .order_by(s.captured_at.desc(), s.id.desc())
        .limit(limit)
    )
    rows = await session.execute(query)
    return [SnapshotRow(x, account.public_id, account.exponent, p, c) for x, p, c in rows]


async def with_previous(
    session: AsyncSession, account: Account, snapshot: BalanceSnapshot
) -> SnapshotRow:
    """A snapshot with the balance of the one before it in time (it may be back-filled)."""
    previous = await session.scalar(
        select(S.balance_amount)
        .where(
            S.account_id == account.id,
            tuple_(S.captured_at, S.id) < tuple_(snapshot.captured_at, snapshot.id),
        )
        .order_by(*_newest_first())
        .limit(1)
    )
    change = None if previous is None else snapshot.balance_amount - previous
    return SnapshotRow(snapshot, account.public_id, account.exponent, previous, change)


async def reported_with_ledger(
    session: AsyncSession, account: Account
) -> list[tuple[BalanceSnapshot, int]]:
    """The account's reported snapshots (provider_metadata basis "reported"), oldest first, each
    with the ledger's balance (minor units) at its `captured_at`: one query."""
    ledger = balance_at_column(S.account_id, S.captured_at)
    rows = await session.execute(
        select(S, ledger)
        .where(S.account_id == account.id, S.provider_metadata["basis"].as_string() == "reported")
        .order_by(S.captured_at, S.id)
    )
    return [(snapshot, int(balance)) for snapshot, balance in rows]


async def account_by_public_id(session: AsyncSession, public_id: uuid.UUID) -> Account | None:
    """Any user's account (the operator's CLI only; the API goes through the caller's scope)."""
    return await session.scalar(select(Account).where(Account.public_id == public_id))


# ------------------------------------------------------------------------------ capture


def _last_movement(column: Any, at: datetime, field: Any) -> Any:
    return (
        select(field)
        .where(column == Account.id, Movement.value_time <= at)
        .order_by(Movement.value_time.desc(), Movement.id.desc())
        .limit(1)
        .scalar_subquery()
    )


async def ledger_states(
    session: AsyncSession, where: Collection[ColumnElement[bool]], at: datetime
) -> list[LedgerState]:
    """For every account matching `where`: its balance at `at`, the last movement counted in it
    and whether it has any snapshot yet; one query, by account id."""
    rows = await session.execute(
        select(
            Account,
            balance_expr(Account.id, at),
            _last_movement(Movement.from_account_id, at, Movement.id),
            type_coerce(
                _last_movement(Movement.from_account_id, at, Movement.value_time), UTCDateTime()
            ),
            _last_movement(Movement.to_account_id, at, Movement.id),
            type_coerce(
                _last_movement(Movement.to_account_id, at, Movement.value_time), UTCDateTime()
            ),
            exists().where(S.account_id == Account.id),
        )
        .where(*where)
        .order_by(Account.id)
    )
    states = []
    for account, balance, out_id, out_time, in_id, in_time, has_snapshots in rows:
        last = max(
            ((t, i) for t, i in ((out_time, out_id), (in_time, in_id)) if i is not None),
            default=(None, None),
        )
        states.append(LedgerState(account, int(balance), last[1], last[0], bool(has_snapshots)))
    return states


def not_scheduled_on(day: date) -> ColumnElement[bool]:
    """Accounts without a scheduled capture on `day`."""
    return ~exists().where(and_(S.account_id == Account.id, S.scheduled_on == day))


async def insert_snapshots(
    session: AsyncSession, rows: list[dict[str, Any]], *, skip_scheduled_duplicates: bool
) -> list[uuid.UUID]:
    """Insert snapshot rows in one statement; returns the ids stored. With
    `skip_scheduled_duplicates`, a row whose (account, scheduled day) exists already (a
    concurrent scheduled run) is skipped rather than failing the whole run."""
    if not rows:
        return []
    table = S.__table__
    insert = (pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert)(table)
    if skip_scheduled_duplicates:
        insert = insert.on_conflict_do_nothing(index_elements=["account_id", "scheduled_on"])
    result = await session.execute(insert.returning(table.c.id), rows)
    return list(result.scalars())
