"""Holdings sync and listing, net worth now and over time."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from worthline.kit.currency import is_currency
from worthline.kit.db import utcnow
from worthline.kit.deps import Ctx, CurrentUser, InsufficientScope, InvalidAccessToken, Session
from worthline.kit.money import format_minor, to_minor
from worthline.kit.problems import problem_responses
from worthline.kit.schemas import Day
from worthline.ledger import repository as ledger_repo
from worthline.ledger.endpoints import InvalidDateRange
from worthline.ledger.service import AccountNotFound
from worthline.market.fx import rate_decimal
from worthline.market.models import Asset
from worthline.market.service import InvalidMarketData, invalid
from worthline.portfolio import holdings as service
from worthline.portfolio import networth, series
from worthline.portfolio.models import Holding
from worthline.portfolio.schemas import (
    CurrencyPart,
    HoldingOut,
    HoldingsOut,
    HoldingsSyncIn,
    HoldingsSyncOut,
    NetWorthHistoryOut,
    NetWorthOut,
    NetWorthPoint,
    plain,
)
from worthline.portfolio.valuation import Position, price_positions, value_priced
from worthline.snapshots.models import HOLDINGS_SYNC
from worthline.snapshots.schemas import snapshot_json
from worthline.snapshots.service import InvalidSnapshotSource

router = APIRouter(tags=["holdings and net worth"])
AUTH = (InvalidAccessToken, InsufficientScope)


def _money(value: Decimal, exponent: int) -> str:
    return format_minor(to_minor(value, exponent), exponent)


@router.put(
    "/accounts/{account_id}/holdings",
    response_model=HoldingsSyncOut,
    responses=problem_responses(
        *AUTH, AccountNotFound, InvalidMarketData, InvalidSnapshotSource, service.SyncOutOfOrder
    ),
)
async def sync_holdings(
    account_id: uuid.UUID, body: HoldingsSyncIn, principal: CurrentUser, session: Session
) -> HoldingsSyncOut:
    """A holdings sync: the positions held as of `as_of` (default now). Listed symbols are
    created or updated, symbols absent from the list are deactivated, and a `holdings_sync`
    snapshot is captured. The counts are true: an unchanged holding is not "updated"."""
    result = await service.sync_holdings(
        session,
        principal.user_id,
        account_id,
        [service.HoldingIn(**h.model_dump()) for h in body.holdings],
        as_of=body.as_of,
        source=body.source or HOLDINGS_SYNC,
    )
    value = result.valuation.value if result.valuation else Decimal(0)
    return HoldingsSyncOut(
        holdings_count=result.holdings_count,
        created_count=result.created_count,
        updated_count=result.updated_count,
        deactivated_count=result.deactivated_count,
        holdings_value=_money(value, result.exponent),
        currency=result.currency,
        stale=[f.as_json() for f in result.valuation.flags] if result.valuation else [],
        snapshot=snapshot_json(result.snapshot),  # type: ignore[arg-type]
    )


@router.get(
    "/accounts/{account_id}/holdings",
    response_model=HoldingsOut,
    responses=problem_responses(*AUTH, AccountNotFound),
)
async def list_holdings(
    account_id: uuid.UUID,
    principal: CurrentUser,
    session: Session,
    include_inactive: bool = False,
) -> HoldingsOut:
    """The account's holdings by symbol, each at the price in force today; `holdings_value`
    (active holdings, in the account's currency) leaves out what has no price or rate and
    lists it in `stale`."""
    account = await ledger_repo.account(session, principal.user_id, account_id)
    if account is None:
        raise AccountNotFound()
    query = (
        select(Holding, Asset)
        .join(Asset, Asset.id == Holding.asset_id)
        .where(Holding.account_id == account.id)
        .order_by(Asset.symbol)
    )
    if not include_inactive:
        query = query.where(Holding.is_active.is_(True))
    rows = [(holding, asset) for holding, asset in await session.execute(query)]
    today = utcnow().date()
    priced = await price_positions(
        session,
        [
            Position(
                account.id,
                account.public_id,
                account.currency,
                asset.id,
                asset.symbol,
                asset.currency,
                holding.quantity,
                holding.cost_basis,
            )
            for holding, asset in rows
        ],
        today,
    )
    active = [item for (holding, _), item in zip(rows, priced, strict=True) if holding.is_active]
    valuation = (await value_priced(session, {account.id: account}, active, today)).get(account.id)
    items = []
    for (holding, asset), item in zip(rows, priced, strict=True):
        items.append(
            HoldingOut(
                symbol=asset.symbol,
                name=asset.name,
                quantity=plain(holding.quantity) or "0",
                price=plain(item.price),
                price_date=item.price_date,
                market_value=plain(item.market_value),
                cost_basis=plain(holding.cost_basis),
                currency=asset.currency,
                is_active=holding.is_active,
                as_of=holding.as_of,
            )
        )
    return HoldingsOut(
        holdings=items,
        holdings_value=_money(valuation.value if valuation else Decimal(0), account.exponent),
        currency=account.currency,
        stale=[f.as_json() for f in valuation.flags] if valuation else [],
    )


async def _currency(session: Session, principal: CurrentUser, currency: str | None) -> str:
    if currency is None:
        return principal.user.base_currency
    if not is_currency(currency):
        raise invalid(["query", "currency"], f"{currency!r} is not an ISO 4217 currency code")
    return currency


CurrencyQuery = Annotated[
    str | None, Query(min_length=3, max_length=3, description="Default: your base currency")
]


@router.get("/net-worth", response_model=NetWorthOut, responses=problem_responses(*AUTH))
async def net_worth(
    principal: CurrentUser, session: Session, currency: CurrencyQuery = None
) -> NetWorthOut:
    """Cash plus holdings at market value over your Asset and Liability accounts, converted at
    the rates in force today. Stale (older than 7 days) prices and rates are counted and
    listed in `stale`; missing ones are left out of the total and listed there too."""
    target = await _currency(session, principal, currency)
    worth = await networth.net_worth_now(session, principal.user_id, target)
    parts = []
    for entry in worth.converted.by_currency:
        rate = entry["rate"]
        parts.append(
            CurrencyPart(
                currency=entry["currency"],
                amount=format(entry["amount"], "f"),
                converted=(
                    format(entry["converted"], "f") if entry["converted"] is not None else None
                ),
                rate=format(rate_decimal(rate.value), "f") if rate else None,
                rate_date=rate.as_of if rate else None,
                via=rate.via if rate else None,
            )
        )
    return NetWorthOut(
        net_worth=format(worth.net_worth, "f"),
        currency=target,
        as_of=worth.as_of,
        account_count=worth.account_count,
        by_currency=parts,
        stale=[f.as_json() for f in worth.stale],
    )


@router.get(
    "/net-worth/history",
    response_model=NetWorthHistoryOut,
    responses=problem_responses(*AUTH, InvalidDateRange),
)
async def net_worth_history(
    principal: CurrentUser,
    session: Session,
    ctx: Ctx,
    start_date: Day | None = None,
    end_date: Day | None = None,
    interval: Literal["day", "week", "month"] = "day",
    currency: CurrencyQuery = None,
) -> NetWorthHistoryOut:
    """Closing net worth on each date of the series (default: the last 365 days, daily), in
    `currency`, each converted at the rates in force that day. `week` points fall every 7
    days back from `end_date`; `month` points on month ends; `end_date` is always the last."""
    target = await _currency(session, principal, currency)
    end = end_date or utcnow().date()
    earliest, latest = date(1900, 1, 1), date(2199, 12, 31)
    if not (earliest <= end <= latest) or (start_date and not earliest <= start_date <= latest):
        raise InvalidDateRange("dates must lie between 1900-01-01 and 2199-12-31")
    start = start_date or max(end - timedelta(days=365), earliest)
    if start > end:
        raise InvalidDateRange("start_date must not be after end_date")
    dates = series.points(start, end, interval) if (end - start).days < 200_000 else []
    if not dates or len(dates) > series.MAX_POINTS:
        raise InvalidDateRange(
            f"at most {series.MAX_POINTS} points per request: shorten the range or "
            "use a longer interval"
        )
    await series.ensure_built(ctx.db, principal.user_id)  # before the snapshot read begins
    values = await series.history(session, principal.user_id, target, dates)
    return NetWorthHistoryOut(
        currency=target,
        interval=interval,
        start_date=start,
        end_date=end,
        points=[
            NetWorthPoint(date=p.day, net_worth=format(p.net_worth, "f"), stale=p.stale)
            for p in values
        ],
    )
