"""Market data seeded through the service layer (the market API has its own tests)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from worthline.kit.context import AppContext
from worthline.kit.db import unit_of_work
from worthline.market import service as market
from worthline.market.service import FxRateIn, NewAsset, PriceIn


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
