"""Ledger statements. Every query is scoped to the caller's user id; balances are read from the
`balances_live` projection (less the same day's later movements); for `known_at`, less the
movements recorded after it as well."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Select, bindparam, func, literal, or_, select, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.kit.db import UTCDateTime
from worthline.kit.sql import utc_date, utc_day_start
from worthline.ledger.models import Account, BalanceLive, Movement
from worthline.ledger.projections import closing_balance, day_bounds


def accounts_query(user_id: uuid.UUID) -> Select[tuple[Account]]:
    return select(Account).where(Account.user_id == user_id)


async def account(
    session: AsyncSession, user_id: uuid.UUID, public_id: uuid.UUID
) -> Account | None:
    return await session.scalar(accounts_query(user_id).where(Account.public_id == public_id))


_LOCK_ACCOUNTS = (
    select(Account)
    .where(
        Account.user_id == bindparam("user_id"),
        Account.public_id.in_(bindparam("public_ids", expanding=True)),
    )
    .order_by(Account.id)
    .with_for_update()
)


async def lock_accounts(
    session: AsyncSession, user_id: uuid.UUID, public_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Account]:
    """Load and lock the accounts a write touches, in id order so that two writers never wait
    on each other crosswise (no deadlock). SQLite takes its one write lock at BEGIN IMMEDIATE.
    The statement is built once (it runs on every movement)."""
    rows = await session.scalars(
        _LOCK_ACCOUNTS, {"user_id": user_id, "public_ids": list(set(public_ids))}
    )
    return {a.public_id: a for a in rows}


async def accounts(
    session: AsyncSession,
    user_id: uuid.UUID,
    account_type: str | None = None,
    prefix: str | None = None,
) -> list[Account]:
    query = accounts_query(user_id).order_by(Account.full_path)
    if account_type:
        query = query.where(Account.account_type == account_type)
    if prefix:  # on segment boundaries (`Asset:Bank`: itself and `Asset:Bank:…`, never
        # `Asset:Banking`), case-sensitive on both engines (SQLite's LIKE is not)
        below = prefix + ":"
        query = query.where(
            or_(
                Account.full_path == prefix,
                func.substr(Account.full_path, 1, len(below)) == below,
            )
        )
    return list(await session.scalars(query))


def _net(account_col: Any, *when: Any) -> Any:
    """Incoming minus outgoing of the account over the movements whose value time meets
    `when`, as a scalar subquery."""

    def side(column: Any) -> Any:
        return (
            select(func.coalesce(func.sum(Movement.amount), 0))
            .where(column == account_col, *when)
            .scalar_subquery()
        )

    return side(Movement.to_account_id) - side(Movement.from_account_id)


def _balance(account_col: Any, day: Any, at: Any, end: Any) -> Any:
    """The closing balance on `at`'s `day`, less what moves after `at` and before the next
    day's start `end`."""
    later = _net(account_col, Movement.value_time > at, Movement.value_time < end)
    return closing_balance(account_col, day) - later


def balance_expr(account_col: Any, at: datetime) -> Any:
    """Balance of an account at value time `at`: the closing balance of its day, less what
    that day moves after `at` (a row exists for every day with movements, so the day's row, or
    the last one before it when the day has none, is that closing balance). Index lookups
    only, whatever the account's history; for `at` = now the day's later movements are usually
    none, where the sum of the day's earlier ones would read every movement of the day so
    far."""
    day = at.astimezone(UTC).date()
    return _balance(account_col, day, at, day_bounds(day)[1])


def balance_at_column(account_col: Any, at_col: Any) -> Any:
    """The balance of an account at an instant given as a column: at many instants in one
    query (one probe of the projection and of each day's movements per row), for instance at
    the `captured_at` of every snapshot being reconciled. These are past instants, for which
    summing the day's movements up to the instant costs what summing those after it does."""
    return closing_balance(account_col, utc_date(at_col), before=True) + _net(
        account_col, Movement.value_time >= utc_day_start(at_col), Movement.value_time <= at_col
    )


def balance_bound(account_col: Any) -> Any:
    """`balance_expr` with the instant as bind parameters (fill them with `balance_params`), so
    that a statement using it is built once: the hot paths (every movement's events, account
    reads) would otherwise spend more CPU building the query than running it."""
    day = bindparam("bal_day", type_=Date)
    at = bindparam("bal_at", type_=UTCDateTime())
    end = bindparam("bal_end", type_=UTCDateTime())
    return _balance(account_col, day, at, end)


def balance_params(at: datetime) -> dict[str, Any]:
    day = at.astimezone(UTC).date()
    return {"bal_day": day, "bal_at": at, "bal_end": day_bounds(day)[1]}


_BALANCES_AT = select(Account.id, balance_bound(Account.id)).where(
    Account.id.in_(bindparam("account_ids", expanding=True))
)


async def balances_at(
    session: AsyncSession, account_ids: Sequence[int], at: datetime
) -> dict[int, int]:
    """Balances of many accounts at `at`, in one query."""
    if not account_ids:
        return {}
    rows = await session.execute(
        _BALANCES_AT, {"account_ids": list(account_ids), **balance_params(at)}
    )
    return {account_id: int(balance) for account_id, balance in rows}


_HALF = 32  # `_split_sum`: the bits of an amount's low part


def _split_sum(*where: Any) -> tuple[Any, Any]:
    """The sum of the movements' amounts meeting `where`, as its high and low 32 bits summed
    apart (scalar subqueries; `(high << 32) + low` in Python): exact on SQLite too, whose
    `sum()` raises past 64 bits, for fewer than 2^31 movements."""

    def part(value: Any) -> Any:
        return select(func.coalesce(func.sum(value), 0)).where(*where).scalar_subquery()

    return part(Movement.amount // (1 << _HALF)), part(Movement.amount % (1 << _HALF))


async def balance_known_at(
    session: AsyncSession, account_id: int, at: datetime, known_at: datetime
) -> int:
    """What the ledger said at `known_at` about the balance at `at`: the balance at `at` as
    known now (from the projection) less what the movements recorded after `known_at` moved by
    `at`: usually few or none. Their sums are exact (`_split_sum`): an account's gross
    inflows pass 64 bits long before its balance does."""
    later = (Movement.value_time <= at, Movement.knowledge_time > known_at)
    row = (
        await session.execute(
            select(
                balance_expr(account_id, at),
                *_split_sum(Movement.to_account_id == account_id, *later),
                *_split_sum(Movement.from_account_id == account_id, *later),
            )
        )
    ).one()
    now, in_high, in_low, out_high, out_low = (int(value) for value in row)
    return now - ((in_high << _HALF) + in_low) + ((out_high << _HALF) + out_low)


async def closing_balances(
    session: AsyncSession, account_id: int, start: date, end: date
) -> tuple[int, list[tuple[date, int]]]:
    """The closing balance before `start` and the projection rows in [start, end]."""
    opening = await session.scalar(
        select(BalanceLive.balance)
        .where(BalanceLive.account_id == account_id, BalanceLive.balance_date < start)
        .order_by(BalanceLive.balance_date.desc())
        .limit(1)
    )
    rows = await session.execute(
        select(BalanceLive.balance_date, BalanceLive.balance)
        .where(
            BalanceLive.account_id == account_id,
            BalanceLive.balance_date >= start,
            BalanceLive.balance_date <= end,
        )
        .order_by(BalanceLive.balance_date)
    )
    return int(opening or 0), [(d, int(b)) for d, b in rows]


async def daily_closing_balances(
    session: AsyncSession, account_id: int, start: date, end: date
) -> list[tuple[date, int]]:
    """One closing balance per day in [start, end]; a day without a projection row carries the
    balance of the last row before it (gap filling)."""
    balance, rows = await closing_balances(session, account_id, start, end)
    changes = dict(rows)
    out = []
    day = start
    while day <= end:
        balance = changes.get(day, balance)
        out.append((day, balance))
        day += timedelta(days=1)
    return out


async def has_movements(session: AsyncSession, account_id: int) -> bool:
    found = await session.scalar(
        select(literal(1)).where(
            or_(
                select(Movement.id).where(Movement.from_account_id == account_id).exists(),
                select(Movement.id).where(Movement.to_account_id == account_id).exists(),
            )
        )
    )
    return found is not None


async def movements_count(
    session: AsyncSession, account_id: int, start: datetime | None, end: datetime | None
) -> int:
    """How many movements go in or out of the account with a value time in [start, end]: a
    count on each side's (account, value time) index (never both sides: from ≠ to)."""

    def side(column: Any) -> Any:
        query = select(func.count()).select_from(Movement).where(column == account_id)
        if start is not None:
            query = query.where(Movement.value_time >= start)
        if end is not None:
            query = query.where(Movement.value_time <= end)
        return query.scalar_subquery()

    return int(
        await session.scalar(select(side(Movement.from_account_id) + side(Movement.to_account_id)))
        or 0
    )


async def movements_page(
    session: AsyncSession,
    account_id: int,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Movement]:
    """Newest first by (value_time, id); `after` is the last row of the previous page."""

    def side(column: Any) -> Select[Any]:
        query = select(Movement).where(column == account_id)
        if start is not None:
            query = query.where(Movement.value_time >= start)
        if end is not None:
            query = query.where(Movement.value_time <= end)
        if after is not None:
            query = query.where(tuple_(Movement.value_time, Movement.id) < tuple_(*after))
        return query.order_by(Movement.value_time.desc(), Movement.id.desc()).limit(limit)

    # Each side keeps its own index range scan and LIMIT; SQLite wants them wrapped.
    both = union_all(
        select(side(Movement.from_account_id).subquery()),
        select(side(Movement.to_account_id).subquery()),
    ).subquery()
    rows = await session.execute(
        select(both).order_by(both.c.value_time.desc(), both.c.id.desc()).limit(limit)
    )
    return [Movement(**row._mapping) for row in rows]
