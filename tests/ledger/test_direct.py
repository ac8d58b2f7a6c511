"""Single movements straight on the driver (`ledger.direct`, `kit.direct`), on both engines.

The direct path must leave exactly what the regular path (a unit of work around
`service.record_movements`) leaves: movements, `balances_live`, the net-worth cash series and
state, and the events, in order. The property below records the same random movements for two
users with the same accounts, one through each path, and compares everything. The other tests
cover what only the direct path has: rolling back on failure, delivering events after the
commit, queueing with other writers, falling back to the regular path (SQLite: another process
holds the write lock; PostgreSQL: every direct connection is in use), checkpointing the WAL off
the event loop (SQLite), and the statements each PostgreSQL connection prepares.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ledger.api_helpers import problem, validation
from ledger.factories import account, count_direct, new_user
from worthline.eventstream.events import RecordedEvent
from worthline.eventstream.models import EventRecord
from worthline.kit import direct as kit_direct
from worthline.kit.db import Database, unit_of_work, utcnow
from worthline.ledger import direct, repository, service
from worthline.ledger.models import Account, BalanceLive, Movement
from worthline.portfolio import series
from worthline.portfolio.models import NetWorthCash, NetWorthState

PATHS = {
    "GBP": [
        "Asset:Bank:Current",
        "Asset:Bank:Savings",
        "Liability:Card:Visa",
        "Income:Salary",
        "Expense:Food",
    ],
    "USD": ["Asset:Broker:Cash", "Asset:Bank:Dollar", "Income:Side"],
}

movement = st.tuples(
    st.sampled_from(list(PATHS)),
    st.integers(0, 4),  # from (index into that currency's accounts, wrapped)
    st.integers(0, 4),  # to
    st.integers(1, 10**7),  # minor units
    st.one_of(  # value time, in seconds from now
        st.integers(-40 * 86_400, 0),  # backdated, or now
        st.integers(1, 600),  # later today: future, before the net worth's next midnight
        st.integers(86_400, 3 * 86_400),  # future days
    ),
)


async def _accounts(db: Database, user_id: uuid.UUID) -> dict[str, Account]:
    made = {}
    async with unit_of_work(db) as session:
        for currency, paths in PATHS.items():
            for path in paths:
                made[path] = await service.create_account(
                    session, user_id, service.NewAccount(path, currency), utcnow()
                )
    return made


async def _state_of(db: Database, user_id: uuid.UUID) -> dict[str, Any]:
    """Everything a movement leaves, with ids replaced by account paths."""
    async with db.read_session() as session:
        accounts = {
            a.id: a
            for a in await session.scalars(select(Account).where(Account.user_id == user_id))
        }
        paths = {a.id: a.full_path for a in accounts.values()}
        public = {str(a.public_id): a.full_path for a in accounts.values()}
        movements = [
            (paths[m.from_account_id], paths[m.to_account_id], m.amount, m.value_time, m.code)
            for m in await session.scalars(
                select(Movement)
                .where(Movement.from_account_id.in_(paths))
                .order_by(Movement.knowledge_time, Movement.id)
            )
        ]
        balances = {
            (paths[b.account_id], b.balance_date): b.balance
            for b in await session.scalars(
                select(BalanceLive).where(BalanceLive.account_id.in_(paths))
            )
        }
        cash = {
            (c.day, c.currency, c.exponent): c.change
            for c in await session.scalars(
                select(NetWorthCash).where(NetWorthCash.user_id == user_id)
            )
        }
        state = await session.get(NetWorthState, user_id)
        events = []
        for event in await session.scalars(
            select(EventRecord).where(EventRecord.user_id == user_id).order_by(EventRecord.id)
        ):
            payload = dict(event.payload)
            payload.pop("user_id")
            if "account_id" in payload:
                payload["account_id"] = public[payload["account_id"]]
            events.append((event.type, payload))
    return {
        "movements": movements,
        "balances": balances,
        "cash": cash,
        "state": state
        and (state.currency, state.net_worth, state.account_count, state.exact, state.valid_until),
        "events": events,
    }


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(moves=st.lists(movement, min_size=1, max_size=12))
async def test_direct_path_leaves_what_the_regular_path_leaves(db, monkeypatch, moves):
    taken = count_direct(monkeypatch)
    direct_user, regular_user = await new_user(db), await new_user(db)
    direct_accounts = await _accounts(db, direct_user)
    regular_accounts = await _accounts(db, regular_user)
    # A first movement computes each user's net worth in full (the regular path, both times);
    # after it every GBP movement can be added to it on the direct path.
    today = utcnow()
    for user, accounts in ((direct_user, direct_accounts), (regular_user, regular_accounts)):
        first = service.NewMovement(
            accounts["Asset:Bank:Current"].public_id,
            accounts["Asset:Bank:Savings"].public_id,
            Decimal("1.00"),
            value_time=today - timedelta(days=1),
        )
        async with unit_of_work(db) as session:
            await service.record_movements(session, user, [first])
    for currency, src, dst, units, offset in moves:
        paths = PATHS[currency]
        source, target = paths[src % len(paths)], paths[dst % len(paths)]
        if source == target:
            target = paths[(dst + 1) % len(paths)]
        amount = Decimal(units).scaleb(-2)
        value_time = today + timedelta(seconds=offset)

        def spec(accounts: dict[str, Account]) -> service.NewMovement:
            return service.NewMovement(
                accounts[source].public_id,  # noqa: B023
                accounts[target].public_id,  # noqa: B023
                amount,  # noqa: B023
                value_time=value_time,  # noqa: B023
                description="property",
            )

        await direct.record_movement(db, direct_user, spec(direct_accounts))
        async with unit_of_work(db) as session:
            await service.record_movements(session, regular_user, [spec(regular_accounts)])

    assert await _state_of(db, direct_user) == await _state_of(db, regular_user)
    assert len(taken) >= sum(1 for m in moves if m[0] == "GBP")


async def _two_accounts(db: Database) -> tuple[uuid.UUID, Account, Account]:
    user_id = await new_user(db)
    async with unit_of_work(db) as session:
        a = await service.create_account(
            session, user_id, service.NewAccount("Asset:Bank:A", "GBP"), utcnow()
        )
        b = await service.create_account(
            session, user_id, service.NewAccount("Asset:Bank:B", "GBP"), utcnow()
        )
    return user_id, a, b


async def _count(db: Database, model: Any) -> int:
    async with db.read_session() as session:
        return await session.scalar(select(func.count()).select_from(model))  # type: ignore[return-value]


def _file(db: Database) -> Path:
    assert db.engine.url.database
    return Path(db.engine.url.database)


@pytest.mark.sqlite_only
async def test_another_process_holding_the_write_lock_sends_it_the_regular_way(db, monkeypatch):
    user_id, a, b = await _two_accounts(db)
    busy = []

    class Seen(kit_direct.WriterBusy):  # raised by kit.direct, caught by ledger.direct
        def __init__(self, *args: Any) -> None:
            busy.append(True)
            super().__init__(*args)

    monkeypatch.setattr(kit_direct, "WriterBusy", Seen)
    other = sqlite3.connect(_file(db), isolation_level=None)  # "another process"
    other.execute("BEGIN IMMEDIATE")
    try:
        task = asyncio.create_task(
            direct.record_movement(
                db, user_id, service.NewMovement(a.public_id, b.public_id, Decimal("5"))
            )
        )
        await asyncio.sleep(0.3)
        assert busy == [True]
        assert not task.done()  # the regular path waits for the lock, off the event loop
    finally:
        other.execute("COMMIT")
        other.close()
    row = await asyncio.wait_for(task, 30)
    assert row["amount"] == 500
    assert await _count(db, Movement) == 1


async def test_a_failure_midway_rolls_back_everything_and_frees_the_writer(db, monkeypatch):
    user_id, a, b = await _two_accounts(db)
    before = (
        await _count(db, Movement),
        await _count(db, BalanceLive),
        await _count(db, EventRecord),
    )

    def broken(*args: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(series, "movement_cash", broken)
    spec = service.NewMovement(a.public_id, b.public_id, Decimal("5"))
    with pytest.raises(RuntimeError):
        await direct.record_movement(db, user_id, spec)
    after = (
        await _count(db, Movement),
        await _count(db, BalanceLive),
        await _count(db, EventRecord),
    )
    assert after == before
    monkeypatch.undo()
    row = await asyncio.wait_for(direct.record_movement(db, user_id, spec), 5)  # turn released
    assert row["amount"] == 500


async def test_events_go_out_after_the_commit_with_their_stored_ids(db):
    user_id, a, b = await _two_accounts(db)
    delivered: list[Any] = []

    async def on_commit(items: list[Any]) -> None:
        async with db.read_session() as session:  # committed: another connection sees it
            stored = await session.scalar(select(func.count()).select_from(Movement))
        delivered.append((stored, items))

    db.on_commit = on_commit
    # The first write of a user computes its net worth in full (regular path); the second
    # adds to it on the direct path.
    for _ in range(2):
        await direct.record_movement(
            db, user_id, service.NewMovement(a.public_id, b.public_id, Decimal("1.25"))
        )
    stored, items = delivered[-1]
    assert stored == 2
    assert all(isinstance(item, RecordedEvent) for item in items)
    async with db.read_session() as session:
        rows = list(
            await session.execute(
                select(EventRecord.id, EventRecord.type)
                .order_by(EventRecord.id.desc())
                .limit(len(items))
            )
        )
    assert [(i.id, type(i.event).__name__) for i in items] == sorted(rows)
    updates = {item.event.account_id: item.event for item in items}
    assert updates[a.public_id].new_balance == Decimal("-2.50")
    assert updates[b.public_id].delta == Decimal("1.25")


async def test_direct_writers_queue_with_regular_writers(db):
    user_id, a, b = await _two_accounts(db)
    one = service.NewMovement(a.public_id, b.public_id, Decimal("1"))
    back = service.NewMovement(b.public_id, a.public_id, Decimal("0.5"))

    async def regular_batch() -> None:
        async with unit_of_work(db) as session:
            await service.record_movements(session, user_id, [one, back], batched=True)

    await asyncio.gather(
        *(direct.record_movement(db, user_id, one) for _ in range(40)),
        *(regular_batch() for _ in range(10)),
    )
    async with db.read_session() as session:
        balances = await repository.balances_at(session, [a.id, b.id], utcnow() + timedelta(days=1))
        ids = list(await session.scalars(select(EventRecord.id).order_by(EventRecord.id)))
    assert balances == {a.id: -(40 + 5) * 100, b.id: (40 + 5) * 100}
    assert len(ids) == len(set(ids))


@pytest.mark.sqlite_only
async def test_checkpoints_run_off_the_event_loop(db, monkeypatch):
    user_id, a, b = await _two_accounts(db)
    monkeypatch.setattr(kit_direct, "CHECKPOINT_EVERY", 5)
    threads: list[str] = []
    done = threading.Event()
    checkpoint = kit_direct.SqliteWriter._checkpoint

    def watching(self: Any) -> None:
        threads.append(threading.current_thread().name)
        checkpoint(self)
        done.set()

    monkeypatch.setattr(kit_direct.SqliteWriter, "_checkpoint", watching)
    for _ in range(6):  # the first goes the regular way (the user's first net worth)
        await direct.record_movement(
            db, user_id, service.NewMovement(a.public_id, b.public_id, Decimal("1"))
        )
    assert await asyncio.to_thread(done.wait, 10)
    assert threads and threads[0] != threading.current_thread().name
    # Every frame the WAL holds is in the database file now.
    probe = sqlite3.connect(_file(db))
    try:
        busy, log, done = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        probe.close()
    assert busy == 0 and log == done


async def test_problems_on_the_direct_path_change_nothing(client, auth, db):
    headers = auth["headers"]
    pounds = await account(client, headers, "Asset:Bank:Main")
    other = await account(client, headers, "Asset:Bank:Other")
    dollars = await account(client, headers, "Asset:Bank:Dollar", "USD")
    before = (await _count(db, Movement), await _count(db, EventRecord))

    def body(source: dict, target: dict, amount: str = "1.00") -> dict:
        return {"from_account_id": source["id"], "to_account_id": target["id"], "amount": amount}

    missing = {**pounds, "id": str(uuid.uuid4())}
    problem(
        await client.post("/movements", json=body(missing, other), headers=headers),
        404,
        "account-not-found",
    )
    validation(
        await client.post("/movements", json=body(pounds, dollars), headers=headers),
        "invalid-movement",
    )
    validation(
        await client.post("/movements", json=body(pounds, pounds), headers=headers),
        "invalid-movement",
    )
    validation(
        await client.post("/movements", json=body(pounds, other, "0.001"), headers=headers),
        "invalid-movement",
    )
    huge = str(Decimal(2**62 - 1).scaleb(-2))  # the largest amount
    for _ in range(2):  # up to 2^63 - 2 minor units: still a balance
        made = await client.post("/movements", json=body(pounds, other, huge), headers=headers)
        assert made.status_code == 201, made.text
    overflow = await client.post("/movements", json=body(pounds, other, huge), headers=headers)
    validation(overflow, "invalid-movement")
    assert "largest balance" in overflow.json()["detail"]
    after = (await _count(db, Movement), await _count(db, EventRecord))
    assert after[0] == before[0] + 2
    got = await client.get(f"/accounts/{other['id']}", headers=headers)
    assert got.json()["balance"] == str(Decimal(2 * (2**62 - 1)).scaleb(-2))


async def test_the_endpoint_answers_as_before(client, auth):
    headers = auth["headers"]
    source = await account(client, headers, "Asset:Bank:Main")
    target = await account(client, headers, "Expense:Food")
    when = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    response = await client.post(
        "/movements",
        json={
            "from_account_id": source["id"],
            "to_account_id": target["id"],
            "amount": "12.30",
            "code": "PMNT:ICDT:STDO",
            "value_time": when.isoformat(),
            "description": "groceries",
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["amount"] == "12.30" and body["currency"] == "GBP"
    assert body["from_account_id"] == source["id"] and body["to_account_id"] == target["id"]
    assert body["batch_id"] is None and body["description"] == "groceries"
    assert body["value_time"].startswith(when.strftime("%Y-%m-%dT%H:%M:%S"))
    listed = await client.get(f"/accounts/{source['id']}/movements", headers=headers)
    assert [m["id"] for m in listed.json()["movements"]] == [body["id"]]


@pytest.mark.postgres_only
async def test_with_every_direct_connection_in_use_it_goes_the_regular_way(db, monkeypatch):
    user_id, a, b = await _two_accounts(db)
    spec = service.NewMovement(a.public_id, b.public_id, Decimal("2"))
    await direct.record_movement(db, user_id, spec)  # a direct connection, statements prepared
    taken = count_direct(monkeypatch)
    writer = kit_direct.direct_writer(db)
    assert isinstance(writer, kit_direct.PostgresWriter)
    await direct.record_movement(db, user_id, spec)
    assert len(taken) == 1
    monkeypatch.setattr(writer, "_in_use", writer.size)  # all taken: no waiting for one
    row = await direct.record_movement(db, user_id, spec)
    assert len(taken) == 1 and row["amount"] == 200
    async with db.read_session() as session:
        balances = await repository.balances_at(session, [a.id, b.id], utcnow())
    assert balances == {a.id: -600, b.id: 600}


async def test_the_first_movement_after_opening_accounts_goes_direct(db, monkeypatch):
    """Opening a counted account recomputes the net worth as it commits (the accounts
    counted changed), so the next movement can add to it: no full recomputation then."""
    user_id, a, b = await _two_accounts(db)
    async with db.read_session() as session:
        state = await session.get(NetWorthState, user_id)
    assert state is not None and state.account_count == 2 and state.valid_until is not None
    taken = count_direct(monkeypatch)
    cash = await _two_accounts(db)  # another user's, with a movement that moves net worth
    async with unit_of_work(db) as session:  # not counted: the state stays valid
        income = await service.create_account(
            session, cash[0], service.NewAccount("Income:Salary", "GBP"), utcnow()
        )
    await direct.record_movement(
        db, user_id, service.NewMovement(a.public_id, b.public_id, Decimal("1"))
    )
    row = await direct.record_movement(
        db, cash[0], service.NewMovement(income.public_id, cash[1].public_id, Decimal("2.50"))
    )
    assert len(taken) == 2 and row["amount"] == 250
    async with db.read_session() as session:
        worth = await session.get(NetWorthState, cash[0])
    assert worth is not None and (worth.net_worth, worth.account_count) == ("2.50", 2)


async def _pg_writer_in_use(
    db: Database,
) -> tuple[uuid.UUID, Account, Account, kit_direct.PostgresWriter]:
    """Two accounts, and the direct PostgreSQL writer after one movement between them (a
    direct connection kept, its statements prepared)."""
    user_id, a, b = await _two_accounts(db)
    await direct.record_movement(
        db, user_id, service.NewMovement(a.public_id, b.public_id, Decimal("1"))
    )
    writer = kit_direct.direct_writer(db)
    assert isinstance(writer, kit_direct.PostgresWriter)
    return user_id, a, b, writer


class _Holders:
    """Every direct PostgreSQL connection held in an open, empty transaction until released."""

    def __init__(self, writer: kit_direct.PostgresWriter) -> None:
        self.writer = writer
        self.release = [asyncio.Event() for _ in range(writer.size)]
        self.tasks: list[asyncio.Task[None]] = []

    async def hold(self, release: asyncio.Event, held: asyncio.Event) -> None:
        async with self.writer.transaction():
            held.set()
            await release.wait()

    async def __aenter__(self) -> _Holders:
        for release in self.release:
            held = asyncio.Event()
            self.tasks.append(asyncio.create_task(self.hold(release, held)))
            await held.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for release in self.release:
            release.set()
        await asyncio.gather(*self.tasks)


@pytest.mark.postgres_only
async def test_a_movement_waits_for_a_direct_connection_given_back(db, monkeypatch):
    """All direct connections in use: the movement waits for the first one given back
    (shorter than the regular path under a burst) and goes direct on it."""
    user_id, a, b, writer = await _pg_writer_in_use(db)
    spec = service.NewMovement(a.public_id, b.public_id, Decimal("1"))
    monkeypatch.setattr(kit_direct, "CONNECTION_WAIT", 5.0)
    taken = count_direct(monkeypatch)
    async with _Holders(writer) as holders:
        waiting = asyncio.create_task(direct.record_movement(db, user_id, spec))
        await asyncio.sleep(0.05)
        assert not waiting.done() and len(writer._waiting) == 1
        holders.release[0].set()
        row = await waiting
    assert row["amount"] == 100 and len(taken) == 1
    assert writer._in_use == 0 and not writer._waiting


@pytest.mark.postgres_only
async def test_a_wait_that_ends_gives_no_slot_away(db, monkeypatch):
    """A waiter cancelled, or whose wait runs out (the regular path then records it), leaves
    no connection slot taken: afterwards every connection is free again."""
    user_id, a, b, writer = await _pg_writer_in_use(db)
    spec = service.NewMovement(a.public_id, b.public_id, Decimal("1"))
    monkeypatch.setattr(kit_direct, "CONNECTION_WAIT", 0.05)
    taken = count_direct(monkeypatch)
    async with _Holders(writer):
        cancelled = asyncio.create_task(direct.record_movement(db, user_id, spec))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        row = await direct.record_movement(db, user_id, spec)  # waits 50 ms, then regular
        assert row["amount"] == 100 and not taken
    assert writer._in_use == 0
    monkeypatch.setattr(kit_direct, "CONNECTION_WAIT", 5.0)  # 8 writers on 5 connections
    rows = await asyncio.gather(*(direct.record_movement(db, user_id, spec) for _ in range(8)))
    assert len(rows) == 8 and len(taken) == 8 and writer._in_use == 0
    async with db.read_session() as session:
        balances = await repository.balances_at(session, [a.id, b.id], utcnow())
    assert balances == {a.id: -1000, b.id: 1000}


@pytest.mark.postgres_only
async def test_a_connection_unsure_of_its_prepared_statements_is_discarded(db, monkeypatch):
    """A connection prepares each statement in the batch that first runs it. When that batch
    fails, which of them exist is not known, so the connection is not used again (preparing
    one twice would fail every later movement on it)."""
    user_id, a, b = await _two_accounts(db)
    back = service.NewMovement(b.public_id, a.public_id, Decimal("1"))
    big = service.NewMovement(a.public_id, b.public_id, Decimal(2**62 - 1).scaleb(-2))
    await direct.record_movement(db, user_id, back)  # a direct connection, statements prepared
    taken = count_direct(monkeypatch)
    await direct.record_movement(db, user_id, big)
    await direct.record_movement(db, user_id, big)  # b: 2^63 - 102 minor units
    writer = kit_direct.direct_writer(db)
    assert isinstance(writer, kit_direct.PostgresWriter)
    await writer._dispose()  # a new connection next, which has prepared nothing
    over = service.NewMovement(a.public_id, b.public_id, Decimal("2"))
    with pytest.raises(service.InvalidMovement):  # fails in the batch preparing the writes
        await direct.record_movement(db, user_id, over)
    row = await direct.record_movement(db, user_id, back)
    assert row["amount"] == 100 and len(taken) == 3


@pytest.mark.postgres_only
async def test_a_connection_lost_while_idle_sends_the_movement_the_regular_way(db, monkeypatch):
    """The direct writer keeps its connections between movements. One the server has closed
    meanwhile (a restart) fails in the first batch, before anything is written: the movement
    goes the regular way, and the broken connection is not used again."""
    user_id, a, b = await _two_accounts(db)
    spec = service.NewMovement(a.public_id, b.public_id, Decimal("1"))
    await direct.record_movement(db, user_id, spec)  # a direct connection, statements prepared
    taken = count_direct(monkeypatch)
    await direct.record_movement(db, user_id, spec)
    writer = kit_direct.direct_writer(db)
    assert isinstance(writer, kit_direct.PostgresWriter) and len(writer._idle) == 1
    backend = writer._idle[0].driver_connection.info.backend_pid
    async with db.read_session() as session:
        await session.execute(select(func.pg_terminate_backend(backend)))
    await asyncio.sleep(0.2)  # the server closes it
    row = await direct.record_movement(db, user_id, spec)  # regular path
    assert row["amount"] == 100 and len(taken) == 1
    await direct.record_movement(db, user_id, spec)  # direct again, on a new connection
    assert len(taken) == 2
    async with db.read_session() as session:
        balances = await repository.balances_at(session, [a.id, b.id], utcnow())
    assert balances == {a.id: -400, b.id: 400}


async def test_text_reaches_the_database_as_given(db, monkeypatch):
    """On PostgreSQL the direct path writes its values into the statements' text (as literals):
    quotes, backslashes, placeholders and statement separators in a description stay text."""
    user_id, a, b = await _two_accounts(db)
    tricky = "it's 100% \\ $1 %s %(x)s '; DROP TABLE movements; -- \u00e9\u4e2d \"q\""
    spec = service.NewMovement(a.public_id, b.public_id, Decimal("1"), description=tricky)
    await direct.record_movement(db, user_id, spec)  # a direct connection, statements prepared
    taken = count_direct(monkeypatch)
    row = await direct.record_movement(db, user_id, spec)
    assert len(taken) == 1
    async with db.read_session() as session:
        stored = list(
            await session.scalars(select(Movement.description).where(Movement.id == row["id"]))
        )
    assert stored == [tricky]
