"""Journal import: atomic and streaming.

Import reads entries as the parser yields them and writes movements in chunks, so memory stays
flat whatever the file's size; any error (syntax or meaning) names its line and column and
nothing is recorded: the edge rolls the whole transaction back. A chunk is written while the
next one is parsed (`kit.bulk.Writer`), as driver-ready tuples.

`balances_live` is written as the movements stream past: each account carries its running
balance and its current day, and a row is written when the account's day moves on. That holds
while an account's movements come in value-day order (an export's are, and so are most files);
an account whose movements go back in time, or start on or before its last existing row, is
rebuilt set-wise at the end instead (`projections.rebuild`), in the same transaction.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Context, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.eventstream.service import serialize_events
from worthline.kit import bulk
from worthline.kit.db import is_out_of_range, utcnow
from worthline.kit.money import to_minor
from worthline.kit.problems import BadRequest
from worthline.ledger import projections, publish
from worthline.ledger import repository as repo
from worthline.ledger.journal.syntax import (
    Commodity,
    JournalError,
    Open,
    Transaction,
    default_exponent,
    parse,
)
from worthline.ledger.journal.syntax import Movement as JournalMovement
from worthline.ledger.models import DEFAULT_CODE, Account, BalanceLive, Batch, Movement
from worthline.ledger.service import (
    EARLIEST,
    LARGEST_BALANCE,
    LATEST,
    NewAccount,
    account_values,
)
from worthline.portfolio import series
from worthline.portfolio.networth import NET_WORTH_TYPES
from worthline.portfolio.networth import opened as net_worth_opened
from worthline.snapshots import service as snapshots
from worthline.snapshots.models import ACCOUNT_SYNC

CHUNK = 10_000
INTEREST_KEY = "interest-rate"
NAME_KEY = "name"
EXPONENT_KEY = "exponent"  # on an `open`: the parser reads it into `Open.exponent`
# On a transaction: the transactions of one file with the same value are one batch (export
# writes it on each transaction of a batch it has to split).
BATCH_KEY = "batch"
_EXACT = Context(prec=60)  # exact for any amount that fits 64 bits
YIELD_EVERY = 64  # transactions between turns of the event loop (a COPY in flight needs them)

BATCHES, MOVEMENTS, BALANCES = Batch.__table__, Movement.__table__, BalanceLive.__table__
BATCH_COLUMNS = ("id", "user_id", "description", "pending", "metadata", "created_at")
MOVEMENT_COLUMNS = (
    "id",
    "batch_id",
    "from_account_id",
    "to_account_id",
    "amount",
    "code",
    "value_time",
    "knowledge_time",
    "description",
    "payee",
)
BALANCE_COLUMNS = ("account_id", "balance_date", "balance", "updated_at")


class JournalInvalid(BadRequest):
    slug, title = "journal-invalid", "Invalid Journal"

    def __init__(self, error: JournalError) -> None:
        super().__init__(str(error), line=error.line, column=error.column)


@dataclass(frozen=True, slots=True)
class ImportResult:
    accounts_created: int
    movements_recorded: int


class _Account:
    """An account as the import sees it, with its `balances_live` state: `day` is the day of
    its latest row (written, or `pending` to be written) and `balance` that row's balance."""

    __slots__ = (
        "balance",
        "counted",
        "currency",
        "day",
        "exponent",
        "id",
        "in_order",
        "line",
        "path",
        "pending",
        "touched",
    )

    def __init__(self, account_id: int, path: str, currency: str, exponent: int) -> None:
        self.id = account_id
        self.path = path
        self.currency = currency
        self.exponent = exponent
        self.counted = path.split(":", 1)[0] in NET_WORTH_TYPES  # its type: the path's head
        self.day: date | None = None
        self.balance = 0
        self.pending = False  # the row of `day` is not written yet
        self.in_order = True  # False: rebuilt set-wise at the end
        self.touched = False
        self.line = 0  # the last movement line that moved it

    def move(self, day: date, delta: int, line: int, out: list[tuple[Any, ...]]) -> None:
        """Add a movement of `delta` on `day`; a finished day's row goes to `out`."""
        self.touched = True
        if not self.in_order:
            return
        if day == self.day and self.pending:
            self.balance += delta
        elif self.day is None or day > self.day:
            if self.pending:
                out.append(self.row())
            self.day, self.pending = day, True
            self.balance += delta
        else:  # back in time, or onto a day that already has a row
            self.in_order = False
            return
        self.line = line

    def row(self) -> tuple[Any, ...]:
        if not -LARGEST_BALANCE - 1 <= self.balance <= LARGEST_BALANCE:
            raise JournalError(
                self.line, 1, f"the balance of {self.path} on {self.day} goes beyond 64 bits"
            )
        self.pending = False
        return (self.id, self.day, self.balance)


class _Importer:
    def __init__(
        self,
        session: AsyncSession,
        writer: bulk.Writer,
        user_id: uuid.UUID,
        now: datetime,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.session = session
        self.writer = writer
        self.progress = progress
        self.user_id = user_id
        self.now = now
        self.accounts: dict[str, _Account] = {}
        self.exponents: dict[str, int] = {}
        self.created = 0
        self.recorded = 0
        # `batch:` value -> its batch id, pending flag, metadata and first line
        self.joined: dict[str, tuple[Any, bool, dict[str, str], int]] = {}
        self.batches: list[tuple[Any, ...]] = []
        self.movements: list[tuple[Any, ...]] = []
        self.balances: list[tuple[Any, ...]] = []
        self.cash: dict[tuple[date, str, int], int] = {}  # net-worth legs per day and currency
        self.ids = bulk.time_ordered_ids()
        # Driver-ready values (kit.bulk): the constant ones converted once.
        self.time = writer.converter(MOVEMENTS.c.value_time) or (lambda value: value)
        # Memoised: a day is converted for every account that moves on it.
        self.day = functools.lru_cache(4096)(
            writer.converter(BALANCES.c.balance_date) or (lambda value: value)
        )
        self.now_value = self.time(now)
        self.user_value = (writer.converter(BATCHES.c.user_id) or (lambda value: value))(user_id)
        self.flag = writer.converter(BATCHES.c.pending) or (lambda value: value)
        self.meta = writer.converter(BATCHES.c.metadata) or (lambda value: value)
        self.no_meta = self.meta({})

    async def load_accounts(self) -> None:
        """The user's accounts, each with its latest `balances_live` row."""
        last = (
            select(func.max(BalanceLive.balance_date))
            .where(BalanceLive.account_id == Account.id)
            .correlate(Account)
            .scalar_subquery()
        )
        rows = await self.session.execute(
            select(
                Account.full_path,
                Account.id,
                Account.currency,
                Account.exponent,
                BalanceLive.balance_date,
                BalanceLive.balance,
            )
            .outerjoin(
                BalanceLive,
                (BalanceLive.account_id == Account.id) & (BalanceLive.balance_date == last),
            )
            .where(Account.user_id == self.user_id)
        )
        for path, account_id, currency, exponent, day, balance in rows:
            account = self.accounts[path] = _Account(account_id, path, currency, exponent)
            if day is not None:
                account.day, account.balance = day, balance

    async def _create(self, spec: NewAccount, line: int, column: int = 1) -> _Account:
        try:
            values = account_values(self.user_id, spec, self.now)
        except ValueError as exc:
            raise JournalError(line, column, str(exc)) from exc
        await self.writer.settle()  # the session's connection is free again
        account = Account(**values)
        self.session.add(account)
        await self.session.flush()
        self.created += 1
        if account.account_type in NET_WORTH_TYPES:
            net_worth_opened(self.session, self.user_id)  # one more account counts
        found = _Account(account.id, account.full_path, account.currency, account.exponent)
        self.accounts[account.full_path] = found
        return found

    def exponent(self, commodity: str) -> int:
        """A new account's exponent: its commodity's, as declared, else as JOURNAL.md defaults
        it (an ISO 4217 currency's minor unit, otherwise -2)."""
        exponent = self.exponents.get(commodity)
        return default_exponent(commodity) if exponent is None else exponent

    async def open(self, entry: Open) -> None:
        if len(entry.commodities) != 1:
            raise JournalError(entry.line, 1, "a Worthline account holds exactly one commodity")
        currency = entry.commodities[0]
        exponent = self.exponent(currency) if entry.exponent is None else entry.exponent
        existing = self.accounts.get(entry.account)
        if existing is not None:
            if existing.currency != currency:
                raise JournalError(
                    entry.line, 1, f"{entry.account} already exists in {existing.currency}"
                )
            if entry.exponent is not None and existing.exponent != entry.exponent:
                raise JournalError(
                    entry.line,
                    1,
                    f"{entry.account} already exists with exponent {existing.exponent}",
                )
            return
        meta = dict(entry.metadata)
        rate = meta.pop(INTEREST_KEY, None)
        name = meta.pop(NAME_KEY, None)
        try:
            annual_rate = Decimal(rate) if rate is not None else None
        except ArithmeticError as exc:
            raise JournalError(entry.line, 1, f"interest-rate {rate!r} is not a number") from exc
        await self._create(
            NewAccount(entry.account, currency, exponent, annual_rate, name, entry.date, meta),
            entry.line,
        )

    async def create_missing(self, entry: Transaction) -> None:
        """Create the accounts this transaction uses before any `open` (with the commodity's
        exponent), checking each movement before going on to the next one's accounts."""
        day = entry.value_time.date()
        for move in entry.movements:
            found = []
            for path in (move.from_account, move.to_account):
                account = self.accounts.get(path)
                if account is None:
                    exponent = self.exponent(move.commodity)
                    spec = NewAccount(path, move.commodity, exponent, opened_on=day)
                    account = await self._create(spec, move.line)
                _check_commodity(move, account)
                found.append(account)
            _amount(move, *found)

    def transaction(self, entry: Transaction) -> bool:
        """Turn a transaction into rows; False, with nothing done, when it uses an account
        that does not exist yet (`create_missing`, then again)."""
        value_time = entry.value_time
        if not EARLIEST <= value_time < LATEST:
            raise JournalError(entry.line, 1, "dates must lie between 1900 and 2200")
        known = entry.knowledge_time
        if known is not None and not EARLIEST <= known <= self.now:
            # Recorded in the future, the movement would count now but not `known_at` a moment
            # ago, and no `known_at` the API accepts could ever show it as known.
            raise JournalError(
                entry.line,
                entry.knowledge_column or 1,
                "a knowledge time lies between 1900 and the moment of the import",
            )
        accounts = self.accounts
        legs = []
        for move in entry.movements:
            source = accounts.get(move.from_account)
            target = accounts.get(move.to_account)
            if source is None or target is None:
                return False
            legs.append((move, source, target, _amount(move, source, target)))
        code = DEFAULT_CODE
        meta: dict[str, str] = {}
        joined = None
        if entry.metadata:
            meta = dict(entry.metadata)
            code = meta.pop("code", DEFAULT_CODE)
            joined = meta.pop(BATCH_KEY, None)
        batch_id = None
        payee = entry.payee or None
        if joined is not None:
            batch_id = self.join(entry, joined, payee, meta)
        elif len(legs) > 1 or entry.pending or meta:  # else the payee goes on the movement
            batch_id = self.batch(payee, entry.pending, meta)
        time_value = self.time(value_time)
        known_value = self.now_value if known is None else self.time(known)
        day = value_time.date()
        balances = self.balances
        cash = self.cash
        for move, source, target, amount in legs:
            self.movements.append(
                (
                    next(self.ids),
                    batch_id,
                    source.id,
                    target.id,
                    amount,
                    code,
                    time_value,
                    known_value,
                    move.description,
                    None if batch_id else payee,
                )
            )
            source.move(day, -amount, move.line, balances)
            target.move(day, amount, move.line, balances)
            if source.counted:
                key = (day, source.currency, source.exponent)
                cash[key] = cash.get(key, 0) - amount
            if target.counted:
                key = (day, target.currency, target.exponent)
                cash[key] = cash.get(key, 0) + amount
        return True

    def batch(self, payee: str | None, pending: bool, meta: dict[str, str]) -> Any:
        batch_id = next(self.ids)
        self.batches.append(
            (
                batch_id,
                self.user_value,
                payee,
                self.flag(pending),
                self.meta(meta) if meta else self.no_meta,
                self.now_value,
            )
        )
        return batch_id

    def join(self, entry: Transaction, key: str, payee: str | None, meta: dict[str, str]) -> Any:
        """The batch of the transactions with `batch: key`: made by the first of them (its
        payee is the batch's description), which the others must agree with."""
        found = self.joined.get(key)
        if found is None:
            batch_id = self.batch(payee, entry.pending, meta)
            self.joined[key] = (batch_id, entry.pending, meta, entry.line)
            return batch_id
        batch_id, pending, first_meta, line = found
        if pending != entry.pending:
            state = "pending" if pending else "posted"
            raise JournalError(
                entry.line, 1, f"batch {key} is {state} (line {line}): so must all its parts be"
            )
        if meta != first_meta:
            raise JournalError(
                entry.line,
                1,
                f"batch {key} has other metadata on line {line}: all its parts carry the same",
            )
        return batch_id

    def full(self) -> bool:
        return len(self.movements) >= CHUNK

    async def flush(self) -> None:
        """Hand the rows built so far to the writer (it writes them while we go on)."""
        day, now = self.day, self.now_value
        # In key order: the inserts then walk each account's rows in turn (a third faster on
        # SQLite than in the order the days finished, measured).
        self.balances.sort()
        balances = [(account, day(d), balance, now) for account, d, balance in self.balances]
        await self.writer.submit(
            [
                (BATCHES, BATCH_COLUMNS, self.batches),
                (MOVEMENTS, MOVEMENT_COLUMNS, self.movements),
                (BALANCES, BALANCE_COLUMNS, balances),
            ]
        )
        self.recorded += len(self.movements)
        self.batches, self.movements, self.balances = [], [], []
        if self.progress is not None:
            self.progress(self.recorded)

    async def finish(self) -> tuple[set[int], list[int]]:
        """Write the last rows; return the touched accounts and those to rebuild set-wise."""
        touched, rebuild = set(), []
        for account in self.accounts.values():
            if not account.touched:
                continue
            touched.add(account.id)
            if not account.in_order:
                rebuild.append(account.id)
            elif account.pending:
                self.balances.append(account.row())
        await self.flush()
        await self.writer.settle()
        return touched, rebuild


def _check_commodity(move: JournalMovement, account: _Account) -> None:
    if account.currency != move.commodity:
        raise JournalError(
            move.line, 1, f"{account.path} holds {account.currency}, not {move.commodity}"
        )


def _amount(move: JournalMovement, source: _Account, target: _Account) -> int:
    """The movement's amount in minor units, after the checks in the order they always ran."""
    commodity = move.commodity
    if source.currency != commodity or target.currency != commodity:
        _check_commodity(move, source)
        _check_commodity(move, target)
    if source is target:
        raise JournalError(move.line, 1, "from and to must be different accounts")
    exponent = source.exponent
    if exponent != target.exponent:
        raise JournalError(move.line, 1, "the two accounts differ in exponent")
    scaled = move.amount.scaleb(-exponent, _EXACT)
    amount = int(scaled)
    if amount != scaled:  # more decimals than the account holds: to_minor says so
        try:
            to_minor(move.amount, source.exponent)
        except ValueError as exc:
            raise JournalError(move.line, 1, str(exc)) from exc
    if amount > LARGEST_BALANCE:
        raise JournalError(
            move.line, 1, f"amount {move.amount} {move.commodity} is beyond 64 bits of minor units"
        )
    return amount


async def _read(importer: _Importer, lines: Iterable[str]) -> tuple[set[int], list[int]]:
    count = 0
    for entry in parse(lines):
        if isinstance(entry, Transaction):
            if not importer.transaction(entry):
                await importer.create_missing(entry)
                importer.transaction(entry)
            if importer.full():
                await importer.flush()
            count += 1
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the chunk in flight may need the event loop
        elif isinstance(entry, Commodity):
            importer.exponents[entry.code] = entry.exponent
        elif isinstance(entry, Open):
            await importer.open(entry)
        # Options carry nothing Worthline keeps.
    return await importer.finish()


async def import_journal(
    session: AsyncSession,
    user_id: uuid.UUID,
    lines: Iterable[str],
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import a journal into the caller's transaction; `JournalInvalid` (400) on any error."""
    await serialize_events(session, user_id)
    writer = await bulk.Writer.open(session)
    importer = _Importer(session, writer, user_id, utcnow(), progress)
    await importer.load_accounts()
    existing = [account.id for account in importer.accounts.values()]
    before = await repo.balances_at(session, existing, importer.now)
    async with bulk.roomy_cache(session):
        try:
            touched, rebuild = await _read(importer, lines)
        except JournalError as exc:
            await writer.close()
            raise JournalInvalid(exc) from exc
        except BaseException:
            await writer.close()
            raise
        try:
            await projections.rebuild(session, rebuild)
        except DBAPIError as exc:
            if not is_out_of_range(exc):
                raise
            # Accounts out of date order are summed set-wise, past the line that did it.
            paths = sorted(a.path for a in importer.accounts.values() if a.id in set(rebuild))
            message = f"a balance of {', '.join(paths)} goes beyond 64 bits"
            raise JournalInvalid(JournalError(1, 1, message)) from exc
    await series.add_cash(session, user_id, importer.cash)
    await publish.balances_updated(session, user_id, touched, importer.now, before=before)
    # A statement import is an account sync: snapshot every touched account, set-wise.
    await snapshots.capture_accounts(session, touched, ACCOUNT_SYNC, importer.now)
    return ImportResult(importer.created, importer.recorded)
