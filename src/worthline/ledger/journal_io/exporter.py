"""Journal export: directives first (options, commodities, opens), then transactions in
value-time order, streamed from the database, keeping codes, knowledge times, pending flags and
metadata, so that export → import → export is byte-identical."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.kit.money import from_minor
from worthline.ledger import repository as repo
from worthline.ledger.journal.syntax import Commodity, Open, Option, Transaction
from worthline.ledger.journal.syntax import Movement as JournalMovement
from worthline.ledger.journal.writer import write, write_transaction
from worthline.ledger.journal_io.importer import (
    BATCH_KEY,
    CHUNK,
    EXPONENT_KEY,
    INTEREST_KEY,
    NAME_KEY,
)
from worthline.ledger.models import DEFAULT_CODE, Account, Batch, Movement


async def export_journal(
    session: AsyncSession, user_id: uuid.UUID, base_currency: str
) -> AsyncIterator[str]:
    """Yield the caller's ledger as journal lines, streaming movements from the database."""
    accounts = await repo.accounts(session, user_id)
    by_id = {a.id: a for a in accounts}
    # A commodity has the finest exponent of its accounts (the parser checks every amount
    # against it); an account coarser than that says so on its `open`, and its amounts are
    # written with its own decimals.
    exponents: dict[str, int] = {}
    first_seen: dict[str, date] = {}
    for a in sorted(accounts, key=lambda a: (a.opened_on, a.full_path)):
        exponents[a.currency] = min(a.exponent, exponents.get(a.currency, 0))
        first_seen.setdefault(a.currency, a.opened_on)
    own = {a.full_path: a.exponent for a in accounts if a.exponent != exponents[a.currency]}
    options = [Option("operating-currency", base_currency, 0)]
    commodities = [Commodity(first_seen[c], c, exponents[c], {}, 0) for c in sorted(exponents)]
    opens = [
        Open(a.opened_on, a.full_path, (a.currency,), _open_meta(a), 0, own.get(a.full_path))
        for a in sorted(accounts, key=lambda a: (a.opened_on, a.full_path))
    ]
    for line in write(options, commodities, opens, []):
        yield line
    async for transaction in _transactions(session, user_id, by_id):
        for line in write_transaction(transaction, exponents, own):
            yield line


def _open_meta(account: Account) -> dict[str, str]:
    # `exponent` is the account's own column now; an older import may have kept it as metadata.
    meta = {k: str(v) for k, v in (account.meta or {}).items() if k != EXPONENT_KEY}
    if account.annual_interest_rate is not None:
        meta[INTEREST_KEY] = format(account.annual_interest_rate.normalize(), "f")
    if account.name:
        meta[NAME_KEY] = account.name
    return meta


async def _transactions(
    session: AsyncSession, user_id: uuid.UUID, accounts: dict[int, Account]
) -> AsyncIterator[Transaction]:
    """Movements grouped into journal transactions: one per (batch, value time, knowledge time,
    code); a movement without a batch is a transaction of its own.

    A batch written as several transactions (its movements differ in value time, knowledge time
    or code) gives each of them `batch: N`, numbered in the order the batches first appear, so
    that import records them as one batch again. Import gives such a batch its id where its
    first transaction is, which sorts it before everything that comes after that in the file;
    so within a (value time, knowledge time) its later transactions are written first (by N),
    as the ledger imported from this journal will sort them: export → import → export is
    byte-identical."""
    if not accounts:
        return
    spans = await _split_batches(session, list(accounts))
    first_of = {batch_id: min(groups) for batch_id, groups in spans.items()}
    # The (value time, knowledge time) pairs that hold a split batch's non-first transaction.
    later = {w for batch_id, groups in spans.items() for w in groups if w != first_of[batch_id]}
    numbers: dict[uuid.UUID, int] = {}

    def numbered(batch_id: uuid.UUID | None, transaction: Transaction) -> Transaction:
        if batch_id not in first_of:
            return transaction
        number = numbers.setdefault(batch_id, len(numbers) + 1)  # type: ignore[arg-type]
        return replace(transaction, metadata={**transaction.metadata, BATCH_KEY: str(number)})

    group: tuple[datetime, datetime] | None = None
    holding = False  # this group has a later transaction of a split batch: reorder it
    firsts: list[tuple[uuid.UUID | None, Transaction]] = []
    laters: list[tuple[uuid.UUID, Transaction]] = []
    async for batch_id, when, transaction in _parts(session, accounts):
        if when != group:
            laters.sort(key=lambda part: numbers[part[0]])  # numbered at their first part
            for held_id, held in (*laters, *firsts):
                yield numbered(held_id, held)
            firsts, laters = [], []
            group, holding = when, when in later
        if not holding:
            yield numbered(batch_id, transaction)
        elif batch_id is not None and first_of.get(batch_id, when) != when:
            laters.append((batch_id, transaction))
        else:
            firsts.append((batch_id, transaction))
    laters.sort(key=lambda part: numbers[part[0]])
    for held_id, held in (*laters, *firsts):
        yield numbered(held_id, held)


async def _split_batches(
    session: AsyncSession, account_ids: list[int]
) -> dict[uuid.UUID, list[tuple[datetime, datetime]]]:
    """The batches whose movements differ in value time, knowledge time or code (few: a batch
    is usually one transaction), each with the (value time, knowledge time) pairs it spans."""
    mine = Movement.from_account_id.in_(account_ids)
    split = (
        select(Movement.batch_id)
        .where(mine, Movement.batch_id.is_not(None))
        .group_by(Movement.batch_id)
        .having(
            or_(
                func.min(Movement.value_time) != func.max(Movement.value_time),
                func.min(Movement.knowledge_time) != func.max(Movement.knowledge_time),
                func.min(Movement.code) != func.max(Movement.code),
            )
        )
    )
    rows = await session.execute(
        select(Movement.batch_id, Movement.value_time, Movement.knowledge_time)
        .where(mine, Movement.batch_id.in_(split))
        .group_by(Movement.batch_id, Movement.value_time, Movement.knowledge_time)
    )
    spans: dict[uuid.UUID, list[tuple[datetime, datetime]]] = {}
    for batch_id, value_time, knowledge_time in rows:
        spans.setdefault(batch_id, []).append((value_time, knowledge_time))
    return spans


async def _parts(
    session: AsyncSession, accounts: dict[int, Account]
) -> AsyncIterator[tuple[uuid.UUID | None, tuple[datetime, datetime], Transaction]]:
    """The journal transactions in the database's order, each with its batch (None for a
    movement of its own) and its (value time, knowledge time) as stored."""
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
    batch_id: uuid.UUID | None = None
    when: tuple[datetime, datetime] | None = None
    moves: list[JournalMovement] = []
    stream = await session.stream(query)
    async for movement, batch_payee, pending, meta in stream:
        this = (
            movement.batch_id or movement.id,
            movement.value_time,
            movement.knowledge_time,
            movement.code,  # one code per journal transaction
        )
        if this != key and header is not None:
            yield batch_id, when, _transaction(header, moves)  # type: ignore[misc]
            moves = []
        if this != key:
            key = this
            batch_id, when = movement.batch_id, (movement.value_time, movement.knowledge_time)
            # `batch` is the export's own key now; an older import may have kept it as metadata.
            tx_meta = {k: str(v) for k, v in (meta or {}).items() if k != BATCH_KEY}
            if movement.code != DEFAULT_CODE:
                tx_meta["code"] = movement.code
            header = (
                movement.value_time.astimezone(UTC),
                movement.knowledge_time.astimezone(UTC),
                bool(pending),
                batch_payee or movement.payee or "",
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
        yield batch_id, when, _transaction(header, moves)  # type: ignore[misc]


def _transaction(
    header: tuple[datetime, datetime, bool, str, dict[str, str]], moves: list[JournalMovement]
) -> Transaction:
    return Transaction(header[0], header[1], header[2], header[3], tuple(moves), header[4], 0)
