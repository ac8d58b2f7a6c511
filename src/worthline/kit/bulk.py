"""Bulk inserts for import paths: COPY on PostgreSQL, one `executemany` on SQLite.

Values are converted per column once per column *type*, to exactly what the ORM's types store
(a UUID as 32 hex characters and a UTC datetime as fixed-width text on SQLite; native values for
asyncpg), and handed to the driver as tuples: SQLAlchemy's general per-value processing costs
more than the rest of a journal import together. Any type without a fast path goes through its
own bind processor, so nothing is ever stored differently from an ordinary insert.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Date, Table, Uuid
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.kit.db import UTCDateTime

Converter = Callable[[Any], Any] | None


def _sqlite_datetime(value: datetime) -> str:
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
    )


def _pg_datetime(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _converter(column_type: Any, dialect: Dialect) -> Converter:
    sqlite = dialect.name == "sqlite"
    if isinstance(column_type, UTCDateTime):
        return _sqlite_datetime if sqlite else _pg_datetime
    if isinstance(column_type, Uuid):
        return (lambda value: value.hex) if sqlite else None
    if isinstance(column_type, JSON):
        return _json_text
    if isinstance(column_type, Boolean):
        return int if sqlite else None
    if isinstance(column_type, Date):
        return date.isoformat if sqlite else None
    return column_type._cached_bind_processor(dialect)


async def bulk_insert(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows keyed by column name; an unknown key is an error, never silently dropped."""
    if not rows:
        return
    columns = list(rows[0])
    unknown = set(columns) - set(table.c.keys())
    if unknown:
        raise KeyError(f"{table.name} has no column {', '.join(sorted(unknown))}")
    dialect = session.bind.dialect
    converters = [_converter(table.c[c].type, dialect) for c in columns]
    records = [
        tuple(
            value if convert is None or value is None else convert(value)
            for value, convert in zip([row[c] for c in columns], converters, strict=True)
        )
        for row in rows
    ]
    connection = await session.connection()
    if dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            table.name, records=records, columns=columns
        )
        return
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    await connection.exec_driver_sql(
        # Names come from the Table and were checked against it above: nothing user-supplied.
        f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})',  # noqa: S608
        records,
    )
