"""Hot short reads by key, run as one driver call each: the per-request authorisation check
(`auth.repository`) and the balance-history read (`snapshots.repository`).

Every authenticated request checks in the database that its login session (or personal token)
is still valid. Through an ORM session that check was most of the request's CPU time: session
and transaction objects, the identity map, and on SQLite six hops to aiosqlite's thread. Here a
prebuilt Core SELECT is compiled once per engine and runs on the driver itself:

- PostgreSQL: a connection from the engine's own pool, one asyncpg `fetchrow` outside any
  transaction (the same per-statement READ COMMITTED snapshot as the read sessions), back to the
  pool.
- SQLite: a lookup by primary key answers in microseconds, less than one hop to aiosqlite's
  thread costs, so it runs on a `query_only` connection of the calling thread with
  `busy_timeout` 0 (in WAL mode readers do not wait for writers). Anything but an immediate
  answer (a lock, any error) falls back to a regular read session, which waits as usual.

Values are bound and read through the columns' SQLAlchemy types, exactly as the ORM would.
Nothing is remembered between calls: a revocation committed before a request starts is seen by
it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select
from sqlalchemy.util import greenlet_spawn

from worthline.kit.db import Database
from worthline.kit.driver import ByStatement, PerDatabase, Prepared, ThreadConnections

try:  # SQLAlchemy 2.1 name; 2.0 spells it `await_only`
    from sqlalchemy.util import await_ as _await
except ImportError:  # pragma: no cover
    from sqlalchemy.util import await_only as _await


class DriverReads:
    """Runs prebuilt SELECTs of one `Database` as single driver calls (see the module doc).

    Only for short reads by key whose statement is built once: each distinct statement object
    is compiled once and kept."""

    def __init__(self, db: Database) -> None:
        # Weakly: this object is kept per Database in a WeakKeyDictionary.
        self._db = weakref.ref(db)
        self._engine = db.engine
        self._postgres = db.dialect == "postgresql"
        dialect = db.engine.dialect  # (not `db`: this object must not keep it alive)
        self._prepare = ByStatement(lambda stmt: Prepared(stmt, dialect))
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._sqlite = ThreadConnections(db, _query_only) if db.dialect == "sqlite" else None

    async def first(self, stmt: Select[Any], params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row of `stmt` with `params`, or None."""
        prepared = self._prepare(stmt)
        if self._postgres:
            rows = await self._pg_fetch(prepared, prepared.args(params), one=True)
            return rows[0] if rows else None
        if self._sqlite is not None and self._sqlite.path is not None:
            try:
                rows = self._sqlite.get().execute(prepared.sql, prepared.args(params))
                found = rows.fetchall()  # exhausted: the statement's read snapshot ends here
            except sqlite3.Error:
                pass  # busy, locked or broken: the regular path waits, or reports it properly
            else:
                return prepared.row(found[0]) if found else None
        db = self._db()
        assert db is not None, "the Database was dropped"
        async with db.read_session() as session:
            row = (await session.execute(stmt, dict(params))).first()
        return tuple(row) if row is not None else None

    async def all(self, stmt: Select[Any], params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row of `stmt` with `params`, on PostgreSQL: the batched reads of
        `kit.coalesce` (SQLite answers single reads on the calling thread instead)."""
        assert self._postgres, "batched driver reads are for PostgreSQL"
        prepared = self._prepare(stmt)
        return await self._pg_fetch(prepared, prepared.args(params), one=False)

    async def _pg_fetch(
        self, prepared: Prepared, args: list[Any], *, one: bool
    ) -> list[tuple[Any, ...]]:
        # At most pool_size lookups at once: beyond that, the pool would open overflow
        # connections and close them again at check-in (a new connection per lookup under
        # load); waiting here for a pooled one is much cheaper.
        async with self._pg_slots():
            return await greenlet_spawn(self._pg_rows, prepared, args, one)

    def _pg_slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            size = getattr(self._engine.sync_engine.pool, "size", None)
            slots = self._slots[loop] = asyncio.Semaphore(max(1, size() if size else 5))
        return slots

    def _pg_rows(self, prepared: Prepared, args: list[Any], one: bool) -> list[tuple[Any, ...]]:
        # Runs in a greenlet: the pool may have to connect, and checking in may close.
        fairy = self._engine.sync_engine.raw_connection()
        try:
            # No transaction is open on a pooled connection: asyncpg runs this in autocommit.
            driver = fairy.driver_connection
            if one:
                raw = _await(driver.fetchrow(prepared.sql, *args))
                found = [raw] if raw is not None else []
            else:
                found = _await(driver.fetch(prepared.sql, *args))
        except BaseException:
            fairy.invalidate()  # interrupted mid-statement: do not hand this connection on
            raise
        finally:
            fairy.close()
        return [prepared.row(raw) for raw in found]


def _query_only(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA query_only=ON")
    conn.execute("PRAGMA busy_timeout=0")


driver_reads = PerDatabase(DriverReads)
"""`driver_reads(db)`: the `DriverReads` of `db`, made on first use and dropped with it."""
