"""Snapshot statements. Every read is scoped to the caller's user id through the account; each
answers in one query whatever the number of accounts or snapshots:

- latest per account: two index probes per account (latest and the one before it, ordered by
  `captured_at DESC, id DESC`, so ties on `captured_at` resolve to exactly one row);
- history and recent lists: one range scan, changes from `LAG()` over the filtered rows;
- every change exact for any two stored balances (`kit.sql.difference_text`: SQLite's own
  subtraction of its scaled 64-bit integers overflows at the extremes);
- reconciliation: each reported snapshot with the ledger's balance at its `captured_at`,
  computed in the same query.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Row,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.kit.db import Database, ExactDecimal, UTCDateTime
from worthline.kit.driver_reads import driver_reads
from worthline.kit.sql import (
    decimal_text,
    difference_percent,
    difference_text,
    iso_timestamp,
    json_array_text,
    json_percent,
    uuid_text,
)
from worthline.ledger.models import Account, Movement
from worthline.ledger.repository import balance_at_column, balance_expr
from worthline.snapshots.models import AMOUNT_SCALE, BalanceSnapshot

Amount = ExactDecimal(AMOUNT_SCALE)
S = BalanceSnapshot


SnapshotRow = Row[Any]
"""A snapshot as every read answers it, written by the database: `exponent` (the account's),
then the API's fields in the API's order: `id`, `account_id` (as text), money as text with the
account's decimals, `currency`, `source`, `captured_at`, `created_at`, `change_amount` (from the
snapshot before it; None for the first) and `change_percent`."""


class HistoryArray(NamedTuple):
    """A balance history as `history_array` answers it: `snapshots` is the JSON array the
    database wrote, oldest first, exactly as `schemas.snapshot_json` and orjson write each
    `SnapshotRow`. The account's exponent and currency and the oldest's and the newest's
    balance (as text) come with it; all but the count are None when there are no snapshots."""

    total_count: int
    exponent: int | None
    currency: str | None
    start_balance: str | None
    end_balance: str | None
    snapshots: str | None


@dataclass(frozen=True, slots=True)
class LedgerState:
    """What a capture is based on: the ledger's balance (minor units) at an instant and the
    last movement counted in it."""

    account: Account
    balance: int
    last_movement_id: uuid.UUID | None
    last_movement_value_time: datetime | None
    has_snapshots: bool


# ------------------------------------------------------------------------------ reads
#
# The read statements are built once, with bound parameters: building an ORM statement costs
# more Python time than PostgreSQL takes to answer it, on the API's hottest paths.


_AS_READ = DateTime(timezone=True)


def _columns(table: Any, account_id: Any, places: Any, previous: Any) -> list[Any]:
    """A snapshot's `SnapshotRow` columns after the exponent, with its change from `previous`
    (the balance before it, or NULL). The change mentions `previous` several times on SQLite,
    so where it is a window function it is better a subquery's column: SQLite computes a
    window function once per mention. No provider metadata."""
    c = table.c
    return [
        uuid_text(c.id).label("id"),
        account_id.label("account_id"),
        decimal_text(c.balance_amount, places).label("balance"),
        decimal_text(c.available_balance_amount, places).label("available_balance"),
        decimal_text(c.holdings_value_amount, places).label("holdings_value"),
        decimal_text(c.cash_value_amount, places).label("cash_value"),
        c.currency.label("currency"),
        c.source.label("source"),
        # As the driver returns them (aware UTC on PostgreSQL, naive UTC on SQLite): only
        # written out, by orjson, which takes naive ones as UTC (`schemas.dumps`).
        type_coerce(c.captured_at, _AS_READ).label("captured_at"),
        type_coerce(c.created_at, _AS_READ).label("created_at"),
        difference_text(c.balance_amount, previous, places).label("change_amount"),
        difference_percent(c.balance_amount, previous).label("change_percent"),
    ]


# What `_columns` reads of a snapshot, for the subqueries it reads from.
_READ = ("id", "balance_amount", "available_balance_amount", "holdings_value_amount")
_READ += ("cash_value_amount", "currency", "source", "captured_at", "created_at")


def _lagged(table: Any) -> Any:
    """The previous balance in (`captured_at`, id) order among the rows the query keeps."""
    order = (table.c.captured_at, table.c.id)
    return type_coerce(func.lag(table.c.balance_amount).over(order_by=order), Amount)


# One account's reads bind its public id and exponent instead of joining `accounts` per row.
_ACCOUNT = bindparam("public_id", type_=String())
_EXPONENT = bindparam("exponent", type_=Integer())


def _latest_statement() -> Any:
    def nth_newest(offset: int) -> Any:
        query = select(S.id).where(S.account_id == Account.id)
        query = query.order_by(S.captured_at.desc(), S.id.desc())
        return (query.offset(offset) if offset else query).limit(1).scalar_subquery()

    picks = (
        select(
            Account.public_id,
            Account.exponent,
            Account.full_path,
            nth_newest(0).label("latest_id"),
            nth_newest(1).label("previous_id"),
        )
        .where(Account.user_id == bindparam("user_id"))
        .subquery()
    )
    current = S.__table__.alias("current")
    previous = S.__table__.alias("previous")
    return (
        select(
            picks.c.exponent,
            *_columns(
                current, uuid_text(picks.c.public_id), -picks.c.exponent, previous.c.balance_amount
            ),
        )
        .join(current, current.c.id == picks.c.latest_id)
        .outerjoin(previous, previous.c.id == picks.c.previous_id)
        .order_by(picks.c.full_path)
    )


def _caller_account(table: Any) -> list[Any]:
    """The join to the caller's account: history and recent need no separate account lookup
    unless they find nothing (then the endpoint tells a missing account from an empty one)."""
    account = Account.__table__
    return [
        account.c.id == table.c.account_id,
        account.c.user_id == bindparam("user_id"),
        account.c.public_id == bindparam("public_id"),
    ]


def _caller_range(columns: list[Any], by_source: bool) -> Any:
    """`columns` of the caller's account's snapshots with `start <= captured_at <= end` (and
    of `source`), in (`captured_at`, id) order, at most `limit`."""
    table, account = S.__table__, Account.__table__
    query = (
        select(*columns)
        .select_from(account)
        .join(table, account.c.id == table.c.account_id)
        .where(
            *_caller_account(table),
            table.c.captured_at >= bindparam("start"),
            table.c.captured_at <= bindparam("end"),
        )
    )
    if by_source:
        query = query.where(table.c.source == bindparam("source"))
    return query.order_by(table.c.captured_at, table.c.id).limit(bindparam("limit"))


def _history_statement(by_source: bool) -> Any:
    table, account = S.__table__, Account.__table__
    rows = _caller_range(
        [
            account.c.exponent.label("exponent"),
            account.c.public_id.label("public_id"),
            *(table.c[name] for name in _READ),
            _lagged(table).label("previous_balance"),
        ],
        by_source,
    ).subquery("history")
    account_id = uuid_text(rows.c.public_id)
    return select(
        rows.c.exponent, *_columns(rows, account_id, -rows.c.exponent, rows.c.previous_balance)
    ).order_by(rows.c.captured_at, rows.c.id)


def _text(value: str) -> Any:
    return literal_column("'" + value.replace("'", "''") + "'", String())


def _json_members(fields: list[tuple[str, str, Any]], opening: str, closing: str) -> Any:
    """JSON object members as text: `opening`, then each of `fields` (name, kind, column) as
    orjson writes it compactly, then `closing`. Kind "text" is a NOT NULL text that needs no
    escaping, "text?" the same or NULL (`null`), "json" already JSON text. Neighbouring
    constant parts are joined into one literal: every `||` costs PostgreSQL time on every
    row."""
    parts: list[Any] = []
    pending = opening
    for name, kind, column in fields:
        pending += f'"{name}":'
        if kind == "text":
            parts += [_text(pending + '"'), column]
            pending = '"'
        elif kind == "text?":
            quoted = _text('"') + column + _text('"')
            parts += [_text(pending), func.coalesce(quoted, _text("null"))]
            pending = ""
        else:
            parts += [_text(pending), column]
            pending = ""
        pending += ","
    parts.append(_text(pending[:-1] + closing))
    text = parts[0]
    for part in parts[1:]:
        text = text + part
    return text


def written_head(table: Any, account_id: Any, places: Any) -> Any:
    """A snapshot's JSON head (`BalanceSnapshot.json_head`) written by the database: the same
    text `jsontext.snapshot_head` stores at insert, for snapshots stored before heads were. No
    value needs escaping: the database writes the ids, money and timestamps, the currency is an
    ISO 4217 code (the account's) and the source one of `models.SOURCES` (a CHECK
    constraint)."""
    c = table.c
    return _json_members(
        [
            ("id", "text", uuid_text(c.id)),
            ("account_id", "text", account_id),
            ("balance", "text", decimal_text(c.balance_amount, places)),
            ("available_balance", "text?", decimal_text(c.available_balance_amount, places)),
            ("holdings_value", "text?", decimal_text(c.holdings_value_amount, places)),
            ("cash_value", "text?", decimal_text(c.cash_value_amount, places)),
            ("currency", "text", c.currency),
            ("source", "text", c.source),
            ("captured_at", "text", iso_timestamp(c.captured_at)),
            ("created_at", "text", iso_timestamp(c.created_at)),
        ],
        "{",
        "",
    )


def _snapshot_head(table: Any, account_id: Any, places: Any) -> Any:
    """The stored head, or the one `written_head` writes when there is none (COALESCE
    evaluates the second only then)."""
    return func.coalesce(table.c.json_head, written_head(table, account_id, places))


def _history_array_statement(by_source: bool) -> Any:
    """The history as one aggregate row (`HistoryArray`): Python never touches the rows of a
    long history. Each snapshot is its stored head (`_snapshot_head`) and its change from the
    one before it, written as `schemas.snapshot_json` and orjson write a `SnapshotRow`. The rows
    are numbered in the window `LAG()` already sorts by; the newest is the one without a next
    (the LIMIT only cuts a range the endpoint refuses)."""
    table, account = S.__table__, Account.__table__
    order = (table.c.captured_at, table.c.id)
    previous = _lagged(table)
    # The account asked for, bound as text rather than written again for every row.
    account_text = bindparam("account_text", type_=String())
    rows = _caller_range(
        [
            account.c.exponent.label("exponent"),
            table.c.currency.label("currency"),
            table.c.balance_amount.label("balance"),
            previous.label("previous_balance"),
            _snapshot_head(table, account_text, -account.c.exponent).label("head"),
            # Here rather than outside: PostgreSQL's `json_percent` reads it several times.
            difference_percent(table.c.balance_amount, previous).label("change_percent"),
            func.row_number().over(order_by=order).label("position"),
            func.lead(table.c.id).over(order_by=order).is_(None).label("newest"),
        ],
        by_source,
    ).subquery("history")
    c = rows.c
    change_amount = difference_text(c.balance, c.previous_balance, -c.exponent)
    snapshot = c.head + _json_members(
        [
            ("change_amount", "text?", change_amount),
            ("change_percent", "json", json_percent(c.change_percent)),
        ],
        ",",
        "}",
    )

    def balance_where(condition: Any) -> Any:
        picked = type_coerce(func.max(case((condition, c.balance))), Amount)
        return decimal_text(picked, -func.max(c.exponent))

    return select(
        func.count().label("total_count"),
        func.max(c.exponent).label("exponent"),
        func.max(c.currency).label("currency"),
        balance_where(c.position == literal_column("1")).label("start_balance"),
        balance_where(c.newest).label("end_balance"),
        json_array_text(snapshot, c.position).label("snapshots"),
    )


def _recent_statement(by_source: bool) -> Any:
    table, account = S.__table__, Account.__table__
    window = (
        select(
            *(table.c[name] for name in _READ),
            account.c.exponent.label("account_exponent"),
            account.c.public_id.label("account_public_id"),
        )
        .select_from(account)
        .join(table, account.c.id == table.c.account_id)
        .where(*_caller_account(table))
    )
    if by_source:
        window = window.where(table.c.source == bindparam("source"))
    # One row more than asked for, so that the oldest returned has its predecessor.
    window = (
        window.order_by(table.c.captured_at.desc(), table.c.id.desc())
        .limit(bindparam("window"))
        .subquery()
    )
    rows = select(window, _lagged(window).label("previous_balance")).subquery("recent")
    exponent = rows.c.account_exponent
    account_id = uuid_text(rows.c.account_public_id)
    return (
        select(
            exponent.label("exponent"),
            *_columns(rows, account_id, -exponent, rows.c.previous_balance),
        )
        .order_by(rows.c.captured_at.desc(), rows.c.id.desc())
        .limit(bindparam("limit"))
    )


def _recent_count_statement(by_source: bool) -> Any:
    table = S.__table__
    query = (
        select(func.count())
        .select_from(Account.__table__)
        .join(table, Account.__table__.c.id == table.c.account_id)
        .where(*_caller_account(table))
    )
    return query.where(table.c.source == bindparam("source")) if by_source else query


def _one_statement() -> Any:
    # One row: the lookup of the balance before it may run once per mention on SQLite (an
    # index probe each), and is not worth a subquery PostgreSQL would flatten into a join.
    table = S.__table__
    current = table.alias("current")
    before = (
        select(table.c.balance_amount)
        .where(
            table.c.account_id == current.c.account_id,
            tuple_(table.c.captured_at, table.c.id) < tuple_(current.c.captured_at, current.c.id),
        )
        .order_by(table.c.captured_at.desc(), table.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return select(
        _EXPONENT.label("exponent"),
        *_columns(current, _ACCOUNT, -_EXPONENT, type_coerce(before, Amount)),
    ).where(
        current.c.id == bindparam("snapshot_id"), current.c.account_id == bindparam("account_id")
    )


_LATEST = _latest_statement()
_HISTORY = {by_source: _history_statement(by_source) for by_source in (False, True)}
_HISTORY_ARRAY = {by_source: _history_array_statement(by_source) for by_source in (False, True)}
_RECENT = {by_source: _recent_statement(by_source) for by_source in (False, True)}
_RECENT_COUNT = {by_source: _recent_count_statement(by_source) for by_source in (False, True)}
_ONE = _one_statement()


def _account_params(account: Account) -> dict[str, Any]:
    return {
        "account_id": account.id,
        "public_id": str(account.public_id),
        "exponent": account.exponent,
    }


async def latest_per_account(session: AsyncSession, user_id: uuid.UUID) -> list[SnapshotRow]:
    """The newest snapshot of each of the caller's accounts that has one (by `captured_at`,
    then id: two index probes per account), with its change from the one before it; ordered
    by account path."""
    return list((await session.execute(_LATEST, {"user_id": user_id})).all())


async def history(
    session: AsyncSession,
    user_id: uuid.UUID,
    public_id: uuid.UUID,
    start: datetime,
    end: datetime,
    source: str | None,
    limit: int,
) -> list[SnapshotRow]:
    """Snapshots of the caller's account with `start <= captured_at <= end`, oldest first, each
    with its change from the previous one in that (filtered) range. At most `limit` rows; none
    when the account is not the caller's."""
    params = _history_params(user_id, public_id, start, end, source, limit)
    return list((await session.execute(_HISTORY[source is not None], params)).all())


async def history_array(
    db: Database,
    user_id: uuid.UUID,
    public_id: uuid.UUID,
    start: datetime,
    end: datetime,
    source: str | None,
    limit: int,
) -> HistoryArray:
    """`history`, written by the database as one JSON array (what balance-history answers);
    `total_count` above `limit` means the range holds more.

    On PostgreSQL one driver call (`kit.driver_reads.DriverReads`): no session, and at most the
    pool's size at once, so a burst of requests never opens overflow connections only to close
    them again. On SQLite a read session: the statement needs the functions `kit.db` registers
    on the engine's connections."""
    params = _history_params(user_id, public_id, start, end, source, limit)
    params["account_text"] = str(public_id)
    statement = _HISTORY_ARRAY[source is not None]
    if db.dialect == "postgresql":
        row = await driver_reads(db).first(statement, params)
    else:
        async with db.read_session() as session:
            row = (await session.execute(statement, params)).one()
    assert row is not None  # an aggregate without GROUP BY: always one row
    return HistoryArray(*row)


def _history_params(
    user_id: uuid.UUID,
    public_id: uuid.UUID,
    start: datetime,
    end: datetime,
    source: str | None,
    limit: int,
) -> dict[str, Any]:
    params = {"user_id": user_id, "public_id": public_id, "start": start, "end": end}
    params["limit"] = limit
    if source is not None:
        params["source"] = source
    return params


async def recent(
    session: AsyncSession,
    user_id: uuid.UUID,
    public_id: uuid.UUID,
    limit: int,
    source: str | None,
) -> list[SnapshotRow]:
    """The newest `limit` snapshots of the caller's account, newest first, each with its change
    from the one before it among the filtered snapshots; none when the account is not the
    caller's."""
    params: dict[str, Any] = {"user_id": user_id, "public_id": public_id}
    params.update(window=limit + 1, limit=limit)
    if source is not None:
        params["source"] = source
    return list((await session.execute(_RECENT[source is not None], params)).all())


async def recent_count(
    session: AsyncSession, user_id: uuid.UUID, public_id: uuid.UUID, source: str | None
) -> int:
    """How many snapshots `recent` chooses its page from: all of the caller's account's (of
    `source`, when given)."""
    params: dict[str, Any] = {"user_id": user_id, "public_id": public_id}
    if source is not None:
        params["source"] = source
    return int(await session.scalar(_RECENT_COUNT[source is not None], params) or 0)


async def one(session: AsyncSession, account: Account, snapshot_id: uuid.UUID) -> SnapshotRow:
    """One snapshot with its change from the one before it in time (it may be back-filled)."""
    params = {**_account_params(account), "snapshot_id": snapshot_id}
    return (await session.execute(_ONE, params)).one()


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
