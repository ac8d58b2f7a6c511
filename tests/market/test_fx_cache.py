"""A process keeps the FX rate tables it has read until a rate upsert commits a new version
token; a rolled-back upsert changes nothing it serves."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from worthline.kit.db import Database, unit_of_work
from worthline.market import repository as repo
from worthline.market.service import FxRateIn, upsert_fx_rates

D1, D2 = date(2026, 3, 2), date(2026, 3, 3)


async def _table(db: Database):
    async with db.read_session() as session:
        return await repo.fx_table(session, {"GBP", "USD"}, D1, D2)


async def _upsert(db: Database, *rates: FxRateIn) -> None:
    async with unit_of_work(db) as session:
        await upsert_fx_rates(session, list(rates))


async def test_a_kept_table_is_served_until_rates_change(db):
    await _upsert(db, FxRateIn(D1, "USD", "GBP", Decimal("0.8")))
    first = await _table(db)
    assert await _table(db) is first  # kept: one token read, no rates read
    assert first.rate("USD", "GBP", D2).value == Fraction(4, 5)

    await _upsert(db, FxRateIn(D2, "USD", "GBP", Decimal("0.75")))
    second = await _table(db)
    assert second is not first
    assert second.rate("USD", "GBP", D2).value == Fraction(3, 4)
    assert second.rate("USD", "GBP", D1).value == Fraction(4, 5)

    # A replaced rate (same pair and date) is a change too.
    await _upsert(db, FxRateIn(D2, "USD", "GBP", Decimal("0.7")))
    assert (await _table(db)).rate("USD", "GBP", D2).value == Fraction(7, 10)


async def test_a_rolled_back_upsert_leaves_the_kept_table(db):
    await _upsert(db, FxRateIn(D1, "USD", "GBP", Decimal("0.8")))
    kept = await _table(db)
    with pytest.raises(RuntimeError):
        async with unit_of_work(db) as session:
            await upsert_fx_rates(session, [FxRateIn(D1, "USD", "GBP", Decimal("0.9"))])
            inside = await repo.fx_table(session, {"GBP", "USD"}, D1, D2)
            assert inside.rate("USD", "GBP", D1).value == Fraction(9, 10)  # its own write
            raise RuntimeError("roll back")
    after = await _table(db)
    assert after is kept
    assert after.rate("USD", "GBP", D1).value == Fraction(4, 5)
