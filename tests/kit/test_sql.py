"""`kit.sql.add_integer_text`: integers kept as decimal text add exactly in the database, on
both engines, at any size (SQL integer addition overflows past 64 bits)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import String, literal, select

from worthline.kit.sql import add_integer_text

huge = st.integers(min_value=-(10**40), max_value=10**40)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=huge, b=huge)
async def test_add_integer_text_is_exact_at_any_size(db, a, b):
    async with db.read_session() as session:
        written = await session.scalar(
            select(add_integer_text(literal(str(a), String()), literal(str(b), String())))
        )
    assert written == str(a + b)


async def test_add_integer_text_past_64_bits(db):
    big = str(2**62 - 1)
    async with db.read_session() as session:
        written = await session.scalar(
            select(
                add_integer_text(
                    add_integer_text(literal(big, String()), literal(big, String())),
                    literal(big, String()),
                )
            )
        )
    assert written == str(3 * (2**62 - 1))
