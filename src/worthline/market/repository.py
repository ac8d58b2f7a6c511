"""Market data queries: bulk upserts and "in force on a day" lookups, on both engines."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, and_, func, select, text, tuple_, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.market.fx import DEFAULT_PIVOTS, FxTable
from worthline.market.models import Asset, FxRate, FxRatesVersion, MarketCap, Price

CHUNK = 2_000  # rows per statement: inside both engines' bound-parameter limits


def _upsert_statement(
    session: AsyncSession, table: Table, columns: Sequence[str], keys: Sequence[str], replace: bool
) -> Any:
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    updates = {c: statement.excluded[c] for c in columns if c not in keys}
    if replace and updates:
        return statement.on_conflict_do_update(index_elements=list(keys), set_=updates)
    return statement.on_conflict_do_nothing(index_elements=list(keys))


async def upsert(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
) -> int:
    """Insert `rows`, replacing the non-key columns of rows whose `keys` already exist: one
    statement, executed for 2,000 rows at a time (an executemany the driver batches). Every
    row has the same columns. Returns the number of rows written."""
    if not rows:
        return 0
    statement = _upsert_statement(session, table, list(rows[0]), keys, replace=True)
    for start in range(0, len(rows), CHUNK):
        await session.execute(statement, list(rows[start : start + CHUNK]))
    return len(rows)


async def insert_missing(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> None:
    """Insert `rows` whose `keys` do not exist yet; existing rows stay as they are."""
    if not rows:
        return
    statement = _upsert_statement(session, table, list(rows[0]), keys, replace=False)
    for start in range(0, len(rows), CHUNK):
        await session.execute(statement, list(rows[start : start + CHUNK]))


ASSET_LOCKS = 0x5754
"""PostgreSQL advisory locks on assets use this as the first of two keys (the asset id is the
second): a key space apart from the users' single-key event locks."""


async def lock_assets(
    session: AsyncSession, asset_ids: Collection[int], exclusive: Collection[int] = ()
) -> None:
    """Take transaction-scoped advisory locks on assets, in id order (PostgreSQL; SQLite has
    one writer at a time): exclusive for `exclusive` (a writer of their prices), shared for the
    rest (a holdings sync listing them). Every writer takes them before any user's event lock
    and any row lock, so that whoever writes a price sees every holder of the asset, and a
    sync that makes someone a holder sees every price written before it."""
    if session.bind.dialect.name != "postgresql" or not asset_ids:
        return
    ids = sorted(set(asset_ids))
    await session.execute(
        text(
            "SELECT CASE WHEN a.exclusive THEN pg_advisory_xact_lock(:space, a.id)"
            " ELSE pg_advisory_xact_lock_shared(:space, a.id) END"
            " FROM (SELECT unnest(CAST(:ids AS integer[])) AS id,"
            "              unnest(CAST(:exclusive AS boolean[])) AS exclusive"
            "       ORDER BY 1) AS a"
        ),
        {"space": ASSET_LOCKS, "ids": ids, "exclusive": [i in exclusive for i in ids]},
    )


async def assets_by_symbol(session: AsyncSession, symbols: Collection[str]) -> dict[str, Asset]:
    if not symbols:
        return {}
    found = await session.scalars(select(Asset).where(Asset.symbol.in_(list(symbols))))
    return {asset.symbol: asset for asset in found}


async def asset(session: AsyncSession, symbol: str) -> Asset | None:
    return await session.scalar(select(Asset).where(Asset.symbol == symbol))


async def prices_between(
    session: AsyncSession, asset_id: int, start: date | None, end: date | None
) -> list[Price]:
    query = select(Price).where(Price.asset_id == asset_id).order_by(Price.price_date)
    if start is not None:
        query = query.where(Price.price_date >= start)
    if end is not None:
        query = query.where(Price.price_date <= end)
    return list(await session.scalars(query))


async def market_caps_between(
    session: AsyncSession, asset_id: int, start: date | None, end: date | None
) -> list[MarketCap]:
    query = select(MarketCap).where(MarketCap.asset_id == asset_id).order_by(MarketCap.cap_date)
    if start is not None:
        query = query.where(MarketCap.cap_date >= start)
    if end is not None:
        query = query.where(MarketCap.cap_date <= end)
    return list(await session.scalars(query))


async def latest_prices(
    session: AsyncSession, asset_ids: Collection[int], day: date
) -> dict[int, tuple[date, Decimal]]:
    """Each asset's close on the latest date on or before `day`: one query, one backward
    probe of the primary key per asset (a `max … group by` would read every earlier price)."""
    if not asset_ids:
        return {}
    latest = (
        select(
            Asset.id.label("asset_id"),
            select(Price.price_date)
            .where(Price.asset_id == Asset.id, Price.price_date <= day)
            .order_by(Price.price_date.desc())
            .limit(1)
            .scalar_subquery()
            .label("price_date"),
        )
        .where(Asset.id.in_(list(asset_ids)))
        .subquery()
    )
    rows = await session.execute(
        select(Price.asset_id, Price.price_date, Price.close).join(
            latest,
            and_(Price.asset_id == latest.c.asset_id, Price.price_date == latest.c.price_date),
        )
    )
    return {asset_id: (day_, close) for asset_id, day_, close in rows}


def _pairs(currencies: Iterable[str], pivots: Iterable[str]) -> list[tuple[str, str]]:
    every = sorted(set(currencies) | set(pivots))
    return [(a, b) for a in every for b in every if a != b]


FX_CACHE_SIZE = 8
_fx_cache: OrderedDict[tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]], FxTable] = (
    OrderedDict()
)
"""Rate tables by (version token, pairs, pivots), most recently used last."""


async def fx_changed(session: AsyncSession) -> None:
    """Give the FX rates a new version token, in the caller's transaction (every rate upsert
    does): tables read under the old token are not used again once it commits."""
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(FxRatesVersion).values(id=1, token=uuid.uuid4().hex)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["id"], set_={"token": statement.excluded.token}
        )
    )


async def fx_table(
    session: AsyncSession,
    currencies: Iterable[str],
    start: date,
    end: date,
    pivots: Sequence[str] = DEFAULT_PIVOTS,
) -> FxTable:
    """Every rate between `currencies` (and the pivots) that can be in force from `start` to
    `end`.

    Rates are shared by every user and change rarely against how often they are read (a
    ten-year series reads thousands), so a process keeps the tables it has read, whole (every
    date of the pairs), under the version token they were read with: one primary-key read of
    the token, then a hit needs nothing else, and its `FxTable` has remembered the rates it
    was asked for. Without a token (no rate upserted yet), the period's rates are read
    directly: those dated inside it and each pair's latest before it, in one query."""
    currencies = set(currencies)
    if len(currencies) < 2:
        return FxTable([], pivots)  # one currency converts to itself: nothing to read
    pairs = _pairs(currencies, pivots)
    pair = tuple_(FxRate.base, FxRate.quote).in_(pairs)
    token = await session.scalar(select(FxRatesVersion.token).where(FxRatesVersion.id == 1))
    if token is not None:
        key = (token, tuple(pairs), tuple(pivots))
        table = _fx_cache.get(key)
        if table is not None:
            _fx_cache.move_to_end(key)
            return table
        rows = await session.execute(
            select(FxRate.base, FxRate.quote, FxRate.rate_date, FxRate.rate).where(pair)
        )
        table = FxTable(((b, q, d, r) for b, q, d, r in rows), pivots)
        _fx_cache[key] = table
        while len(_fx_cache) > FX_CACHE_SIZE:
            _fx_cache.popitem(last=False)
        return table
    before = (
        select(FxRate.base, FxRate.quote, func.max(FxRate.rate_date).label("rate_date"))
        .where(pair, FxRate.rate_date < start)
        .group_by(FxRate.base, FxRate.quote)
        .subquery()
    )
    opening = select(FxRate.base, FxRate.quote, FxRate.rate_date, FxRate.rate).join(
        before,
        and_(
            FxRate.base == before.c.base,
            FxRate.quote == before.c.quote,
            FxRate.rate_date == before.c.rate_date,
        ),
    )
    inside = select(FxRate.base, FxRate.quote, FxRate.rate_date, FxRate.rate).where(
        pair, FxRate.rate_date >= start, FxRate.rate_date <= end
    )
    rows = await session.execute(union_all(opening, inside))
    return FxTable(((b, q, d, r) for b, q, d, r in rows), pivots)
