"""`kit.driver.Prepared`: statements compiled once, their values bound as the columns' types."""

from __future__ import annotations

from sqlalchemy import Integer, bindparam, literal_column, select
from sqlalchemy.dialects.postgresql import psycopg

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
