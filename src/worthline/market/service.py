"""Market data operations: assets, bulk price / market cap / FX upserts, rate lookups.
Services flush; the edge commits.

Every input is checked before anything is written, so a bad row anywhere in a bulk upsert
stores nothing: prices must be positive (volume and market caps not negative), a day's high
not below its low and its open and close inside [low, high]; rates are positive; dates lie
between 1900-01-01 and tomorrow (UTC); decimals never exceed what the columns hold (refused,
never rounded).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.kit.currency import is_currency
from worthline.kit.db import utcnow
from worthline.kit.problems import Conflict, NotFound, ValidationProblem
from worthline.market import repository as repo
from worthline.market.fx import DEFAULT_PIVOTS, Rate
from worthline.market.models import (
    ASSET_TYPES,
    MARKET_CAP_SCALE,
    PRICE_SCALE,
    RATE_SCALE,
    VOLUME_SCALE,
    Asset,
    FxRate,
    MarketCap,
    Price,
)

SYMBOL = re.compile(r"[A-Z0-9^][A-Z0-9.\-_:^=/]{0,31}")
"""An asset's symbol, wherever one is taken (assets, holdings syncs): match it whole
(`fullmatch`; `$` would let a trailing newline through). The first character is a letter, a
digit or the `^` of an index (^GSPC): `.` alone could not be reached by URL (`/assets/.` is
`/assets/`)."""
SYMBOL_RULE = (
    "1 to 32 upper-case letters, digits and . - _ : ^ = /, the first a letter, a digit or ^ "
    "(VWRL.L, BRK.B, BTC-USD, ^GSPC)"
)

EARLIEST_DAY = date(1900, 1, 1)
MAX_ROWS = 100_000
"""Rows one API call may upsert (the CLI streams files of any size in batches)."""


class AssetNotFound(NotFound):
    slug, title = "asset-not-found", "Asset Not Found"

    def __init__(self, symbol: str) -> None:
        super().__init__(f"No asset with symbol {symbol!r}")


class AssetExists(Conflict):
    slug, title = "asset-exists", "Asset Already Exists"


class InvalidMarketData(ValidationProblem):
    slug, title = "invalid-market-data", "Invalid Market Data"


class RateNotFound(NotFound):
    slug, title = "fx-rate-not-found", "FX Rate Not Found"


def invalid(loc: Sequence[str | int], msg: str) -> InvalidMarketData:
    return InvalidMarketData(msg, [{"loc": list(loc), "msg": msg, "type": "value_error"}])


def latest_day() -> date:
    """The last day market data may be dated: tomorrow in UTC (a market east of UTC)."""
    return utcnow().date() + timedelta(days=1)


def check_day(day: date, loc: Sequence[str | int]) -> date:
    if not EARLIEST_DAY <= day <= latest_day():
        raise invalid(loc, f"{day} is out of range: 1900-01-01 to {latest_day()}")
    return day


def check_decimal(
    value: Decimal | None,
    scale: int,
    loc: Sequence[str | int],
    *,
    positive: bool = False,
    not_negative: bool = False,
) -> Decimal | None:
    """`value` if it fits a column of `scale` decimals (on SQLite a scaled 64-bit integer)."""
    if value is None:
        return None
    if not value.is_finite():
        raise invalid(loc, "must be a finite number")
    # Size first: quantize() below raises beyond the context's 28 digits.
    if abs(value) > Decimal(2**63 - 1).scaleb(-scale):
        raise invalid(loc, f"{value} is too large")
    if value.as_tuple().exponent < -scale and value != value.quantize(Decimal(1).scaleb(-scale)):
        raise invalid(loc, f"{value} has more than {scale} decimal places")
    if positive and value <= 0:
        raise invalid(loc, "must be greater than 0")
    if not_negative and value < 0:
        raise invalid(loc, "must not be negative")
    return value


def is_symbol(value: str) -> bool:
    return SYMBOL.fullmatch(value) is not None


def check_currency(code: str, loc: Sequence[str | int]) -> str:
    if not is_currency(code):
        raise invalid(loc, f"{code!r} is not an ISO 4217 currency code")
    return code


# ------------------------------------------------------------------------------ assets


@dataclass(frozen=True, slots=True)
class NewAsset:
    symbol: str
    name: str
    asset_type: str
    currency: str
    sector: str | None = None


def check_asset(spec: NewAsset, loc: Sequence[str | int] = ("body",)) -> NewAsset:
    if spec.asset_type not in ASSET_TYPES:
        raise invalid([*loc, "asset_type"], f"asset_type must be one of {', '.join(ASSET_TYPES)}")
    check_currency(spec.currency, [*loc, "currency"])
    return spec


async def create_asset(session: AsyncSession, spec: NewAsset) -> Asset:
    check_asset(spec)
    if await repo.asset(session, spec.symbol) is not None:
        raise AssetExists(f"An asset with symbol {spec.symbol!r} already exists")
    now = utcnow()  # one instant: created_at and updated_at defaults would differ by µs
    asset = Asset(
        created_at=now,
        updated_at=now,
        symbol=spec.symbol,
        name=spec.name,
        asset_type=spec.asset_type,
        sector=spec.sector,
        currency=spec.currency,
    )
    session.add(asset)
    try:
        await session.flush()
    except IntegrityError as exc:  # created by a concurrent request since the check above
        raise AssetExists(f"An asset with symbol {spec.symbol!r} already exists") from exc
    return asset


async def get_asset(session: AsyncSession, symbol: str) -> Asset:
    asset = await repo.asset(session, symbol)
    if asset is None:
        raise AssetNotFound(symbol)
    return asset


async def list_assets(session: AsyncSession) -> list[Asset]:
    return list(await session.scalars(select(Asset).order_by(Asset.symbol)))


# ------------------------------------------------------------------------------ prices


@dataclass(frozen=True, slots=True)
class PriceIn:
    day: date
    close: Decimal
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    volume: Decimal | None = None


def price_row(asset_id: int, price: PriceIn, loc: Sequence[str | int]) -> dict[str, Any]:
    check_day(price.day, [*loc, "date"])
    for name in ("open", "high", "low", "close"):
        check_decimal(getattr(price, name), PRICE_SCALE, [*loc, name], positive=True)
    check_decimal(price.volume, VOLUME_SCALE, [*loc, "volume"], not_negative=True)
    low = (
        price.low
        if price.low is not None
        else min(v for v in (price.open, price.close, price.high) if v is not None)
    )
    high = (
        price.high
        if price.high is not None
        else max(v for v in (price.open, price.close, price.low) if v is not None)
    )
    if high < low:
        raise invalid([*loc, "high"], f"high {high} is below low {low}")
    for name in ("open", "close"):
        value = getattr(price, name)
        if value is not None and not low <= value <= high:
            raise invalid([*loc, name], f"{name} {value} lies outside low {low} … high {high}")
    return {
        "asset_id": asset_id,
        "price_date": price.day,
        "open": price.open,
        "high": price.high,
        "low": price.low,
        "close": price.close,
        "volume": price.volume,
    }


def _unique(rows: list[dict[str, Any]], keys: Sequence[str], what: str, loc0: str) -> None:
    seen: dict[tuple[Any, ...], int] = {}
    for i, row in enumerate(rows):
        key = tuple(row[k] for k in keys)
        if key in seen:
            raise invalid(
                ["body", loc0, i, "date"], f"{what} appears twice (rows {seen[key]} and {i})"
            )
        seen[key] = i


async def upsert_prices(
    session: AsyncSession, asset: Asset, prices: Sequence[PriceIn], *, locked: bool = False
) -> int:
    """Insert or replace an asset's prices by date. All rows are checked first. `locked`: the
    caller holds the asset's exclusive lock already (a writer of several assets' prices takes
    all their locks at once, in id order, before writing any: `repository.lock_assets`)."""
    rows = [price_row(asset.id, p, ["body", "prices", i]) for i, p in enumerate(prices)]
    _unique(rows, ["price_date"], "a date", "prices")
    if not locked:
        await repo.lock_assets(session, [asset.id], exclusive=[asset.id])  # see lock_assets
    return await repo.upsert(session, Price.__table__, rows, ["asset_id", "price_date"])


@dataclass(frozen=True, slots=True)
class MarketCapIn:
    day: date
    market_cap: Decimal


async def upsert_market_caps(
    session: AsyncSession, asset: Asset, caps: Sequence[MarketCapIn]
) -> int:
    rows = []
    for i, cap in enumerate(caps):
        loc = ["body", "market_caps", i]
        check_day(cap.day, [*loc, "date"])
        check_decimal(cap.market_cap, MARKET_CAP_SCALE, [*loc, "market_cap"], not_negative=True)
        rows.append({"asset_id": asset.id, "cap_date": cap.day, "market_cap": cap.market_cap})
    _unique(rows, ["cap_date"], "a date", "market_caps")
    return await repo.upsert(session, MarketCap.__table__, rows, ["asset_id", "cap_date"])


# ------------------------------------------------------------------------------ fx


@dataclass(frozen=True, slots=True)
class FxRateIn:
    day: date
    base: str
    quote: str
    rate: Decimal


def fx_row(rate: FxRateIn, loc: Sequence[str | int]) -> dict[str, Any]:
    check_day(rate.day, [*loc, "date"])
    check_currency(rate.base, [*loc, "base"])
    check_currency(rate.quote, [*loc, "quote"])
    if rate.base == rate.quote:
        raise invalid([*loc, "quote"], "base and quote must differ")
    check_decimal(rate.rate, RATE_SCALE, [*loc, "rate"], positive=True)
    return {"base": rate.base, "quote": rate.quote, "rate_date": rate.day, "rate": rate.rate}


async def upsert_fx_rates(session: AsyncSession, rates: Sequence[FxRateIn]) -> int:
    rows = [fx_row(r, ["body", "rates", i]) for i, r in enumerate(rates)]
    _unique(rows, ["base", "quote", "rate_date"], "a pair and date", "rates")
    written = await repo.upsert(session, FxRate.__table__, rows, ["base", "quote", "rate_date"])
    if written:
        await repo.fx_changed(session)
    return written


async def rate_in_force(
    session: AsyncSession,
    base: str,
    quote: str,
    day: date,
    pivots: Sequence[str] = DEFAULT_PIVOTS,
) -> Rate:
    """The rate of `base → quote` in force on `day` (direct, inverse or cross); 404 if none."""
    check_currency(base, ["query", "base"])
    check_currency(quote, ["query", "quote"])
    check_day(day, ["query", "date"])
    table = await repo.fx_table(session, {base, quote}, day, day, pivots)
    rate = table.rate(base, quote, day)
    if rate is None:
        raise RateNotFound(f"No {base}/{quote} rate on or before {day}, direct, inverse or cross")
    return rate
