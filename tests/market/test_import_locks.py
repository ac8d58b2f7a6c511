"""A price import that names several assets locks them all at once, in id order, before it
writes any price (`market.repository.lock_assets`): two imports naming the same assets in
opposite orders never wait on each other crosswise. PostgreSQL only takes the locks; SQLite
has one writer at a time (BEGIN IMMEDIATE)."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from worthline.kit.db import Database, unit_of_work
from worthline.market import cli, service
from worthline.market.models import Asset, Price

DAY = date(2025, 1, 2)


async def _assets(db: Database, *symbols: str) -> dict[str, int]:
    """New assets, created in the order given (so their ids ascend in that order)."""
    ids = {}
    async with unit_of_work(db) as session:
        for symbol in symbols:
            spec = service.NewAsset(symbol, symbol, "equity", "GBP")
            ids[symbol] = (await service.create_asset(session, spec)).id
    return ids


def _rows(symbol: str, days: int, line: int = 2, day: int = 0) -> list[cli.Row]:
    """`days` prices of `symbol` from DAY + `day`, on CSV lines from `line`."""
    return [
        (line + i, {"symbol": symbol, "date": str(DAY + timedelta(days=day + i)), "close": "10"})
        for i in range(days)
    ]


async def _stored(db: Database) -> dict[str, int]:
    async with db.read_session() as session:
        rows = await session.execute(
            select(Asset.symbol, func.count(Price.asset_id))
            .join(Price, Price.asset_id == Asset.id)
            .group_by(Asset.symbol)
        )
        return dict(rows.all())


async def test_an_import_locks_its_assets_once_in_id_order(db, engine_name, monkeypatch):
    ids = await _assets(db, "AAA", "BBB", "CCC")
    # Against id order, and spread over batches: C, then A, then B (A and B share one).
    monkeypatch.setattr(cli, "BATCH_ROWS", 3)
    rows = _rows("CCC", 3) + _rows("AAA", 2, 5) + _rows("BBB", 4, 7)
    statements: list[tuple[str, Any]] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with unit_of_work(db) as session:
            assert await cli.import_prices(session, rows) == (9, 3)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)

    assert await _stored(db) == {"AAA": 2, "BBB": 4, "CCC": 3}
    locks = [(i, p) for i, (s, p) in enumerate(statements) if "pg_advisory_xact_lock" in s]
    writes = [i for i, (s, _) in enumerate(statements) if s.startswith("INSERT INTO asset_prices")]
    assert writes
    if engine_name == "sqlite":
        assert locks == []
        return
    # One statement: every asset, in id order, exclusive (the import writes all their prices),
    # before the first price is written.
    [(at, (_space, locked, exclusive))] = locks
    assert list(locked) == sorted(ids.values())
    assert list(exclusive) == [True, True, True]
    assert at < writes[0]


class _Gated:
    """An import's rows: `first`, then (once the other import has written its first) `then`.
    Iterable again from the start (a file read again)."""

    def __init__(
        self, first: list[cli.Row], then: list[cli.Row], mine: threading.Event, theirs: Any
    ) -> None:
        self.first, self.then, self.mine, self.theirs = first, then, mine, theirs

    def __iter__(self) -> Iterator[cli.Row]:
        yield from self.first
        # Pulled once the first batch is written (BATCH_ROWS is 1): its asset is locked.
        self.mine.set()
        assert self.theirs.wait(timeout=30)
        yield from self.then


@pytest.mark.postgres_only
async def test_imports_in_opposite_orders_both_succeed(db, database_url, monkeypatch):
    """One imports A then B, the other B then A, each holding its first asset when it asks for
    the second: locked in file order, that is a deadlock (PostgreSQL aborts one import; an
    import is not retried). Locked all at once in id order, the second waits for the first."""
    await _assets(db, "AAA", "BBB")
    monkeypatch.setattr(cli, "BATCH_ROWS", 1)
    a_first, b_first = threading.Event(), threading.Event()
    files = {
        "A then B": _Gated(_rows("AAA", 1), _rows("BBB", 1, 3, 1), a_first, b_first),
        "B then A": _Gated(_rows("BBB", 1), _rows("AAA", 1, 3, 1), b_first, a_first),
    }
    failures: dict[str, BaseException] = {}

    def run(name: str) -> None:
        # Each import on its own thread and event loop: the rows block while they wait.
        async def work() -> None:
            own = Database(database_url)
            try:
                async with unit_of_work(own) as session:
                    await cli.import_prices(session, files[name])
            finally:
                await own.dispose()

        try:
            asyncio.run(work())
        except BaseException as exc:  # reported below
            failures[name] = exc

    await asyncio.gather(*(asyncio.to_thread(run, name) for name in files))
    assert failures == {}
    assert await _stored(db) == {"AAA": 2, "BBB": 2}


async def test_the_first_bad_line_is_still_the_one_reported(db, monkeypatch):
    """The symbols are read ahead up to a line that cannot be read; a bad row in a batch
    before it is still what the import reports, and nothing is stored."""
    await _assets(db, "AAA")
    monkeypatch.setattr(cli, "BATCH_ROWS", 1)
    text = "symbol,date,close\nAAA,2025-01-02,10\nNOPE,2025-01-02,1\nAAA,2025-01-03\n"
    rows = cli.CsvRows(io.StringIO(text), cli.PRICE_COLUMNS, cli.PRICE_REQUIRED)
    with pytest.raises(cli.CsvProblem) as raised:
        async with unit_of_work(db) as session:
            await cli.import_prices(session, rows)
    assert (raised.value.line, raised.value.message) == (
        3,
        "unknown symbol 'NOPE': create the asset first",
    )
    # Without it, the unreadable line is reported.
    rows = cli.CsvRows(
        io.StringIO(text.replace("NOPE,2025-01-02", "AAA,2025-01-04")),
        cli.PRICE_COLUMNS,
        cli.PRICE_REQUIRED,
    )
    with pytest.raises(cli.CsvProblem) as raised:
        async with unit_of_work(db) as session:
            await cli.import_prices(session, rows)
    assert (raised.value.line, raised.value.message) == (4, "2 fields where the header has 3")
    assert await _stored(db) == {}


async def test_rows_that_cannot_be_read_again_are_refused(db):
    async with unit_of_work(db) as session:
        with pytest.raises(TypeError, match="twice"):
            await cli.import_prices(session, iter(_rows("AAA", 1)))
