"""What the hot paths that step around SQLAlchemy's session (`kit.driver_reads`, `kit.direct`)
share: statements compiled once, and SQLite connections of their own.

They still build their SQL with SQLAlchemy, so that it is the same SQL, typed the same way, as
everywhere else; only the execution is theirs. `Prepared` keeps what that needs: the SQL text,
the bind processors in the driver's positional order and the result processors of the columns
returned, so values round-trip exactly as through the ORM (UUIDs, UTC datetimes, JSON,
decimals); `ByStatement` makes it once per statement. `ThreadConnections` opens sqlite3
connections to the database's file, one per thread; `PerDatabase` keeps one such helper per
`Database`.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import Date, Uuid
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeEngine

from worthline.kit.bulk import type_converter
from worthline.kit.db import UTCDateTime

if TYPE_CHECKING:
    from worthline.kit.db import Database

Processor = Callable[[Any], Any] | None
_GIVEN = object()
_FORMAT_PLACEHOLDER = re.compile(r"%(%|s)")


class Prepared:
    """One statement compiled for one dialect. `column_keys`: for an INSERT or UPDATE built
    without values, the columns to bind (each as a parameter of its own name)."""

    __slots__ = ("_binds", "_order", "_results", "sql")

    def __init__(
        self, stmt: Executable, dialect: Dialect, column_keys: Sequence[str] | None = None
    ) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=column_keys)  # type: ignore[attr-defined]
        by_name = {name: bind for bind, name in compiled.bind_names.items()}  # anonymous too
        self.sql = str(compiled)
        # Each distinct parameter once, as (name, processor, value, instant): `value` is what
        # a bind the statement carries itself holds (a literal SQLAlchemy made a parameter),
        # else _GIVEN: the call's parameter of that name; `instant`: a UTCDateTime, whose
        # conversion `args` may remember. `_order`: the driver's positions, which may repeat
        # a parameter (converted once).
        self._binds: list[tuple[str, Processor, Any, bool]] = []
        seen: dict[str, int] = {}
        order = []
        for name in compiled.positiontup or ():
            if name not in seen:
                bind = by_name[name]
                processor = _bind_processor(bind.type, dialect)
                value = _GIVEN if bind.required else bind.effective_value
                instant = isinstance(bind.type, UTCDateTime) and processor is not None
                seen[name] = len(self._binds)
                self._binds.append((name, processor, value, instant))
            order.append(seen[name])
        self._order = None if order == list(range(len(order))) else order
        self._results: list[Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in getattr(stmt, "exported_columns", ())
        ]

    def args(self, params: Mapping[str, Any], instants: dict[Any, Any] | None = None) -> list[Any]:
        """The driver's parameters. `instants`: UTC datetimes already converted for this
        dialect (every UTCDateTime converts an instant alike), shared by the statements of
        one transaction, which bind the same few instants many times."""
        values = self.distinct_args(params, instants)
        return values if self._order is None else [values[i] for i in self._order]

    def distinct_args(
        self, params: Mapping[str, Any], instants: dict[Any, Any] | None = None
    ) -> list[Any]:
        """Each distinct parameter once, in the order of `numbered_sql`'s `$1`, `$2`, …"""
        values = []
        for name, process, value, instant in self._binds:
            if value is _GIVEN:
                value = params[name]
            if process is None:
                values.append(value)
            elif instant and instants is not None:
                converted = instants.get(value, _GIVEN)
                if converted is _GIVEN:
                    converted = instants[value] = process(value)
                values.append(converted)
            else:
                values.append(process(value))
        return values

    def numbered_sql(self) -> str:
        """The SQL with `$1`, `$2`, … for `distinct_args` (as `PREPARE` takes it), from the
        `%s` placeholders of a "format" dialect (psycopg's)."""
        positions = iter(self._order or range(len(self._binds)))

        def number(match: re.Match[str]) -> str:
            return "%" if match.group(1) == "%" else f"${next(positions) + 1}"

        return _FORMAT_PLACEHOLDER.sub(number, self.sql)

    def row(self, raw: Any) -> tuple[Any, ...]:
        return tuple(
            value if process is None else process(value)
            for value, process in zip(raw, self._results, strict=True)
        )


def _bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    """The type's bind processor; on SQLite, for the types a movement binds most (UTC
    datetimes, UUIDs, dates), `kit.bulk`'s faster ones, which make the same text."""
    if dialect.name == "sqlite" and isinstance(type_, UTCDateTime | Uuid | Date):
        fast = type_converter(type_, dialect)
        assert fast is not None
        return lambda value: None if value is None else fast(value)
    return type_.dialect_impl(dialect).bind_processor(dialect)


class ThreadConnections:
    """sqlite3 connections to the file of a SQLite `Database`, one per thread, each set up by
    `setup` when opened. All are closed when the engine's pool is replaced (`Database.dispose()`:
    the file may have been replaced too) and when this object goes."""

    def __init__(self, db: Database, setup: Callable[[sqlite3.Connection], None]) -> None:
        self.path = sqlite_file(db)
        self._engine = db.engine
        self._setup = setup
        self._connections: dict[int, sqlite3.Connection] = {}
        self._pool: weakref.ref[Any] | None = None
        self._lock = threading.Lock()
        weakref.finalize(self, _close_all, self._connections)

    def get(self) -> sqlite3.Connection:
        """This thread's connection (the database must be a file: `path` is not None)."""
        pool = self._engine.sync_engine.pool
        if self._pool is None or self._pool() is not pool:
            with self._lock:
                _close_all(self._connections)
                self._pool = weakref.ref(pool)
        key = threading.get_ident()
        conn = self._connections.get(key)
        if conn is None:
            assert self.path is not None
            conn = sqlite3.connect(
                self.path.as_uri() + "?mode=rw",  # never creates a missing file
                uri=True,
                isolation_level=None,  # autocommit, or BEGIN issued by the caller
                check_same_thread=False,  # only this thread uses it; closed from another
            )
            self._setup(conn)
            with self._lock:
                self._connections[key] = conn
        return conn


def sqlite_file(db: Database) -> Path | None:
    """The file of a SQLite `db`; None in memory or for URIs with options."""
    url = db.engine.url
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return None
    if url.query:
        return None
    return Path(url.database).resolve()


def _close_all(connections: dict[int, sqlite3.Connection]) -> None:
    for conn in list(connections.values()):
        with contextlib.suppress(sqlite3.Error):
            conn.close()
    connections.clear()


T = TypeVar("T")


class ByStatement(Generic[T]):
    """`make(stmt)` once per statement object, kept by identity: for statements built once, at
    import (the key is the object, not its SQL)."""

    def __init__(self, make: Callable[[Executable], T]) -> None:
        self._make = make
        self._made: dict[int, tuple[Executable, T]] = {}

    def __call__(self, stmt: Executable) -> T:
        entry = self._made.get(id(stmt))
        if entry is None or entry[0] is not stmt:
            entry = self._made[id(stmt)] = (stmt, self._make(stmt))
        return entry[1]


class PerDatabase(Generic[T]):
    """One `make(db)` per `Database`, made on first use (from any thread) and dropped with it."""

    def __init__(self, make: Callable[[Database], T]) -> None:
        self._make = make
        self._made: weakref.WeakKeyDictionary[Database, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, db: Database) -> T:
        made = self._made.get(db)
        if made is None:
            with self._lock:
                made = self._made.get(db)
                if made is None:
                    made = self._made[db] = self._make(db)
        return made
