"""Holdings sync: an account's positions as a broker or a statement reports them.

A sync lists every position held as of `as_of`: listed symbols are created or updated, active
ones missing from the list are deactivated (kept, with `is_active` false). The counts are
true: a position whose quantity and cost basis did not change is neither created nor updated.
Each change is also written to `holding_history` under the day of `as_of`, so that net worth
on any past day values what was held then. A sync older than the account's last one is
refused (it would rewrite history out of order).

An unknown symbol is created as an asset when the sync gives its `currency` (name and type
default to the symbol and `other`); a `price` given for a holding fills that asset's price on
the day of `as_of` when none is known (an imported price is never overwritten by a broker's).

Then a `holdings_sync` snapshot is captured as of `as_of`, `AccountHoldingsUpdated` is recorded
when anything changed, and the user's net worth is recomputed before commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.eventstream.events import AccountHoldingsUpdated
from worthline.eventstream.service import record, serialize_events
from worthline.kit.db import utcnow, with_retry
from worthline.kit.problems import Conflict
from worthline.ledger import repository as ledger_repo
from worthline.ledger.service import EARLIEST, AccountNotFound
from worthline.market import repository as market_repo
from worthline.market.models import ASSET_TYPES, PRICE_SCALE, Asset, Price
from worthline.market.service import (
    SYMBOL_RULE,
    check_currency,
    check_decimal,
    invalid,
    is_symbol,
)
from worthline.portfolio import series
from worthline.portfolio.models import Holding, HoldingHistory
from worthline.portfolio.networth import NET_WORTH_TYPES, holders, market_moved, net_worth_changed
from worthline.portfolio.valuation import HoldingsValue, holdings_values
from worthline.snapshots.models import HOLDINGS_SYNC
from worthline.snapshots.repository import SnapshotRow
from worthline.snapshots.service import SYNC_SOURCES, capture_account, check_source

MAX_HOLDINGS = 10_000


class SyncOutOfOrder(Conflict):
    slug, title = "holdings-sync-out-of-order", "Holdings Sync Out Of Order"


@dataclass(frozen=True, slots=True)
class HoldingIn:
    symbol: str
    quantity: Decimal
    price: Decimal | None = None
    cost_basis: Decimal | None = None
    currency: str | None = None
    name: str | None = None
    asset_type: str | None = None


@dataclass(frozen=True, slots=True)
class SyncResult:
    holdings_count: int
    created_count: int
    updated_count: int
    deactivated_count: int
    valuation: HoldingsValue | None
    currency: str
    exponent: int
    snapshot: SnapshotRow


def check_symbol(symbol: str, loc: Sequence[str | int]) -> str:
    if not is_symbol(symbol):
        raise invalid(loc, f"{symbol!r} is not a symbol: {SYMBOL_RULE}")
    return symbol


def _check(items: Sequence[HoldingIn]) -> None:
    if len(items) > MAX_HOLDINGS:
        raise invalid(["body", "holdings"], f"at most {MAX_HOLDINGS} holdings per sync")
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        loc = ["body", "holdings", i]
        check_symbol(item.symbol, [*loc, "symbol"])
        if item.symbol in seen:
            raise invalid([*loc, "symbol"], f"{item.symbol} is listed twice")
        seen[item.symbol] = i
        check_decimal(item.quantity, PRICE_SCALE, [*loc, "quantity"], not_negative=True)
        check_decimal(item.price, PRICE_SCALE, [*loc, "price"], positive=True)
        check_decimal(item.cost_basis, PRICE_SCALE, [*loc, "cost_basis"], not_negative=True)
        if item.currency is not None:
            check_currency(item.currency, [*loc, "currency"])
        if item.asset_type is not None and item.asset_type not in ASSET_TYPES:
            raise invalid(
                [*loc, "asset_type"], f"asset_type must be one of {', '.join(ASSET_TYPES)}"
            )


async def _assets(
    session: AsyncSession, items: Sequence[HoldingIn], known: dict[str, Asset]
) -> dict[str, Asset]:
    """The listed symbols' assets (`known`: those that exist), creating those the sync
    describes (with a currency)."""
    assets = dict(known)
    for i, item in enumerate(items):
        loc = ["body", "holdings", i]
        asset = assets.get(item.symbol)
        if asset is None:
            if item.currency is None:
                raise invalid(
                    [*loc, "symbol"],
                    f"unknown symbol {item.symbol}: create the asset first, or give its currency",
                )
            asset = Asset(
                symbol=item.symbol,
                name=item.name or item.symbol,
                asset_type=item.asset_type or "other",
                currency=item.currency,
            )
            session.add(asset)
            assets[item.symbol] = asset
        elif item.currency is not None and item.currency != asset.currency:
            raise invalid(
                [*loc, "currency"],
                f"{item.symbol} is priced in {asset.currency}, not {item.currency}",
            )
    await session.flush()
    return assets


async def sync_holdings(
    session: AsyncSession,
    user_id: uuid.UUID,
    public_id: uuid.UUID,
    items: Sequence[HoldingIn],
    as_of: datetime | None = None,
    source: str = HOLDINGS_SYNC,
    now: datetime | None = None,
) -> SyncResult:
    now = now or utcnow()
    as_of = as_of or now
    check_source(source, SYNC_SOURCES)
    if not EARLIEST <= as_of <= now:
        raise invalid(["body", "as_of"], "as_of must lie between 1900-01-01 and now")
    _check(items)
    return await with_retry(
        session, lambda: _sync(session, user_id, public_id, items, as_of, source, now)
    )


async def _sync(
    session: AsyncSession,
    user_id: uuid.UUID,
    public_id: uuid.UUID,
    items: Sequence[HoldingIn],
    as_of: datetime,
    source: str,
    now: datetime,
) -> SyncResult:
    day = as_of.date()
    # Locks in the one order every writer uses (PostgreSQL): the listed assets (exclusive for
    # those the broker prices: that price is shared and moves everyone holding the asset),
    # then the event locks of this user and of those holders, in user order, then rows.
    known = await market_repo.assets_by_symbol(session, {i.symbol for i in items})
    priced = {known[i.symbol].id for i in items if i.price is not None and i.symbol in known}
    await market_repo.lock_assets(session, [a.id for a in known.values()], exclusive=priced)
    moved = await holders(session, dict.fromkeys(priced, day))
    locked = sorted({user_id, *moved[1]})
    for user in locked:
        await serialize_events(session, user)  # before any row lock: see its docstring
    account = (await ledger_repo.lock_accounts(session, user_id, [public_id])).get(public_id)
    if account is None:
        raise AccountNotFound()
    if account.account_type not in NET_WORTH_TYPES:
        raise invalid(
            ["path", "account_id"],
            f"{account.full_path} is an {account.account_type} account; "
            "holdings belong to Asset (or Liability) accounts",
        )
    last = await session.scalar(
        select(func.max(Holding.as_of)).where(Holding.account_id == account.id)
    )
    if last is not None and as_of < last:
        raise SyncOutOfOrder(
            f"The holdings of this account were synced as of {last.isoformat()} already; "
            "a sync cannot be older than the last one"
        )
    assets = await _assets(session, items, known)
    existing = {
        h.asset_id: h
        for h in await session.scalars(select(Holding).where(Holding.account_id == account.id))
    }
    created = updated = deactivated = 0
    history: list[dict[str, Any]] = []
    listed: set[int] = set()
    for item in items:
        asset = assets[item.symbol]
        listed.add(asset.id)
        holding = existing.get(asset.id)
        if holding is None:
            session.add(
                Holding(
                    account_id=account.id,
                    asset_id=asset.id,
                    quantity=item.quantity,
                    cost_basis=item.cost_basis,
                    is_active=True,
                    as_of=as_of,
                    updated_at=now,
                )
            )
            created += 1
        else:
            holding.as_of = as_of
            changed = (
                not holding.is_active
                or holding.quantity != item.quantity
                or (item.cost_basis is not None and holding.cost_basis != item.cost_basis)
            )
            if not changed:
                continue
            holding.quantity = item.quantity
            if item.cost_basis is not None:  # not reported: kept as it was
                holding.cost_basis = item.cost_basis
            holding.is_active = True
            holding.updated_at = now
            updated += 1
        history.append(
            {
                "account_id": account.id,
                "asset_id": asset.id,
                "effective_date": day,
                "quantity": item.quantity,
            }
        )
    for asset_id, holding in existing.items():
        if holding.is_active and asset_id not in listed:
            holding.is_active = False
            holding.as_of = as_of
            holding.updated_at = now
            deactivated += 1
            history.append(
                {
                    "account_id": account.id,
                    "asset_id": asset_id,
                    "effective_date": day,
                    "quantity": Decimal(0),
                }
            )
    await session.flush()
    await market_repo.upsert(
        session,
        HoldingHistory.__table__,
        history,
        ["account_id", "asset_id", "effective_date"],
    )
    reported = [
        {"asset_id": assets[i.symbol].id, "price_date": day, "close": i.price}
        for i in items
        if i.price is not None
    ]
    await market_repo.insert_missing(session, Price.__table__, reported, ["asset_id", "price_date"])
    if priced:  # a price filled in for an asset others hold moves them too
        await market_moved(session, prices=dict.fromkeys(priced, day), locked=locked, found=moved)

    valuation = (await holdings_values(session, [account], day)).get(account.id)
    snapshot = await capture_account(
        session, user_id, public_id, source=source, now=now, captured_at=as_of, holdings=valuation
    )
    count = valuation.count if valuation is not None else 0
    if created or updated or deactivated:
        await record(
            session,
            [
                AccountHoldingsUpdated(
                    user_id=user_id,
                    account_id=account.public_id,
                    holdings_count=count,
                    created_count=created,
                    updated_count=updated,
                    deactivated_count=deactivated,
                )
            ],
        )
    net_worth_changed(session, user_id)
    series.held_changed(session, user_id, day)
    return SyncResult(
        holdings_count=count,
        created_count=created,
        updated_count=updated,
        deactivated_count=deactivated,
        valuation=valuation,
        currency=account.currency,
        exponent=account.exponent,
        snapshot=snapshot,
    )
