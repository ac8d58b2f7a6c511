"""Market data seeded through the service layer (the market API has its own tests)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from worthline.kit.context import AppContext
from worthline.kit.db import Database, unit_of_work
from worthline.market import service as market
from worthline.market.service import FxRateIn, NewAsset, PriceIn
from worthline.portfolio.models import NetWorthCash, NetWorthHeld, NetWorthStale


async def asset(ctx: AppContext, symbol: str, currency: str, prices: dict[date, str]) -> None:
    async with unit_of_work(ctx.db) as session:
        created = await market.create_asset(
            session, NewAsset(symbol, f"{symbol} Inc", "equity", currency)
        )
        await market.upsert_prices(
            session, created, [PriceIn(day, Decimal(close)) for day, close in prices.items()]
        )


async def rates(ctx: AppContext, *rows: tuple[date, str, str, str]) -> None:
    async with unit_of_work(ctx.db) as session:
        await market.upsert_fx_rates(
            session, [FxRateIn(day, base, quote, Decimal(rate)) for day, base, quote, rate in rows]
        )


async def sync(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    acct: dict[str, Any],
    holdings: list[dict[str, Any]],
    expect: int = 200,
    **extra: Any,
) -> dict[str, Any]:
    response = await client.put(
        f"/accounts/{acct['id']}/holdings", json={"holdings": holdings, **extra}, headers=headers
    )
    assert response.status_code == expect, response.text
    return response.json()


async def series_tables(db: Database, user_id: uuid.UUID) -> tuple[set, set, set]:
    """A user's three series tables as sets of rows (cash rows that summed to 0 left out)."""
    async with db.read_session() as session:
        cash = {
            tuple(r)
            for r in await session.execute(
                select(
                    NetWorthCash.day,
                    NetWorthCash.currency,
                    NetWorthCash.exponent,
                    NetWorthCash.change,
                ).where(NetWorthCash.user_id == user_id, NetWorthCash.change != "0")
            )
        }
        held = {
            tuple(r)
            for r in await session.execute(
                select(NetWorthHeld.day, NetWorthHeld.currency, NetWorthHeld.change).where(
                    NetWorthHeld.user_id == user_id
                )
            )
        }
        stale = {
            tuple(r)
            for r in await session.execute(
                select(NetWorthStale.symbol, NetWorthStale.since, NetWorthStale.until).where(
                    NetWorthStale.user_id == user_id
                )
            )
        }
    return cash, held, stale
