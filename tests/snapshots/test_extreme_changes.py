"""Changes between the most extreme balances a snapshot stores (±(2⁶³ − 1) units of the 8th
decimal: `service.MAX_AMOUNT`), through every endpoint that writes a change: exact on both
engines, never a 500. SQLite keeps amounts as scaled 64-bit integers, so its own subtraction
of two of them overflows (to a float past 64 bits, or an "integer overflow" error from `abs()`
of exactly −2⁶³)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import literal, select

from ledger.factories import account
from snapshots.helpers import get_ok, report
from worthline.kit.db import ExactDecimal
from worthline.kit.money import percent_change
from worthline.kit.sql import difference_percent, difference_text
from worthline.snapshots import repository as repo
from worthline.snapshots.jsontext import dumps
from worthline.snapshots.schemas import history_json, money
from worthline.snapshots.service import MAX_AMOUNT

AMOUNT = ExactDecimal(8)

TOP = format(MAX_AMOUNT, "f")  # 92233720368.54775807
BOTTOM = format(-MAX_AMOUNT, "f")

# (previous balance, balance, change_amount, change_percent), at exponent -8.
CASES = [
    # Exactly -2⁶³ units: fits 64 bits, but SQLite's abs() of it overflows.
    (TOP, "-0.00000001", "-92233720368.54775808", -100.0),
    (TOP, "0.00000000", "-92233720368.54775807", -100.0),
    (TOP, BOTTOM, "-184467440737.09551614", -200.0),
    (BOTTOM, TOP, "184467440737.09551614", 200.0),
    ("-0.00000001", TOP, "92233720368.54775808", 922337203685477580800.0),
    (BOTTOM, "0.00000001", "92233720368.54775808", 100.0),
    # Past 64 bits and exactly on a rounding tie (150.005 %): a float change (its nearest
    # double lies 501 units below) would round it down to 150.0.
    ("-80000000000.00100000", "40004000000.00050005", "120004000000.00150005", 150.01),
]


async def _pair(client: Any, h: dict[str, str], path: str, previous: str, balance: str) -> Any:
    bank = await account(client, h, path, "GBP", exponent=-8)
    await report(client, h, bank, previous, "2025-01-01T00:00:00Z")
    current = await report(client, h, bank, balance, "2025-01-02T00:00:00Z")
    return bank, current


@pytest.mark.parametrize(("previous", "balance", "change", "percent"), CASES)
async def test_extreme_change_is_exact_everywhere(
    client, auth, ctx, previous, balance, change, percent
):
    assert Decimal(balance) - Decimal(previous) == Decimal(change)
    assert percent_change(Decimal(change), Decimal(previous)) == percent
    h = auth["headers"]
    bank, current = await _pair(client, h, "Asset:Bank:Extreme", previous, balance)
    # POST answers the snapshot with its change.
    assert (current["change_amount"], current["change_percent"]) == (change, percent)

    latest = await get_ok(client, "/balance-snapshots", h)
    [snapshot] = latest["snapshots"]
    assert (snapshot["change_amount"], snapshot["change_percent"]) == (change, percent)
    assert latest["total_balance_by_currency"] == {"GBP": balance}

    recent = await get_ok(client, f"/accounts/{bank['id']}/balance-snapshots", h)
    newest, oldest = recent["snapshots"]
    assert (newest["change_amount"], newest["change_percent"]) == (change, percent)
    assert (oldest["change_amount"], oldest["change_percent"]) == (None, None)
    assert (recent["total_change_amount"], recent["total_change_percent"]) == (change, percent)
    # Only the newest with its predecessor outside the window: the change still counts it.
    [alone] = (await get_ok(client, f"/accounts/{bank['id']}/balance-snapshots", h, limit=1))[
        "snapshots"
    ]
    assert (alone["change_amount"], alone["change_percent"]) == (change, percent)

    history = await get_ok(
        client,
        f"/accounts/{bank['id']}/balance-history",
        h,
        start_date="2025-01-01T00:00:00Z",
        end_date="2025-01-31T00:00:00Z",
    )
    assert [s["change_amount"] for s in history["snapshots"]] == [None, change]
    assert [s["change_percent"] for s in history["snapshots"]] == [None, percent]
    assert (history["start_balance"], history["end_balance"]) == (previous, balance)
    assert (history["total_change_amount"], history["total_change_percent"]) == (change, percent)
    assert history["snapshots"][1] == newest
    # The row path (`repository.history`) writes the same body, byte for byte.
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 31, tzinfo=UTC)
    async with ctx.db.read_session() as session:
        acc = await repo.account_by_public_id(session, uuid.UUID(bank["id"]))
        assert acc is not None
        rows = await repo.history(session, acc.user_id, acc.public_id, start, end, None, 10)
    assert orjson.loads(dumps(history_json("GBP", -8, rows, newest_first=False))) == history


async def test_extreme_change_at_two_decimals(client, auth):
    """The largest balances an account of exponent -2 holds, from one end to the other."""
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Pounds", "GBP")
    await report(client, h, bank, "92233720368.54", "2025-01-01T00:00:00Z")
    current = await report(client, h, bank, "-92233720368.54", "2025-01-02T00:00:00Z")
    assert (current["change_amount"], current["change_percent"]) == ("-184467440737.08", -200.0)
    history = await get_ok(
        client,
        f"/accounts/{bank['id']}/balance-history",
        h,
        start_date="2025-01-01T00:00:00Z",
        end_date="2025-01-31T00:00:00Z",
    )
    assert history["snapshots"][1]["change_amount"] == "-184467440737.08"
    assert history["total_change_amount"] == "-184467440737.08"


_LIMIT = 2**63 - 1  # scaled units: every balance a snapshot stores
_EDGES = [0, 1, -1, 10**8, -(10**8), 2**62, -(2**62), _LIMIT, -_LIMIT, _LIMIT - 1, -_LIMIT + 1]
_UNITS = st.one_of(
    st.sampled_from(_EDGES),
    st.integers(min_value=-_LIMIT, max_value=_LIMIT),
    st.integers(min_value=-(10**9), max_value=10**9),
)


@st.composite
def _pairs(draw: st.DrawFn) -> tuple[Decimal, Decimal, int]:
    """Two storable amounts quantized to one exponent (as one account's snapshots are)."""
    exponent = draw(st.integers(min_value=-8, max_value=0))
    step = 10 ** (8 + exponent)
    # Towards zero: still storable.
    a, b = (int(draw(_UNITS) / Decimal(step)) * step for _ in range(2))
    return Decimal(a).scaleb(-8), Decimal(b).scaleb(-8), exponent


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cases=st.lists(_pairs(), min_size=1, max_size=20))
@example(
    cases=[
        (Decimal("-0.00000001"), MAX_AMOUNT, -8),  # exactly -2⁶³ units
        (-MAX_AMOUNT, MAX_AMOUNT, -8),
        (MAX_AMOUNT, -MAX_AMOUNT, -8),
        (Decimal("-92233720368.54"), Decimal("92233720368.54"), -2),
        (Decimal("92233720368"), Decimal("-92233720368"), 0),
    ]
)
async def test_differences_agree_with_python(db, cases):
    """`kit.sql.difference_text` and `difference_percent` are `schemas.money` and
    `kit.money.percent_change` of the exact difference, for every pair of storable amounts."""
    async with db.read_session() as session:
        for a, b, exponent in cases:
            left, right = literal(a, AMOUNT), literal(b, AMOUNT)
            text, percent = (
                await session.execute(
                    select(
                        difference_text(left, right, literal(-exponent)),
                        difference_percent(left, right),
                    )
                )
            ).one()
            assert text == money(a - b, exponent), (a, b, exponent)
            assert percent == percent_change(a - b, b), (a, b)
        null = literal(None, AMOUNT)
        one = literal(Decimal(1), AMOUNT)
        for left, right in ((one, null), (null, one)):
            assert await session.scalar(select(difference_text(left, right, 2))) is None
            assert await session.scalar(select(difference_percent(left, right))) is None
