"""The journal import's bulk path, on both engines: `balances_live` written as the movements
stream past (or rebuilt set-wise for an account whose movements go back in time) and the
net-worth cash series match a brute-force recomputation; amounts and balances at the edge of
64 bits are exact or refused with their line, never a server error; a failed chunk in flight
leaves nothing behind; and `kit.bulk` stores exactly what the ORM stores."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from ledger.factories import new_user
from worthline.kit import bulk
from worthline.kit.db import Database, unit_of_work
from worthline.kit.ids import uuid7
from worthline.ledger.journal_io import JournalInvalid, export_journal, import_journal
from worthline.ledger.journal_io import importer as journal_io
from worthline.ledger.models import Account, BalanceLive, Batch, Movement
from worthline.portfolio.models import NetWorthCash, NetWorthState
from worthline.portfolio.series import epoch_day

START = date(2025, 1, 1)
PATHS = ["Asset:Bank:A", "Asset:Bank:B", "Liability:Card:C", "Equity:Open:D", "Expense:Food:E"]
NET_WORTH = ("Asset", "Liability")
HEADER = [
    "2020-01-01 commodity GBP",
    "  exponent: -2",
    "2020-01-01 commodity SATS",
    "  exponent: 0",
]


async def _import(db: Database, user_id: uuid.UUID, lines: list[str]):
    async with unit_of_work(db) as session:
        return await import_journal(session, user_id, lines)


async def _table_rows(db: Database, user_id: uuid.UUID):
    async with db.read_session() as session:
        accounts = {
            a.id: a
            for a in await session.scalars(select(Account).where(Account.user_id == user_id))
        }
        moves = (
            await session.execute(
                select(
                    Movement.from_account_id,
                    Movement.to_account_id,
                    Movement.amount,
                    Movement.value_time,
                ).where(Movement.from_account_id.in_(list(accounts)))
            )
        ).all()
        rows = (
            await session.execute(
                select(BalanceLive.account_id, BalanceLive.balance_date, BalanceLive.balance).where(
                    BalanceLive.account_id.in_(list(accounts))
                )
            )
        ).all()
        cash = (
            await session.execute(
                select(NetWorthCash.day, NetWorthCash.currency, NetWorthCash.change).where(
                    NetWorthCash.user_id == user_id
                )
            )
        ).all()
    return accounts, moves, rows, cash


def _expected(accounts, moves):
    """`balances_live` rows and net-worth cash changes, from the movements alone."""
    net: dict[tuple[int, date], int] = defaultdict(int)
    for src, dst, amount, value_time in moves:
        net[src, value_time.date()] -= amount
        net[dst, value_time.date()] += amount
    rows, cash = set(), defaultdict(int)
    running: dict[int, int] = defaultdict(int)
    for (account_id, day), change in sorted(net.items()):
        running[account_id] += change
        rows.add((account_id, day, running[account_id]))
        account = accounts[account_id]
        if account.account_type in NET_WORTH:
            cash[epoch_day(day), account.currency] += change
    return rows, {k: v for k, v in cash.items() if v}


def _journal(moves: list[tuple[int, int, int, int]]) -> list[str]:
    lines = [*HEADER, *(f"2020-01-01 open {p} GBP" for p in PATHS)]
    for i, (src, dst, pence, day) in enumerate(moves):
        dst = (dst + 1) % len(PATHS) if dst == src else dst
        when = datetime.combine(START + timedelta(days=day), datetime.min.time(), UTC)
        stamp = (when + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines += [f"{stamp} * T{i}", f"  {PATHS[src]} -> {PATHS[dst]} {pence / 100:.2f} GBP"]
    return lines


journal_moves = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(1, 10**6), st.integers(0, 30)),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=journal_moves, second=journal_moves, ordered=st.booleans())
async def test_projection_and_cash_match_brute_force(db, monkeypatch, first, second, ordered):
    """Two imports into one ledger, in small chunks (several in flight). `ordered`: each file
    in time order and the second after the first, so every account streams its rows and the
    second import continues rows the first left; else in any order, so that accounts going
    back in time (within a file or before the first's rows) are rebuilt set-wise."""
    monkeypatch.setattr(journal_io, "CHUNK", 3)
    user_id = await new_user(db)
    if ordered:
        first = sorted(first, key=lambda m: m[3])
        offset = first[-1][3] + 1
        shifted = ((s, d, p, day + offset) for s, d, p, day in second)
        second = sorted(shifted, key=lambda m: m[3])
    for moves in (first, second):
        await _import(db, user_id, _journal(moves))
    accounts, moves, rows, cash = await _table_rows(db, user_id)
    expected_rows, expected_cash = _expected(accounts, moves)
    assert set(rows) == expected_rows
    assert {(day, currency): int(change) for day, currency, change in cash} == expected_cash


@pytest.mark.parametrize("amount", [2**62 + 1, 2**63 - 1])
async def test_amounts_near_64_bits_are_exact(db, amount):
    user_id = await new_user(db)
    result = await _import(
        db,
        user_id,
        [
            *HEADER,
            "2024-01-01 * Big",
            f"  Equity:Open:Sats -> Asset:Wallet:Sats {amount} SATS",
            "2024-01-02 * Back",
            "  Asset:Wallet:Sats -> Equity:Open:Sats 1 SATS",
        ],
    )
    assert result.movements_recorded == 2
    accounts, moves, rows, cash = await _table_rows(db, user_id)
    wallet = next(a.id for a in accounts.values() if a.full_path == "Asset:Wallet:Sats")
    assert sorted(m[2] for m in moves) == [1, amount]
    assert sorted((d, b) for a, d, b in rows if a == wallet) == [
        (date(2024, 1, 1), amount),
        (date(2024, 1, 2), amount - 1),
    ]
    assert sorted(int(c) for _, _, c in cash) == [-1, amount]


@pytest.mark.parametrize(
    ("lines", "line", "words"),
    [
        # One amount beyond what a 64-bit column holds.
        (["2024-01-01 * Huge", f"  Equity:Open:Sats -> Asset:Wallet:Sats {2**63} SATS"], 6, "64"),
        # Two that fit, whose balance does not (on the second day).
        (
            [
                "2024-01-01 * Big",
                f"  Equity:Open:Sats -> Asset:Wallet:Sats {2**62} SATS",
                "2024-01-02 * Bigger",
                f"  Equity:Open:Sats -> Asset:Wallet:Sats {2**62} SATS",
            ],
            8,
            "balance",
        ),
    ],
)
async def test_beyond_64_bits_is_a_journal_error(db, lines, line, words):
    user_id = await new_user(db)
    with pytest.raises(JournalInvalid) as caught:
        await _import(db, user_id, [*HEADER, *lines])
    assert caught.value.extra["line"] == line, caught.value.extra
    assert words in str(caught.value.detail)
    accounts, moves, rows, _ = await _table_rows(db, user_id)
    assert (accounts, moves, rows) == ({}, [], [])


async def test_beyond_64_bits_out_of_date_order_is_a_journal_error(db):
    """An account whose movements go back in time is summed set-wise at the end: a balance
    past 64 bits there is a journal error too (naming the account), never a server error."""
    user_id = await new_user(db)
    lines = [
        "2024-01-02 * Later",
        f"  Equity:Open:Sats -> Asset:Wallet:Sats {2**62} SATS",
        "2024-01-01 * Earlier",
        f"  Equity:Open:Sats -> Asset:Wallet:Sats {2**62} SATS",
    ]
    with pytest.raises(JournalInvalid) as caught:
        await _import(db, user_id, [*HEADER, *lines])
    assert "Asset:Wallet:Sats" in str(caught.value.detail)
    assert "64 bits" in str(caught.value.detail)


async def test_a_failed_chunk_in_flight_records_nothing(db, monkeypatch):
    """The database refuses a row of a chunk written while the next is parsed: the import
    fails with that error, after the chunk has stopped, and nothing is left."""
    monkeypatch.setattr(journal_io, "CHUNK", 2)
    user_id = await new_user(db)
    lines = [*HEADER, *(f"2020-01-01 open {p} GBP" for p in PATHS)]
    for i in range(9):
        lines += [f"2024-01-0{i + 1} * T{i}", f"  {PATHS[0]} -> {PATHS[1]} 1.00 GBP"]
    original = journal_io._Importer.flush
    flushes = 0

    async def flush(self):  # the second chunk gets a movement the CHECK (amount > 0) refuses
        nonlocal flushes
        flushes += 1
        if flushes == 2:
            self.movements[0] = (*self.movements[0][:4], 0, *self.movements[0][5:])
        await original(self)

    monkeypatch.setattr(journal_io._Importer, "flush", flush)
    with pytest.raises(Exception, match=r"(?i)check|constraint"):
        await _import(db, user_id, lines)
    assert flushes > 2  # it failed while later chunks were being built
    accounts, moves, rows, _ = await _table_rows(db, user_id)
    assert (accounts, moves, rows) == ({}, [], [])


async def test_bulk_rows_are_stored_as_the_orm_stores_them(db, engine_name):
    """A batch and a movement written by the ORM and the same values by `kit.bulk` read back
    identically (also as raw text on SQLite: ids, times with and without microseconds, a time
    given in another zone, JSON, text that needs escaping)."""
    user_id = await new_user(db)
    tz = datetime.now(UTC).astimezone().tzinfo
    when = [
        datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC).astimezone(tz),
    ]
    description = 'quote " backslash \\ tab \t newline \n ☕ 日本語 \x01'
    async with unit_of_work(db) as session:
        accounts = [
            Account(
                user_id=user_id,
                full_path=f"Asset:Bank:{name}",
                account_type="Asset",
                product="Bank",
                account_id=name,
                currency="GBP",
                exponent=-2,
                opened_on=date(2024, 1, 1),
            )
            for name in ("X", "Y")
        ]
        session.add_all(accounts)
        await session.flush()
        ids = bulk.time_ordered_ids()
        writer = await bulk.Writer.open(session)
        made = []
        for i, value_time in enumerate(when):
            orm_batch = Batch(
                user_id=user_id, description=description, pending=True, meta={"k": description}
            )
            session.add(orm_batch)
            await session.flush()
            session.add(
                Movement(
                    batch_id=orm_batch.id,
                    from_account_id=accounts[0].id,
                    to_account_id=accounts[1].id,
                    amount=2**62 + i,
                    value_time=value_time,
                    knowledge_time=value_time,
                    description=description,
                    payee=description,
                )
            )
            await session.flush()
            batch_id, movement_id = next(ids), next(ids)
            batch_values = (user_id, description, True, {"k": description}, orm_batch.created_at)
            movement_values = (
                accounts[0].id,
                accounts[1].id,
                2**62 + i,
                "PMNT:RCDT:BOOK",
                value_time,
                value_time,
                description,
                description,  # payee
            )
            table, columns = journal_io.BATCHES, journal_io.BATCH_COLUMNS
            await writer.submit(
                [
                    (table, columns, [_convert(writer, table, columns, (batch_id, *batch_values))]),
                    (
                        journal_io.MOVEMENTS,
                        journal_io.MOVEMENT_COLUMNS,
                        [
                            _convert(
                                writer,
                                journal_io.MOVEMENTS,
                                journal_io.MOVEMENT_COLUMNS,
                                (movement_id, batch_id, *movement_values),
                            )
                        ],
                    ),
                ]
            )
            await writer.settle()
            made.append((orm_batch.id, uuid.UUID(batch_id), uuid.UUID(movement_id)))
        session.expunge_all()
        for orm_batch_id, bulk_batch_id, bulk_movement_id in made:
            orm_batch = await session.get(Batch, orm_batch_id)
            bulk_batch = await session.get(Batch, bulk_batch_id)
            assert _fields(bulk_batch, "id") == _fields(orm_batch, "id")
            orm_move = await session.scalar(
                select(Movement).where(Movement.batch_id == orm_batch_id)
            )
            bulk_move = await session.get(Movement, bulk_movement_id)
            assert _fields(bulk_move, "id", "batch_id") == _fields(orm_move, "id", "batch_id")
            assert bulk_move.batch_id == bulk_batch_id
            if engine_name == "sqlite":
                raw = "SELECT {} FROM {} WHERE id IN (:a, :b) ORDER BY id = :a"
                for table, cols, orm_id, bulk_id in (
                    (
                        "movements",
                        "value_time, knowledge_time, description, payee, amount",
                        orm_move.id,
                        bulk_movement_id,
                    ),
                    (
                        "movement_batches",
                        "description, pending, metadata, created_at",
                        orm_batch_id,
                        bulk_batch_id,
                    ),
                ):
                    got = (
                        await session.execute(
                            text(raw.format(cols, table)), {"a": orm_id.hex, "b": bulk_id.hex}
                        )
                    ).all()
                    assert got[0] == got[1], got
                id_text = await session.scalar(
                    text("SELECT id FROM movements WHERE id = :b"), {"b": bulk_movement_id.hex}
                )
                assert id_text == bulk_movement_id.hex
        await session.rollback()


def _convert(writer, table, columns, values):
    out = []
    for column, value in zip(columns, values, strict=True):
        convert = writer.converter(table.c[column])
        out.append(value if convert is None or value is None else convert(value))
    return tuple(out)


def _fields(row, *skip):
    return {c.key: getattr(row, c.key) for c in row.__mapper__.column_attrs if c.key not in skip}


def test_time_ordered_ids_are_version_7_and_increasing():
    before = uuid7()
    ids = bulk.time_ordered_ids()
    made = [uuid.UUID(next(ids)) for _ in range(5)]
    after = uuid7()
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in made)
    assert before < made[0] < made[1] < made[2] < made[3] < made[4] < after
    assert len({u.int >> 20 for u in made}) == 1  # one block, counting in the low bits


@pytest.mark.sqlite_only
async def test_sqlite_page_cache_is_given_back(db):
    user_id = await new_user(db)
    async with unit_of_work(db) as session:
        connection = await session.connection()
        before = (await connection.exec_driver_sql("PRAGMA cache_size")).scalar_one()
        await import_journal(session, user_id, _journal([(0, 1, 100, 0)]))
        after = (await connection.exec_driver_sql("PRAGMA cache_size")).scalar_one()
    assert after == before


PAYEES = """option operating-currency GBP
2025-01-01 commodity GBP
  exponent: -2
2025-01-01 open Asset:Bank:A GBP
2025-01-01 open Expense:Food:B GBP

2025-01-02T09:00:00Z * Corner shop
  Asset:Bank:A -> Expense:Food:B "milk" 1.20 GBP

2025-01-03T09:00:00Z * Market
  Asset:Bank:A -> Expense:Food:B 2.00 GBP
  Asset:Bank:A -> Expense:Food:B 3.00 GBP

2025-01-04T09:00:00Z ! Pending shop
  Asset:Bank:A -> Expense:Food:B 4.00 GBP

2025-01-05T09:00:00Z * Tagged shop
  receipt: 42
  Asset:Bank:A -> Expense:Food:B 5.00 GBP

2025-01-06T09:00:00Z *
  Asset:Bank:A -> Expense:Food:B 6.00 GBP
"""


async def test_a_transaction_of_one_movement_keeps_its_payee_without_a_batch(db):
    """A payee alone does not make a batch: the movement keeps it. A transaction of several
    movements, a pending one or one with metadata has a batch, whose description is the payee.
    Either way export gives the payee back, and export → import → export is byte-identical. A
    single-movement batch stored before the payee moved onto the movement exports alike."""
    user_id = await new_user(db)
    async with unit_of_work(db) as session:
        await import_journal(session, user_id, PAYEES.splitlines(keepends=True))
    async with db.read_session() as session:
        moves = list(await session.scalars(select(Movement).order_by(Movement.amount)))
        batches = {b.id: b for b in await session.scalars(select(Batch))}
    assert [(m.amount, m.payee, m.batch_id is not None) for m in moves] == [
        (120, "Corner shop", False),
        (200, None, True),
        (300, None, True),
        (400, None, True),
        (500, None, True),
        (600, None, False),
    ]
    assert sorted(b.description for b in batches.values()) == [
        "Market",
        "Pending shop",
        "Tagged shop",
    ]
    first = await _exported(db, user_id)
    for header in ("Z * Corner shop\n", "Z * Market\n", "Z ! Pending shop\n", "Z * Tagged shop\n"):
        assert header in first
    again = await new_user(db)
    async with unit_of_work(db) as session:
        await import_journal(session, again, first.splitlines(keepends=True))
    assert await _exported(db, again) == first

    # Before the `payee` column, "Corner shop" was a batch of one movement.
    old_style = Batch(user_id=user_id, description="Corner shop", pending=False, meta={})
    async with unit_of_work(db) as session:
        session.add(old_style)
        await session.flush()
        moved = await session.get(Movement, moves[0].id)
        assert moved is not None
        moved.batch_id, moved.payee = old_style.id, None
    assert await _exported(db, user_id) == first


async def _exported(db: Database, user_id: uuid.UUID) -> str:
    async with db.snapshot_session() as session:
        return "".join([line async for line in export_journal(session, user_id, "GBP")])


async def test_accounts_opened_by_an_import_are_counted_in_net_worth(db):
    """An import that opens an Asset or Liability account and moves nothing through it still
    changes the accounts the net worth counts: the stored net worth says so afterwards (else
    later movements would add to a figure with the old count)."""
    user_id = await new_user(db)
    await _import(db, user_id, [*HEADER, "2020-01-01 open Asset:Bank:A GBP"])
    async with db.read_session() as session:
        before = await session.get(NetWorthState, user_id)
    assert before is not None and before.account_count == 1
    lines = [
        *HEADER,
        "2020-01-01 open Asset:Bank:B GBP",
        "2020-01-01 open Liability:Card:C GBP",
        "2020-01-01 open Expense:Food:E GBP",
    ]
    await _import(db, user_id, lines)
    async with db.read_session() as session:
        after = await session.get(NetWorthState, user_id, populate_existing=True)
    assert after is not None and after.account_count == 3 and after.valid_until is not None
