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

from sqlalchemy import (
    Integer,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.kit.db import UTCDateTime, utcnow
from worthline.kit.sql import utc_date
from worthline.ledger.models import BalanceLive, Movement

SETWISE_THRESHOLD = 32  # (account, day) pairs above which a write rebuilds set-wise


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


async def apply_days(session: AsyncSession, deltas: dict[tuple[int, date], int]) -> None:
    """Apply net deltas per (account, day) for movements already inserted in this transaction.

    The upsert reads the table as it was before the statement, and the later-row UPDATEs run
    after it; so each recomputed day is shifted by the deltas of earlier days exactly once.
    Meant for a handful of (account, day) pairs; larger writes use `rebuild`."""
    if not deltas:
        return
    assert len(deltas) <= SETWISE_THRESHOLD, "use rebuild() for large writes"
    rows = union_all(*(_closing_balance_of_day(a, d) for a, d in deltas)).subquery()
    # `WHERE true`: SQLite needs it to tell an upsert's ON CONFLICT from a join's ON.
    upsert = _insert_for(session)(BalanceLive).from_select(
        ["account_id", "balance_date", "balance", "updated_at"], select(rows).where(true())
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=["account_id", "balance_date"],
        set_={"balance": upsert.excluded.balance, "updated_at": upsert.excluded.updated_at},
    )
    await session.execute(upsert)
    # Every later row moves by the net delta of each (account, day) before it: one UPDATE.
    shifts = [(a, d, delta) for (a, d), delta in deltas.items() if delta]
    if shifts:
        later = or_(
            *(and_(BalanceLive.account_id == a, BalanceLive.balance_date > d) for a, d, _ in shifts)
        )
        total = sum(
            case((and_(BalanceLive.account_id == a, BalanceLive.balance_date > d), delta), else_=0)
            for a, d, delta in shifts
        )
        await session.execute(
            update(BalanceLive)
            .where(later)
            .values(balance=BalanceLive.balance + total, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )


async def apply(session: AsyncSession, deltas: dict[tuple[int, date], int]) -> None:
    """Bring the projection up to date after inserting movements: row by row for a few
    (account, day) pairs, set-wise from the earliest touched day for more."""
    if len(deltas) <= SETWISE_THRESHOLD:
        await apply_days(session, deltas)
    else:
        await rebuild(session, {a for a, _ in deltas}, since=min(d for _, d in deltas))


def _insert_for(session: AsyncSession) -> Any:
    """The dialect's INSERT (both spell ON CONFLICT the same way)."""
    return pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


async def rebuild(
    session: AsyncSession, account_ids: Collection[int], since: date | None = None
) -> None:
    """Recompute the projection of these accounts from their movements, set-wise (a window sum
    over daily nets), for every day from `since` on (all days when None). Rows before `since`
    are kept and the running sums start from the last of them."""
    ids = list(account_ids)
    if not ids:
        return
    stale = delete(BalanceLive).where(BalanceLive.account_id.in_(ids))
    if since is not None:
        stale = stale.where(BalanceLive.balance_date >= since)
    await session.execute(stale)

    def leg(account_col: Any, amount: Any) -> Any:
        query = select(
            account_col.label("account_id"),
            utc_date(Movement.value_time).label("day"),
            amount.label("delta"),
        ).where(account_col.in_(ids))
        if since is not None:
            query = query.where(Movement.value_time >= day_bounds(since)[0])
        return query

    legs = union_all(
        leg(Movement.to_account_id, Movement.amount),
        leg(Movement.from_account_id, -Movement.amount),
    ).subquery()
    daily = (
        select(legs.c.account_id, legs.c.day, func.sum(legs.c.delta).label("net"))
        .group_by(legs.c.account_id, legs.c.day)
        .subquery()
    )
    running = func.sum(daily.c.net).over(partition_by=daily.c.account_id, order_by=daily.c.day)
    if since is not None:
        base = (
            select(BalanceLive.balance)
            .where(BalanceLive.account_id == daily.c.account_id, BalanceLive.balance_date < since)
            .order_by(BalanceLive.balance_date.desc())
            .limit(1)
            .scalar_subquery()
        )
        running = running + func.coalesce(base, 0)
    await session.execute(
        insert(BalanceLive).from_select(
            ["account_id", "balance_date", "balance", "updated_at"],
            select(daily.c.account_id, daily.c.day, running, literal(utcnow(), UTCDateTime())),
        )
    )
