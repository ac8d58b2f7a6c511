"""The ledger's events: one `AccountBalanceUpdated` per account a write touched.

Balances are "as of now" (value time ≤ the write's knowledge time), like an account's
`balance` in the API. They are read set-wise after the write, in one query for all touched
accounts; the previous balance is the new one minus what this write moved by now (or, for a
journal import, the balances read before it). When an Asset or Liability balance changed, the
user's net worth is recomputed before the transaction commits (`portfolio.networth`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.eventstream.events import AccountBalanceUpdated
from worthline.eventstream.service import record
from worthline.kit.money import from_minor
from worthline.ledger import repository as repo
from worthline.ledger.models import Account
from worthline.portfolio.networth import NET_WORTH_TYPES, net_worth_changed


def moved_by(rows: Iterable[Mapping[str, Any]], now: datetime) -> dict[int, int]:
    """Net minor units each account gained from movement rows with value time ≤ `now`;
    every account the rows touch is a key (0 when all its movements lie in the future)."""
    net: dict[int, int] = {}
    for row in rows:
        amount = row["amount"] if row["value_time"] <= now else 0
        net[row["from_account_id"]] = net.get(row["from_account_id"], 0) - amount
        net[row["to_account_id"]] = net.get(row["to_account_id"], 0) + amount
    return net


BALANCE_COLUMNS = (
    Account.id,
    Account.public_id,
    Account.currency,
    Account.exponent,
    Account.account_type,
    repo.balance_bound(Account.id),
)
"""What `balance_events` reads per account: fill the bound balance with `repo.balance_params`."""

# Built once: it runs on every ledger write.
_NEW_BALANCES = (
    select(*BALANCE_COLUMNS)
    .where(
        Account.user_id == bindparam("user_id"),
        Account.id.in_(bindparam("account_ids", expanding=True)),
    )
    .order_by(Account.id)
)


def balance_events(
    user_id: uuid.UUID,
    rows: Iterable[Sequence[Any]],
    *,
    moved: Mapping[int, int] | None = None,
    before: Mapping[int, int] | None = None,
) -> tuple[list[AccountBalanceUpdated], bool, dict[uuid.UUID, str]]:
    """One `AccountBalanceUpdated` per row of `BALANCE_COLUMNS` (new balances, after the
    write), with whether an Asset or Liability balance changed and each account's type.
    The previous balance comes from `before` (minor units; missing = a new account, 0) or is
    the new one minus `moved`."""
    events = []
    worth_changed = False
    kinds: dict[uuid.UUID, str] = {}
    for account_id, public_id, currency, exponent, account_type, balance in rows:
        kinds[public_id] = account_type
        new = int(balance)
        if before is not None:
            previous = before.get(account_id, 0)
        else:
            previous = new - (moved or {}).get(account_id, 0)
        events.append(
            AccountBalanceUpdated(
                user_id=user_id,
                account_id=public_id,
                previous_balance=from_minor(previous, exponent),
                new_balance=from_minor(new, exponent),
                delta=from_minor(new - previous, exponent),
                currency=currency,
            )
        )
        worth_changed = worth_changed or (new != previous and account_type in NET_WORTH_TYPES)
    return events, worth_changed, kinds


async def balances_updated(
    session: AsyncSession,
    user_id: uuid.UUID,
    account_ids: Collection[int],
    now: datetime,
    *,
    moved: Mapping[int, int] | None = None,
    before: Mapping[int, int] | None = None,
    future: datetime | None = None,
) -> None:
    """Record one `AccountBalanceUpdated` per account (see `balance_events`). `future`: the
    earliest value time after now among the write's movements (it will move balances
    later)."""
    if not account_ids:
        return
    rows = await session.execute(
        _NEW_BALANCES,
        {"user_id": user_id, "account_ids": list(account_ids), **repo.balance_params(now)},
    )
    events, worth_changed, kinds = balance_events(user_id, rows, moved=moved, before=before)
    await record(session, events)
    counted = any(kind in NET_WORTH_TYPES for kind in kinds.values())
    if worth_changed or (future is not None and counted):
        # A journal import (`before`) may hold anything, future-dated movements included:
        # recomputed in full. Other writes add their deltas to the persisted value.
        net_worth_changed(
            session, user_id, full=before is not None, account_types=kinds, future=future
        )
