"""aiosqlite with one trip to its thread per statement.

aiosqlite runs each connection on its own thread and hands every call over to it: SQLAlchemy's
adapter makes three or four such calls per statement (open a cursor, execute, fetch the rows,
close the cursor). On a shared virtual machine one hand-off, there and back, costs 60–100 µs of
wake-ups, far more than most of our statements take inside SQLite (a few µs to a few hundred),
so a movement's ten statements spent most of their time waiting on threads.

This adapter keeps aiosqlite, its thread and SQLAlchemy's dialect, and changes two things:

- a statement (execute, then its rows, row count and last row id, then close) is one function
  run on the connection's thread, one hand-off. Server-side (streaming) cursors stay as they
  were. The hand-off uses `aiosqlite.Connection._execute`, the same private entry point
  aiosqlite's own cursor calls; the locked aiosqlite version pins it (every database test runs
  through here);
- writers of this process take turns in arrival order. SQLite has one writer at a time, and a
  writer that finds the database locked polls it from its busy handler with growing sleeps (up
  to 100 ms between tries): under many concurrent requests an unlucky one loses again and
  again and waits for seconds. Here a `BEGIN IMMEDIATE` (how `kit.db` opens every writing
  transaction) first waits for the engine's writer turn, an `asyncio.Lock` (first come, first
  served), held until that transaction's COMMIT or ROLLBACK has run. Only writers of other
  processes (a CLI import) still meet the busy handler. The wait is bounded like the busy
  handler's: after the busy timeout it fails as SQLite would ("database is locked").
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import weakref
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

Outcome = tuple[Any, list[Any], int, int | None]

BEGIN_WRITER = "BEGIN IMMEDIATE"
"""The statement `kit.db` opens writing transactions with: it waits for the writer turn."""
TURN_TIMEOUT = 30.0
"""Seconds a writer waits for its turn before failing (kit.db's SQLite busy_timeout)."""


def _run(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> Outcome:
    """On the connection's thread: the whole statement, and everything SQLAlchemy reads of it."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement is one hand-off to aiosqlite's thread."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor is opened: `_run` opens and closes a sqlite3 one per statement.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # `close()` then only clears rows
        self._soft_closed_memoized = EMPTY_DICT
        self._rows: collections.deque[Any] = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # the rows are all fetched with the statement

    async def _async_soft_close(self) -> None:
        pass  # nothing is open between statements

    async def _trip(self, operation: Any, parameters: Any, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            outcome: Outcome = await connection._execute(
                _run, connection._conn, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        if operation == BEGIN_WRITER:
            connection: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
            await connection.take_turn()
            try:
                await self._trip(operation, parameters, False)
            except BaseException:
                connection.end_turn()
                raise
            return
        await self._trip(operation, parameters, False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        await self._trip(operation, seq_of_parameters, True)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_turn", "_turn_loop")
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: OneTripDBAPI, connection: aiosqlite.Connection) -> None:
        super().__init__(dbapi, connection)
        self._turn: asyncio.Lock | None = None
        self._turn_loop: asyncio.AbstractEventLoop | None = None

    async def take_turn(self) -> None:
        """Wait for this engine's writer turn (see the module doc)."""
        assert self._turn is None, "a writing transaction is already open on this connection"
        dbapi: OneTripDBAPI = self.dbapi
        turn = dbapi.writer_turn()
        try:
            await asyncio.wait_for(turn.acquire(), TURN_TIMEOUT)
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._turn, self._turn_loop = turn, asyncio.get_running_loop()

    def end_turn(self) -> None:
        """Give the turn back, if this connection holds it; safe from any thread (a connection
        dropped by the garbage collector is terminated wherever that runs)."""
        turn, loop = self._turn, self._turn_loop
        self._turn = self._turn_loop = None
        if turn is None or loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            turn.release()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(turn.release)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_turn()

    def terminate(self) -> None:
        try:
            super().terminate()
        finally:
            self.end_turn()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module SQLAlchemy's aiosqlite dialect is given (`create_engine(module=...)`):
    one per engine, so it also keeps that engine's writer turns (one per event loop)."""

    def __init__(self, aiosqlite: Any, sqlite: Any) -> None:
        super().__init__(aiosqlite, sqlite)
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def writer_turn(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = asyncio.Lock()
        return turn

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def dbapi() -> OneTripDBAPI:
    return OneTripDBAPI(aiosqlite, sqlite3)
