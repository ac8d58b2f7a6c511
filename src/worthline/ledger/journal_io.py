"""The `.goluca` journal against the database: atomic streaming import, streaming export.

Import reads entries as the parser yields them and writes movements in chunks, so memory stays
flat whatever the file's size; `balances_live` is rebuilt set-wise for the touched accounts at
the end, in the same transaction. Any error (syntax or meaning) names its line and column and
nothing is recorded: the edge rolls the whole transaction back.

Export writes directives first (options, commodities, opens), then transactions in value-time
order, keeping codes, knowledge times, pending flags and metadata, so that
export → import → export is byte-identical.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.eventstream.service import serialize_events
from worthline.kit.bulk import bulk_insert
from worthline.kit.db import utcnow
from worthline.kit.ids import uuid7
from worthline.kit.money import from_minor, to_minor
from worthline.kit.problems import BadRequest
from worthline.ledger import projections, publish
from worthline.ledger import repository as repo
from worthline.ledger.journal.syntax import (
    Commodity,
    JournalError,
    Open,
    Option,
    Transaction,
    parse,
)
from worthline.ledger.journal.syntax import Movement as JournalMovement
from worthline.ledger.journal.writer import write, write_transaction
from worthline.ledger.models import DEFAULT_CODE, Account, Batch, Movement
from worthline.ledger.service import EARLIEST, LATEST, NewAccount, account_values
from worthline.portfolio import series
from worthline.snapshots import service as snapshots
from worthline.snapshots.models import ACCOUNT_SYNC

CHUNK = 10_000
INTEREST_KEY = "interest-rate"
NAME_KEY = "name"


class JournalInvalid(BadRequest):
    slug, title = "journal-invalid", "Invalid Journal"

    def __init__(self, error: JournalError) -> None:
        super().__init__(str(error), line=error.line, column=error.column)


@dataclass(frozen=True, slots=True)
class ImportResult:
    accounts_created: int
    movements_recorded: int


class _Importer:
    def __init__(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        now: datetime,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.session = session
        self.progress = progress
        self.user_id = user_id
        self.now = now
        self.accounts: dict[str, tuple[int, str, int]] = {}  # path → (id, currency, exponent)
        self.exponents: dict[str, int] = {}
        self.created = 0
        self.recorded = 0
        self.touched: set[int] = set()
        self.batches: list[dict[str, Any]] = []
        self.movements: list[dict[str, Any]] = []

    async def load_accounts(self) -> None:
        rows = await self.session.execute(
            select(Account.full_path, Account.id, Account.currency, Account.exponent).where(
                Account.user_id == self.user_id
            )
        )
        self.accounts = {path: (i, c, e) for path, i, c, e in rows}

    async def _create(self, spec: NewAccount, line: int, column: int = 1) -> tuple[int, str, int]:
        try:
            values = account_values(self.user_id, spec, self.now)
        except ValueError as exc:
            raise JournalError(line, column, str(exc)) from exc
        account = Account(**values)
        self.session.add(account)
        await self.session.flush()
        self.created += 1
        found = (account.id, account.currency, account.exponent)
        self.accounts[account.full_path] = found
        return found

    async def open(self, entry: Open) -> None:
        if len(entry.commodities) != 1:
            raise JournalError(entry.line, 1, "a Worthline account holds exactly one commodity")
        currency = entry.commodities[0]
        exponent = self.exponents.get(currency)
        existing = self.accounts.get(entry.account)
        if existing is not None:
            if existing[1] != currency:
                raise JournalError(
                    entry.line, 1, f"{entry.account} already exists in {existing[1]}"
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

    async def _resolve(self, path: str, commodity: str, line: int, day: date) -> tuple[int, int]:
        found = self.accounts.get(path)
        if found is None:  # created on first use, with the commodity's exponent
            found = await self._create(
                NewAccount(path, commodity, self.exponents.get(commodity), opened_on=day), line
            )
        account_id, currency, exponent = found
        if currency != commodity:
            raise JournalError(line, 1, f"{path} holds {currency}, not {commodity}")
        return account_id, exponent

    async def transaction(self, entry: Transaction) -> None:
        value_time = entry.value_time
        if not EARLIEST <= value_time < LATEST:
            raise JournalError(entry.line, 1, "dates must lie between 1900 and 2200")
        meta = dict(entry.metadata)
        code = meta.pop("code", DEFAULT_CODE)
        batch_id = None
        if len(entry.movements) > 1 or entry.pending or entry.payee or meta:
            batch_id = uuid7()
            self.batches.append(
                {
                    "id": batch_id,
                    "user_id": self.user_id,
                    "description": entry.payee or None,
                    "pending": entry.pending,
                    "metadata": meta,
                    "created_at": self.now,
                }
            )
        knowledge_time = entry.knowledge_time or self.now
        for move in entry.movements:
            await self._movement(move, batch_id, code, value_time, knowledge_time)
        if len(self.movements) >= CHUNK:
            await self.flush()

    async def _movement(
        self,
        move: JournalMovement,
        batch_id: uuid.UUID | None,
        code: str,
        value_time: datetime,
        knowledge_time: datetime,
    ) -> None:
        day = value_time.date()
        source, exponent = await self._resolve(move.from_account, move.commodity, move.line, day)
        target, target_exponent = await self._resolve(
            move.to_account, move.commodity, move.line, day
        )
        if source == target:
            raise JournalError(move.line, 1, "from and to must be different accounts")
        if exponent != target_exponent:
            raise JournalError(move.line, 1, "the two accounts differ in exponent")
        try:
            amount = to_minor(move.amount, exponent)
        except ValueError as exc:
            raise JournalError(move.line, 1, str(exc)) from exc
        self.movements.append(
            {
                "id": uuid7(),
                "batch_id": batch_id,
                "from_account_id": source,
                "to_account_id": target,
                "amount": amount,
                "code": code,
                "value_time": value_time,
                "knowledge_time": knowledge_time,
                "description": move.description,
            }
        )
        self.touched.update((source, target))

    async def flush(self) -> None:
        await bulk_insert(self.session, Batch.__table__, self.batches)
        await bulk_insert(self.session, Movement.__table__, self.movements)
        self.recorded += len(self.movements)
        self.batches, self.movements = [], []
        if self.progress is not None:
            self.progress(self.recorded)


async def import_journal(
    session: AsyncSession,
    user_id: uuid.UUID,
    lines: Iterable[str],
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import a journal into the caller's transaction; `JournalInvalid` (400) on any error."""
    importer = _Importer(session, user_id, utcnow(), progress)
    await serialize_events(session, user_id)
    await importer.load_accounts()
    existing = [account[0] for account in importer.accounts.values()]
    before = await repo.balances_at(session, existing, importer.now)
    try:
        for entry in parse(lines):
            if isinstance(entry, Transaction):
                await importer.transaction(entry)
            elif isinstance(entry, Commodity):
                importer.exponents[entry.code] = entry.exponent
            elif isinstance(entry, Open):
                await importer.open(entry)
            # Options carry nothing Worthline keeps.
        await importer.flush()
    except JournalError as exc:
        raise JournalInvalid(exc) from exc
    await projections.rebuild(session, importer.touched)
    if importer.recorded:
        await series.rebuild_cash(session, user_id)
    await publish.balances_updated(session, user_id, importer.touched, importer.now, before=before)
    # A statement import is an account sync: snapshot every touched account, set-wise.
    await snapshots.capture_accounts(session, importer.touched, ACCOUNT_SYNC, importer.now)
    return ImportResult(importer.created, importer.recorded)


# ---------------------------------------------------------------------------------- export


async def export_journal(
    session: AsyncSession, user_id: uuid.UUID, base_currency: str
) -> AsyncIterator[str]:
    """Yield the caller's ledger as journal lines, streaming movements from the database."""
    accounts = await repo.accounts(session, user_id)
    by_id = {a.id: a for a in accounts}
    exponents: dict[str, int] = {}
    first_seen: dict[str, date] = {}
    for a in sorted(accounts, key=lambda a: (a.opened_on, a.full_path)):
        exponents.setdefault(a.currency, a.exponent)
        first_seen.setdefault(a.currency, a.opened_on)
    options = [Option("operating-currency", base_currency, 0)]
    commodities = [Commodity(first_seen[c], c, exponents[c], {}, 0) for c in sorted(exponents)]
    opens = [
        Open(a.opened_on, a.full_path, (a.currency,), _open_meta(a), 0)
        for a in sorted(accounts, key=lambda a: (a.opened_on, a.full_path))
    ]
    for line in write(options, commodities, opens, []):
        yield line
    async for transaction in _transactions(session, user_id, by_id):
        for line in write_transaction(transaction, exponents):
            yield line


def _open_meta(account: Account) -> dict[str, str]:
    meta = {k: str(v) for k, v in (account.meta or {}).items()}
    if account.annual_interest_rate is not None:
        meta[INTEREST_KEY] = format(account.annual_interest_rate.normalize(), "f")
    if account.name:
        meta[NAME_KEY] = account.name
    return meta


async def _transactions(
    session: AsyncSession, user_id: uuid.UUID, accounts: dict[int, Account]
) -> AsyncIterator[Transaction]:
    """Movements grouped into journal transactions: one per (batch, value time, knowledge time,
    code); a movement without a batch is a transaction of its own."""
    if not accounts:
        return
    order = func.coalesce(Movement.batch_id, Movement.id)
    query = (
        select(Movement, Batch.description, Batch.pending, Batch.meta)
        .outerjoin(Batch, Batch.id == Movement.batch_id)
        .where(Movement.from_account_id.in_(list(accounts)))
        .order_by(Movement.value_time, Movement.knowledge_time, order, Movement.id)
        .execution_options(yield_per=CHUNK)
    )
    key: tuple[Any, ...] | None = None
    header: tuple[datetime, datetime, bool, str, dict[str, str]] | None = None
    moves: list[JournalMovement] = []
    stream = await session.stream(query)
    async for movement, payee, pending, meta in stream:
        this = (
            movement.batch_id or movement.id,
            movement.value_time,
            movement.knowledge_time,
            movement.code,  # one code per journal transaction
        )
        if this != key and header is not None:
            yield Transaction(
                header[0], header[1], header[2], header[3], tuple(moves), header[4], 0
            )
            moves = []
        if this != key:
            key = this
            tx_meta = {k: str(v) for k, v in (meta or {}).items()}
            if movement.code != DEFAULT_CODE:
                tx_meta["code"] = movement.code
            header = (
                movement.value_time.astimezone(UTC),
                movement.knowledge_time.astimezone(UTC),
                bool(pending),
                payee or "",
                tx_meta,
            )
        source = accounts[movement.from_account_id]
        moves.append(
            JournalMovement(
                source.full_path,
                accounts[movement.to_account_id].full_path,
                from_minor(movement.amount, source.exponent),
                source.currency,
                movement.description,
                0,
            )
        )
    if header is not None:
        yield Transaction(header[0], header[1], header[2], header[3], tuple(moves), header[4], 0)
