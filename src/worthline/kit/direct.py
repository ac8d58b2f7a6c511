"""Short writing transactions straight on the driver, in as few trips as the engine allows.

One movement through the ORM session took ~4 ms on SQLite and ~5 ms on PostgreSQL, while its
statements take ~0.2 ms inside SQLite (`benchmarks/bench_write_floor.py`). The rest was
SQLAlchemy's session, ORM and result machinery, and for every statement a trip to the driver
and back: on SQLite a hand-off to aiosqlite's thread, on PostgreSQL a network round trip
(0.1–0.3 ms each on a shared VM, eleven per movement). A direct writer runs a whole short
transaction on the driver instead, with statements built as SQLAlchemy Core and compiled once
(`kit.driver.Prepared`): the same SQL, bound and read through the same column types.

The caller hands its statements over in batches (`Transaction.batch`): what it must read
before it can decide, then what it writes (`last=True`).

**SQLite** (`SqliteWriter`): a sqlite3 connection of the calling thread.
- The transaction first takes the engine's writer turn (`kit.sqlite_driver`): it queues with
  the process's other writers, first come, first served.
- `BEGIN IMMEDIATE` runs with `busy_timeout` 0. When another process (a CLI journal import)
  holds SQLite's write lock, `WriterBusy` is raised at once instead of blocking the event loop;
  the caller then takes the regular path, which waits on aiosqlite's thread.
- `batch` runs the statements at once and never suspends, so nothing else runs on the event
  loop meanwhile; the block between batches must not suspend either (no `await` other than
  `batch`). For a movement that is ~0.3 ms, less than the hand-offs it saves. Only for short
  writes by key; anything long stays on the regular path.
- Its commits do not checkpoint the WAL (the connection that commits past 1,000 WAL pages
  would, with an fsync, blocking the loop for milliseconds): every `CHECKPOINT_EVERY` commits
  a PASSIVE checkpoint runs on a worker thread instead.

**PostgreSQL** (`PostgresWriter`): one round trip per batch. asyncpg sends one statement per
round trip; psycopg can send a whole batch as one query string, whose results come back
together (`AsyncClientCursor`). The first batch starts with `BEGIN`, the last ends with
`COMMIT`: a movement is two round trips instead of eleven.
- Each statement is `PREPARE`d on a connection the first time it runs there (in the same
  trip), then run as `EXECUTE name(values)`, its values written as SQL literals (`_literal`:
  integers, UUIDs, UTC datetimes and dates directly, anything else by psycopg's quoting). A
  connection whose batch failed while preparing is discarded: which statements it holds is
  not known.
- The connections come from an engine of the writer's own (psycopg, autocommit, so that only
  the batches' `BEGIN` and `COMMIT` delimit transactions) and stay checked out between
  transactions, at most the main pool's size of them. When all are in use, a transaction
  waits for the first one given back, first come first served, for at most
  `CONNECTION_WAIT`. When that wait runs out, or the first batch finds its connection gone (a
  server restart; nothing written yet), `WriterBusy` sends the caller the regular way rather
  than failing.
- Locks are taken by the statements themselves, in the same order as on the regular path.

Like `kit.driver_reads`, the connections are this module's own, and go when the `Database`
does (`Database.dispose`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import sqlite3
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple, Protocol

import psycopg
import structlog
from psycopg import sql
from psycopg.pq import ExecStatus, TransactionStatus
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.sql import Executable
from sqlalchemy.util import greenlet_spawn

from worthline.kit.db import Database, configure_sqlite
from worthline.kit.driver import ByStatement, PerDatabase, Prepared, ThreadConnections
from worthline.kit.sqlite_driver import TURN_TIMEOUT, OneTripDBAPI

TUPLES_OK = ExecStatus.TUPLES_OK
CONNECTION_WAIT = 0.1
"""Seconds a PostgreSQL movement waits for a direct connection when all are in use, before it
takes the regular path. A movement holds one for a few milliseconds, so a burst of requests
beyond the pool's size is served faster by waiting than by the regular path (eleven round
trips, and a connection of the main pool); a connection held longer (a movement waiting on a
lock) costs the others at most this before they go the regular way."""
CHECKPOINT_EVERY = 100
"""Direct commits between two checkpoints (SQLite): about the 1,000 WAL pages after which
SQLite's own connections checkpoint (`wal_autocheckpoint`), at ten pages or so per movement."""

log = structlog.get_logger("worthline.db")

Statements = Sequence[tuple[Executable, Mapping[str, Any]]]


class WriterBusy(Exception):
    """The direct writer cannot go on, with nothing written (SQLite's write lock is held by
    another process; every direct PostgreSQL connection stayed in use for
    `CONNECTION_WAIT`, or the one taken was lost): take the regular path."""


class Transaction(Protocol):
    """The statements of one direct transaction (see the module doc)."""

    dialect: str

    async def batch(
        self, statements: Statements, *, last: bool = False
    ) -> list[list[tuple[Any, ...]]]:
        """Run `statements` in order, in one trip, and return each one's rows ([] for those
        that return none). `last`: nothing follows in this transaction (PostgreSQL commits in
        the same trip). A failing statement raises the driver's error; the transaction then
        rolls back when the block ends."""
        ...


class _SqliteTransaction:
    __slots__ = ("_conn", "_instants", "_prepare")
    dialect = "sqlite"

    def __init__(self, prepare: ByStatement[Prepared], conn: sqlite3.Connection) -> None:
        self._prepare = prepare
        self._conn = conn
        self._instants: dict[Any, Any] = {}  # see `Prepared.args`

    async def batch(
        self, statements: Statements, *, last: bool = False
    ) -> list[list[tuple[Any, ...]]]:
        results = []  # never suspends: see the module doc
        for stmt, params in statements:
            prepared = self._prepare(stmt)
            raw = self._conn.execute(prepared.sql, prepared.args(params, self._instants))
            results.append([prepared.row(r) for r in raw.fetchall()])
        return results


class SqliteWriter:
    """Short writing transactions of one SQLite `Database` (see the module doc)."""

    def __init__(self, db: Database) -> None:
        assert db.dialect == "sqlite", "a SqliteWriter is for SQLite"
        dialect = db.engine.dialect  # (not `db`: this object must not keep it alive)
        self.prepare = ByStatement(lambda stmt: Prepared(stmt, dialect))
        self._dbapi: OneTripDBAPI = db.engine.dialect.dbapi  # type: ignore[assignment]
        self._connections = ThreadConnections(db, _writer_setup)
        self._checkpoints = ThreadConnections(db, configure_sqlite)
        self._commits = 0
        self._checkpointing: asyncio.Future[None] | None = None

    @property
    def available(self) -> bool:
        """False for databases it cannot open a second connection to (in memory, URIs)."""
        return self._connections.path is not None and isinstance(self._dbapi, OneTripDBAPI)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One transaction: committed when the block ends, rolled back if it raises. Raises
        `WriterBusy` before the block runs when another process holds the write lock."""
        turn = self._dbapi.writer_turn()
        if turn.locked():
            try:
                await asyncio.wait_for(turn.acquire(), TURN_TIMEOUT)
            except TimeoutError:
                raise sqlite3.OperationalError("database is locked") from None
        else:
            await turn.acquire()  # free: returns at once
        try:
            conn = self._connections.get()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise WriterBusy(str(exc)) from exc
            try:
                yield _SqliteTransaction(self.prepare, conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            turn.release()
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0 and self._checkpointing is None:
            running = asyncio.get_running_loop().run_in_executor(None, self._checkpoint)
            running.add_done_callback(self._checkpoint_done)
            self._checkpointing = running

    def _checkpoint(self) -> None:
        """On a worker thread: copy what the WAL holds into the database file, as far as
        readers allow (PASSIVE: it waits for nobody, and writers go on meanwhile)."""
        try:
            self._checkpoints.get().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # the next one catches up; a writer's commit is safe
            log.warning("sqlite.checkpoint_failed", error=str(exc))

    def _checkpoint_done(self, _: asyncio.Future[None]) -> None:
        self._checkpointing = None


def _writer_setup(conn: sqlite3.Connection) -> None:
    configure_sqlite(conn)  # as the engine's connections
    conn.execute("PRAGMA busy_timeout=0")  # never wait with the event loop blocked
    conn.execute("PRAGMA wal_autocheckpoint=0")  # `SqliteWriter._checkpoint` does it


class _Named(NamedTuple):
    """A statement as a direct PostgreSQL transaction runs it: prepared on the server once per
    connection (`prepare`), then `execute`d with its values written in (`_literal`)."""

    prepared: Prepared
    name: str
    prepare: str
    execute: str


class _PostgresTransaction:
    __slots__ = ("_cursor", "_instants", "_ready", "_writer", "state", "unsure")
    dialect = "postgresql"

    def __init__(
        self, writer: PostgresWriter, conn: psycopg.AsyncConnection[Any], ready: set[str]
    ) -> None:
        self._writer = writer
        self._cursor = psycopg.AsyncClientCursor(conn)
        self._instants: dict[Any, Any] = {}
        self._ready = ready  # the statements this connection has prepared
        self.state = "new"  # then "open" (BEGIN sent), then "done" (COMMIT sent)
        self.unsure = False  # a batch that prepared statements failed: which exist is unknown

    async def batch(
        self, statements: Statements, *, last: bool = False
    ) -> list[list[tuple[Any, ...]]]:
        assert self.state != "done", "this transaction has committed"
        named = [self._writer.named(stmt) for stmt, _ in statements]
        fresh = {each.name: each.prepare for each in named if each.name not in self._ready}
        texts = list(fresh.values())  # each once, though a batch may run it twice
        if texts:
            self.unsure = True  # until the batch has run
        began = self.state == "new"
        if began:
            texts.append("BEGIN")
        conn = self._cursor.connection
        for each, (_, params) in zip(named, statements, strict=True):
            values = each.prepared.distinct_args(params, self._instants)
            if values:
                texts.append(f"{each.execute}({', '.join(_literal(v, conn) for v in values)})")
            else:
                texts.append(each.execute)
        if last:
            texts.append("COMMIT")
        self.state = "open"
        cursor = self._cursor
        try:
            await cursor.execute(";\n".join(texts))  # no parameters: sent as it is
        except psycopg.OperationalError as exc:
            if began:  # the connection is gone (a server restart), nothing was written
                raise WriterBusy(str(exc)) from exc
            raise
        if self.unsure:
            self._ready.update(each.name for each in named)
            self.unsure = False
            for _ in fresh:
                cursor.nextset()  # the PREPAREs' results
        if began:
            cursor.nextset()
        results = []
        for each in named:
            result = cursor.pgresult  # (not `description`: it builds column objects)
            rows = await cursor.fetchall() if result and result.status == TUPLES_OK else []
            results.append([each.prepared.row(r) for r in rows])
            cursor.nextset()
        if last:
            self.state = "done"
        return results


class PostgresWriter:
    """Short writing transactions of one PostgreSQL `Database` (see the module doc)."""

    def __init__(self, db: Database) -> None:
        assert db.dialect == "postgresql", "a PostgresWriter is for PostgreSQL"
        pool = db.engine.sync_engine.pool
        self.size = max(1, pool.size() if hasattr(pool, "size") else 5)
        self._engine = create_async_engine(
            db.engine.url.set(drivername="postgresql+psycopg"),
            isolation_level="AUTOCOMMIT",  # the batches say BEGIN and COMMIT
            paramstyle="format",  # positional, for `Prepared`
            pool_size=self.size,
            max_overflow=0,
            pool_reset_on_return=None,  # given back outside any transaction, or discarded
            connect_args={"options": "-c timezone=UTC"},  # as the main engine's
        )
        self.named = ByStatement(self._name)
        self._names = itertools.count()
        self._in_use = 0  # slots taken: connections in use, or handed to a waiter
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        # Connections kept checked out between transactions (at most `size` with those in
        # use): the pool's check-out and check-in cost more than a whole batch's binding.
        self._idle: list[Any] = []
        db.on_dispose(self._dispose)

    async def _dispose(self) -> None:
        idle, self._idle = self._idle, []
        for fairy in idle:
            await greenlet_spawn(fairy.close)
        await self._engine.dispose()

    def _name(self, stmt: Executable) -> _Named:
        prepared = Prepared(stmt, self._engine.dialect)
        name = f"worthline_direct_{next(self._names)}"
        prepare = f"PREPARE {name} AS {prepared.numbered_sql()}"
        return _Named(prepared, name, prepare, f"EXECUTE {name}")

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One transaction: committed by the `last` batch (or when the block ends), rolled
        back if the block raises. Raises `WriterBusy` before the block runs when every
        connection stayed in use for `CONNECTION_WAIT`."""
        await self._take()
        try:
            if self._idle:
                fairy = self._idle.pop()
            else:
                try:
                    fairy = await greenlet_spawn(self._engine.sync_engine.raw_connection)
                except Exception as exc:  # e.g. a URL option psycopg does not take: as busy
                    log.warning("postgresql.direct_connect_failed", error=str(exc))
                    raise WriterBusy(str(exc)) from exc
            conn: psycopg.AsyncConnection[Any] = fairy.driver_connection  # type: ignore[assignment]
            txn = _PostgresTransaction(self, conn, fairy.info.setdefault(_READY, set()))
            try:
                yield txn
                if txn.state == "open":
                    await conn.execute("COMMIT")
            except BaseException:
                await _abandon(fairy, conn, discard=txn.unsure)
                raise
            finally:
                if fairy.is_valid:
                    self._idle.append(fairy)
                else:
                    await greenlet_spawn(fairy.close)
        finally:
            self._give()

    async def _take(self) -> None:
        """A connection's slot: at once if one is free, else the first given back, waiting
        at most `CONNECTION_WAIT` (then `WriterBusy`)."""
        if self._in_use < self.size and not self._waiting:
            self._in_use += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(CONNECTION_WAIT):
                await waiter  # `_give` hands its slot over: `_in_use` stays as it is
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._give()  # handed a slot just as the wait ended: pass it on
            if isinstance(exc, TimeoutError):
                raise WriterBusy("every direct connection is in use") from None
            raise

    def _give(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():  # (one that timed out or was cancelled is done)
                waiter.set_result(None)
                return
        self._in_use -= 1


_READY = "worthline.direct.prepared"


def _literal(value: Any, conn: psycopg.AsyncConnection[Any]) -> str:
    """`value` as a SQL literal. The types every movement binds many times (integers, UUIDs,
    UTC datetimes, dates) are written here, where their text can hold no quote; anything else
    (text, decimals, JSON) psycopg quotes (`sql.Literal`, libpq's escaping). Through psycopg
    alone the ~60 values of a movement cost ~0.13 ms, a tenth of its Python time."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is uuid.UUID:
        return f"'{value}'::uuid"
    if kind is datetime and value.tzinfo is not None:
        return f"'{value.isoformat()}'::timestamptz"
    if kind is date:
        return f"'{value.isoformat()}'::date"
    if value is None:
        return "NULL"
    return sql.Literal(value).as_string(conn)


async def _abandon(fairy: Any, conn: psycopg.AsyncConnection[Any], *, discard: bool) -> None:
    """Roll back what a failed block began. A connection left mid-query (cancelled), broken,
    or unsure of which statements it has prepared is discarded rather than handed on."""
    status = conn.info.transaction_status
    if discard:
        fairy.invalidate()
        return
    if status == TransactionStatus.IDLE:
        return
    if status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        try:
            await conn.execute("ROLLBACK")
            return
        except Exception as exc:  # broken: discarded below
            log.warning("postgresql.rollback_failed", error=str(exc))
        except BaseException:
            fairy.invalidate()
            raise
    fairy.invalidate()


def _make(db: Database) -> SqliteWriter | PostgresWriter:
    return PostgresWriter(db) if db.dialect == "postgresql" else SqliteWriter(db)


_writers = PerDatabase(_make)

DirectWriter = SqliteWriter | PostgresWriter


def direct_writer(db: Database) -> DirectWriter | None:
    """The direct writer of `db` (made on first use, dropped with it); None where it cannot
    be used (SQLite in memory or behind a URI with options, other engines)."""
    if db.dialect not in ("sqlite", "postgresql"):
        return None
    writer = _writers(db)
    if isinstance(writer, SqliteWriter) and not writer.available:
        return None
    return writer
