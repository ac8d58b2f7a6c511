"""Short writing transactions straight on the SQLite driver, on the calling thread.

One movement through the ORM session took ~4 ms on SQLite, while its ten statements take
~0.2 ms inside SQLite (`benchmarks/bench_write_floor.py`). The rest was SQLAlchemy's session,
ORM and result machinery, and for every statement a hand-off to aiosqlite's thread and back
(0.1–0.2 ms of wake-ups each on a shared VM). A `DirectWriter` runs a whole short transaction
on a sqlite3 connection of the calling thread instead, with statements built as SQLAlchemy Core
and compiled once (`kit.prepared`): the same SQL, bound and read through the same column types.

- The transaction first takes the engine's writer turn (`kit.sqlite_driver`): it queues with
  the process's other writers, first come, first served.
- `BEGIN IMMEDIATE` runs with `busy_timeout` 0. When another process (a CLI journal import)
  holds SQLite's write lock, `WriterBusy` is raised at once instead of blocking the event loop;
  the caller then takes the regular path, which waits on aiosqlite's thread.
- The body of the transaction must not `await`: nothing else runs on the event loop meanwhile,
  so the loop is blocked for as long as SQLite works. For a movement that is ~0.2 ms, less
  than the hand-offs it saves. Only for short writes by key; anything long stays on the
  regular path.
- Its commits do not checkpoint the WAL (the connection that commits past 1,000 WAL pages
  would, with an fsync, blocking the loop for milliseconds): every `CHECKPOINT_EVERY` commits
  a PASSIVE checkpoint runs on a worker thread instead.

Like `kit.driver_reads`, the connections are this module's own (one per thread, configured
as the engine's), and go when the `Database` does or its engine is disposed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Mapping
from typing import Any

import structlog
from sqlalchemy.sql import Executable

from worthline.kit.db import Database, configure_sqlite
from worthline.kit.driver import PerDatabase, Prepared, ThreadConnections
from worthline.kit.sqlite_driver import TURN_TIMEOUT, OneTripDBAPI

CHECKPOINT_EVERY = 100
"""Direct commits between two checkpoints: about the 1,000 WAL pages after which SQLite's
own connections checkpoint (`wal_autocheckpoint`), at ten pages or so per movement."""

log = structlog.get_logger("worthline.db")


class WriterBusy(Exception):
    """SQLite's write lock is held by another process: take the regular path."""


class Transaction:
    """The statements of one direct transaction (see `DirectWriter.transaction`)."""

    __slots__ = ("_conn", "_instants", "_writer")

    def __init__(self, writer: DirectWriter, conn: sqlite3.Connection) -> None:
        self._writer = writer
        self._conn = conn
        self._instants: dict[Any, Any] = {}  # see `Prepared.args`

    def rows(self, stmt: Executable, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        prepared = self._writer.prepare(stmt)
        raw = self._conn.execute(prepared.sql, prepared.args(params, self._instants)).fetchall()
        return [prepared.row(r) for r in raw]

    def first(self, stmt: Executable, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        found = self.rows(stmt, params)
        return found[0] if found else None

    def run(self, stmt: Executable, params: Mapping[str, Any]) -> None:
        prepared = self._writer.prepare(stmt)
        self._conn.execute(prepared.sql, prepared.args(params, self._instants))


class DirectWriter:
    """Short writing transactions of one SQLite `Database` (see the module doc)."""

    def __init__(self, db: Database) -> None:
        assert db.dialect == "sqlite", "direct writes are for SQLite"
        self._engine = db.engine
        self._dbapi: OneTripDBAPI = db.engine.dialect.dbapi  # type: ignore[assignment]
        self._prepared: dict[int, tuple[Executable, Prepared]] = {}
        self._connections = ThreadConnections(db, _writer_setup)
        self._checkpoints = ThreadConnections(db, configure_sqlite)
        self._commits = 0
        self._checkpointing: asyncio.Future[None] | None = None

    @property
    def available(self) -> bool:
        """False for databases it cannot open a second connection to (in memory, URIs)."""
        return self._connections.path is not None and isinstance(self._dbapi, OneTripDBAPI)

    def prepare(self, stmt: Executable) -> Prepared:
        """`stmt` compiled once (kept by identity: for statements built once, at import)."""
        entry = self._prepared.get(id(stmt))
        if entry is None or entry[0] is not stmt:
            entry = (stmt, Prepared(stmt, self._engine.dialect))
            self._prepared[id(stmt)] = entry
        return entry[1]

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
                yield Transaction(self, conn)
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
    conn.execute("PRAGMA wal_autocheckpoint=0")  # `DirectWriter._checkpoint` does it


_writers = PerDatabase(DirectWriter)


def direct_writer(db: Database) -> DirectWriter | None:
    """The `DirectWriter` of a SQLite `db` (made on first use, dropped with it); None on
    other engines or where it cannot be used."""
    if db.dialect != "sqlite":
        return None
    writer = _writers(db)
    return writer if writer.available else None
