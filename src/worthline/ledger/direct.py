"""One movement in a transaction of its own: `POST /movements`, and the way to record single
movements from Python.

The movement is recorded straight on the driver (`kit.direct`): the statements of
`service.record_movements` for one movement (the same prebuilt SQL and the same rules, shared
with it), without SQLAlchemy's session, in two batches:

1. read: take the user's event lock and lock both accounts, in the regular path's order
   (PostgreSQL; on SQLite the transaction holds the write lock); read the accounts with their
   balances as of now, the user's net worth and last event id;
2. write: the movement, `balances_live`, the net-worth cash series, the persisted net worth
   and the events (`AccountBalanceUpdated` per account, from the balances read plus what the
   movement moved by now; the net worth's when it moved). On PostgreSQL the commit goes with
   them.

On SQLite that is ~10× faster than the ORM path, whose session, ORM and thread hand-offs cost
twenty times what SQLite does; on PostgreSQL it is two round trips instead of eleven. The
events are delivered once committed.

The regular path (a unit of work around `service.record_movements`) takes over, with nothing
written here, when:
- the direct writer cannot start: another process holds SQLite's write lock (a CLI journal
  import: the regular path waits on aiosqlite's thread rather than with the event loop
  blocked), or every direct PostgreSQL connection stayed in use for a while
  (`kit.direct.CONNECTION_WAIT`);
- the user's net worth cannot simply be added to: the first write after midnight (prices and
  rates of a new day), a user's first write (no stored net worth yet), or a change in a
  currency other than the user's base currency (it needs that day's rates). The regular path
  recomputes it;
- PostgreSQL reports a deadlock or a serialisation failure: the regular path retries.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, insert, select, update

from worthline.eventstream.events import (
    PortfolioNetWorthRecalculated,
    RecordedEvent,
    to_payload,
)
from worthline.eventstream.models import EventRecord
from worthline.eventstream.service import SERIALIZE_EVENTS, chain, serialize_key
from worthline.kit.db import Database, is_out_of_range, is_retryable, unit_of_work, utcnow
from worthline.kit.direct import Transaction, WriterBusy, direct_writer
from worthline.ledger import projections, publish, service
from worthline.ledger import repository as repo
from worthline.ledger.models import Account, Movement
from worthline.market.fx import round_to
from worthline.portfolio import networth, series
from worthline.portfolio.models import NetWorthCash, NetWorthState
from worthline.portfolio.valuation import places

_LOC = ["body"]


class AccountRow(NamedTuple):
    """An account as a movement reads it (`models.AccountLike`)."""

    id: int
    public_id: uuid.UUID
    full_path: str
    account_type: str
    currency: str
    exponent: int


class StateRow(NamedTuple):
    """A user's `NetWorthState` as an increment reads it (`networth.StateLike`)."""

    currency: str
    net_worth: str
    account_count: int
    computed_at: datetime
    exact: str | None
    valid_until: datetime | None


class _RegularPath(Exception):
    """This movement needs the regular path; the transaction rolls back, nothing written."""


def _bound(table: Any, names: list[str], **renamed: str) -> dict[str, Any]:
    """Bind parameters for the `names` columns of `table` (typed as the columns)."""
    return {name: bindparam(renamed.get(name, name), type_=table.c[name].type) for name in names}


# Built once, compiled once per process and engine (`kit.direct`).
_OWN = (
    Account.user_id == bindparam("user_id"),
    Account.public_id.in_(
        [bindparam(key, type_=Account.public_id.type) for key in ("from_id", "to_id")]
    ),
)
_LOCK = (  # PostgreSQL, in id order as `repository.lock_accounts` (SQLite: BEGIN IMMEDIATE)
    select(Account.id).where(*_OWN).order_by(Account.id).with_for_update()
)
_STATE = (  # `StateRow`
    NetWorthState.currency,
    NetWorthState.net_worth,
    NetWorthState.account_count,
    NetWorthState.computed_at,
    NetWorthState.exact,
    NetWorthState.valid_until,
)
_LAST_EVENT = (  # the user's last event id (under its event lock on PostgreSQL), for `after`
    select(func.max(EventRecord.id))
    .where(EventRecord.user_id == bindparam("user_id"))
    .scalar_subquery()
)
_ACCOUNTS = (  # read once the accounts are locked, each row with the user's net worth
    select(
        Account.id,
        Account.public_id,
        Account.full_path,
        Account.account_type,
        Account.currency,
        Account.exponent,
        repo.balance_bound(Account.id),
        _LAST_EVENT,
        *_STATE,
    )
    .outerjoin(NetWorthState, NetWorthState.user_id == Account.user_id)
    .where(*_OWN)
    .order_by(Account.id)
)
# An `_ACCOUNTS` row: its `AccountRow`, its balance as of now, the user's last event id (None:
# none) and the `StateRow` (all None when the user has no net worth stored yet).
_ACCOUNT, _BALANCE, _LAST, _WORTH = slice(0, 6), 6, 7, slice(8, None)
_INSERT_MOVEMENT = insert(Movement).values(
    _bound(Movement.__table__, [c.name for c in Movement.__table__.columns])
)
_EVENT_COLUMNS = ["user_id", "type", "payload", "created_at"]
_INSERT_EVENTS = {  # two balance events, and the net worth's when it moved
    n: insert(EventRecord)
    .values(
        [
            _bound(EventRecord.__table__, _EVENT_COLUMNS, **{c: f"{c}_{i}" for c in _EVENT_COLUMNS})
            for i in range(n)
        ]
    )
    .returning(EventRecord.id)
    for n in (2, 3)
}
_STORE_STATE = (
    update(NetWorthState)
    .where(NetWorthState.user_id == bindparam("state_user"))
    .values(
        _bound(
            NetWorthState.__table__,
            ["net_worth", "exact", "computed_at", "valid_until"],
            net_worth="new_net_worth",
            exact="new_exact",
            computed_at="new_computed_at",
            valid_until="new_valid_until",
        )
    )
)
_ADD_CASH_ROW = {
    dialect: statement.values(
        _bound(NetWorthCash.__table__, ["user_id", "day", "currency", "exponent", "change"])
    )
    for dialect, statement in series.ADD_CASH.items()
}


async def record_movement(
    db: Database, user_id: uuid.UUID, spec: service.NewMovement, now: datetime | None = None
) -> dict[str, Any]:
    """Record one movement in a transaction of its own and return its row, with
    `from_account` and `to_account` (as `service.record_movements` does); the events go out
    once it has committed. Problems as `service.record_movements` raises them."""
    now = now or utcnow()
    writer = direct_writer(db)
    if writer is not None:
        try:
            async with writer.transaction() as txn:
                row, recorded = await _record(txn, user_id, spec, now)
        except (WriterBusy, _RegularPath):
            pass
        except Exception as exc:
            if not is_retryable(exc):
                raise
        else:
            if recorded and db.on_commit is not None:
                await db.on_commit(recorded)
            return row
    async with unit_of_work(db) as session:
        _, rows = await service.record_movements(session, user_id, [spec], now=now)
    return rows[0]


async def _record(
    txn: Transaction, user_id: uuid.UUID, spec: service.NewMovement, now: datetime
) -> tuple[dict[str, Any], list[RecordedEvent]]:
    """The movement's two batches (on SQLite nothing between them may suspend: `kit.direct`)."""
    own = {"user_id": user_id, "from_id": spec.from_account_id, "to_id": spec.to_account_id}
    reads: list[tuple[Any, dict[str, Any]]] = [(_ACCOUNTS, {**own, **repo.balance_params(now)})]
    if txn.dialect == "postgresql":  # the user's event lock before any row lock, as
        # `service.record_movements`; the balances are read in a statement after the locks
        # (READ COMMITTED: a snapshot that sees what a writer waited for has committed)
        reads[:0] = [(SERIALIZE_EVENTS, serialize_key(user_id)), (_LOCK, own)]
    *_, found = await txn.batch(reads)
    read = [(AccountRow._make(each[_ACCOUNT]), int(each[_BALANCE])) for each in found]
    accounts = {account.public_id: account for account, _ in read}
    source = accounts.get(spec.from_account_id)
    target = accounts.get(spec.to_account_id)
    if source is None:
        raise service.AccountNotFound(spec.from_account_id)
    if target is None:
        raise service.AccountNotFound(spec.to_account_id)
    row = service.movement_row(spec, source, target, _LOC, now, None)

    day = row["value_time"].date()
    pair = projections.pair_params(
        {(source.id, day): -row["amount"], (target.id, day): row["amount"]}, now
    )
    assert pair is not None  # two accounts, one day
    writes: list[tuple[Any, dict[str, Any]]] = [
        (_INSERT_MOVEMENT, row),
        (projections.SHIFT_PAIR, pair[0]),
        (projections.INSERT_MISSING_PAIR[txn.dialect], pair[1]),
    ]
    by_id = {source.id: source, target.id: target}
    writes += [
        (_ADD_CASH_ROW[txn.dialect], cash) for cash in series.movement_cash(user_id, [row], by_id)
    ]

    moved = publish.moved_by([row], now)
    after = [  # as `publish.BALANCE_COLUMNS`
        (a.id, a.public_id, a.currency, a.exponent, a.account_type, balance + moved[a.id])
        for a, balance in read
    ]
    events, worth_changed, kinds = publish.balance_events(user_id, after, moved=moved)
    future = row["value_time"] if row["value_time"] > now else None
    counted = any(kind in networth.NET_WORTH_TYPES for kind in kinds.values())
    if worth_changed or (future is not None and counted):  # as `publish.balances_updated`
        stored_state = found[0][_WORTH]
        state = StateRow._make(stored_state) if stored_state[0] is not None else None
        changes = networth.balance_changes(events, user_id, kinds)
        stored, worth = _add_to_net_worth(state, user_id, changes, future, utcnow())
        writes.append((_STORE_STATE, stored))
        if worth is not None:
            events.append(worth)

    params: dict[str, Any] = {}
    recorded_at = utcnow()  # as `eventstream.service.record` stamps them
    for i, event in enumerate(events):
        params[f"user_id_{i}"] = event.user_id
        params[f"type_{i}"] = type(event).__name__
        params[f"payload_{i}"] = to_payload(event)
        params[f"created_at_{i}"] = recorded_at
    writes.append((_INSERT_EVENTS[len(events)], params))
    try:
        *_, inserted = await txn.batch(writes, last=True)
    except Exception as exc:
        if not is_out_of_range(exc):
            raise
        raise service.out_of_range([source, target], _LOC) from exc
    # One INSERT for all: its rows are numbered in the order given (AUTOINCREMENT on SQLite; a
    # sequence on PostgreSQL, drawn under the user's event lock), whatever order RETURNING
    # reports them in.
    ids = sorted(event_id for (event_id,) in inserted)
    afters = chain(ids, [user_id] * len(ids), {user_id: found[0][_LAST] or 0})
    recorded = [
        RecordedEvent(i, e, recorded_at, after)
        for i, e, after in zip(ids, events, afters, strict=True)
    ]
    row["from_account"] = source
    row["to_account"] = target
    return row, recorded


def _add_to_net_worth(
    state: StateRow | None,
    user_id: uuid.UUID,
    changes: dict[str, Decimal],
    future: datetime | None,
    now: datetime,
) -> tuple[dict[str, Any], PortfolioNetWorthRecalculated | None]:
    """`networth._increment` for changes in the user's base currency: the parameters of
    `_STORE_STATE`, and the event when the figure moved; `_RegularPath` when the persisted
    value cannot simply be added to. `now`: the clock when the net worth is stored, as
    `networth.net_worth_changed` takes it (a movement's knowledge time may be given)."""
    if state is None or not networth.incrementable(state, now):
        raise _RegularPath
    if any(change and currency != state.currency for currency, change in changes.items()):
        raise _RegularPath  # converting needs the day's rates
    assert state.exact is not None
    exact = networth.text_fraction(state.exact)
    for change in changes.values():
        exact += Fraction(change)
    rounded = round_to(exact, places(state.currency))
    assert state.valid_until is not None
    valid_until = state.valid_until if future is None else min(state.valid_until, future)
    event = networth.worth_event(
        user_id,
        state,
        currency=state.currency,
        rounded=rounded,
        account_count=state.account_count,
    )
    stored = {
        "state_user": user_id,
        "new_net_worth": format(rounded, "f"),
        "new_exact": networth.fraction_text(exact),
        "new_computed_at": now,
        "new_valid_until": valid_until,
    }
    return stored, event
