"""The demo household's investments and market data: daily USD/GBP rates, three assets with
daily closes, and a stocks-and-shares ISA whose holdings were synced every quarter. Generated
deterministically (seeded random walks, exact decimals) and loaded through the services."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from worthline.ledger.service import NewAccount, create_account
from worthline.market import repository as market_repo
from worthline.market import service as market
from worthline.market.service import FxRateIn, NewAsset, PriceIn
from worthline.portfolio.holdings import HoldingIn, sync_holdings
from worthline.portfolio.networth import market_moved

ASSETS = (
    # symbol, name, type, currency, first close, daily drift in hundredths of a basis point
    ("VWRL.L", "Vanguard FTSE All-World UCITS ETF", "etf", "GBP", "82.40", 3),
    ("AAPL", "Apple Inc.", "equity", "USD", "129.90", 4),
    ("IGLT.L", "iShares Core UK Gilts UCITS ETF", "bond", "GBP", "12.35", 0),
)
CENT = Decimal("0.01")
MONTHLY_UNITS = {"VWRL.L": Decimal(5), "AAPL": Decimal("1.5"), "IGLT.L": Decimal(20)}


def _step(rng: random.Random, drift: int, spread: int) -> Decimal:
    """A relative daily move in whole hundredths of a basis point (no float anywhere)."""
    return Decimal(drift + rng.randint(-spread, spread)).scaleb(-6)


def _walk(start: Decimal, drift: int, days: list[date], rng: random.Random) -> list[Decimal]:
    out = []
    value = start
    for _ in days:
        value = max(Decimal("0.01"), (value * (1 + _step(rng, drift, 20_000))).quantize(CENT))
        out.append(value)
    return out


def _quarter_ends(start: date, end: date) -> list[date]:
    ends = []
    for year in range(start.year, end.year + 1):
        for month in (3, 6, 9, 12):
            following = date(year + month // 12, month % 12 + 1, 1)
            last = following - timedelta(days=1)
            if start <= last <= end:
                ends.append(last)
    return ends


async def load_investments(
    session: AsyncSession, user_id: uuid.UUID, start: date, end: date, seed: int = 2023
) -> None:
    rng = random.Random(seed)
    weekdays = [
        start + timedelta(days=i)
        for i in range((end - start).days + 1)
        if (start + timedelta(days=i)).weekday() < 5
    ]
    rate = Decimal("0.8250")
    rates = []
    for day in weekdays:
        rate = (rate * (1 + _step(rng, 0, 4_000))).quantize(Decimal("0.0001"))
        rates.append(FxRateIn(day, "USD", "GBP", rate))
    await market.upsert_fx_rates(session, rates)
    assets = []
    for symbol, name, kind, currency, _, _ in ASSETS:
        asset = await market_repo.asset(session, symbol)
        if asset is None:
            asset = await market.create_asset(session, NewAsset(symbol, name, kind, currency))
        assets.append(asset)
    # Every price lock at once, in id order, as any writer of several assets' prices takes them.
    ids = [asset.id for asset in assets]
    await market_repo.lock_assets(session, ids, exclusive=ids)
    priced: dict[int, date] = {}
    for asset, (_, _, _, _, first, drift) in zip(assets, ASSETS, strict=True):
        closes = _walk(Decimal(first), drift, weekdays, rng)
        await market.upsert_prices(
            session,
            asset,
            [PriceIn(d, c) for d, c in zip(weekdays, closes, strict=True)],
            locked=True,
        )
        priced[asset.id] = weekdays[0]
    # The assets and rates are shared: anyone else holding them sees the demo's prices.
    await market_moved(session, prices=priced, fx=True)
    isa = await create_account(
        session,
        user_id,
        NewAccount("Asset:Broker:ISA", "GBP", None, None, "Stocks and shares ISA"),
        datetime.combine(start, time(), UTC),
    )
    held = {symbol: Decimal(0) for symbol in MONTHLY_UNITS}
    for quarter in _quarter_ends(start, end):
        for symbol, units in MONTHLY_UNITS.items():
            held[symbol] += 3 * units
        await sync_holdings(
            session,
            user_id,
            isa.public_id,
            [HoldingIn(symbol, quantity) for symbol, quantity in held.items()],
            as_of=datetime.combine(quarter, time(18), UTC),
        )
