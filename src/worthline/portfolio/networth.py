"""Net worth: now, as a series, and the `PortfolioNetWorthRecalculated` event.

Net worth is the sum over a user's `Asset` and `Liability` accounts (liabilities carry
negative balances) of cash (the ledger balance) plus holdings at market value, each converted
into the requested currency at the rate in force on the day (`valuation`).

The series is computed set-wise: five queries whatever the range or the number of accounts
(cash changes per currency and day from the `balances_live` projection, holdings history,
assets, prices, rates), then one sweep over the days in order that keeps running totals, so a
day costs what changed on it, not what is held.
"""

from __future__ import annotations

import bisect
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Date, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.auth.models import User
from worthline.eventstream.events import AccountBalanceUpdated, PortfolioNetWorthRecalculated
from worthline.eventstream.service import record, serialize_events
from worthline.kit.db import before_commit, queued, utcnow
from worthline.kit.money import from_minor
from worthline.ledger import repository as ledger_repo
from worthline.ledger.models import Account, BalanceLive, Movement
from worthline.market import repository as market_repo
from worthline.market.fx import DEFAULT_PIVOTS, FxTable, is_stale, round_to
from worthline.market.models import PRICE_SCALE, Asset
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
INTERVALS = ("day", "week", "month")
MAX_POINTS = 5_000


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


def _fraction_text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


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
    """Persist the new value and, when the figure moved (value, currency or accounts
    counted), record `PortfolioNetWorthRecalculated` against the previous one (0 for a user's
    first; a new base currency restates it: previous = new)."""
    if state is None:
        previous = round_to(Fraction(0), places(currency))
    elif state.currency != currency:
        previous = rounded
    else:
        previous = Decimal(state.net_worth)
    if state is None:
        moved = rounded != 0  # a first value of 0 says nothing new (but is kept)
        state = NetWorthState(user_id=user_id)
        session.add(state)
    else:
        moved = (
            state.currency != currency
            or previous != rounded
            or state.account_count != account_count
        )
    state.currency = currency
    state.net_worth = format(rounded, "f")
    state.account_count = account_count
    state.computed_at = now
    state.exact = _fraction_text(exact)
    state.valid_until = valid_until
    await session.flush()
    if not moved:
        return
    await record(
        session,
        [
            PortfolioNetWorthRecalculated(
                user_id=user_id,
                previous_net_worth=previous,
                new_net_worth=rounded,
                delta=rounded - previous,
                currency=currency,
                account_count=account_count,
            )
        ],
    )


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
    if (
        state is None
        or state.exact is None
        or state.valid_until is None
        or now >= state.valid_until
        or state.computed_at > now
    ):
        return False
    base = state.currency
    today = now.date()
    fx = await market_repo.fx_table(session, {*changes, base}, today, today, pivots)
    exact = Fraction(state.exact)
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


async def market_moved(
    session: AsyncSession,
    *,
    asset_ids: Sequence[int] = (),
    fx: bool = False,
) -> int:
    """After prices of `asset_ids` (or, with `fx`, any rate) were upserted: ask for the net
    worth of every user it can move to be recomputed before commit (those holding one of the
    assets; for rates, those with an account or a holding in a currency other than their base
    currency, since a cross can route through any pair). Returns how many users."""
    users: set[uuid.UUID] = set()
    if asset_ids:
        users.update(
            await session.scalars(
                select(Account.user_id)
                .join(Holding, Holding.account_id == Account.id)
                .where(
                    Holding.asset_id.in_(list(asset_ids)),
                    Holding.is_active.is_(True),
                    Account.account_type.in_(NET_WORTH_TYPES),
                )
                .distinct()
            )
        )
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
    for user_id in sorted(users):  # one lock order for every market write
        net_worth_changed(session, user_id, lock=True)
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
            changes: dict[str, Decimal] = {}
            for item in queued(s):
                event = getattr(item, "event", None)
                if (
                    isinstance(event, AccountBalanceUpdated)
                    and event.user_id == user_id
                    and entry.kinds.get(event.account_id) in NET_WORTH_TYPES
                    and event.delta
                ):
                    changes[event.currency] = changes.get(event.currency, 0) + event.delta
            if await _increment(s, user_id, changes, entry.future, now):
                return
        await recalculate(s, user_id, now)

    before_commit(session, ("net_worth", user_id), work)


async def opened(session: AsyncSession, user_id: uuid.UUID) -> None:
    """An Asset or Liability account was opened: the next update recomputes in full (the
    number of accounts counted changed)."""
    await session.execute(
        update(NetWorthState).where(NetWorthState.user_id == user_id).values(valid_until=None)
    )


# ------------------------------------------------------------------------------ history


@dataclass(frozen=True, slots=True)
class Point:
    day: date
    net_worth: Decimal
    stale: list[str]


def points(start: date, end: date, interval: str) -> list[date]:
    """The dates of a series, oldest first; each is a closing value and `end` is always one.
    `day`: every day; `week`: every 7th day counting back from `end`; `month`: each month's
    last day, then `end`."""
    if interval == "day":
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]
    if interval == "week":
        out = []
        day = end
        while day >= start:
            out.append(day)
            day -= timedelta(days=7)
        return out[::-1]
    out = []
    year, month = start.year, start.month
    while True:
        following = date(year + month // 12, month % 12 + 1, 1)
        last = following - timedelta(days=1)
        if last >= end:
            break
        if last >= start:
            out.append(last)
        year, month = following.year, following.month
    out.append(end)
    return out


def _cash_changes(user_id: uuid.UUID, end: date) -> Any:
    """Per currency, exponent and day: how much the closing balances of the user's Asset and
    Liability accounts changed (from `balances_live`, one row per account and active day)."""
    live = (
        select(
            BalanceLive.account_id,
            BalanceLive.balance_date,
            (
                BalanceLive.balance
                - func.coalesce(
                    func.lag(BalanceLive.balance).over(
                        partition_by=BalanceLive.account_id, order_by=BalanceLive.balance_date
                    ),
                    0,
                )
            ).label("change"),
        )
        .join(Account, Account.id == BalanceLive.account_id)
        .where(
            Account.user_id == user_id,
            Account.account_type.in_(NET_WORTH_TYPES),
            BalanceLive.balance_date <= end,
        )
        .subquery()
    )
    return (
        select(Account.currency, Account.exponent, live.c.balance_date, func.sum(live.c.change))
        .join(live, live.c.account_id == Account.id)
        .group_by(Account.currency, Account.exponent, live.c.balance_date)
        .order_by(live.c.balance_date)
    )


async def history(
    session: AsyncSession,
    user_id: uuid.UUID,
    currency: str,
    start: date,
    end: date,
    interval: str,
    pivots: Sequence[str] = DEFAULT_PIVOTS,
) -> list[Point]:
    dates = points(start, end, interval)
    # 1. cash: changes of the closing balances, per currency and day
    changes: list[tuple[date, str, Decimal]] = [
        (day, cur, from_minor(int(total), exponent))
        for cur, exponent, day, total in await session.execute(_cash_changes(user_id, end))
    ]
    # 2. holdings: quantity of each asset held from each date on, summed over accounts
    rows = await session.execute(
        select(
            HoldingHistory.account_id,
            HoldingHistory.asset_id,
            HoldingHistory.effective_date,
            HoldingHistory.quantity,
        )
        .join(Account, Account.id == HoldingHistory.account_id)
        .where(
            Account.user_id == user_id,
            Account.account_type.in_(NET_WORTH_TYPES),
            HoldingHistory.effective_date <= end,
        )
        .order_by(HoldingHistory.effective_date)
    )
    last_qty: dict[tuple[int, int], Decimal] = {}
    qty_changes: list[tuple[date, int, Decimal]] = []
    for account_id, asset_id, day, quantity in rows:
        before = last_qty.get((account_id, asset_id), Decimal(0))
        last_qty[(account_id, asset_id)] = quantity
        qty_changes.append((day, asset_id, quantity - before))
    asset_ids = sorted({a for _, a, _ in qty_changes})
    # 3. the assets' symbols and currencies
    assets: dict[int, tuple[str, str]] = {}
    if asset_ids:
        for asset_id, symbol, asset_currency in await session.execute(
            select(Asset.id, Asset.symbol, Asset.currency).where(Asset.id.in_(asset_ids))
        ):
            assets[asset_id] = (symbol, asset_currency)
    # 4. prices in force from `start` on: each held asset's last before it and every one
    #    inside, as two comma-joined lists per asset (epoch days, closes × 10⁸) so that half a
    #    million prices cross from the database as a few hundred rows
    series: dict[int, tuple[list[int], list[int]]] = {}
    if asset_ids:
        opening = await market_repo.latest_prices(session, asset_ids, start - timedelta(days=1))
        for asset_id, (day, close) in opening.items():
            series[asset_id] = ([epoch_day(day)], [int(close.scaleb(PRICE_SCALE))])
        statement = _SERIES[session.bind.dialect.name]
        for asset_id, days_text, closes_text in await session.execute(
            statement, {"ids": asset_ids, "start": start, "end": end}
        ):
            days = list(map(int, days_text.split(",")))
            closes = list(map(int, closes_text.split(",")))
            if days != sorted(days):  # dates are unique: sorted means in order
                days, closes = map(list, zip(*sorted(zip(days, closes, strict=True)), strict=True))
            before = series.get(asset_id, ([], []))
            series[asset_id] = (before[0] + days, before[1] + closes)
    # 5. rates
    currencies = {c for _, c, _ in changes} | {c for _, c in assets.values()} | {currency}
    fx = await market_repo.fx_table(session, currencies, start, end, pivots)
    return _sweep(dates, changes, qty_changes, series, assets, fx, currency)


EPOCH = date(1970, 1, 1).toordinal()
VALUE_SCALE = 2 * PRICE_SCALE
"""Market values are exact integers in units of 10⁻¹⁶ (a quantity's 8 decimals times a
price's 8); cash is brought to the same scale."""


NEVER = -(10**9)
"""The epoch day of a price that does not exist: older than any, so always flagged."""


def epoch_day(day: date) -> int:
    return day.toordinal() - EPOCH


_SERIES = {
    "sqlite": text(
        # Rows reach GROUP BY in primary-key order, so each list is in date order (checked
        # anyway: SQLite before 3.44 cannot say ORDER BY inside an aggregate).
        "SELECT asset_id,"
        " group_concat(CAST(strftime('%s', price_date) AS INTEGER) / 86400),"
        " group_concat(close)"
        " FROM (SELECT asset_id, price_date, close FROM asset_prices"
        "       WHERE asset_id IN :ids"
        "         AND price_date >= :start AND price_date <= :end"
        "       ORDER BY asset_id, price_date)"
        " GROUP BY asset_id"
    ),
    "postgresql": text(
        "SELECT asset_id,"
        " string_agg((price_date - DATE '1970-01-01')::text, ',' ORDER BY price_date),"
        " string_agg(trunc(close * 100000000)::text, ',' ORDER BY price_date)"
        " FROM asset_prices"
        " WHERE asset_id IN :ids AND price_date >= :start AND price_date <= :end"
        " GROUP BY asset_id"
    ),
}
_SERIES = {
    name: statement.bindparams(
        bindparam("ids", expanding=True),
        bindparam("start", type_=Date),
        bindparam("end", type_=Date),
    )
    for name, statement in _SERIES.items()
}


def _sweep(
    dates: list[date],
    changes: list[tuple[date, str, Decimal]],
    qty_changes: list[tuple[date, int, Decimal]],
    series: dict[int, tuple[list[int], list[int]]],
    assets: dict[int, tuple[str, str]],
    fx: FxTable,
    target: str,
) -> list[Point]:
    """Value every point of the series exactly, in time linear in what changed.

    Per currency, an array holds how much the total changed on each day of the range (index 0
    also takes everything before it): cash changes as they come, and for each asset, the
    change of `quantity × price` wherever either moved. A running sum then gives each day's
    total per currency, converted at that day's rate. Integers throughout (10⁻¹⁶ units); a
    point is rounded once. Held assets whose price is missing or older than 7 days flag the
    days they affect."""
    first, last = epoch_day(dates[0]), epoch_day(dates[-1])
    width = last - first + 1
    arrays: dict[str, list[int]] = {}
    flagged: dict[int, set[str]] = {}

    def array(currency: str) -> list[int]:
        if currency not in arrays:
            arrays[currency] = [0] * width
        return arrays[currency]

    def flag(since: int, until: int, key: str) -> None:
        """Flag the days [since, until) that lie in the range."""
        for day in range(max(since, first), min(until, last + 1)):
            flagged.setdefault(day - first, set()).add(key)

    for day, cur, amount in changes:
        index = max(epoch_day(day) - first, 0)
        if index < width:
            array(cur)[index] += int(amount.scaleb(VALUE_SCALE))

    steps: dict[int, dict[int, int]] = {}
    for day, asset_id, delta in qty_changes:
        per_day = steps.setdefault(asset_id, {})
        key = epoch_day(day)
        per_day[key] = per_day.get(key, 0) + int(delta.scaleb(PRICE_SCALE))
    end = last + 1
    for asset_id, per_day in steps.items():
        symbol, cur = assets[asset_id]
        values = array(cur)
        key = f"price:{symbol}"
        days, closes = series.get(asset_id, ([], []))
        qty_days = sorted(per_day)
        running, quantities = 0, []
        for day in qty_days:
            running += per_day[day]
            quantities.append(running)
        value = 0  # quantity × the price in force, as added to `values` so far
        close: int | None = None  # the price in force
        close_day = 0
        j = 0  # the next price not yet applied
        for since, until, qty in zip(qty_days, [*qty_days[1:], end], quantities, strict=True):
            if since > last:
                break
            k = bisect.bisect_left(days, since, j)  # prices before the period: only in force
            if k > j:
                close, close_day, j = closes[k - 1], days[k - 1], k
            new = qty * close if close is not None else 0
            values[since - first if since > first else 0] += new - value
            value = new
            until = min(until, end)
            k = bisect.bisect_left(days, until, j)  # prices inside the period
            if qty:
                # A day is flagged when the price in force is over 7 days old, or missing
                # (as if priced long ago): one comparison per price.
                previous = close_day if close is not None else NEVER
                for day, price in zip(days[j:k], closes[j:k], strict=True):
                    if day - previous > 8:
                        flag(max(previous + 8, since), day, key)
                    new = qty * price
                    values[day - first if day > first else 0] += new - value
                    value = new
                    previous = day
                if until - previous > 8:
                    flag(max(previous + 8, since), until, key)
            if k > j:
                close, close_day, j = closes[k - 1], days[k - 1], k

    scale = 10**VALUE_SCALE
    totals = {cur: list(itertools.accumulate(values)) for cur, values in arrays.items()}
    out: list[Point] = []
    target_places = places(target)
    for point in dates:
        index = epoch_day(point) - first
        flags = set(flagged.get(index, ()))
        numerator = Fraction(0)
        for cur, running in totals.items():
            amount = running[index]
            if amount == 0:
                continue
            rate = fx.rate(cur, target, point)
            if rate is None:
                flags.add(f"fx:{cur}/{target}")
                continue
            if is_stale(rate.as_of, point):
                flags.add(f"fx:{cur}/{target}")
            numerator += amount * rate.value
        out.append(Point(point, round_to(numerator / scale, target_places), sorted(flags)))
    return out
