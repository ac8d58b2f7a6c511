"""`kit.driver.Prepared`: statements compiled once, their values bound as the columns' types."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import Date, Integer, Uuid, bindparam, literal_column, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg

from worthline.kit.db import UTCDateTime
from worthline.kit.driver import Prepared


def test_numbered_sql_numbers_each_distinct_parameter_once():
    """`PREPARE` takes `$1`, `$2`, …: a parameter used twice keeps its number, and a literal
    `%` (doubled in the "format" SQL) is a single `%` again."""
    a, b = bindparam("a", type_=Integer), bindparam("b", type_=Integer)
    stmt = select(literal_column("'100%'").label("pct"), (a + b + a).label("total"))
    prepared = Prepared(stmt, psycopg.dialect(paramstyle="format"))
    assert "'100%%'" in prepared.sql and prepared.sql.count("%s") == 3
    numbered = prepared.numbered_sql()
    assert "'100%'" in numbered and "%s" not in numbered
    assert numbered.index("$1") < numbered.index("$2") < numbered.rindex("$1")
    assert prepared.distinct_args({"a": 7, "b": 9}) == [7, 9]
    assert prepared.args({"a": 7, "b": 9}) == [7, 9, 7]


def test_sqlite_values_are_bound_as_sqlalchemy_binds_them():
    """On SQLite `Prepared` binds UTC datetimes, UUIDs and dates with `kit.bulk`'s faster
    converters: the stored text must be exactly SQLAlchemy's (SQL compares it as text)."""
    dialect = sqlite.dialect()
    values = {
        UTCDateTime(): [
            datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),  # no microseconds
            datetime(2024, 3, 1, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            datetime(1, 1, 1, tzinfo=UTC),
            None,
        ],
        Uuid(): [uuid.UUID(int=0), uuid.uuid4(), None],
        Date(): [date(2024, 2, 29), date(1, 1, 1), None],
    }
    for type_, cases in values.items():
        stmt = select(bindparam("v", type_=type_))
        fast = Prepared(stmt, dialect)
        for value in cases:
            expected = type_.dialect_impl(dialect).bind_processor(dialect)(value)
            assert fast.args({"v": value}) == [expected], (type_, value)
