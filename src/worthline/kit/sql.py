"""SQL constructs whose spelling differs by engine, compiled per dialect in one place."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Date
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from worthline.kit.db import UTCDateTime


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
