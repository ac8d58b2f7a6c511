"""Daily interest: Actual/365 accrual, exact carry, posted as `LDAS:FTDP:INTR` movements.

For each account with a non-zero `annual_interest_rate` and each day `D` not yet accrued:

    accrued(D) = closing balance(D) × rate / 365          (exact rational)
    total      = carry(D-1) + accrued(D)
    posted     = total truncated to whole minor units     (towards zero)
    carry(D)   = total − posted                           (kept exactly, see InterestAccrual)

Positive `posted` (interest earned) moves from the user's `Income:Interest` into the account;
negative (interest charged on a loan or mortgage) moves from the account to `Expense:Interest`.
The movement's value time is the last microsecond of `D`, so that the next day's closing
balance includes it (daily compounding). One accrual row per account and day makes reruns
change nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.kit.money import from_minor
from worthline.kit.problems import Conflict
from worthline.kit.sql import utc_date
from worthline.ledger import repository as repo
from worthline.ledger.models import INTEREST_CODE, Account, BalanceLive, InterestAccrual, Movement
from worthline.ledger.projections import day_bounds
from worthline.ledger.service import NewAccount, NewMovement, create_account, record_movements

RATE_SCALE = 10**10  # annual_interest_rate has 10 decimal places
CARRY_UNITS = 365 * RATE_SCALE  # carry is counted in 1/CARRY_UNITS of a minor unit


@dataclass(frozen=True, slots=True)
class InterestRun:
    days: int
    accounts: int
    movements_recorded: int


def accrue(balance: int, rate: Decimal, carry: int) -> tuple[int, int]:
    """One day: `(posted minor units, new carry)`, all in exact integers."""
    rate_units = int(rate.scaleb(10))
    total = carry + balance * rate_units  # in 1/CARRY_UNITS of a minor unit
    posted = abs(total) // CARRY_UNITS * (1 if total >= 0 else -1)
    return posted, total - posted * CARRY_UNITS


class InterestAccountTaken(Conflict):
    slug, title = "interest-account-taken", "Interest Account Taken"


def counterparty_paths(kind: str, account: Account) -> tuple[str, ...]:
    """Where `kind` ("Income" or "Expense") interest of `account` goes, in order of
    preference: the plain path, then one per currency, then one per currency and exponent."""
    base = f"{kind}:Interest"
    currency = f"{base}:{account.currency}"
    return base, currency, f"{currency}:E{-account.exponent}"


async def _counterparty(
    session: AsyncSession, user_id: uuid.UUID, kind: str, account: Account, today: date
) -> Account:
    """`Income:Interest` / `Expense:Interest` in the account's currency and exponent (with a
    currency, then an exponent, suffix when the plainer path holds another one), created when
    missing."""
    paths = counterparty_paths(kind, account)
    for path in paths:
        found = await session.scalar(repo.accounts_query(user_id).where(Account.full_path == path))
        if found is None:
            return await create_account(
                session,
                user_id,
                NewAccount(
                    path,
                    account.currency,
                    account.exponent,
                    opened_on=min(account.opened_on, today),
                ),
                datetime.now(UTC),
            )
        if (found.currency, found.exponent) == (account.currency, account.exponent):
            return found
    raise InterestAccountTaken(
        f"The interest of {account.full_path} ({account.currency}, exponent "
        f"{account.exponent}) goes to the first of {', '.join(paths)} that holds that currency "
        "and exponent, or is free; all of them hold others. Rename one of them."
    )


async def run_interest(
    session: AsyncSession, user_id: uuid.UUID, start: date, end: date
) -> InterestRun:
    accounts = list(
        await session.scalars(
            repo.accounts_query(user_id)
            .where(Account.annual_interest_rate.is_not(None), Account.annual_interest_rate != 0)
            .order_by(Account.id)
        )
    )
    recorded = 0
    for account in accounts:
        recorded += await _run_account(session, user_id, account, start, end)
    return InterestRun(
        days=(end - start).days + 1, accounts=len(accounts), movements_recorded=recorded
    )


async def _run_account(
    session: AsyncSession, user_id: uuid.UUID, account: Account, start: date, end: date
) -> int:
    assert account.annual_interest_rate is not None
    # Interest starts with the account's first activity (a backdated history counts).
    active_since = await session.scalar(
        select(func.min(BalanceLive.balance_date)).where(BalanceLive.account_id == account.id)
    )
    if active_since is None or max(start, active_since) > end:
        return 0
    first = max(start, active_since)
    accrued = await session.execute(
        select(InterestAccrual.accrual_date, InterestAccrual.carry).where(
            InterestAccrual.account_id == account.id,
            InterestAccrual.accrual_date >= first,
            InterestAccrual.accrual_date <= end,
        )
    )
    done: dict[date, int] = {day: carry for day, carry in accrued}
    # Interest movements without accrual rows (imported from a journal) also mark a day done,
    # so that re-importing an exported ledger never posts the same day's interest twice.
    posted_days = await session.scalars(
        select(utc_date(Movement.value_time))
        .where(
            or_(Movement.from_account_id == account.id, Movement.to_account_id == account.id),
            Movement.code == INTEREST_CODE,
            Movement.value_time >= day_bounds(first)[0],
            Movement.value_time < day_bounds(end)[1],
        )
        .distinct()
    )
    for posted_day in posted_days:
        day_ = posted_day if isinstance(posted_day, date) else date.fromisoformat(posted_day)
        done.setdefault(day_, 0)
    if len(done) == (end - first).days + 1:
        return 0  # every day already accrued: a rerun changes nothing
    last = await session.execute(
        select(InterestAccrual.carry)
        .where(InterestAccrual.account_id == account.id, InterestAccrual.accrual_date < first)
        .order_by(InterestAccrual.accrual_date.desc())
        .limit(1)
    )
    carry = last.scalar() or 0
    # Closing balances before this run; interest posted during the run is added as we go.
    closing = dict(await repo.daily_closing_balances(session, account.id, first, end))
    posted_so_far = 0
    accruals: list[dict] = []
    movements: list[tuple[int, NewMovement]] = []
    day = first
    income = expense = None
    while day <= end:
        if day in done:
            carry = (
                await session.scalar(
                    select(InterestAccrual.carry).where(
                        InterestAccrual.account_id == account.id,
                        InterestAccrual.accrual_date == day,
                    )
                )
                or 0
            )
            day += timedelta(days=1)
            continue
        balance = closing[day] + posted_so_far
        posted, carry = accrue(balance, account.annual_interest_rate, carry)
        accruals.append(
            {
                "account_id": account.id,
                "accrual_date": day,
                "balance": balance,
                "posted": posted,
                "carry": carry,
            }
        )
        if posted:
            value_time = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                days=1, microseconds=-1
            )
            if posted > 0:
                income = income or await _counterparty(session, user_id, "Income", account, day)
                source, target = income, account
            else:
                expense = expense or await _counterparty(session, user_id, "Expense", account, day)
                source, target = account, expense
            movements.append(
                (
                    len(accruals) - 1,
                    NewMovement(
                        source.public_id,
                        target.public_id,
                        from_minor(abs(posted), account.exponent),
                        INTEREST_CODE,
                        value_time,
                        f"Interest {day.isoformat()}",
                    ),
                )
            )
            posted_so_far += posted
        day += timedelta(days=1)

    if movements:
        _, rows = await record_movements(
            session,
            user_id,
            [m for _, m in movements],
            batched=True,
            batch_description=f"Interest {account.full_path} {first}..{end}",
        )
        for (index, _), row in zip(movements, rows, strict=True):
            accruals[index]["movement_id"] = row["id"]
    if accruals:
        await session.execute(
            InterestAccrual.__table__.insert(), [{"movement_id": None, **a} for a in accruals]
        )
    return len(movements)


__all__ = ["InterestRun", "accrue", "run_interest"]
