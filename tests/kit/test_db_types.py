"""ExactDecimal and UTCDateTime behave the same, exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select
from sqlalchemy.exc import StatementError

from worthline.kit.db import Database, ExactDecimal, UTCDateTime

# Within what both engines hold: SQLite keeps ExactDecimal(2) as a scaled 64-bit integer.
SQLITE_MAX_2DP = Decimal("92233720368547758.07")


@pytest.fixture
async def table(db: Database) -> AsyncIterator[Table]:
    """A throwaway table outside the app's metadata, dropped afterwards on both engines."""
    metadata = MetaData()
    tbl = Table(
        f"type_probe_{uuid.uuid4().hex[:12]}",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("amount", ExactDecimal(2)),
        Column("rate", ExactDecimal(8)),
        Column("whole", ExactDecimal(0)),
        Column("at", UTCDateTime()),
    )
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield tbl
    finally:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)


async def _insert(db: Database, table: Table, *rows: dict[str, object]) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(insert(table), list(rows))


async def _count(db: Database, table: Table) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


# ---------------------------------------------------------------- ExactDecimal


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        (Decimal("0.01"), Decimal("0.01")),
        (Decimal("-0.01"), Decimal("-0.01")),
        (Decimal("0.1"), Decimal("0.10")),
        (Decimal("1.230"), Decimal("1.23")),  # a trailing zero is not extra precision
        (Decimal("25000.00"), Decimal("25000.00")),
        (Decimal("12345678901234.56"), Decimal("12345678901234.56")),
        (SQLITE_MAX_2DP, SQLITE_MAX_2DP),
        (-SQLITE_MAX_2DP, -SQLITE_MAX_2DP),
        (Decimal("1E+3"), Decimal("1000.00")),
        (Decimal("0"), Decimal("0.00")),
        (Decimal("-0"), Decimal("0.00")),
        (7, Decimal("7.00")),
    ],
)
async def test_exact_decimal_round_trips(db, table, stored, read):
    await _insert(db, table, {"id": 1, "amount": stored})
    async with db.engine.connect() as conn:
        value = (await conn.execute(select(table.c.amount))).scalar_one()
    assert type(value) is Decimal
    assert value == read
    assert str(value) == str(read)  # the exponent too: exactly two places
    assert value.as_tuple().exponent == -2


async def test_exact_decimal_keeps_every_scale(db, table):
    await _insert(
        db,
        table,
        {"id": 1, "rate": Decimal("0.00000001"), "whole": Decimal("123456789")},
        {"id": 2, "rate": Decimal("-12.34567891"), "whole": 0},
    )
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(table.c.rate, table.c.whole).order_by(table.c.id))).all()
    assert [(str(r), str(w)) for r, w in rows] == [
        ("1E-8", "123456789"),
        ("-12.34567891", "0"),
    ]
    assert rows[0][0] == Decimal("0.00000001")


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0.1, TypeError),
        (1.0, TypeError),
        (True, TypeError),
        ("1.00", TypeError),
        (Decimal("0.001"), ValueError),
        (Decimal("1.005"), ValueError),
        (Decimal("-0.125"), ValueError),
        (Decimal("NaN"), ValueError),
        (Decimal("Infinity"), ValueError),
        (Decimal("-Infinity"), ValueError),
    ],
)
async def test_exact_decimal_refuses_instead_of_rounding(db, table, value, error):
    with pytest.raises(StatementError) as caught:
        await _insert(db, table, {"id": 1, "amount": value})
    assert isinstance(caught.value.orig, error)
    assert await _count(db, table) == 0


async def test_exact_decimal_refusal_in_a_where_clause(db, table):
    """A float cannot sneak in through a comparison either."""
    await _insert(db, table, {"id": 1, "amount": Decimal("0.10")})
    async with db.engine.connect() as conn:
        with pytest.raises(StatementError):
            await conn.execute(select(table.c.id).where(table.c.amount == 0.1))


async def test_sums_and_comparisons_stay_exact_in_sql(db, table):
    # 0.1 is not a binary fraction: a float sum of these would not be 100.00.
    rows = [{"id": i, "amount": Decimal("0.10")} for i in range(1000)]
    rows += [
        {"id": 1000, "amount": Decimal("-0.01")},
        {"id": 1001, "amount": Decimal("10000000000000.01")},
        {"id": 1002, "amount": Decimal("-10000000000000.00")},
    ]
    await _insert(db, table, *rows)
    async with db.engine.connect() as conn:
        total = (await conn.execute(select(func.sum(table.c.amount)))).scalar_one()
        tens = (
            await conn.execute(select(func.sum(table.c.amount)).where(table.c.id < 1000))
        ).scalar_one()
        exactly = (
            await conn.execute(select(func.count()).where(table.c.amount == Decimal("0.1")))
        ).scalar_one()
        above = (
            await conn.execute(
                select(table.c.id).where(table.c.amount > Decimal("0.09")).order_by(table.c.id)
            )
        ).scalars()
        ordered = (
            await conn.execute(
                select(table.c.amount).where(table.c.id >= 999).order_by(table.c.amount)
            )
        ).scalars()
        extremes = (
            await conn.execute(select(func.min(table.c.amount), func.max(table.c.amount)))
        ).one()
    assert total == Decimal("100.00")
    assert str(total) == "100.00"
    assert tens == Decimal("100.00")
    assert exactly == 1000
    assert list(above) == [*range(1000), 1001]
    assert list(ordered) == [
        Decimal("-10000000000000.00"),
        Decimal("-0.01"),
        Decimal("0.10"),
        Decimal("10000000000000.01"),
    ]
    assert tuple(extremes) == (Decimal("-10000000000000.00"), Decimal("10000000000000.01"))


async def test_null_round_trips(db, table):
    await _insert(db, table, {"id": 1})
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(table.c.amount, table.c.at))).one()
    assert tuple(row) == (None, None)


# ---------------------------------------------------------------- UTCDateTime


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 3, 31, 1, 30, 15, 123456, tzinfo=UTC),
        datetime(2024, 3, 31, 1, 30, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2024, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=-8))),
        datetime(2100, 2, 28, 23, 0, tzinfo=UTC),
    ],
)
async def test_utc_datetime_round_trips(db, table, moment):
    await _insert(db, table, {"id": 1, "at": moment})
    async with db.engine.connect() as conn:
        value = (await conn.execute(select(table.c.at))).scalar_one()
    assert value == moment
    assert value.utcoffset() == timedelta(0)
    assert value.tzinfo is UTC
    assert value == moment.astimezone(UTC)
    assert (value.microsecond, value.second) == (
        moment.astimezone(UTC).microsecond,
        moment.astimezone(UTC).second,
    )


async def test_utc_datetime_refuses_naive_values(db, table):
    with pytest.raises(StatementError) as caught:
        await _insert(db, table, {"id": 1, "at": datetime(2024, 1, 1, 12, 0)})  # noqa: DTZ001
    assert isinstance(caught.value.orig, ValueError)
    assert await _count(db, table) == 0


async def test_utc_datetime_compares_and_orders_as_instants(db, table):
    """Offsets are normalised before storage, so SQL ordering follows real time (on SQLite too,
    where values are text)."""
    plus_two = timezone(timedelta(hours=2))
    moments = {
        1: datetime(2024, 5, 1, 10, 0, tzinfo=plus_two),  # 08:00 UTC
        2: datetime(2024, 5, 1, 9, 0, tzinfo=UTC),  # 09:00 UTC
        3: datetime(2024, 5, 1, 9, 30, tzinfo=plus_two),  # 07:30 UTC
        4: datetime(2024, 5, 1, 9, 0, 0, 1, tzinfo=UTC),  # one microsecond after #2
        5: datetime(2024, 5, 1, 8, 59, 59, 999999, tzinfo=UTC),
    }
    await _insert(db, table, *({"id": i, "at": at} for i, at in moments.items()))
    cutoff = datetime(2024, 5, 1, 11, 0, tzinfo=plus_two)  # 09:00 UTC
    async with db.engine.connect() as conn:
        ordered = (await conn.execute(select(table.c.id).order_by(table.c.at))).scalars()
        after = (
            await conn.execute(select(table.c.id).where(table.c.at >= cutoff).order_by(table.c.id))
        ).scalars()
        latest = (await conn.execute(select(func.max(table.c.at)))).scalar_one()
    assert list(ordered) == [3, 1, 5, 2, 4]
    assert list(after) == [2, 4]
    assert latest == moments[4]
    assert latest.tzinfo is UTC


async def test_values_beyond_sqlite_range_are_refused_not_mangled(db, table, engine_name):
    """SQLite holds ExactDecimal(2) as a 64-bit integer of cents: one cent more is refused."""
    beyond = SQLITE_MAX_2DP + Decimal("0.01")
    if engine_name == "sqlite":
        with pytest.raises(OverflowError):
            await _insert(db, table, {"id": 1, "amount": beyond})
        assert await _count(db, table) == 0
        return
    await _insert(db, table, {"id": 1, "amount": beyond})
    async with db.engine.connect() as conn:
        assert (await conn.execute(select(table.c.amount))).scalar_one() == beyond


@pytest.mark.postgres_only
async def test_postgresql_reads_back_all_38_digits(db, table):
    """NUMERIC(38, 2) holds 36 integer digits; more than the 28 of Python's default decimal
    context must still read back (and sum) exactly, not raise InvalidOperation."""
    wide = Decimal("123456789012345678901234567890123456.78")
    negative = Decimal("-123456789012345678901234567890123456.77")  # literal: no context rounding
    await _insert(
        db,
        table,
        {"id": 1, "amount": wide},
        {"id": 2, "amount": negative},
        {"id": 3, "amount": Decimal("100000000000000000000000000000.00")},
    )
    async with db.engine.connect() as conn:
        values = (await conn.execute(select(table.c.amount).order_by(table.c.id))).scalars()
        total = (await conn.execute(select(func.sum(table.c.amount)))).scalar_one()
    assert [str(v) for v in values] == [
        "123456789012345678901234567890123456.78",
        "-123456789012345678901234567890123456.77",
        "100000000000000000000000000000.00",
    ]
    assert str(total) == "100000000000000000000000000000.01"
