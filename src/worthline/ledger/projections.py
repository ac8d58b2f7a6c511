"""`balances_live`: the end-of-day balance projection, kept in the same transaction as movements.

A movement on day `d` between accounts F and T, as DESIGN.md describes:
1. adds its amount to every row of both accounts on or after `d` (one UPDATE);
2. creates the rows (F, d) and (T, d) where missing, as the previous row's balance plus all of
   that day's movements (which include the new one). Where the row was there, step 1 has
   brought it up to date, and nothing is summed: a row exists for every day with movements, so
   a missing row means the day had none before this one.
A backdated movement is therefore right at once. Both statements touch only rows of accounts the
caller has locked (`repository.lock_accounts`), so concurrent writers serialise per account.

Bulk paths (journal import) instead rebuild whole accounts set-wise with a window sum.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
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


def closing_balance(account_col: Any, day: Any, *, before: bool = False) -> Any:
    """The account's projected closing balance on `day` (the last row on or before it; 0 when
    there is none), or on the day before it when `before`, as a scalar subquery."""
    on_or_before = BalanceLive.balance_date < day if before else BalanceLive.balance_date <= day
    return func.coalesce(
        select(BalanceLive.balance)
        .where(BalanceLive.account_id == account_col, on_or_before)
        .order_by(BalanceLive.balance_date.desc())
        .limit(1)
        .scalar_subquery(),
        0,
    )


def _missing_day(suffix: str) -> Any:
    """SELECT the closing balance of account `:account<suffix>` on `:day<suffix>` from the
    previous projection row and that day's movements (which already include the ones being
    recorded), or no row when the projection has that day already. Built once, with bind
    parameters: building it per call cost more CPU than running it."""
    account = bindparam(f"account{suffix}", type_=Integer)
    day = bindparam(f"day{suffix}", type_=Date)
    start = bindparam(f"start{suffix}", type_=UTCDateTime())
    end = bindparam(f"end{suffix}", type_=UTCDateTime())
    present = select(BalanceLive.balance_date).where(
        BalanceLive.account_id == account, BalanceLive.balance_date == day
    )

    def side(column: Any) -> Any:
        return (
            select(func.coalesce(func.sum(Movement.amount), 0))
            .where(column == account, Movement.value_time >= start, Movement.value_time < end)
            .scalar_subquery()
        )

    # The condition sits in each SELECT of its own, so that the sums run only for a row that
    # is missing.
    return select(
        account.label("account_id"),
        day.label("balance_date"),
        (
            closing_balance(account, day, before=True)
            + side(Movement.to_account_id)
            - side(Movement.from_account_id)
        ).label("balance"),
        bindparam("now", type_=UTCDateTime()).label("updated_at"),
    ).where(~present.exists())


# Core table, not the ORM entity: executed with a parameter dict, an ORM statement would be
# taken for a bulk operation by primary key.
_TABLE = BalanceLive.__table__


def _insert_missing(rows: Any, dialect: str) -> Any:
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    # `WHERE true`: SQLite needs it to tell an upsert's ON CONFLICT from a join's ON.
    statement = insert_(_TABLE).from_select(
        ["account_id", "balance_date", "balance", "updated_at"],
        select(rows.subquery()).where(true()),
    )
    # The accounts are locked, so no other writer can have added the row meanwhile; were one
    # there, it would be up to date already (step 1).
    return statement.on_conflict_do_nothing(index_elements=["account_id", "balance_date"])


_INSERT_MISSING_ONE = {d: _insert_missing(_missing_day(""), d) for d in ("sqlite", "postgresql")}
INSERT_MISSING_PAIR = {  # one movement: both of its accounts on its day
    d: _insert_missing(union_all(_missing_day("_a"), _missing_day("_b")), d)
    for d in ("sqlite", "postgresql")
}
_SHIFT_ONE = (
    update(_TABLE)
    .where(
        _TABLE.c.account_id == bindparam("account", type_=Integer),
        _TABLE.c.balance_date >= bindparam("day", type_=Date),
    )
    .values(
        balance=_TABLE.c.balance + bindparam("delta", type_=BigInteger),
        updated_at=bindparam("now", type_=UTCDateTime()),
    )
)
SHIFT_PAIR = (
    update(_TABLE)
    .where(
        _TABLE.c.account_id.in_(
            [bindparam("account_a", type_=Integer), bindparam("account_b", type_=Integer)]
        ),
        _TABLE.c.balance_date >= bindparam("day", type_=Date),
    )
    .values(
        balance=_TABLE.c.balance
        + case(
            (
                _TABLE.c.account_id == bindparam("account_a", type_=Integer),
                bindparam("delta_a", type_=BigInteger),
            ),
            else_=bindparam("delta_b", type_=BigInteger),
        ),
        updated_at=bindparam("now", type_=UTCDateTime()),
    )
)


def pair_params(
    deltas: dict[tuple[int, date], int], now: datetime
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """For the deltas of one movement (two accounts, one day): the parameters of `SHIFT_PAIR`
    and then `INSERT_MISSING_PAIR`, which bring both accounts up to date in two statements.
    None for any other shape of deltas."""
    keys = list(deltas)
    if len(keys) != 2 or keys[0][1] != keys[1][1]:
        return None
    (a, day), (b, _) = keys
    start, end = day_bounds(day)
    shift = {
        "account_a": a,
        "account_b": b,
        "day": day,
        "delta_a": deltas[keys[0]],
        "delta_b": deltas[keys[1]],
        "now": now,
    }
    missing = {
        "account_a": a,
        "day_a": day,
        "start_a": start,
        "end_a": end,
        "account_b": b,
        "day_b": day,
        "start_b": start,
        "end_b": end,
        "now": now,
    }
    return shift, missing


async def apply_days(session: AsyncSession, deltas: dict[tuple[int, date], int]) -> None:
    """Bring the projection up to date for movements already inserted in this transaction,
    given their net delta per (account, day).

    For each (account, day): shift every row of the account from that day on by the delta,
    then create that day's row if it is missing. Right in any order of the pairs: a row
    created from a previous row that a pair still to come will shift is shifted with it. A
    single movement (two accounts, one day) does both accounts in one UPDATE and one INSERT.
    Meant for a handful of pairs; larger writes use `rebuild`."""
    if not deltas:
        return
    assert len(deltas) <= SETWISE_THRESHOLD, "use rebuild() for large writes"
    dialect = session.bind.dialect.name
    now = utcnow()
    pair = pair_params(deltas, now)
    if pair is not None:
        await session.execute(SHIFT_PAIR, pair[0])
        await session.execute(INSERT_MISSING_PAIR[dialect], pair[1])
        return
    for (account, day), delta in deltas.items():
        if delta:
            await session.execute(
                _SHIFT_ONE, {"account": account, "day": day, "delta": delta, "now": now}
            )
        start, end = day_bounds(day)
        await session.execute(
            _INSERT_MISSING_ONE[dialect],
            {"account": account, "day": day, "start": start, "end": end, "now": now},
        )


async def apply(session: AsyncSession, deltas: dict[tuple[int, date], int]) -> None:
    """Bring the projection up to date after inserting movements: row by row for a few
    (account, day) pairs, set-wise from the earliest touched day for more."""
    if len(deltas) <= SETWISE_THRESHOLD:
        await apply_days(session, deltas)
    else:
        await rebuild(session, {a for a, _ in deltas}, since=min(d for _, d in deltas))


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
        running = running + closing_balance(daily.c.account_id, since, before=True)
    await session.execute(
        insert(BalanceLive).from_select(
            ["account_id", "balance_date", "balance", "updated_at"],
            select(daily.c.account_id, daily.c.day, running, literal(utcnow(), UTCDateTime())),
        )
    )
