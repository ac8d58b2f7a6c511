"""SQL constructs whose spelling differs by engine, compiled per dialect in one place."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Date, Float, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from worthline.kit.db import SQLITE_PERCENT_FUNCTION, UTCDateTime


class utc_date(FunctionElement[Any]):
    """The UTC calendar date of a `UTCDateTime` column."""

    type = Date()
    inherit_cache = True
    name = "utc_date"

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)


@compiles(utc_date, "sqlite")
def _utc_date_sqlite(element: utc_date, compiler: Any, **kw: Any) -> str:
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC: the date is its first ten characters.
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(utc_date, "postgresql")
def _utc_date_pg(element: utc_date, compiler: Any, **kw: Any) -> str:
    return f"(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC')::date"


class utc_day_start(FunctionElement[Any]):
    """Midnight UTC at the start of the day of a `UTCDateTime` column, comparable with other
    `UTCDateTime` columns (a correlated day boundary, where Python cannot compute it)."""

    type = UTCDateTime()
    inherit_cache = True
    name = "utc_day_start"

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)


@compiles(utc_day_start, "sqlite")
def _utc_day_start_sqlite(element: utc_day_start, compiler: Any, **kw: Any) -> str:
    # The stored form is fixed-width 'YYYY-MM-DD HH:MM:SS.ffffff', compared as text.
    return f"(substr({compiler.process(element.clauses, **kw)}, 1, 10) || ' 00:00:00.000000')"


@compiles(utc_day_start, "postgresql")
def _utc_day_start_pg(element: utc_day_start, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"(date_trunc('day', ({column}) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


class decimal_text(FunctionElement[str]):
    """An `ExactDecimal` value written as text with `places` decimals by the database, so that a
    read of many rows decodes strings rather than building a Decimal per value. Exact: amounts
    are stored quantized to their account's exponent, so no digit is ever dropped. `places` is
    a bound integer or an integer column expression (-accounts.exponent)."""

    type = String()
    inherit_cache = True
    name = "decimal_text"

    def __init__(self, column: ColumnElement[Any], places: Any) -> None:
        super().__init__(column, places)


@compiles(decimal_text, "postgresql")
def _decimal_text_pg(element: decimal_text, compiler: Any, **kw: Any) -> str:
    column, places = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(round({column}, {places}) AS TEXT)"


@compiles(decimal_text, "sqlite")
def _decimal_text_sqlite(element: decimal_text, compiler: Any, **kw: Any) -> str:
    # SQLite keeps a scaled 64-bit integer: integer part, then the first `places` digits of the
    # zero-padded fraction (the rest are zeros). NULL stays NULL (|| with NULL is NULL).
    column_clause = element.clauses.clauses[0]
    scale = column_clause.type.scale
    unit = 10**scale
    column, places = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"(CASE WHEN {column} < 0 THEN '-' ELSE '' END || (abs({column}) / {unit}) || "
        f"CASE WHEN {places} > 0 THEN '.' || "
        f"substr(printf('%0{scale}d', abs({column}) % {unit}), 1, {places}) ELSE '' END)"
    )


class change_percent(FunctionElement[float]):
    """`kit.money.percent_change` computed by the database: `change` as a percentage of
    `previous`'s magnitude, rounded half away from zero to two decimals, NULL when `previous`
    is NULL or zero. PostgreSQL divides exact NUMERICs at 40 decimals (past any rounding tie
    the quotient does not reach); SQLite calls the same Python function (registered on each
    connection by `kit.db`)."""

    type = Float()
    inherit_cache = True
    name = "change_percent"

    def __init__(self, change: ColumnElement[Any], previous: ColumnElement[Any]) -> None:
        super().__init__(change, previous)


@compiles(change_percent, "postgresql")
def _change_percent_pg(element: change_percent, compiler: Any, **kw: Any) -> str:
    change, previous = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"CAST(round(CAST({change} AS NUMERIC(80, 40)) * 100 / NULLIF(abs({previous}), 0), 2)"
        " AS DOUBLE PRECISION)"
    )


@compiles(change_percent, "sqlite")
def _change_percent_sqlite(element: change_percent, compiler: Any, **kw: Any) -> str:
    change, previous = (compiler.process(c, **kw) for c in element.clauses)
    return f"{SQLITE_PERCENT_FUNCTION}({change}, {previous})"


class uuid_text(FunctionElement[str]):
    """A UUID column as its canonical text (lower-case, hyphenated), written by the database:
    for reads of many rows that only pass the id on to JSON."""

    type = String()
    inherit_cache = True
    name = "uuid_text"

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)


@compiles(uuid_text, "postgresql")
def _uuid_text_pg(element: uuid_text, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


@compiles(uuid_text, "sqlite")
def _uuid_text_sqlite(element: uuid_text, compiler: Any, **kw: Any) -> str:
    # Stored as 32 lower-case hex digits.
    column = compiler.process(element.clauses, **kw)
    parts = " || '-' || ".join(
        f"substr({column}, {start}, {length})"
        for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    )
    return f"({parts})"
