"""Market data bodies: assets, daily prices, market caps and FX rates.

Prices, volumes, market caps and rates are decimal strings both ways, never JSON numbers. An
answer writes each one as stored, without an exponent and without trailing zeros (`"101.5"`
for a close sent as `"101.50"`); a missing open, high, low or volume is `null`.

The Pydantic models are the contract (OpenAPI, request validation). The price and market cap
reads build exactly those models' JSON with the plain functions at the bottom, without
validating each of thousands of rows a second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, Field

from worthline.kit.money import DecimalString
from worthline.kit.schemas import Day, Timestamp
from worthline.ledger.schemas import Currency, Strict, Trimmed
from worthline.market.models import ASSET_TYPES, Asset, MarketCap, Price
from worthline.market.service import MAX_ROWS, SYMBOL, SYMBOL_RULE, is_symbol


def _symbol(value: str) -> str:
    if not is_symbol(value):
        raise ValueError(f"a symbol is {SYMBOL_RULE}")
    return value


def _asset_type(value: str) -> str:
    if value not in ASSET_TYPES:
        raise ValueError(f"must be one of {', '.join(ASSET_TYPES)}")
    return value


Symbol = Annotated[
    str,
    AfterValidator(_symbol),
    Field(max_length=32, examples=["VWRL.L"], json_schema_extra={"pattern": f"^{SYMBOL.pattern}$"}),
]
AssetType = Annotated[
    str, AfterValidator(_asset_type), Field(json_schema_extra={"enum": list(ASSET_TYPES)})
]


def decimal_text(value: Decimal | None) -> str | None:
    """`101.50000000` → `"101.5"`: as stored, no exponent, no trailing zeros."""
    if value is None:
        return None
    return format(value.normalize(), "f")


# ---------------------------------------------------------------------------------- assets


class AssetIn(Strict):
    symbol: Symbol
    name: Trimmed = Field(min_length=1, max_length=200, examples=["Vanguard FTSE All-World"])
    asset_type: AssetType
    sector: Trimmed | None = Field(default=None, min_length=1, max_length=100)
    currency: Currency = Field(description="The currency its prices are quoted in")


class AssetOut(BaseModel):
    symbol: str
    name: str
    asset_type: str
    sector: str | None
    currency: str
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, asset: Asset) -> AssetOut:
        return cls(
            symbol=asset.symbol,
            name=asset.name,
            asset_type=asset.asset_type,
            sector=asset.sector,
            currency=asset.currency,
            created_at=asset.created_at,
            updated_at=asset.updated_at,
        )


class AssetList(BaseModel):
    assets: list[AssetOut]
    total_count: int


# ---------------------------------------------------------------------------------- prices


class PriceIn(Strict):
    """One day's prices. Only `close` is required; high ≥ low, open and close between them."""

    date: Day
    open: DecimalString | None = None
    high: DecimalString | None = None
    low: DecimalString | None = None
    close: DecimalString
    volume: DecimalString | None = None


class PricesIn(Strict):
    prices: list[PriceIn] = Field(max_length=MAX_ROWS, description="At most 100,000 rows")


class Upserted(BaseModel):
    upserted: int = Field(description="Rows inserted or replaced")


class PriceOut(BaseModel):
    date: Day
    open: str | None
    high: str | None
    low: str | None
    close: str
    volume: str | None


class PriceHistory(BaseModel):
    symbol: str
    currency: str
    prices: list[PriceOut] = Field(description="Oldest first")


class MarketCapIn(Strict):
    date: Day
    market_cap: DecimalString


class MarketCapsIn(Strict):
    market_caps: list[MarketCapIn] = Field(max_length=MAX_ROWS, description="At most 100,000")


class MarketCapOut(BaseModel):
    date: Day
    market_cap: str


class MarketCapHistory(BaseModel):
    symbol: str
    currency: str
    market_caps: list[MarketCapOut] = Field(description="Oldest first")


# -------------------------------------------------------------------------------------- fx


class FxRateIn(Strict):
    """`1 base = rate quote` on `date`."""

    date: Day
    base: Currency
    quote: Currency
    rate: DecimalString


class FxRatesIn(Strict):
    rates: list[FxRateIn] = Field(max_length=MAX_ROWS, description="At most 100,000 rows")


class FxRateOut(BaseModel):
    base: str
    quote: str
    date: Day = Field(description="The day asked about")
    rate: str = Field(
        description="1 base = rate quote: exact when it has at most 10 decimals, else rounded "
        "half-even to 10",
        examples=["1.2718"],
    )
    rate_date: Day | None = Field(
        description="Date of the oldest rate it was derived from; null for identity"
    )
    via: str = Field(examples=["direct", "inverse", "cross:USD", "identity"])
    stale: bool = Field(description="rate_date is more than 7 days before date")


# ------------------------------------------------------------------------ read bodies (fast)


def price_history_json(asset: Asset, prices: Sequence[Price]) -> bytes:
    """The JSON of `PriceHistory`."""
    body: dict[str, Any] = {
        "symbol": asset.symbol,
        "currency": asset.currency,
        "prices": [
            {
                "date": p.price_date,
                "open": decimal_text(p.open),
                "high": decimal_text(p.high),
                "low": decimal_text(p.low),
                "close": decimal_text(p.close),
                "volume": decimal_text(p.volume),
            }
            for p in prices
        ],
    }
    return orjson.dumps(body)


def market_cap_history_json(asset: Asset, caps: Sequence[MarketCap]) -> bytes:
    """The JSON of `MarketCapHistory`."""
    body: dict[str, Any] = {
        "symbol": asset.symbol,
        "currency": asset.currency,
        "market_caps": [
            {"date": c.cap_date, "market_cap": decimal_text(c.market_cap)} for c in caps
        ],
    }
    return orjson.dumps(body)
