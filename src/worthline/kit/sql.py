"""SQL constructs whose spelling differs by engine, compiled per dialect in one place."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Date, Float, String, type_coerce
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from worthline.kit.db import (
    SQLITE_ADD_INTEGERS_FUNCTION,
    SQLITE_JSON_NUMBER_FUNCTION,
    SQLITE_PERCENT_FUNCTION,
    UTCDateTime,
)


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


# ------------------------------------------------------------------------------ JSON text
#
# For reads that hand the database's answer to the client as it is (`orjson.Fragment`): each
# construct writes exactly the bytes orjson writes for the value Python would have read.


class iso_timestamp(FunctionElement[str]):
    """A `UTCDateTime` column as the text orjson writes for it with `OPT_UTC_Z` (inside the
    JSON string's quotes): `2025-01-15T10:00:00Z`, with six digits of microseconds only when
    there are some. NULL stays NULL."""

    type = String()
    inherit_cache = True
    name = "iso_timestamp"

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)


@compiles(iso_timestamp, "postgresql")
def _iso_timestamp_pg(element: iso_timestamp, compiler: Any, **kw: Any) -> str:
    # '.000000Z' can only be the end: the date and time parts hold no '.'.
    column = compiler.process(element.clauses, **kw)
    written = f"""to_char(({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    return f"replace({written}, '.000000Z', 'Z')"


@compiles(iso_timestamp, "sqlite")
def _iso_timestamp_sqlite(element: iso_timestamp, compiler: Any, **kw: Any) -> str:
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC (see `utc_day_start`).
    column = compiler.process(element.clauses, **kw)
    written = f"substr({column}, 1, 10) || 'T' || substr({column}, 12) || 'Z'"
    return f"replace({written}, '.000000Z', 'Z')"


class json_percent(FunctionElement[str]):
    """A `change_percent` value as the JSON number orjson writes for it (`repr`'s layout:
    `12.5`, `100.0`, `1e+16`), or `null`.

    PostgreSQL writes the double's shortest text (with `extra_float_digits` at its default, 1,
    or above), then lays it out as `repr` does where the two differ: `.0` after a whole number,
    and positional rather than an exponent from 10^15 up to 10^16. SQLite has no shortest
    float-to-text: it calls the Python function `kit.db` registers, so the same bytes by
    construction (`-0.0` included, which SQLite keeps and PostgreSQL's NUMERIC never makes)."""

    type = String()
    inherit_cache = True
    name = "json_percent"

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)


@compiles(json_percent, "postgresql")
def _json_percent_pg(element: json_percent, compiler: Any, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    shortest = f"CAST({value} AS TEXT)"
    # 1e15 <= |value| < 1e16: '1.2345678901234568e+15' → '1234567890123456.8'.
    digits = f"replace(split_part(CAST(abs({value}) AS TEXT), 'e', 1), '.', '')"
    positional = (
        f"CASE WHEN {value} < 0 THEN '-' ELSE '' END || rpad(left({digits}, 16), 16, '0') || "
        f"'.' || coalesce(nullif(substr({digits}, 17), ''), '0')"
    )
    # Float comparisons first: one text conversion per value on the usual paths.
    return (
        f"(CASE WHEN {value} IS NULL THEN 'null' "
        f"WHEN abs({value}) >= 1e16 THEN {shortest} "
        f"WHEN abs({value}) >= 1e15 THEN {positional} "
        f"WHEN {value} = trunc({value}) THEN {shortest} || '.0' "
        f"ELSE {shortest} END)"
    )


@compiles(json_percent, "sqlite")
def _json_percent_sqlite(element: json_percent, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_JSON_NUMBER_FUNCTION}({compiler.process(element.clauses, **kw)})"


class json_array_text(FunctionElement[str]):
    """An aggregate: the JSON array `[e1,e2,…]` (no spaces, as orjson writes it) of the JSON
    texts `element`, in `order`; NULL when there are no rows.

    SQLite before 3.44 has no ORDER BY inside an aggregate: it takes the rows as its FROM
    gives them, so aggregate over a subquery with that ORDER BY and a LIMIT (SQLite keeps the
    ORDER BY of a subquery with a LIMIT and reads it as a co-routine, in order)."""

    type = String()
    inherit_cache = True
    name = "json_array_text"

    def __init__(self, element: ColumnElement[Any], order: ColumnElement[Any]) -> None:
        super().__init__(element, order)


@compiles(json_array_text, "postgresql")
def _json_array_text_pg(element: json_array_text, compiler: Any, **kw: Any) -> str:
    item, order = (compiler.process(c, **kw) for c in element.clauses)
    return f"('[' || string_agg({item}, ',' ORDER BY {order}) || ']')"


@compiles(json_array_text, "sqlite")
def _json_array_text_sqlite(element: json_array_text, compiler: Any, **kw: Any) -> str:
    item = compiler.process(element.clauses.clauses[0], **kw)
    return f"('[' || group_concat({item}, ',') || ']')"


class add_integer_text(FunctionElement[str]):
    """The sum of two integers kept as decimal text (beyond 64 bits), exact on both engines:
    PostgreSQL adds them as NUMERIC; SQLite calls the Python function `kit.db` registers."""

    type = String()
    inherit_cache = True
    name = "add_integer_text"

    def __init__(self, a: ColumnElement[Any], b: ColumnElement[Any]) -> None:
        super().__init__(a, b)


@compiles(add_integer_text, "postgresql")
def _add_integer_text_pg(element: add_integer_text, compiler: Any, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(CAST({a} AS NUMERIC) + CAST({b} AS NUMERIC) AS TEXT)"


@compiles(add_integer_text, "sqlite")
def _add_integer_text_sqlite(element: add_integer_text, compiler: Any, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"{SQLITE_ADD_INTEGERS_FUNCTION}({a}, {b})"


# ------------------------------------------------------------------------------ differences
#
# SQLite keeps an `ExactDecimal` as a scaled 64-bit integer, and its own subtraction of two of
# them is not exact at the extremes: a difference past 64 bits turns into a float, and `abs()`
# of exactly -2^63 (which `decimal_text` takes) raises "integer overflow". Two values of the
# same sign (zero counts as positive) never get there; only those of opposite signs are
# written another way.


def _same_sign_sqlite(a: str, b: str) -> str:
    """True when `a - b` cannot overflow; NULL when either is NULL."""
    return f"(({a}) < 0) = (({b}) < 0)"


class difference_text(FunctionElement[str]):
    """`decimal_text(a - b, places)`, exact for any two values of one `ExactDecimal` type;
    NULL when either is NULL. On SQLite, values of opposite signs are split at the scale into
    integer and fractional parts whose differences never overflow (the parts of `a - b` then
    share its sign); everything else is `decimal_text` of the difference."""

    type = String()
    inherit_cache = True
    name = "difference_text"

    def __init__(self, a: ColumnElement[Any], b: ColumnElement[Any], places: Any) -> None:
        super().__init__(a, b, places)


def _plain_difference_text(element: difference_text) -> decimal_text:
    a, b, places = element.clauses.clauses
    return decimal_text(type_coerce(a - b, a.type), places)


@compiles(difference_text, "postgresql")
def _difference_text_pg(element: difference_text, compiler: Any, **kw: Any) -> str:
    return compiler.process(_plain_difference_text(element), **kw)


@compiles(difference_text, "sqlite")
def _difference_text_sqlite(element: difference_text, compiler: Any, **kw: Any) -> str:
    scale = element.clauses.clauses[0].type.scale
    unit = 10**scale
    plain = compiler.process(_plain_difference_text(element), **kw)
    a, b, places = (compiler.process(c, **kw) for c in element.clauses)
    # SQLite's / truncates towards zero and % takes the dividend's sign: with a and b of
    # opposite signs, both part differences have the sign of a - b (or are zero), the
    # fractional one within ±2 units.
    fraction = f"(({a}) % {unit} - ({b}) % {unit})"
    whole = f"abs(({a}) / {unit} - ({b}) / {unit} + {fraction} / {unit})"
    split = (
        f"(CASE WHEN ({a}) < 0 THEN '-' ELSE '' END || {whole} || "
        f"CASE WHEN {places} > 0 THEN '.' || "
        f"substr(printf('%0{scale}d', abs({fraction} % {unit})), 1, {places}) ELSE '' END)"
    )
    return f"(CASE WHEN {_same_sign_sqlite(a, b)} THEN {plain} ELSE {split} END)"


class difference_percent(FunctionElement[float]):
    """`change_percent(a - b, b)`, exact for any two values of one `ExactDecimal` type whose
    magnitude is below 2^63 units (every amount a snapshot stores). On SQLite, the difference
    of values of opposite signs reaches the percentage function as exact decimal text
    (`add_integer_text`'s function) rather than SQLite's overflowing integer subtraction."""

    type = Float()
    inherit_cache = True
    name = "difference_percent"

    def __init__(self, a: ColumnElement[Any], b: ColumnElement[Any]) -> None:
        super().__init__(a, b)


@compiles(difference_percent, "postgresql")
def _difference_percent_pg(element: difference_percent, compiler: Any, **kw: Any) -> str:
    a, b = element.clauses.clauses
    return compiler.process(change_percent(type_coerce(a - b, a.type), b), **kw)


@compiles(difference_percent, "sqlite")
def _difference_percent_sqlite(element: difference_percent, compiler: Any, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    change = (
        f"CASE WHEN {_same_sign_sqlite(a, b)} THEN ({a}) - ({b}) "
        f"ELSE {SQLITE_ADD_INTEGERS_FUNCTION}({a}, -({b})) END"
    )
    return f"{SQLITE_PERCENT_FUNCTION}({change}, {b})"
