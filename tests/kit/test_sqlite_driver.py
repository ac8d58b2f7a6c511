"""The SQLite adapter (kit/sqlite_driver.py): one hand-off to aiosqlite's thread per statement,
with everything SQLAlchemy reads of a statement (rows, row count, last row id, errors) intact;
and the process's writers served in arrival order.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from worthline.kit import sqlite_driver
from worthline.kit.db import Database, unit_of_work
from worthline.kit.sqlite_driver import OneTripCursor


@pytest.fixture
async def scratch(tmp_path: Path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with unit_of_work(db) as session:
        await session.execute(
            text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
        )
    yield db
    await db.dispose()


@pytest.fixture
def hand_offs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call run on an aiosqlite connection's thread, by the name of the function."""
    calls: list[str] = []
    original = aiosqlite.Connection._execute

    async def counting(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counting)
    return calls


async def test_the_engine_uses_the_one_trip_cursor(scratch: Database) -> None:
    async with scratch.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection.cursor(), OneTripCursor)


async def test_a_statement_with_rows_is_one_hand_off(
    scratch: Database, hand_offs: list[str]
) -> None:
    async with unit_of_work(scratch) as session:
        await session.execute(text("INSERT INTO t (name) VALUES ('a'), ('b')"))
        hand_offs.clear()
        rows = (await session.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
        assert hand_offs == ["_run"]
        assert [tuple(row) for row in rows] == [(1, "a"), (2, "b")]


async def test_rowcount_lastrowid_and_returning(scratch: Database, hand_offs: list[str]) -> None:
    async with unit_of_work(scratch) as session:
        inserted = await session.execute(text("INSERT INTO t (name) VALUES ('x')"))
        assert inserted.lastrowid == 1
        returned = await session.execute(
            text("INSERT INTO t (name) VALUES ('y'), ('z') RETURNING id, name")
        )
        assert [tuple(row) for row in returned] == [(2, "y"), (3, "z")]
        hand_offs.clear()
        updated = await session.execute(text("UPDATE t SET name = name || '!' WHERE id > 1"))
        assert updated.rowcount == 2
        assert hand_offs == ["_run"]


async def test_executemany_is_one_hand_off(scratch: Database, hand_offs: list[str]) -> None:
    async with unit_of_work(scratch) as session:
        await session.execute(text("SELECT 1"))  # the transaction begins
        hand_offs.clear()
        result = await session.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": f"n{i}"} for i in range(50)]
        )
        assert hand_offs == ["_run"]
        assert result.rowcount == 50
        count = (await session.execute(text("SELECT count(*) FROM t"))).scalar_one()
        assert count == 50


async def test_errors_reach_sqlalchemy_as_before_and_roll_back(scratch: Database) -> None:
    with pytest.raises(IntegrityError):
        async with unit_of_work(scratch) as session:
            await session.execute(text("INSERT INTO t (name) VALUES ('dup')"))
            await session.execute(text("INSERT INTO t (name) VALUES ('dup')"))
    async with scratch.read_session() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0


async def test_streaming_reads_still_stream(scratch: Database) -> None:
    async with unit_of_work(scratch) as session:
        await session.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": f"s{i:03}"} for i in range(300)]
        )
    async with scratch.snapshot_session() as session:
        result = await session.stream(text("SELECT name FROM t ORDER BY id"))
        names = [row[0] async for row in result]
    assert names == [f"s{i:03}" for i in range(300)]


# ------------------------------------------------------------------------------ writer turns


async def test_writers_of_the_process_take_turns_in_arrival_order(
    scratch: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve writers arrive while one holds the database: each runs in arrival order, none
    waits in SQLite's busy handler (whose polling serves them in no particular order). (Each
    has a connection of its own: the pool holds fifteen.)"""
    holding = asyncio.Event()
    release = asyncio.Event()
    arrived: asyncio.Queue[None] = asyncio.Queue()  # one item per writer asking its turn
    take_turn = sqlite_driver.OneTripConnection.take_turn

    async def counted(connection: sqlite_driver.OneTripConnection) -> None:
        arrived.put_nowait(None)
        await take_turn(connection)

    monkeypatch.setattr(sqlite_driver.OneTripConnection, "take_turn", counted)

    async def first() -> None:
        async with unit_of_work(scratch) as session:
            await session.execute(text("INSERT INTO t (name) VALUES ('first')"))
            holding.set()
            await release.wait()

    async def writer(n: int) -> None:
        async with unit_of_work(scratch) as session:
            await session.execute(text("INSERT INTO t (name) VALUES (:name)"), {"name": f"w{n:02}"})

    holder = asyncio.create_task(first())
    await holding.wait()
    await arrived.get()  # the holder's
    writers = []
    for n in range(12):
        writers.append(asyncio.create_task(writer(n)))
        # Arrive one after another: the next writer starts once this one is queued (a fixed
        # pause was not always enough for its connection to reach BEGIN on a slow machine).
        await arrived.get()
        for _ in range(3):
            await asyncio.sleep(0)  # its wait on the turn is under way
    release.set()
    await asyncio.gather(holder, *writers)
    async with scratch.read_session() as session:
        names = (await session.execute(text("SELECT name FROM t ORDER BY id"))).scalars().all()
    assert names == ["first", *(f"w{n:02}" for n in range(12))]


async def test_a_failed_transaction_gives_its_turn_back(scratch: Database) -> None:
    with pytest.raises(IntegrityError):
        async with unit_of_work(scratch) as session:
            await session.execute(text("INSERT INTO t (name) VALUES ('dup'), ('dup')"))
    async with asyncio.timeout(5), unit_of_work(scratch) as session:
        await session.execute(text("INSERT INTO t (name) VALUES ('next')"))
    async with scratch.read_session() as session:
        assert (await session.execute(text("SELECT name FROM t"))).scalars().all() == ["next"]


async def test_a_writer_waiting_past_the_timeout_fails_as_sqlite_would(
    scratch: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second write transaction opened inside the first (same task) can never get its turn:
    it fails after the timeout with SQLite's own error instead of hanging."""
    monkeypatch.setattr(sqlite_driver, "TURN_TIMEOUT", 0.2)
    async with unit_of_work(scratch) as outer:
        await outer.execute(text("INSERT INTO t (name) VALUES ('outer')"))
        with pytest.raises(OperationalError, match="database is locked"):
            async with unit_of_work(scratch) as inner:
                await inner.execute(text("INSERT INTO t (name) VALUES ('inner')"))
    async with scratch.read_session() as session:
        assert (await session.execute(text("SELECT name FROM t"))).scalars().all() == ["outer"]


async def test_a_cancelled_writer_gives_its_turn_back(scratch: Database) -> None:
    """A request cancelled in the middle of its transaction (a shutdown, a timeout) rolls back
    and the next writer goes on at once."""
    holding = asyncio.Event()

    async def stuck() -> None:
        async with unit_of_work(scratch) as session:
            await session.execute(text("INSERT INTO t (name) VALUES ('cancelled')"))
            holding.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(stuck())
    await holding.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(5), unit_of_work(scratch) as session:
        await session.execute(text("INSERT INTO t (name) VALUES ('next')"))
    async with scratch.read_session() as session:
        assert (await session.execute(text("SELECT name FROM t"))).scalars().all() == ["next"]
