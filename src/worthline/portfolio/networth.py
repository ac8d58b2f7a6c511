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

import heapq
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.auth.models import User
from worthline.eventstream.events import PortfolioNetWorthRecalculated
from worthline.eventstream.service import record
from worthline.kit.db import before_commit, utcnow
from worthline.kit.money import from_minor
from worthline.ledger import repository as ledger_repo
from worthline.ledger.models import Account, BalanceLive
from worthline.market import repository as market_repo
from worthline.market.fx import DEFAULT_PIVOTS, FxTable, round_to
from worthline.market.models import Asset, Price
from worthline.portfolio.models import HoldingHistory, NetWorthState
from worthline.portfolio.valuation import (
    STALE_AFTER,
    WIDE,
    Converted,
    Flag,
    add,
    convert_all,
    is_stale,
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


async def recalculate(
    session: AsyncSession, user_id: uuid.UUID, now: datetime | None = None
) -> None:
    """Recompute the user's net worth in their base currency and, when it changed (in value,
    currency or accounts counted), persist it and record `PortfolioNetWorthRecalculated` with
    the previous value from the persisted state (0 for a user's first). The caller holds the
    user's event lock (`serialize_events`), so concurrent writers see each other's state."""
    base = await session.scalar(select(User.base_currency).where(User.id == user_id))
    if base is None:
        return
    worth = await net_worth_now(session, user_id, base, now)
    state = await session.get(NetWorthState, user_id, populate_existing=True)
    if state is None:
        previous = round_to(Fraction(0), places(base))
    elif state.currency != base:
        previous = worth.net_worth  # a new base currency: the figure restarts in it
    else:
        previous = Decimal(state.net_worth)
    unchanged = (
        state is not None
        and state.currency == base
        and Decimal(state.net_worth) == worth.net_worth
        and state.account_count == worth.account_count
    )
    if unchanged or (state is None and worth.net_worth == 0):
        return
    if state is None:
        state = NetWorthState(user_id=user_id)
        session.add(state)
    state.currency = base
    state.net_worth = format(worth.net_worth, "f")
    state.account_count = worth.account_count
    state.computed_at = worth.as_of
    await session.flush()
    await record(
        session,
        [
            PortfolioNetWorthRecalculated(
                user_id=user_id,
                previous_net_worth=previous,
                new_net_worth=worth.net_worth,
                delta=worth.net_worth - previous,
                currency=base,
                account_count=worth.account_count,
            )
        ],
    )


def net_worth_changed(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Ask for the user's net worth to be recomputed once, just before this unit of work
    commits (after every balance and holding it changes is in place)."""

    async def work(s: AsyncSession) -> None:
        await recalculate(s, user_id)

    before_commit(session, ("net_worth", user_id), work)


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
    # 4. prices in force from `start` on: the latest before it and every one inside
    price_rows: list[tuple[date, int, Decimal]] = []
    if asset_ids:
        opening = await market_repo.latest_prices(session, asset_ids, start - timedelta(days=1))
        price_rows = [(day, a, close) for a, (day, close) in opening.items()]
        price_rows += [
            (day, a, close)
            for a, day, close in await session.execute(
                select(Price.asset_id, Price.price_date, Price.close).where(
                    Price.asset_id.in_(asset_ids),
                    Price.price_date >= start,
                    Price.price_date <= end,
                )
            )
        ]
    # 5. rates
    currencies = {c for _, c, _ in changes} | {c for _, c in assets.values()} | {currency}
    fx = await market_repo.fx_table(session, currencies, start, end, pivots)
    return _sweep(dates, changes, qty_changes, price_rows, assets, fx, currency)


def _sweep(
    dates: list[date],
    changes: list[tuple[date, str, Decimal]],
    qty_changes: list[tuple[date, int, Decimal]],
    price_rows: list[tuple[date, int, Decimal]],
    assets: dict[int, tuple[str, str]],
    fx: FxTable,
    target: str,
) -> list[Point]:
    """Walk the days once, applying each change when its day is reached, and value the totals
    at every point. Exact throughout; each point is rounded once."""
    changes.sort(key=lambda c: c[0])
    qty_changes.sort(key=lambda c: c[0])
    price_rows.sort(key=lambda c: c[0])
    cash: dict[str, Decimal] = {}
    held: dict[str, Decimal] = {}  # market value of priced holdings, per asset currency
    quantity: dict[int, Decimal] = {}
    price: dict[int, Decimal] = {}
    price_day: dict[int, date] = {}
    ageing: list[tuple[date, int]] = []  # (price date, asset) of held assets, oldest first
    stale_prices: set[int] = set()
    unpriced: set[int] = set()  # held without any price yet
    i = j = k = 0
    out: list[Point] = []
    target_places = places(target)

    def revalue(asset_id: int, new_qty: Decimal, new_price: Decimal | None) -> None:
        cur = assets[asset_id][1]
        old_price = price.get(asset_id)
        old_qty = quantity.get(asset_id, Decimal(0))
        old = WIDE.multiply(old_qty, old_price) if old_price is not None else Decimal(0)
        new = WIDE.multiply(new_qty, new_price) if new_price is not None else Decimal(0)
        if old != new:
            held[cur] = WIDE.add(held.get(cur, Decimal(0)), new - old)

    for point in dates:
        while i < len(changes) and changes[i][0] <= point:
            _, cur, amount = changes[i]
            cash[cur] = WIDE.add(cash.get(cur, Decimal(0)), amount)
            i += 1
        while j < len(qty_changes) and qty_changes[j][0] <= point:
            _, asset_id, delta = qty_changes[j]
            new_qty = WIDE.add(quantity.get(asset_id, Decimal(0)), delta)
            revalue(asset_id, new_qty, price.get(asset_id))
            quantity[asset_id] = new_qty
            if new_qty == 0:
                stale_prices.discard(asset_id)
                unpriced.discard(asset_id)
            elif asset_id in price_day:
                heapq.heappush(ageing, (price_day[asset_id], asset_id))
            else:
                unpriced.add(asset_id)
            j += 1
        while k < len(price_rows) and price_rows[k][0] <= point:
            day, asset_id, close = price_rows[k]
            revalue(asset_id, quantity.get(asset_id, Decimal(0)), close)
            price[asset_id] = close
            price_day[asset_id] = day
            stale_prices.discard(asset_id)
            unpriced.discard(asset_id)
            if quantity.get(asset_id):
                heapq.heappush(ageing, (day, asset_id))
            k += 1
        horizon = point - STALE_AFTER
        while ageing and ageing[0][0] < horizon:
            day, asset_id = heapq.heappop(ageing)
            if quantity.get(asset_id) and price_day.get(asset_id) == day:
                stale_prices.add(asset_id)
        flags = [f"price:{assets[a][0]}" for a in (*stale_prices, *unpriced)]
        total = Fraction(0)
        for cur in sorted(set(cash) | set(held)):
            amount = WIDE.add(cash.get(cur, Decimal(0)), held.get(cur, Decimal(0)))
            if amount == 0:
                continue
            rate = fx.rate(cur, target, point)
            if rate is None:
                flags.append(f"fx:{cur}/{target}")
                continue
            if is_stale(rate.as_of, point):
                flags.append(f"fx:{cur}/{target}")
            total += rate.convert(amount)
        out.append(Point(point, round_to(total, target_places), sorted(flags)))
    return out
