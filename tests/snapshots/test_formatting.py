"""The database writes snapshot money and percentages (`kit.sql.decimal_text`,
`kit.sql.change_percent`) for the read endpoints; on both engines they must agree exactly with
the Python definitions (`schemas.money`, `kit.money.percent_change`), and the bodies the
endpoints write must be exactly what their Pydantic models describe. For balance-history it also
writes the JSON (`kit.sql.iso_timestamp`, `kit.sql.json_percent`): exactly the bytes orjson
writes for the same values."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Float, literal, select

from ledger.factories import account
from snapshots.helpers import get_ok, report, sync
from worthline.kit.db import ExactDecimal, UTCDateTime
from worthline.kit.money import percent_change
from worthline.kit.sql import (
    change_percent,
    decimal_text,
    iso_timestamp,
    json_percent,
)
from worthline.snapshots.schemas import (
    LatestSnapshots,
    Reconciliation,
    SnapshotHistory,
    SnapshotOut,
    money,
)
from worthline.snapshots.service import MAX_AMOUNT

AMOUNT = ExactDecimal(8)


@st.composite
def amounts(draw: st.DrawFn) -> tuple[Decimal, int]:
    """A storable amount quantized to an exponent, as snapshots hold them."""
    exponent = draw(st.integers(min_value=-8, max_value=0))
    limit = int(MAX_AMOUNT.scaleb(-exponent))
    minor = draw(
        st.one_of(
            st.integers(min_value=-limit, max_value=limit),
            st.integers(min_value=-1000, max_value=1000),
        )
    )
    return Decimal(minor).scaleb(exponent), exponent


def _percent_cases() -> st.SearchStrategy[tuple[Decimal, Decimal]]:
    small = st.integers(min_value=-(10**6), max_value=10**6)
    big = st.integers(min_value=-(2**62), max_value=2**62)
    scaled = st.builds(lambda n: Decimal(n).scaleb(-8), st.one_of(small, big))
    # Ties: previous 200.00, change 0.01 → 0.005 % exactly (half-up gives 0.01).
    ties = st.sampled_from(
        [
            (Decimal("0.01"), Decimal("200.00")),
            (Decimal("-0.01"), Decimal("-200.00")),
            (Decimal("0.03"), Decimal("-200.00")),
            (Decimal("1"), Decimal("8")),
        ]
    )
    return st.one_of(st.tuples(scaled, scaled), ties)


_SLOW = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SLOW
@given(values=st.lists(amounts(), min_size=1, max_size=20))
async def test_decimal_text_agrees_with_money(db, values):
    async with db.read_session() as session:
        for value, exponent in values:
            written = await session.scalar(
                select(decimal_text(literal(value, AMOUNT), literal(-exponent)))
            )
            assert written == money(value, exponent), (value, exponent)
        assert await session.scalar(select(decimal_text(literal(None, AMOUNT), 2))) is None


@_SLOW
@given(cases=st.lists(_percent_cases(), min_size=1, max_size=20))
async def test_change_percent_agrees_with_python(db, cases):
    async with db.read_session() as session:
        for change, previous in cases:
            got = await session.scalar(
                select(change_percent(literal(change, AMOUNT), literal(previous, AMOUNT)))
            )
            assert got == percent_change(change, previous), (change, previous)
        none = await session.scalar(
            select(change_percent(literal(Decimal(1), AMOUNT), literal(Decimal(0), AMOUNT)))
        )
        assert none is None


def _json(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z).decode()


@_SLOW
@given(cases=st.lists(_percent_cases(), min_size=1, max_size=20))
async def test_json_percent_is_what_orjson_writes(db, cases):
    async with db.read_session() as session:
        for change, previous in cases:
            percent = change_percent(literal(change, AMOUNT), literal(previous, AMOUNT))
            value, written = (await session.execute(select(percent, json_percent(percent)))).one()
            if value is not None and abs(value) >= 2**53:
                # Past 2⁵³ a double holds no cents, and where the shortest text that reads
                # back is a tie PostgreSQL may print a 17th digit that Python's repr leaves
                # out (3.6028797018964096e+16 vs 3.60287970189641e+16): the same number.
                assert float(written) == value, (change, previous, value, written)
            else:
                assert written == _json(value), (change, previous, value)


# Two decimals, as percentages are: every layout repr and PostgreSQL use, and their borders.
_PERCENTS = [0.0, -0.0, 0.01, -0.01, 0.1, 1.0, 12.5, -54.55, 100.0, 33.33, 99999900.0]
_PERCENTS += [999999999999.99, 1e12, -1e12, 1000000000000.01, 12345678901234.57, 1e13, 1e14]
_PERCENTS += [999999999999999.9, 1e15, -1e15, 1234567890123456.8, 9999999999999998.0, 1e16]
_PERCENTS += [-1e16, 1.2345678901234568e16, 9.223372036854776e20, 1e22, -4.5e30, 1.5e40]


@_SLOW
@given(cents=st.lists(st.integers(min_value=-(10**24), max_value=10**24), max_size=20))
@example(cents=[2_331_120_269_886_075_000])  # a tie: PostgreSQL writes one digit more
async def test_json_percent_of_any_size(db, cents):
    values = _PERCENTS + [float(Decimal(n).scaleb(-2)) for n in cents]
    async with db.read_session() as session:
        for value in values:
            written = await session.scalar(select(json_percent(literal(value, Float()))))
            if written != _json(value) and abs(value) >= 2**53:
                # The tie described in the test above (2.3311202698860752e+16 from
                # PostgreSQL, 2.331120269886075e+16 from repr): the same number.
                assert float(written) == value, (value, written)
            else:
                assert written == _json(value), value
        assert await session.scalar(select(json_percent(literal(None, Float())))) == "null"


# Hypothesis takes naive bounds and attaches the zone itself.
_INSTANTS = st.datetimes(
    min_value=datetime(1900, 1, 1),  # noqa: DTZ001
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@_SLOW
@given(
    instants=st.lists(
        st.one_of(_INSTANTS, _INSTANTS.map(lambda t: t.replace(microsecond=0))),
        min_size=1,
        max_size=20,
    )
)
async def test_iso_timestamp_is_what_orjson_writes(db, instants):
    async with db.read_session() as session:
        for instant in instants:
            written = await session.scalar(select(iso_timestamp(literal(instant, UTCDateTime()))))
            assert f'"{written}"' == _json(instant), instant


def test_percent_change_by_hand():
    assert percent_change(Decimal("2500.00"), Decimal("20000.00")) == 12.5
    assert percent_change(Decimal("0.01"), Decimal("200.00")) == 0.01  # 0.005: half-up
    assert percent_change(Decimal("-0.01"), Decimal("200.00")) == -0.01  # away from zero
    assert percent_change(250_00, -500_00) == 50.0  # a debt halving: + of its magnitude
    assert percent_change(Decimal(1), Decimal(3)) == 33.33
    assert percent_change(Decimal(2), Decimal(3)) == 66.67
    assert percent_change(Decimal(5), Decimal(0)) is None
    assert percent_change(None, Decimal(1)) is None
    assert percent_change(Decimal(1), None) is None


def _same_as_model(model: type, body: dict) -> None:
    assert model.model_validate(body).model_dump(mode="json") == body


async def test_bodies_are_exactly_what_the_models_describe(client, auth):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current")
    yen = await account(client, h, "Asset:Bank:Yen", "JPY")
    reported = await report(client, h, bank, "-0.50", "2025-01-01T00:00:00.000001Z")
    _same_as_model(SnapshotOut, reported)
    _same_as_model(SnapshotOut, await report(client, h, bank, "10.00", "2025-01-02T00:00:00Z"))
    _same_as_model(SnapshotOut, await sync(client, h, yen))
    _same_as_model(LatestSnapshots, await get_ok(client, "/balance-snapshots", h))
    _same_as_model(
        SnapshotHistory, await get_ok(client, f"/accounts/{bank['id']}/balance-snapshots", h)
    )
    history = await get_ok(
        client,
        f"/accounts/{bank['id']}/balance-history",
        h,
        start_date="2025-01-01",
        end_date="2025-12-31",
    )
    assert history["snapshots"][0]["captured_at"] == "2025-01-01T00:00:00.000001Z"
    _same_as_model(SnapshotHistory, history)
    _same_as_model(
        Reconciliation, await get_ok(client, f"/accounts/{bank['id']}/reconciliation", h)
    )
