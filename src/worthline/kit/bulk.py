"""Bulk inserts for import paths: binary COPY on PostgreSQL, one JSON-fed INSERT on SQLite.

Values are converted per column once per column *type*, to exactly what the ORM's types store
(a UUID as 32 hex characters and a UTC datetime as fixed-width text on SQLite; native values for
asyncpg), and handed to the driver as tuples: SQLAlchemy's general per-value processing costs
more than the rest of a journal import together. Any type without a fast path goes through its
own bind processor, so nothing is ever stored differently from an ordinary insert.

On SQLite a chunk is one statement, `INSERT … SELECT json_extract(value, '$[0]'), … FROM
json_each(?)`, with the rows as one JSON array: the driver then binds one value and runs the
whole insert without Python's GIL. Its `executemany` takes the GIL back for every row, and
while the caller keeps the GIL busy (parsing the next chunk) each of those hand-backs waits
for the interpreter's switch interval: measured, 10,000 rows took ten times as long. JSON
carries integers of up to 64 bits exactly (orjson refuses larger ones) and text with any
escape exactly.

`Writer` keeps one chunk in flight on the session's own connection (the same transaction)
while the caller builds the next. On SQLite a chunk's statements go to aiosqlite's thread in
one hand-off (`aiosqlite.Connection._execute`, the private entry point `kit.sqlite_driver`
also uses; the locked aiosqlite version pins it), so that they run back to back.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Boolean, Column, Date, Table, Uuid
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType, TypeEngine

from worthline.kit.db import UTCDateTime
from worthline.kit.ids import uuid7

Converter = Callable[[Any], Any] | None
Records = Sequence[tuple[Any, ...]]


def _sqlite_datetime(value: datetime) -> str:
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
    # 'YYYY-MM-DD HH:MM:SS.ffffff+00:00' without its zone: the fixed-width form the ORM stores.
    return value.isoformat(" ", "microseconds")[:26]


def _pg_datetime(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value


def _uuid_text(value: Any) -> str:
    # Ids made by `IdBlock` are already the 32 hex characters SQLite stores.
    return value if type(value) is str else value.hex


def converter(column: Column[Any], dialect: Dialect) -> Converter:
    """What turns a Python value for `column` into what the driver stores (None: as it is).
    A UUID may also be given as 32 lower-case hex characters (`IdBlock`), on both engines."""
    column_type = column.type
    if isinstance(column_type, NullType) and column.foreign_keys:
        # A foreign key takes its type from the column it references, once that table is
        # known; resolve it here rather than depend on what the caller happened to import.
        column_type = next(iter(column.foreign_keys)).column.type
    return type_converter(column_type, dialect)


def type_converter(column_type: TypeEngine[Any], dialect: Dialect) -> Converter:
    """`converter` for a type: the fast paths of the types a write binds most, on SQLite the
    very text SQLAlchemy's own processors make; any other type's own bind processor."""
    sqlite = dialect.name == "sqlite"
    if isinstance(column_type, UTCDateTime):
        return _sqlite_datetime if sqlite else _pg_datetime
    if isinstance(column_type, Uuid):
        return _uuid_text if sqlite else None  # asyncpg takes a UUID or its hex text
    if isinstance(column_type, Boolean):
        return int if sqlite else None
    if isinstance(column_type, Date):
        return date.isoformat if sqlite else None
    return column_type._cached_bind_processor(dialect)


def _check_columns(table: Table, columns: Sequence[str]) -> None:
    unknown = set(columns) - set(table.c.keys())
    if unknown:
        raise KeyError(f"{table.name} has no column {', '.join(sorted(unknown))}")


async def bulk_insert(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows keyed by column name; an unknown key is an error, never silently dropped."""
    if not rows:
        return
    columns = list(rows[0])
    _check_columns(table, columns)
    dialect = session.bind.dialect
    converters = [converter(table.c[c], dialect) for c in columns]
    records = [
        tuple(
            value if convert is None or value is None else convert(value)
            for value, convert in zip([row[c] for c in columns], converters, strict=True)
        )
        for row in rows
    ]
    writer = await Writer.open(session)
    await writer.insert(table, columns, records)


def _json_insert(table: Table, columns: Sequence[str], varying: Sequence[int]) -> str:
    """`INSERT … SELECT … FROM json_each(?1)`: the `varying` columns from each JSON row (the
    row itself when it is one value), the others bound as ?2, ?3, … in column order."""
    names = ", ".join(f'"{c}"' for c in columns)
    values, parameter = [], 2
    for i in range(len(columns)):
        if i in varying:
            # json_extract rather than `->>`, which needs SQLite 3.38 (Python 3.11 may link
            # an older one; JSON1 is in every build it supports).
            position = varying.index(i)
            values.append("value" if len(varying) == 1 else f"json_extract(value, '$[{position}]')")
        else:
            values.append(f"?{parameter}")
            parameter += 1
    # Names come from the Table and were checked against it: nothing user-supplied.
    return (
        f'INSERT INTO "{table.name}" ({names}) '  # noqa: S608
        f"SELECT {', '.join(values)} FROM json_each(?1)"
    )


SQLITE_CACHE_KIB = 65_536
"""SQLite's page cache while a bulk write runs (its default is 2 MiB). A journal import adds
rows at about a thousand places in each index of `movements` and in `balances_live` (one per
account); with the default cache those pages kept being evicted and read back, and the
import's inserts took 1.6 times as long (200,000 movements). The memory is given back after."""


@asynccontextmanager
async def roomy_cache(session: AsyncSession, kib: int = SQLITE_CACHE_KIB) -> AsyncIterator[None]:
    """A larger SQLite page cache for this session's connection while the block runs; nothing
    on PostgreSQL, whose buffers are the server's."""
    if session.bind.dialect.name != "sqlite":
        yield
        return
    connection = await session.connection()
    before = (await connection.exec_driver_sql("PRAGMA cache_size")).scalar_one()
    await connection.exec_driver_sql(f"PRAGMA cache_size = {-int(kib)}")
    try:
        yield
    finally:
        await connection.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")


class Writer:
    """Inserts of already converted records (see `converter`) on the session's connection,
    so in its transaction, with at most one batch of inserts in flight.

    `submit` waits for the batch before it, then starts this one in the background and
    returns: the database works on it while the caller builds the next. A failed batch raises
    from the next `submit` or from `settle`, which also waits for the batch in flight: call it
    before any other use of the session, and before leaving (also on error: `close`)."""

    def __init__(self, session: AsyncSession, driver: Any, dialect: Dialect) -> None:
        self.session = session
        self.dialect = dialect
        self._driver = driver
        self._sqlite = dialect.name == "sqlite"
        self._statements: dict[tuple[str, tuple[str, ...]], str] = {}
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, session: AsyncSession) -> Writer:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        return cls(session, raw.driver_connection, session.bind.dialect)

    def converter(self, column: Column[Any]) -> Converter:
        return converter(column, self.dialect)

    async def insert(self, table: Table, columns: Sequence[str], records: Records) -> None:
        """Insert now and wait for it (after the batch in flight, if any)."""
        work = self._prepare([(table, columns, records)])
        await self.settle()
        await self._run(work)

    async def submit(self, batch: Sequence[tuple[Table, Sequence[str], Records]]) -> None:
        """Start inserting these (table, columns, records), in order, in the background."""
        work = self._prepare(batch)  # while the batch before may still be being written
        await self.settle()
        self._task = asyncio.ensure_future(self._run(work))
        await asyncio.sleep(0)  # let it hand the batch (SQLite) or its first COPY to the driver

    async def settle(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await task

    async def close(self) -> None:
        """Wait for the batch in flight, ignoring its failure: for leaving on another error
        (the transaction is rolled back anyway, but never while a statement still runs)."""
        with suppress(Exception):
            await self.settle()

    def _prepare(self, batch: Sequence[tuple[Table, Sequence[str], Records]]) -> list[Any]:
        """What `_run` sends: on SQLite each insert's statement and values (the JSON made
        here, in the caller's time, not the database's), else the non-empty inserts."""
        batch = [(table, columns, records) for table, columns, records in batch if records]
        return [self._sqlite_statement(*insert) for insert in batch] if self._sqlite else batch

    async def _run(self, work: list[Any]) -> None:
        if self._sqlite:
            # The whole batch in one hand-off to aiosqlite's thread. One statement at a time,
            # SQLite sat idle between them until the caller, busy building the next batch,
            # gave the event loop a turn (a journal import took a fifth longer, measured).
            if work:
                await self._driver._execute(_run_statements, self._driver._conn, work)
            return
        for table, columns, records in work:
            await self._driver.copy_records_to_table(
                table.name, records=records, columns=list(columns)
            )

    def _sqlite_statement(
        self, table: Table, columns: Sequence[str], records: Records
    ) -> tuple[str, tuple[Any, ...]]:
        """The one `INSERT … SELECT … FROM json_each(?)` of these records, with its values.

        A column whose value is the same in every record (a user id, the import's time) is
        bound once instead of repeated in the JSON: half of SQLite's work on a journal's rows
        was reading them back out of the JSON."""
        first, last = records[0], records[-1]
        same = [
            i
            for i in range(len(columns))
            if first[i] == last[i] and len(set(map(itemgetter(i), records))) == 1
        ]
        varying = [i for i in range(len(columns)) if i not in same] or [0]
        same = [i for i in same if i not in varying]
        key = (table.name, tuple(columns), tuple(same))
        statement = self._statements.get(key)
        if statement is None:
            _check_columns(table, columns)
            statement = self._statements[key] = _json_insert(table, columns, varying)
        rows = records if len(varying) == len(columns) else list(map(itemgetter(*varying), records))
        return statement, (orjson.dumps(rows).decode(), *(first[i] for i in same))


def _run_statements(conn: sqlite3.Connection, statements: Sequence[tuple[str, Any]]) -> None:
    """On the connection's thread (aiosqlite's): run them in order."""
    for statement, parameters in statements:
        conn.execute(statement, parameters).close()


def time_ordered_ids() -> Iterator[str]:
    """Time-ordered UUIDs (version 7) for bulk inserts, as the 32 hex characters `converter`
    takes for a UUID column, several times cheaper each than `uuid7()`: each block of 2**20
    ids takes one `uuid7()` and counts up in the low 20 bits of its random part (RFC 9562
    §6.2, method 2). The ids of one generator increase; a block sorts after every id this
    process made before it began, and other processes' ids differ in the millisecond, the
    counter or the other 42 random bits."""
    while True:
        base = uuid7().int >> _ID_BITS << _ID_BITS
        for number in range(base, base + (1 << _ID_BITS)):
            yield f"{number:032x}"


_ID_BITS = 20
