"""Market data endpoints (API.md "Holdings, market data and net worth"): assets, their daily
prices and market caps, and FX rates.

Market data is reference data shared by every user of a deployment: a price is a fact about
the market, not about anyone's account. Every authenticated user reads all of it, and any
token with the `write` scope may add or replace it (a read-only token answers 403). Bulk
writes are all or nothing: every row is checked before anything is stored, and a bad row
answers 422 with `errors[].loc` pointing at it (`["body", "prices", 3, "high"]`).

A symbol may hold `/` (`EUR/USD`): `/assets/EUR/USD/prices` is that asset's prices.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from worthline.kit.db import utcnow
from worthline.kit.deps import CurrentUser, InsufficientScope, InvalidAccessToken, Session
from worthline.kit.problems import problem_responses
from worthline.kit.schemas import Day
from worthline.ledger.endpoints import InvalidDateRange
from worthline.market import repository as repo
from worthline.market import service
from worthline.market.fx import is_stale, rate_decimal
from worthline.market.schemas import (
    AssetIn,
    AssetList,
    AssetOut,
    FxRateOut,
    FxRatesIn,
    MarketCapHistory,
    MarketCapsIn,
    PriceHistory,
    PricesIn,
    Symbol,
    Upserted,
    market_cap_history_json,
    price_history_json,
)
from worthline.market.service import (
    AssetExists,
    AssetNotFound,
    FxRateIn,
    InvalidMarketData,
    MarketCapIn,
    NewAsset,
    PriceIn,
    RateNotFound,
)
from worthline.portfolio import networth

router = APIRouter(tags=["market data"])
AUTH = (InvalidAccessToken, InsufficientScope)

# `:path` so that a symbol holding "/" (EUR/USD) is one path parameter.
PathSymbol = Annotated[Symbol, Path(description="e.g. VWRL.L, BRK.B, BTC-USD")]
StartDate = Annotated[Day | None, Query(description="From this day (inclusive)")]
EndDate = Annotated[Day | None, Query(description="To this day (inclusive)")]


def _range(start_date: date | None, end_date: date | None) -> None:
    if start_date and end_date and start_date > end_date:
        raise InvalidDateRange("start_date must not be after end_date")


def _json(body: bytes) -> Response:
    # The body is already what `response_model` describes (see schemas.py): sent as it is.
    return Response(body, media_type="application/json")


@router.post(
    "/assets",
    status_code=status.HTTP_201_CREATED,
    response_model=AssetOut,
    responses=problem_responses(*AUTH, AssetExists, InvalidMarketData),
)
async def create_asset(body: AssetIn, principal: CurrentUser, session: Session) -> AssetOut:
    """Add an asset (shared by every user). 409 if the symbol exists."""
    asset = await service.create_asset(
        session,
        NewAsset(body.symbol, body.name, body.asset_type, body.currency, body.sector),
    )
    return AssetOut.of(asset)


@router.get("/assets", response_model=AssetList, responses=problem_responses(*AUTH))
async def list_assets(principal: CurrentUser, session: Session) -> AssetList:
    """Every asset, by symbol."""
    assets = await service.list_assets(session)
    return AssetList(assets=[AssetOut.of(a) for a in assets], total_count=len(assets))


# The prices and market-caps routes come before `/assets/{symbol}`: that one's `:path` would
# otherwise take "VWRL.L/prices" as a symbol.


@router.put(
    "/assets/{symbol:path}/prices",
    response_model=Upserted,
    responses=problem_responses(*AUTH, AssetNotFound, InvalidMarketData),
)
async def upsert_prices(
    symbol: PathSymbol, body: PricesIn, principal: CurrentUser, session: Session
) -> Upserted:
    """Insert or replace an asset's daily prices (one row per date, up to 100,000 per call).
    A date already stored is replaced whole: an open, high, low or volume left out becomes
    null. All or nothing."""
    asset = await service.get_asset(session, symbol)
    rows = [PriceIn(p.date, p.close, p.open, p.high, p.low, p.volume) for p in body.prices]
    upserted = await service.upsert_prices(session, asset, rows)
    if rows:
        await networth.market_moved(session, prices={asset.id: min(r.day for r in rows)})
    return Upserted(upserted=upserted)


@router.get(
    "/assets/{symbol:path}/prices",
    response_model=PriceHistory,
    responses=problem_responses(*AUTH, AssetNotFound, InvalidDateRange),
)
async def get_prices(
    symbol: PathSymbol,
    principal: CurrentUser,
    session: Session,
    start_date: StartDate = None,
    end_date: EndDate = None,
) -> Response:
    """An asset's daily prices, oldest first, optionally from `start_date` and/or to
    `end_date`."""
    _range(start_date, end_date)
    asset = await service.get_asset(session, symbol)
    prices = await repo.prices_between(session, asset.id, start_date, end_date)
    return _json(price_history_json(asset, prices))


@router.put(
    "/assets/{symbol:path}/market-caps",
    response_model=Upserted,
    responses=problem_responses(*AUTH, AssetNotFound, InvalidMarketData),
)
async def upsert_market_caps(
    symbol: PathSymbol, body: MarketCapsIn, principal: CurrentUser, session: Session
) -> Upserted:
    """Insert or replace an asset's market capitalisation by date (in the asset's currency).
    All or nothing."""
    asset = await service.get_asset(session, symbol)
    rows = [MarketCapIn(c.date, c.market_cap) for c in body.market_caps]
    return Upserted(upserted=await service.upsert_market_caps(session, asset, rows))


@router.get(
    "/assets/{symbol:path}/market-caps",
    response_model=MarketCapHistory,
    responses=problem_responses(*AUTH, AssetNotFound, InvalidDateRange),
)
async def get_market_caps(
    symbol: PathSymbol,
    principal: CurrentUser,
    session: Session,
    start_date: StartDate = None,
    end_date: EndDate = None,
) -> Response:
    """An asset's market caps, oldest first."""
    _range(start_date, end_date)
    asset = await service.get_asset(session, symbol)
    caps = await repo.market_caps_between(session, asset.id, start_date, end_date)
    return _json(market_cap_history_json(asset, caps))


@router.get(
    "/assets/{symbol:path}",
    response_model=AssetOut,
    responses=problem_responses(*AUTH, AssetNotFound),
)
async def get_asset(symbol: PathSymbol, principal: CurrentUser, session: Session) -> AssetOut:
    """One asset."""
    return AssetOut.of(await service.get_asset(session, symbol))


@router.put(
    "/fx-rates",
    response_model=Upserted,
    responses=problem_responses(*AUTH, InvalidMarketData),
)
async def upsert_fx_rates(body: FxRatesIn, principal: CurrentUser, session: Session) -> Upserted:
    """Insert or replace FX rates, `1 base = rate quote` on a date (one per pair and date, up
    to 100,000 per call). All or nothing."""
    rows = [FxRateIn(r.date, r.base, r.quote, r.rate) for r in body.rates]
    upserted = await service.upsert_fx_rates(session, rows)
    await networth.market_moved(session, fx=bool(rows))
    return Upserted(upserted=upserted)


@router.get(
    "/fx-rates",
    response_model=FxRateOut,
    responses=problem_responses(*AUTH, RateNotFound, InvalidMarketData),
)
async def get_fx_rate(
    principal: CurrentUser,
    session: Session,
    base: Annotated[str, Query(max_length=3, examples=["GBP"])],
    quote: Annotated[str, Query(max_length=3, examples=["USD"])],
    date: Annotated[Day | None, Query(description="Default: today (UTC)")] = None,
) -> FxRateOut:
    """The rate in force on `date`: the pair's latest on or before it, found directly, as the
    inverse of the opposite pair, or as a cross through USD or EUR; the freshest wins (a cross
    is as old as its older leg), and on a tie direct before inverse before cross. `stale` when
    that is more than 7 days before `date`. 404 when there is none: never a made-up rate."""
    day = date or utcnow().date()
    rate = await service.rate_in_force(session, base, quote, day)
    return FxRateOut(
        base=base,
        quote=quote,
        date=day,
        rate=format(rate_decimal(rate.value), "f"),
        rate_date=rate.as_of,
        via=rate.via,
        stale=is_stale(rate.as_of, day),
    )
