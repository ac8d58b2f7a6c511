"""Valuing what is held: prices and rates in force on a day, staleness, and exact totals.

A price or a rate is *in force* on a day when it is the latest on or before that day. One
older than 7 days (`market.fx.STALE_AFTER`) is still used and flagged `stale`; with none at all
the value is left out and flagged `missing`: nothing is ever priced or converted at a guess.
Arithmetic is exact (`Decimal` products under a wide context, rates as `Fraction`); an amount
is rounded once, at the end, half to even, to the places of the currency it is given in.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Context, Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.kit.currency import is_currency, minor_unit
from worthline.ledger.models import Account
from worthline.market import repository as market_repo
from worthline.market.fx import DEFAULT_PIVOTS, FxTable, is_stale, round_to
from worthline.market.models import Asset
from worthline.portfolio.models import Holding

WIDE = Context(prec=100)
"""Room for any product of a quantity and a price (each at most 38 digits): never rounds."""


def places(currency: str) -> int:
    """Decimals an amount in `currency` is shown with: its ISO 4217 minor unit, or 8 for a
    commodity a journal may hold (BTC)."""
    return minor_unit(currency) if is_currency(currency) else 8


@dataclass(frozen=True, slots=True)
class Flag:
    """A price or a rate that is old (`stale`, still counted) or absent (`missing`, left out)."""

    kind: str  # "price" or "fx_rate"
    status: str  # "stale" or "missing"
    as_of: date | None
    symbol: str | None = None
    base: str | None = None
    quote: str | None = None
    amount: Decimal | None = None  # left out or converted, in its currency's places
    account_ids: tuple[uuid.UUID, ...] = ()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "status": self.status}
        if self.kind == "price":
            out["symbol"] = self.symbol
            out["currency"] = self.quote
        else:
            out["base"], out["quote"] = self.base, self.quote
        out["as_of"] = self.as_of.isoformat() if self.as_of else None
        if self.amount is not None:
            out["amount"] = format(self.amount, "f")
        if self.account_ids:
            out["account_ids"] = [str(a) for a in self.account_ids]
        return out


@dataclass(frozen=True, slots=True)
class Position:
    """An active holding: `quantity` of `symbol` (priced in `currency`) in an account."""

    account_id: int
    account_public_id: uuid.UUID
    account_currency: str
    asset_id: int
    symbol: str
    currency: str
    quantity: Decimal
    cost_basis: Decimal | None


async def positions(
    session: AsyncSession, where: Collection[ColumnElement[bool]]
) -> list[Position]:
    """Active holdings of the accounts matching `where`, in one query, by account and symbol."""
    rows = await session.execute(
        select(
            Holding.account_id,
            Account.public_id,
            Account.currency,
            Holding.asset_id,
            Asset.symbol,
            Asset.currency,
            Holding.quantity,
            Holding.cost_basis,
        )
        .join(Account, Account.id == Holding.account_id)
        .join(Asset, Asset.id == Holding.asset_id)
        .where(Holding.is_active.is_(True), *where)
        .order_by(Holding.account_id, Asset.symbol)
    )
    return [Position(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class Priced:
    position: Position
    price: Decimal | None
    price_date: date | None

    @property
    def market_value(self) -> Decimal | None:
        """Exact quantity × price, in the asset's currency (None without a price)."""
        if self.price is None:
            return None
        return WIDE.multiply(self.position.quantity, self.price)


async def price_positions(
    session: AsyncSession, held: Iterable[Position], day: date
) -> list[Priced]:
    """Each position with its price in force on `day` (one query for all of them)."""
    held = list(held)
    prices = await market_repo.latest_prices(session, {p.asset_id for p in held}, day)
    out = []
    for p in held:
        found = prices.get(p.asset_id)
        out.append(Priced(p, found[1] if found else None, found[0] if found else None))
    return out


def price_flags(priced: Iterable[Priced], day: date) -> list[Flag]:
    """One flag per symbol that is held (quantity ≠ 0) with a stale or missing price."""
    by_symbol: dict[str, list[Priced]] = {}
    for item in priced:
        if item.position.quantity == 0:
            continue
        if item.price is None or is_stale(item.price_date, day):
            by_symbol.setdefault(item.position.symbol, []).append(item)
    flags = []
    for symbol, items in sorted(by_symbol.items()):
        first = items[0]
        flags.append(
            Flag(
                kind="price",
                status="missing" if first.price is None else "stale",
                as_of=first.price_date,
                symbol=symbol,
                quote=first.position.currency,
                account_ids=tuple(sorted({i.position.account_public_id for i in items})),
            )
        )
    return flags


@dataclass(slots=True)
class Converted:
    """Amounts in several currencies converted into one: the exact total, what each currency
    contributed, and the flags of the rates used or missing."""

    currency: str
    total: Fraction = Fraction(0)
    by_currency: list[dict[str, Any]] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)

    @property
    def rounded(self) -> Decimal:
        return round_to(self.total, places(self.currency))


def convert_all(native: Mapping[str, Decimal], fx: FxTable, target: str, day: date) -> Converted:
    """Convert each currency's exact native amount at the rate in force on `day`."""
    out = Converted(target)
    for currency in sorted(native):
        amount = native[currency]
        shown = round_to(Fraction(amount), places(currency))  # flags write it as entries do
        rate = fx.rate(currency, target, day)
        entry: dict[str, Any] = {
            "currency": currency,
            "amount": shown,
            "converted": None,
            "rate": rate,
        }
        if rate is None:
            if amount != 0:
                out.flags.append(
                    Flag("fx_rate", "missing", None, base=currency, quote=target, amount=shown)
                )
        else:
            value = rate.convert(amount)
            out.total += value
            entry["converted"] = round_to(value, places(target))
            if is_stale(rate.as_of, day) and amount != 0:
                out.flags.append(
                    Flag("fx_rate", "stale", rate.as_of, base=currency, quote=target, amount=shown)
                )
        out.by_currency.append(entry)
    return out


def add(totals: dict[str, Decimal], currency: str, amount: Decimal) -> None:
    totals[currency] = WIDE.add(totals.get(currency, Decimal(0)), amount)


@dataclass(frozen=True, slots=True)
class HoldingsValue:
    """An account's active holdings valued in the account's currency on a day."""

    value: Decimal  # rounded to the account's places; what could not be valued left out
    count: int
    flags: list[Flag]

    def metadata(self, day: date) -> dict[str, Any]:
        return {
            "valued_on": day.isoformat(),
            "holdings_count": self.count,
            "value": format(self.value, "f"),
            "stale": [f.as_json() for f in self.flags],
        }


async def holdings_values(
    session: AsyncSession,
    accounts: Collection[Account],
    day: date,
    pivots: Iterable[str] = DEFAULT_PIVOTS,
) -> dict[int, HoldingsValue]:
    """The holdings value of each of `accounts` that has active holdings, at prices and rates
    in force on `day`, in the account's currency: three queries for all of them."""
    by_id = {a.id: a for a in accounts}
    if not by_id:
        return {}
    held = await positions(session, [Holding.account_id.in_(list(by_id))])
    if not held:
        return {}
    return await value_priced(
        session, by_id, await price_positions(session, held, day), day, pivots
    )


async def value_priced(
    session: AsyncSession,
    accounts: Mapping[int, Account],
    priced: Iterable[Priced],
    day: date,
    pivots: Iterable[str] = DEFAULT_PIVOTS,
) -> dict[int, HoldingsValue]:
    """Value positions already priced on `day`, per account, in each account's currency (one
    query, for the rates)."""
    grouped: dict[int, list[Priced]] = {}
    for item in priced:
        grouped.setdefault(item.position.account_id, []).append(item)
    if not grouped:
        return {}
    currencies = {accounts[a].currency for a in grouped} | {
        i.position.currency for items in grouped.values() for i in items
    }
    fx = await market_repo.fx_table(session, currencies, day, day, tuple(pivots))
    out = {}
    for account_id, items in grouped.items():
        account = accounts[account_id]
        native: dict[str, Decimal] = {}
        for item in items:
            value = item.market_value
            if value is not None:
                add(native, item.position.currency, value)
        converted = convert_all(native, fx, account.currency, day)
        flags = price_flags(items, day) + converted.flags
        out[account_id] = HoldingsValue(
            value=round_to(converted.total, -account.exponent), count=len(items), flags=flags
        )
    return out
