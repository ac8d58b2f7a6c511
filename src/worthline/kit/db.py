"""Database engines, column types and the unit of work.

One code path for both engines: SQLite (aiosqlite) for the embedded default and PostgreSQL
(asyncpg) to scale out, chosen by the URL alone. Column types here behave the same on both:
exact decimals, timezone-aware UTC datetimes, UUIDs and JSON (JSONB on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Context, Decimal
from pathlib import Path
from typing import Any, NewType, TypeVar

import orjson
from sqlalchemy import JSON, BigInteger, DateTime, MetaData, Numeric, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, SessionTransaction, mapped_column
from sqlalchemy.orm import Session as SyncSession
from sqlalchemy.types import TypeDecorator

from worthline.kit import sqlite_driver
from worthline.kit.money import percent_change

T = TypeVar("T")

# Tell a session that may write from one that only reads (Polar's kit/db/postgres.py habit).
WriteSession = NewType("WriteSession", AsyncSession)
ReadSession = NewType("ReadSession", AsyncSession)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both engines (SQLite keeps no zone; we put it back).

    Naive datetimes are refused at bind time: a timestamp without a zone is a bug, not UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite stores text; a fixed-width naive UTC form keeps ordering lexicographic.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal with a fixed number of places on both engines.

    PostgreSQL: NUMERIC(38, scale). SQLite has no exact decimal, so the value is stored as a
    scaled 64-bit integer (sums and comparisons stay exact and in SQL). A float, or a value with
    more places than the column holds, is refused rather than rounded."""

    impl = Numeric
    cache_ok = True

    def __init__(self, scale: int, precision: int = 38) -> None:
        super().__init__()
        self.scale = scale
        self.precision = precision
        self._quantum = Decimal(1).scaleb(-scale)
        # The default context holds 28 digits; NUMERIC(38, s) values (and their SUMs) hold more,
        # and quantize() beyond the context's precision raises instead of returning them.
        self._context = Context(prec=2 * precision)

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float | bool) or not isinstance(value, Decimal | int):
            raise TypeError(f"ExactDecimal takes Decimal or int, not {type(value).__name__}")
        value = Decimal(value)
        if not value.is_finite():
            raise ValueError("ExactDecimal takes finite values only")
        if value.as_tuple().exponent < -self.scale and value != value.quantize(
            self._quantum, context=self._context
        ):
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        if dialect.name == "sqlite":
            return int(value.scaleb(self.scale))
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.scale).quantize(self._quantum)
        return Decimal(value).quantize(self._quantum, context=self._context)


JSONType = JSON().with_variant(JSONB(), "postgresql")

SQLITE_PERCENT_FUNCTION = "worthline_percent_change"
"""The SQLite function behind `kit.sql.change_percent` (registered on every connection)."""
SQLITE_JSON_NUMBER_FUNCTION = "worthline_json_number"
"""The SQLite function behind `kit.sql.json_percent` (registered on every connection)."""


def _json_number(value: float | None) -> str:
    """A REAL as the JSON orjson writes for it: SQLite has no shortest float-to-text."""
    return "null" if value is None else orjson.dumps(float(value)).decode()


SQLITE_ADD_INTEGERS_FUNCTION = "worthline_add_integers"
"""The SQLite function behind `kit.sql.add_integer_text` (registered on every connection)."""


def _add_integers(a: str | int | None, b: str | int | None) -> str | None:
    """Two integers written as decimal text, added exactly at any size: SQLite's own integer
    addition turns into a float past 64 bits."""
    return None if a is None or b is None else str(int(a) + int(b))


# Stable constraint names: Alembic needs them to alter tables on SQLite.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class CreatedAt:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
)


def configure_sqlite(dbapi_connection: Any) -> None:
    """What every SQLite connection of ours needs: explicit transactions, WAL, foreign keys,
    and the functions our SQL calls. Takes a sqlite3 connection or SQLAlchemy's adapter of
    one (`kit.direct` opens its own)."""
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()
    # Exact percentages for `kit.sql.change_percent` (PostgreSQL computes them in NUMERIC).
    dbapi_connection.create_function(SQLITE_PERCENT_FUNCTION, 2, percent_change, deterministic=True)
    dbapi_connection.create_function(
        SQLITE_JSON_NUMBER_FUNCTION, 1, _json_number, deterministic=True
    )
    dbapi_connection.create_function(
        SQLITE_ADD_INTEGERS_FUNCTION, 2, _add_integers, deterministic=True
    )


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    """`configure_sqlite` on connect, and explicit transactions: `BEGIN IMMEDIATE` for writing
    sessions, so that SQLite's single writer is taken at the start (no lock upgrade midway, no
    deadlock)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        configure_sqlite(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("worthline_read", False):
            return  # reads run per statement (autocommit), as on PostgreSQL: see Database
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("worthline_write") else "BEGIN")


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        if parsed.get_driver_name() == "aiosqlite":
            kwargs.setdefault("module", sqlite_driver.dbapi())  # one thread hop per statement
        engine = create_async_engine(url, **kwargs)
        _sqlite_pragmas(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("connect_args", {"server_settings": {"timezone": "UTC"}})
    return create_async_engine(url, **kwargs)


class Database:
    """The engine and the two session factories of one process."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.dialect = self.engine.dialect.name
        writer = self.engine.execution_options(worthline_write=True)
        # Read sessions run each statement on its own (autocommit): for hot reads of one
        # statement, where BEGIN/ROLLBACK would only cost two more round trips. Snapshot
        # sessions hold one transaction whose statements all see the same state: REPEATABLE
        # READ, READ ONLY on PostgreSQL (its default READ COMMITTED takes a snapshot per
        # statement); a deferred BEGIN on SQLite (WAL: the snapshot of the first read).
        if self.dialect == "postgresql":
            reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            snapshot = self.engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        else:
            reader = self.engine.execution_options(worthline_read=True)
            snapshot = self.engine
        self._read = async_sessionmaker(reader, expire_on_commit=False, autoflush=False)
        self._snapshot = async_sessionmaker(snapshot, expire_on_commit=False, autoflush=False)
        self._write = async_sessionmaker(writer, expire_on_commit=False, autoflush=False)
        # Called with what the unit of work queued by `after_commit`, once it has committed.
        self.on_commit: Callable[[list[Any]], Awaitable[None]] | None = None
        self._on_dispose: list[Callable[[], Awaitable[None]]] = []

    def read_session(self) -> ReadSession:
        return ReadSession(self._read())

    def snapshot_session(self) -> ReadSession:
        """A read inside one transaction: every statement sees the same snapshot (a figure
        composed of several reads never mixes states from before and after a write), and
        results can stream through a server-side cursor (PostgreSQL needs a transaction for
        that). Every GET's `Session`, and long reads such as a journal export; it takes no
        write lock and cannot write."""
        return ReadSession(self._snapshot())

    def write_session(self) -> WriteSession:
        return WriteSession(self._write())

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def on_dispose(self, close: Callable[[], Awaitable[None]]) -> None:
        """Have `dispose()` also run `close` (a helper's own connections, `kit.direct`)."""
        self._on_dispose.append(close)

    async def dispose(self) -> None:
        await self.engine.dispose()
        for close in self._on_dispose:
            await close()


_AFTER_COMMIT = "worthline.after_commit"
_BEFORE_COMMIT = "worthline.before_commit"


def before_commit(
    session: AsyncSession, key: Any, work: Callable[[AsyncSession], Awaitable[None]]
) -> None:
    """Run `work(session)` once, just before the unit of work commits, inside its transaction
    (so what it writes commits or rolls back with the rest). Registering the same `key` again
    keeps the first: derived state (a user's net worth) is recomputed once per transaction
    however many changes asked for it."""
    session.sync_session.info.setdefault(_BEFORE_COMMIT, {}).setdefault(key, work)


def after_commit(session: AsyncSession, item: Any) -> None:
    """Queue `item` for `Database.on_commit`, delivered once the unit of work has committed.

    Dropped if the transaction (or the savepoint) that queued it rolls back, so a retried
    savepoint or a failed commit delivers nothing twice and nothing that was not stored."""
    sync = session.sync_session
    transaction = sync.get_nested_transaction() or sync.get_transaction()
    sync.info.setdefault(_AFTER_COMMIT, []).append((transaction, item))


def queued(session: AsyncSession) -> list[Any]:
    """What this unit of work has queued with `after_commit` so far (rolled-back parts gone)."""
    return [item for _, item in session.sync_session.info.get(_AFTER_COMMIT, [])]


@event.listens_for(SyncSession, "after_soft_rollback")
def _drop_rolled_back(session: SyncSession, previous: SessionTransaction) -> None:
    queued = session.info.get(_AFTER_COMMIT)
    if not queued:
        return

    def inside(transaction: SessionTransaction | None) -> bool:
        while transaction is not None:
            if transaction is previous:
                return True
            transaction = transaction.parent
        return False

    queued[:] = [(t, item) for t, item in queued if not inside(t)]


@asynccontextmanager
async def unit_of_work(db: Database) -> AsyncIterator[WriteSession]:
    """One writing transaction: committed once if the block succeeds, rolled back otherwise;
    after the commit, what the work queued with `after_commit` goes to `db.on_commit`.

    `async with unit_of_work(db) as session:`; a `return` inside the block commits too."""
    async with db.write_session() as session:
        try:
            yield session
            pending = session.sync_session.info.pop(_BEFORE_COMMIT, {})
            for work in pending.values():
                await work(session)
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        finally:
            session.sync_session.info.pop(_BEFORE_COMMIT, None)
            queued = session.sync_session.info.pop(_AFTER_COMMIT, [])
        # At once, before the session gives its connection back (which may wait): a write
        # that commits after this one must not hand its events over first (`Dispatcher`).
        if queued and db.on_commit is not None:
            await db.on_commit([item for _, item in queued])


RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


def is_retryable(exc: BaseException) -> bool:
    """A serialisation failure or deadlock: SQLAlchemy's wrapper, or the driver's own error."""
    orig = getattr(exc, "orig", exc)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code in RETRYABLE_SQLSTATES


def is_out_of_range(exc: BaseException) -> bool:
    """An integer the database cannot hold: PostgreSQL's `numeric_value_out_of_range`;
    SQLite's "integer overflow" (an integer `sum()` past 64 bits) or a balance refused for not
    being an integer any more (migration 0010: SQLite's `+` turns an overflow into a float)."""
    orig = getattr(exc, "orig", exc)  # SQLAlchemy's wrapper, or the driver's own error
    if (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) == "22003":
        return True
    return str(orig) in ("integer overflow", "balance out of range")


async def with_retry(
    session: AsyncSession, work: Callable[[], Awaitable[T]], attempts: int = 5
) -> T:
    """Run `work` so that a serialisation failure or deadlock never reaches the client, on
    PostgreSQL: rolled back and retried (with jittered backoff). When the unit of work has not
    begun yet (a request that only records movements), `work` is its whole transaction so far
    and the retry rolls that back; otherwise `work` runs inside a savepoint (two more round
    trips) so that what came before it stays. SQLite has one writer at a time (BEGIN
    IMMEDIATE), so it runs `work` directly."""
    if session.bind.dialect.name != "postgresql":
        return await work()
    whole = not session.in_transaction()
    for attempt in range(1, attempts + 1):
        try:
            if whole:
                return await work()
            async with session.begin_nested():
                return await work()
        except DBAPIError as exc:
            if not is_retryable(exc) or attempt == attempts:
                raise
            if whole:
                # What the attempt queued with `after_commit` goes with it; what it asked to
                # run before commit (`before_commit`) is asked again by the retry, same keys.
                await session.rollback()
            await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))
    raise AssertionError("unreachable")
