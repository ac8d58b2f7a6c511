from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import select

from worthline.kit.db import utcnow
from worthline.kit.deps import Ctx, CurrentUser, InsufficientScope, InvalidAccessToken, Session
from worthline.kit.money import format_minor
from worthline.kit.problems import BadRequest, problem_responses
from worthline.kit.schemas import Day, Timestamp
from worthline.ledger import direct, service
from worthline.ledger import repository as repo
from worthline.ledger.interest import InterestAccountTaken, run_interest
from worthline.ledger.models import Account
from worthline.ledger.schemas import (
    AccountIn,
    AccountList,
    AccountOut,
    AccountType,
    BalanceOut,
    BatchIn,
    BatchOut,
    DailyBalance,
    DailyBalances,
    InterestRunIn,
    InterestRunOut,
    MovementIn,
    MovementOut,
    MovementPage,
    PrefixBalances,
)
from worthline.ledger.service import (
    AccountInUse,
    AccountNotFound,
    AccountPathTaken,
    InvalidMovement,
    NewAccount,
    NewMovement,
)

router = APIRouter(tags=["ledger"])
AUTH = (InvalidAccessToken, InsufficientScope)
MAX_DAYS = 3660
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"  # PostgreSQL cannot compare text holding NUL


class InvalidDateRange(BadRequest):
    slug, title = "invalid-date-range", "Invalid Date Range"


class InvalidCursor(BadRequest):
    slug, title = "invalid-cursor", "Invalid Cursor"


async def _account(session: Session, principal: CurrentUser, account_id: uuid.UUID) -> Account:
    account = await repo.account(session, principal.user_id, account_id)
    if account is None:
        raise AccountNotFound()
    return account


@router.post(
    "/accounts",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountOut,
    responses=problem_responses(*AUTH, AccountPathTaken),
)
async def create_account(body: AccountIn, principal: CurrentUser, session: Session) -> AccountOut:
    """Open an account. `exponent` defaults to the currency's minor unit (GBP -2, JPY 0); an
    `Address` of `Pending` marks a pending account."""
    account = await service.create_account(
        session,
        principal.user_id,
        NewAccount(
            body.full_path, body.currency, body.exponent, body.annual_interest_rate, body.name
        ),
        utcnow(),
    )
    return AccountOut.of(account, 0)


@router.get("/accounts", response_model=AccountList, responses=problem_responses(*AUTH))
async def list_accounts(
    principal: CurrentUser,
    session: Session,
    type: Annotated[AccountType | None, Query(description="Asset, Liability, …")] = None,
    prefix: Annotated[
        str | None, Query(max_length=255, pattern=NO_CONTROL, description="e.g. Asset:Bank")
    ] = None,
) -> AccountList:
    """The caller's accounts, by path, each with its current balance."""
    accounts = await repo.accounts(session, principal.user_id, type, prefix)
    balances = await repo.balances_at(session, [a.id for a in accounts], utcnow())
    return AccountList(
        accounts=[AccountOut.of(a, balances.get(a.id, 0)) for a in accounts],
        total_count=len(accounts),
    )


@router.get(
    "/accounts/{account_id}",
    response_model=AccountOut,
    responses=problem_responses(*AUTH, AccountNotFound),
)
async def get_account(
    account_id: uuid.UUID, principal: CurrentUser, session: Session
) -> AccountOut:
    """One account with its current balance."""
    account = await _account(session, principal, account_id)
    balances = await repo.balances_at(session, [account.id], utcnow())
    return AccountOut.of(account, balances[account.id])


@router.delete(
    "/accounts/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*AUTH, AccountNotFound, AccountInUse),
)
async def delete_account(
    account_id: uuid.UUID, principal: CurrentUser, session: Session
) -> Response:
    """Delete an account no movement touches (409 otherwise)."""
    await service.delete_account(session, principal.user_id, account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _spec(m: MovementIn) -> NewMovement:
    return NewMovement(
        m.from_account_id, m.to_account_id, m.amount, m.code, m.value_time, m.description
    )


@router.post(
    "/movements",
    status_code=status.HTTP_201_CREATED,
    response_model=MovementOut,
    responses=problem_responses(*AUTH, AccountNotFound, InvalidMovement),
)
async def record_movement(body: MovementIn, principal: CurrentUser, ctx: Ctx) -> MovementOut:
    """Move `amount` from one account to another of the same currency and exponent.
    `value_time` may lie in the past: balances from that day on are corrected at once."""
    # Its own transaction, committed before the response (`ledger.direct`: on SQLite straight
    # on the driver), so no `Session`.
    row = await direct.record_movement(ctx.db, principal.user_id, _spec(body))
    return MovementOut.of(row, row["from_account"], row["to_account"])


@router.post(
    "/movements/batch",
    status_code=status.HTTP_201_CREATED,
    response_model=BatchOut,
    responses=problem_responses(*AUTH, AccountNotFound, InvalidMovement),
)
async def record_batch(body: BatchIn, principal: CurrentUser, session: Session) -> BatchOut:
    """Record up to 1,000 movements atomically under one `batch_id`: all or nothing."""
    batch_id, rows = await service.record_movements(
        session,
        principal.user_id,
        [_spec(m) for m in body.movements],
        batch_description=body.description,
        batched=True,
    )
    assert batch_id is not None
    return BatchOut(
        batch_id=batch_id,
        movements=[MovementOut.of(r, r["from_account"], r["to_account"]) for r in rows],
    )


def _encode_cursor(value_time: datetime, movement_id: uuid.UUID) -> str:
    raw = f"{value_time.isoformat()}|{movement_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, movement_id = raw.split("|")
        value_time = datetime.fromisoformat(when)
        if value_time.tzinfo is None:
            raise ValueError("naive")
        return value_time, uuid.UUID(movement_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("The cursor is not one this API returned") from exc


@router.get(
    "/accounts/{account_id}/movements",
    response_model=MovementPage,
    responses=problem_responses(*AUTH, AccountNotFound, InvalidCursor),
)
async def list_movements(
    account_id: uuid.UUID,
    principal: CurrentUser,
    session: Session,
    start: Annotated[Timestamp | None, Query(description="Value time from (inclusive)")] = None,
    end: Annotated[Timestamp | None, Query(description="Value time to (inclusive)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> MovementPage:
    """Movements in or out of the account, newest value time first, paged with `next_cursor`;
    `total_count`: all of them in [start, end], on every page."""
    account = await _account(session, principal, account_id)
    if start and end and start > end:
        raise InvalidDateRange("start must not be after end")
    after = _decode_cursor(cursor) if cursor else None
    page = await repo.movements_page(session, account.id, start, end, limit + 1, after)
    more = len(page) > limit
    page = page[:limit]
    other_ids = {m.from_account_id for m in page} | {m.to_account_id for m in page}
    accounts = {
        a.id: a for a in await session.scalars(select(Account).where(Account.id.in_(other_ids)))
    }
    movements = [
        MovementOut.of(m.__dict__, accounts[m.from_account_id], accounts[m.to_account_id])
        for m in page
    ]
    last = page[-1] if more else None
    return MovementPage(
        movements=movements,
        total_count=await repo.movements_count(session, account.id, start, end),
        next_cursor=_encode_cursor(last.value_time, last.id) if last else None,
    )


@router.get(
    "/accounts/{account_id}/balance",
    response_model=BalanceOut,
    responses=problem_responses(*AUTH, AccountNotFound, InvalidDateRange),
)
async def get_balance(
    account_id: uuid.UUID,
    principal: CurrentUser,
    session: Session,
    at: Annotated[Timestamp | None, Query(description="Value time; default now")] = None,
    known_at: Annotated[
        Timestamp | None, Query(description="As the ledger knew it then; default now")
    ] = None,
) -> BalanceOut:
    """The balance at a value time, as known at a knowledge time (bitemporal)."""
    account = await _account(session, principal, account_id)
    now = utcnow()
    at = at or now
    known_at = known_at or now
    _check_instant(at, "at")
    _check_instant(known_at, "known_at")
    if known_at >= now:  # nothing recorded after now: the projection is what is known
        balance = (await repo.balances_at(session, [account.id], at))[account.id]
    else:
        balance = await repo.balance_known_at(session, account.id, at, known_at)
    return BalanceOut(
        account_id=account.public_id,
        balance=format_minor(balance, account.exponent),
        currency=account.currency,
        at=at,
        known_at=known_at,
    )


def _check_instant(value: datetime, name: str) -> None:
    if not service.EARLIEST <= value < service.LATEST:
        raise InvalidDateRange(f"{name} must lie between 1900-01-01 and 2200-01-01")


@router.get(
    "/accounts/{account_id}/daily-balances",
    response_model=DailyBalances,
    responses=problem_responses(*AUTH, AccountNotFound, InvalidDateRange),
)
async def daily_balances(
    account_id: uuid.UUID,
    principal: CurrentUser,
    session: Session,
    start_date: Annotated[Day, Query()],
    end_date: Annotated[Day, Query()],
) -> DailyBalances:
    """One closing balance per day from `start_date` to `end_date` (at most 3,660 days); days
    without activity carry the previous day's balance."""
    if start_date > end_date:
        raise InvalidDateRange("start_date must not be after end_date")
    if (end_date - start_date).days + 1 > MAX_DAYS:
        raise InvalidDateRange(f"at most {MAX_DAYS} days per request")
    _check_instant(
        datetime(start_date.year, start_date.month, start_date.day, tzinfo=UTC), "start_date"
    )
    _check_instant(datetime(end_date.year, end_date.month, end_date.day, tzinfo=UTC), "end_date")
    account = await _account(session, principal, account_id)
    days = await repo.daily_closing_balances(session, account.id, start_date, end_date)
    out = [DailyBalance(date=d, balance=format_minor(b, account.exponent)) for d, b in days]
    return DailyBalances(account_id=account.public_id, currency=account.currency, balances=out)


@router.get(
    "/balances", response_model=PrefixBalances, responses=problem_responses(*AUTH, InvalidDateRange)
)
async def prefix_balances(
    principal: CurrentUser,
    session: Session,
    prefix: Annotated[
        str, Query(min_length=1, max_length=255, pattern=NO_CONTROL, description="e.g. Asset")
    ],
    at: Annotated[Timestamp | None, Query()] = None,
) -> PrefixBalances:
    """Total balance per currency of every account under a path prefix. Movements between
    accounts inside the subtree cancel out."""
    at = at or utcnow()
    _check_instant(at, "at")
    accounts = await repo.accounts(session, principal.user_id, prefix=prefix)
    balances = await repo.balances_at(session, [a.id for a in accounts], at)
    # Accounts of one currency may differ in exponent: sum exactly at the finest of them.
    totals: dict[str, tuple[int, int]] = {}
    for a in accounts:
        total, exponent = totals.get(a.currency, (0, a.exponent))
        finest = min(exponent, a.exponent)
        total = total * 10 ** (exponent - finest) + balances[a.id] * 10 ** (a.exponent - finest)
        totals[a.currency] = (total, finest)
    return PrefixBalances(
        prefix=prefix,
        balances_by_currency={c: format_minor(t, e) for c, (t, e) in sorted(totals.items())},
        account_count=len(accounts),
    )


@router.post(
    "/interest/run",
    response_model=InterestRunOut,
    responses=problem_responses(*AUTH, InterestAccountTaken),
)
async def interest_run(
    body: InterestRunIn, principal: CurrentUser, session: Session
) -> InterestRunOut:
    """Accrue daily interest (Actual/365) on every account of yours with a rate, for each day
    given that has not been accrued yet. Running a day twice changes nothing the second time.
    409 `interest-account-taken` when none of the interest accounts an account's currency and
    exponent may use is free (`Income:Interest`, `…:GBP`, `…:GBP:E4`; `Expense:` alike)."""
    assert body.start_date is not None and body.end_date is not None
    run = await run_interest(session, principal.user_id, body.start_date, body.end_date)
    return InterestRunOut(
        days=run.days, accounts=run.accounts, movements_recorded=run.movements_recorded
    )
