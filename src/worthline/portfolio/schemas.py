from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from worthline.kit.money import DecimalString
from worthline.kit.schemas import Timestamp
from worthline.snapshots.schemas import SnapshotOut


def plain(value: Decimal | None) -> str | None:
    """A quantity or a price without trailing zeros and never in exponent form."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0E-8") else text


class HoldingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=32, examples=["VWRL.L"])
    quantity: DecimalString = Field(description="Units held (≥ 0, at most 8 decimals)")
    price: DecimalString | None = Field(
        default=None, description="The broker's price on `as_of`; fills a missing market price"
    )
    cost_basis: DecimalString | None = Field(default=None, description="Total cost, ≥ 0")
    currency: str | None = Field(
        default=None, description="The asset's currency; creates an unknown symbol's asset"
    )
    name: str | None = Field(default=None, max_length=200)
    asset_type: str | None = None


class HoldingsSyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: Timestamp | None = Field(default=None, description="When the positions were so")
    source: str | None = Field(default=None, description="Snapshot source (holdings_sync)")
    holdings: list[HoldingIn]


class HoldingsSyncOut(BaseModel):
    holdings_count: int
    created_count: int
    updated_count: int
    deactivated_count: int
    holdings_value: str = Field(description="In the account's currency")
    currency: str
    stale: list[dict[str, Any]]
    snapshot: SnapshotOut


class HoldingOut(BaseModel):
    symbol: str
    name: str
    quantity: str
    price: str | None = Field(description="In force today (latest on or before it)")
    price_date: date | None
    market_value: str | None = Field(description="quantity × price, in the asset's currency")
    cost_basis: str | None
    currency: str
    is_active: bool
    as_of: Timestamp


class HoldingsOut(BaseModel):
    holdings: list[HoldingOut]
    holdings_value: str = Field(description="Active holdings, in the account's currency")
    currency: str
    stale: list[dict[str, Any]]


class CurrencyPart(BaseModel):
    currency: str
    amount: str = Field(description="Cash plus holdings in this currency")
    converted: str | None = Field(description="null when no rate is known")
    rate: str | None
    rate_date: date | None
    via: str | None


class NetWorthOut(BaseModel):
    net_worth: str
    currency: str
    as_of: Timestamp
    account_count: int
    by_currency: list[CurrencyPart]
    stale: list[dict[str, Any]] = Field(
        description="Prices and rates older than 7 days (counted) or missing (left out)"
    )


class NetWorthPoint(BaseModel):
    date: date
    net_worth: str
    stale: list[str] = Field(description="`price:SYMBOL` / `fx:BASE/QUOTE` stale or missing")


class NetWorthHistoryOut(BaseModel):
    currency: str
    interval: Literal["day", "week", "month"]
    start_date: date
    end_date: date
    points: list[NetWorthPoint]
