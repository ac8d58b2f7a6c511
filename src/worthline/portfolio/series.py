"""The net-worth series: daily projections per user, kept up to date by the writes that move
them, and the read that turns them into `GET /net-worth/history`.

Valuing ten years of daily points from scratch means reading every price of every asset held
(half a million rows for 200 assets); instead, like `balances_live` for the ledger, each user
has what changed on each day (days as epoch days):

- `net_worth_cash` (day, currency, exponent): the change of the closing balances of the
  user's Asset and Liability accounts, in minor units (decimal text: a day's sum over many
  accounts can exceed 64 bits). Every recorded movement adds its legs (`add_movements`: one
  upsert adding exactly); a journal import sums its legs per day as they stream past and adds
  those (`add_cash`); building the series from scratch reads them from `balances_live`
  (`rebuild_cash`).
- `net_worth_held` (day, currency): the change of Σ quantity × close in force over the user's
  holdings in assets priced in that currency, exact in 10⁻¹⁶ units.
- `net_worth_stale` (symbol, since, until): the days a held asset has no price, or only one
  over 7 days old.

The last two are recomputed from a day on (`refresh_held`): from a holdings sync's day, from
the earliest price an upsert wrote for an asset the user holds or held, or from the start
when an account with holdings is deleted. Rows before that day are kept: nothing that came
before it changed. A user's tables are built in full once (`build`), on the first read of the
series, which also covers users who had data before these tables existed.

The read (`history`) is then three range reads by primary key, the rates, and integer
running sums: its cost grows with the days that changed, not with the prices held.
"""

from __future__ import annotations

import bisect
import itertools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from math import lcm
from typing import Any

from sqlalchemy import Date, bindparam, delete, insert, or_, select, text, type_coerce
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType

from worthline.eventstream.service import serialize_events
from worthline.kit.db import Database, before_commit, unit_of_work, utcnow
from worthline.kit.sql import add_integer_text
from worthline.ledger.models import Account, AccountLike, BalanceLive
from worthline.market import repository as market_repo
from worthline.market.fx import DEFAULT_PIVOTS, STALE_AFTER, round_ratio
from worthline.market.models import PRICE_SCALE, Asset
from worthline.portfolio.models import (
    HoldingHistory,
    NetWorthCash,
    NetWorthHeld,
    NetWorthSeries,
    NetWorthStale,
)
from worthline.portfolio.networth import NET_WORTH_TYPES
from worthline.portfolio.valuation import places

EPOCH = date(1970, 1, 1).toordinal()
EARLIEST = date(1900, 1, 1)
VALUE_SCALE = 2 * PRICE_SCALE
"""Market values are stored as exact integers in units of 10⁻¹⁶ (a quantity's 8 places times
a price's 8)."""
READ_SCALE = 18
"""The read sums in units of 10⁻¹⁸: the finest of an account's exponent (down to −18) and a
market value's 10⁻¹⁶, so that both are whole numbers."""
ONE_DAY = timedelta(days=1)
FRESH_DAYS = STALE_AFTER.days
"""A price dated d is in force and fresh through d + 7; from d + 8 on it is stale."""


def epoch_day(day: date) -> int:
    return day.toordinal() - EPOCH


def from_epoch(day: int) -> date:
    return date.fromordinal(day + EPOCH)


MAX_POINTS = 5_000


@dataclass(frozen=True, slots=True)
class Point:
    day: date
    net_worth: Decimal  # rounded to the currency's places
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


# ------------------------------------------------------------------------------ cash


def _add_cash(dialect: str) -> Any:
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_(NetWorthCash)
    return statement.on_conflict_do_update(
        index_elements=["user_id", "day", "currency", "exponent"],
        set_={"change": add_integer_text(NetWorthCash.change, statement.excluded.change)},
    )


ADD_CASH = {dialect: _add_cash(dialect) for dialect in ("sqlite", "postgresql")}


def _cash_rows(user_id: uuid.UUID, sums: Mapping[tuple[int, str, int], int]) -> list[dict]:
    """`net_worth_cash` rows of (epoch day, currency, exponent) → change, leaving out zeros."""
    return [
        {"user_id": user_id, "day": d, "currency": c, "exponent": e, "change": str(change)}
        for (d, c, e), change in sums.items()
        if change
    ]


def movement_cash(
    user_id: uuid.UUID, rows: Iterable[Mapping[str, Any]], accounts: Mapping[int, AccountLike]
) -> list[dict]:
    """The `net_worth_cash` rows that movement rows (`from_account_id`, `to_account_id`,
    `amount` in minor units, `value_time`) add to: their legs on the user's Asset and
    Liability accounts, summed per day, currency and exponent; zeros left out."""
    sums: dict[tuple[int, str, int], int] = {}
    for row in rows:
        day = epoch_day(row["value_time"].date())
        for account_id, amount in (
            (row["from_account_id"], -row["amount"]),
            (row["to_account_id"], row["amount"]),
        ):
            account = accounts[account_id]
            if account.account_type in NET_WORTH_TYPES:
                key = (day, account.currency, account.exponent)
                sums[key] = sums.get(key, 0) + amount
    return _cash_rows(user_id, sums)


async def add_cash(
    session: AsyncSession, user_id: uuid.UUID, sums: Mapping[tuple[date, str, int], int]
) -> None:
    """Add per-day changes ((day, currency, exponent) → minor units) to the user's cash
    changes: what a bulk write summed while its movements streamed past (a journal import),
    in upserts of `ADD_CASH` (exact at any size)."""
    await _add_cash_rows(
        session, user_id, {(epoch_day(d), c, e): v for (d, c, e), v in sums.items()}
    )


async def _add_cash_rows(
    session: AsyncSession, user_id: uuid.UUID, sums: Mapping[tuple[int, str, int], int]
) -> None:
    """`ADD_CASH` for (epoch day, currency, exponent) → change, in key order, 5,000 a time."""
    values = _cash_rows(user_id, dict(sorted(sums.items())))
    statement = ADD_CASH[session.bind.dialect.name]
    for start in range(0, len(values), 5_000):
        await session.execute(statement, values[start : start + 5_000])


async def add_movements(
    session: AsyncSession,
    user_id: uuid.UUID,
    rows: Iterable[Mapping[str, Any]],
    accounts: Mapping[int, AccountLike],
) -> None:
    """Add movement rows to the user's cash changes (`movement_cash`): one upsert (`ADD_CASH`)
    that adds to the stored decimal text exactly (`kit.sql.add_integer_text`: a day's sum over
    many accounts can exceed 64 bits, where SQL integer addition would fail on PostgreSQL and
    turn into a float on SQLite)."""
    values = movement_cash(user_id, rows, accounts)
    if values:
        statement = ADD_CASH[session.bind.dialect.name]
        await session.execute(statement, values[0] if len(values) == 1 else values)


STREAM_PARTITION = 10_000
"""Rows per fetch when a rebuild streams a user's whole history."""

_CASH_ACCOUNTS = select(Account.id, Account.currency, Account.exponent).where(
    Account.user_id == bindparam("user_id"), Account.account_type.in_(NET_WORTH_TYPES)
)
_BALANCES = (
    select(
        BalanceLive.account_id,
        # As the driver gives it (a date, or SQLite's ISO text): converting a million of them
        # cost more than the rest of the rebuild; the few distinct days are converted at the end.
        type_coerce(BalanceLive.balance_date, NullType()),
        BalanceLive.balance,
    )
    .where(BalanceLive.account_id.in_(_CASH_ACCOUNTS.with_only_columns(Account.id)))
    .order_by(BalanceLive.account_id, BalanceLive.balance_date)  # the primary key's order
)


async def rebuild_cash(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Replace the user's cash changes by what `balances_live` says (after a bulk write): each
    account's closing balance minus the one before it, summed per day in Python (exact at
    any size). The rows stream through in partitions: after a journal import of a million
    movements they are a million, and buffered they took 350 MB."""
    await session.execute(delete(NetWorthCash).where(NetWorthCash.user_id == user_id))
    kinds = {
        account_id: (currency, exponent)
        for account_id, currency, exponent in await session.execute(
            _CASH_ACCOUNTS, {"user_id": user_id}
        )
    }
    # (currency, exponent) -> day as the driver gives it -> change
    sums: dict[tuple[str, int], dict[Any, int]] = {kind: {} for kind in kinds.values()}
    day_sums: dict[Any, int] = {}
    previous_account, previous = None, 0
    # Core, not the session: the ORM's handling of each row cost three times the query.
    connection = await session.connection()
    rows = await connection.stream(_BALANCES, {"user_id": user_id})
    async for partition in rows.partitions(STREAM_PARTITION):
        for account_id, day, balance in partition:
            if account_id != previous_account:
                previous_account, previous = account_id, 0
                day_sums = sums[kinds[account_id]]
            day_sums[day] = day_sums.get(day, 0) + balance - previous
            previous = balance
    changes = {
        (epoch_day(day if isinstance(day, date) else date.fromisoformat(day)), c, e): change
        for (c, e), by_day in sums.items()
        for day, change in by_day.items()
    }
    await _add_cash_rows(session, user_id, changes)  # into no rows: inserts


# ------------------------------------------------------------------------------ holdings


_PRICES = {
    "sqlite": text(
        # Rows reach GROUP BY in primary-key order, so each list is in date order (checked
        # anyway: SQLite before 3.44 cannot say ORDER BY inside an aggregate). SQLite keeps a
        # close as its integer count of 10⁻⁸ (`ExactDecimal`).
        "SELECT asset_id,"
        " group_concat(CAST(strftime('%s', price_date) AS INTEGER) / 86400),"
        " group_concat(close)"
        " FROM (SELECT asset_id, price_date, close FROM asset_prices"
        "       WHERE asset_id IN :ids AND price_date >= :start"
        "       ORDER BY asset_id, price_date)"
        " GROUP BY asset_id"
    ),
    "postgresql": text(
        "SELECT asset_id,"
        " string_agg((price_date - DATE '1970-01-01')::text, ',' ORDER BY price_date),"
        " string_agg(trunc(close * 100000000)::text, ',' ORDER BY price_date)"
        " FROM asset_prices"
        " WHERE asset_id IN :ids AND price_date >= :start"
        " GROUP BY asset_id"
    ),
}
"""Each asset's prices from `start` on as two comma-joined lists (epoch days, closes × 10⁸),
so that many thousand prices cross from the database as one row per asset."""
_PRICES = {
    name: statement.bindparams(bindparam("ids", expanding=True), bindparam("start", type_=Date))
    for name, statement in _PRICES.items()
}


async def _prices_from(
    session: AsyncSession, asset_ids: list[int], start: date
) -> dict[int, tuple[list[int], list[int]]]:
    out: dict[int, tuple[list[int], list[int]]] = {}
    if not asset_ids:
        return out
    statement = _PRICES[session.bind.dialect.name]
    for asset_id, days_text, closes_text in await session.execute(
        statement, {"ids": asset_ids, "start": start}
    ):
        days = list(map(int, days_text.split(",")))
        closes = list(map(int, closes_text.split(",")))
        if any(a >= b for a, b in itertools.pairwise(days)):
            days, closes = map(list, zip(*sorted(zip(days, closes, strict=True)), strict=True))
        out[asset_id] = (days, closes)
    return out


@dataclass(slots=True)
class Walk:
    """One asset's contribution from day `first` on: its value changes and stale spans."""

    changes: dict[int, int] = field(default_factory=dict)  # epoch day → Δ(quantity × close)
    spans: list[tuple[int, int | None]] = field(default_factory=list)


def walk(
    first: int,
    quantity: int,
    steps: Sequence[tuple[int, int]],
    price: tuple[int, int] | None,
    days: Sequence[int],
    closes: Sequence[int],
    stale_since: int | None = None,
) -> Walk:
    """Follow one asset from day `first` on. `quantity` (× 10⁸) and `price` ((epoch day,
    close × 10⁸), or None) are those in force the day before; `steps` the new quantities and
    `days`/`closes` the prices from `first` on, in date order. `stale_since`: the start of a
    stale span running up to `first`, continued if the asset is still stale there.

    Between two days on which the quantity or the price changes, the value is constant and
    the asset turns stale at most once (8 days after its price), so the walk visits only
    those days."""
    out = Walk()
    close, close_day = (price[1], price[0]) if price is not None else (None, None)
    value = quantity * close if close is not None else 0
    events = sorted({first, *(day for day, _ in steps), *days})
    i = j = 0
    for n, day in enumerate(events):
        while i < len(steps) and steps[i][0] <= day:
            quantity = steps[i][1]
            i += 1
        while j < len(days) and days[j] <= day:
            close, close_day = closes[j], days[j]
            j += 1
        new = quantity * close if close is not None else 0
        if new != value:
            out.changes[day] = new - value
            value = new
        end = events[n + 1] if n + 1 < len(events) else None
        if not quantity:
            stale_from = None
        elif close_day is None:
            stale_from = day
        else:
            stale_from = max(day, close_day + FRESH_DAYS + 1)
        if stale_from is not None and end is not None and stale_from >= end:
            stale_from = None  # fresh through this period
        if stale_since is not None and stale_from != day:
            out.spans.append((stale_since, day))  # the running span ends here
            stale_since = None
        if stale_since is None and stale_from is not None:
            stale_since = stale_from
    if stale_since is not None:
        out.spans.append((stale_since, None))
    return out


_HISTORY = (
    select(
        HoldingHistory.account_id,
        HoldingHistory.asset_id,
        HoldingHistory.effective_date,
        HoldingHistory.quantity,
    )
    .join(Account, Account.id == HoldingHistory.account_id)
    .where(
        Account.user_id == bindparam("user_id"),
        Account.account_type.in_(NET_WORTH_TYPES),
    )
    .order_by(HoldingHistory.effective_date)
)


async def quantity_steps(
    session: AsyncSession, user_id: uuid.UUID
) -> dict[int, list[tuple[int, int]]]:
    """Per asset, the quantity (× 10⁸) the user holds from each day it changed, summed over
    their Asset and Liability accounts."""
    last: dict[tuple[int, int], int] = {}
    per_day: dict[int, dict[int, int]] = {}
    for account_id, asset_id, day, quantity in await session.execute(
        _HISTORY, {"user_id": user_id}
    ):
        scaled = int(quantity.scaleb(PRICE_SCALE))
        delta = scaled - last.get((account_id, asset_id), 0)
        last[(account_id, asset_id)] = scaled
        days = per_day.setdefault(asset_id, {})
        key = epoch_day(day)
        days[key] = days.get(key, 0) + delta
    out: dict[int, list[tuple[int, int]]] = {}
    for asset_id, days in per_day.items():
        running = 0
        steps = out[asset_id] = []
        for day in sorted(days):
            running += days[day]
            steps.append((day, running))
    return out


async def refresh_held(session: AsyncSession, user_id: uuid.UUID, since: date | None) -> None:
    """Recompute the user's holdings value changes and stale spans from `since` on (all of
    them when None), from holdings history and prices; rows before `since` are kept."""
    since = max(since or EARLIEST, EARLIEST)
    first = epoch_day(since)
    steps = await quantity_steps(session, user_id)
    opening: dict[int, int] = {}
    later: dict[int, list[tuple[int, int]]] = {}
    for asset_id, asset_steps in steps.items():
        k = bisect.bisect_left(asset_steps, (first, -(10**40)))
        opening[asset_id] = asset_steps[k - 1][1] if k else 0
        later[asset_id] = asset_steps[k:]
    moving = sorted(a for a in steps if opening[a] or later[a])
    symbols: dict[int, tuple[str, str]] = {}
    if moving:
        symbols = {
            asset_id: (symbol, currency)
            for asset_id, symbol, currency in await session.execute(
                select(Asset.id, Asset.symbol, Asset.currency).where(Asset.id.in_(moving))
            )
        }
    before = {
        asset_id: (epoch_day(day), int(close.scaleb(PRICE_SCALE)))
        for asset_id, (day, close) in (
            await market_repo.latest_prices(session, moving, since - timedelta(days=1))
        ).items()
    }
    prices = await _prices_from(session, moving, since)

    running = await session.execute(
        select(NetWorthStale.symbol, NetWorthStale.since).where(
            NetWorthStale.user_id == user_id,
            NetWorthStale.since < first,
            or_(NetWorthStale.until.is_(None), NetWorthStale.until >= first),
        )
    )
    carried = dict(running.all())
    held: dict[tuple[int, str], int] = {}
    spans: list[dict[str, Any]] = []
    for asset_id in moving:
        symbol, currency = symbols[asset_id]
        days, closes = prices.get(asset_id, ([], []))
        result = walk(
            first,
            opening[asset_id],
            later[asset_id],
            before.get(asset_id),
            days,
            closes,
            carried.pop(symbol, None),
        )
        for day, change in result.changes.items():
            held[(day, currency)] = held.get((day, currency), 0) + change
        spans += [
            {"user_id": user_id, "symbol": symbol, "since": a, "until": b} for a, b in result.spans
        ]
    # A span running into `first` for an asset no longer moving ends there.
    spans += [
        {"user_id": user_id, "symbol": symbol, "since": a, "until": first}
        for symbol, a in carried.items()
    ]

    await session.execute(
        delete(NetWorthHeld).where(NetWorthHeld.user_id == user_id, NetWorthHeld.day >= first)
    )
    await session.execute(
        delete(NetWorthStale).where(
            NetWorthStale.user_id == user_id,
            or_(NetWorthStale.until.is_(None), NetWorthStale.until >= first),
        )
    )
    values = [
        {"user_id": user_id, "day": day, "currency": currency, "change": str(change)}
        for (day, currency), change in sorted(held.items())
        if change
    ]
    for start in range(0, len(values), 5_000):
        await session.execute(insert(NetWorthHeld), values[start : start + 5_000])
    if spans:
        await session.execute(insert(NetWorthStale), spans)


# ------------------------------------------------------------------------------ upkeep


async def is_built(session: AsyncSession, user_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(NetWorthSeries.user_id).where(NetWorthSeries.user_id == user_id)
    )
    return found is not None


async def build(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Build the user's series tables from everything (the caller holds the user's event
    lock, as every writer that maintains them does)."""
    await rebuild_cash(session, user_id)
    await refresh_held(session, user_id, None)
    await session.execute(delete(NetWorthSeries).where(NetWorthSeries.user_id == user_id))
    session.add(NetWorthSeries(user_id=user_id, built_at=utcnow()))
    await session.flush()


async def ensure_built(db: Database, user_id: uuid.UUID) -> None:
    """Build the user's series tables in a unit of work of their own if they never were (one
    primary-key read). Called before the caller's snapshot read begins, so that it sees
    what was built."""
    async with db.read_session() as reader:
        if await is_built(reader, user_id):
            return
    async with unit_of_work(db) as session:
        await serialize_events(session, user_id)
        if not await is_built(session, user_id):  # a concurrent read may have built them
            await build(session, user_id)


_PENDING = "worthline.net_worth.series"


def held_changed(
    session: AsyncSession, user_id: uuid.UUID, since: date | None, *, lock: bool = False
) -> None:
    """Ask for the user's holdings value changes to be recomputed from `since` on (None: from
    the start) once, just before this unit of work commits. `lock`: take the user's event
    lock first, for writers that do not hold it already (market data)."""
    pending: dict[uuid.UUID, tuple[date, bool]] = session.sync_session.info.setdefault(_PENDING, {})
    day = since or EARLIEST
    earlier, locked = pending.get(user_id, (day, lock))
    pending[user_id] = (min(day, earlier), lock or locked)

    async def work(s: AsyncSession) -> None:
        day, lock = s.sync_session.info.get(_PENDING, {}).pop(user_id, (EARLIEST, True))
        if lock:
            await serialize_events(s, user_id)
        if await is_built(s, user_id):  # else the first read builds everything anyway
            await refresh_held(s, user_id, day)

    before_commit(session, ("net_worth_series", user_id), work)


# ------------------------------------------------------------------------------ the read


_CASH_READ = select(
    NetWorthCash.day, NetWorthCash.currency, NetWorthCash.exponent, NetWorthCash.change
).where(NetWorthCash.user_id == bindparam("user_id"), NetWorthCash.day <= bindparam("last"))
_HELD_READ = select(NetWorthHeld.day, NetWorthHeld.currency, NetWorthHeld.change).where(
    NetWorthHeld.user_id == bindparam("user_id"), NetWorthHeld.day <= bindparam("last")
)
_STALE_READ = select(NetWorthStale.since, NetWorthStale.until, NetWorthStale.symbol).where(
    NetWorthStale.user_id == bindparam("user_id"),
    NetWorthStale.since <= bindparam("last"),
    or_(NetWorthStale.until.is_(None), NetWorthStale.until > bindparam("first")),
)


async def history(
    session: AsyncSession,
    user_id: uuid.UUID,
    currency: str,
    dates: Sequence[date],
    pivots: Sequence[str] = DEFAULT_PIVOTS,
) -> list[Point]:
    """Closing net worth on each of `dates` (ascending) in `currency`, from the user's series
    tables (built: `ensure_built`). Each point is exact until it is rounded once; points
    whose value relies on a stale or missing price or rate list it in `stale`."""
    first, last = epoch_day(dates[0]), epoch_day(dates[-1])
    width = last - first + 1
    arrays: dict[str, list[int]] = {}  # per currency: change on each day, index 0 = before
    params = {"user_id": user_id, "first": first, "last": last}
    connection = await session.connection()  # Core rows: no ORM processing per row
    units = {exponent: 10 ** (READ_SCALE + exponent) for exponent in range(-18, 1)}
    held_unit = 10 ** (READ_SCALE - VALUE_SCALE)
    for day, cur, exponent, change in (await connection.execute(_CASH_READ, params)).all():
        values = arrays.get(cur) or arrays.setdefault(cur, [0] * width)
        values[day - first if day > first else 0] += int(change) * units[exponent]
    for day, cur, change in (await connection.execute(_HELD_READ, params)).all():
        values = arrays.get(cur) or arrays.setdefault(cur, [0] * width)
        values[day - first if day > first else 0] += int(change) * held_unit
    spans = (await connection.execute(_STALE_READ, params)).all()
    fx = await market_repo.fx_table(session, {*arrays, currency}, dates[0], dates[-1], pivots)
    totals = {cur: list(itertools.accumulate(values)) for cur, values in arrays.items()}
    days = [epoch_day(point) for point in dates]
    flagged: dict[int, set[str]] = {}  # only the points' days: a span may cover decades
    for since, until, symbol in spans:
        lo = bisect.bisect_left(days, since)
        hi = len(days) if until is None else bisect.bisect_left(days, until)
        for day in days[lo:hi]:
            flagged.setdefault(day, set()).add(f"price:{symbol}")
    digits = places(currency)
    changes = fx.dates()
    following = date.min  # the next date on which a rate may change
    # While the rates stay the same, a point is Σ amount × factor / whole: each currency's
    # rate brought to one common denominator once, not per point.
    factors: list[tuple[str, list[int], int | None, date | None]] = []
    whole = 1
    out: list[Point] = []
    for point, day in zip(dates, days, strict=True):
        if point >= following:  # between two rate dates every lookup gives the same rate
            rates = {cur: fx.rate(cur, currency, point) for cur in totals}
            common = lcm(*(r.value.denominator for r in rates.values() if r is not None))
            whole = common * 10**READ_SCALE
            factors = []
            for cur, running in totals.items():
                rate = rates[cur]
                if rate is None:
                    factors.append((cur, running, None, None))
                    continue
                factor = rate.value.numerator * (common // rate.value.denominator)
                stale_from = rate.as_of + STALE_AFTER + ONE_DAY if rate.as_of else None
                factors.append((cur, running, factor, stale_from))
            k = bisect.bisect_right(changes, point)
            following = changes[k] if k < len(changes) else date.max
        index = day - first
        stale = set(flagged.get(day, ()))
        numerator = 0
        for cur, running, factor, stale_from in factors:
            amount = running[index]
            if not amount:
                continue
            if factor is None or (stale_from is not None and point >= stale_from):
                stale.add(f"fx:{cur}/{currency}")
                if factor is None:
                    continue
            numerator += amount * factor
        out.append(Point(point, round_ratio(numerator, whole, digits), sorted(stale)))
    return out
