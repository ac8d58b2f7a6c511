"""Net worth now, and the `PortfolioNetWorthRecalculated` event.

Net worth is the sum over a user's `Asset` and `Liability` accounts (liabilities carry
negative balances) of cash (the ledger balance) plus holdings at market value, each converted
into the requested currency at the rate in force on the day (`valuation`). The series over
time is read from daily projections (`portfolio.series`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Protocol

from sqlalchemy import and_, bindparam, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.auth.models import User
from worthline.eventstream.events import AccountBalanceUpdated, PortfolioNetWorthRecalculated
from worthline.eventstream.service import record, serialize_events
from worthline.kit.db import before_commit, queued, utcnow
from worthline.kit.money import from_minor
from worthline.ledger import repository as ledger_repo
from worthline.ledger.models import Account, Movement
from worthline.market import repository as market_repo
from worthline.market.fx import DEFAULT_PIVOTS, round_to
from worthline.market.models import Asset
from worthline.portfolio.models import Holding, HoldingHistory, NetWorthState
from worthline.portfolio.valuation import (
    Converted,
    Flag,
    add,
    convert_all,
    places,
    positions,
    price_flags,
    price_positions,
)

NET_WORTH_TYPES = ("Asset", "Liability")


# ------------------------------------------------------------------------------ now


@dataclass(frozen=True, slots=True)
class NetWorth:
    net_worth: Decimal
    currency: str
    as_of: datetime
    account_count: int
    converted: Converted
    stale: list[Flag]


_CASH = (
    select(Account.currency, Account.exponent, ledger_repo.balance_bound(Account.id))
    .where(
        Account.user_id == bindparam("user_id"),
        Account.account_type.in_(NET_WORTH_TYPES),
    )
    .order_by(Account.id)
)


async def net_worth_now(
    session: AsyncSession,
    user_id: uuid.UUID,
    currency: str,
    now: datetime | None = None,
    pivots: Sequence[str] = DEFAULT_PIVOTS,
) -> NetWorth:
    """What the user's Asset and Liability accounts are worth at `now`, in `currency`."""
    now = now or utcnow()
    today = now.date()
    native: dict[str, Decimal] = {}
    count = 0
    for account_currency, exponent, balance in await session.execute(
        _CASH, {"user_id": user_id, **ledger_repo.balance_params(now)}
    ):
        count += 1
        add(native, account_currency, from_minor(int(balance), exponent))
    held = await positions(
        session, [Account.user_id == user_id, Account.account_type.in_(NET_WORTH_TYPES)]
    )
    priced = await price_positions(session, held, today)
    for item in priced:
        value = item.market_value
        if value is not None:
            add(native, item.position.currency, value)
    fx = await market_repo.fx_table(session, {*native, currency}, today, today, pivots)
    converted = convert_all(native, fx, currency, today)
    return NetWorth(
        net_worth=converted.rounded,
        currency=currency,
        as_of=now,
        account_count=count,
        converted=converted,
        stale=price_flags(priced, today) + converted.flags,
    )


# ------------------------------------------------------------------------------ the event


_NEXT_FUTURE = select(
    func.min(
        select(func.min(Movement.value_time))
        .where(Movement.from_account_id == Account.id, Movement.value_time > bindparam("now"))
        .scalar_subquery()
    ),
    func.min(
        select(func.min(Movement.value_time))
        .where(Movement.to_account_id == Account.id, Movement.value_time > bindparam("now"))
        .scalar_subquery()
    ),
).where(Account.user_id == bindparam("user_id"), Account.account_type.in_(NET_WORTH_TYPES))
"""The user's next future-dated movement (two index probes per account)."""


def next_midnight(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), time(), UTC)


class StateLike(Protocol):
    """What an increment reads of a user's `NetWorthState` (the entity, or a row of it)."""

    @property
    def currency(self) -> str: ...
    @property
    def net_worth(self) -> str: ...
    @property
    def account_count(self) -> int: ...
    @property
    def computed_at(self) -> datetime: ...
    @property
    def exact(self) -> str | None: ...
    @property
    def valid_until(self) -> datetime | None: ...


def incrementable(state: StateLike, now: datetime) -> bool:
    """Whether a write's changes can be added to the persisted exact value at `now` (see
    `NetWorthState.valid_until`); otherwise the net worth is recomputed from everything."""
    return (
        state.exact is not None
        and state.valid_until is not None
        and state.computed_at <= now < state.valid_until
    )


def balance_changes(
    events: Iterable[object], user_id: uuid.UUID, kinds: Mapping[uuid.UUID, str]
) -> dict[str, Decimal]:
    """Per currency, what a write's `AccountBalanceUpdated` events of the user's Asset and
    Liability accounts (`kinds`: account public id → type) changed."""
    changes: dict[str, Decimal] = {}
    for event in events:
        if (
            isinstance(event, AccountBalanceUpdated)
            and event.user_id == user_id
            and kinds.get(event.account_id) in NET_WORTH_TYPES
            and event.delta
        ):
            changes[event.currency] = changes.get(event.currency, 0) + event.delta
    return changes


def worth_event(
    user_id: uuid.UUID,
    state: StateLike | None,
    *,
    currency: str,
    rounded: Decimal,
    account_count: int,
) -> PortfolioNetWorthRecalculated | None:
    """The event for storing `rounded` over `state`, when the figure moved (value, currency
    or accounts counted), against the previous one: 0 for a user's first (a first value of 0
    says nothing new, but is kept), and a new base currency restates it (previous = new)."""
    if state is None:
        previous = round_to(Fraction(0), places(currency))
        moved = rounded != 0
    elif state.currency != currency:
        previous, moved = rounded, True
    else:
        previous = Decimal(state.net_worth)
        moved = previous != rounded or state.account_count != account_count
    if not moved:
        return None
    return PortfolioNetWorthRecalculated(
        user_id=user_id,
        previous_net_worth=previous,
        new_net_worth=rounded,
        delta=rounded - previous,
        currency=currency,
        account_count=account_count,
    )


def fraction_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def text_fraction(text: str) -> Fraction:
    """The value `fraction_text` wrote (twice as fast as `Fraction(text)`'s parsing)."""
    numerator, _, denominator = text.partition("/")
    return Fraction(int(numerator), int(denominator) if denominator else 1)


async def _store(
    session: AsyncSession,
    user_id: uuid.UUID,
    state: NetWorthState | None,
    *,
    currency: str,
    rounded: Decimal,
    exact: Fraction,
    account_count: int,
    now: datetime,
    valid_until: datetime | None,
) -> None:
    """Persist the new value, and record `PortfolioNetWorthRecalculated` when it moved
    (`worth_event`)."""
    event = worth_event(
        user_id, state, currency=currency, rounded=rounded, account_count=account_count
    )
    if state is None:
        state = NetWorthState(user_id=user_id)
        session.add(state)
    state.currency = currency
    state.net_worth = format(rounded, "f")
    state.account_count = account_count
    state.computed_at = now
    state.exact = fraction_text(exact)
    state.valid_until = valid_until
    await session.flush()
    if event is not None:
        await record(session, [event])


async def recalculate(
    session: AsyncSession, user_id: uuid.UUID, now: datetime | None = None
) -> None:
    """Recompute the user's net worth in their base currency from everything, persist it and
    record the event when it moved. The caller holds the user's event lock
    (`serialize_events`), so concurrent writers see each other's state."""
    now = now or utcnow()
    base = await session.scalar(select(User.base_currency).where(User.id == user_id))
    if base is None:
        return
    worth = await net_worth_now(session, user_id, base, now)
    state = await session.get(NetWorthState, user_id, populate_existing=True)
    future = [
        t for t in (await session.execute(_NEXT_FUTURE, {"user_id": user_id, "now": now})).one()
    ]
    valid_until = min([next_midnight(now), *(t for t in future if t is not None)])
    await _store(
        session,
        user_id,
        state,
        currency=base,
        rounded=worth.net_worth,
        exact=worth.converted.total,
        account_count=worth.account_count,
        now=now,
        valid_until=valid_until,
    )


async def _increment(
    session: AsyncSession,
    user_id: uuid.UUID,
    changes: dict[str, Decimal],
    future: datetime | None,
    now: datetime,
    pivots: Sequence[str] = DEFAULT_PIVOTS,
) -> bool:
    """Add this transaction's balance changes (per currency, converted at today's rates) to
    the persisted exact net worth: the same figure a full recomputation gives, for a fraction
    of its cost, as long as nothing else moved since (see `NetWorthState.valid_until`).
    False when it cannot be used."""
    state = await session.get(NetWorthState, user_id, populate_existing=True)
    if state is None or not incrementable(state, now):
        return False
    base = state.currency
    today = now.date()
    fx = await market_repo.fx_table(session, {*changes, base}, today, today, pivots)
    exact = text_fraction(state.exact)
    for currency, change in changes.items():
        rate = fx.rate(currency, base, today)
        if rate is not None:  # a currency without a rate was left out in full, too
            exact += rate.convert(change)
    valid_until = state.valid_until if future is None else min(state.valid_until, future)
    await _store(
        session,
        user_id,
        state,
        currency=base,
        rounded=round_to(exact, places(base)),
        exact=exact,
        account_count=state.account_count,
        now=now,
        valid_until=valid_until,
    )
    return True


async def holders(
    session: AsyncSession, prices: Mapping[int, date]
) -> tuple[set[uuid.UUID], dict[uuid.UUID, date]]:
    """Who a price of these assets (asset → the earliest date written) can move: the users
    holding one now (their net worth), and those who hold or held one, each with the earliest
    such date (their series)."""
    active: set[uuid.UUID] = set()
    since: dict[uuid.UUID, date] = {}
    if not prices:
        return active, since
    rows = await session.execute(
        select(
            Account.user_id,
            HoldingHistory.asset_id,
            func.max(case((Holding.is_active.is_(True), 1), else_=0)),
        )
        .select_from(HoldingHistory)
        .join(Account, Account.id == HoldingHistory.account_id)
        .outerjoin(
            Holding,
            and_(
                Holding.account_id == HoldingHistory.account_id,
                Holding.asset_id == HoldingHistory.asset_id,
            ),
        )
        .where(
            HoldingHistory.asset_id.in_(list(prices)),
            Account.account_type.in_(NET_WORTH_TYPES),
        )
        .group_by(Account.user_id, HoldingHistory.asset_id)
    )
    for user_id, asset_id, is_active in rows:
        if is_active:
            active.add(user_id)
        day = prices[asset_id]
        since[user_id] = min(since.get(user_id, day), day)
    return active, since


async def market_moved(
    session: AsyncSession,
    *,
    prices: Mapping[int, date] | None = None,
    fx: bool = False,
    locked: Collection[uuid.UUID] = (),
    found: tuple[set[uuid.UUID], dict[uuid.UUID, date]] | None = None,
) -> int:
    """After prices were upserted (`prices`: asset → the earliest date written; the writer
    holds those assets' locks, `market.repository.lock_assets`) or, with `fx`, any rate: ask
    for the net worth of every user it can move to be recomputed before commit (those holding
    one of the assets; for rates, those with an account or a holding in a currency other than
    their base currency, since a cross can route through any pair), and for the series of
    everyone who holds or held one of the assets to be recomputed from the earliest date they
    held it at. Their event locks are taken then, in user order, unless `locked` (taken
    already). `found`: what `holders` answered for these prices, when the caller asked it
    already (to take their locks first). Returns how many users' net worth."""
    from worthline.portfolio import series  # it builds on this module

    users, since = found if found is not None else await holders(session, prices or {})
    users, since = set(users), dict(since)  # `fx` adds to them
    if fx:
        foreign_cash = (
            select(Account.user_id)
            .join(User, User.id == Account.user_id)
            .where(
                Account.account_type.in_(NET_WORTH_TYPES), Account.currency != User.base_currency
            )
        )
        foreign_holdings = (
            select(Account.user_id)
            .join(User, User.id == Account.user_id)
            .join(Holding, Holding.account_id == Account.id)
            .join(Asset, Asset.id == Holding.asset_id)
            .where(
                Account.account_type.in_(NET_WORTH_TYPES),
                Holding.is_active.is_(True),
                Asset.currency != User.base_currency,
            )
        )
        users.update(await session.scalars(foreign_cash.union(foreign_holdings)))
    for user_id in sorted(users | since.keys()):  # one lock order for every market write
        lock = user_id not in locked
        if user_id in since:
            series.held_changed(session, user_id, since[user_id], lock=lock)
        if user_id in users:
            net_worth_changed(session, user_id, lock=lock)
    return len(users)


_PENDING = "worthline.net_worth.pending"


@dataclass(slots=True)
class _Pending:
    full: bool = False
    lock: bool = False
    future: datetime | None = None
    kinds: dict[uuid.UUID, str] = field(default_factory=dict)  # account public id → type


def net_worth_changed(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    lock: bool = False,
    full: bool = True,
    account_types: dict[uuid.UUID, str] | None = None,
    future: datetime | None = None,
) -> None:
    """Ask for the user's net worth to be brought up to date once, just before this unit of
    work commits (after every balance and holding it changes is in place).

    Ledger writes pass `full=False` with the types of the accounts they touched: their
    `AccountBalanceUpdated` deltas (rolled-back savepoints excluded) are then added to the
    persisted exact value when it is still valid; anything else (holdings, market data, a new
    base currency, an account deleted) recomputes from everything. `lock`: take the user's
    event lock first, for writers that do not hold it already (market data). `future`: the
    earliest value time this write recorded after now."""
    pending: dict[uuid.UUID, _Pending] = session.sync_session.info.setdefault(_PENDING, {})
    entry = pending.setdefault(user_id, _Pending())
    entry.full = entry.full or full
    entry.lock = entry.lock or lock
    if account_types:
        entry.kinds.update(account_types)
    if future is not None:
        entry.future = future if entry.future is None else min(entry.future, future)

    async def work(s: AsyncSession) -> None:
        entry = s.sync_session.info.get(_PENDING, {}).pop(user_id, None) or _Pending(full=True)
        if entry.lock:
            await serialize_events(s, user_id)
        now = utcnow()
        if not entry.full:
            events = (getattr(item, "event", None) for item in queued(s))
            changes = balance_changes(events, user_id, entry.kinds)
            if await _increment(s, user_id, changes, entry.future, now):
                return
        await recalculate(s, user_id, now)

    before_commit(session, ("net_worth", user_id), work)


def opened(session: AsyncSession, user_id: uuid.UUID) -> None:
    """An Asset or Liability account was opened: the number of accounts counted changed, so
    the net worth is recomputed before this unit of work commits (once, however many it
    opens), with its event. Left to the next write instead, that write could not simply add
    to the stored value: a user's first movement after opening accounts took the slow path."""
    net_worth_changed(session, user_id, lock=True)
