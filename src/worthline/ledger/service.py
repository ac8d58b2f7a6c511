"""Accounts and movements. Services flush; the edge commits.

Recording a movement: load and lock both accounts (in id order), check them, insert the
movement, bring `balances_live` up to date: all in the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.eventstream.service import serialize_events
from worthline.kit.currency import is_currency, minor_unit
from worthline.kit.db import is_out_of_range, utcnow, with_retry
from worthline.kit.ids import uuid7
from worthline.kit.money import from_minor, to_minor
from worthline.kit.problems import Conflict, NotFound, ValidationProblem
from worthline.ledger import projections, publish
from worthline.ledger import repository as repo
from worthline.ledger.models import DEFAULT_CODE, Account, AccountLike, Batch, Movement
from worthline.ledger.paths import parse_path
from worthline.portfolio import series
from worthline.portfolio.networth import NET_WORTH_TYPES, net_worth_changed
from worthline.portfolio.networth import opened as net_worth_opened

# Value times outside this range are mistakes (a year typed as 20024), not history.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
RATE_QUANTUM = Decimal("1E-10")
LARGEST_BALANCE = 2**63 - 1  # minor units: balances_live holds 64-bit integers


class AccountNotFound(NotFound):
    slug, title = "account-not-found", "Account Not Found"

    def __init__(self, account_id: object = None) -> None:
        super().__init__("Account not found" + (f": {account_id}" if account_id else ""))


class AccountPathTaken(Conflict):
    slug, title = "account-exists", "Account Already Exists"


class AccountInUse(Conflict):
    slug, title = "account-in-use", "Account In Use"


class InvalidMovement(ValidationProblem):
    slug, title = "invalid-movement", "Invalid Movement"


def _invalid(loc: Sequence[str | int], msg: str) -> InvalidMovement:
    return InvalidMovement(msg, [{"loc": list(loc), "msg": msg, "type": "value_error"}])


def out_of_range(accounts: Iterable[AccountLike], loc: Sequence[str | int]) -> InvalidMovement:
    """A write that would carry a balance, or a day's total, past what the ledger holds."""
    touched = sorted(accounts, key=lambda a: a.full_path)
    largest = ", ".join(
        f"{a.full_path}: {from_minor(LARGEST_BALANCE, a.exponent)} {a.currency}" for a in touched
    )
    return _invalid(
        [*loc, "amount"],
        f"this would carry a balance or a day's total past the largest balance an account "
        f"can hold ({largest}); nothing was recorded",
    )


@dataclass(frozen=True, slots=True)
class NewAccount:
    full_path: str
    currency: str
    exponent: int | None = None
    annual_interest_rate: Decimal | None = None
    name: str | None = None
    opened_on: date | None = None
    meta: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class NewMovement:
    from_account_id: uuid.UUID
    to_account_id: uuid.UUID
    amount: Decimal
    code: str = DEFAULT_CODE
    value_time: datetime | None = None
    description: str | None = None


class InvalidAccountField(ValueError):
    """A new account's field that cannot be: `field` names it, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def account_values(user_id: uuid.UUID, spec: NewAccount, now: datetime) -> dict[str, Any]:
    """Column values for a new account; `InvalidAccountField` (with a client-fit message) when
    invalid."""
    try:
        path = parse_path(spec.full_path)
    except ValueError as exc:
        raise InvalidAccountField("full_path", str(exc)) from exc
    exponent = spec.exponent
    if exponent is None:
        if not is_currency(spec.currency):
            raise InvalidAccountField(
                "currency", f"{spec.currency} is not an ISO 4217 currency; give its exponent"
            )
        exponent = -minor_unit(spec.currency)
    if not -18 <= exponent <= 0:
        raise InvalidAccountField("exponent", "exponent must be between -18 and 0")
    rate = spec.annual_interest_rate
    if rate is not None and not (rate.is_finite() and Decimal("-1") < rate < Decimal("10")):
        raise InvalidAccountField(
            "annual_interest_rate", "annual_interest_rate is a fraction per year (0.045 = 4.5 %)"
        )
    if rate is not None and rate != rate.quantize(RATE_QUANTUM):  # the column holds 10 places
        raise InvalidAccountField(
            "annual_interest_rate", "annual_interest_rate has at most 10 decimal places"
        )
    return {
        "public_id": uuid.uuid4(),
        "user_id": user_id,
        "full_path": path.full_path,
        "account_type": path.account_type,
        "product": path.product,
        "account_id": path.account_id,
        "address": path.address,
        "is_pending": path.is_pending,
        "currency": spec.currency,
        "exponent": exponent,
        "annual_interest_rate": rate,
        "name": spec.name,
        "opened_on": spec.opened_on or now.date(),
        "meta": spec.meta or {},
        "created_at": now,
    }


async def create_account(
    session: AsyncSession, user_id: uuid.UUID, spec: NewAccount, now: datetime
) -> Account:
    try:
        values = account_values(user_id, spec, now)
    except InvalidAccountField as exc:
        error = {"loc": ["body", exc.field], "msg": str(exc), "type": "value_error"}
        raise ValidationProblem(str(exc), [error]) from exc
    taken = await session.scalar(
        repo.accounts_query(user_id).where(Account.full_path == values["full_path"])
    )
    if taken is not None:
        raise AccountPathTaken(f"You already have an account {values['full_path']}")
    account = Account(**values)
    try:  # a concurrent request may still win the unique index
        async with session.begin_nested():
            session.add(account)
            await session.flush()
    except IntegrityError as exc:
        raise AccountPathTaken(f"You already have an account {values['full_path']}") from exc
    if account.account_type in NET_WORTH_TYPES:
        net_worth_opened(session, user_id)  # one more account counts
    return account


async def delete_account(session: AsyncSession, user_id: uuid.UUID, public_id: uuid.UUID) -> None:
    """Delete an account no movement touches; its holdings and snapshots go with it (and the
    user's net worth is recomputed when it counted there)."""
    await serialize_events(session, user_id)  # the net-worth event may follow
    account = await repo.account(session, user_id, public_id)
    if account is None:
        raise AccountNotFound(public_id)
    if await repo.has_movements(session, account.id):
        raise AccountInUse("Movements touch this account; it cannot be deleted")
    await session.delete(account)
    await session.flush()
    if account.account_type in NET_WORTH_TYPES:
        net_worth_changed(session, user_id)
        series.held_changed(session, user_id, None)  # its holdings history went with it


def check_value_time(value_time: datetime, loc: Sequence[str | int]) -> datetime:
    if value_time.tzinfo is None:
        value_time = value_time.replace(tzinfo=UTC)
    if not EARLIEST <= value_time < LATEST:
        raise _invalid(loc, "value_time must lie between 1900-01-01 and 2200-01-01")
    return value_time.astimezone(UTC)


def movement_row(
    spec: NewMovement,
    source: AccountLike,
    target: AccountLike,
    loc: Sequence[str | int],
    now: datetime,
    batch_id: uuid.UUID | None,
) -> dict[str, Any]:
    """The `movements` row for `spec` between two accounts of the caller, or InvalidMovement
    (`loc`: where in the request body the movement is)."""
    if source.id == target.id:
        raise _invalid([*loc, "to_account_id"], "from and to must be different accounts")
    if (source.currency, source.exponent) != (target.currency, target.exponent):
        raise _invalid(
            [*loc, "to_account_id"],
            f"currency mismatch: {source.full_path} is {source.currency} "
            f"(exponent {source.exponent}), {target.full_path} is {target.currency} "
            f"(exponent {target.exponent})",
        )
    if spec.amount <= 0:
        raise _invalid([*loc, "amount"], "amount must be greater than zero")
    try:
        amount = to_minor(spec.amount, source.exponent)
    except ValueError as exc:
        raise _invalid(
            [*loc, "amount"], f"{exc} ({source.currency} allows {-source.exponent})"
        ) from exc
    if amount >= 2**62:
        raise _invalid([*loc, "amount"], "amount is too large")
    value_time = check_value_time(spec.value_time or now, [*loc, "value_time"])
    return {
        "id": uuid7(),
        "batch_id": batch_id,
        "from_account_id": source.id,
        "to_account_id": target.id,
        "amount": amount,
        "code": spec.code,
        "value_time": value_time,
        "knowledge_time": now,
        "description": spec.description,
        "payee": None,
    }


async def record_movements(
    session: AsyncSession,
    user_id: uuid.UUID,
    specs: Sequence[NewMovement],
    *,
    batch_description: str | None = None,
    batched: bool = False,
    now: datetime | None = None,
) -> tuple[uuid.UUID | None, list[dict[str, Any]]]:
    """Record movements atomically (one batch id when `batched`), with projections."""
    now = now or utcnow()
    return await with_retry(
        session,
        lambda: _record(session, user_id, specs, batch_description, batched, now),  # type: ignore[arg-type]
    )


async def _record(
    session: AsyncSession,
    user_id: uuid.UUID,
    specs: Sequence[NewMovement],
    batch_description: str | None,
    batched: bool,
    now: datetime,
) -> tuple[uuid.UUID | None, list[dict[str, Any]]]:
    loc_base: list[str | int] = ["body", "movements"] if batched else ["body"]
    await serialize_events(session, user_id)  # before any row lock: see its docstring
    accounts = await repo.lock_accounts(
        session, user_id, [i for s in specs for i in (s.from_account_id, s.to_account_id)]
    )
    batch_id = uuid7() if batched else None
    rows: list[dict[str, Any]] = []
    deltas: dict[tuple[int, date], int] = defaultdict(int)
    for index, spec in enumerate(specs):
        loc = [*loc_base, index] if batched else loc_base
        source = accounts.get(spec.from_account_id)
        target = accounts.get(spec.to_account_id)
        if source is None:
            raise AccountNotFound(spec.from_account_id)
        if target is None:
            raise AccountNotFound(spec.to_account_id)
        row = movement_row(spec, source, target, loc, now, batch_id)
        rows.append(row)
        day = row["value_time"].date()
        deltas[(source.id, day)] -= row["amount"]
        deltas[(target.id, day)] += row["amount"]

    if batch_id is not None:
        session.add(
            Batch(id=batch_id, user_id=user_id, description=batch_description, created_at=now)
        )
        await session.flush()
    if any(abs(delta) > LARGEST_BALANCE for delta in deltas.values()):
        # a day's net change no 64-bit row could be shifted by (nor SQLite bind)
        raise out_of_range(accounts.values(), loc_base)
    await session.execute(insert(Movement), rows)
    try:
        await projections.apply(session, deltas)
    except DBAPIError as exc:
        if not is_out_of_range(exc):
            raise
        raise out_of_range(accounts.values(), loc_base) from exc
    by_id = {a.id: a for a in accounts.values()}
    await series.add_movements(session, user_id, rows, by_id)
    touched = set(by_id)
    later = [row["value_time"] for row in rows if row["value_time"] > now]
    await publish.balances_updated(
        session,
        user_id,
        touched,
        now,
        moved=publish.moved_by(rows, now),
        future=min(later, default=None),
    )
    for row in rows:
        row["from_account"] = by_id[row["from_account_id"]]
        row["to_account"] = by_id[row["to_account_id"]]
    return batch_id, rows
