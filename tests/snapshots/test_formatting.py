"""The database writes snapshot money and percentages (`kit.sql.decimal_text`,
`kit.sql.change_percent`) for the read endpoints; on both engines they must agree exactly with
the Python definitions (`schemas.money`, `kit.money.percent_change`), and the bodies the
endpoints write must be exactly what their Pydantic models describe."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import literal, select

from ledger.factories import account
from snapshots.helpers import get_ok, report, sync
from worthline.kit.db import ExactDecimal
from worthline.kit.money import percent_change
from worthline.kit.sql import change_percent, decimal_text
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
