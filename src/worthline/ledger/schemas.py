from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from worthline.kit.money import DecimalString, format_minor
from worthline.kit.schemas import Day, Timestamp
from worthline.ledger.models import ACCOUNT_TYPES, DEFAULT_CODE, Account, AccountLike

_CODE = re.compile(r"[A-Z]{4}:[A-Z]{4}:[A-Z]{4}\Z")


def _code(value: str) -> str:
    if not _CODE.match(value):
        raise ValueError(
            "an ISO 20022 bank transaction code is DOMAIN:FAMILY:SUBFAMILY, e.g. PMNT:RCDT:BOOK"
        )
    return value


def _currency_code(value: str) -> str:
    if not re.match(r"^[A-Z]{3}$", value):
        raise ValueError("an ISO 4217 code is three upper-case letters, e.g. GBP")
    from worthline.kit.currency import is_currency

    if not is_currency(value):
        raise ValueError(f"{value} is not an ISO 4217 currency code")
    return value


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _one_line(value: str) -> str:
    # NUL cannot be stored by PostgreSQL; a line break cannot be written to the journal.
    if _CONTROL.search(value):
        raise ValueError("must be one line of text without control characters")
    return value


def _trimmed(value: str) -> str:
    # The journal keeps names and payees stripped: export would fail on surrounding spaces.
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    return _one_line(value)


TransactionCode = Annotated[str, AfterValidator(_code)]
OneLine = Annotated[str, AfterValidator(_one_line)]
Trimmed = Annotated[str, AfterValidator(_trimmed)]
Currency = Annotated[str, AfterValidator(_currency_code)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountIn(Strict):
    full_path: str = Field(min_length=3, max_length=255, examples=["Asset:Bank:Current:Main"])
    currency: Currency
    exponent: int | None = Field(
        default=None, ge=-18, le=0, description="Default: the currency's ISO 4217 minor unit"
    )
    annual_interest_rate: DecimalString | None = Field(
        default=None, description='A fraction per year as a string: "0.045" is 4.5 %'
    )
    name: Trimmed | None = Field(default=None, max_length=200)


class AccountOut(BaseModel):
    id: uuid.UUID
    full_path: str
    account_type: str
    product: str
    account_id: str | None
    address: str | None
    is_pending: bool
    currency: str
    exponent: int
    annual_interest_rate: str | None
    name: str | None
    balance: str
    created_at: Timestamp

    @classmethod
    def of(cls, account: Account, balance: int) -> AccountOut:
        rate = account.annual_interest_rate
        return cls(
            id=account.public_id,
            full_path=account.full_path,
            account_type=account.account_type,
            product=account.product,
            account_id=account.account_id,
            address=account.address,
            is_pending=account.is_pending,
            currency=account.currency,
            exponent=account.exponent,
            annual_interest_rate=None if rate is None else format(rate.normalize(), "f"),
            name=account.name,
            balance=format_minor(balance, account.exponent),
            created_at=account.created_at,
        )


class AccountList(BaseModel):
    accounts: list[AccountOut]
    total_count: int


AccountType = Annotated[str, AfterValidator(lambda v: _one_of(v, ACCOUNT_TYPES))]


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"must be one of {', '.join(allowed)}")
    return value


class MovementIn(Strict):
    from_account_id: uuid.UUID
    to_account_id: uuid.UUID
    amount: DecimalString
    code: TransactionCode = DEFAULT_CODE
    value_time: Timestamp | None = Field(
        default=None, description="When it happened economically; default now; may be past"
    )
    description: OneLine | None = Field(default=None, max_length=500)


class BatchIn(Strict):
    movements: list[MovementIn] = Field(min_length=1, max_length=1000)
    description: Trimmed | None = Field(default=None, max_length=500)


class MovementOut(BaseModel):
    id: uuid.UUID
    batch_id: uuid.UUID | None
    from_account_id: uuid.UUID
    to_account_id: uuid.UUID
    amount: str
    currency: str
    code: str
    value_time: Timestamp
    knowledge_time: Timestamp
    description: str | None

    @classmethod
    def of(cls, row: dict[str, Any], source: AccountLike, target: AccountLike) -> MovementOut:
        return cls(
            id=row["id"],
            batch_id=row["batch_id"],
            from_account_id=source.public_id,
            to_account_id=target.public_id,
            amount=format_minor(row["amount"], source.exponent),
            currency=source.currency,
            code=row["code"],
            value_time=row["value_time"],
            knowledge_time=row["knowledge_time"],
            description=row["description"],
        )


class BatchOut(BaseModel):
    batch_id: uuid.UUID
    movements: list[MovementOut]


class MovementPage(BaseModel):
    movements: list[MovementOut]
    total_count: int = Field(description="Movements in [start, end], on all pages together")
    next_cursor: str | None


class BalanceOut(BaseModel):
    account_id: uuid.UUID
    balance: str
    currency: str
    at: Timestamp
    known_at: Timestamp


class DailyBalance(BaseModel):
    date: date
    balance: str


class DailyBalances(BaseModel):
    account_id: uuid.UUID
    currency: str
    balances: list[DailyBalance]


class PrefixBalances(BaseModel):
    prefix: str
    balances_by_currency: dict[str, str]
    account_count: int


class InterestRunIn(Strict):
    """Either `date`, or `start_date` and `end_date` (inclusive, at most 3,660 days)."""

    date: Day | None = None
    start_date: Day | None = None
    end_date: Day | None = None

    @model_validator(mode="after")
    def _one_form(self) -> InterestRunIn:
        if self.date is not None:
            if self.start_date or self.end_date:
                raise ValueError("give either date or start_date/end_date, not both")
            self.start_date = self.end_date = self.date
        if self.start_date is None or self.end_date is None:
            raise ValueError("give date, or both start_date and end_date")
        if self.start_date > self.end_date:
            raise ValueError("start_date must not be after end_date")
        if (self.end_date - self.start_date).days >= 3660:
            raise ValueError("at most 3660 days per run")
        if self.end_date >= _today():
            raise ValueError("interest accrues only for days that have ended (before today)")
        if self.start_date.year < 1900:
            raise ValueError("dates start in 1900")
        return self


def _today() -> date:
    from worthline.kit.db import utcnow

    return utcnow().date()


class InterestRunOut(BaseModel):
    days: int
    accounts: int
    movements_recorded: int


class JournalImportOut(BaseModel):
    accounts_created: int
    movements_recorded: int
