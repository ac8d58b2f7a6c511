"""`balances_live`: the end-of-day balance projection, kept in the same transaction as movements.

A movement on day `d` between accounts F and T:
1. recomputes the rows (F, d) and (T, d) as the previous row's balance plus all of that day's
   movements (an upsert: creates the row when missing, corrects it when present);
2. adds its amount to every later row of both accounts (one UPDATE per account).
A backdated movement is therefore right at once. Both statements touch only rows of accounts the
caller has locked (`repository.lock_accounts`), so concurrent writers serialise per account.

Bulk paths (journal import) instead rebuild whole accounts set-wise with a window sum.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, delete, func, insert, literal, select, true, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.kit.db import UTCDateTime, utcnow
from worthline.kit.sql import utc_date
from worthline.ledger.models import BalanceLive, Movement

_COMPOUND_LIMIT = 200  # SQLite allows at most 500 terms in one compound SELECT


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _closing_balance_of_day(account_id: int, day: date) -> Any:
    """SELECT the closing balance of `account_id` on `day`, from the previous projection row and
    that day's movements (which already include the one being recorded)."""
    start, end = day_bounds(day)
    previous = (
        select(BalanceLive.balance)
        .where(BalanceLive.account_id == account_id, BalanceLive.balance_date < day)
        .order_by(BalanceLive.balance_date.desc())
        .limit(1)
        .scalar_subquery()
    )
    incoming = (
        select(func.coalesce(func.sum(Movement.amount), 0))
        .where(
            Movement.to_account_id == account_id,
            Movement.value_time >= start,
            Movement.value_time < end,
        )
        .scalar_subquery()
    )
    outgoing = (
        select(func.coalesce(func.sum(Movement.amount), 0))
        .where(
            Movement.from_account_id == account_id,
            Movement.value_time >= start,
            Movement.value_time < end,
        )
        .scalar_subquery()
    )
    return select(
        literal(account_id, Integer).label("account_id"),
        literal(day).label("balance_date"),
        (func.coalesce(previous, 0) + incoming - outgoing).label("balance"),
        literal(utcnow(), UTCDateTime()).label("updated_at"),
    )


async def apply_movement(
    session: AsyncSession, from_id: int, to_id: int, amount: int, value_time: datetime
) -> None:
    """Bring the projection up to date for one movement already inserted in this transaction."""
    day = value_time.astimezone(UTC).date()
    await apply_days(session, {(from_id, day): -amount, (to_id, day): amount})


async def apply_days(session: AsyncSession, deltas: dict[tuple[int, date], int]) -> None:
    """Apply net deltas per (account, day) for movements already inserted in this transaction
    (a batch passes all of its movements at once).

    Each chunk's upsert reads the table as it was before that statement, and its later-row
    UPDATEs run straight after it; so a day recomputed in one chunk is always shifted by the
    deltas of earlier days exactly once, whatever the chunking."""
    keys = list(deltas)
    for chunk in range(0, len(keys), _COMPOUND_LIMIT):
        part = keys[chunk : chunk + _COMPOUND_LIMIT]
        rows = union_all(*(_closing_balance_of_day(a, d) for a, d in part)).subquery()
        # `WHERE true`: SQLite needs it to tell an upsert's ON CONFLICT from a join's ON.
        upsert = _insert_for(session)(BalanceLive).from_select(
            ["account_id", "balance_date", "balance", "updated_at"], select(rows).where(true())
        )
        upsert = upsert.on_conflict_do_update(
            index_elements=["account_id", "balance_date"],
            set_={"balance": upsert.excluded.balance, "updated_at": upsert.excluded.updated_at},
        )
        await session.execute(upsert)
        # Every later row moves by the net delta of each (account, day) before it.
        for account_id, day in part:
            if delta := deltas[(account_id, day)]:
                await session.execute(
                    update(BalanceLive)
                    .where(BalanceLive.account_id == account_id, BalanceLive.balance_date > day)
                    .values(balance=BalanceLive.balance + delta, updated_at=utcnow())
                    .execution_options(synchronize_session=False)
                )


def _insert_for(session: AsyncSession) -> Any:
    """The dialect's INSERT (both spell ON CONFLICT the same way)."""
    return pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


async def rebuild(session: AsyncSession, account_ids: Collection[int]) -> None:
    """Recompute the whole projection of these accounts from their movements, set-wise."""
    ids = list(account_ids)
    if not ids:
        return
    await session.execute(delete(BalanceLive).where(BalanceLive.account_id.in_(ids)))
    legs = union_all(
        select(
            Movement.to_account_id.label("account_id"),
            utc_date(Movement.value_time).label("day"),
            Movement.amount.label("delta"),
        ).where(Movement.to_account_id.in_(ids)),
        select(
            Movement.from_account_id.label("account_id"),
            utc_date(Movement.value_time).label("day"),
            (-Movement.amount).label("delta"),
        ).where(Movement.from_account_id.in_(ids)),
    ).subquery()
    daily = (
        select(legs.c.account_id, legs.c.day, func.sum(legs.c.delta).label("net"))
        .group_by(legs.c.account_id, legs.c.day)
        .subquery()
    )
    running = select(
        daily.c.account_id,
        daily.c.day,
        func.sum(daily.c.net).over(partition_by=daily.c.account_id, order_by=daily.c.day),
        literal(utcnow(), UTCDateTime()),
    )
    await session.execute(
        insert(BalanceLive).from_select(
            ["account_id", "balance_date", "balance", "updated_at"], running
        )
    )
